//! TCP: accepting, connecting, and the per-connection reader that frames the stream
//! on Content-Length (RFC 3261 §18.3) with `ims_sip_core::framing`, answers RFC 5626
//! §3.5.1 keep-alive pings (`CRLFCRLF` → `CRLF`), closes the connection on framing
//! errors and after the idle timeout.

use std::net::SocketAddr;
use std::sync::{Arc, Weak};

use bytes::{Buf, Bytes, BytesMut};
use ims_sip_core::framing::{check_frame, Frame};
use tokio::io::AsyncReadExt;
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, trace, warn};

use crate::conn::Conn;
use crate::error::{Result, TransportError};
use crate::flow::Transport;
use crate::layer::Inner;
use crate::{lock, sockets};

const CRLF: Bytes = Bytes::from_static(b"\r\n");

pub(crate) async fn accept_loop(inner: Weak<Inner>, listener: TcpListener, local: SocketAddr) {
    loop {
        let (stream, remote) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and friends: back off a little instead of spinning.
                warn!(%local, error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(inner) = inner.upgrade() else {
            return;
        };
        if inner.is_shut() {
            return;
        }
        let limit = inner.opts.tcp_max_connections;
        if lock(&inner.conns).len() >= limit {
            warn!(%remote, limit, "connection limit reached: refusing connection");
            drop(stream);
            continue;
        }
        let _ = stream.set_nodelay(true);
        let local = stream.local_addr().unwrap_or(local);
        register(&inner, stream, local, remote);
    }
}

/// Opens a connection to `remote` (from `local` when given) and registers it.
pub(crate) async fn connect(
    inner: &Arc<Inner>,
    remote: SocketAddr,
    local: Option<SocketAddr>,
) -> Result<Arc<Conn>> {
    let limit = inner.opts.tcp_max_connections;
    if lock(&inner.conns).len() >= limit {
        return Err(TransportError::ConnectionLimit(limit));
    }
    let io = |op, source| TransportError::Io { op, remote, source };
    let socket = sockets::tcp_connector(remote, local).map_err(|e| io("bind tcp", e))?;
    let stream = tokio::time::timeout(inner.opts.tcp_connect_timeout, socket.connect(remote))
        .await
        .map_err(|_| TransportError::ConnectTimeout(remote))?
        .map_err(|e| io("connect", e))?;
    let local = stream.local_addr().map_err(|e| io("local_addr", e))?;
    debug!(%local, %remote, "connected");
    Ok(register(inner, stream, local, remote))
}

fn register(
    inner: &Arc<Inner>,
    stream: TcpStream,
    local: SocketAddr,
    remote: SocketAddr,
) -> Arc<Conn> {
    let (rd, wr) = stream.into_split();
    let id = inner.next_connection_id();
    let conn = Arc::new(Conn::new(id, local, remote, wr, inner.epoch));
    lock(&inner.conns).insert(conn.clone());
    let task = tokio::spawn(read_loop(Arc::downgrade(inner), conn.clone(), rd));
    conn.set_reader(task.abort_handle());
    if conn.is_closed() {
        task.abort();
    }
    debug!(conn = %id, %local, %remote, "connection open");
    conn
}

async fn read_loop(inner: Weak<Inner>, conn: Arc<Conn>, mut rd: OwnedReadHalf) {
    let reason = read_messages(&inner, &conn, &mut rd).await;
    debug!(conn = %conn.id, remote = %conn.remote, reason, "closing connection");
    if let Some(inner) = inner.upgrade() {
        conn.shutdown_write().await;
        inner.remove_conn(conn.id);
    }
}

/// Reads until the connection must close; returns why.
async fn read_messages(
    inner: &Weak<Inner>,
    conn: &Arc<Conn>,
    rd: &mut OwnedReadHalf,
) -> &'static str {
    let (idle, max) = match inner.upgrade() {
        Some(i) => (i.opts.tcp_idle_timeout, i.opts.max_message_size),
        None => return "shut down",
    };
    let mut buf = BytesMut::with_capacity(8 * 1024);
    loop {
        // Hand over every complete frame in the buffer.
        loop {
            match check_frame(&buf) {
                Ok(Frame::Incomplete) => break,
                Ok(Frame::KeepAlive(n)) => {
                    // Wait for the rest of a ping split across segments.
                    if n < 4 && n == buf.len() && b"\r\n\r\n".starts_with(&buf[..]) {
                        break;
                    }
                    let ping = buf.starts_with(b"\r\n\r\n");
                    buf.advance(n);
                    if ping {
                        trace!(conn = %conn.id, "keep-alive ping: pong");
                        if conn.write(&CRLF).await.is_err() {
                            return "write failed";
                        }
                    }
                }
                Ok(Frame::Message(n)) => {
                    if n > max {
                        return "message too large";
                    }
                    let data = buf.split_to(n).freeze();
                    let Some(i) = inner.upgrade() else {
                        return "shut down";
                    };
                    if let Some(reply) =
                        i.on_message(data, conn.remote, conn.local, Transport::Tcp, Some(conn.id))
                    {
                        if conn.write(&reply).await.is_err() {
                            return "write failed";
                        }
                    }
                }
                Err(e) => {
                    warn!(conn = %conn.id, remote = %conn.remote, error = %e, "unrecoverable framing error");
                    return "framing error";
                }
            }
        }
        if buf.len() > max {
            return "message too large";
        }
        if buf.capacity() - buf.len() < 2048 {
            buf.reserve(8 * 1024);
        }
        let deadline = tokio::time::Instant::from_std(conn.idle_deadline(idle));
        match tokio::time::timeout_at(deadline, rd.read_buf(&mut buf)).await {
            Ok(Ok(0)) => return "closed by peer",
            Ok(Ok(_)) => conn.touch(),
            Ok(Err(_)) => return "read error",
            Err(_) => {
                if std::time::Instant::now() >= conn.idle_deadline(idle) {
                    return "idle timeout";
                }
            }
        }
    }
}
