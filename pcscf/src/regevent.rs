//! The P-CSCF's subscription to the reg event package (TS 24.229 §5.2.3, RFC 3680): a
//! SUBSCRIBE for each registered public identity, sent along the Service-Route, and the
//! reading of `application/reginfo+xml` NOTIFY bodies to learn which contacts the
//! network de-registered (TS 24.229 §5.2.5.1).

use ims_sip_core::builder::{new_branch, new_call_id, new_tag};
use ims_sip_core::{Message, StatusCode};
use ims_sip_transport::{Incoming, Transport};

use crate::node::Node;

/// What a NOTIFY says about one contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactState {
    /// AOR of the enclosing `<registration>`.
    pub aor: String,
    /// The contact URI (`<uri>` element).
    pub uri: String,
    /// `active` or `terminated`.
    pub state: String,
    /// `event` attribute (registered, expired, deactivated, unregistered, rejected …).
    pub event: String,
}

/// What a NOTIFY says about one registration (one AOR).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationState {
    /// The AOR.
    pub aor: String,
    /// `init`, `active` or `terminated`.
    pub state: String,
    /// Its contacts.
    pub contacts: Vec<ContactState>,
}

fn attr(tag: &str, name: &str) -> Option<String> {
    // Accept name="v" and name='v' with any spacing; attribute names are matched whole.
    let mut rest = tag;
    while let Some(i) = rest.find(name) {
        let before_ok = i == 0 || rest[..i].chars().last().is_some_and(|c| c.is_whitespace());
        let after = rest[i + name.len()..].trim_start();
        if before_ok {
            if let Some(after) = after.strip_prefix('=') {
                let after = after.trim_start();
                let q = after.chars().next()?;
                if q == '"' || q == '\'' {
                    let body = &after[1..];
                    let end = body.find(q)?;
                    return Some(xml_unescape(&body[..end]));
                }
            }
        }
        rest = &rest[i + name.len()..];
    }
    None
}

fn xml_unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// Finds the start tags named `name` (with or without a namespace prefix) in `xml`,
/// returning (tag text, content up to the matching end tag).
fn elements<'a>(xml: &'a str, name: &str) -> Vec<(&'a str, &'a str)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(off) = xml[pos..].find('<') {
        let start = pos + off;
        let Some(end_rel) = xml[start..].find('>') else {
            break;
        };
        let tag = &xml[start + 1..start + end_rel];
        pos = start + end_rel + 1;
        let tname = tag
            .split(|c: char| c.is_whitespace() || c == '/')
            .next()
            .unwrap_or("");
        let local = tname.rsplit(':').next().unwrap_or(tname);
        if local != name || tag.starts_with('/') {
            continue;
        }
        if tag.ends_with('/') {
            out.push((tag, ""));
            continue;
        }
        // Content up to the closing tag of the same (prefixed) name.
        let close = format!("</{tname}>");
        let content_end = xml[pos..].find(&close).map_or(xml.len(), |e| pos + e);
        out.push((tag, &xml[pos..content_end]));
    }
    out
}

/// Reads a reginfo document (RFC 3680 §5.3); malformed parts are skipped.
pub fn parse_reginfo(xml: &str) -> Vec<RegistrationState> {
    elements(xml, "registration")
        .into_iter()
        .map(|(tag, content)| {
            let aor = attr(tag, "aor").unwrap_or_default();
            let contacts = elements(content, "contact")
                .into_iter()
                .map(|(ctag, ccontent)| ContactState {
                    aor: aor.clone(),
                    uri: elements(ccontent, "uri")
                        .first()
                        .map(|(_, u)| xml_unescape(u.trim()))
                        .unwrap_or_default(),
                    state: attr(ctag, "state").unwrap_or_default(),
                    event: attr(ctag, "event").unwrap_or_default(),
                })
                .collect();
            RegistrationState {
                aor,
                state: attr(tag, "state").unwrap_or_default(),
                contacts,
            }
        })
        .collect()
}

