//! [`TransportLayer`]: the SIP transport layer of one node (RFC 3261 §18) — its UDP
//! sockets and TCP listeners, the TCP connection table, receiving (parse, Via
//! stamping, 400 for unparsable requests) and sending (requests to a [`Target`],
//! responses back along the request's [`Flow`]).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Instant;

use bytes::Bytes;
use ims_config::Listen;
use ims_sip_core::builder::ResponseBuilder;
use ims_sip_core::Message;
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::conn::{Conn, ConnTable};
use crate::error::{Result, TransportError};
use crate::flow::{ConnectionId, Flow, Incoming, Target, Transport};
use crate::handler::IncomingHandler;
use crate::options::TransportOptions;
use crate::via::{response_destination, stamp_received, DEFAULT_PORT};
use crate::{lock, read, sockets, write};

/// Largest UDP payload over IPv4.
const MAX_UDP_PAYLOAD: usize = 65_507;

pub(crate) struct UdpEntry {
    pub(crate) local: SocketAddr,
    pub(crate) socket: Arc<UdpSocket>,
    task: JoinHandle<()>,
}

struct ListenerEntry {
    local: SocketAddr,
    task: JoinHandle<()>,
}

pub(crate) struct Inner {
    pub(crate) opts: TransportOptions,
    handler: OnceLock<Arc<dyn IncomingHandler>>,
    pub(crate) udp: RwLock<Vec<UdpEntry>>,
    listeners: Mutex<Vec<ListenerEntry>>,
    pub(crate) conns: Mutex<ConnTable>,
    /// Connects from a chosen local port in progress (`crate::tcp::connect`).
    pub(crate) connecting: Mutex<crate::tcp::Turns>,
    next_conn: AtomicU64,
    pub(crate) epoch: Instant,
    shut: AtomicBool,
}

/// The transport layer of one node. Cheap to clone (a handle).
#[derive(Clone)]
pub struct TransportLayer {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for TransportLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransportLayer")
            .field("local", &self.local_addrs())
            .field("connections", &self.connection_count())
            .finish()
    }
}

impl TransportLayer {
    /// A transport layer with no sockets yet, delivering to `handler`.
    pub fn new(opts: TransportOptions, handler: Arc<dyn IncomingHandler>) -> TransportLayer {
        let t = TransportLayer::without_handler(opts);
        t.set_handler(handler);
        t
    }

    /// A transport layer whose handler is set later with [`Self::set_handler`]
    /// (messages received before are dropped). For layers built on top of it.
    pub fn without_handler(opts: TransportOptions) -> TransportLayer {
        TransportLayer {
            inner: Arc::new(Inner {
                opts,
                handler: OnceLock::new(),
                udp: RwLock::new(Vec::new()),
                listeners: Mutex::new(Vec::new()),
                conns: Mutex::new(ConnTable::default()),
                connecting: Mutex::default(),
                next_conn: AtomicU64::new(1),
                epoch: Instant::now(),
                shut: AtomicBool::new(false),
            }),
        }
    }

    /// Sets the handler (only the first call has an effect; returns false otherwise).
    pub fn set_handler(&self, handler: Arc<dyn IncomingHandler>) -> bool {
        self.inner.handler.set(handler).is_ok()
    }

    /// The options in force.
    pub fn options(&self) -> &TransportOptions {
        &self.inner.opts
    }

    /// Binds every listener of a `[sip] listen` list; returns the bound addresses
    /// (port 0 resolved) in the same order.
    pub async fn bind_all(&self, listen: &[Listen]) -> Result<Vec<SocketAddr>> {
        let mut out = Vec::with_capacity(listen.len());
        for l in listen {
            out.push(self.bind(l.transport, l.addr).await?);
        }
        Ok(out)
    }

    /// Binds one UDP socket or TCP listener; returns the bound address.
    pub async fn bind(&self, transport: Transport, addr: SocketAddr) -> Result<SocketAddr> {
        match transport {
            Transport::Udp => self.bind_udp(addr).await,
            Transport::Tcp => self.bind_tcp(addr).await,
        }
    }

    /// Binds a UDP socket (a listener, or an IPsec protected port at run time) and
    /// starts receiving on it. It can then be the source of [`Target::from_local`].
    pub async fn bind_udp(&self, addr: SocketAddr) -> Result<SocketAddr> {
        let socket = sockets::udp(addr, self.inner.opts.udp_recv_buffer).map_err(|source| {
            TransportError::Io {
                op: "bind udp",
                remote: addr,
                source,
            }
        })?;
        self.add_udp_socket(socket)
    }

