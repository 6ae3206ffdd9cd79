//! Starting the S-CSCF from its configuration file (what `main.rs` and the all-in-one
//! binary call): connect the Cx client, open the store, bind the listeners, run.

use crate::cx::Cx;
use crate::hss::{HssAdapter, ScscfCxEvents};
use crate::service::{Scscf, ServiceError, SipTimers};
use crate::settings::Settings;
use crate::store::Store;
use ims_config::{ScscfConfig, Transport};
use ims_hss_client as hc;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, UdpSocket};

/// The Cx client settings of `[diameter]`.
pub fn cx_client_config(cfg: &ScscfConfig) -> hc::CxClientConfig {
    let d = &cfg.diameter;
    let mut c = hc::CxClientConfig::new(
        d.peers.iter().map(|p| p.to_string()).collect(),
        &d.origin_host,
        &d.origin_realm,
        &d.destination_realm,
    );
    if !d.destination_host.is_empty() {
        c.destination_host = Some(d.destination_host.clone());
    }
    c.request_timeout = Duration::from_millis(d.request_timeout_ms);
    c.watchdog = Duration::from_secs(d.watchdog_s);
    c.reconnect_min = Duration::from_millis(d.reconnect_ms);
    c
}

/// Binds the first UDP listener (required) and the first TCP listener (optional) of
/// `[sip] listen`.
pub async fn bind(cfg: &ScscfConfig) -> Result<(UdpSocket, Option<TcpListener>), ServiceError> {
    let udp = cfg
        .sip
        .listen
        .iter()
        .find(|l| l.transport == Transport::Udp)
        .map(|l| l.addr)
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "no UDP listener in [sip] listen",
            )
        })?;
    let udp = UdpSocket::bind(udp).await?;
    let tcp = match cfg
        .sip
        .listen
        .iter()
        .find(|l| l.transport == Transport::Tcp)
    {
        Some(l) => Some(TcpListener::bind(l.addr).await?),
        None => None,
    };
    Ok((udp, tcp))
}

/// Runs with an injected HSS (tests, or a client the caller manages): opens the
/// configured database, binds the listeners, attaches `events` (RTR) if given, and
/// serves until `shutdown` resolves.
pub async fn run_from_config(
    cfg: &ScscfConfig,
    hss: Arc<dyn Cx>,
    events: Option<Arc<ScscfCxEvents>>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServiceError> {
    let store = Store::open(&cfg.database.url).await?;
    let (udp, tcp) = bind(cfg).await?;
    let timers = SipTimers {
        t1: Duration::from_millis(cfg.timers.t1_ms),
        t2: Duration::from_millis(cfg.timers.t2_ms),
    };
    let scscf = Scscf::new(Settings::from_config(cfg), hss, Some(store))
        .await?
        .with_timers(timers);
    if let Some(e) = events {
        e.attach(scscf.handle());
    }
    scscf.run_with_tcp(udp, tcp, shutdown).await
}

/// The whole node as `main.rs` runs it: starts a `CxClient` towards `[diameter] peers`
/// with the RTR/PPR handler, then [`run_from_config`]; closes the Diameter peers (DPR)
/// on shutdown.
pub async fn run(
    cfg: &ScscfConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServiceError> {
    let events = ScscfCxEvents::new();
    let client = hc::CxClient::start(cx_client_config(cfg), Some(events.clone()));
    let hss: Arc<dyn Cx> = Arc::new(HssAdapter::new(Arc::new(client.clone())));
    let r = run_from_config(cfg, hss, Some(events), shutdown).await;
    client.close().await;
    r
}
