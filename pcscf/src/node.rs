//! The running P-CSCF: its addresses, the dispatch of each request received in its
//! server transaction (RFC 3261 §17.2) to the role's procedures (TS 24.229 §5.2), and
//! transaction-stateful forwarding (RFC 3261 §16.6–§16.7): a client transaction toward
//! the next hop, provisional responses relayed, the final response handed back to the
//! caller, 504 when the next hop never answers and 503 when it cannot be reached.
//!
//! Overload control (RFC 3261 §21.5.4, §20.33; `ims_sip_transport::overload`): a new
//! out-of-dialog request is processed only while fewer than `[sip]
//! max_pending_requests` are; past that it is answered `503 Service Unavailable`
//! with `Retry-After: [sip] overload_retry_after_s` in its server transaction.
//! Responses, ACK, CANCEL and in-dialog requests always pass.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ims_sip_core::builder::{new_branch, new_tag, ResponseBuilder};
use ims_sip_core::edit::Editor;
use ims_sip_core::transaction::requests::build_cancel;
use ims_sip_core::validate::{check_request_for_proxy, unsupported_proxy_options};
use ims_sip_core::{Message, Method, StatusCode, Uri};
use ims_sip_transport::overload::Admission;
use ims_sip_transport::transaction::TransactionLayer;
use ims_sip_transport::{resolve, ConnectionId, Incoming, Target, Transport, TransportError};

use crate::headers;
use crate::protected::ProtectedPorts;
use crate::registrar::{contact_key, Registry};
use crate::secagree::GmSecurity;
use crate::store::{Binding, StoreOp, Writer};

/// Option tags the P-CSCF supports in `Proxy-Require` (RFC 3261 §16.3 step 5).
pub const SUPPORTED: &[&str] = &["sec-agree", "path"];

/// Settings of the node (from `PcscfConfig`).
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub domain: String,
    pub icscf_uri: String,
    pub visited_network_id: String,
    pub advertised_host: String,
    pub subscribe_reg_event: bool,
    pub ipsec: ims_config::IpsecConfig,
}

/// Binding, TCP connection and end of grace of a UE that just de-registered.
pub(crate) type RecentDereg = (Binding, Option<ConnectionId>, Instant);

/// A forwarded INVITE still waiting for its final response (for CANCEL, §16.10).
pub(crate) struct PendingInvite {
    pub forwarded: Message,
    pub target: Target,
}

pub(crate) struct Node {
    pub s: Settings,
    pub sip: TransactionLayer,
    pub registry: Registry,
    pub writer: Writer,
    pub sec: Option<Arc<GmSecurity>>,
    pub ports: Arc<ProtectedPorts>,
    /// Configured listeners (not the protected ports).
    pub locals: Vec<(Transport, SocketAddr)>,
    /// Flows of UEs de-registered less than the grace period ago, by contact key, so
    /// the reg-event NOTIFY (`terminated`) the S-CSCF sends right after the 200 OK still
    /// reaches the UE (FIELD-LESSONS item 4; the SAs outlive the 200 OK as long).
    pub recent_dereg: Mutex<HashMap<String, RecentDereg>>,
    /// INVITEs in progress by the branch of the UE's (or core's) top Via.
    pub invites: Mutex<HashMap<String, PendingInvite>>,
    /// Admission of new requests (overload control).
    pub admission: Admission,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// What came back from the next hop.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Its final response, our Via removed.
    Final(Message),
    /// No final response: answer the upstream with this.
    Failed(StatusCode, &'static str),
}

fn top_branch(m: &Message) -> Option<String> {
    match m.top_via() {
        Some(Ok(v)) => v.branch().map(str::to_string),
        _ => None,
    }
}

impl Node {
    // === addresses ===

