//! The S-CSCF SIP service on tokio, on the workspace SIP stack:
//! `ims_sip_transport::TransportLayer` (UDP and TCP, RFC 3261 §18 framing, `received` /
//! `rport` per RFC 3581, 400 to unparsable requests) under a
//! `transaction::TransactionLayer` (RFC 3261 §17). Every REGISTER, SUBSCRIBE, OPTIONS …
//! runs in a non-INVITE server transaction (§17.2.2), so a retransmission — while the
//! MAR/SAR is still out or after the answer — is absorbed and answered with the same
//! response, never handled twice. Each NOTIFY is a non-INVITE client transaction
//! (§17.1.2: Timer E retransmission over UDP, Timer F timeout), whose outcome goes back to
//! the core (RFC 6665 §4.2.2: a failed NOTIFY ends its subscription).
//!
//! Overload control (RFC 3261 §21.5.4, §20.33; `ims_sip_transport::overload`): a new
//! out-of-dialog request (REGISTER, initial SUBSCRIBE, OPTIONS …) is served only while
//! fewer than `[sip] max_pending_requests` are (each until its response is sent); past
//! that it is answered `503 Service Unavailable` with `Retry-After` before any Cx
//! request. Responses, ACK and in-dialog requests (a SUBSCRIBE refresh) always pass.
//! The I-CSCF takes a 503 as a reason to try another S-CSCF.
//!
//! Besides that this module only runs the expiry tick and the store writer; everything
//! protocol-level is in [`crate::core`].

use crate::core::{Core, Outcome};
use crate::cx::Cx;
use crate::notifier::{Notify, RtrReason};
use crate::registrar::local_tag;
use crate::settings::Settings;
use crate::store::{Store, StoreError, WriterHandle};
use ims_sip_core::builder::{new_branch, ResponseBuilder};
use ims_sip_core::uri::Uri;
use ims_sip_core::{Message, Method, StatusCode};
use ims_sip_transport::overload::{Admission, REPORT_INTERVAL};
use ims_sip_transport::transaction::{
    ResponseRouting, TimerConfig, TransactionLayer, TransactionOptions,
};
use ims_sip_transport::{
    channel, transport_for_size, Incoming, Target, Transport, TransportError, TransportLayer,
    TransportOptions,
};
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
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
    /// The SIP transport could not bind or adopt a socket.
    #[error("SIP transport: {0}")]
    Transport(#[from] TransportError),
}

/// SIP timer values (RFC 3261 §17.1.1.1 T1, T2, T4): the transaction layer's.
pub type SipTimers = TimerConfig;

/// Requests from the transport waiting for the service (beyond it: dropped and logged;
/// UDP senders retransmit).
const INCOMING_QUEUE: usize = 16_384;

/// Methods the S-CSCF serves (`Allow` of OPTIONS and 501).
const ALLOW: &str = "REGISTER, SUBSCRIBE, OPTIONS, ACK";

