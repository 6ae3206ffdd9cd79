//! One TCP connection: the driver task (read, frame, decode, peer state machine,
//! timers, dispatch) and the writer task (batched writes).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tracing::{debug, info, trace, warn};

use super::handle::{PeerStatus, Slot};
use super::{Error, PeerInfo, RequestHandler, Result};
use crate::codec::{self, error_answer_for_raw, CommandFlags, Frame, Message, ResultCode};
use crate::dictionary::DisconnectCause;
use crate::peer::{CloseReason, LocalNode, Peer, PeerEvent, PeerState, PeerTimers, Role};

/// Commands to the driver.
#[derive(Debug)]
pub(crate) enum Control {
    /// Send DPR and close.
    Close(DisconnectCause),
}

/// Called by the driver on lifecycle events (server bookkeeping).
pub(crate) type EventHook = Arc<dyn Fn(&Arc<Connection>, &ConnEvent) + Send + Sync>;

/// Lifecycle events for the hook.
#[derive(Debug)]
pub(crate) enum ConnEvent {
    Opened,
    Closed,
}

/// Parameters of a connection.
pub(crate) struct ConnParams {
    pub local: Arc<LocalNode>,
    pub role: Role,
    pub timers: PeerTimers,
    pub reconnect: bool,
    pub handler: Option<Arc<dyn RequestHandler>>,
    pub max_message_len: usize,
    pub hook: Option<EventHook>,
}

const ST_CONNECTING: u8 = 0;
const ST_OPEN: u8 = 1;
const ST_REOPEN: u8 = 2;
const ST_SUSPECT: u8 = 3;
const ST_CLOSING: u8 = 4;
const ST_CLOSED: u8 = 5;

fn status_of(s: u8) -> PeerStatus {
    match s {
        ST_OPEN => PeerStatus::Open,
        ST_REOPEN => PeerStatus::Reopen,
        ST_SUSPECT => PeerStatus::Suspect,
        ST_CLOSING => PeerStatus::Closing,
        ST_CLOSED => PeerStatus::Closed,
        _ => PeerStatus::Connecting,
    }
}

/// Shared part of a connection.
pub(crate) struct Connection {
    tx: mpsc::UnboundedSender<Bytes>,
    control: mpsc::UnboundedSender<Control>,
    pending: Mutex<HashMap<u32, oneshot::Sender<Message>>>,
    hop_by_hop: AtomicU32,
    end_to_end: AtomicU32,
    state: AtomicU8,
    done: watch::Sender<bool>,
    info: OnceLock<PeerInfo>,
    remote_addr: SocketAddr,
    slot: Arc<Slot>,
    pub(crate) close_reason: Mutex<Option<CloseReason>>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("remote_addr", &self.remote_addr)
            .field("state", &status_of(self.state.load(Ordering::Relaxed)))
            .finish()
    }
}

/// RFC 6733 §3: End-to-End starts with the low 12 bits of the time in the high
/// 12 bits and random low 20 bits.
fn initial_end_to_end() -> u32 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0) as u32;
    ((secs & 0xfff) << 20) | (rand::random::<u32>() & 0x000f_ffff)
}

impl Connection {
    /// Starts driver and writer for `stream`; returns at once.
    pub(crate) fn spawn(stream: TcpStream, slot: Arc<Slot>, params: ConnParams) -> Arc<Connection> {
        let _ = stream.set_nodelay(true);
        let remote_addr = stream
            .peer_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        let (read, write) = stream.into_split();
        let (tx, rx) = mpsc::unbounded_channel();
        let (control, control_rx) = mpsc::unbounded_channel();
        let conn = Arc::new(Connection {
            tx,
            control,
            pending: Mutex::new(HashMap::new()),
            hop_by_hop: AtomicU32::new(rand::random()),
            end_to_end: AtomicU32::new(initial_end_to_end()),
            state: AtomicU8::new(ST_CONNECTING),
            done: watch::Sender::new(false),
            info: OnceLock::new(),
            remote_addr,
            slot,
            close_reason: Mutex::new(None),
        });
        conn.set_state(ST_CONNECTING);
        let writer = tokio::spawn(write_loop(write, rx, remote_addr));
        let c = conn.clone();
        tokio::spawn(async move {
            drive(c.clone(), read, control_rx, params).await;
            c.fail_pending();
            c.set_state(ST_CLOSED);
            let _ = tokio::time::timeout(Duration::from_secs(2), async {
                // The writer ends when every sender is gone; handles may still
                // hold the connection, so close the channel from here.
                c.close_channel();
                let _ = writer.await;
            })
            .await;
            c.done.send_replace(true);
        });
        conn
    }

    fn close_channel(&self) {
        // An empty Bytes is the writer's stop marker.
        let _ = self.tx.send(Bytes::new());
    }

