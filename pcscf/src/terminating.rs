//! Requests to a UE (TS 24.229 §5.2.6.4): the UE is found by the Request-URI (its
//! registered contact), or among the UEs de-registered within the grace period (the
//! reg-event NOTIFY `terminated`), and reached through its SAs — from the P-CSCF's
//! protected client port to the UE's protected server port (TS 33.203 §7.1) — or on
//! its flow (UDP address, or its TCP connection while open).

use ims_sip_core::{Method, StatusCode};
use ims_sip_transport::{Incoming, Target, Transport};

use crate::headers;
use crate::node::Node;
use crate::originating::record_routes;
use crate::register::protected_target;
use crate::registrar::UeKey;
use crate::secagree::SaSet;
use crate::store::FlowTransport;

impl Node {
    pub(crate) async fn terminating(&self, inc: Incoming, key: Option<UeKey>) {
        let msg = &inc.message;
        let ruri = msg.request_uri_str().unwrap_or("").to_string();
        let key = key.or_else(|| self.registry.by_contact(&ruri));
        let mut target = None;
        if let Some(k) = &key {
            if let Some(e) = self.registry.get(k) {
                let g = e.lock().await;
                target = g.binding.clone().map(|b| (b, g.conn));
            }
        }
        let live = target.is_some();
        let Some((b, conn)) = target.or_else(|| self.recently_deregistered(&ruri)) else {
            tracing::info!(uri = %ruri, "terminating request for a UE not registered here");
            self.reply(&inc, StatusCode::TEMPORARILY_UNAVAILABLE, None, &[])
                .await;
            return;
        };
        let method = msg.method().cloned().unwrap_or(Method::Options);
        let mut e = msg.edit();
        let routes = headers::elements(msg, "Route");
        let own = routes.iter().take_while(|r| self.is_me(r)).count();
        if own > 0 {
            e.remove("Route");
            for r in &routes[own..] {
                e.insert_before("Via", "Route", r);
            }
        }
        let transport = match b.transport {
            FlowTransport::Udp => Transport::Udp,
            FlowTransport::Tcp => Transport::Tcp,
        };
        let set = b.security.parse::<SaSet>().ok();
        if !headers::has_to_tag(msg) && record_routes(&method) {
            self.record_route(&mut e, set.as_ref(), transport, false);
        }
        let target = match &set {
            Some(set) => protected_target(set, transport),
            None => match transport {
                Transport::Udp => Target::udp(b.ue_addr),
                Transport::Tcp => {
                    let open = conn.filter(|c| self.sip.transport().connection(*c).is_some());
                    match open {
                        Some(c) => Target::tcp(b.ue_addr).on_connection(c),
                        // No open connection (e.g. after a restart): connect to the contact.
                        None => Node::resolve(&b.contact)
                            .await
                            .map(|t| Target::tcp(t.remote))
                            .unwrap_or_else(|| Target::tcp(b.ue_addr)),
                    }
                }
            },
        };
        if method == Method::Ack {
            self.forward_stateless(e, target).await;
            return;
        }
        self.proxy(&inc, e, target).await;
        if let (false, Some(sec), Ok(set)) = (live, &self.sec, b.security.parse::<SaSet>()) {
            // The NOTIFY to a UE that just de-registered went out through its SAs:
            // they go a grace period after it, not before (FIELD-LESSONS item 4).
            if let Some(set) = sec.installed_set(set.pcscf.spi_s) {
                sec.extend(&set);
            }
        }
    }
}
