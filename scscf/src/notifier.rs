//! The reg event package notifier (RFC 3680, RFC 6665 §4.2, TS 24.229 §5.4.2.1):
//! SUBSCRIBE handling, in-dialog NOTIFY construction, and the state changes that are not
//! REGISTERs — expiry (TIMEOUT_DEREGISTRATION) and HSS-initiated Registration-Termination.
//!
//! NOTIFYs leave the core as typed [`Notify`] values; the service turns each into a
//! request with its own Via ([`Notify::to_request`]) and runs it in a client transaction.

use crate::core::{respond, Core, Outcome, State};
use crate::cx::{SarRequest, ServerAssignmentType};
use crate::error::ScscfError;
use crate::model::{Contact, ContactEvent, Registration, Subscription};
use crate::reginfo::{self, ContactView};
use crate::registrar::local_tag;
use crate::store::StoreOp;
use bytes::Bytes;
use ims_sip_core::builder::{RequestBuilder, ResponseBuilder};
use ims_sip_core::header::Event;
use ims_sip_core::{HeaderName, Message, Method, NameAddr, ParseError, StatusCode};
use std::time::Instant;
use tracing::{info, warn};

/// Why the network removed a registration (Cx Deregistration-Reason, TS 29.229 §6.3.17).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtrReason {
    /// PERMANENT_TERMINATION (0): contacts `rejected`, the UE must not re-register.
    PermanentTermination,
    /// NEW_SERVER_ASSIGNED (1), SERVER_CHANGE (2), REMOVE_S_CSCF (3): contacts
    /// `deactivated`, the UE should re-register.
    Reregister,
}

/// One in-dialog NOTIFY of a reg-event subscription (RFC 6665 §4.2.2), as the core
/// decided it: everything but the Via, which the transport side adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notify {
    /// The subscription ([`Subscription::id`]); [`Core::notify_result`] takes it back.
    pub subscription: String,
    /// Request-URI: the subscriber's Contact (remote target).
    pub request_uri: String,
    /// Route set (the SUBSCRIBE's Record-Route, in received order).
    pub route_set: Vec<String>,
    /// From: our URI with our tag.
    pub from: String,
    /// To: the subscriber's URI with its tag.
    pub to: String,
    /// Dialog Call-ID.
    pub call_id: String,
    /// Our CSeq in the dialog.
    pub cseq: u32,
    /// Contact: our server name.
    pub contact: String,
    /// `Subscription-State` value (`active;expires=…`, `terminated;reason=…`).
    pub state: String,
    /// `application/reginfo+xml` document.
    pub body: Bytes,
}

impl Notify {
    /// The URI the request goes to first (RFC 3261 §8.1.2 with a loose-routing route
    /// set): the first Route entry, else the Request-URI.
    pub fn next_hop(&self) -> String {
        match self.route_set.first() {
            Some(r) => NameAddr::parse(r)
                .map(|n| n.uri.to_string())
                .unwrap_or_else(|_| r.trim_matches(['<', '>']).to_string()),
            None => self.request_uri.clone(),
        }
    }

    /// `true` when the subscription ends with this NOTIFY.
    pub fn is_terminated(&self) -> bool {
        self.state.starts_with("terminated")
    }

    /// The request with a top Via `SIP/2.0/<transport> <sent_by>;branch=<branch>;rport`.
    pub fn to_request(
        &self,
        transport: &str,
        sent_by: &str,
        branch: &str,
    ) -> Result<Message, ParseError> {
        let mut b = RequestBuilder::new(Method::Notify, &self.request_uri).header(
            "Via",
            format!("SIP/2.0/{transport} {sent_by};branch={branch};rport"),
        );
        for r in &self.route_set {
            b = b.header("Route", r);
        }
        b.max_forwards(70)
            .header("From", &self.from)
            .header("To", &self.to)
            .call_id(&self.call_id)
            .header("CSeq", format!("{} NOTIFY", self.cseq))
            .header("Contact", &self.contact)
            .header("Event", "reg")
            .header("Subscription-State", &self.state)
            .body(reginfo::CONTENT_TYPE, self.body.clone())
            .build_message()
    }
}

/// Header value without its `tag` parameter.
fn strip_tag(v: &str) -> String {
    match NameAddr::parse(v) {
        Ok(mut na) => {
            na.params.remove("tag");
            let mut s = String::new();
            if let Some(d) = &na.display {
                s.push_str(d);
                s.push(' ');
            }
            s.push('<');
            s.push_str(&na.uri.to_string());
            s.push('>');
            s.push_str(&na.params.to_string());
            s
        }
        Err(_) => v.to_string(),
    }
}