/// A clonable handle for things that happen outside SIP: HSS-initiated RTR and queries.
#[derive(Clone)]
pub struct ScscfHandle {
    core: Arc<Core>,
    out_tx: mpsc::UnboundedSender<Notify>,
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

/// The S-CSCF node: construct with [`Scscf::new`], then [`Scscf::run`] (sockets given)
/// or [`Scscf::serve`] (a transport with its listeners bound).
pub struct Scscf {
    core: Arc<Core>,
    writer: Option<WriterHandle>,
    out_tx: mpsc::UnboundedSender<Notify>,
    out_rx: mpsc::UnboundedReceiver<Notify>,
    timers: SipTimers,
    admission: Admission,
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
            admission: Admission::from_config(&ims_config::SipConfig::default()),
        })
    }

    /// Overload control: at most `max_pending_requests` new requests served at once
    /// (0: no limit), the others answered 503 with `Retry-After: retry_after_s`
    /// (`[sip] max_pending_requests`, `overload_retry_after_s`; without this call,
    /// the `[sip]` defaults).
    pub fn with_overload(mut self, max_pending_requests: usize, retry_after_s: u32) -> Scscf {
        self.admission = Admission::new(max_pending_requests, retry_after_s);
        self
    }

    /// Uses other SIP timers (from `[timers]`, or short ones in tests).
    pub fn with_timers(mut self, timers: SipTimers) -> Scscf {
        self.timers = timers;
        self
    }

    /// A handle for RTR and queries, usable while the node runs.
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
    /// answered on their connection).
    pub async fn run_with_tcp(
        self,
        socket: UdpSocket,
        tcp: Option<TcpListener>,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), ServiceError> {
        let transport = TransportLayer::without_handler(TransportOptions::default());
        transport.add_udp_socket(socket)?;
        if let Some(l) = tcp {
            transport.add_tcp_listener(l)?;
        }
        self.serve(transport, shutdown).await
    }

    /// Serves SIP on `transport` (created with [`TransportLayer::without_handler`], its
    /// sockets bound) until `shutdown` resolves; then closes the sockets and flushes the
    /// store.
    pub async fn serve(
        self,
        transport: TransportLayer,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), ServiceError> {
        let Scscf {
            core,
            writer,
            out_tx: _out_tx,
            mut out_rx,
            timers,
            admission,
        } = self;
        let (upper, mut rx) = channel(INCOMING_QUEUE);
        let options = TransactionOptions {
            // No INVITE is served here (501); nothing to say 100 Trying for.
            auto_trying: false,
            forward_stray_responses: false,
            response_routing: ResponseRouting::Via,
        };
        let sip = TransactionLayer::new(transport, timers, options, Arc::new(upper));
        let locals = sip.transport().local_addrs();
        let sent_by = |t: Transport| {
            locals
                .iter()
                .find(|(x, _)| *x == t)
                .or_else(|| locals.first())
                .map(|(_, a)| {
                    if a.ip().is_unspecified() {
                        core.settings().host_port()
                    } else {
                        a.to_string()
                    }
                })
                .unwrap_or_else(|| core.settings().host_port())
        };
        let node = Arc::new(Node {
            core: core.clone(),
            queued: Mutex::new(HashMap::new()),
            sent_by_udp: sent_by(Transport::Udp),
            sent_by_tcp: sent_by(Transport::Tcp),
            udp_size_limit: sip.transport().options().udp_size_limit,
            sip: sip.clone(),
            admission: admission.clone(),
        });
        info!(listen = ?locals, server_name = %core.settings().server_name, "S-CSCF listening");
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        // Refusals of the overload control, reported once per interval.
        let mut report = tokio::time::interval_at(
            tokio::time::Instant::now() + REPORT_INTERVAL,
            REPORT_INTERVAL,
        );
        // The dispatch loop runs as a task on the runtime's workers, not in this future:
        // `#[tokio::main]` polls `run` on the main thread, and every request handed from
        // a worker to the main thread and spawned back cost two cross-thread wake-ups.
        let mut dispatch = tokio::spawn(async move {
            loop {
                tokio::select! {
                    Some(inc) = rx.recv() => node.admit_and_spawn(inc),
                    _ = report.tick() => {
                        node.admission.log_refusals("S-CSCF");
                    }
                    Some(n) = out_rx.recv() => node.spawn_notify(n),
                    _ = tick.tick() => {
                        let node = node.clone();
                        tokio::spawn(async move {
                            for n in node.core.tick(unix_now()).await {
                                node.spawn_notify(n);
                            }
                        });
                    }
                }
            }
        });
        tokio::select! {
            _ = shutdown => dispatch.abort(),
            _ = &mut dispatch => {}
        }
        info!("S-CSCF shutting down: closing SIP sockets, flushing registration store");
        sip.close().await;
        if let Some(w) = writer {
            w.shutdown().await;
        }
        admission.log_refusals("S-CSCF");
        info!(
            refused_overloaded = admission.refused_total(),
            "S-CSCF stopped"
        );
        Ok(())
    }
}

struct Node {
    core: Arc<Core>,
    /// NOTIFYs waiting behind the one in flight, per subscription (see `spawn_notify`).
    queued: Mutex<HashMap<String, VecDeque<Notify>>>,
    sip: TransactionLayer,
    /// Via sent-by of NOTIFYs over UDP / TCP.
    sent_by_udp: String,
    sent_by_tcp: String,
    /// RFC 3261 §18.1.1 threshold: larger NOTIFYs go over TCP.
    udp_size_limit: usize,
    /// Admission of new requests (overload control).
    admission: Admission,
}

impl Node {
    /// Admits `inc` and serves it in its own task holding its place until its
    /// response is sent, or answers 503 + Retry-After when over the limit (never for
    /// responses, ACK or in-dialog requests).
    fn admit_and_spawn(self: &Arc<Self>, inc: Incoming) {
        let (node, refuser) = (self.clone(), self.clone());
        self.admission.admit(&inc.message).spawn(
            inc,
            |inc| node.on_incoming(inc),
            |inc| async move { refuser.refuse_overloaded(inc).await },
        );
    }

