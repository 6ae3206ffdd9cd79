//! REGISTER handling (RFC 3261 §10.3, TS 24.229 §5.4.1.2): challenge with a MAR vector,
//! verify the digest (RFC 2617 / RFC 3310 AKAv1-MD5, SIP Digest MD5), re-synchronise
//! from `auts`, then update the bindings with SAR and answer 200 OK with
//! Service-Route, P-Associated-URI and Path.

use crate::auth::{decode_auts, decode_nonce, Challenge};
use crate::core::{respond, Core, Outcome, Pending, Secret};
use crate::cx::{
    identities_from_user_data, AuthScheme, AuthVector, CxError, MarRequest, SarRequest,
    ServerAssignmentType,
};
use crate::digest::{ha1, ha2, hex_eq, request_digest, QopFields};
use crate::error::ScscfError;
use crate::model::{Contact, ContactEvent, Registration};
use crate::store::StoreOp;
use ims_sip_core::builder::ResponseBuilder;
use ims_sip_core::header::{Contact as ContactHeader, Credentials};
use ims_sip_core::{HeaderName, Message, NameAddr, StatusCode};
use std::time::Instant;
use tracing::{debug, info, warn};

/// The IMPI to use when the REGISTER carries no `username`: the To IMPU without
/// its `sip:`/`sips:` scheme (TS 33.203 §6.1.1 leaves derivation to the UE; this is the
/// convention Kamailio and PyHSS use for non-AKA clients).
pub fn impi_from_impu(impu: &str) -> String {
    impu.strip_prefix("sip:")
        .or_else(|| impu.strip_prefix("sips:"))
        .unwrap_or(impu)
        .to_string()
}

fn host_of_impu(impu: &str) -> String {
    let s = impi_from_impu(impu);
    let h = s.rsplit_once('@').map(|(_, h)| h).unwrap_or(&s);
    let end = h.find([';', ':', '>', '?']).unwrap_or(h.len());
    h[..end].to_string()
}

/// A requested binding change.
struct ContactReq<'m> {
    na: NameAddr<'m>,
    expires: u32,
}

enum ContactsReq<'m> {
    Fetch,
    Star,
    List(Vec<ContactReq<'m>>),
}

/// RFC 5626 §6: `+sip.instance` + `reg-id` identify a binding; else the URI does.
fn binding_key(na: &NameAddr<'_>, uri: &str) -> (String, Option<String>, Option<u32>) {
    let instance = na.sip_instance().map(|i| i.into_owned());
    let reg_id = na.reg_id();
    let key = match (&instance, reg_id) {
        (Some(i), Some(r)) => format!("{i};reg-id={r}"),
        (Some(i), None) => i.clone(),
        _ => uri.to_string(),
    };
    (key, instance, reg_id)
}

/// The Contact header parameters other than `expires`, as `;a=b` text.
fn params_text(na: &NameAddr<'_>) -> String {
    let mut p = na.params.clone();
    p.remove("expires");
    p.to_string()
}

/// The status code for a numeric code from [`ScscfError::to_sip_status`].
fn status_of(code: u16) -> StatusCode {
    StatusCode::new(code).unwrap_or(StatusCode::SERVER_INTERNAL_ERROR)
}

impl Core {
    /// Handles a REGISTER; never fails: errors become their SIP final response.
    pub async fn register(&self, req: &Message, now: u64) -> Outcome {
        match self.register_inner(req, now).await {
            Ok(o) => o,
            Err(e) => {
                info!(call_id = req.call_id().unwrap_or("-"), error = %e, "REGISTER refused");
                Outcome::response(self.error_response(req, &e))
            }
        }
    }

    /// The final response for an error (423 carries Min-Expires, 5xx Retry-After).
    pub fn error_response(&self, req: &Message, e: &ScscfError) -> Message {
        let (code, reason, retry) = e.to_sip_status(self.settings.retry_after);
        let mut r = ResponseBuilder::new(req, status_of(code))
            .reason(reason)
            .to_tag(local_tag(req));
        if let ScscfError::IntervalTooBrief { min } = e {
            r = r.header("Min-Expires", min);
        }
        if let Some(secs) = retry {
            r = r.header("Retry-After", secs);
        }
        if code == 489 {
            r = r.header("Allow-Events", "reg");
        }
        respond(r, req)
    }

