//! REGISTER at the P-CSCF (TS 24.229 §5.2.2) with sec-agree (TS 33.203 §7, RFC 3329).
//!
//! On the request: the UE's sec-agree state is read under its lock — which SA set a
//! protected REGISTER came through and whether its `Security-Verify` echoes that set's
//! `Security-Server`; the offer of a `Security-Client` is chosen for the 401 — then the
//! REGISTER is edited (Path, P-Visited-Network-ID, P-Charging-Vector, Route to the
//! I-CSCF, no sec-agree headers) and forwarded in a client transaction.
//!
//! On the final response, again under the UE's lock:
//! - 401: `ck`/`ik` taken out; with an offer, a new SA set is installed *before* the
//!   401 leaves (with `Security-Server`), replacing a set whose challenge the UE never
//!   answered; an install failure answers 500 and is logged at WARN with its reason.
//! - 200 to a REGISTER that came through the new set: the new set becomes the one in
//!   use and the old one is retired after the grace period (TS 33.203 §7.4).
//! - 200 to a de-registration: the binding goes, its flow is kept for the grace period
//!   and the SAs are removed after the 200 OK went out plus the grace period
//!   (FIELD-LESSONS item 4).

use std::net::SocketAddr;
use std::sync::Arc;

use ims_sip_core::{Message, StatusCode, Uri};
use ims_sip_transport::{ConnectionId, Incoming, Target, Transport};

use crate::headers::{self, AkaKeys};
use crate::node::{now_s, Node, Outcome};
use crate::registrar::{flow_transport, UeKey};
use crate::secagree::{GmSecurity, Initial, SaSet};
use crate::store::Binding;

/// What the REGISTER's final response needs from its request.
#[derive(Debug, Clone)]
struct RegisterCtx {
    key: UeKey,
    contact: String,
    impi: String,
    transport: Transport,
    src: SocketAddr,
    conn: Option<ConnectionId>,
    dereg: bool,
    requested_expires: Option<u64>,
    /// Arrived on a protected server port.
    protected: bool,
    /// The SA set it came through, and whether that is the set of the last 401.
    through: Option<(SaSet, bool)>,
    /// The offer for a new SA set on a 401, with the whole Security-Client.
    offer: Option<(ims_ipsec::IpsecOffer, Vec<ims_ipsec::SecMechanism>)>,
}

/// A refused REGISTER: status, reason, and an SA set to remove once the refusal went
/// out.
type Refusal = (StatusCode, String, Option<SaSet>);

/// What the response handling asks for once the response went out.
#[derive(Default)]
struct After {
    /// SA sets to remove after the grace period.
    retire: Vec<SaSet>,
    /// Subscribe to the reg event of (impu, service route).
    subscribe: Option<(String, Vec<String>)>,
}

/// Whether a request from `source` to our `local` socket is inside `set`.
fn inside(set: &SaSet, local: SocketAddr, source: SocketAddr) -> bool {
    set.pcscf.port_s == local.port() && set.ue.addr == source.ip() && set.ue.port_c == source.port()
}

