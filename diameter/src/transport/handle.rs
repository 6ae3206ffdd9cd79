//! [`PeerHandle`]: the cloneable way to send requests to one peer, whichever
//! connection currently carries it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::{watch, Notify};

use super::connection::{Connection, Control};
use super::{Error, PeerInfo, Result};
use crate::codec::Message;
use crate::dictionary::DisconnectCause;

/// Connection status as seen from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerStatus {
    /// Connecting or exchanging capabilities.
    Connecting,
    /// Open (RFC 3539 OKAY): requests are sent.
    Open,
    /// Reconnected, watchdog REOPEN: requests are sent, but another Open peer is
    /// preferred.
    Reopen,
    /// Watchdog SUSPECT: requests are refused so callers fail over.
    Suspect,
    /// DPR sent or connection ending.
    Closing,
    /// No connection (a client is waiting to reconnect).
    Closed,
}

/// State shared by a handle and the task(s) that own the connection.
#[derive(Debug)]
pub(crate) struct Slot {
    pub(crate) conn: RwLock<Option<Arc<Connection>>>,
    pub(crate) status: watch::Sender<PeerStatus>,
    pub(crate) request_timeout: Duration,
    pub(crate) stopped: AtomicBool,
    pub(crate) stop: Notify,
    pub(crate) label: String,
}

impl Slot {
    pub(crate) fn new(request_timeout: Duration, label: String) -> Arc<Slot> {
        Arc::new(Slot {
            conn: RwLock::new(None),
            status: watch::Sender::new(PeerStatus::Connecting),
            request_timeout,
            stopped: AtomicBool::new(false),
            stop: Notify::new(),
            label,
        })
    }

    pub(crate) fn set_conn(&self, c: Option<Arc<Connection>>) {
        if let Ok(mut g) = self.conn.write() {
            *g = c;
        }
    }

    fn conn(&self) -> Option<Arc<Connection>> {
        self.conn.read().ok().and_then(|g| g.clone())
    }
}

/// Sends requests to one peer. Cheap to clone; all clones share the connection.
///
/// For a client connection ([`super::connect`]), dropping the last clone stops
/// reconnecting and closes the connection (with DPR).
#[derive(Debug, Clone)]
pub struct PeerHandle {
    pub(crate) slot: Arc<Slot>,
    pub(crate) _owner: Option<Arc<StopOnDrop>>,
}

/// Stops a client connection when the last handle goes away.
#[derive(Debug)]
pub(crate) struct StopOnDrop(pub(crate) Arc<Slot>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.stopped.store(true, Ordering::SeqCst);
        self.0.stop.notify_waiters();
        if let Some(c) = self.0.conn() {
            c.control(Control::Close(DisconnectCause::Rebooting));
        }
    }
}

impl PeerHandle {
    /// Sends `request` and waits for its answer with the default timeout.
    ///
    /// Hop-by-Hop is always assigned here; End-to-End is assigned when it is 0
    /// (keep it, and set the T bit, when retransmitting after failover, RFC 6733
    /// §5.5.4).
    pub async fn request(&self, request: Message) -> Result<Message> {
        self.request_with_timeout(request, self.slot.request_timeout)
            .await
    }

    /// As [`PeerHandle::request`] with an explicit timeout.
    pub async fn request_with_timeout(
        &self,
        request: Message,
        timeout: Duration,
    ) -> Result<Message> {
        match self.slot.conn() {
            Some(c) => c.request(request, timeout).await,
            None => Err(Error::NotConnected),
        }
    }

    /// Current status.
    pub fn status(&self) -> PeerStatus {
        *self.slot.status.borrow()
    }

    /// Whether requests can be sent now.
    pub fn is_usable(&self) -> bool {
        matches!(self.status(), PeerStatus::Open | PeerStatus::Reopen)
    }

    /// What the peer advertised, once capabilities were exchanged.
    pub fn info(&self) -> Option<PeerInfo> {
        self.slot.conn().and_then(|c| c.info().cloned())
    }

    /// A label for logs (remote address or configured peer).
    pub fn label(&self) -> &str {
        &self.slot.label
    }

    /// Waits until the peer is usable (Open or Reopen) or `timeout` passes.
    pub async fn wait_open(&self, timeout: Duration) -> Result<()> {
        self.wait_status(timeout, |s| {
            matches!(s, PeerStatus::Open | PeerStatus::Reopen)
        })
        .await
        .map(|_| ())
    }

    /// Waits until the status satisfies `f` or `timeout` passes.
    pub async fn wait_status(
        &self,
        timeout: Duration,
        f: impl Fn(PeerStatus) -> bool,
    ) -> Result<PeerStatus> {
        let mut rx = self.slot.status.subscribe();
        let r =
            tokio::time::timeout(timeout, async { rx.wait_for(|s| f(*s)).await.map(|s| *s) }).await;
        match r {
            Ok(Ok(s)) => Ok(s),
            Ok(Err(_)) => Err(Error::NotConnected),
            Err(_) => Err(Error::Timeout(timeout)),
        }
    }

    /// Orderly shutdown: DPR (Disconnect-Cause REBOOTING), wait for DPA or the
    /// disconnect timeout, close; a client stops reconnecting.
    pub async fn close(&self) {
        self.close_with(DisconnectCause::Rebooting).await
    }

    /// As [`PeerHandle::close`] with a chosen Disconnect-Cause.
    pub async fn close_with(&self, cause: DisconnectCause) {
        self.slot.stopped.store(true, Ordering::SeqCst);
        self.slot.stop.notify_waiters();
        if let Some(c) = self.slot.conn() {
            c.control(Control::Close(cause));
            c.closed().await;
        }
        self.slot.status.send_replace(PeerStatus::Closed);
    }
}
