//! The S-CSCF SIP service on tokio: a UDP socket, RFC 3261 §17.2.2 non-INVITE server
//! transactions (retransmissions answered from a cache for Timer J = 64·T1), §17.1.2
//! non-INVITE client transactions for NOTIFY (Timer E retransmission, Timer F timeout),
//! §18.2.2 response routing along the top Via (`received`/`rport`), the expiry timer,
//! and the store writer. Everything protocol-level is in [`crate::core`].

use crate::core::Core;
use crate::cx::Cx;
use crate::model::fnv64;
use crate::notifier::RtrReason;
use crate::settings::{host_port_of, Settings};
use crate::sip::{param_of, Message, NameAddr, StartLine};
use crate::store::{Store, StoreError, WriterHandle};
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

/// Current UNIX time in seconds.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Errors starting the service.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// The registration store failed to open or load.
    #[error("registration store: {0}")]
    Store(#[from] StoreError),
    /// Socket error.
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
}

/// SIP timer values (RFC 3261 §17.1.1.1).
#[derive(Debug, Clone, Copy)]
pub struct SipTimers {
    /// T1.
    pub t1: Duration,
    /// T2.
    pub t2: Duration,
}

impl Default for SipTimers {
    fn default() -> Self {
        SipTimers {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
        }
    }
}

/// A clonable handle for things that happen outside SIP: HSS-initiated RTR and queries.
#[derive(Clone)]
pub struct ScscfHandle {
    core: Arc<Core>,
    out_tx: mpsc::UnboundedSender<Message>,
}

impl ScscfHandle {
    /// Registration-Termination from the HSS: removes the bindings, queues NOTIFYs, and
    /// returns the IMPUs that were registered here (empty: answer RTA with
    /// DIAMETER_ERROR_IDENTITY_NOT_REGISTERED, else DIAMETER_SUCCESS).
    pub async fn registration_termination(
        &self,
        impi: &str,
        impus: &[String],
        reason: RtrReason,
    ) -> Vec<String> {
        let (affected, notifies) = self
            .core
            .registration_termination(impi, impus, reason, unix_now())
            .await;
        for n in notifies {
            let _ = self.out_tx.send(n);
        }
        affected
    }

    /// The core (state queries such as [`Core::registration`]).
    pub fn core(&self) -> &Arc<Core> {
        &self.core
    }
}

/// The S-CSCF node: construct with [`Scscf::new`], then [`Scscf::run`].
pub struct Scscf {
    core: Arc<Core>,
    writer: Option<WriterHandle>,
    out_tx: mpsc::UnboundedSender<Message>,
    out_rx: mpsc::UnboundedReceiver<Message>,
    timers: SipTimers,
}

impl Scscf {
    /// Builds the node: loads persisted registrations from `store` (if any) and starts
    /// its writer. No socket is touched.
    pub async fn new(
        settings: Settings,
        hss: Arc<dyn Cx>,
        store: Option<Store>,
    ) -> Result<Scscf, ServiceError> {
        let (store_tx, writer) = match &store {
            Some(s) => {
                let (tx, w) = s.spawn_writer(8192);
                (Some(tx), Some(w))
            }
            None => (None, None),
        };
        let core = Arc::new(Core::new(settings, hss, store_tx));
        if let Some(s) = &store {
            let (regs, subs) = s.load().await?;
            info!(
                registrations = regs.len(),
                subscriptions = subs.len(),
                "registration state reloaded"
            );
            core.restore(regs, subs);
        }
        let (out_tx, out_rx) = mpsc::unbounded_channel();
        Ok(Scscf {
            core,
            writer,
            out_tx,
            out_rx,
            timers: SipTimers::default(),
        })
    }

    /// Uses other SIP timers (tests).
    pub fn with_timers(mut self, timers: SipTimers) -> Scscf {
        self.timers = timers;
        self
    }

    /// A handle for RTR and queries, usable while [`Scscf::run`] runs.
    pub fn handle(&self) -> ScscfHandle {
        ScscfHandle {
            core: self.core.clone(),
            out_tx: self.out_tx.clone(),
        }
    }

