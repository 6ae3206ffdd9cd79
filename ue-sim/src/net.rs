//! The UE's sockets (TS 33.203 §7.1, TS 24.229 §5.1.1.2): an unprotected flow for the
//! initial REGISTER, and the protected ports after sec-agree — requests leave from
//! port-c to the P-CSCF's port-s (UDP datagrams, or one TCP connection whose responses
//! come back on it), and requests from the network arrive at port-s (UDP or TCP).
//!
//! Every socket gets a reader task: responses go to the UE's single response channel;
//! requests (NOTIFY, MESSAGE, OPTIONS) are answered at once on the socket they came on
//! and counted in [`Inbound`].

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use ims_sip_core::{framing, Message, Method};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpSocket, TcpStream, UdpSocket};
use tokio::sync::{mpsc, Mutex, Notify};
use tokio::task::JoinHandle;

use crate::sipmsg::answer_request;

/// A response and the local port it arrived on.
#[derive(Debug)]
pub struct Received {
    /// The response.
    pub msg: Message,
    /// The local address it arrived at.
    pub local: SocketAddr,
}

/// Requests the network sent to this UE.
#[derive(Debug, Default)]
pub struct Inbound {
    /// NOTIFYs received (and answered 200).
    pub notify: AtomicU32,
    /// NOTIFYs whose reginfo says the UE's registration was terminated.
    pub notify_terminated: AtomicU32,
    /// Other requests (MESSAGE, OPTIONS, …).
    pub other: AtomicU32,
    /// Requests that arrived at the protected server port.
    pub at_port_s: AtomicU32,
    /// Woken on every request.
    pub changed: Notify,
    /// The last request's start line (for logs).
    pub last: std::sync::Mutex<String>,
}

impl Inbound {
    fn record(&self, req: &Message, at_port_s: bool) {
        if req.method() == Some(&Method::Notify) {
            self.notify.fetch_add(1, Ordering::SeqCst);
            let body = String::from_utf8_lossy(req.body());
            if body.contains("state=\"terminated\"") && !body.contains("state=\"active\"") {
                self.notify_terminated.fetch_add(1, Ordering::SeqCst);
            }
        } else {
            self.other.fetch_add(1, Ordering::SeqCst);
        }
        if at_port_s {
            self.at_port_s.fetch_add(1, Ordering::SeqCst);
        }
        if let Ok(mut l) = self.last.lock() {
            *l = req.start_line().to_string();
        }
        self.changed.notify_waiters();
    }
}

/// Where requests are sent.
#[derive(Debug, Clone)]
pub enum Sender {
    /// UDP from a bound socket to the P-CSCF.
    Udp {
        /// The socket (bound to the UE's source port).
        sock: Arc<UdpSocket>,
        /// The P-CSCF address.
        dest: SocketAddr,
    },
    /// One TCP connection.
    Tcp {
        /// Write half.
        writer: Arc<Mutex<OwnedWriteHalf>>,
        /// Local address of the connection.
        local: SocketAddr,
    },
}

impl Sender {
    /// Sends one message.
    pub async fn send(&self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Sender::Udp { sock, dest } => sock.send_to(bytes, *dest).await.map(|_| ()),
            Sender::Tcp { writer, .. } => writer.lock().await.write_all(bytes).await,
        }
    }

    /// The local address requests leave from.
    pub fn local(&self) -> std::io::Result<SocketAddr> {
        match self {
            Sender::Udp { sock, .. } => sock.local_addr(),
            Sender::Tcp { local, .. } => Ok(*local),
        }
    }

    /// Whether this is UDP (needs retransmissions).
    pub fn is_udp(&self) -> bool {
        matches!(self, Sender::Udp { .. })
    }
}

/// The reader tasks of one set of sockets; aborted on drop.
#[derive(Debug, Default)]
pub struct Tasks(Vec<JoinHandle<()>>);

impl Tasks {
    /// Number of tasks.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Stops every reader (closes the sockets they own).
    pub fn stop(&mut self) {
        for t in self.0.drain(..) {
            t.abort();
        }
    }
}