    fn set_state(&self, s: u8) {
        self.state.store(s, Ordering::SeqCst);
        self.slot.status.send_replace(status_of(s));
    }

    pub(crate) fn info(&self) -> Option<&PeerInfo> {
        self.info.get()
    }

    pub(crate) fn control(&self, c: Control) {
        let _ = self.control.send(c);
    }

    /// Resolves when driver and writer have finished.
    pub(crate) async fn closed(&self) {
        let mut rx = self.done.subscribe();
        let _ = rx.wait_for(|d| *d).await;
    }

    fn fail_pending(&self) {
        if let Ok(mut p) = self.pending.lock() {
            // Dropping the senders wakes every waiter with ConnectionLost.
            p.clear();
        }
    }

    fn send_message(&self, m: &Message) {
        match m.to_bytes() {
            Ok(b) => {
                let _ = self.tx.send(b);
            }
            Err(e) => warn!(remote = %self.remote_addr, error = %e, "cannot encode message"),
        }
    }

    /// Sends a request and waits for the answer matched by Hop-by-Hop id.
    pub(crate) async fn request(&self, mut msg: Message, timeout: Duration) -> Result<Message> {
        match self.state.load(Ordering::SeqCst) {
            ST_OPEN | ST_REOPEN => {}
            _ => return Err(Error::NotConnected),
        }
        let hbh = self.hop_by_hop.fetch_add(1, Ordering::Relaxed);
        msg.header.hop_by_hop = hbh;
        if msg.header.end_to_end == 0 {
            msg.header.end_to_end = self.end_to_end.fetch_add(1, Ordering::Relaxed);
        }
        msg.header.flags.set(CommandFlags::REQUEST, true);
        let bytes = msg.to_bytes()?;
        let (tx, rx) = oneshot::channel();
        if let Ok(mut p) = self.pending.lock() {
            p.insert(hbh, tx);
        }
        if self.tx.send(bytes).is_err() {
            self.remove_pending(hbh);
            return Err(Error::ConnectionLost);
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_)) => Err(Error::ConnectionLost),
            Err(_) => {
                self.remove_pending(hbh);
                Err(Error::Timeout(timeout))
            }
        }
    }

    fn remove_pending(&self, hbh: u32) -> Option<oneshot::Sender<Message>> {
        self.pending.lock().ok().and_then(|mut p| p.remove(&hbh))
    }
}

async fn write_loop(
    mut w: OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<Bytes>,
    remote: SocketAddr,
) {
    const BATCH: usize = 64 * 1024;
    let mut buf = BytesMut::with_capacity(BATCH);
    let mut stop = false;
    while !stop {
        let Some(first) = rx.recv().await else { break };
        if first.is_empty() {
            stop = true;
        } else {
            buf.extend_from_slice(&first);
        }
        while !stop && buf.len() < BATCH {
            match rx.try_recv() {
                Ok(b) if b.is_empty() => stop = true,
                Ok(b) => buf.extend_from_slice(&b),
                Err(_) => break,
            }
        }
        if !buf.is_empty() {
            if let Err(e) = w.write_all(&buf).await {
                debug!(%remote, error = %e, "write failed");
                return;
            }
            buf.clear();
        }
    }
    let _ = w.shutdown().await;
}

fn now_std() -> std::time::Instant {
    Instant::now().into_std()
}