    pub fn host(&self) -> String {
        if !self.s.advertised_host.is_empty() {
            return self.s.advertised_host.clone();
        }
        match self.locals.first().map(|l| l.1.ip()) {
            Some(IpAddr::V6(v6)) => format!("[{v6}]"),
            Some(ip) => ip.to_string(),
            None => "127.0.0.1".into(),
        }
    }

    pub fn port(&self) -> u16 {
        self.locals.first().map(|l| l.1.port()).unwrap_or(5060)
    }

    /// Whether a SIP URI (or name-addr) points at this P-CSCF (any bound socket,
    /// protected ports too).
    pub fn is_me(&self, uri: &str) -> bool {
        let t = uri.trim();
        let bare = if t.contains('<') {
            match headers::uri_of(t) {
                Some(u) => u,
                None => return false,
            }
        } else {
            t.to_string()
        };
        let Ok(Uri::Sip(u)) = Uri::parse(&bare) else {
            return false;
        };
        let mut all = self.sip.transport().local_addrs();
        all.extend(self.locals.iter().copied());
        resolve::is_local(&u, &all, &self.host())
    }

    /// The URI `sip:<user>@<host>:<port>`.
    pub fn own_uri(&self, user: &str) -> String {
        format!("sip:{user}@{}:{}", self.host(), self.port())
    }

    pub fn charging_vector(&self) -> String {
        format!(
            "icid-value={:016x}{:016x};icid-generated-at={};orig-ioi={}",
            rand::random::<u64>(),
            rand::random::<u64>(),
            self.host(),
            self.s.domain
        )
    }

    // === dispatch ===

    /// Admits `inc` and processes it in its own task holding its place until done,
    /// or answers 503 + Retry-After when over the limit (never for responses, ACK,
    /// CANCEL or in-dialog requests).
    pub fn admit_and_spawn(self: &Arc<Self>, inc: Incoming) {
        let (node, refuser) = (self.clone(), self.clone());
        self.admission.admit(&inc.message).spawn(
            inc,
            |inc| node.handle(inc),
            |inc| async move {
                let span = tracing::info_span!("sip", call_id = %inc.call_id());
                tracing::Instrument::instrument(refuser.refuse_overloaded(&inc), span).await
            },
        );
    }

    /// `503 Service Unavailable` with `Retry-After` (RFC 3261 §21.5.4, §20.33).
    async fn refuse_overloaded(&self, inc: &Incoming) {
        tracing::debug!(
            source = %inc.source,
            pending = self.admission.pending(),
            "overloaded: new request refused with 503"
        );
        let retry_after = self.admission.retry_after_s().to_string();
        self.reply(
            inc,
            StatusCode::SERVICE_UNAVAILABLE,
            None,
            &[("Retry-After", retry_after)],
        )
        .await;
    }

    /// One message from the transaction layer (a new request in its server
    /// transaction, an ACK for a 2xx, or a response that matched nothing).
    pub async fn handle(self: Arc<Self>, inc: Incoming) {
        let span = tracing::info_span!("sip", call_id = %inc.call_id());
        tracing::Instrument::instrument(self.dispatch(inc), span).await
    }

    async fn dispatch(&self, inc: Incoming) {
        if inc.message.is_response() {
            tracing::debug!(
                start = inc.message.start_line(),
                "response matching no transaction dropped"
            );
            return;
        }
        if let Err(code) = check_request_for_proxy(&inc.message, SUPPORTED) {
            tracing::info!(%code, "request refused by proxy checks");
            let unsupported: Vec<String> = unsupported_proxy_options(&inc.message, SUPPORTED)
                .map(str::to_string)
                .collect();
            let extra: Vec<(&str, String)> = if code == StatusCode::BAD_EXTENSION {
                vec![("Unsupported", unsupported.join(", "))]
            } else {
                Vec::new()
            };
            self.reply(&inc, code, None, &extra).await;
            return;
        }
        let method = inc.message.method().cloned();
        match method {
            Some(Method::Cancel) => self.on_cancel(&inc).await,
            _ => self.on_request(inc).await,
        }
    }

