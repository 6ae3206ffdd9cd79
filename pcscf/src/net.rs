//! SIP over UDP and TCP for this node (RFC 3261 §18): datagram and stream listeners,
//! Content-Length framing of the stream (§18.3), responses on the connection a request came
//! on, and reuse of a UE's TCP connection for requests to it (RFC 5923 spirit).
//!
//! Local stand-in until `ims-sip-transport` offers the same; kept small and without SIP
//! knowledge beyond framing.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;

/// Largest SIP message accepted on a stream; a longer one closes the connection.
pub const MAX_MESSAGE: usize = 65_535;

/// Transport of one hop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// UDP datagrams.
    Udp,
    /// A TCP connection.
    Tcp,
}

impl Transport {
    /// Via transport token (RFC 3261 §20.42).
    pub fn via_token(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        }
    }
}

/// Identifier of one TCP connection of this node.
pub type ConnId = u64;

/// One received message (or datagram) and where it came from.
#[derive(Debug, Clone)]
pub struct Inbound {
    /// Transport it arrived on.
    pub transport: Transport,
    /// Local address it arrived at.
    pub local: SocketAddr,
    /// Address of the sender.
    pub peer: SocketAddr,
    /// The TCP connection, if any.
    pub conn: Option<ConnId>,
    /// The bytes (one datagram, or one framed message on a stream).
    pub data: Bytes,
}

/// Result of framing a stream buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// Not enough bytes yet.
    Incomplete,
    /// A message of this many bytes is at the start of the buffer.
    Complete(usize),
    /// Leading CRLFs (keep-alives, RFC 5626 §3.5.1) of this length to discard.
    KeepAlive(usize),
    /// The stream cannot be framed (bad Content-Length, too large): close it.
    Invalid,
}

/// Frames one SIP message at the start of `buf` on its Content-Length (RFC 3261 §18.3).
pub fn frame(buf: &[u8]) -> Frame {
    let lead = buf
        .iter()
        .take_while(|b| **b == b'\r' || **b == b'\n')
        .count();
    if lead > 0 {
        return Frame::KeepAlive(lead);
    }
    let Some(end) = find(buf, b"\r\n\r\n") else {
        return if buf.len() > MAX_MESSAGE {
            Frame::Invalid
        } else {
            Frame::Incomplete
        };
    };
    let head = &buf[..end];
    let mut length: Option<usize> = None;
    for line in head.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let name = trim(&line[..colon]);
        if name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l") {
            let value = trim(&line[colon + 1..]);
            let Some(n) = std::str::from_utf8(value)
                .ok()
                .and_then(|s| s.parse::<usize>().ok())
            else {
                return Frame::Invalid;
            };
            if length.is_some_and(|l| l != n) {
                return Frame::Invalid;
            }
            length = Some(n);
        }
    }
    let total = end + 4 + length.unwrap_or(0);
    if total > MAX_MESSAGE {
        Frame::Invalid
    } else if buf.len() < total {
        Frame::Incomplete
    } else {
        Frame::Complete(total)
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &s[start..end.max(start)]
}

struct Conn {
    peer: SocketAddr,
    tx: mpsc::UnboundedSender<Bytes>,
}

/// The node's sockets: UDP sockets and TCP connections, all feeding one inbound queue.
pub struct Net {
    udp: Mutex<Vec<Arc<UdpSocket>>>,
    conns: Mutex<HashMap<ConnId, Conn>>,
    by_peer: Mutex<HashMap<SocketAddr, ConnId>>,
    next_conn: AtomicU64,
    inbound: mpsc::UnboundedSender<Inbound>,
    tasks: Mutex<Vec<tokio::task::AbortHandle>>,
}

impl std::fmt::Debug for Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Net").finish_non_exhaustive()
    }
}