    /// Serves SIP on a UDP `socket` until `shutdown` resolves; then flushes the store.
    pub async fn run(
        self,
        socket: UdpSocket,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), ServiceError> {
        self.run_with_tcp(socket, None, shutdown).await
    }

    /// Serves SIP on a UDP socket and optionally a TCP listener (requests over TCP are
    /// answered on their connection; NOTIFYs go out over UDP).
    pub async fn run_with_tcp(
        self,
        socket: UdpSocket,
        tcp: Option<tokio::net::TcpListener>,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), ServiceError> {
        let Scscf {
            core,
            writer,
            out_tx: _out_tx,
            mut out_rx,
            timers,
        } = self;
        let socket = Arc::new(socket);
        let local = socket.local_addr()?;
        let sent_by = if local.ip().is_unspecified() {
            core.settings().host_port()
        } else {
            local.to_string()
        };
        let node = Arc::new(Node {
            core: core.clone(),
            socket: socket.clone(),
            sent_by,
            timers,
            server_tsx: Mutex::new(HashMap::new()),
            client_tsx: Arc::new(Mutex::new(HashMap::new())),
        });
        info!(%local, server_name = %core.settings().server_name, "S-CSCF listening (UDP)");
        let mut buf = vec![0u8; 65_535];
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tokio::pin!(shutdown);
        let accept = accept_on(tcp.as_ref());
        tokio::pin!(accept);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                a = &mut accept => {
                    accept.set(accept_on(tcp.as_ref()));
                    if let Ok((stream, peer)) = a {
                        let node = node.clone();
                        tokio::spawn(async move { node.serve_tcp(stream, peer).await });
                    }
                }
                r = socket.recv_from(&mut buf) => {
                    let (n, src) = match r {
                        Ok(x) => x,
                        Err(e) => { debug!(error = %e, "recv error"); continue; }
                    };
                    let data = buf[..n].to_vec();
                    let node = node.clone();
                    tokio::spawn(async move { node.on_datagram(data, src).await });
                }
                Some(n) = out_rx.recv() => {
                    let node = node.clone();
                    tokio::spawn(async move { node.send_notify(n).await });
                }
                _ = tick.tick() => {
                    let node = node.clone();
                    tokio::spawn(async move {
                        let notifies = node.core.tick(unix_now()).await;
                        for n in notifies {
                            node.clone().send_notify(n).await;
                        }
                        node.purge();
                    });
                }
            }
        }
        info!("S-CSCF shutting down: flushing registration store");
        if let Some(w) = writer {
            w.shutdown().await;
        }
        Ok(())
    }
}

struct ServerTsx {
    response: Option<(Vec<u8>, SocketAddr)>,
    until: Instant,
}

struct Node {
    core: Arc<Core>,
    socket: Arc<UdpSocket>,
    sent_by: String,
    timers: SipTimers,
    server_tsx: Mutex<HashMap<String, ServerTsx>>,
    client_tsx: Arc<Mutex<HashMap<String, oneshot::Sender<u16>>>>,
}

/// Where a response goes (RFC 3261 §18.2.2, RFC 3581 §4).
fn response_target(req: &Message, src: SocketAddr) -> Option<SocketAddr> {
    let via = req.header_values("Via").into_iter().next()?;
    let params = crate::sip::parse_params(via.split_once(';').map(|x| x.1).unwrap_or(""));
    let p = |n: &str| params.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    if let Some(rport) = p("rport") {
        if let Some(port) = rport.and_then(|r| r.parse::<u16>().ok()) {
            let ip = p("received")
                .flatten()
                .and_then(|r| r.parse().ok())
                .unwrap_or(src.ip());
            return Some(SocketAddr::new(ip, port));
        }
        return Some(src);
    }
    let sent_by = via
        .split_whitespace()
        .nth(1)?
        .split(';')
        .next()?
        .to_string();
    let (host, port) = split_host_port(&sent_by);
    let ip = p("received")
        .flatten()
        .and_then(|r| r.parse().ok())
        .or_else(|| host.parse().ok())
        .unwrap_or(src.ip());
    Some(SocketAddr::new(ip, port.unwrap_or(5060)))
}

