//! TCP: accepting, connecting, and the per-connection reader that frames the stream
//! on Content-Length (RFC 3261 §18.3) with `ims_sip_core::framing`, answers RFC 5626
//! §3.5.1 keep-alive pings (`CRLFCRLF` → `CRLF`), closes the connection on framing
//! errors and after the idle timeout. Connections opened from a chosen local port
//! (the IPsec protected client port, TS 33.203 §7.1) are opened one at a time per
//! (local, remote) pair, and reset rather than left in TIME_WAIT when they close or
//! the process ends (see [`connect`]).

use std::collections::HashMap;
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
        register(&inner, stream, local, remote, false);
    }
}

/// Connects from a chosen local port under way or just done, by (local, remote): one
/// at a time per pair (each transport layer's table; entries go when nobody waits).
pub(crate) type Turns = HashMap<(SocketAddr, SocketAddr), Arc<tokio::sync::Mutex<()>>>;

/// Opens a connection to `remote` (from `local` when given) and registers it.
///
/// From a chosen `local` port there can be only one connection to `remote` (the
/// kernel refuses a second socket with the same four ports: "Cannot assign requested
/// address"), so concurrent sends that find none open (several NOTIFYs to a UE at
/// once) take turns here and the later ones use the connection the first opened.
///
/// Such a connection also gets SO_LINGER 0: closing it, or the end of the process (a
/// restart, a crash), resets it instead of keeping the port pair in TIME_WAIT for
/// 60 s. The IPsec SAs fix both ports (P-CSCF port-c to the UE's port-s), so a
/// TIME_WAIT left by one run would make the next run's connect from the same port-c
/// to the same UE fail until it expires, unless the UE used TCP timestamps (Linux
/// then reuses it).
pub(crate) async fn connect(
    inner: &Arc<Inner>,
    remote: SocketAddr,
    local: Option<SocketAddr>,
) -> Result<Arc<Conn>> {
    let Some(l) = local else {
        return open(inner, remote, None).await;
    };
    let turn = lock(&inner.connecting)
        .entry((l, remote))
        .or_default()
        .clone();
    let result = {
        let _turn = turn.lock().await;
        let opened = lock(&inner.conns).find(remote, Some(l)).cloned();
        match opened {
            Some(c) => Ok(c),
            None => open(inner, remote, Some(l)).await,
        }
    };
    let mut m = lock(&inner.connecting);
    // Only the table and this call hold it: nobody waits for this pair.
    if Arc::strong_count(&turn) == 2 {
        m.remove(&(l, remote));
    }
    result
}

async fn open(
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
    if local.is_some() {
        socket2::SockRef::from(&stream)
            .set_linger(Some(std::time::Duration::ZERO))
            .map_err(|e| io("set SO_LINGER", e))?;
    }
    let reset_on_close = local.is_some();
    let local = stream.local_addr().map_err(|e| io("local_addr", e))?;
    debug!(%local, %remote, "connected");
    Ok(register(inner, stream, local, remote, reset_on_close))
}