    async fn on_request(&self, inc: Incoming) {
        let msg = &inc.message;
        let ruri = msg.request_uri_str().unwrap_or("").to_string();
        let routes = headers::elements(msg, "Route");
        let ruri_user = match Uri::parse(&ruri) {
            Ok(Uri::Sip(u)) => u.user.map(|u| u.into_owned()).unwrap_or_default(),
            _ => String::new(),
        };
        let method = msg.method().cloned().unwrap_or(Method::Options);
        if self.is_me(&ruri) && (ruri_user.is_empty() || ruri_user == "pcscf") && routes.is_empty()
        {
            match method {
                Method::Options => {
                    let extra = [
                        ("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, SUBSCRIBE, NOTIFY, MESSAGE, PRACK, UPDATE, REFER, INFO".to_string()),
                        ("Supported", "path, sec-agree".to_string()),
                    ];
                    self.reply(&inc, StatusCode::OK, None, &extra).await;
                }
                Method::Notify => self.on_notify(&inc).await,
                Method::Ack => {}
                _ => self.reply(&inc, StatusCode::FORBIDDEN, None, &[]).await,
            }
            return;
        }
        if method == Method::Register {
            self.on_register(inc).await;
            return;
        }
        let top = routes.first().map(String::as_str).unwrap_or("");
        let top_is_me = !top.is_empty() && self.is_me(top);
        let top_is_term = top_is_me
            && headers::uri_of(top)
                .and_then(|u| match Uri::parse(&u) {
                    Ok(Uri::Sip(s)) => s.user.map(|u| u == "term"),
                    _ => None,
                })
                .unwrap_or(false);
        let ue = self.registry.by_contact(&ruri);
        // Toward a UE (the S-CSCF routes to the Path entry `term`, TS 24.229 §5.2.6.4)
        // before asking whether the sender is a UE: the core may share an address
        // with UEs (loopback labs).
        if top_is_term {
            self.terminating(inc, ue).await;
            return;
        }
        if let Some(key) = self.originator(&inc) {
            self.originating(inc, key).await;
            return;
        }
        let known = ue.is_some() || self.recently_deregistered(&ruri).is_some();
        if top_is_me && known {
            self.terminating(inc, ue).await;
            return;
        }
        if method == Method::Ack {
            return;
        }
        tracing::info!(source = %inc.source, %method, "request from an unregistered UE refused");
        self.reply(
            &inc,
            StatusCode::FORBIDDEN,
            Some("Forbidden - register first"),
            &[],
        )
        .await;
    }

    // === responses ===

    /// Answers `inc` in its server transaction (nothing for ACK).
    pub async fn reply(
        &self,
        inc: &Incoming,
        code: StatusCode,
        reason: Option<&str>,
        extra: &[(&str, String)],
    ) {
        if inc.message.method() == Some(&Method::Ack) {
            return;
        }
        let mut b = ResponseBuilder::new(&inc.message, code).to_tag(new_tag());
        if let Some(r) = reason {
            b = b.reason(r);
        }
        for (n, v) in extra {
            b = b.header(n, v);
        }
        match b.build_message() {
            Ok(r) => self.respond(inc, &r).await,
            Err(e) => tracing::warn!(error = %e, "response could not be built"),
        }
    }

    /// Sends a (relayed or built) response in `inc`'s server transaction.
    pub async fn respond(&self, inc: &Incoming, resp: &Message) {
        if let Err(e) = self.sip.respond(inc, resp).await {
            tracing::warn!(source = %inc.source, error = %e, "response not sent");
        }
    }

    /// A failure outcome as a response to `inc`.
    pub async fn reply_outcome(&self, inc: &Incoming, code: StatusCode, why: &str) {
        self.reply(inc, code, Some(why), &[]).await;
    }

    // === forwarding ===

