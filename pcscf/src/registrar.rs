//! Per-UE registration state of the P-CSCF (TS 24.229 §5.2.2) as an explicit state
//! machine behind a per-UE lock: every event for one UE (its REGISTER, the 401, the
//! 200 OK, a de-REGISTER, a reg-event NOTIFY, expiry) is applied while holding that UE's
//! lock, so a concurrent REGISTER and de-REGISTER cannot interleave half-way
//! (FIELD-LESSONS item 7, kamailio#4671).
//!
//! The maps here are the in-memory view; [`crate::store`] keeps what survives a restart.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use ims_sip_core::{NameAddr, Uri};
use ims_sip_transport::{ConnectionId as ConnId, Transport};

use crate::store::{Binding, FlowTransport};

/// A UE as the P-CSCF tells UEs apart: the registered public identity (To AOR) and the
/// UE's IP address (UEs behind one address with different identities stay apart).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UeKey {
    /// AOR of the To header of the REGISTER.
    pub aor: String,
    /// The UE's IP address.
    pub ip: IpAddr,
}

/// Registration state of one UE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegState {
    /// Nothing known (or de-registered).
    Unregistered,
    /// A 401 was relayed; the UE is expected to answer the challenge.
    Challenged,
    /// Registered: the binding holds identities, Service-Route and flow.
    Registered,
}

/// Everything the P-CSCF holds for one UE.
#[derive(Debug)]
pub struct UeEntry {
    /// Registration state.
    pub state: RegState,
    /// The binding while registered.
    pub binding: Option<Binding>,
    /// TCP connection of the UE's flow, if any (not persisted).
    pub conn: Option<ConnId>,
    /// Whether a reg-event subscription was sent for this UE.
    pub subscribed: bool,
    /// Bumped on every change: lets delayed work (grace timers) see it is stale.
    pub generation: u64,
    /// SA set built on the last 401, not yet used by a protected REGISTER's 200 OK.
    pub sec_new: Option<crate::secagree::SaSet>,
    /// When `sec_new` was built (unanswered challenges are removed after a while).
    pub sec_new_at: Option<std::time::Instant>,
    /// SA set the registration uses.
    pub sec_active: Option<crate::secagree::SaSet>,
}

impl UeEntry {
    fn new() -> Self {
        UeEntry {
            state: RegState::Unregistered,
            binding: None,
            conn: None,
            subscribed: false,
            generation: 0,
            sec_new: None,
            sec_new_at: None,
            sec_active: None,
        }
    }

    /// 401 relayed.
    pub fn on_challenge(&mut self) {
        if self.state != RegState::Registered {
            self.state = RegState::Challenged;
        }
        self.generation += 1;
    }

    /// 200 OK to a REGISTER with a positive expiry: registered with `binding`.
    pub fn on_registered(&mut self, binding: Binding, conn: Option<ConnId>) {
        self.binding = Some(binding);
        self.conn = conn;
        self.state = RegState::Registered;
        self.generation += 1;
    }

    /// De-registered (200 OK to Expires 0, reg-event terminated, expiry): returns the
    /// binding that was removed.
    pub fn on_deregistered(&mut self) -> Option<Binding> {
        self.state = RegState::Unregistered;
        self.subscribed = false;
        self.generation += 1;
        self.binding.take()
    }
}

/// Normalised key of a contact URI (`user@host:port`), as the S-CSCF sets it in the
/// Request-URI of terminating requests.
pub fn contact_key(uri: &str) -> String {
    let t = uri.trim();
    let parsed = if t.starts_with('<') || t.contains("<") {
        NameAddr::parse(t).ok().map(|na| na.uri)
    } else {
        Uri::parse(t).ok()
    };
    match parsed {
        Some(Uri::Sip(u)) => format!(
            "{}@{}:{}",
            u.user.as_deref().unwrap_or(""),
            u.host.to_string().to_ascii_lowercase(),
            u.port.unwrap_or(5060)
        ),
        Some(other) => other.to_string(),
        None => t.to_string(),
    }
}

/// Converts a transport of the network layer to the stored form.
pub fn flow_transport(t: Transport) -> FlowTransport {
    match t {
        Transport::Udp => FlowTransport::Udp,
        Transport::Tcp => FlowTransport::Tcp,
    }
}

type Shared = Arc<tokio::sync::Mutex<UeEntry>>;

