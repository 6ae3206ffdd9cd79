//! Stateful forwarding with failover (RFC 3261 §16.6–§16.7; TS 24.229 §5.3.1.3).
//!
//! Each attempt is a client transaction (RFC 3261 §17.1) to one hop: the S-CSCF
//! put in a `Route` (`<uri;lr>`, §16.6 step 6) or the next hop of a Route already
//! present. Provisional responses other than 100 go upstream at once (§16.7 step 5),
//! the final one with this node's Via removed (step 9); 2xx retransmissions of an
//! INVITE keep flowing (RFC 6026).
//!
//! An attempt fails when the hop does not answer, cannot be reached, or answers 503
//! (§16.7 step 6, §16.9), 3xx or 480 (TS 24.229 §5.3.1.3). A REGISTER whose S-CSCF
//! the I-CSCF chose itself then goes to the next candidate (one the HSS assigned:
//! see `proxy`, a new UAR first); with no candidate left:
//! - no answer / unreachable → **504 Server Time-out** (a proxy's answer when the
//!   next hop never replied; 408 is the UAC's own timeout),
//! - 503 → **500** (§16.7 step 6: a proxy does not pass 503 upstream), its
//!   `Retry-After` kept,
//! - 3xx / 480 → relayed as it came.
//!
//! Time budget: the upstream client transaction gives up after Timer F (64·T1), so
//! every attempt together must end before that: the budget is
//! [`BUDGET_T1`]·T1 from the request's arrival, shared evenly by the attempts left
//! (an assigned S-CSCF that may be re-selected gets half).
//! An attempt stops waiting at its share only while no response at all has come
//! (after a provisional one, the transaction's own timers rule).

use std::time::{Duration, Instant};

use ims_sip_core::{Message, Method, StatusCode};
use ims_sip_transport::{Incoming, Target, TransportError};
use tracing::{debug, warn};

use crate::cx::HSS_RETRY_AFTER_S;
use crate::proxy::{lock, PendingInvite, Proxy};
use crate::select::Selected;
use ims_sip_transport::resolve;

/// The whole forwarding budget in units of T1 (Timer F = 64·T1 upstream, minus a
/// margin for the answer's way back).
pub const BUDGET_T1: u32 = 60;

/// One place a request can be forwarded to.
#[derive(Debug, Clone)]
pub(crate) struct Hop {
    /// The S-CSCF to put in a Route; `None`: follow the request's own Route.
    pub(crate) scscf: Option<String>,
    /// How it was selected (logs, failover rule).
    pub(crate) how: Option<Selected>,
}

/// A request ready to forward: Route entries of this node removed, Max-Forwards
/// decremented; the hops in order; whether to go on after a failed one; how many
/// attempts may follow this plan (a re-selection), sharing the budget.
pub(crate) struct Plan {
    pub(crate) base: Message,
    pub(crate) hops: Vec<Hop>,
    pub(crate) failover: bool,
    pub(crate) reserve: u32,
}

/// Why an attempt did not produce a response to relay.
#[derive(Debug)]
pub(crate) enum Failure {
    /// No response in time (Timer B/F or the attempt's budget).
    Timeout,
    /// The hop could not be reached (connection refused, ICMP, …).
    Unreachable(TransportError),
    /// The hop's URI does not resolve.
    Unresolvable,
    /// A final response that allows another S-CSCF: 503, 3xx, 480.
    Rejected(Message),
}

/// When the whole forwarding of `inc` must be over.
pub(crate) fn deadline(proxy: &Proxy, inc: &Incoming) -> Instant {
    let t1 = Duration::from_millis(proxy.settings.timers.t1_ms.max(1));
    inc.received_at + t1 * BUDGET_T1
}

/// Forwards per `plan` until `deadline`; Ok once a final response went upstream,
/// else the last attempt's failure (nothing sent upstream yet but provisionals).
pub(crate) async fn run(
    proxy: &Proxy,
    inc: &Incoming,
    plan: &Plan,
    deadline: Instant,
) -> Result<(), Failure> {
    let hops = if plan.failover {
        &plan.hops[..]
    } else {
        &plan.hops[..plan.hops.len().min(1)]
    };
    let mut last = Failure::Timeout;
    for (i, hop) in hops.iter().enumerate() {
        let left = (hops.len() - i) as u32 + plan.reserve;
        let share = deadline.saturating_duration_since(Instant::now()) / left;
        match attempt(proxy, inc, &plan.base, hop, Instant::now() + share).await {
            Ok(()) => return Ok(()),
            Err(f) => {
                let next = hops.get(i + 1).and_then(|h| h.scscf.as_deref());
                warn!(scscf = hop.scscf.as_deref().unwrap_or("(Route)"), failure = ?short(&f), next, "forwarding attempt failed");
                last = f;
            }
        }
    }
    Err(last)
}

/// The answer upstream when every attempt failed.
pub(crate) async fn answer_failure(proxy: &Proxy, inc: &Incoming, last: Failure) {
    match last {
        Failure::Timeout | Failure::Unreachable(_) => {
            proxy
                .answer(inc, StatusCode::SERVER_TIMEOUT, None, &[])
                .await
        }
        Failure::Unresolvable => {
            proxy
                .answer(
                    inc,
                    StatusCode::NOT_FOUND,
                    Some("Not Found (next hop unresolvable)"),
                    &[],
                )
                .await
        }
        Failure::Rejected(resp) if resp.status() == Some(StatusCode::SERVICE_UNAVAILABLE) => {
            let retry_after = resp
                .header_str("Retry-After")
                .map(str::to_string)
                .unwrap_or_else(|| HSS_RETRY_AFTER_S.to_string());
            proxy
                .answer(
                    inc,
                    StatusCode::SERVER_INTERNAL_ERROR,
                    Some("Server Internal Error (S-CSCF unavailable)"),
                    &[("Retry-After", retry_after)],
                )
                .await
        }
        Failure::Rejected(resp) => proxy.relay(inc, &resp).await,
    }
}