impl Node {
    pub(crate) async fn on_register(self: &Node, inc: Incoming) {
        let msg = &inc.message;
        let to = match msg.to_addr() {
            Some(Ok(na)) => na.uri.to_string(),
            _ => {
                self.reply(&inc, StatusCode::BAD_REQUEST, Some("Bad Request (To)"), &[])
                    .await;
                return;
            }
        };
        if !matches!(Uri::parse(&to), Ok(Uri::Sip(_)) | Ok(Uri::Tel(_))) {
            self.reply(
                &inc,
                StatusCode::BAD_REQUEST,
                Some("Bad Request (To is not a SIP or tel URI)"),
                &[],
            )
            .await;
            return;
        }
        let key = UeKey {
            aor: headers::aor_of(&to),
            ip: inc.source.ip(),
        };
        let contact = headers::contacts(msg)
            .into_iter()
            .map(|(c, _)| c)
            .find(|c| c != "*")
            .unwrap_or_default();
        let requested_expires = headers::contacts(msg)
            .first()
            .and_then(|(_, e)| *e)
            .or_else(|| headers::expires_header(msg));
        let protected = self.sec.is_some() && self.ports.is_server(inc.local);
        let mut ctx = RegisterCtx {
            key: key.clone(),
            contact,
            impi: headers::impi(msg),
            transport: inc.transport,
            src: inc.source,
            conn: inc.connection,
            dereg: headers::is_deregistration(msg),
            requested_expires,
            protected,
            through: None,
            offer: None,
        };
        if let Some(sec) = &self.sec {
            if let Err((code, reason, drop_set)) =
                self.sec_agree_on_request(sec, &inc, &mut ctx).await
            {
                let extra = [("Require", "sec-agree".to_string())];
                let extra: &[(&str, String)] = if code.as_u16() == 421 || code.as_u16() == 494 {
                    &extra
                } else {
                    &[]
                };
                self.reply(&inc, code, Some(&reason), extra).await;
                // The refusal went out through the set; now it goes (RFC 3329 §2.3.1).
                if let Some(set) = drop_set {
                    sec.remove(&set).await;
                }
                return;
            }
        }

        // Headers the P-CSCF owns (§5.2.2.1): no identity assertion from the UE, our
        // charging vector, Path, visited network, Route to the I-CSCF, no sec-agree.
        let mut e = msg.edit();
        for h in [
            "P-Asserted-Identity",
            "P-Charging-Vector",
            "Route",
            "Security-Client",
            "Security-Verify",
        ] {
            e.remove(h);
        }
        headers::edit_option_tags(msg, &mut e, "Require", Some("sec-agree"), Some("path"));
        headers::edit_option_tags(msg, &mut e, "Proxy-Require", Some("sec-agree"), None);
        headers::edit_option_tags(msg, &mut e, "Supported", None, Some("path"));
        headers::mark_integrity(msg, &mut e, if protected { "yes" } else { "no" });
        let icscf = if self.s.icscf_uri.contains(";lr") {
            format!("<{}>", self.s.icscf_uri)
        } else {
            format!("<{};lr>", self.s.icscf_uri)
        };
        e.insert_before("Via", "Route", icscf);
        e.append("Path", format!("<{};lr>", self.own_uri("term")));
        e.append(
            "P-Visited-Network-ID",
            format!("\"{}\"", self.s.visited_network_id),
        );
        e.append("P-Charging-Vector", self.charging_vector());
        let Some(target) = Node::resolve(&self.s.icscf_uri).await else {
            self.reply(
                &inc,
                StatusCode::NOT_FOUND,
                Some("Not Found (I-CSCF unresolvable)"),
                &[],
            )
            .await;
            return;
        };
        let outcome = self.forward(&inc, e, target).await;
        let resp = match outcome {
            Outcome::Final(r) => r,
            Outcome::Failed(code, why) => {
                self.reply_outcome(&inc, code, why).await;
                return;
            }
        };
        let (resp, after) = self.on_register_response(&ctx, resp).await;
        match resp {
            Some(r) => self.respond(&inc, &r).await,
            None => {
                let extra = [("Retry-After", "30".to_string())];
                self.reply(
                    &inc,
                    StatusCode::SERVER_INTERNAL_ERROR,
                    Some("Server Internal Error (IPsec SA setup failed)"),
                    &extra,
                )
                .await
            }
        }
        self.after_response(after);
    }

    /// The sec-agree part of a REGISTER (TS 33.203 §7.2, §7.4). Err: refuse with this
    /// status, then remove this set (kept among the live ones until the answer left).
    async fn sec_agree_on_request(
        &self,
        sec: &Arc<GmSecurity>,
        inc: &Incoming,
        ctx: &mut RegisterCtx,
    ) -> Result<(), Refusal> {
        let msg = &inc.message;
        let ue = format!("{} at {}", ctx.key.aor, inc.source);
        let client = msg.header_str("Security-Client").map(str::to_string);
        let verify = msg.header_str("Security-Verify").map(str::to_string);
        let entry = self.registry.entry(&ctx.key);
        let mut g = entry.lock().await;
        if ctx.protected {
            // The set it came through: of the sets whose selectors match, the one whose
            // Security-Server the Security-Verify echoes (new set first).
            let candidates: Vec<(SaSet, bool)> =
                [(g.sec_new.clone(), true), (g.sec_active.clone(), false)]
                    .into_iter()
                    .filter_map(|(s, n)| s.map(|s| (s, n)))
                    .filter(|(s, _)| inside(s, inc.local, inc.source))
                    .collect();
            let chosen = candidates
                .iter()
                .find(|(s, _)| GmSecurity::verify(s, verify.as_deref(), None, false).is_ok())
                .or(candidates.first())
                .cloned();
            let Some((set, is_new)) = chosen else {
                tracing::warn!(%ue, local = %inc.local, "protected REGISTER through no known SA set refused");
                return Err((
                    StatusCode::FORBIDDEN,
                    "Forbidden (no security association)".into(),
                    None,
                ));
            };
            if verify.is_some() || is_new {
                if let Err(why) =
                    GmSecurity::verify(&set, verify.as_deref(), client.as_deref(), is_new)
                {
                    tracing::warn!(%ue, %why, "protected REGISTER refused: sec-agree check failed");
                    let drop_set = if is_new {
                        g.sec_new = None;
                        Some(set)
                    } else {
                        None
                    };
                    return Err((
                        StatusCode::FORBIDDEN,
                        "Forbidden (Security-Verify mismatch)".into(),
                        drop_set,
                    ));
                }
            }
            // Over the set in use, a Security-Client with new SPIs starts a new set
            // (TS 33.203 §7.4); it is built on the 401.
            if !is_new {
                if let Some(c) = client.as_deref() {
                    if let Initial::Offer { offer, client } = sec.initial(Some(c), &ue) {
                        ctx.offer = Some((offer, client));
                    }
                }
            }
            ctx.through = Some((set, is_new));
            return Ok(());
        }
        match sec.initial(client.as_deref(), &ue) {
            Initial::Unprotected => {}
            Initial::Offer { offer, client } => ctx.offer = Some((offer, client)),
            Initial::Refuse(code, reason) => {
                return Err((
                    StatusCode::new(code).unwrap_or(StatusCode::FORBIDDEN),
                    reason,
                    None,
                ))
            }
        }
        if g.sec_active.is_some() && client.is_none() {
            tracing::warn!(%ue, "unprotected REGISTER for a UE registered with IPsec refused");
            return Err((
                StatusCode::FORBIDDEN,
                "Forbidden (use the protected ports)".into(),
                None,
            ));
        }
        Ok(())
    }