async fn drive(
    conn: Arc<Connection>,
    mut read: OwnedReadHalf,
    mut control_rx: mpsc::UnboundedReceiver<Control>,
    params: ConnParams,
) {
    let remote = conn.remote_addr;
    let mut peer = Peer::new(
        (*params.local).clone(),
        params.role,
        params.timers,
        now_std(),
        params.reconnect,
        rand::random(),
    );
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut read_open = true;
    loop {
        flush(&conn, &mut peer, &params);
        if peer.state() == PeerState::Closed {
            break;
        }
        if !read_open {
            // Transport gone: nothing more can arrive.
            break;
        }
        let deadline = peer.poll_timeout().map(Instant::from_std);
        if buf.capacity() - buf.len() < 16 * 1024 {
            buf.reserve(64 * 1024);
        }
        tokio::select! {
            r = read.read_buf(&mut buf) => match r {
                Ok(0) => {
                    debug!(%remote, "peer closed the connection");
                    read_open = false;
                }
                Err(e) => {
                    debug!(%remote, error = %e, "read failed");
                    read_open = false;
                }
                Ok(_) => {
                    if !process_frames(&conn, &mut peer, &params, &mut buf) {
                        read_open = false;
                    }
                }
            },
            _ = sleep_until(deadline) => {
                peer.handle_timeout(now_std());
            }
            c = control_rx.recv() => match c {
                Some(Control::Close(cause)) => peer.close(now_std(), cause),
                None => peer.close(now_std(), DisconnectCause::Rebooting),
            }
        }
    }
    flush(&conn, &mut peer, &params);
    if let Some(h) = &params.hook {
        h(&conn, &ConnEvent::Closed);
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Frames and handles every whole message in `buf`. Returns false when the
/// stream can no longer be framed.
fn process_frames(
    conn: &Arc<Connection>,
    peer: &mut Peer,
    params: &ConnParams,
    buf: &mut BytesMut,
) -> bool {
    loop {
        match codec::check_with_limit(buf, params.max_message_len) {
            Frame::Incomplete => return true,
            Frame::Invalid(e) => {
                warn!(remote = %conn.remote_addr, error = %e, "unframeable stream, closing");
                if let Some(ans) = error_answer_for_raw(
                    buf,
                    &e,
                    &params.local.origin_host,
                    &params.local.origin_realm,
                ) {
                    conn.send_message(&ans);
                }
                return false;
            }
            Frame::Complete(n) => {
                let frame = buf.split_to(n).freeze();
                let now = now_std();
                match Message::decode_bytes(frame.clone()) {
                    Ok(msg) => {
                        trace!(remote = %conn.remote_addr, code = msg.header.command_code, request = msg.is_request(), "received");
                        if let Some(app) = peer.handle_message(now, msg) {
                            dispatch(conn, peer, params, app);
                        }
                    }
                    Err(e) => {
                        peer.handle_traffic(now);
                        info!(remote = %conn.remote_addr, error = %e, code = e.result_code().code(), "malformed message");
                        if let Some(ans) = error_answer_for_raw(
                            &frame,
                            &e,
                            &params.local.origin_host,
                            &params.local.origin_realm,
                        ) {
                            conn.send_message(&ans);
                        }
                    }
                }
            }
        }
    }
}

fn dispatch(conn: &Arc<Connection>, peer: &Peer, params: &ConnParams, msg: Message) {
    if !msg.is_request() {
        match conn.remove_pending(msg.header.hop_by_hop) {
            Some(tx) => {
                let _ = tx.send(msg);
            }
            None => {
                debug!(remote = %conn.remote_addr, hbh = msg.header.hop_by_hop, "answer for no pending request (late?)")
            }
        }
        return;
    }
    let local = &params.local;
    let supported = peer
        .remote()
        .map(|r| r.supports(msg.header.application_id))
        .unwrap_or(false);
    let (Some(handler), true, Some(info)) =
        (params.handler.clone(), supported, conn.info().cloned())
    else {
        let rc = if supported {
            ResultCode::CommandUnsupported
        } else {
            ResultCode::ApplicationUnsupported
        };
        let ans = Message::error_answer(
            &msg,
            rc,
            &local.origin_host,
            &local.origin_realm,
            None,
            None,
        );
        conn.send_message(&ans);
        return;
    };
    let conn = conn.clone();
    tokio::spawn(async move {
        let header = msg.header;
        let mut ans = handler.handle(msg, &info).await;
        ans.header.hop_by_hop = header.hop_by_hop;
        ans.header.end_to_end = header.end_to_end;
        ans.header.command_code = header.command_code;
        ans.header.flags.set(CommandFlags::REQUEST, false);
        conn.send_message(&ans);
    });
}

/// Writes queued transmits and applies peer events.
fn flush(conn: &Arc<Connection>, peer: &mut Peer, params: &ConnParams) {
    while let Some(m) = peer.poll_transmit() {
        conn.send_message(&m);
    }
    while let Some(ev) = peer.poll_event() {
        match ev {
            PeerEvent::Opened(caps) => {
                info!(remote = %conn.remote_addr, peer = %caps.origin_host, realm = %caps.origin_realm, product = %caps.product_name, "capabilities exchanged");
                let _ = conn.info.set(PeerInfo {
                    remote_addr: conn.remote_addr,
                    capabilities: caps,
                });
                conn.set_state(if peer.state() == PeerState::Reopen {
                    ST_REOPEN
                } else {
                    ST_OPEN
                });
                if let Some(h) = &params.hook {
                    h(conn, &ConnEvent::Opened);
                }
            }
            PeerEvent::Suspect => {
                warn!(remote = %conn.remote_addr, "watchdog: peer suspect");
                conn.set_state(ST_SUSPECT);
                conn.fail_pending();
            }
            PeerEvent::Reopened => {
                info!(remote = %conn.remote_addr, "watchdog: peer open");
                conn.set_state(ST_OPEN);
            }
            PeerEvent::Closed(reason) => {
                info!(remote = %conn.remote_addr, ?reason, "peer closed");
                if let Ok(mut r) = conn.close_reason.lock() {
                    *r = Some(reason);
                }
                conn.set_state(ST_CLOSING);
            }
        }
    }
    if peer.state() == PeerState::Closing && conn.state.load(Ordering::SeqCst) != ST_CLOSING {
        conn.set_state(ST_CLOSING);
    }
}
