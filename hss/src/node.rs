//! Starting and stopping a whole HSS: store (+ change poller), Cx server, REST API.
//! Used by the `hss` binary, the all-in-one `ims-core` binary and the tests.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use ims_diameter::peer::PeerTimers;
use ims_diameter::transport::{LocalNode, Server, ServerConfig, ServerHandle};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::info;

use crate::api::{router, ApiState};
use crate::cx::{CxHandler, DiameterPush};
use crate::push::CxPush;
use crate::service::HssService;
use crate::settings::HssSettings;
use crate::store::{Store, StoreError};

/// Why the HSS could not start.
#[derive(Debug, thiserror::Error)]
pub enum HssError {
    /// Opening or migrating the database failed.
    #[error("database: {0}")]
    Store(#[from] StoreError),
    /// A listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The settings cannot work.
    #[error("invalid settings: {0}")]
    Settings(String),
}

/// A running HSS.
pub struct RunningHss {
    diameter_addr: SocketAddr,
    http_addr: Option<SocketAddr>,
    db_url: String,
    store: Store,
    server: ServerHandle,
    push: Arc<dyn CxPush>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for RunningHss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningHss")
            .field("diameter_addr", &self.diameter_addr)
            .field("http_addr", &self.http_addr)
            .finish_non_exhaustive()
    }
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    while !*rx.borrow() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// Starts an HSS with `settings`; returns once every socket is bound.
pub async fn start(settings: HssSettings) -> Result<RunningHss, HssError> {
    if !settings.policy.is_usable() {
        return Err(HssError::Settings(
            "an S-CSCF pool or server capabilities are required (UAA must carry one)".into(),
        ));
    }
    let store = Store::open(&settings.db_url).await?;
    let (stop, stop_rx) = watch::channel(false);
    let mut tasks = vec![store.spawn_change_poller(settings.change_poll, stop_rx.clone())];

    let svc = HssService::new(store.clone(), settings.policy.clone());
    let handler = Arc::new(CxHandler::new(
        svc,
        &settings.origin_host,
        &settings.origin_realm,
    ));
    let listener = tokio::net::TcpListener::bind(settings.diameter_listen)
        .await
        .map_err(|source| HssError::Bind {
            addr: settings.diameter_listen,
            source,
        })?;
    let diameter_addr = listener.local_addr().map_err(|source| HssError::Bind {
        addr: settings.diameter_listen,
        source,
    })?;
    let host_ip = match diameter_addr.ip() {
        ip if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        ip => ip,
    };
    let local = LocalNode::cx(&settings.origin_host, &settings.origin_realm, host_ip);
    let config = ServerConfig {
        timers: PeerTimers {
            watchdog: settings.watchdog,
            ..PeerTimers::default()
        },
        ..ServerConfig::default()
    };
    let server = Server::from_listener(listener, local, handler, config);
    let server_handle = server.handle();
    let rx = stop_rx.clone();
    tasks.push(tokio::spawn(async move {
        if let Err(e) = server.run(stopped(rx)).await {
            tracing::error!(error = %e, "Diameter server stopped");
        }
    }));
    let push: Arc<dyn CxPush> = Arc::new(DiameterPush::new(
        server_handle.clone(),
        &settings.origin_host,
        &settings.origin_realm,
    ));

    let http_addr = match settings.http_listen {
        Some(addr) => {
            let l = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| HssError::Bind { addr, source })?;
            let bound = l
                .local_addr()
                .map_err(|source| HssError::Bind { addr, source })?;
            let app = router(ApiState {
                store: store.clone(),
                push: Some(push.clone()),
            });
            let rx = stop_rx.clone();
            tasks.push(tokio::spawn(async move {
                if let Err(e) = axum::serve(l, app)
                    .with_graceful_shutdown(stopped(rx))
                    .await
                {
                    tracing::error!(error = %e, "REST API stopped");
                }
            }));
            Some(bound)
        }
        None => None,
    };
    info!(
        diameter = %diameter_addr,
        http = ?http_addr,
        origin_host = %settings.origin_host,
        origin_realm = %settings.origin_realm,
        db = %settings.db_url,
        "HSS started"
    );
    Ok(RunningHss {
        diameter_addr,
        http_addr,
        db_url: settings.db_url,
        store,
        server: server_handle,
        push,
        stop,
        tasks,
    })
}

impl RunningHss {
    /// The bound Diameter (Cx) address.
    pub fn diameter_addr(&self) -> SocketAddr {
        self.diameter_addr
    }

    /// The bound REST API address, if enabled.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// The database URL in use.
    pub fn db_url(&self) -> &str {
        &self.db_url
    }

    /// The subscriber store (e.g. to provision a demo subscriber).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The Diameter server's peers.
    pub fn server(&self) -> &ServerHandle {
        &self.server
    }

    /// Sender of RTR/PPR.
    pub fn push(&self) -> Arc<dyn CxPush> {
        self.push.clone()
    }

    /// Stops everything: DPR to every peer, REST API drained, store closed.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        self.store.close().await;
        info!("HSS stopped");
    }
}

/// Runs an HSS until `shutdown` resolves.
pub async fn run(
    settings: HssSettings,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), HssError> {
    let hss = start(settings).await?;
    shutdown.await;
    hss.shutdown().await;
    Ok(())
}
