//! Request handling of the I-CSCF (TS 24.229 §5.3.1.2 REGISTER, §5.3.2.1 initial
//! requests towards a served user) on top of the transaction layer:
//! - RFC 3261 §16.3 checks (`validate::check_request_for_proxy`: 416, 483, 420 with
//!   `Unsupported`), Route entries naming this node removed (§16.4).
//! - No Route left: a Cx query (UAR for REGISTER, LIR otherwise) picks the S-CSCF
//!   candidates ([`crate::select::candidates`]); Cx failures are answered as
//!   [`crate::cx::CxFailure::to_sip`] says. A Route left: forwarded along it.
//! - A REGISTER whose HSS-assigned S-CSCF fails: UAR with
//!   REGISTRATION_AND_CAPABILITIES ("used when the user's current S-CSCF … cannot
//!   be contacted and a new S-CSCF needs to be selected", TS 29.229 §6.3.24), then
//!   the capable others in turn (TS 24.229 §5.3.1.3).
//! - CANCEL (§16.10): answered 200 and sent on to where the INVITE went (481 when
//!   no such INVITE is being forwarded).
//! - ACK for a 2xx (no server transaction, §16.7 step 10 / §16.11): forwarded
//!   statelessly along its Route, dropped when it has none beyond this node.
//! - Overload (RFC 3261 §21.5.4): a new out-of-dialog request over
//!   `[sip] max_pending_requests` is answered 503 with `Retry-After` before any Cx
//!   query; the others hold their place until their final response is sent.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use ims_sip_core::builder::{new_branch, new_tag, ResponseBuilder};
use ims_sip_core::header::Route;
use ims_sip_core::transaction::requests::build_cancel;
use ims_sip_core::transaction::TransactionKey;
use ims_sip_core::validate::{check_request_for_proxy, unsupported_proxy_options};
use ims_sip_core::{Message, Method, StatusCode};
use ims_sip_transport::overload::Admission;
use ims_sip_transport::transaction::TransactionLayer;
use ims_sip_transport::{Incoming, Target, Transport};
use tracing::{debug, info, warn, Instrument};

use crate::cx::{Assignment, Cx, CxFailure, Procedure, UserAuthorizationType, HSS_RETRY_AFTER_S};
use crate::forward::{self, Hop, Plan};
use crate::select::{self, Selected};
use crate::{identity, Settings};
use ims_sip_transport::resolve;

/// Option tags this proxy accepts in `Proxy-Require`.
pub(crate) const SUPPORTED_PROXY_OPTIONS: &[&str] = &["path", "sec-agree"];

/// An INVITE being forwarded: what a CANCEL needs to follow it (§16.10).
#[derive(Clone)]
pub(crate) struct PendingInvite {
    pub(crate) forwarded: Message,
    pub(crate) target: Target,
}