/// Everything needed to build the SUBSCRIBE.
#[derive(Debug, Clone)]
pub struct SubscribeParams<'a> {
    /// Public identity to watch (Request-URI and To).
    pub impu: &'a str,
    /// Service-Route values (full name-addrs) to put in Route.
    pub service_route: &'a [String],
    /// This P-CSCF's URI (From, Contact, P-Asserted-Identity).
    pub pcscf_uri: &'a str,
    /// Via value without branch (`SIP/2.0/UDP host:port`).
    pub via: &'a str,
    /// Branch to use.
    pub branch: &'a str,
    /// Call-ID.
    pub call_id: &'a str,
    /// From tag.
    pub from_tag: &'a str,
    /// Expires (TS 24.229 §5.2.3: 600 000 s).
    pub expires: u32,
    /// P-Charging-Vector value.
    pub charging_vector: &'a str,
}

/// Builds the SUBSCRIBE to the reg event of `impu` (TS 24.229 §5.2.3).
pub fn subscribe(p: &SubscribeParams<'_>) -> String {
    let mut s = format!("SUBSCRIBE {} SIP/2.0\r\n", p.impu);
    s.push_str(&format!("Via: {};branch={}\r\n", p.via, p.branch));
    s.push_str("Max-Forwards: 70\r\n");
    for r in p.service_route {
        s.push_str(&format!("Route: {r}\r\n"));
    }
    s.push_str(&format!("From: <{}>;tag={}\r\n", p.pcscf_uri, p.from_tag));
    s.push_str(&format!("To: <{}>\r\n", p.impu));
    s.push_str(&format!("Call-ID: {}\r\n", p.call_id));
    s.push_str("CSeq: 1 SUBSCRIBE\r\n");
    s.push_str("Event: reg\r\n");
    s.push_str(&format!("Expires: {}\r\n", p.expires));
    s.push_str("Accept: application/reginfo+xml\r\n");
    s.push_str(&format!("Contact: <{}>\r\n", p.pcscf_uri));
    s.push_str(&format!("P-Asserted-Identity: <{}>\r\n", p.pcscf_uri));
    s.push_str(&format!("P-Charging-Vector: {}\r\n", p.charging_vector));
    s.push_str("Content-Length: 0\r\n\r\n");
    s
}

