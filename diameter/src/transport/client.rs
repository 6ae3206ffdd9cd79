//! Client side: connect, capabilities exchange, reconnect with backoff.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tracing::{debug, info, warn};

use super::connection::{ConnParams, Connection};
use super::handle::{PeerHandle, PeerStatus, Slot, StopOnDrop};
use super::RequestHandler;
use crate::codec::DEFAULT_MAX_MESSAGE_LEN;
use crate::peer::{LocalNode, PeerTimers, Role};

/// Client connection settings.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Peer address, `host:port` (resolved at every connection attempt).
    pub remote: String,
    /// Watchdog and capabilities timers.
    pub timers: PeerTimers,
    /// Default per-request timeout.
    pub request_timeout: Duration,
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// First reconnection delay; doubles up to `reconnect_max`.
    pub reconnect_min: Duration,
    /// Longest reconnection delay.
    pub reconnect_max: Duration,
    /// Largest message accepted.
    pub max_message_len: usize,
}

impl ClientConfig {
    /// Defaults for `remote`: Tw 30 s, request timeout 5 s, connect timeout 3 s,
    /// reconnect 100 ms doubling to 10 s.
    pub fn new(remote: impl Into<String>) -> ClientConfig {
        ClientConfig {
            remote: remote.into(),
            timers: PeerTimers::default(),
            request_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(3),
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(10),
            max_message_len: DEFAULT_MAX_MESSAGE_LEN,
        }
    }
}

/// Starts a client connection to `config.remote` in the background and returns
/// its handle at once; use [`PeerHandle::wait_open`] to wait for the CEA.
/// Incoming requests (e.g. RTR/PPR from an HSS) go to `handler`; without one they
/// are answered 3001. Must be called inside a tokio runtime.
pub fn connect(
    config: ClientConfig,
    local: LocalNode,
    handler: Option<Arc<dyn RequestHandler>>,
) -> PeerHandle {
    let slot = Slot::new(config.request_timeout, config.remote.clone());
    let handle = PeerHandle {
        slot: slot.clone(),
        _owner: Some(Arc::new(StopOnDrop(slot.clone()))),
    };
    tokio::spawn(supervise(config, Arc::new(local), handler, slot));
    handle
}

async fn supervise(
    config: ClientConfig,
    local: Arc<LocalNode>,
    handler: Option<Arc<dyn RequestHandler>>,
    slot: Arc<Slot>,
) {
    let mut backoff = config.reconnect_min;
    let mut was_open = false;
    while !slot.stopped.load(Ordering::SeqCst) {
        slot.status.send_replace(PeerStatus::Connecting);
        let attempt =
            tokio::time::timeout(config.connect_timeout, TcpStream::connect(&config.remote));
        let stream = tokio::select! {
            r = attempt => r,
            _ = slot.stop.notified() => break,
        };
        match stream {
            Ok(Ok(_)) if slot.stopped.load(Ordering::SeqCst) => break,
            Ok(Ok(stream)) => {
                debug!(remote = %config.remote, "connected");
                let params = ConnParams {
                    local: local.clone(),
                    role: Role::Initiator,
                    timers: config.timers,
                    reconnect: was_open,
                    handler: handler.clone(),
                    max_message_len: config.max_message_len,
                    hook: None,
                };
                let conn = Connection::spawn(stream, slot.clone(), params);
                slot.set_conn(Some(conn.clone()));
                let mut status = slot.status.subscribe();
                let opened = status
                    .wait_for(|s| !matches!(s, PeerStatus::Connecting))
                    .await
                    .map(|s| *s);
                let reached_open = matches!(opened, Ok(PeerStatus::Open | PeerStatus::Reopen));
                conn.closed().await;
                slot.set_conn(None);
                let reason = conn.close_reason.lock().ok().and_then(|r| r.clone());
                if reached_open {
                    was_open = true;
                    backoff = config.reconnect_min;
                    info!(remote = %config.remote, ?reason, "connection ended");
                } else {
                    warn!(remote = %config.remote, ?reason, "capabilities exchange failed");
                }
            }
            Ok(Err(e)) => debug!(remote = %config.remote, error = %e, "connect failed"),
            Err(_) => debug!(remote = %config.remote, "connect timed out"),
        }
        if slot.stopped.load(Ordering::SeqCst) {
            break;
        }
        slot.status.send_replace(PeerStatus::Closed);
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = slot.stop.notified() => break,
        }
        backoff = (backoff * 2).min(config.reconnect_max);
    }
    slot.status.send_replace(PeerStatus::Closed);
}