    /// UDP requests without a chosen source leave from the configured listener of the
    /// destination's family (never from a protected port that happens to be bound).
    pub fn with_local(&self, target: Target) -> Target {
        if target.local.is_some() || target.transport != Transport::Udp {
            return target;
        }
        match self
            .locals
            .iter()
            .find(|(t, a)| *t == Transport::Udp && a.is_ipv4() == target.remote.is_ipv4())
        {
            Some((_, a)) => target.from_local(*a),
            None => target,
        }
    }

    /// Resolves a URI or a name-addr (`<sip:host[:port][;transport=tcp];lr>`) to a
    /// target (`ims_sip_transport::resolve`: IP literal or A/AAAA, no NAPTR/SRV).
    pub async fn resolve(uri: &str) -> Option<Target> {
        let t = uri.trim();
        let bare = if t.contains('<') {
            headers::uri_of(t)?
        } else {
            t.to_string()
        };
        resolve::uri_target(&bare).await
    }

    /// Forwards the edited request (RFC 3261 §16.6: our Via, Max-Forwards) to `target`
    /// in a client transaction and waits for the final response; provisional ones
    /// (but 100) are relayed to `inc` on the way.
    pub async fn forward(&self, inc: &Incoming, mut e: Editor<'_>, target: Target) -> Outcome {
        let target = self.with_local(target);
        let via_port = match target.local {
            Some(l) => l.port(),
            None => self
                .locals
                .iter()
                .find(|l| l.0 == target.transport)
                .map(|l| l.1.port())
                .unwrap_or_else(|| self.port()),
        };
        let branch = new_branch();
        e.prepend(
            "Via",
            format!(
                "SIP/2.0/{} {}:{via_port};branch={branch}",
                target.transport.as_str().to_ascii_uppercase(),
                self.host()
            ),
        );
        if e.decrement_max_forwards().is_err() {
            return Outcome::Failed(StatusCode::TOO_MANY_HOPS, "Too Many Hops");
        }
        let out = match e.finish_message() {
            Ok(m) => m,
            Err(err) => {
                tracing::warn!(error = %err, "forwarded request does not re-parse");
                return Outcome::Failed(StatusCode::SERVER_INTERNAL_ERROR, "Server Internal Error");
            }
        };
        let is_invite = out.method() == Some(&Method::Invite);
        let inv_key = top_branch(&inc.message);
        if let (true, Some(k)) = (is_invite, &inv_key) {
            lock(&self.invites).insert(
                k.clone(),
                PendingInvite {
                    forwarded: out.clone(),
                    target,
                },
            );
        }
        let outcome = self.run_client(inc, out, target).await;
        if let (true, Some(k)) = (is_invite, &inv_key) {
            lock(&self.invites).remove(k);
        }
        outcome
    }

    async fn run_client(&self, inc: &Incoming, out: Message, target: Target) -> Outcome {
        let is_invite = out.method() == Some(&Method::Invite);
        let mut tx = match self.sip.send_request(out, target).await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(remote = %target.remote, error = %e, "request not forwarded");
                return Outcome::Failed(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable");
            }
        };
        loop {
            match tx.next_response().await {
                Some(Ok(r)) => {
                    let Some(status) = r.status() else { continue };
                    let mut e = r.edit();
                    e.remove_top_via();
                    let Ok(r) = e.finish_message() else { continue };
                    if status.is_provisional() {
                        if status != StatusCode::TRYING {
                            self.respond(inc, &r).await;
                        }
                        continue;
                    }
                    if is_invite && status.is_success() {
                        // RFC 6026: 2xx retransmissions keep coming; relay them too.
                        let sip = self.sip.clone();
                        let flow = inc.flow();
                        tokio::spawn(async move {
                            while let Some(Ok(again)) = tx.next_response().await {
                                let mut e = again.edit();
                                e.remove_top_via();
                                if let Ok(m) = e.finish_message() {
                                    let _ = sip.transport().send_response(&flow, &m).await;
                                }
                            }
                        });
                    }
                    return Outcome::Final(r);
                }
                Some(Err(TransportError::Timeout)) | None => {
                    tracing::warn!(remote = %target.remote, "next hop did not answer");
                    return Outcome::Failed(StatusCode::SERVER_TIMEOUT, "Server Time-out");
                }
                Some(Err(e)) => {
                    tracing::warn!(remote = %target.remote, error = %e, "next hop unreachable");
                    return Outcome::Failed(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable");
                }
            }
        }
    }