fn register(
    inner: &Arc<Inner>,
    stream: TcpStream,
    local: SocketAddr,
    remote: SocketAddr,
    reset_on_close: bool,
) -> Arc<Conn> {
    let (rd, wr) = stream.into_split();
    let id = inner.next_connection_id();
    let conn = Arc::new(Conn::new(
        id,
        local,
        remote,
        wr,
        inner.epoch,
        reset_on_close,
    ));
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

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Duration;

    use bytes::Bytes;
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpStream;

    use crate::{Target, TransportLayer, TransportOptions};

    const MSG: &[u8] = b"OPTIONS sip:ue SIP/2.0\r\nContent-Length: 0\r\n\r\n";

    /// Sockets of this network namespace in TIME_WAIT from `local` to `remote`
    /// (/proc/net/tcp, IPv4).
    fn time_wait(local: SocketAddr, remote: SocketAddr) -> usize {
        let port = |a: &str| {
            a.rsplit(':')
                .next()
                .and_then(|p| u16::from_str_radix(p, 16).ok())
        };
        std::fs::read_to_string("/proc/net/tcp")
            .unwrap_or_default()
            .lines()
            .skip(1)
            .filter(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.len() > 3
                    && port(f[1]) == Some(local.port())
                    && port(f[2]) == Some(remote.port())
                    && f[3] == "06"
            })
            .count()
    }

    /// Several sends from one chosen local port to one remote with no connection open
    /// yet (NOTIFYs to a UE's port-s from the protected port-c at once) all go out, on
    /// one connection.
    #[tokio::test]
    async fn concurrent_sends_from_a_chosen_port_share_one_connection() {
        let t = TransportLayer::without_handler(TransportOptions::default());
        let port_c = t.bind_tcp("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let ue = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = Target::tcp(ue.local_addr().unwrap()).from_local(port_c);
        let mut sends = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let t = t.clone();
            sends.spawn(async move { t.send_bytes(&target, Bytes::from_static(MSG)).await });
        }
        let mut ids = Vec::new();
        while let Some(r) = sends.join_next().await {
            let flow = r.unwrap().unwrap_or_else(|e| panic!("a send failed: {e}"));
            assert_eq!(flow.local, port_c);
            ids.push(flow.connection);
        }
        ids.dedup();
        assert_eq!(ids.len(), 1, "one connection for all sends: {ids:?}");
        let (mut s, peer) = ue.accept().await.unwrap();
        assert_eq!(peer, port_c);
        let mut got = Vec::new();
        while got.len() < 8 * MSG.len() {
            let mut buf = [0u8; 4096];
            let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
                .await
                .expect("all eight messages within 5 s")
                .unwrap();
            assert!(n > 0, "closed after {} bytes", got.len());
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got.len(), 8 * MSG.len());
        let second = tokio::time::timeout(Duration::from_millis(300), ue.accept()).await;
        assert!(second.is_err(), "a second connection was opened");
    }

    /// A transport that sent [`MSG`] from its TCP port `port_c` to a peer at `ue_addr`,
    /// and the peer's end of that connection with the message read.
    async fn connected_from_a_chosen_port() -> (TransportLayer, SocketAddr, SocketAddr, TcpStream) {
        let t = TransportLayer::without_handler(TransportOptions::default());
        let port_c = t.bind_tcp("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let ue = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let ue_addr = ue.local_addr().unwrap();
        let target = Target::tcp(ue_addr).from_local(port_c);
        t.send_bytes(&target, Bytes::from_static(MSG))
            .await
            .unwrap();
        let (mut s, _) = ue.accept().await.unwrap();
        let mut buf = [0u8; 4096];
        let n = s.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], MSG);
        (t, port_c, ue_addr, s)
    }

    /// A connection from a chosen local port is reset when this side goes away (as at
    /// a P-CSCF restart): no TIME_WAIT keeps the next run from connecting from the
    /// same port to the same peer.
    #[tokio::test]
    async fn connection_from_a_chosen_port_leaves_no_time_wait() {
        let (t, port_c, ue_addr, mut s) = connected_from_a_chosen_port().await;
        let mut buf = [0u8; 4096];
        t.shutdown();
        drop(t);
        // The UE reads to the end, then closes its side only later, as a UE does.
        loop {
            match tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(_)) => {}
                Err(_) => panic!("the connection was not closed within 5 s"),
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        drop(s);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            time_wait(port_c, ue_addr),
            0,
            "TIME_WAIT left from {port_c} to {ue_addr}"
        );
    }

    /// The same when the peer closes the moment it sees the connection end (a UE's
    /// reader thread does): a FIN from us first would let the peer's FIN put the four
    /// ports in TIME_WAIT before our reset (seen in a P-CSCF restart under SIGTERM).
    #[tokio::test]
    async fn no_time_wait_when_the_peer_closes_at_once() {
        for _ in 0..5 {
            let (t, port_c, ue_addr, mut s) = connected_from_a_chosen_port().await;
            let reader = tokio::spawn(async move {
                let mut buf = [0u8; 64];
                loop {
                    match tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await {
                        Ok(Ok(0)) | Ok(Err(_)) => return,
                        Ok(Ok(_)) => {}
                        Err(_) => panic!("the connection was not closed within 5 s"),
                    }
                }
                // `s` drops here: the peer's close follows the end at once.
            });
            t.close().await;
            drop(t);
            reader.await.unwrap();
            tokio::time::sleep(Duration::from_millis(200)).await;
            assert_eq!(
                time_wait(port_c, ue_addr),
                0,
                "TIME_WAIT left from {port_c} to {ue_addr}"
            );
        }
    }
}