impl Net {
    /// A node without sockets yet; messages arrive on the returned receiver.
    pub fn new() -> (Arc<Self>, mpsc::UnboundedReceiver<Inbound>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Arc::new(Self {
                udp: Mutex::new(Vec::new()),
                conns: Mutex::new(HashMap::new()),
                by_peer: Mutex::new(HashMap::new()),
                next_conn: AtomicU64::new(1),
                inbound: tx,
                tasks: Mutex::new(Vec::new()),
            }),
            rx,
        )
    }

    /// Starts receiving on a bound UDP socket; the first one is the default sender.
    pub fn add_udp(self: &Arc<Self>, sock: UdpSocket) -> io::Result<SocketAddr> {
        let local = sock.local_addr()?;
        let sock = Arc::new(sock);
        lock(&self.udp).push(sock.clone());
        let me = Arc::downgrade(self);
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; MAX_MESSAGE + 1];
            loop {
                let (n, peer) = match sock.recv_from(&mut buf).await {
                    Ok(x) => x,
                    // ICMP port unreachable surfaces as an error on some systems: keep going.
                    Err(e) if e.kind() == io::ErrorKind::ConnectionReset => continue,
                    Err(e) => {
                        tracing::warn!(%local, error = %e, "udp receive failed");
                        continue;
                    }
                };
                let Some(net) = me.upgrade() else { break };
                let msg = Inbound {
                    transport: Transport::Udp,
                    local,
                    peer,
                    conn: None,
                    data: Bytes::copy_from_slice(&buf[..n]),
                };
                if net.inbound.send(msg).is_err() {
                    break;
                }
            }
        });
        lock(&self.tasks).push(task.abort_handle());
        Ok(local)
    }

    /// Starts accepting TCP connections on a bound listener.
    pub fn add_tcp(self: &Arc<Self>, listener: TcpListener) -> io::Result<SocketAddr> {
        let local = listener.local_addr()?;
        let me = Arc::downgrade(self);
        let task = tokio::spawn(async move {
            loop {
                let (stream, peer) = match listener.accept().await {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(%local, error = %e, "tcp accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Some(net) = me.upgrade() else { break };
                net.start_conn(stream, peer, local);
            }
        });
        lock(&self.tasks).push(task.abort_handle());
        Ok(local)
    }

    fn start_conn(
        self: &Arc<Self>,
        stream: TcpStream,
        peer: SocketAddr,
        local: SocketAddr,
    ) -> ConnId {
        let id = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let (tx, mut rx) = mpsc::unbounded_channel::<Bytes>();
        lock(&self.conns).insert(id, Conn { peer, tx });
        lock(&self.by_peer).insert(peer, id);
        let (mut rd, mut wr) = stream.into_split();
        let writer = tokio::spawn(async move {
            while let Some(b) = rx.recv().await {
                if wr.write_all(&b).await.is_err() {
                    break;
                }
            }
        });
        let me = Arc::downgrade(self);
        let reader = tokio::spawn(async move {
            let mut buf = BytesMut::with_capacity(4096);
            'conn: loop {
                match rd.read_buf(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                loop {
                    match frame(&buf) {
                        Frame::Incomplete => break,
                        Frame::KeepAlive(n) => {
                            let _ = buf.split_to(n);
                        }
                        Frame::Invalid => {
                            tracing::info!(%peer, "unframeable SIP on TCP: closing the connection");
                            break 'conn;
                        }
                        Frame::Complete(n) => {
                            let data = buf.split_to(n).freeze();
                            let Some(net) = me.upgrade() else { break 'conn };
                            let msg = Inbound {
                                transport: Transport::Tcp,
                                local,
                                peer,
                                conn: Some(id),
                                data,
                            };
                            if net.inbound.send(msg).is_err() {
                                break 'conn;
                            }
                        }
                    }
                }
            }
            if let Some(net) = me.upgrade() {
                net.drop_conn(id);
            }
        });
        let mut tasks = lock(&self.tasks);
        tasks.retain(|t| !t.is_finished());
        tasks.push(writer.abort_handle());
        tasks.push(reader.abort_handle());
        id
    }

    /// Stops every listener and connection task (sockets are closed).
    pub fn shutdown(&self) {
        for t in lock(&self.tasks).drain(..) {
            t.abort();
        }
        lock(&self.conns).clear();
        lock(&self.by_peer).clear();
    }

    fn drop_conn(&self, id: ConnId) {
        if let Some(c) = lock(&self.conns).remove(&id) {
            let mut by_peer = lock(&self.by_peer);
            if by_peer.get(&c.peer) == Some(&id) {
                by_peer.remove(&c.peer);
            }
        }
    }

    /// Whether the TCP connection is still open.
    pub fn conn_alive(&self, id: ConnId) -> bool {
        lock(&self.conns).contains_key(&id)
    }

    /// Sends `data` to `dest`: on `conn` if given and alive, else (TCP) on a connection to
    /// `dest` (reused, or opened from `from` when given), else (UDP) from `from` if it is
    /// one of our sockets, or the first socket of the family.
    pub async fn send(
        self: &Arc<Self>,
        transport: Transport,
        dest: SocketAddr,
        conn: Option<ConnId>,
        from: Option<SocketAddr>,
        data: Bytes,
    ) -> io::Result<()> {
        match transport {
            Transport::Udp => {
                let sock = {
                    let socks = lock(&self.udp);
                    let pick = from
                        .and_then(|f| {
                            socks
                                .iter()
                                .find(|s| s.local_addr().ok() == Some(f))
                                .cloned()
                        })
                        .or_else(|| {
                            socks
                                .iter()
                                .find(|s| {
                                    s.local_addr().is_ok_and(|a| a.is_ipv4() == dest.is_ipv4())
                                })
                                .cloned()
                        });
                    pick.ok_or_else(|| io::Error::other("no UDP socket"))?
                };
                sock.send_to(&data, dest).await.map(|_| ())
            }
            Transport::Tcp => {
                let existing = conn
                    .filter(|c| self.conn_alive(*c))
                    .or_else(|| lock(&self.by_peer).get(&dest).copied());
                let id = match existing {
                    Some(id) => id,
                    None => {
                        let connect = async {
                            match from {
                                // A protected client port (TS 33.203 §7.1): connect from it.
                                Some(f) => {
                                    let sock = if f.is_ipv4() {
                                        tokio::net::TcpSocket::new_v4()?
                                    } else {
                                        tokio::net::TcpSocket::new_v6()?
                                    };
                                    sock.set_reuseaddr(true)?;
                                    sock.bind(f)?;
                                    sock.connect(dest).await
                                }
                                None => TcpStream::connect(dest).await,
                            }
                        };
                        let stream =
                            tokio::time::timeout(std::time::Duration::from_secs(3), connect)
                                .await
                                .map_err(|_| {
                                    io::Error::new(io::ErrorKind::TimedOut, "tcp connect")
                                })??;
                        let local = stream.local_addr()?;
                        self.start_conn(stream, dest, local)
                    }
                };
                let conns = lock(&self.conns);
                let c = conns.get(&id).ok_or_else(|| {
                    io::Error::new(io::ErrorKind::NotConnected, "connection closed")
                })?;
                c.tx.send(data)
                    .map_err(|_| io::Error::new(io::ErrorKind::NotConnected, "connection closed"))
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_on_content_length() {
        let m = b"OPTIONS sip:a SIP/2.0\r\nl: 3\r\n\r\nabcNEXT";
        assert_eq!(frame(m), Frame::Complete(m.len() - 4));
        assert_eq!(frame(&m[..20]), Frame::Incomplete);
        assert_eq!(frame(b"\r\n\r\nOPTIONS"), Frame::KeepAlive(4));
        assert_eq!(
            frame(b"A sip:a SIP/2.0\r\nContent-Length: -999\r\n\r\n"),
            Frame::Invalid
        );
        assert_eq!(
            frame(b"A sip:a SIP/2.0\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"),
            Frame::Invalid
        );
        assert_eq!(
            frame(b"A sip:a SIP/2.0\r\nContent-Length: 9999\r\n\r\nab"),
            Frame::Incomplete
        );
    }
}