    /// Adopts an already bound UDP socket (tests and callers that bind themselves).
    pub fn add_udp_socket(&self, socket: UdpSocket) -> Result<SocketAddr> {
        let local = socket.local_addr().map_err(|source| TransportError::Io {
            op: "local_addr",
            remote: SocketAddr::from(([0, 0, 0, 0], 0)),
            source,
        })?;
        let socket = Arc::new(socket);
        let task = tokio::spawn(crate::udp::receive_loop(
            Arc::downgrade(&self.inner),
            socket.clone(),
            local,
        ));
        write(&self.inner.udp).push(UdpEntry {
            local,
            socket,
            task,
        });
        info!(%local, "listening on udp");
        Ok(local)
    }

    /// Binds a TCP listener (SO_REUSEPORT, so connections can also be opened from
    /// this port) and starts accepting.
    pub async fn bind_tcp(&self, addr: SocketAddr) -> Result<SocketAddr> {
        let listener = sockets::tcp_listener(addr).map_err(|source| TransportError::Io {
            op: "bind tcp",
            remote: addr,
            source,
        })?;
        self.add_tcp_listener(listener)
    }

    /// Adopts an already listening TCP socket.
    pub fn add_tcp_listener(&self, listener: tokio::net::TcpListener) -> Result<SocketAddr> {
        let local = listener.local_addr().map_err(|source| TransportError::Io {
            op: "local_addr",
            remote: SocketAddr::from(([0, 0, 0, 0], 0)),
            source,
        })?;
        let task = tokio::spawn(crate::tcp::accept_loop(
            Arc::downgrade(&self.inner),
            listener,
            local,
        ));
        lock(&self.inner.listeners).push(ListenerEntry { local, task });
        info!(%local, "listening on tcp");
        Ok(local)
    }

    /// Stops a UDP socket or TCP listener (open TCP connections from it stay until
    /// closed). Returns false when nothing was bound there.
    pub fn unbind(&self, transport: Transport, local: SocketAddr) -> bool {
        match transport {
            Transport::Udp => {
                let mut v = write(&self.inner.udp);
                match v.iter().position(|e| e.local == local) {
                    Some(i) => {
                        v.remove(i).task.abort();
                        true
                    }
                    None => false,
                }
            }
            Transport::Tcp => {
                let mut v = lock(&self.inner.listeners);
                match v.iter().position(|e| e.local == local) {
                    Some(i) => {
                        v.remove(i).task.abort();
                        true
                    }
                    None => false,
                }
            }
        }
    }

    /// Every bound socket: UDP sockets then TCP listeners, in binding order.
    pub fn local_addrs(&self) -> Vec<(Transport, SocketAddr)> {
        let mut out: Vec<_> = read(&self.inner.udp)
            .iter()
            .map(|e| (Transport::Udp, e.local))
            .collect();
        out.extend(
            lock(&self.inner.listeners)
                .iter()
                .map(|e| (Transport::Tcp, e.local)),
        );
        out
    }

    /// Number of open TCP connections.
    pub fn connection_count(&self) -> usize {
        lock(&self.inner.conns).len()
    }

    /// The flow of an open connection.
    pub fn connection(&self, id: ConnectionId) -> Option<Flow> {
        lock(&self.inner.conns).get(id).map(|c| c.flow())
    }

    /// Every open connection's flow.
    pub fn connections(&self) -> Vec<Flow> {
        lock(&self.inner.conns).all().map(|c| c.flow()).collect()
    }

    /// Closes a TCP connection (FIN after pending writes).
    pub async fn close_connection(&self, id: ConnectionId) -> bool {
        let c = lock(&self.inner.conns).remove(id);
        match c {
            Some(c) => {
                c.shutdown_write().await;
                c.close();
                if let Some(h) = self.inner.handler.get() {
                    h.connection_closed(c.flow());
                }
                true
            }
            None => false,
        }
    }

    /// Stops every socket and closes every connection (the sockets are released
    /// shortly after; [`Self::close`] waits for that).
    pub fn shutdown(&self) {
        self.inner.shut.store(true, Ordering::Relaxed);
        self.inner.abort_all();
    }