fn split_host_port(hp: &str) -> (String, Option<u16>) {
    if let Some(rest) = hp.strip_prefix('[') {
        let (h, tail) = rest.split_once(']').unwrap_or((rest, ""));
        return (
            h.to_string(),
            tail.strip_prefix(':').and_then(|p| p.parse().ok()),
        );
    }
    match hp.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h.to_string(), p.parse().ok()),
        _ => (hp.to_string(), None),
    }
}

async fn resolve(uri: &str) -> Option<SocketAddr> {
    let hp = host_port_of(uri);
    let (host, port) = split_host_port(&hp);
    let port = port.unwrap_or(5060);
    if let Ok(ip) = host.parse() {
        return Some(SocketAddr::new(ip, port));
    }
    let mut addrs = tokio::net::lookup_host((host.as_str(), port)).await.ok()?;
    addrs.next()
}

async fn accept_on(
    l: Option<&tokio::net::TcpListener>,
) -> std::io::Result<(tokio::net::TcpStream, SocketAddr)> {
    match l {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

/// Length of the first complete message in a stream buffer (leading CRLF keep-alives
/// count as a message of their own), or `None` if more bytes are needed.
fn frame_len(buf: &[u8]) -> Option<usize> {
    let ws = buf
        .iter()
        .take_while(|b| **b == b'\r' || **b == b'\n')
        .count();
    if ws > 0 {
        return Some(ws);
    }
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&buf[..end]);
    let mut cl = 0usize;
    for line in head.split("\r\n") {
        if let Some((n, v)) = line.split_once(':') {
            let n = n.trim();
            if n.eq_ignore_ascii_case("content-length") || n.eq_ignore_ascii_case("l") {
                cl = v.trim().parse().unwrap_or(0);
            }
        }
    }
    (buf.len() >= end + cl).then_some(end + cl)
}

fn top_branch(m: &Message) -> String {
    m.header_values("Via")
        .into_iter()
        .next()
        .and_then(|v| {
            crate::sip::parse_params(v.split_once(';').map(|x| x.1).unwrap_or(""))
                .into_iter()
                .find(|(k, _)| k == "branch")
                .and_then(|(_, v)| v)
        })
        .unwrap_or_default()
}

impl Node {
    async fn on_datagram(self: Arc<Self>, data: Vec<u8>, src: SocketAddr) {
        if data.iter().all(|b| b.is_ascii_whitespace()) {
            return; // RFC 5626 keep-alive
        }
        let msg = match Message::parse(&data) {
            Ok(m) => m,
            Err(e) => {
                warn!(%src, error = %e, "unparsable SIP message dropped");
                return;
            }
        };
        match &msg.start {
            StartLine::Response { code, .. } => self.on_response(&msg, *code),
            StartLine::Request { method, .. } => {
                let method = method.clone();
                self.on_request(msg, &method, src).await
            }
        }
    }

    fn on_response(&self, msg: &Message, code: u16) {
        if code < 200 {
            return;
        }
        let branch = top_branch(msg);
        let tx = self
            .client_tsx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&branch);
        match tx {
            Some(tx) => {
                let _ = tx.send(code);
            }
            None => debug!(
                call_id = msg.call_id(),
                code, "response matches no transaction"
            ),
        }
    }

    async fn on_request(&self, msg: Message, method: &str, src: SocketAddr) {
        let call_id = msg.call_id().to_string();
        let Some(target) = response_target(&msg, src) else {
            warn!(call_id = %call_id, %src, "request without Via dropped");
            return;
        };
        if let Some((bytes, notifies)) = self.handle_request(msg, method, src, Some(target)).await {
            self.send(&bytes, target, &call_id).await;
            for n in notifies {
                self.send_notify_ref(n).await;
            }
        }
    }

    /// Runs a request through its server transaction; returns the response bytes (none for
    /// ACK or an absorbed retransmission) and the NOTIFYs to send after it.
    async fn handle_request(
        &self,
        msg: Message,
        method: &str,
        src: SocketAddr,
        udp_target: Option<SocketAddr>,
    ) -> Option<(Vec<u8>, Vec<Message>)> {
        if method == "ACK" {
            return None;
        }
        let call_id = msg.call_id().to_string();
        if msg.header("Via").is_none()
            || msg.header("From").is_none()
            || msg.header("To").is_none()
            || msg.cseq().is_none()
            || msg.header("Call-ID").is_none()
        {
            let r = msg.response(400, "Bad Request", None);
            return Some((r.to_bytes(), Vec::new()));
        }
        let key = format!("{}|{}|{}", top_branch(&msg), method, fnv64(&[&call_id]));
        {
            let mut st = self.server_tsx.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(t) = st.get(&key) {
                let cached = t.response.clone();
                drop(st);
                debug!(call_id = %call_id, "retransmission absorbed by the server transaction");
                return cached.map(|(b, _)| (b, Vec::new()));
            }
            st.insert(
                key.clone(),
                ServerTsx {
                    response: None,
                    until: Instant::now() + self.timers.t1 * 64,
                },
            );
        }
        debug!(call_id = %call_id, method, %src, "request received");
        let now = unix_now();
        let outcome = match method {
            "REGISTER" => self.core.register(&msg, now).await,
            "SUBSCRIBE" => self.core.subscribe(&msg, now).await,
            _ => {
                let mf = msg
                    .header("Max-Forwards")
                    .and_then(|v| v.trim().parse::<u32>().ok());
                let r = match (method, mf) {
                    (_, Some(0)) => msg.response(483, "Too Many Hops", None),
                    ("OPTIONS", _) => {
                        let mut r = msg.response(200, "OK", Some("opt"));
                        r.push("Allow", "REGISTER, SUBSCRIBE, OPTIONS, ACK");
                        r
                    }
                    _ => {
                        let mut r = msg.response(501, "Not Implemented", None);
                        r.push("Allow", "REGISTER, SUBSCRIBE, OPTIONS, ACK");
                        r
                    }
                };
                crate::core::Outcome {
                    response: r,
                    notifies: Vec::new(),
                }
            }
        };
        let bytes = outcome.response.to_bytes();
        if let Some(t) = self
            .server_tsx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(&key)
        {
            t.response = Some((bytes.clone(), udp_target.unwrap_or(src)));
        }
        Some((bytes, outcome.notifies))
    }

    /// Serves one TCP connection: Content-Length framing (RFC 3261 §18.3), responses on
    /// the same connection.
    async fn serve_tcp(self: Arc<Self>, stream: tokio::net::TcpStream, peer: SocketAddr) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut rd, mut wr) = stream.into_split();
        let mut buf: Vec<u8> = Vec::with_capacity(8192);
        let mut chunk = vec![0u8; 16_384];
        loop {
            while let Some(len) = frame_len(&buf) {
                let data: Vec<u8> = buf.drain(..len).collect();
                if data.iter().all(|b| b.is_ascii_whitespace()) {
                    continue;
                }
                let msg = match Message::parse(&data) {
                    Ok(m) => m,
                    Err(e) => {
                        warn!(%peer, error = %e, "unparsable SIP message on TCP: closing");
                        return;
                    }
                };
                match &msg.start {
                    StartLine::Response { code, .. } => self.on_response(&msg, *code),
                    StartLine::Request { method, .. } => {
                        let method = method.clone();
                        if let Some((bytes, notifies)) =
                            self.handle_request(msg, &method, peer, None).await
                        {
                            if wr.write_all(&bytes).await.is_err() {
                                return;
                            }
                            for n in notifies {
                                self.send_notify_ref(n).await;
                            }
                        }
                    }
                }
            }
            if buf.len() > 1 << 20 {
                warn!(%peer, "oversized SIP message on TCP: closing");
                return;
            }
            match rd.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    async fn send(&self, bytes: &[u8], dest: SocketAddr, call_id: &str) {
        if let Err(e) = self.socket.send_to(bytes, dest).await {
            warn!(call_id, %dest, error = %e, "send failed");
        }
    }

    async fn send_notify(self: Arc<Self>, n: Message) {
        self.send_notify_ref(n).await
    }

    /// Sends a NOTIFY as a non-INVITE client transaction (spawned, so callers don't wait).
    async fn send_notify_ref(&self, mut n: Message) {
        let call_id = n.call_id().to_string();
        let dest_uri = match n.header("Route") {
            Some(r) => NameAddr::parse(r).map(|x| x.uri).unwrap_or_default(),
            None => match &n.start {
                StartLine::Request { uri, .. } => uri.clone(),
                StartLine::Response { .. } => return,
            },
        };
        let Some(dest) = resolve(&dest_uri).await else {
            warn!(call_id = %call_id, uri = %dest_uri, "NOTIFY target not resolvable");
            return;
        };
        let branch = format!("z9hG4bK{:016x}", rand::random::<u64>());
        n.headers.insert(
            0,
            crate::sip::Header {
                name: "Via".into(),
                value: format!("SIP/2.0/UDP {};branch={branch};rport", self.sent_by),
            },
        );
        let from_tag = n
            .header("From")
            .and_then(|f| param_of(f, "tag"))
            .unwrap_or_default();
        let to_tag = n
            .header("To")
            .and_then(|f| param_of(f, "tag"))
            .unwrap_or_default();
        let bytes = n.to_bytes();
        let (tx, mut rx) = oneshot::channel();
        self.client_tsx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(branch.clone(), tx);
        let socket = self.socket.clone();
        let core = self.core.clone();
        let timers = self.timers;
        let tsx = self.client_tsx.clone();
        let state = n.header("Subscription-State").unwrap_or("").to_string();
        info!(call_id = %call_id, %dest, state = %state, "NOTIFY reg sent");
        tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + timers.t1 * 64;
            let mut interval = timers.t1;
            let code = loop {
                if let Err(e) = socket.send_to(&bytes, dest).await {
                    warn!(call_id = %call_id, error = %e, "NOTIFY send failed");
                }
                let wait = tokio::time::sleep_until(
                    (tokio::time::Instant::now() + interval).min(deadline),
                );
                tokio::select! {
                    r = &mut rx => break r.unwrap_or(408),
                    _ = wait => {
                        if tokio::time::Instant::now() >= deadline { break 408; }
                        interval = (interval * 2).min(timers.t2);
                    }
                }
            };
            tsx.lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&branch);
            if code >= 300 {
                warn!(call_id = %call_id, code, "NOTIFY failed");
            }
            core.notify_result(&call_id, &from_tag, &to_tag, code).await;
        });
    }

    fn purge(&self) {
        let now = Instant::now();
        self.server_tsx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, t| t.until > now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn via_targets() {
        let m = Message::parse(b"REGISTER sip:x SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK1;rport=6000;received=10.0.0.2\r\n\r\n").unwrap();
        let src: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert_eq!(
            response_target(&m, src),
            Some("10.0.0.2:6000".parse().unwrap())
        );
        let m = Message::parse(
            b"REGISTER sip:x SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK1\r\n\r\n",
        )
        .unwrap();
        assert_eq!(
            response_target(&m, src),
            Some("10.0.0.1:5070".parse().unwrap())
        );
        let m = Message::parse(
            b"REGISTER sip:x SIP/2.0\r\nVia: SIP/2.0/UDP pcscf.test;branch=z9hG4bK1;rport\r\n\r\n",
        )
        .unwrap();
        assert_eq!(response_target(&m, src), Some(src));
        let m = Message::parse(
            b"REGISTER sip:x SIP/2.0\r\nVia: SIP/2.0/UDP [::1]:5080;branch=z9hG4bK1\r\n\r\n",
        )
        .unwrap();
        assert_eq!(
            response_target(&m, src),
            Some("[::1]:5080".parse().unwrap())
        );
    }
}