/// The I-CSCF's proxy core.
pub(crate) struct Proxy {
    pub(crate) settings: Settings,
    cx: Arc<dyn Cx>,
    pub(crate) layer: TransactionLayer,
    /// INVITE server transaction key → the INVITE as forwarded.
    pub(crate) invites: Mutex<HashMap<TransactionKey, PendingInvite>>,
    /// Admission of new requests (overload control).
    pub(crate) admission: Admission,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Proxy {
    pub(crate) fn new(
        settings: Settings,
        cx: Arc<dyn Cx>,
        layer: TransactionLayer,
        admission: Admission,
    ) -> Self {
        Proxy {
            settings,
            cx,
            layer,
            invites: Mutex::new(HashMap::new()),
            admission,
        }
    }

    /// Admits `inc` and handles it in its own task holding its place until done, or
    /// answers 503 + Retry-After when over the limit (never for responses, ACK,
    /// CANCEL or in-dialog requests).
    pub(crate) fn admit_and_spawn(self: &Arc<Self>, inc: Incoming) {
        let (node, refuser) = (self.clone(), self.clone());
        self.admission.admit(&inc.message).spawn(
            inc,
            |inc| node.handle(inc),
            |inc| {
                let span = tracing::info_span!("sip", call_id = %inc.call_id());
                async move {
                    debug!(
                        pending = refuser.admission.pending(),
                        "overloaded: new request refused with 503"
                    );
                    let retry_after = refuser.admission.retry_after_s().to_string();
                    refuser
                        .answer(
                            &inc,
                            StatusCode::SERVICE_UNAVAILABLE,
                            None,
                            &[("Retry-After", retry_after)],
                        )
                        .await;
                }
                .instrument(span)
            },
        );
    }

    /// One request (in its server transaction, unless an ACK) from the transport.
    pub(crate) async fn handle(self: Arc<Self>, inc: Incoming) {
        let span = tracing::info_span!("sip", call_id = %inc.call_id());
        async move {
            if inc.message.is_response() {
                debug!("response matched no client transaction: dropped");
                return;
            }
            match inc.message.method() {
                Some(Method::Ack) => self.ack(inc).await,
                Some(Method::Cancel) => self.cancel(inc).await,
                _ => self.request(inc).await,
            }
        }
        .instrument(span)
        .await
    }

    /// Sends a response generated here within the request's server transaction.
    pub(crate) async fn answer(
        &self,
        inc: &Incoming,
        status: StatusCode,
        reason: Option<&str>,
        headers: &[(&str, String)],
    ) {
        let mut b = ResponseBuilder::new(&inc.message, status).to_tag(new_tag());
        if let Some(r) = reason {
            b = b.reason(r);
        }
        for (n, v) in headers {
            b = b.header(n, v);
        }
        match b.build_message() {
            Ok(resp) => self.relay(inc, &resp).await,
            Err(e) => warn!(error = %e, "could not build a response"),
        }
    }

    /// Sends a response (generated or relayed) upstream.
    pub(crate) async fn relay(&self, inc: &Incoming, resp: &Message) {
        if let Err(e) = self.layer.respond(inc, resp).await {
            warn!(error = %e, status = ?resp.status().map(|s| s.as_u16()), "response not sent upstream");
        }
    }

    /// How many of the leading Route entries name this node.
    fn own_routes(&self, msg: &Message) -> usize {
        let locals = self.layer.transport().local_addrs();
        let mut n = 0;
        for r in msg.typed_all::<Route>() {
            let Ok(r) = r else { return n };
            for na in &r.0 {
                match na.uri.as_sip() {
                    Some(u) if resolve::is_local(u, &locals, &self.settings.advertised_host) => {
                        n += 1
                    }
                    _ => return n,
                }
            }
        }
        n
    }

    /// The request without the Route entries naming this node, Max-Forwards
    /// decremented (RFC 3261 §16.6 step 3, §16.4).
    fn prepare(&self, msg: &Message) -> Option<Message> {
        let own = self.own_routes(msg);
        let mut e = msg.edit();
        for _ in 0..own {
            e.pop_route();
        }
        e.decrement_max_forwards().ok()?;
        e.finish_message().ok()
    }

    async fn request(&self, inc: Incoming) {
        let msg = &inc.message;
        if let Err(status) = check_request_for_proxy(msg, SUPPORTED_PROXY_OPTIONS) {
            let unsupported: Vec<&str> =
                unsupported_proxy_options(msg, SUPPORTED_PROXY_OPTIONS).collect();
            let headers = if status == StatusCode::BAD_EXTENSION {
                vec![("Unsupported", unsupported.join(", "))]
            } else {
                vec![]
            };
            info!(status = status.as_u16(), "request refused by proxy checks");
            self.answer(&inc, status, None, &headers).await;
            return;
        }
        let Some(base) = self.prepare(msg) else {
            self.answer(&inc, StatusCode::TOO_MANY_HOPS, None, &[])
                .await;
            return;
        };
        let is_register = msg.method() == Some(&Method::Register);
        let hops = if base.header_values_str("Route").next().is_some() {
            // Already routed (e.g. a Route beyond this node): follow it.
            vec![Hop {
                scscf: None,
                how: None,
            }]
        } else {
            match self.query(&inc).await {
                Ok(hops) => hops,
                Err(()) => return,
            }
        };
        // TS 24.229 §5.3.1.3: another S-CSCF only when the I-CSCF chose it itself;
        // an S-CSCF the HSS assigned is replaced only through a new UAR
        // (REGISTRATION_AND_CAPABILITIES, TS 29.229 §6.3.24).
        let assigned = hops.first().and_then(|h| h.how) == Some(Selected::ServerName);
        let reselect = is_register && assigned && !identity::is_deregistration(msg);
        let plan = Plan {
            base,
            hops,
            failover: is_register && !assigned,
            reserve: u32::from(reselect),
        };
        let deadline = forward::deadline(self, &inc);
        let Err(mut failure) = forward::run(self, &inc, &plan, deadline).await else {
            return;
        };
        if reselect {
            let failed = plan.hops.first().and_then(|h| h.scscf.clone());
            if let Some(hops) = self.reselect(&inc, failed.as_deref()).await {
                let again = Plan {
                    base: plan.base,
                    hops,
                    failover: true,
                    reserve: 0,
                };
                match forward::run(self, &inc, &again, deadline).await {
                    Ok(()) => return,
                    Err(f) => failure = f,
                }
            }
        }
        forward::answer_failure(self, &inc, failure).await;
    }

    /// TS 29.229 §6.3.24: the assigned S-CSCF cannot be contacted, so ask the HSS
    /// for capabilities (UAR with REGISTRATION_AND_CAPABILITIES) and pick among
    /// the others; None when the HSS gives none that differ.
    async fn reselect(&self, inc: &Incoming, failed: Option<&str>) -> Option<Vec<Hop>> {
        let mut uar = identity::uar_for(&inc.message, &self.settings.domain);
        uar.authorization_type = UserAuthorizationType::RegistrationAndCapabilities;
        info!(failed, "assigned S-CSCF unavailable: UAR for capabilities");
        let assignment = match self.with_timeout(inc, self.cx.uar(uar)).await {
            Ok(a @ Assignment::Capabilities(_)) => a,
            Ok(other) => {
                info!(?other, "the HSS gave no capabilities: no other S-CSCF");
                return None;
            }
            Err(f) => {
                info!(failure = %f, "UAR for capabilities failed");
                return None;
            }
        };
        let hops: Vec<Hop> =
            select::candidates(&assignment, &self.settings.scscf, &self.settings.fallback)
                .into_iter()
                .filter(|(uri, _)| Some(uri.as_str()) != failed)
                .map(|(uri, how)| Hop {
                    scscf: Some(uri),
                    how: Some(how),
                })
                .collect();
        (!hops.is_empty()).then_some(hops)
    }

    /// UAR or LIR and the S-CSCF candidates; Err(()) once answered.
    async fn query(&self, inc: &Incoming) -> Result<Vec<Hop>, ()> {
        let msg = &inc.message;
        let procedure = if msg.method() == Some(&Method::Register) {
            Procedure::Registration
        } else {
            Procedure::Terminating
        };
        let result = match procedure {
            Procedure::Registration => {
                let uar = identity::uar_for(msg, &self.settings.domain);
                debug!(impu = %uar.public_identity, impi = %uar.user_name, uat = ?uar.authorization_type, "UAR");
                self.with_timeout(inc, self.cx.uar(uar)).await
            }
            Procedure::Terminating => {
                let impu = identity::lir_identity(msg);
                debug!(%impu, "LIR");
                self.with_timeout(inc, self.cx.lir(impu)).await
            }
        };
        let assignment = match result {
            Ok(a) => a,
            Err(f) => {
                let a = f.to_sip(procedure);
                info!(failure = %f, code = a.code, "Cx query failed");
                let headers: Vec<(&str, String)> = a
                    .retry_after
                    .map(|s| vec![("Retry-After", s.to_string())])
                    .unwrap_or_default();
                let status = StatusCode::new(a.code).unwrap_or(StatusCode::SERVER_INTERNAL_ERROR);
                self.answer(inc, status, Some(a.reason), &headers).await;
                return Err(());
            }
        };
        let candidates =
            select::candidates(&assignment, &self.settings.scscf, &self.settings.fallback);
        if candidates.is_empty() {
            warn!("no S-CSCF configured and the HSS named none");
            self.answer(
                inc,
                StatusCode::SERVER_INTERNAL_ERROR,
                Some("Server Internal Error (no S-CSCF)"),
                &[("Retry-After", HSS_RETRY_AFTER_S.to_string())],
            )
            .await;
            return Err(());
        }
        Ok(candidates
            .into_iter()
            .map(|(uri, how)| Hop {
                scscf: Some(uri),
                how: Some(how),
            })
            .collect())
    }

    /// A Cx query bounded by `diameter.request_timeout_ms`, and never past the
    /// request's forwarding budget (the answer must reach the P-CSCF before its
    /// Timer F).
    async fn with_timeout(
        &self,
        inc: &Incoming,
        f: crate::cx::CxFuture<'_, Assignment>,
    ) -> Result<Assignment, CxFailure> {
        let until = (std::time::Instant::now() + self.settings.cx_timeout)
            .min(forward::deadline(self, inc));
        match tokio::time::timeout_at(tokio::time::Instant::from_std(until), f).await {
            Ok(r) => r,
            Err(_) => Err(CxFailure::Timeout),
        }
    }

    /// The Via this node puts on top of a request it sends over `transport`.
    pub(crate) fn via(&self, transport: Transport) -> String {
        let locals = self.layer.transport().local_addrs();
        let local = locals
            .iter()
            .find(|l| l.0 == transport)
            .or(locals.first())
            .map(|l| l.1);
        let host = if !self.settings.advertised_host.is_empty() {
            self.settings.advertised_host.clone()
        } else {
            match local.map(|l| l.ip()) {
                Some(std::net::IpAddr::V6(v6)) => format!("[{v6}]"),
                Some(ip) => ip.to_string(),
                None => "127.0.0.1".into(),
            }
        };
        let port = local.map(|l| l.port()).unwrap_or(resolve::SIP_PORT);
        let t = match transport {
            Transport::Tcp => "TCP",
            Transport::Udp => "UDP",
        };
        format!("SIP/2.0/{t} {host}:{port};branch={}", new_branch())
    }

    /// CANCEL: 200 here, then a CANCEL of our own to where the INVITE went.
    async fn cancel(&self, inc: Incoming) {
        let target = TransactionKey::server(&inc.message)
            .ok()
            .map(|k| k.cancel_target())
            .and_then(|k| lock(&self.invites).get(&k).cloned());
        let Some(pending) = target else {
            self.answer(&inc, StatusCode::CALL_TRANSACTION_DOES_NOT_EXIST, None, &[])
                .await;
            return;
        };
        self.answer(&inc, StatusCode::OK, None, &[]).await;
        let cancel = match Message::parse(build_cancel(&pending.forwarded)) {
            Ok(c) => c,
            Err(e) => {
                warn!(error = %e, "could not build the CANCEL");
                return;
            }
        };
        info!(remote = %pending.target.remote, "CANCEL forwarded");
        if let Err(e) = self.layer.request(cancel, pending.target).await {
            debug!(error = %e, "CANCEL got no answer");
        }
    }

    /// ACK outside any transaction: on along its Route, statelessly.
    async fn ack(&self, inc: Incoming) {
        let Some(base) = self.prepare(&inc.message) else {
            return;
        };
        let Some(next) = base.header_elements(ims_sip_core::HeaderName::Route).next() else {
            debug!("ACK with no Route beyond this node: dropped");
            return;
        };
        let uri = ims_sip_core::NameAddr::parse(next)
            .ok()
            .map(|na| na.uri.to_string());
        let Some(target) = (match uri {
            Some(u) => resolve::uri_target(&u).await,
            None => None,
        }) else {
            debug!("ACK: next hop unresolvable: dropped");
            return;
        };
        let mut e = base.edit();
        e.prepend("Via", self.via(target.transport));
        let Ok(out) = e.finish_message() else { return };
        if let Err(e) = self.layer.transport().send(&target, &out).await {
            debug!(error = %e, "ACK not forwarded");
        }
    }
}