/// All UEs: per-UE locked entries plus look-up indexes by flow and by contact.
#[derive(Debug, Default)]
pub struct Registry {
    ues: Mutex<HashMap<UeKey, Shared>>,
    by_flow: Mutex<HashMap<(FlowTransport, SocketAddr), UeKey>>,
    by_contact: Mutex<HashMap<String, UeKey>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Registry {
    /// The entry of `key`, created if absent. Lock it before reading or changing it.
    pub fn entry(&self, key: &UeKey) -> Shared {
        lock(&self.ues)
            .entry(key.clone())
            .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(UeEntry::new())))
            .clone()
    }

    /// The entry of `key` if known.
    pub fn get(&self, key: &UeKey) -> Option<Shared> {
        lock(&self.ues).get(key).cloned()
    }

    /// Indexes a registered binding (call with the UE's lock held).
    pub fn index(&self, key: &UeKey, b: &Binding) {
        lock(&self.by_flow).insert((b.transport, b.ue_addr), key.clone());
        lock(&self.by_contact).insert(contact_key(&b.contact), key.clone());
    }

    /// Removes a binding from the indexes (call with the UE's lock held).
    pub fn unindex(&self, key: &UeKey, b: &Binding) {
        let mut f = lock(&self.by_flow);
        if f.get(&(b.transport, b.ue_addr)) == Some(key) {
            f.remove(&(b.transport, b.ue_addr));
        }
        let mut c = lock(&self.by_contact);
        let ck = contact_key(&b.contact);
        if c.get(&ck) == Some(key) {
            c.remove(&ck);
        }
    }

    /// The UE whose registered flow is `(transport, src)`.
    pub fn by_flow(&self, transport: FlowTransport, src: SocketAddr) -> Option<UeKey> {
        lock(&self.by_flow).get(&(transport, src)).cloned()
    }

    /// The UE registered with this contact (Request-URI of a terminating request).
    pub fn by_contact(&self, uri: &str) -> Option<UeKey> {
        lock(&self.by_contact).get(&contact_key(uri)).cloned()
    }

    /// UEs at `ip` (used when a UE sends from another port or transport than it
    /// registered with, e.g. REGISTER over TCP and SUBSCRIBE over UDP).
    pub fn at_ip(&self, ip: IpAddr) -> Vec<UeKey> {
        lock(&self.ues)
            .keys()
            .filter(|k| k.ip == ip)
            .cloned()
            .collect()
    }

    /// Drops the entry of `key` if it holds nothing (not registered, no SA set) and no
    /// task holds it (checked under the map lock, where `entry` hands out clones), so
    /// de-registered UEs do not accumulate. Returns whether it was dropped.
    pub fn forget_if_idle(&self, key: &UeKey) -> bool {
        let mut ues = lock(&self.ues);
        let Some(e) = ues.get(key) else {
            return false;
        };
        if Arc::strong_count(e) != 1 {
            return false;
        }
        let idle = match e.try_lock() {
            Ok(g) => {
                g.state != RegState::Registered
                    && g.binding.is_none()
                    && g.sec_new.is_none()
                    && g.sec_active.is_none()
            }
            Err(_) => false,
        };
        if idle {
            ues.remove(key);
        }
        idle
    }

    /// Every known UE.
    pub fn keys(&self) -> Vec<UeKey> {
        lock(&self.ues).keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding() -> Binding {
        Binding {
            contact: "sip:alice@127.0.0.1:5070;transport=udp".into(),
            impi: "alice@ims.test".into(),
            public_identities: vec!["sip:alice@ims.test".into()],
            service_route: vec!["<sip:orig@127.0.0.1:5080;lr>".into()],
            transport: FlowTransport::Udp,
            ue_addr: "127.0.0.1:5070".parse().unwrap(),
            expires_at: 10,
            security: String::new(),
            aor: "sip:alice@ims.test".into(),
        }
    }

    #[test]
    fn contact_keys_ignore_params_and_default_port() {
        assert_eq!(
            contact_key("sip:alice@127.0.0.1:5070;transport=udp"),
            contact_key("<sip:alice@127.0.0.1:5070>")
        );
        assert_eq!(contact_key("sip:127.0.0.1"), "@127.0.0.1:5060");
    }

    #[tokio::test]
    async fn register_then_deregister_under_the_lock() {
        let r = Registry::default();
        let key = UeKey {
            aor: "sip:alice@ims.test".into(),
            ip: "127.0.0.1".parse().unwrap(),
        };
        let e = r.entry(&key);
        {
            let mut g = e.lock().await;
            g.on_challenge();
            assert_eq!(g.state, RegState::Challenged);
            g.on_registered(binding(), None);
            r.index(&key, &binding());
        }
        assert_eq!(
            r.by_flow(FlowTransport::Udp, "127.0.0.1:5070".parse().unwrap()),
            Some(key.clone())
        );
        assert_eq!(r.by_contact("sip:alice@127.0.0.1:5070"), Some(key.clone()));
        {
            let mut g = e.lock().await;
            let b = g.on_deregistered().unwrap();
            r.unindex(&key, &b);
            assert_eq!(g.state, RegState::Unregistered);
        }
        assert_eq!(r.by_contact("sip:alice@127.0.0.1:5070"), None);
    }

    #[tokio::test]
    async fn idle_entries_are_forgotten_only_when_unused() {
        let r = Registry::default();
        let key = UeKey {
            aor: "sip:alice@ims.test".into(),
            ip: "127.0.0.1".parse().unwrap(),
        };
        let e = r.entry(&key);
        e.lock().await.on_registered(binding(), None);
        drop(e);
        assert!(!r.forget_if_idle(&key), "registered: kept");
        let e = r.entry(&key);
        e.lock().await.on_deregistered();
        assert!(!r.forget_if_idle(&key), "a task still holds it");
        drop(e);
        assert!(r.forget_if_idle(&key));
        assert!(r.get(&key).is_none());
    }

    #[tokio::test]
    async fn concurrent_register_and_deregister_end_consistent() {
        // Many tasks register and de-register the same UE at once; whatever the order,
        // the indexes agree with the entry's final state.
        let r = Arc::new(Registry::default());
        let key = UeKey {
            aor: "sip:alice@ims.test".into(),
            ip: "127.0.0.1".parse().unwrap(),
        };
        let mut tasks = Vec::new();
        for i in 0..200 {
            let r = r.clone();
            let key = key.clone();
            tasks.push(tokio::spawn(async move {
                let e = r.entry(&key);
                let mut g = e.lock().await;
                if i % 2 == 0 {
                    g.on_registered(binding(), None);
                    r.index(&key, &binding());
                } else if let Some(b) = g.on_deregistered() {
                    r.unindex(&key, &b);
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let e = r.entry(&key);
        let g = e.lock().await;
        let indexed = r.by_contact("sip:alice@127.0.0.1:5070").is_some();
        assert_eq!(indexed, g.state == RegState::Registered);
        assert_eq!(indexed, g.binding.is_some());
    }
}