impl Node {
    /// Sends the SUBSCRIBE to the reg event of `impu` along `service_route` in a client
    /// transaction of its own (TS 24.229 §5.2.3); its answer is only logged.
    pub(crate) fn subscribe_reg_event(&self, impu: &str, service_route: &[String]) {
        let next = service_route
            .first()
            .cloned()
            .unwrap_or_else(|| impu.to_string());
        let pcscf = self.own_uri("pcscf");
        let host = self.host();
        let cv = self.charging_vector();
        let sip = self.sip.clone();
        let impu = impu.to_string();
        let service_route = service_route.to_vec();
        let locals = self.locals.clone();
        let port = self.port();
        tokio::spawn(async move {
            let Some(target) = Node::resolve(&next).await else {
                tracing::warn!(%impu, "reg-event SUBSCRIBE: next hop unresolvable");
                return;
            };
            let local = locals
                .iter()
                .find(|(t, a)| *t == target.transport && a.is_ipv4() == target.remote.is_ipv4())
                .map(|(_, a)| *a);
            let target = match (target.transport, local) {
                (Transport::Udp, Some(l)) => target.from_local(l),
                _ => target,
            };
            let via = format!(
                "SIP/2.0/{} {host}:{}",
                target.transport.as_str().to_ascii_uppercase(),
                local.map(|l| l.port()).unwrap_or(port)
            );
            let text = subscribe(&SubscribeParams {
                impu: &impu,
                service_route: &service_route,
                pcscf_uri: &pcscf,
                via: &via,
                branch: &new_branch(),
                call_id: &new_call_id(&host),
                from_tag: &new_tag(),
                expires: 600_000,
                charging_vector: &cv,
            });
            let req = match Message::parse(text.into_bytes()) {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(%impu, error = %e, "reg-event SUBSCRIBE not built");
                    return;
                }
            };
            tracing::debug!(%impu, dest = %target.remote, "subscribing to reg event");
            match sip.request(req, target).await {
                Ok(r) => match r.status() {
                    Some(s) if s.is_success() => {
                        tracing::debug!(%impu, status = s.as_u16(), "reg-event SUBSCRIBE answered")
                    }
                    s => {
                        tracing::warn!(%impu, status = ?s.map(|s| s.as_u16()), dest = %target.remote, "reg-event SUBSCRIBE refused")
                    }
                },
                Err(e) => tracing::warn!(%impu, error = %e, "reg-event SUBSCRIBE failed"),
            }
        });
    }

    /// A reg-event NOTIFY to the P-CSCF (TS 24.229 §5.2.5.1): 200, then every contact
    /// the document says is terminated is de-registered here.
    pub(crate) async fn on_notify(self: &Node, inc: &Incoming) {
        self.reply(inc, StatusCode::OK, None, &[]).await;
        let body = String::from_utf8_lossy(inc.message.body()).into_owned();
        for reg in parse_reginfo(&body) {
            for c in &reg.contacts {
                if c.state != "terminated" && reg.state != "terminated" {
                    continue;
                }
                let Some(key) = self.registry.by_contact(&c.uri) else {
                    continue;
                };
                let Some(e) = self.registry.get(&key) else {
                    continue;
                };
                let mut g = e.lock().await;
                let conn = g.conn;
                let sets: Vec<crate::secagree::SaSet> = [g.sec_active.take(), g.sec_new.take()]
                    .into_iter()
                    .flatten()
                    .collect();
                if let Some(b) = g.on_deregistered() {
                    tracing::info!(aor = %key.aor, contact = %b.contact, event = %c.event, "network de-registered the UE (reg event)");
                    self.registry.unindex(&key, &b);
                    self.remember_deregistered(&b, conn);
                    self.unpersist(&b.contact);
                }
                drop(g);
                if let Some(sec) = &self.sec {
                    for set in sets {
                        sec.retire(set);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOTIFY_BODY: &str = r#"<?xml version="1.0"?>
<reginfo xmlns="urn:ietf:params:xml:ns:reginfo" version="1" state="full">
  <registration aor="sip:alice@ims.test" id="a7" state="terminated">
    <contact id="76" state="terminated" event="deactivated" expires="0">
      <uri>sip:alice@127.0.0.1:5070;transport=udp</uri>
    </contact>
  </registration>
  <registration aor="sip:bob@ims.test" id="b1" state="active">
    <contact state='active' event='registered'><uri>sip:bob@10.0.0.2</uri></contact>
  </registration>
</reginfo>"#;

    #[test]
    fn reads_terminated_contacts() {
        let r = parse_reginfo(NOTIFY_BODY);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].aor, "sip:alice@ims.test");
        assert_eq!(r[0].state, "terminated");
        assert_eq!(
            r[0].contacts[0].uri,
            "sip:alice@127.0.0.1:5070;transport=udp"
        );
        assert_eq!(r[0].contacts[0].event, "deactivated");
        assert_eq!(r[1].contacts[0].state, "active");
    }

    #[test]
    fn subscribe_has_event_reg_and_routes() {
        let sr = vec!["<sip:orig@10.0.0.5:6060;lr>".to_string()];
        let s = subscribe(&SubscribeParams {
            impu: "sip:alice@ims.test",
            service_route: &sr,
            pcscf_uri: "sip:pcscf@127.0.0.1:5060",
            via: "SIP/2.0/UDP 127.0.0.1:5060",
            branch: "z9hG4bKPs1",
            call_id: "c1",
            from_tag: "t1",
            expires: 600000,
            charging_vector: "icid-value=1",
        });
        assert!(s.starts_with("SUBSCRIBE sip:alice@ims.test SIP/2.0\r\n"));
        assert!(s.contains("\r\nEvent: reg\r\n"));
        assert!(s.contains("\r\nRoute: <sip:orig@10.0.0.5:6060;lr>\r\n"));
        assert!(s.ends_with("Content-Length: 0\r\n\r\n"));
    }
}