    /// The final response's effects; None: answer 500 (SA setup failed).
    async fn on_register_response(
        &self,
        ctx: &RegisterCtx,
        resp: Message,
    ) -> (Option<Message>, After) {
        let (keys, stripped) = headers::strip_ck_ik(&resp);
        let resp = stripped.unwrap_or(resp);
        let code = resp.status().map(|s| s.as_u16()).unwrap_or(0);
        let mut after = After::default();
        let entry = self.registry.entry(&ctx.key);
        let mut g = entry.lock().await;
        if code == 401 {
            let out = self
                .challenge_sas(ctx, &mut g, keys.as_ref(), &resp)
                .await
                .ok();
            g.on_challenge();
            return (out, after);
        }
        if !(200..300).contains(&code) {
            return (Some(resp), after);
        }
        let expires = granted_expiry(ctx, &resp);
        if ctx.dereg || expires == 0 {
            after.retire = [g.sec_active.take(), g.sec_new.take()]
                .into_iter()
                .flatten()
                .collect();
            let conn = g.conn;
            if let Some(b) = g.on_deregistered() {
                self.registry.unindex(&ctx.key, &b);
                self.remember_deregistered(&b, conn);
                self.unpersist(&b.contact);
            }
            tracing::info!(aor = %ctx.key.aor, "UE de-registered");
            return (Some(resp), after);
        }
        if let Some((through, true)) = &ctx.through {
            // The REGISTER came through the new set: it is in use now; the old one is
            // retired after the grace period (TS 33.203 §7.4).
            if g.sec_new.as_ref() == Some(through) {
                if let Some(new) = g.sec_new.take() {
                    tracing::debug!(aor = %ctx.key.aor, pair = %new.pair, spi_s = new.pcscf.spi_s, port_s = new.pcscf.port_s, "SA set in use");
                    if let Some(old) = g.sec_active.replace(new) {
                        after.retire.push(old);
                    }
                }
            }
        }
        if let (Some(sec), Some((through, false)), None) = (&self.sec, &ctx.through, &g.sec_active)
        {
            // A REGISTER through the set in use got its 200 after a de-registration
            // (sent at the same time) retired that set: the UE is registered again, so
            // the set stays in use.
            if sec.reclaim(through) {
                tracing::info!(aor = %ctx.key.aor, spi_s = through.pcscf.spi_s, "SA set taken back into use (REGISTER and de-REGISTER crossed)");
                g.sec_active = Some(through.clone());
            } else {
                tracing::warn!(aor = %ctx.key.aor, "registered through an SA set that is already removed: the UE must register again");
            }
        }
        let public_identities: Vec<String> = headers::elements(&resp, "P-Associated-URI")
            .iter()
            .filter_map(|v| headers::uri_of(v))
            .collect();
        let public_identities = if public_identities.is_empty() {
            vec![ctx.key.aor.clone()]
        } else {
            public_identities
        };
        let binding = Binding {
            contact: ctx.contact.clone(),
            impi: ctx.impi.clone(),
            public_identities,
            service_route: headers::elements(&resp, "Service-Route"),
            transport: flow_transport(ctx.transport),
            ue_addr: ctx.src,
            expires_at: now_s() + expires as i64,
            security: g
                .sec_active
                .as_ref()
                .filter(|_| ctx.protected)
                .map(|s| s.to_string())
                .unwrap_or_default(),
            aor: ctx.key.aor.clone(),
        };
        if let Some(old) = g.binding.as_ref() {
            if old.contact != binding.contact || old.ue_addr != binding.ue_addr {
                self.registry.unindex(&ctx.key, old);
                if old.contact != binding.contact {
                    self.unpersist(&old.contact);
                }
            }
        }
        self.persist(&binding);
        self.registry.index(&ctx.key, &binding);
        if self.s.subscribe_reg_event && !g.subscribed {
            g.subscribed = true;
            after.subscribe = Some((
                binding.public_identities[0].clone(),
                binding.service_route.clone(),
            ));
        }
        tracing::info!(aor = %ctx.key.aor, contact = %binding.contact, expires, protected = ctx.protected, "UE registered");
        g.on_registered(binding, ctx.conn);
        (Some(resp), after)
    }