fn short(f: &Failure) -> String {
    match f {
        Failure::Timeout => "no answer".into(),
        Failure::Unreachable(e) => format!("unreachable: {e}"),
        Failure::Unresolvable => "unresolvable".into(),
        Failure::Rejected(r) => format!(
            "answered {}",
            r.status().map(|s| s.as_u16()).unwrap_or_default()
        ),
    }
}

/// The request for one hop: a Route to the S-CSCF (if any) and this node's Via.
async fn build(proxy: &Proxy, base: &Message, hop: &Hop) -> Option<(Message, Target)> {
    let mut e = base.edit();
    let next_uri = match &hop.scscf {
        Some(uri) => {
            let route = if uri.contains(";lr") {
                format!("<{uri}>")
            } else {
                format!("<{uri};lr>")
            };
            e.prepend("Route", route);
            uri.clone()
        }
        None => {
            let first = base
                .header_elements(ims_sip_core::HeaderName::Route)
                .next()
                .map(str::to_string);
            match first.as_deref().map(ims_sip_core::NameAddr::parse) {
                Some(Ok(na)) => na.uri.to_string(),
                _ => base.request_uri_str().unwrap_or("").to_string(),
            }
        }
    };
    let target = resolve::uri_target(&next_uri).await?;
    e.prepend("Via", proxy.via(target.transport));
    let out = e.finish_message().ok()?;
    Some((out, target))
}

fn removes_top_via(resp: &Message) -> Option<Message> {
    let mut e = resp.edit();
    e.remove_top_via();
    e.finish_message().ok()
}

fn allows_failover(status: StatusCode) -> bool {
    status == StatusCode::SERVICE_UNAVAILABLE
        || status == StatusCode::TEMPORARILY_UNAVAILABLE
        || status.class() == 3
}

/// One client transaction; Ok once a final response went upstream.
async fn attempt(
    proxy: &Proxy,
    inc: &Incoming,
    base: &Message,
    hop: &Hop,
    give_up_at: Instant,
) -> Result<(), Failure> {
    let Some((fwd, target)) = build(proxy, base, hop).await else {
        return Err(Failure::Unresolvable);
    };
    debug!(scscf = hop.scscf.as_deref().unwrap_or("(Route)"), how = ?hop.how, remote = %target.remote, "forwarding");
    let invite_key = (fwd.method() == Some(&Method::Invite))
        .then(|| ims_sip_core::transaction::TransactionKey::server(&inc.message).ok())
        .flatten();
    if let Some(k) = &invite_key {
        lock(&proxy.invites).insert(
            k.clone(),
            PendingInvite {
                forwarded: fwd.clone(),
                target,
            },
        );
    }
    let result = drive(proxy, inc, fwd, target, give_up_at).await;
    if let Some(k) = &invite_key {
        lock(&proxy.invites).remove(k);
    }
    result
}

async fn drive(
    proxy: &Proxy,
    inc: &Incoming,
    fwd: Message,
    target: Target,
    give_up_at: Instant,
) -> Result<(), Failure> {
    let mut tx = match proxy.layer.send_request(fwd, target).await {
        Ok(tx) => tx,
        Err(e) => return Err(Failure::Unreachable(e)),
    };
    let mut answered = false;
    loop {
        let next = if answered {
            tx.next_response().await
        } else {
            let at = tokio::time::Instant::from_std(give_up_at);
            match tokio::time::timeout_at(at, tx.next_response()).await {
                Ok(r) => r,
                Err(_) => return Err(Failure::Timeout),
            }
        };
        let resp = match next {
            None | Some(Err(TransportError::Timeout)) => return Err(Failure::Timeout),
            Some(Err(e)) => return Err(Failure::Unreachable(e)),
            Some(Ok(r)) => r,
        };
        answered = true;
        let Some(status) = resp.status() else {
            continue;
        };
        if status.is_provisional() {
            // §16.7 step 5: 100 is hop by hop; the others go upstream.
            if status != StatusCode::TRYING {
                if let Some(up) = removes_top_via(&resp) {
                    proxy.relay(inc, &up).await;
                }
            }
            continue;
        }
        if allows_failover(status) {
            return Err(Failure::Rejected(match removes_top_via(&resp) {
                Some(up) => up,
                None => resp,
            }));
        }
        let Some(up) = removes_top_via(&resp) else {
            warn!(
                status = status.as_u16(),
                "response without a Via left: dropped"
            );
            return Err(Failure::Timeout);
        };
        debug!(status = status.as_u16(), "final response relayed");
        proxy.relay(inc, &up).await;
        if status.is_success() && inc.message.method() == Some(&Method::Invite) {
            // RFC 6026: retransmitted 2xx pass through until Timer M.
            while let Some(Ok(again)) = tx.next_response().await {
                if let Some(up) = removes_top_via(&again) {
                    proxy.relay(inc, &up).await;
                }
            }
        }
        return Ok(());
    }
}