    /// Forwards and relays the final response (or the failure) to `inc`.
    pub async fn proxy(&self, inc: &Incoming, e: Editor<'_>, target: Target) {
        match self.forward(inc, e, target).await {
            Outcome::Final(r) => self.respond(inc, &r).await,
            Outcome::Failed(code, why) => self.reply_outcome(inc, code, why).await,
        }
    }

    /// Forwards a request that has no transaction (ACK for a 2xx, RFC 3261 §16.6).
    pub async fn forward_stateless(&self, mut e: Editor<'_>, target: Target) {
        let target = self.with_local(target);
        e.prepend(
            "Via",
            format!(
                "SIP/2.0/{} {}:{};branch={}",
                target.transport.as_str().to_ascii_uppercase(),
                self.host(),
                target
                    .local
                    .map(|l| l.port())
                    .unwrap_or_else(|| self.port()),
                new_branch()
            ),
        );
        if e.decrement_max_forwards().is_err() {
            return;
        }
        if let Ok(m) = e.finish_message() {
            let _ = self.sip.transport().send(&target, &m).await;
        }
    }

    /// CANCEL (RFC 3261 §16.10): 200 to the CANCEL, CANCEL downstream for the
    /// pending INVITE (whose 487 comes back through its own transaction); 481 when
    /// no INVITE matches.
    async fn on_cancel(&self, inc: &Incoming) {
        let pending = top_branch(&inc.message).and_then(|b| {
            lock(&self.invites)
                .get(&b)
                .map(|p| (p.forwarded.clone(), p.target))
        });
        let Some((invite, target)) = pending else {
            self.reply(inc, StatusCode::CALL_TRANSACTION_DOES_NOT_EXIST, None, &[])
                .await;
            return;
        };
        self.reply(inc, StatusCode::OK, None, &[]).await;
        let Ok(cancel) = Message::parse(build_cancel(&invite)) else {
            return;
        };
        let sip = self.sip.clone();
        tokio::spawn(async move {
            if let Ok(tx) = sip.send_request(cancel, target).await {
                let _ = tx.final_response().await;
            }
        });
    }

    // === de-registered flows ===

    /// Keeps the flow of a UE that just de-registered for the grace period.
    pub fn remember_deregistered(&self, b: &Binding, conn: Option<ConnectionId>) {
        let now = Instant::now();
        let until = now + Duration::from_millis(self.s.ipsec.dereg_grace_ms.max(1000));
        let mut m = lock(&self.recent_dereg);
        m.retain(|_, (_, _, t)| *t > now);
        m.insert(contact_key(&b.contact), (b.clone(), conn, until));
    }

    /// The flow of a UE de-registered less than the grace period ago, for `uri`.
    pub fn recently_deregistered(&self, uri: &str) -> Option<(Binding, Option<ConnectionId>)> {
        let m = lock(&self.recent_dereg);
        m.get(&contact_key(uri))
            .filter(|(_, _, t)| *t > Instant::now())
            .map(|(b, c, _)| (b.clone(), *c))
    }

    // === persistence ===

    pub fn persist(&self, b: &Binding) {
        self.writer.send(StoreOp::Upsert(b.clone()));
    }

    pub fn unpersist(&self, contact: &str) {
        self.writer.send(StoreOp::Remove(contact.to_string()));
    }
}