    async fn register_inner(&self, req: &Message, now: u64) -> Result<Outcome, ScscfError> {
        let impu = match req.to_addr() {
            Some(Ok(to)) => to.uri.to_string(),
            _ => return Err(ScscfError::BadRequest("To")),
        };
        let call_id = req.call_id().ok_or(ScscfError::BadRequest("Call-ID"))?;
        if !matches!(req.cseq(), Some(Ok(_))) {
            return Err(ScscfError::BadRequest("CSeq"));
        }
        // RFC 4475 §3.3.7: an unknown scheme is as good as no credentials: challenge.
        let creds = req
            .header_values(HeaderName::Authorization)
            .filter_map(|v| Credentials::parse(v).ok())
            .find(Credentials::is_digest);
        let get = |c: &Credentials<'_>, n: &str| -> Option<String> {
            c.params.get_unquoted(n).map(|v| v.into_owned())
        };
        let impi = creds
            .as_ref()
            .and_then(|c| get(c, "username"))
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| impi_from_impu(&impu));
        let realm = self
            .settings
            .realm
            .clone()
            .unwrap_or_else(|| host_of_impu(&impu));
        let want_md5 = creds
            .as_ref()
            .and_then(|c| c.algorithm())
            .is_some_and(|a| a.eq_ignore_ascii_case("MD5"));

        let Some(c) = creds else {
            return self
                .challenge(req, &impi, &impu, &realm, false, false, None)
                .await;
        };
        let Some(nonce) = get(&c, "nonce").filter(|n| !n.is_empty()) else {
            return self
                .challenge(req, &impi, &impu, &realm, want_md5, false, None)
                .await;
        };
        if let Some(auts) = c.auts() {
            // RFC 3310 §3.4 / TS 33.203 §6.3.3: MAR with RAND ‖ AUTS.
            let auts = decode_auts(&auts).ok_or(ScscfError::BadRequest("auts"))?;
            let rand = decode_nonce(&nonce)
                .filter(|n| n.len() >= 16)
                .map(|n| n[..16].to_vec())
                .ok_or(ScscfError::BadRequest("nonce"))?;
            self.lock().challenges.remove(&nonce);
            info!(call_id, impi = %impi, "AKA re-synchronisation requested (auts)");
            let mut resync = rand;
            resync.extend_from_slice(&auts);
            return self
                .challenge(req, &impi, &impu, &realm, false, false, Some(resync))
                .await;
        }
        let Some(response) = get(&c, "response").filter(|r| !r.is_empty()) else {
            return self
                .challenge(req, &impi, &impu, &realm, want_md5, false, None)
                .await;
        };
        let pending = {
            let st = self.lock();
            st.challenges.get(&nonce).cloned()
        };
        let Some(p) = pending.filter(|p| p.expires > Instant::now()) else {
            debug!(call_id, "unknown or expired nonce: stale challenge");
            self.lock().challenges.remove(&nonce);
            return self
                .challenge(req, &impi, &impu, &realm, want_md5, true, None)
                .await;
        };
        if p.impi != impi {
            return Err(ScscfError::AuthFailed("username does not own this nonce"));
        }
        let uri = get(&c, "uri").ok_or(ScscfError::BadRequest("digest uri"))?;
        let h1 = match &p.secret {
            Secret::Xres(x) => ha1(&impi, &p.realm, x),
            Secret::Ha1(h) => h.to_ascii_lowercase(),
        };
        let qop_v = get(&c, "qop").filter(|q| !q.is_empty());
        let nc_v = get(&c, "nc");
        let cnonce_v = get(&c, "cnonce");
        let qop = match &qop_v {
            Some(q) => Some(QopFields {
                qop: q,
                nc: nc_v.as_deref().ok_or(ScscfError::BadRequest("nc"))?,
                cnonce: cnonce_v
                    .as_deref()
                    .ok_or(ScscfError::BadRequest("cnonce"))?,
            }),
            None => None,
        };
        let method = req.method().map(|m| m.as_str()).unwrap_or("REGISTER");
        let expected = request_digest(&h1, &nonce, qop, &ha2(method, &uri));
        if !hex_eq(&expected, &response) {
            self.lock().challenges.remove(&nonce);
            warn!(call_id, impi = %impi, "digest response wrong: 403, no binding");
            return Err(ScscfError::AuthFailed("wrong digest response"));
        }
        // Replay protection: nc must grow; without qop a nonce is good once.
        let replay = {
            let mut st = self.lock();
            match st.challenges.get_mut(&nonce) {
                None => true,
                Some(e) => match qop {
                    Some(q) => {
                        let nc = u32::from_str_radix(q.nc, 16).unwrap_or(0);
                        if e.last_nc.is_some_and(|l| nc <= l) {
                            true
                        } else {
                            e.last_nc = Some(nc);
                            false
                        }
                    }
                    None => std::mem::replace(&mut e.used_without_qop, true),
                },
            }
        };
        if replay {
            return self
                .challenge(req, &impi, &impu, &realm, want_md5, true, None)
                .await;
        }
        debug!(call_id, impi = %impi, impu = %impu, "authenticated");
        self.update_bindings(req, &impi, &impu, now).await
    }

    #[allow(clippy::too_many_arguments)]
    async fn challenge(
        &self,
        req: &Message,
        impi: &str,
        impu: &str,
        realm: &str,
        want_md5: bool,
        stale: bool,
        resync: Option<Vec<u8>>,
    ) -> Result<Outcome, ScscfError> {
        let mut mar = MarRequest {
            impi: impi.to_string(),
            impu: impu.to_string(),
            scheme: if want_md5 {
                AuthScheme::SipDigest
            } else {
                AuthScheme::AkaV1Md5
            },
            server_name: self.settings.server_name.clone(),
            resync,
        };
        let mut vectors = self.cx_mar(mar.clone()).await;
        if matches!(vectors, Err(CxError::Experimental(5006))) && !want_md5 && mar.resync.is_none()
        {
            // Subscriber has a password, not K: fall back to SIP Digest.
            mar.scheme = AuthScheme::SipDigest;
            vectors = self.cx_mar(mar).await;
        }
        let vector = vectors?
            .into_iter()
            .next()
            .ok_or_else(|| CxError::BadAnswer("MAA without SIP-Auth-Data-Item".into()))?;
        let (challenge, secret) = match vector {
            AuthVector::Aka {
                rand_autn,
                xres,
                ck,
                ik,
            } => (Challenge::Aka { rand_autn, ck, ik }, Secret::Xres(xres)),
            AuthVector::Digest { ha1 } => {
                let nonce = base64_random_nonce();
                (Challenge::Md5 { nonce }, Secret::Ha1(ha1))
            }
        };
        let nonce = challenge.nonce();
        {
            let mut st = self.lock();
            st.challenges.insert(
                nonce,
                Pending {
                    impi: impi.to_string(),
                    realm: realm.to_string(),
                    secret,
                    expires: Instant::now() + self.settings.nonce_ttl,
                    last_nc: None,
                    used_without_qop: false,
                },
            );
        }
        let r = ResponseBuilder::new(req, StatusCode::UNAUTHORIZED)
            .to_tag(local_tag(req))
            .header("WWW-Authenticate", challenge.www_authenticate(realm, stale));
        debug!(call_id = req.call_id().unwrap_or("-"), impi = %impi, stale, ?challenge, "401 challenge");
        Ok(Outcome::response(respond(r, req)))
    }

    async fn cx_mar(&self, req: MarRequest) -> Result<Vec<AuthVector>, CxError> {
        match tokio::time::timeout(self.settings.hss_timeout, self.cx.mar(req)).await {
            Ok(r) => r,
            Err(_) => Err(CxError::Timeout),
        }
    }

    fn contacts_request<'m>(&self, req: &'m Message) -> Result<ContactsReq<'m>, ScscfError> {
        let mut lines = Vec::new();
        for c in req.typed_all::<ContactHeader<'m>>() {
            lines.push(c.map_err(|_| ScscfError::BadRequest("Contact"))?);
        }
        if lines.is_empty() {
            return Ok(ContactsReq::Fetch);
        }
        let hdr_expires: Option<u32> = match req.header(HeaderName::Expires) {
            Some(v) => Some(
                v.trim()
                    .parse()
                    .map_err(|_| ScscfError::BadRequest("Expires"))?,
            ),
            None => None,
        };
        if lines.iter().any(|c| matches!(c, ContactHeader::Star)) {
            if lines.len() != 1 || hdr_expires != Some(0) {
                return Err(ScscfError::BadRequest("Contact: * needs Expires: 0"));
            }
            return Ok(ContactsReq::Star);
        }
        let addrs: Vec<NameAddr<'m>> = lines
            .into_iter()
            .flat_map(|c| match c {
                ContactHeader::Addrs(v) => v,
                ContactHeader::Star => Vec::new(),
            })
            .collect();
        let mut list = Vec::with_capacity(addrs.len());
        for na in addrs {
            let e = na
                .expires()
                .or(hdr_expires)
                .unwrap_or(self.settings.default_expires);
            if e != 0 && e < self.settings.min_expires {
                return Err(ScscfError::IntervalTooBrief {
                    min: self.settings.min_expires,
                });
            }
            list.push(ContactReq {
                na,
                expires: e.min(self.settings.max_expires),
            });
        }
        Ok(ContactsReq::List(list))
    }

    async fn update_bindings(
        &self,
        req: &Message,
        impi: &str,
        impu: &str,
        now: u64,
    ) -> Result<Outcome, ScscfError> {
        let call_id = req.call_id().unwrap_or("").to_string();
        let cseq = match req.cseq() {
            Some(Ok(c)) => c.seq,
            _ => 0,
        };
        let path: Vec<String> = req
            .header_elements(HeaderName::Path)
            .map(str::to_string)
            .collect();
        let creq = self.contacts_request(req)?;
        let _serial = self.lock_impu(impu).await;
        let existing = self.registration(impu);
        let had = existing.as_ref().is_some_and(|r| !r.contacts.is_empty());
        let mut contacts = existing
            .as_ref()
            .map(|r| r.contacts.clone())
            .unwrap_or_default();
        let mut removed: Vec<(Contact, ContactEvent)> = Vec::new();
        match creq {
            ContactsReq::Fetch => {}
            ContactsReq::Star => {
                removed = contacts
                    .drain(..)
                    .map(|c| (c, ContactEvent::Unregistered))
                    .collect();
            }
            ContactsReq::List(list) => {
                for cr in list {
                    let uri = cr.na.uri.to_string();
                    let (key, instance, reg_id) = binding_key(&cr.na, &uri);
                    let pos = contacts.iter().position(|c| c.key == key);
                    if let Some(i) = pos {
                        let old = &contacts[i];
                        if old.call_id == call_id && cseq <= old.cseq {
                            return Err(ScscfError::OutOfOrder);
                        }
                    }
                    match (pos, cr.expires) {
                        (Some(i), 0) => {
                            removed.push((contacts.remove(i), ContactEvent::Unregistered))
                        }
                        (None, 0) => {}
                        (Some(i), e) => {
                            let c = &mut contacts[i];
                            let new_exp = now + u64::from(e);
                            c.event = if new_exp < c.expires_at {
                                ContactEvent::Shortened
                            } else {
                                ContactEvent::Refreshed
                            };
                            c.expires_at = new_exp;
                            c.uri = uri;
                            c.params = params_text(&cr.na);
                            c.path = path.clone();
                            c.call_id = call_id.clone();
                            c.cseq = cseq;
                        }
                        (None, e) => contacts.push(Contact {
                            key,
                            uri,
                            params: params_text(&cr.na),
                            instance,
                            reg_id,
                            expires_at: now + u64::from(e),
                            path: path.clone(),
                            call_id: call_id.clone(),
                            cseq,
                            event: if had {
                                ContactEvent::Created
                            } else {
                                ContactEvent::Registered
                            },
                        }),
                    }
                }
            }
        }
        if contacts.len() > self.settings.max_contacts as usize {
            return Err(ScscfError::AuthFailed("too many contacts"));
        }
        let has = !contacts.is_empty();
        let sat = match (had, has) {
            (false, true) => Some(ServerAssignmentType::Registration),
            (true, true) => Some(ServerAssignmentType::ReRegistration),
            (true, false) => Some(ServerAssignmentType::UserDeregistration),
            (false, false) => None,
        };
        let mut impus = existing
            .as_ref()
            .map(|r| r.impus.clone())
            .unwrap_or_else(|| vec![impu.to_string()]);
        if let Some(sat) = sat {
            let sar = SarRequest {
                impi: impi.to_string(),
                impu: impu.to_string(),
                server_name: self.settings.server_name.clone(),
                assignment: sat,
            };
            match self.cx_sar(sar).await {
                Ok(ans) => {
                    if sat == ServerAssignmentType::Registration {
                        let mut set = ans
                            .user_data
                            .as_deref()
                            .map(identities_from_user_data)
                            .unwrap_or_default();
                        set.retain(|i| i != impu);
                        set.insert(0, impu.to_string());
                        impus = set;
                    }
                }
                Err(e) if sat == ServerAssignmentType::UserDeregistration => {
                    warn!(call_id = %call_id, impu = %impu, error = %e, "SAR USER_DEREGISTRATION failed; bindings removed anyway");
                }
                Err(e) => return Err(e.into()),
            }
        }
        // Commit.
        let (ops, notifies, reg_after) = {
            let mut st = self.lock();
            let mut ops = Vec::new();
            let id = existing
                .as_ref()
                .map(|r| r.id.clone())
                .unwrap_or_else(|| impu.to_string());
            let reg = Registration {
                id: id.clone(),
                impi: impi.to_string(),
                impus: impus.clone(),
                contacts,
            };
            let notifies = self.notifies_for_change(&mut st, &reg, &removed, now, None, &mut ops);
            if has {
                for i in &impus {
                    st.by_impu.insert(i.clone(), id.clone());
                }
                st.put_reg(reg.clone());
                ops.push(StoreOp::PutRegistration(reg.clone()));
            } else if existing.is_some() {
                for i in &impus {
                    if st.by_impu.get(i) == Some(&id) {
                        st.by_impu.remove(i);
                    }
                }
                st.regs.remove(&id);
                ops.push(StoreOp::DeleteRegistration(id));
            }
            (ops, notifies, reg)
        };
        self.persist(ops).await;
        let mut r = ResponseBuilder::new(req, StatusCode::OK).to_tag(local_tag(req));
        for c in &reg_after.contacts {
            r = r.header(
                "Contact",
                format_args!("<{}>{};expires={}", c.uri, c.params, c.remaining(now)),
            );
        }
        for p in &path {
            r = r.header("Path", p);
        }
        if has {
            r = r.header("Service-Route", self.settings.service_route());
            // The registered IMPU first, then the rest of the set (TS 24.229 §5.4.1.2.2).
            let pau: Vec<String> = std::iter::once(impu)
                .chain(
                    reg_after
                        .impus
                        .iter()
                        .map(String::as_str)
                        .filter(|i| *i != impu),
                )
                .map(|i| format!("<{i}>"))
                .collect();
            r = r.header("P-Associated-URI", pau.join(", "));
        }
        r = r.header("Date", httpdate(now));
        info!(call_id = %call_id, impu = %impu, contacts = reg_after.contacts.len(), sar = ?sat, "200 OK to REGISTER");
        Ok(Outcome {
            response: respond(r, req),
            notifies,
        })
    }
}

/// A To tag derived from the request (stable across retransmissions).
pub(crate) fn local_tag(req: &Message) -> String {
    let via = req.header(HeaderName::Via).unwrap_or("");
    format!(
        "{:x}",
        crate::model::fnv64(&[req.call_id().unwrap_or(""), via]) & 0xffff_ffff_ffff
    )
}

fn base64_random_nonce() -> String {
    use base64::Engine as _;
    let b: [u8; 24] = rand::random();
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// RFC 1123 date for the `Date` header (RFC 3261 §20.17).
pub fn httpdate(unix: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = unix / 86_400;
    let secs = unix % 86_400;
    // civil-from-days (H. Hinnant)
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        d,
        MONTHS[(m - 1) as usize],
        y,
        secs / 3600,
        (secs % 3600) / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_and_impi() {
        assert_eq!(httpdate(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(httpdate(1_700_000_000), "Tue, 14 Nov 2023 22:13:20 GMT");
        assert_eq!(impi_from_impu("sip:alice@ims.test"), "alice@ims.test");
        assert_eq!(host_of_impu("sip:alice@ims.test;user=phone"), "ims.test");
    }
}