    /// `503 Service Unavailable` with `Retry-After` (RFC 3261 §21.5.4, §20.33).
    async fn refuse_overloaded(&self, inc: Incoming) {
        debug!(
            call_id = inc.call_id(),
            pending = self.admission.pending(),
            "overloaded: new request refused with 503"
        );
        let b = ResponseBuilder::new(&inc.message, StatusCode::SERVICE_UNAVAILABLE)
            .header("Retry-After", self.admission.retry_after_s().to_string())
            .to_tag(local_tag(&inc.message));
        let resp = crate::core::respond(b, &inc.message);
        if let Err(e) = self.sip.respond(&inc, &resp).await {
            warn!(call_id = inc.call_id(), source = %inc.source, error = %e, "response not sent");
        }
    }

    /// One message from the transaction layer: a new request in its server transaction,
    /// an ACK, or a response that matches no client transaction any more.
    async fn on_incoming(self: Arc<Self>, inc: Incoming) {
        let Some(method) = inc.message.method() else {
            debug!(call_id = inc.call_id(), "late response to a NOTIFY dropped");
            return;
        };
        let now = unix_now();
        let outcome = match method {
            Method::Ack => return,
            Method::Register => self.core.register(&inc.message, now).await,
            Method::Subscribe => self.core.subscribe(&inc.message, now).await,
            other => Outcome::response(other_method(&inc.message, other)),
        };
        if let Err(e) = self.sip.respond(&inc, &outcome.response).await {
            warn!(call_id = inc.call_id(), source = %inc.source, error = %e, "response not sent");
        }
        for n in outcome.notifies {
            self.spawn_notify(n);
        }
    }

    /// Sends `n` after the NOTIFYs of its subscription already under way: one
    /// transaction at a time per dialog, so CSeqs arrive in order (a lower CSeq after a
    /// higher one would be refused with 500, RFC 3261 §12.2.2). After a failed NOTIFY the
    /// subscription is gone and the ones queued behind it are dropped.
    fn spawn_notify(self: &Arc<Self>, n: Notify) {
        {
            let mut q = self.queued.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(waiting) = q.get_mut(&n.subscription) {
                waiting.push_back(n);
                return;
            }
            q.insert(n.subscription.clone(), VecDeque::new());
        }
        let node = self.clone();
        tokio::spawn(async move {
            let id = n.subscription.clone();
            let mut next = Some(n);
            while let Some(n) = next.take() {
                let ok = node.send_notify(n).await;
                let mut q = node.queued.lock().unwrap_or_else(|p| p.into_inner());
                match q.get_mut(&id) {
                    Some(waiting) if ok => next = waiting.pop_front(),
                    Some(waiting) if !waiting.is_empty() => {
                        debug!(subscription = %id, dropped = waiting.len(), "NOTIFYs of an ended subscription dropped");
                    }
                    _ => {}
                }
                if next.is_none() {
                    q.remove(&id);
                }
            }
        });
    }

    /// Sends one NOTIFY in a client transaction and reports its outcome to the core;
    /// `true` when it got a 2xx.
    async fn send_notify(&self, n: Notify) -> bool {
        let hop = n.next_hop();
        let Some((wanted, dest)) = resolve(&hop).await else {
            warn!(subscription = %n.subscription, call_id = %n.call_id, uri = %hop, "NOTIFY target not resolvable");
            return true;
        };
        let Some(udp) = self.build_notify(&n, Transport::Udp) else {
            return true;
        };
        let mut result = None;
        // RFC 3261 §18.1.1: too large for UDP → TCP; if TCP cannot connect, UDP after all.
        if transport_for_size(udp.len(), wanted, self.udp_size_limit) == Transport::Tcp {
            if let Some(tcp) = self.build_notify(&n, Transport::Tcp) {
                let r = self.transact_notify(&n, tcp, Transport::Tcp, dest).await;
                match r {
                    Err(TransportError::Timeout) | Ok(_) => result = Some(r),
                    Err(e) if wanted == Transport::Udp => {
                        debug!(subscription = %n.subscription, error = %e, "NOTIFY over TCP failed: retrying over UDP");
                    }
                    Err(e) => result = Some(Err(e)),
                }
            }
        }
        let result = match result {
            Some(r) => r,
            None => self.transact_notify(&n, udp, Transport::Udp, dest).await,
        };
        let code = match result {
            Ok(resp) => resp.status().map(StatusCode::as_u16).unwrap_or(500),
            Err(TransportError::Timeout) => {
                warn!(
                    subscription = %n.subscription,
                    call_id = %n.call_id,
                    %dest,
                    "NOTIFY timed out: no final response within Timer F (64·T1)"
                );
                408
            }
            Err(e) => {
                warn!(subscription = %n.subscription, call_id = %n.call_id, %dest, error = %e, "NOTIFY not delivered");
                503
            }
        };
        if code >= 300 {
            warn!(subscription = %n.subscription, call_id = %n.call_id, code, "NOTIFY failed");
        }
        self.core.notify_result(&n.subscription, code).await;
        code < 300
    }