impl Drop for Tasks {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Shared context of the reader tasks.
#[derive(Clone)]
pub struct Sink {
    /// Responses go here.
    pub responses: mpsc::UnboundedSender<Received>,
    /// Requests are counted here.
    pub inbound: Arc<Inbound>,
}

fn handle(sink: &Sink, buf: Bytes, local: SocketAddr, at_port_s: bool) -> Option<Bytes> {
    let msg = match Message::parse(buf) {
        Ok(m) => m,
        Err(e) => {
            tracing::debug!(%local, error = %e, "unparsable SIP message dropped");
            return None;
        }
    };
    if msg.is_response() {
        let _ = sink.responses.send(Received { msg, local });
        None
    } else {
        let answer = answer_request(&msg);
        sink.inbound.record(&msg, at_port_s);
        Some(answer)
    }
}

/// Binds a UDP socket and starts its reader; requests are answered to their source.
pub async fn udp(
    local: SocketAddr,
    sink: &Sink,
    at_port_s: bool,
    tasks: &mut Tasks,
) -> std::io::Result<Arc<UdpSocket>> {
    let sock = Arc::new(UdpSocket::bind(local).await?);
    let bound = sock.local_addr()?;
    let s = sock.clone();
    let sink = sink.clone();
    tasks.0.push(tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        loop {
            let Ok((n, from)) = s.recv_from(&mut buf).await else {
                return;
            };
            if let Some(answer) = handle(&sink, Bytes::copy_from_slice(&buf[..n]), bound, at_port_s)
            {
                if let Err(e) = s.send_to(&answer, from).await {
                    tracing::warn!(%from, error = %e, "could not answer request");
                }
            }
        }
    }));
    Ok(sock)
}

fn spawn_tcp_reader(
    mut rd: tokio::net::tcp::OwnedReadHalf,
    wr: Arc<Mutex<OwnedWriteHalf>>,
    local: SocketAddr,
    sink: Sink,
    at_port_s: bool,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut buf = BytesMut::with_capacity(8192);
        loop {
            loop {
                match framing::check_frame(&buf) {
                    Ok(framing::Frame::Message(n)) => {
                        let m = buf.split_to(n).freeze();
                        if let Some(answer) = handle(&sink, m, local, at_port_s) {
                            if wr.lock().await.write_all(&answer).await.is_err() {
                                return;
                            }
                        }
                    }
                    Ok(framing::Frame::KeepAlive(n)) => {
                        let _ = buf.split_to(n);
                    }
                    Ok(framing::Frame::Incomplete) => break,
                    Err(e) => {
                        tracing::warn!(%local, error = %e, "TCP framing error; closing");
                        return;
                    }
                }
            }
            match rd.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
}

/// Connects from `local` (port 0: any) to `remote` and starts the reader.
pub async fn tcp_connect(
    local: SocketAddr,
    remote: SocketAddr,
    sink: &Sink,
    tasks: &mut Tasks,
) -> std::io::Result<Sender> {
    let sock = if local.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    sock.set_reuseaddr(true)?;
    sock.bind(local)?;
    let stream: TcpStream = sock.connect(remote).await?;
    stream.set_nodelay(true)?;
    let bound = stream.local_addr()?;
    let (rd, wr) = stream.into_split();
    let wr = Arc::new(Mutex::new(wr));
    tasks
        .0
        .push(spawn_tcp_reader(rd, wr.clone(), bound, sink.clone(), false));
    Ok(Sender::Tcp {
        writer: wr,
        local: bound,
    })
}

/// Listens on `local` for the network's TCP connections (to the protected server port).
pub async fn tcp_listen(local: SocketAddr, sink: &Sink, tasks: &mut Tasks) -> std::io::Result<()> {
    let sock = if local.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    sock.set_reuseaddr(true)?;
    sock.bind(local)?;
    let listener: TcpListener = sock.listen(64)?;
    let sink = sink.clone();
    tasks.0.push(tokio::spawn(async move {
        let mut readers = Tasks::default();
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                return;
            };
            tracing::debug!(%peer, %local, "network opened a TCP connection to the UE");
            let _ = stream.set_nodelay(true);
            let (rd, wr) = stream.into_split();
            readers.0.push(spawn_tcp_reader(
                rd,
                Arc::new(Mutex::new(wr)),
                local,
                sink.clone(),
                true,
            ));
        }
    }));
    Ok(())
}