    /// The 401: builds the new SA set before the 401 leaves. Err: the SAs could not be
    /// installed (the UE gets a 500 instead).
    async fn challenge_sas(
        &self,
        ctx: &RegisterCtx,
        g: &mut crate::registrar::UeEntry,
        keys: Option<&AkaKeys>,
        resp: &Message,
    ) -> Result<Message, ()> {
        let (Some(sec), Some((offer, client)), Some(k)) = (&self.sec, ctx.offer.as_ref(), keys)
        else {
            if self.sec.is_some() && ctx.offer.is_some() {
                tracing::warn!(aor = %ctx.key.aor, "401 without ck/ik: no SA set built");
            }
            return Ok(resp.clone());
        };
        // A set whose challenge the UE never answered is replaced; remove it first, so
        // the UE's SPIs (often unchanged) do not collide with the new set's.
        let through_new = matches!(&ctx.through, Some((_, true)));
        if !through_new {
            if let Some(old) = g.sec_new.take() {
                sec.remove(&old).await;
            }
        }
        match sec.create(ctx.src.ip(), offer, client.clone(), k).await {
            Ok(set) => {
                tracing::info!(aor = %ctx.key.aor, ue = %ctx.src, alg = set.pair.alg.as_str(), ealg = set.pair.ealg.as_str(), spi_c = set.pcscf.spi_c, spi_s = set.pcscf.spi_s, port_c = set.pcscf.port_c, port_s = set.pcscf.port_s, "sec-agree: SA set installed for the 401");
                let mut e = resp.edit();
                e.append("Security-Server", GmSecurity::security_server(&set));
                e.append("Require", "sec-agree");
                if let Some(old) = g.sec_new.replace(set) {
                    sec.remove(&old).await;
                }
                g.sec_new_at = Some(std::time::Instant::now());
                Ok(e.finish_message().unwrap_or_else(|_| resp.clone()))
            }
            Err(err) => {
                tracing::warn!(aor = %ctx.key.aor, ue = %ctx.src, pair = %offer.pair(), error = %err, "IPsec SA setup failed: 500 instead of the 401");
                Err(())
            }
        }
    }

    /// Work that must wait until the response went out: SA retirement after the
    /// grace period, the reg-event subscription.
    fn after_response(&self, after: After) {
        if let Some(sec) = &self.sec {
            for set in after.retire {
                sec.retire(set);
            }
        }
        if let Some((impu, route)) = after.subscribe {
            self.subscribe_reg_event(&impu, &route);
        }
    }
}

/// The expiry the registrar granted to our contact (RFC 3261 §10.3 step 8).
fn granted_expiry(ctx: &RegisterCtx, resp: &Message) -> u64 {
    let mine = crate::registrar::contact_key(&ctx.contact);
    for (c, e) in headers::contacts(resp) {
        if crate::registrar::contact_key(&c) == mine {
            if let Some(e) = e {
                return e;
            }
        }
    }
    headers::expires_header(resp)
        .or(ctx.requested_expires)
        .unwrap_or(3600)
}

/// Target of a request to the UE through its SA set: P-CSCF port-c → UE port-s
/// (TS 33.203 §7.1), over the transport the UE registered with.
pub(crate) fn protected_target(set: &SaSet, transport: Transport) -> Target {
    Target::new(transport, SocketAddr::new(set.ue.addr, set.ue.port_s))
        .from_local(SocketAddr::new(set.pcscf.addr, set.pcscf.port_c))
}