    /// The NOTIFY request with our Via for `transport` and a new branch.
    fn build_notify(&self, n: &Notify, transport: Transport) -> Option<Message> {
        let (via, sent_by) = match transport {
            Transport::Udp => ("UDP", &self.sent_by_udp),
            Transport::Tcp => ("TCP", &self.sent_by_tcp),
        };
        match n.to_request(via, sent_by, &new_branch()) {
            Ok(r) => Some(r),
            Err(e) => {
                warn!(subscription = %n.subscription, call_id = %n.call_id, error = %e, "NOTIFY does not build");
                None
            }
        }
    }

    /// One client transaction: the final response, or the transaction's error.
    async fn transact_notify(
        &self,
        n: &Notify,
        req: Message,
        transport: Transport,
        dest: SocketAddr,
    ) -> Result<Message, TransportError> {
        debug!(subscription = %n.subscription, call_id = %n.call_id, %dest, %transport, state = %n.state, "NOTIFY reg sent");
        self.sip.request(req, Target::new(transport, dest)).await
    }
}

/// The answer to a method the S-CSCF does not serve as registrar/notifier: 483 when
/// Max-Forwards is 0, 200 with `Allow` for OPTIONS, else 501 with `Allow`.
fn other_method(req: &Message, method: &Method) -> Message {
    let b = if req.max_forwards() == Some(0) {
        ResponseBuilder::new(req, StatusCode::TOO_MANY_HOPS)
    } else if *method == Method::Options {
        ResponseBuilder::new(req, StatusCode::OK).header("Allow", ALLOW)
    } else {
        ResponseBuilder::new(req, StatusCode::NOT_IMPLEMENTED).header("Allow", ALLOW)
    };
    crate::core::respond(b.to_tag(local_tag(req)), req)
}

/// Transport and address of a next-hop URI (RFC 3263 reduced to A/AAAA lookups: the
/// `transport` parameter, else UDP; the port, else 5060).
async fn resolve(uri: &str) -> Option<(Transport, SocketAddr)> {
    let parsed = Uri::parse(uri).ok()?;
    let sip = parsed.as_sip()?;
    let transport = match sip.transport() {
        Some(t) if t.eq_ignore_ascii_case("tcp") => Transport::Tcp,
        _ => Transport::Udp,
    };
    let port = sip.port.unwrap_or(5060);
    let host = sip.host.to_string();
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Some((transport, SocketAddr::new(ip, port)));
    }
    let mut addrs = tokio::net::lookup_host((bare, port)).await.ok()?;
    addrs.next().map(|a| (transport, a))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn next_hop_resolution() {
        assert_eq!(
            resolve("sip:alice@127.0.0.1:5070").await,
            Some((Transport::Udp, "127.0.0.1:5070".parse().unwrap()))
        );
        assert_eq!(
            resolve("sip:mo@127.0.0.2;lr;transport=TCP").await,
            Some((Transport::Tcp, "127.0.0.2:5060".parse().unwrap()))
        );
        assert_eq!(
            resolve("sip:[::1]:5080;lr").await,
            Some((Transport::Udp, "[::1]:5080".parse().unwrap()))
        );
        assert_eq!(resolve("tel:+15551234").await, None);
    }

    #[test]
    fn other_methods() {
        let req = Message::parse(
            &b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x>\r\nCall-ID: o1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 0\r\nContent-Length: 0\r\n\r\n"[..],
        )
        .unwrap();
        let r = other_method(&req, &Method::Options);
        assert_eq!(r.status(), Some(StatusCode::TOO_MANY_HOPS));
        let text =
            String::from_utf8_lossy(req.as_bytes()).replace("Max-Forwards: 0", "Max-Forwards: 70");
        let req = Message::parse(text.into_bytes()).unwrap();
        let r = other_method(&req, &Method::Options);
        assert_eq!(r.status(), Some(StatusCode::OK));
        assert_eq!(r.header_str("Allow"), Some(ALLOW));
        let r = other_method(&req, &Method::Invite);
        assert_eq!(r.status(), Some(StatusCode::NOT_IMPLEMENTED));
    }
}
