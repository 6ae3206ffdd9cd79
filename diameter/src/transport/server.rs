//! Server side: accept peers, keep them by Origin-Host, orderly shutdown.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tracing::{debug, info};

use super::connection::{ConnEvent, ConnParams, Connection, EventHook};
use super::handle::{PeerHandle, Slot};
use super::{PeerInfo, RequestHandler};
use crate::codec::DEFAULT_MAX_MESSAGE_LEN;
use crate::peer::{LocalNode, PeerTimers, Role};

/// Server settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Watchdog and capabilities timers for accepted peers.
    pub timers: PeerTimers,
    /// Default timeout of requests sent to peers (RTR, PPR).
    pub request_timeout: Duration,
    /// Largest message accepted.
    pub max_message_len: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            timers: PeerTimers::default(),
            request_timeout: Duration::from_secs(5),
            max_message_len: DEFAULT_MAX_MESSAGE_LEN,
        }
    }
}

struct Shared {
    local: Arc<LocalNode>,
    handler: Arc<dyn RequestHandler>,
    config: ServerConfig,
    by_host: Mutex<HashMap<String, PeerHandle>>,
    all: Mutex<HashMap<u64, PeerHandle>>,
    next_id: AtomicU64,
}

/// A Diameter server on one TCP listener.
pub struct Server {
    listener: TcpListener,
    shared: Arc<Shared>,
}

/// Access to a running server's peers.
#[derive(Clone)]
pub struct ServerHandle {
    shared: Arc<Shared>,
}

impl Server {
    /// Binds `addr` (port 0 picks one).
    pub async fn bind(
        addr: SocketAddr,
        local: LocalNode,
        handler: Arc<dyn RequestHandler>,
    ) -> std::io::Result<Server> {
        let listener = TcpListener::bind(addr).await?;
        Ok(Server::from_listener(
            listener,
            local,
            handler,
            ServerConfig::default(),
        ))
    }

    /// Uses an already bound listener.
    pub fn from_listener(
        listener: TcpListener,
        local: LocalNode,
        handler: Arc<dyn RequestHandler>,
        config: ServerConfig,
    ) -> Server {
        Server {
            listener,
            shared: Arc::new(Shared {
                local: Arc::new(local),
                handler,
                config,
                by_host: Mutex::new(HashMap::new()),
                all: Mutex::new(HashMap::new()),
                next_id: AtomicU64::new(1),
            }),
        }
    }

    /// Replaces the settings. Only effective before [`Server::handle`] is called
    /// (the settings are shared with the handles).
    pub fn with_config(mut self, config: ServerConfig) -> Server {
        if let Some(s) = Arc::get_mut(&mut self.shared) {
            s.config = config;
        }
        self
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// A handle for finding peers while the server runs.
    pub fn handle(&self) -> ServerHandle {
        ServerHandle {
            shared: self.shared.clone(),
        }
    }

    /// Accepts peers until `shutdown` resolves, then sends DPR to every peer and
    /// waits (bounded by the disconnect timeout) for them to close.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                r = self.listener.accept() => match r {
                    Ok((stream, addr)) => self.accept(stream, addr),
                    Err(e) => {
                        debug!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                },
                _ = &mut shutdown => break,
            }
        }
        let peers: Vec<PeerHandle> = self
            .shared
            .all
            .lock()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        info!(peers = peers.len(), "server shutting down");
        let wait = self.shared.config.timers.disconnect_timeout + Duration::from_millis(500);
        let closes = peers.iter().map(|p| p.close());
        let _ = tokio::time::timeout(wait, futures_join_all(closes)).await;
        Ok(())
    }

    fn accept(&self, stream: tokio::net::TcpStream, addr: SocketAddr) {
        debug!(%addr, "accepted");
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let slot = Slot::new(self.shared.config.request_timeout, addr.to_string());
        let handle = PeerHandle {
            slot: slot.clone(),
            _owner: None,
        };
        if let Ok(mut all) = self.shared.all.lock() {
            all.insert(id, handle.clone());
        }
        let weak = Arc::downgrade(&self.shared);
        let hook: EventHook = Arc::new(move |conn: &Arc<Connection>, ev: &ConnEvent| {
            if let ConnEvent::Closed = ev {
                // Break the Slot <-> Connection reference cycle.
                handle.slot.set_conn(None);
            }
            let Some(shared) = weak.upgrade() else { return };
            let host = conn.info().map(|i| i.origin_host().to_ascii_lowercase());
            match ev {
                ConnEvent::Opened => {
                    if let (Some(host), Ok(mut m)) = (host, shared.by_host.lock()) {
                        m.insert(host, handle.clone());
                    }
                }
                ConnEvent::Closed => {
                    if let (Some(host), Ok(mut m)) = (host, shared.by_host.lock()) {
                        if m.get(&host)
                            .is_some_and(|h| Arc::ptr_eq(&h.slot, &handle.slot))
                        {
                            m.remove(&host);
                        }
                    }
                    if let Ok(mut all) = shared.all.lock() {
                        all.remove(&id);
                    }
                }
            }
        });
        let params = ConnParams {
            local: self.shared.local.clone(),
            role: Role::Responder,
            timers: self.shared.config.timers,
            reconnect: false,
            handler: Some(self.shared.handler.clone()),
            max_message_len: self.shared.config.max_message_len,
            hook: Some(hook),
        };
        let conn = Connection::spawn(stream, slot.clone(), params);
        slot.set_conn(Some(conn));
    }
}

impl ServerHandle {
    /// The open connection of the peer whose Origin-Host is `origin_host`
    /// (case-insensitive), e.g. to send it an RTR.
    pub fn peer_by_host(&self, origin_host: &str) -> Option<PeerHandle> {
        self.shared
            .by_host
            .lock()
            .ok()
            .and_then(|m| m.get(&origin_host.to_ascii_lowercase()).cloned())
    }

    /// Every peer that completed the capabilities exchange.
    pub fn peers(&self) -> Vec<PeerInfo> {
        self.shared
            .by_host
            .lock()
            .map(|m| m.values().filter_map(PeerHandle::info).collect())
            .unwrap_or_default()
    }

    /// Number of accepted connections (open or not yet).
    pub fn connection_count(&self) -> usize {
        self.shared.all.lock().map(|m| m.len()).unwrap_or(0)
    }
}

/// Waits for all futures (small local join to avoid a `futures` dependency).
async fn futures_join_all<F: Future<Output = ()>>(futs: impl Iterator<Item = F>) {
    let mut set = Vec::new();
    for f in futs {
        set.push(Box::pin(f));
    }
    for f in set {
        f.await;
    }
}
