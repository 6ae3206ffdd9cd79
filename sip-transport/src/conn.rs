//! TCP connections: the table (by id and by remote address, with a size limit) and
//! one connection's writer. Reading is in [`crate::tcp`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::task::AbortHandle;

use crate::flow::{ConnectionId, Flow, Transport};
use crate::lock;

/// One open TCP connection.
pub(crate) struct Conn {
    pub(crate) id: ConnectionId,
    pub(crate) local: SocketAddr,
    pub(crate) remote: SocketAddr,
    /// `None` only while the connection is dropped.
    writer: tokio::sync::Mutex<Option<OwnedWriteHalf>>,
    /// Reset rather than close with a FIN (connections from a chosen local port, see
    /// `crate::tcp::connect`): no FIN on shutdown or drop, SO_LINGER 0 does the rest.
    reset_on_close: bool,
    /// Milliseconds since `epoch` of the last read or write.
    last_activity: AtomicU64,
    epoch: Instant,
    closed: AtomicBool,
    reader: std::sync::Mutex<Option<AbortHandle>>,
}

impl Conn {
    pub(crate) fn new(
        id: ConnectionId,
        local: SocketAddr,
        remote: SocketAddr,
        writer: OwnedWriteHalf,
        epoch: Instant,
        reset_on_close: bool,
    ) -> Conn {
        let c = Conn {
            id,
            local,
            remote,
            writer: tokio::sync::Mutex::new(Some(writer)),
            reset_on_close,
            last_activity: AtomicU64::new(0),
            epoch,
            closed: AtomicBool::new(false),
            reader: std::sync::Mutex::new(None),
        };
        c.touch();
        c
    }

    pub(crate) fn flow(&self) -> Flow {
        Flow {
            transport: Transport::Tcp,
            local: self.local,
            remote: self.remote,
            connection: Some(self.id),
        }
    }

    pub(crate) fn touch(&self) {
        let ms = self.epoch.elapsed().as_millis() as u64;
        self.last_activity.store(ms, Ordering::Relaxed);
    }

    /// When the connection becomes idle for `idle` if nothing happens before.
    pub(crate) fn idle_deadline(&self, idle: Duration) -> Instant {
        self.epoch + Duration::from_millis(self.last_activity.load(Ordering::Relaxed)) + idle
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    pub(crate) fn set_reader(&self, h: AbortHandle) {
        *lock(&self.reader) = Some(h);
    }

    /// Marks closed and stops the reader (the table entry is removed by the caller).
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        if let Some(h) = lock(&self.reader).take() {
            h.abort();
        }
    }

    /// Writes one whole message (or keep-alive) atomically with respect to other writers.
    pub(crate) async fn write(&self, data: &Bytes) -> std::io::Result<()> {
        if self.is_closed() {
            return Err(std::io::ErrorKind::NotConnected.into());
        }
        let mut w = self.writer.lock().await;
        let w = w.as_mut().ok_or(std::io::ErrorKind::NotConnected)?;
        w.write_all(data).await?;
        self.touch();
        Ok(())
    }

    /// Half-closes our side (FIN) after pending writes; nothing for a connection that
    /// is reset on close (a FIN first would let the peer's FIN put the four ports in
    /// TIME_WAIT before the reset).
    pub(crate) async fn shutdown_write(&self) {
        if self.reset_on_close {
            return;
        }
        let mut w = self.writer.lock().await;
        if let Some(w) = w.as_mut() {
            let _ = w.shutdown().await;
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        // Dropping an `OwnedWriteHalf` shuts the write side down (a FIN); `forget`
        // leaves the socket to the read half, whose drop closes it: with SO_LINGER 0,
        // a reset.
        if self.reset_on_close {
            if let Some(w) = self.writer.get_mut().take() {
                w.forget();
            }
        }
    }
}

/// All open connections.
#[derive(Default)]
pub(crate) struct ConnTable {
    by_id: HashMap<ConnectionId, Arc<Conn>>,
    by_remote: HashMap<SocketAddr, Vec<ConnectionId>>,
}

impl ConnTable {
    pub(crate) fn len(&self) -> usize {
        self.by_id.len()
    }

    pub(crate) fn insert(&mut self, c: Arc<Conn>) {
        self.by_remote.entry(c.remote).or_default().push(c.id);
        self.by_id.insert(c.id, c);
    }

    pub(crate) fn remove(&mut self, id: ConnectionId) -> Option<Arc<Conn>> {
        let c = self.by_id.remove(&id)?;
        if let Some(v) = self.by_remote.get_mut(&c.remote) {
            v.retain(|x| *x != id);
            if v.is_empty() {
                self.by_remote.remove(&c.remote);
            }
        }
        Some(c)
    }

    pub(crate) fn get(&self, id: ConnectionId) -> Option<&Arc<Conn>> {
        self.by_id.get(&id).filter(|c| !c.is_closed())
    }

    /// The newest open connection to `remote` (from `local` when given).
    pub(crate) fn find(&self, remote: SocketAddr, local: Option<SocketAddr>) -> Option<&Arc<Conn>> {
        self.by_remote
            .get(&remote)?
            .iter()
            .rev()
            .filter_map(|id| self.by_id.get(id))
            .find(|c| !c.is_closed() && local.is_none_or(|l| l == c.local))
    }

    pub(crate) fn all(&self) -> impl Iterator<Item = &Arc<Conn>> {
        self.by_id.values()
    }

    pub(crate) fn drain(&mut self) -> Vec<Arc<Conn>> {
        self.by_remote.clear();
        self.by_id.drain().map(|(_, c)| c).collect()
    }
}