    /// [`Self::shutdown`], then waits until every socket is closed, so the same
    /// addresses can be bound again at once (a node restarted in-process).
    pub async fn close(&self) {
        self.inner.shut.store(true, Ordering::Relaxed);
        let udp: Vec<_> = write(&self.inner.udp).drain(..).collect();
        let listeners: Vec<_> = lock(&self.inner.listeners).drain(..).collect();
        for c in lock(&self.inner.conns).drain() {
            c.close();
        }
        for e in udp {
            e.task.abort();
            let _ = e.task.await;
        }
        for e in listeners {
            e.task.abort();
            let _ = e.task.await;
        }
    }

    /// Sends a request (or any message) to `target`. UDP: from `target.local` or a
    /// socket of the right family. TCP: on `target.connection`, else on an open
    /// connection to `target.remote` (connections the peer opened included, RFC 5923
    /// spirit), else on a new one. Returns the flow used.
    pub async fn send(&self, target: &Target, msg: &Message) -> Result<Flow> {
        let r = self.send_bytes(target, msg.as_bytes().clone()).await;
        match &r {
            Ok(flow) => {
                debug!(call_id = msg.call_id().unwrap_or(""), %flow, start = msg.start_line(), "sent")
            }
            Err(e) => {
                warn!(call_id = msg.call_id().unwrap_or(""), remote = %target.remote, error = %e, start = msg.start_line(), "send failed")
            }
        }
        r
    }

    /// [`Self::send`] for octets (keep-alives, pre-built messages).
    pub async fn send_bytes(&self, target: &Target, data: Bytes) -> Result<Flow> {
        if self.inner.shut.load(Ordering::Relaxed) {
            return Err(TransportError::Shutdown);
        }
        match target.transport {
            Transport::Udp => self.send_udp(target.local, target.remote, &data).await,
            Transport::Tcp => self.send_tcp(target, &data).await,
        }
    }

    /// Sends a response back along the request's flow: TCP on the connection the
    /// request came on (if it closed, a new connection to the Via's `received`
    /// address and sent-by port, RFC 3261 §18.2.2); UDP from the socket the request
    /// arrived on to the top Via's `received`/`rport` (RFC 3581 §4).
    pub async fn send_response(&self, flow: &Flow, response: &Message) -> Result<Flow> {
        let call_id = response.call_id().unwrap_or("");
        let data = response.as_bytes().clone();
        let r = match flow.transport {
            Transport::Udp => {
                let dest = response_destination(response, flow.remote);
                self.send_udp(Some(flow.local), dest, &data).await
            }
            Transport::Tcp => {
                let open = flow
                    .connection
                    .and_then(|id| lock(&self.inner.conns).get(id).cloned());
                match open {
                    Some(c) => self.write_conn(&c, &data).await,
                    None => {
                        let mut dest = response_destination(response, flow.remote);
                        if let Some(Ok(via)) = response.top_via() {
                            dest.set_port(via.port.unwrap_or(DEFAULT_PORT));
                        }
                        self.send_tcp(&Target::tcp(dest), &data).await
                    }
                }
            }
        };
        match &r {
            Ok(f) => debug!(call_id, flow = %f, start = response.start_line(), "response sent"),
            Err(e) => warn!(call_id, %flow, error = %e, "response not sent"),
        }
        r
    }

    /// Sends octets exactly along `flow` (same local socket, same remote address and
    /// port, same connection) — e.g. to a UE's protected client port.
    pub async fn send_on_flow(&self, flow: &Flow, data: Bytes) -> Result<Flow> {
        self.send_bytes(&Target::from(*flow), data).await
    }

    async fn send_udp(
        &self,
        local: Option<SocketAddr>,
        remote: SocketAddr,
        data: &Bytes,
    ) -> Result<Flow> {
        if data.len() > MAX_UDP_PAYLOAD {
            return Err(TransportError::TooLarge(data.len()));
        }
        let (local_addr, socket) =
            self.udp_socket_for(local, remote)
                .ok_or(TransportError::NoSocket {
                    transport: Transport::Udp,
                    local,
                    remote,
                })?;
        socket
            .send_to(data, remote)
            .await
            .map_err(|source| TransportError::Io {
                op: "send udp",
                remote,
                source,
            })?;
        Ok(Flow {
            transport: Transport::Udp,
            local: local_addr,
            remote,
            connection: None,
        })
    }