impl Core {
    /// Builds the NOTIFYs for a change of `reg` (its contacts are the new state,
    /// `removed` the contacts that just ended). Terminates every subscription when the
    /// registration has no contact left (`Subscription-State: terminated;reason=…`).
    pub(crate) fn notifies_for_change(
        &self,
        st: &mut State,
        reg: &Registration,
        removed: &[(Contact, ContactEvent)],
        now: u64,
        reason: Option<&str>,
        ops: &mut Vec<StoreOp>,
    ) -> Vec<Notify> {
        let ids: Vec<String> = reg
            .impus
            .iter()
            .filter_map(|i| st.subs_by_aor.get(i))
            .flatten()
            .cloned()
            .collect();
        if ids.is_empty() {
            return Vec::new();
        }
        let mut views: Vec<ContactView<'_>> = reg
            .contacts
            .iter()
            .map(|c| ContactView {
                contact: c,
                event: c.event,
            })
            .collect();
        views.extend(removed.iter().map(|(c, e)| ContactView {
            contact: c,
            event: *e,
        }));
        let terminated = reg.contacts.is_empty();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if terminated {
                if let Some(mut s) = st.remove_sub(&id) {
                    let state = format!("terminated;reason={}", reason.unwrap_or("noresource"));
                    out.push(self.build_notify(&mut s, &reg.impus, &views, &state, now));
                    ops.push(StoreOp::DeleteSubscription(id));
                }
            } else if let Some(s) = st.subs.get_mut(&id) {
                let state = format!("active;expires={}", s.expires_at.saturating_sub(now));
                out.push(self.build_notify(s, &reg.impus, &views, &state, now));
                ops.push(StoreOp::PutSubscription(s.clone()));
            }
        }
        out
    }

    /// One in-dialog NOTIFY (RFC 6665 §4.2.2): To/From from the subscriber's view swapped,
    /// Request-URI = the subscriber's Contact, Route = the SUBSCRIBE's Record-Route.
    fn build_notify(
        &self,
        s: &mut Subscription,
        impus: &[String],
        views: &[ContactView<'_>],
        sub_state: &str,
        now: u64,
    ) -> Notify {
        let body = reginfo::render(s.version, impus, views, now);
        s.version += 1;
        s.local_cseq += 1;
        Notify {
            subscription: s.id.clone(),
            request_uri: s.remote_target.clone(),
            route_set: s.route_set.clone(),
            from: format!("{};tag={}", s.local_uri, s.local_tag),
            to: format!("{};tag={}", s.remote_uri, s.remote_tag),
            call_id: s.call_id.clone(),
            cseq: s.local_cseq,
            contact: format!("<{}>", self.settings.server_name),
            state: sub_state.to_string(),
            body: Bytes::from(body),
        }
    }

    /// Handles a SUBSCRIBE for the reg event (RFC 3680 §4, TS 24.229 §5.4.2.1.1).
    pub async fn subscribe(&self, req: &Message, now: u64) -> Outcome {
        match self.subscribe_inner(req, now).await {
            Ok(o) => o,
            Err(e) => {
                info!(call_id = req.call_id().unwrap_or("-"), error = %e, "SUBSCRIBE refused");
                Outcome {
                    response: self.error_response(req, &e),
                    notifies: Vec::new(),
                }
            }
        }
    }

    async fn subscribe_inner(&self, req: &Message, now: u64) -> Result<Outcome, ScscfError> {
        let is_reg = match req.typed::<Event>() {
            Some(Ok(e)) => e.package.eq_ignore_ascii_case("reg"),
            _ => false,
        };
        if !is_reg || !self.settings.reg_event {
            return Err(ScscfError::BadEvent);
        }
        let to_v = req
            .header(HeaderName::To)
            .ok_or(ScscfError::BadRequest("To"))?;
        let from_v = req
            .header(HeaderName::From)
            .ok_or(ScscfError::BadRequest("From"))?;
        let to = NameAddr::parse(to_v).map_err(|_| ScscfError::BadRequest("To"))?;
        let from = NameAddr::parse(from_v).map_err(|_| ScscfError::BadRequest("From"))?;
        let remote_tag = from
            .tag()
            .ok_or(ScscfError::BadRequest("From tag"))?
            .to_string();
        let call_id = req
            .call_id()
            .ok_or(ScscfError::BadRequest("Call-ID"))?
            .to_string();
        let requested: u32 = match req.header(HeaderName::Expires) {
            Some(v) => v
                .trim()
                .parse()
                .map_err(|_| ScscfError::BadRequest("Expires"))?,
            None => self.settings.subscribe_default_expires,
        };
        let expires = requested.min(self.settings.subscribe_max_expires);
        let target = req
            .header_elements(HeaderName::Contact)
            .next()
            .and_then(|c| NameAddr::parse(c).ok())
            .map(|n| n.uri.to_string());
        let to_uri = to.uri.to_string();
        let mut ops = Vec::new();
        let (response, notifies) = {
            let mut st = self.lock();
            let (id, tag) = match to.tag() {
                Some(t) => {
                    let id = Subscription::dialog_id(&call_id, t, &remote_tag);
                    if !st.subs.contains_key(&id) {
                        return Err(ScscfError::NoSuchDialog);
                    }
                    (id, t.to_string())
                }
                None => {
                    let uri = req.request_uri_str().unwrap_or("");
                    let aor = if st.by_impu.contains_key(uri) {
                        uri.to_string()
                    } else {
                        to_uri.clone()
                    };
                    if !st.by_impu.contains_key(&aor) {
                        return Err(ScscfError::NotRegistered);
                    }
                    let target = target.clone().ok_or(ScscfError::BadRequest("Contact"))?;
                    let tag = local_tag(req);
                    let id = Subscription::dialog_id(&call_id, &tag, &remote_tag);
                    st.add_sub(Subscription {
                        id: id.clone(),
                        aor,
                        call_id: call_id.clone(),
                        local_tag: tag.clone(),
                        remote_tag: remote_tag.clone(),
                        local_uri: strip_tag(to_v),
                        remote_uri: strip_tag(from_v),
                        remote_target: target,
                        route_set: req
                            .header_elements(HeaderName::RecordRoute)
                            .map(str::to_string)
                            .collect(),
                        local_cseq: 0,
                        version: 0,
                        expires_at: now,
                    });
                    (id, tag)
                }
            };
            if let Some(s) = st.subs.get_mut(&id) {
                s.expires_at = now + u64::from(expires);
                if let Some(t) = &target {
                    s.remote_target = t.clone();
                }
            }
            st.sub_expires(&id, now + u64::from(expires));
            let reg = st
                .subs
                .get(&id)
                .and_then(|s| st.by_impu.get(&s.aor))
                .and_then(|rid| st.regs.get(rid))
                .cloned();
            let impus = reg.as_ref().map(|r| r.impus.clone()).unwrap_or_default();
            let contacts = reg.map(|r| r.contacts).unwrap_or_default();
            let views: Vec<ContactView<'_>> = contacts
                .iter()
                .map(|c| ContactView {
                    contact: c,
                    event: c.event,
                })
                .collect();
            let notify = if expires == 0 {
                let mut s = st.remove_sub(&id).ok_or(ScscfError::NoSuchDialog)?;
                ops.push(StoreOp::DeleteSubscription(id));
                self.build_notify(&mut s, &impus, &views, "terminated;reason=timeout", now)
            } else {
                let s = st.subs.get_mut(&id).ok_or(ScscfError::NoSuchDialog)?;
                let n =
                    self.build_notify(s, &impus, &views, &format!("active;expires={expires}"), now);
                ops.push(StoreOp::PutSubscription(s.clone()));
                n
            };
            let r = ResponseBuilder::new(req, StatusCode::OK)
                .to_tag(tag)
                .copy_header("Record-Route")
                .header("Expires", expires)
                .header("Contact", format_args!("<{}>", self.settings.server_name));
            (respond(r, req), vec![notify])
        };
        self.persist(ops).await;
        info!(call_id = %call_id, expires, "200 OK to SUBSCRIBE reg");
        Ok(Outcome { response, notifies })
    }

    /// A final response (or a timeout, `code` 408) to a NOTIFY we sent for
    /// `subscription` ([`Notify::subscription`]): 481 and other failures end the
    /// subscription (RFC 6665 §4.2.2).
    pub async fn notify_result(&self, subscription: &str, code: u16) {
        if code < 300 {
            return;
        }
        let removed = self.lock().remove_sub(subscription);
        if let Some(s) = removed {
            info!(
                call_id = %s.call_id,
                code, "NOTIFY failed: reg-event subscription removed"
            );
            self.persist(vec![StoreOp::DeleteSubscription(s.id)]).await;
        }
    }

    /// Registration-Termination from the HSS (TS 29.228 §6.1.3, TS 24.229 §5.4.1.5):
    /// removes the bindings of `impus` (all of the IMPI's registrations when empty) and
    /// returns the NOTIFYs (`rejected` or `deactivated`, subscriptions terminated).
    /// Returns the IMPUs that were registered here.
    pub async fn registration_termination(
        &self,
        impi: &str,
        impus: &[String],
        reason: RtrReason,
        now: u64,
    ) -> (Vec<String>, Vec<Notify>) {
        let event = match reason {
            RtrReason::PermanentTermination => ContactEvent::Rejected,
            RtrReason::Reregister => ContactEvent::Deactivated,
        };
        let sub_reason = match reason {
            RtrReason::PermanentTermination => "rejected",
            RtrReason::Reregister => "deactivated",
        };
        let mut ops = Vec::new();
        let mut notifies = Vec::new();
        let mut affected = Vec::new();
        {
            let mut st = self.lock();
            let ids: Vec<String> = if impus.is_empty() {
                st.regs
                    .values()
                    .filter(|r| r.impi == impi)
                    .map(|r| r.id.clone())
                    .collect()
            } else {
                let mut v: Vec<String> = impus
                    .iter()
                    .filter_map(|i| st.by_impu.get(i).cloned())
                    .collect();
                v.sort();
                v.dedup();
                v
            };
            for id in ids {
                let Some(mut reg) = st.regs.remove(&id) else {
                    continue;
                };
                for i in &reg.impus {
                    st.by_impu.remove(i);
                }
                let removed: Vec<(Contact, ContactEvent)> =
                    reg.contacts.drain(..).map(|c| (c, event)).collect();
                notifies.extend(self.notifies_for_change(
                    &mut st,
                    &reg,
                    &removed,
                    now,
                    Some(sub_reason),
                    &mut ops,
                ));
                ops.push(StoreOp::DeleteRegistration(id));
                affected.extend(reg.impus.iter().cloned());
            }
        }
        self.persist(ops).await;
        info!(impi, ?affected, ?reason, "registration terminated by HSS");
        (affected, notifies)
    }

    /// Periodic work: expires contacts (NOTIFY `expired`; SAR TIMEOUT_DEREGISTRATION when
    /// the last one goes), reg-event subscriptions (NOTIFY `terminated;reason=timeout`)
    /// and stale nonces. Returns the NOTIFYs.
    pub async fn tick(&self, now: u64) -> Vec<Notify> {
        let mut ops = Vec::new();
        let mut notifies = Vec::new();
        let mut sars = Vec::new();
        {
            let mut st = self.lock();
            let inst = Instant::now();
            st.challenges.retain(|_, p| p.expires > inst);
            let due = st.reg_expiry.pop_due(now);
            for id in due {
                let Some(mut reg) = st.regs.remove(&id) else {
                    continue;
                };
                if !reg.contacts.iter().any(|c| c.expires_at <= now) {
                    // a stale entry: refreshed since (a later entry exists)
                    st.regs.insert(id, reg);
                    continue;
                }
                let (gone, keep): (Vec<Contact>, Vec<Contact>) =
                    reg.contacts.drain(..).partition(|c| c.expires_at <= now);
                reg.contacts = keep;
                let removed: Vec<(Contact, ContactEvent)> = gone
                    .into_iter()
                    .map(|c| (c, ContactEvent::Expired))
                    .collect();
                notifies
                    .extend(self.notifies_for_change(&mut st, &reg, &removed, now, None, &mut ops));
                if reg.contacts.is_empty() {
                    for i in &reg.impus {
                        st.by_impu.remove(i);
                    }
                    ops.push(StoreOp::DeleteRegistration(id));
                    sars.push(SarRequest {
                        impi: reg.impi.clone(),
                        impu: reg.impus.first().cloned().unwrap_or_default(),
                        server_name: self.settings.server_name.clone(),
                        assignment: ServerAssignmentType::TimeoutDeregistration,
                    });
                    info!(impu = ?reg.impus.first(), "registration expired");
                } else {
                    ops.push(StoreOp::PutRegistration(reg.clone()));
                    st.put_reg(reg);
                }
            }
            let subs_due: Vec<String> = st
                .sub_expiry
                .pop_due(now)
                .into_iter()
                .filter(|id| st.subs.get(id).is_some_and(|s| s.expires_at <= now))
                .collect();
            for id in subs_due {
                let Some(mut s) = st.remove_sub(&id) else {
                    continue;
                };
                let reg = st.by_impu.get(&s.aor).and_then(|r| st.regs.get(r)).cloned();
                let impus = reg
                    .as_ref()
                    .map(|r| r.impus.clone())
                    .unwrap_or_else(|| vec![s.aor.clone()]);
                let contacts = reg.map(|r| r.contacts).unwrap_or_default();
                let views: Vec<ContactView<'_>> = contacts
                    .iter()
                    .map(|c| ContactView {
                        contact: c,
                        event: c.event,
                    })
                    .collect();
                notifies.push(self.build_notify(
                    &mut s,
                    &impus,
                    &views,
                    "terminated;reason=timeout",
                    now,
                ));
                ops.push(StoreOp::DeleteSubscription(id));
            }
        }
        self.persist(ops).await;
        for sar in sars {
            let impu = sar.impu.clone();
            if let Err(e) = self.cx_sar(sar).await {
                warn!(impu = %impu, error = %e, "SAR TIMEOUT_DEREGISTRATION failed");
            }
        }
        notifies
    }
}
