//! Requests from a registered UE (TS 24.229 §5.2.6.3): the UE is found by its flow (or
//! by its IP and an identity it registered), requests of an IPsec-registered UE are
//! accepted only through its SAs (TS 33.203 §7.1), `P-Asserted-Identity` is set from
//! `P-Preferred-Identity` or the default public identity, initial requests follow the
//! Service-Route, and the request is proxied statefully.

use ims_sip_core::edit::Editor;
use ims_sip_core::{Method, StatusCode};
use ims_sip_transport::{Incoming, Transport};

use crate::headers;
use crate::node::Node;
use crate::protected::ue_facing_record_route;
use crate::registrar::{flow_transport, RegState, UeKey};
use crate::secagree::SaSet;

/// Methods whose initial requests the P-CSCF record-routes (it must see the dialog's
/// later requests, TS 24.229 §5.2.6.3.3).
pub(crate) fn record_routes(m: &Method) -> bool {
    matches!(
        m,
        Method::Invite | Method::Subscribe | Method::Refer | Method::Notify
    )
}

impl Node {
    /// The P-CSCF's Record-Route on an initial request of a dialog. Toward or from a UE
    /// protected by `set`, two entries (RFC 5658 double record-routing): the UE-facing
    /// one names the Gm address and port-s ([`ue_facing_record_route`]), the core-facing
    /// one the main listener, ordered so each side's route set reaches its own entry
    /// first (the UE's route set: the bottom entries a UAC's reversed list starts
    /// with, or the top entries of a UAS's list). Without IPsec, one entry.
    pub(crate) fn record_route(
        &self,
        e: &mut Editor<'_>,
        set: Option<&SaSet>,
        transport: Transport,
        from_ue: bool,
    ) {
        let core = format!("<sip:{}:{};lr>", self.host(), self.port());
        let Some(set) = set else {
            e.prepend("Record-Route", core);
            return;
        };
        let ue = ue_facing_record_route(set, transport);
        let (below, top) = if from_ue { (ue, core) } else { (core, ue) };
        e.prepend("Record-Route", below);
        e.prepend("Record-Route", top);
    }

    /// The registered UE a request comes from: its flow, else the same IP with an
    /// identity it registered (UEs that register over TCP and send SUBSCRIBE over UDP).
    pub(crate) fn originator(&self, inc: &Incoming) -> Option<UeKey> {
        if let Some(k) = self
            .registry
            .by_flow(flow_transport(inc.transport), inc.source)
        {
            return Some(k);
        }
        let claimed: Vec<String> = headers::elements(&inc.message, "P-Preferred-Identity")
            .iter()
            .chain(inc.message.header_str("From").map(str::to_string).iter())
            .filter_map(|v| headers::uri_of(v))
            .map(|u| headers::aor_of(&u))
            .collect();
        self.registry
            .at_ip(inc.source.ip())
            .into_iter()
            .find(|k| claimed.contains(&k.aor))
    }

    pub(crate) async fn originating(&self, inc: Incoming, key: UeKey) {
        let Some(entry) = self.registry.get(&key) else {
            return;
        };
        let binding = {
            let g = entry.lock().await;
            if g.state == RegState::Registered {
                g.binding.clone()
            } else {
                None
            }
        };
        let Some(b) = binding else {
            self.reply(
                &inc,
                StatusCode::FORBIDDEN,
                Some("Forbidden - register first"),
                &[],
            )
            .await;
            return;
        };
        let set = b.security.parse::<SaSet>().ok();
        if let Some(set) = &set {
            // TS 33.203 §7.1: after registration only the SAs carry the UE's requests.
            if inc.local.port() != set.pcscf.port_s || inc.source.ip() != set.ue.addr {
                tracing::warn!(aor = %key.aor, source = %inc.source, "unprotected request from an IPsec-registered UE refused");
                self.reply(
                    &inc,
                    StatusCode::FORBIDDEN,
                    Some("Forbidden (use the protected ports)"),
                    &[],
                )
                .await;
                return;
            }
        }
        let msg = &inc.message;
        let preferred = headers::elements(msg, "P-Preferred-Identity")
            .first()
            .and_then(|v| headers::uri_of(v));
        let asserted = preferred
            .filter(|p| {
                let a = headers::aor_of(p);
                b.public_identities.iter().any(|i| headers::aor_of(i) == a)
            })
            .or_else(|| b.public_identities.first().cloned())
            .unwrap_or_else(|| key.aor.clone());
        let method = msg.method().cloned().unwrap_or(Method::Options);
        let mut e = msg.edit();
        e.remove("P-Asserted-Identity");
        e.remove("P-Preferred-Identity");
        e.append("P-Asserted-Identity", format!("<{asserted}>"));
        let initial = !headers::has_to_tag(msg);
        let routes = headers::elements(msg, "Route");
        let mut kept: Vec<String> = routes
            .iter()
            .skip_while(|r| self.is_me(r))
            .cloned()
            .collect();
        if initial {
            kept = b.service_route.clone();
            if msg.header_str("P-Charging-Vector").is_none() {
                e.append("P-Charging-Vector", self.charging_vector());
            }
            if record_routes(&method) {
                self.record_route(&mut e, set.as_ref(), inc.transport, true);
            }
        }
        if kept.len() != routes.len() || initial {
            e.remove("Route");
            for r in &kept {
                e.insert_before("Via", "Route", r);
            }
        }
        let next = match kept.first() {
            Some(r) => Node::resolve(r).await,
            None => Node::resolve(msg.request_uri_str().unwrap_or("")).await,
        };
        let Some(target) = next else {
            self.reply(
                &inc,
                StatusCode::NOT_FOUND,
                Some("Not Found (next hop unresolvable)"),
                &[],
            )
            .await;
            return;
        };
        if method == Method::Ack {
            self.forward_stateless(e, target).await;
            return;
        }
        self.proxy(&inc, e, target).await;
    }
}