    /// The socket to send from: exactly `local`, or one bound to the unspecified
    /// address on its port; without `local`, the first socket of the right family,
    /// preferring one whose address is unspecified or in the same scope (loopback or
    /// not) as `remote`.
    pub(crate) fn udp_socket_for(
        &self,
        local: Option<SocketAddr>,
        remote: SocketAddr,
    ) -> Option<(SocketAddr, Arc<UdpSocket>)> {
        let v = read(&self.inner.udp);
        let same_family = |e: &&UdpEntry| e.local.is_ipv4() == remote.is_ipv4();
        let found = match local {
            Some(l) => v.iter().find(|e| e.local == l).or_else(|| {
                v.iter().find(|e| {
                    e.local.port() == l.port()
                        && e.local.ip().is_unspecified()
                        && e.local.is_ipv4() == l.is_ipv4()
                })
            }),
            None => v
                .iter()
                .filter(same_family)
                .find(|e| {
                    e.local.ip().is_unspecified()
                        || e.local.ip().is_loopback() == remote.ip().is_loopback()
                })
                .or_else(|| v.iter().find(same_family)),
        };
        found.map(|e| (e.local, e.socket.clone()))
    }

    async fn send_tcp(&self, target: &Target, data: &Bytes) -> Result<Flow> {
        let existing = {
            let t = lock(&self.inner.conns);
            target
                .connection
                .and_then(|id| t.get(id).cloned())
                .or_else(|| t.find(target.remote, target.local).cloned())
        };
        if let Some(c) = existing {
            match self.write_conn(&c, data).await {
                Ok(f) => return Ok(f),
                // A stale connection (peer closed, not yet noticed): open a new one.
                Err(e) => {
                    debug!(conn = %c.id, error = %e, "reused connection failed; reconnecting")
                }
            }
        }
        let c = crate::tcp::connect(&self.inner, target.remote, target.local).await?;
        self.write_conn(&c, data).await
    }

    async fn write_conn(&self, c: &Arc<Conn>, data: &Bytes) -> Result<Flow> {
        match c.write(data).await {
            Ok(()) => Ok(c.flow()),
            Err(source) => {
                self.inner.remove_conn(c.id);
                Err(TransportError::Io {
                    op: "send tcp",
                    remote: c.remote,
                    source,
                })
            }
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.abort_all();
    }
}

impl Inner {
    fn abort_all(&self) {
        for e in write(&self.udp).drain(..) {
            e.task.abort();
        }
        for e in lock(&self.listeners).drain(..) {
            e.task.abort();
        }
        for c in lock(&self.conns).drain() {
            c.close();
        }
    }

    pub(crate) fn next_connection_id(&self) -> ConnectionId {
        ConnectionId(self.next_conn.fetch_add(1, Ordering::Relaxed))
    }

    pub(crate) fn is_shut(&self) -> bool {
        self.shut.load(Ordering::Relaxed)
    }

    pub(crate) fn remove_conn(&self, id: ConnectionId) {
        let removed = lock(&self.conns).remove(id);
        if let Some(c) = removed {
            c.close();
            debug!(conn = %id, remote = %c.remote, "connection closed");
            if let Some(h) = self.handler.get() {
                h.connection_closed(c.flow());
            }
        }
    }

    /// A message read from a socket: parse, stamp, deliver; answer an unparsable
    /// request with 400/505 when a response can be formed. Returns the octets of the
    /// error response to send back, if any.
    pub(crate) fn on_message(
        &self,
        data: Bytes,
        source: SocketAddr,
        local: SocketAddr,
        transport: Transport,
        connection: Option<ConnectionId>,
    ) -> Option<Bytes> {
        let received_at = Instant::now();
        match Message::parse(data) {
            Ok(m) => {
                let message = if m.is_request() {
                    stamp_received(m, source)
                } else {
                    m
                };
                debug!(
                    call_id = message.call_id().unwrap_or(""),
                    %source, %local, %transport,
                    start = message.start_line(),
                    "received"
                );
                match self.handler.get() {
                    Some(h) => h.handle(Incoming {
                        message,
                        source,
                        local,
                        transport,
                        connection,
                        received_at,
                        server_key: None,
                    }),
                    None => warn!(
                        call_id = message.call_id().unwrap_or(""),
                        "no handler: message dropped"
                    ),
                }
                None
            }
            Err(e) => {
                let call_id = e.message().and_then(|m| m.call_id()).unwrap_or("");
                match (e.response_status(), e.message()) {
                    (Some(status), Some(req)) => {
                        warn!(call_id, %source, %transport, error = %e, status = status.as_u16(), "unparsable request answered");
                        Some(
                            ResponseBuilder::new(req, status)
                                .reason(e.reason_phrase())
                                .build(),
                        )
                    }
                    _ => {
                        warn!(call_id, %source, %transport, error = %e, "unparsable message dropped");
                        None
                    }
                }
            }
        }
    }
}
