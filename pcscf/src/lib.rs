//! P-CSCF: the UE's first hop into IMS (TS 24.229 §5.2), a transaction-stateful proxy
//! (RFC 3261 §16) on `ims-sip-core` and `ims-sip-transport`.
//!
//! - Every request from a UE or the core lives in a server transaction (retransmissions
//!   absorbed, 100 Trying for INVITE) and is forwarded in a client transaction with the
//!   `[timers]` of the configuration; a next hop that never answers gets the UE a 504,
//!   one that cannot be reached a 503.
//! - REGISTER (§5.2.2, [`register`]): Path, P-Visited-Network-ID, P-Charging-Vector,
//!   Route to the I-CSCF; `ck`/`ik` leave the 401; the 200 OK records the registration.
//! - Requests from a registered UE (§5.2.6.3, [`originating`]) get
//!   `P-Asserted-Identity` and follow the Service-Route; unregistered UEs get 403.
//! - Requests to a UE (§5.2.6.4, [`terminating`]) reach it on its flow or its SAs.
//! - reg event (§5.2.3, §5.2.5.1, [`regevent`]): SUBSCRIBE after registration, NOTIFYs
//!   de-register contacts.
//! - Gm IPsec (TS 33.203 §7, [`secagree`], [`protected`]) when `[ipsec] enabled` and an
//!   `SaStore` is given.
//!
//! - Overload control (RFC 3261 §21.5.4): past `[sip] max_pending_requests` new
//!   requests in progress, further new out-of-dialog requests get 503 with
//!   `Retry-After` (`node`, `ims_sip_transport::overload`, `docs/overload.md`).
//!
//! Registrations live in memory ([`registrar`], the source of truth for routing) and are
//! persisted by one batched writer ([`store`]), so a restart restores every UE.
//!
//! # Layout
//! - `node`: addresses, dispatch, stateful forwarding, CANCEL.
//! - [`register`], [`originating`], [`terminating`], [`regevent`]: the procedures.
//! - [`registrar`]: per-UE state machine and indexes; [`store`]: sqlx persistence.
//! - [`secagree`]: sec-agree and SA sets (policy, the set type and its stored form,
//!   install/remove, retirement, restart, integrity alarms); [`protected`]: the
//!   protected ports and the UE-facing Record-Route.
//! - [`headers`]: the role's own header edits (ck/ik, option tags, integrity).

pub mod headers;
mod node;
pub mod originating;
pub mod protected;
pub mod regevent;
pub mod register;
pub mod registrar;
pub mod secagree;
pub mod store;
pub mod terminating;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ims_config::{Listen, PcscfConfig, SasOnShutdown};
use ims_sip_transport::overload::{Admission, REPORT_INTERVAL};
use ims_sip_transport::transaction::{
    timer_config, ResponseRouting, TransactionLayer, TransactionOptions,
};
use ims_sip_transport::{channel, TransportLayer, TransportOptions};
use tokio::net::{TcpListener, UdpSocket};

use crate::headers::aor_of;
use crate::node::{now_s, Node, Settings};
use crate::protected::ProtectedPorts;
use crate::registrar::{Registry, UeKey};
use crate::secagree::{GmSecurity, SaSet};
use crate::store::RegistrationStore;

pub use crate::headers::is_deregistration;
pub use crate::store::StoreError;

/// Errors of the P-CSCF node.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PcscfError {
    /// A listener could not be bound or used.
    #[error("P-CSCF socket {addr}: {source}")]
    Socket {
        /// The address.
        addr: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A socket could not be handed to the transport layer.
    #[error("P-CSCF transport: {0}")]
    Transport(#[from] ims_sip_transport::TransportError),
    /// No socket was given to `run`.
    #[error("P-CSCF: no SIP socket to serve")]
    NoSockets,
    /// The registration store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Gm security could not be set up.
    #[error(transparent)]
    Security(#[from] secagree::SecError),
}

/// Bound SIP sockets handed to [`Pcscf::run`] (STYLE item 10: tests bind port 0).
#[derive(Debug, Default)]
pub struct SipSockets {
    /// UDP sockets; the first is the default sender.
    pub udp: Vec<UdpSocket>,
    /// TCP listeners.
    pub tcp: Vec<TcpListener>,
}

impl SipSockets {
    /// Binds every configured listener.
    pub async fn bind(listen: &[Listen]) -> Result<Self, PcscfError> {
        let mut s = SipSockets::default();
        for l in listen {
            let err = |source| PcscfError::Socket {
                addr: l.to_string(),
                source,
            };
            match l.transport {
                ims_config::Transport::Udp => {
                    s.udp.push(UdpSocket::bind(l.addr).await.map_err(err)?)
                }
                ims_config::Transport::Tcp => {
                    s.tcp.push(TcpListener::bind(l.addr).await.map_err(err)?)
                }
            }
        }
        Ok(s)
    }
}

/// The P-CSCF node.
pub struct Pcscf {
    cfg: PcscfConfig,
    store: RegistrationStore,
    sa_store: Option<Arc<dyn ims_ipsec::SaStore>>,
}

impl std::fmt::Debug for Pcscf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pcscf")
            .field("domain", &self.cfg.domain)
            .field("icscf_uri", &self.cfg.icscf_uri)
            .field("ipsec", &self.sa_store.is_some())
            .finish_non_exhaustive()
    }
}

impl Pcscf {
    /// A P-CSCF from its configuration and an opened registration store
    /// ([`RegistrationStore::open`] with `cfg.database.url`).
    pub fn new(cfg: &PcscfConfig, store: RegistrationStore) -> Self {
        Pcscf {
            cfg: cfg.clone(),
            store,
            sa_store: None,
        }
    }

    /// Enables Gm IPsec with this SA store (`XfrmSaStore` for the kernel,
    /// `MemorySaStore` in tests). Takes effect only when `[ipsec] enabled = true`.
    pub fn with_sa_store(mut self, store: Arc<dyn ims_ipsec::SaStore>) -> Self {
        self.sa_store = Some(store);
        self
    }

    /// Serves SIP on `sockets` until `shutdown` completes. Registrations in the store are
    /// loaded first, so UEs registered before a restart are served at once (with IPsec:
    /// the SA sets of restored registrations still in the kernel are adopted, every
    /// other SA of ours is removed). At shutdown every queued store change is committed
    /// and the P-CSCF's SAs are removed, or kept for the next start with
    /// `[ipsec] sas_on_shutdown = "keep"`.
    pub async fn run(
        self,
        sockets: SipSockets,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), PcscfError> {
        if sockets.udp.is_empty() && sockets.tcp.is_empty() {
            return Err(PcscfError::NoSockets);
        }
        let cfg = &self.cfg;
        let transport = TransportLayer::without_handler(TransportOptions::from_config(&cfg.sip));
        let mut locals = Vec::new();
        for u in sockets.udp {
            locals.push((
                ims_sip_transport::Transport::Udp,
                transport.add_udp_socket(u)?,
            ));
        }
        for t in sockets.tcp {
            locals.push((
                ims_sip_transport::Transport::Tcp,
                transport.add_tcp_listener(t)?,
            ));
        }
        let (upper, mut rx) = channel(16_384);
        let sip = TransactionLayer::new(
            transport,
            timer_config(&cfg.timers),
            TransactionOptions {
                auto_trying: true,
                forward_stray_responses: false,
                // Back to the source from the socket the request came to: a UE behind
                // IPsec gets responses from port-s to its port-c (TS 33.203 §7.1).
                response_routing: ResponseRouting::Source,
            },
            Arc::new(upper),
        );
        let protected_ports = Arc::new(ProtectedPorts::default());
        let sec = match (&self.sa_store, cfg.ipsec.enabled) {
            (Some(store), true) => {
                let owned = store.list_owned().await.map_err(secagree::SecError::from)?;
                let spis: Vec<u32> = owned.sas.iter().map(|s| s.spi).collect();
                let ports: Vec<u16> = owned.sas.iter().flat_map(|s| [s.sport, s.dport]).collect();
                Some(Arc::new(
                    GmSecurity::new(&cfg.ipsec, store.clone(), spis, ports)?
                        .with_ports(protected_ports.clone(), sip.transport().clone()),
                ))
            }
            (None, true) => {
                tracing::warn!("[ipsec] enabled but no SA store given: Gm IPsec is off");
                None
            }
            _ => None,
        };
        let visited = if cfg.visited_network_id.is_empty() {
            cfg.domain.clone()
        } else {
            cfg.visited_network_id.clone()
        };
        let node = Arc::new(Node {
            s: Settings {
                domain: cfg.domain.clone(),
                icscf_uri: cfg.icscf_uri.as_str().to_string(),
                visited_network_id: visited,
                advertised_host: cfg.sip.advertised_host.clone(),
                subscribe_reg_event: cfg.registration.subscribe_reg_event,
                ipsec: cfg.ipsec.clone(),
            },
            sip,
            registry: Registry::default(),
            writer: self.store.spawn_writer(2_048),
            sec,
            ports: protected_ports,
            locals,
            recent_dereg: Mutex::new(HashMap::new()),
            invites: Mutex::new(HashMap::new()),
            admission: Admission::from_config(&cfg.sip),
        });
        let restored = restore(&node, &self.store).await?;
        tracing::info!(locals = ?node.locals, restored, ipsec = node.sec.is_some(), "P-CSCF serving");
        // Expiry and unanswered-challenge sweep, at least as often as an unanswered
        // challenge's SA set may live.
        let period = Duration::from_secs(5).min(unanswered_challenge(&node.s.ipsec));
        let mut sweep = tokio::time::interval(period);
        // Refusals of the overload control, reported once per interval.
        let mut report = tokio::time::interval_at(
            tokio::time::Instant::now() + REPORT_INTERVAL,
            REPORT_INTERVAL,
        );
        // The dispatch loop runs as a task on the runtime's workers, not in this future:
        // `#[tokio::main]` polls `run` on the main thread, and every request handed from
        // a worker to the main thread and spawned back cost two cross-thread wake-ups.
        let dispatcher = node.clone();
        let mut dispatch = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = sweep.tick() => {
                        let n = dispatcher.clone();
                        tokio::spawn(async move {
                            expire(&n).await;
                            if let Some(sec) = &n.sec {
                                sec.check_integrity().await;
                            }
                        });
                    }
                    _ = report.tick() => {
                        dispatcher.admission.log_refusals("P-CSCF");
                    }
                    inc = rx.recv() => {
                        let Some(inc) = inc else { break };
                        dispatcher.admit_and_spawn(inc);
                    }
                }
            }
        });
        tokio::select! {
            _ = shutdown => dispatch.abort(),
            _ = &mut dispatch => {}
        }
        node.writer.flush().await;
        if let Some(sec) = &node.sec {
            match node.s.ipsec.sas_on_shutdown {
                SasOnShutdown::Remove => sec.flush().await,
                SasOnShutdown::Keep => sec.keep_at_shutdown().await,
            }
        }
        node.sip.close().await;
        node.writer.flush().await;
        node.admission.log_refusals("P-CSCF");
        tracing::info!(
            refused_overloaded = node.admission.refused_total(),
            "P-CSCF stopped"
        );
        Ok(())
    }
}

/// How long an SA set built for a 401 waits for the UE's protected REGISTER
/// (`[ipsec] unanswered_challenge_s`; the UE answers a challenge at once, and RFC 3261
/// Timer F of its transaction is 32 s).
fn unanswered_challenge(cfg: &ims_config::IpsecConfig) -> Duration {
    Duration::from_secs(cfg.unanswered_challenge_s.max(1))
}

/// Loads the store into memory; binds the protected ports of restored SA sets and
/// removes SAs a previous run left that no registration uses.
async fn restore(node: &Node, store: &RegistrationStore) -> Result<usize, PcscfError> {
    let now = now_s();
    let mut n = 0;
    let mut live: Vec<SaSet> = Vec::new();
    let in_kernel = match &node.sec {
        Some(sec) => sec.owned_sa_keys().await,
        None => None,
    };
    for b in store.load_all().await? {
        if b.expires_at <= now {
            node.unpersist(&b.contact);
            continue;
        }
        if let (Some(keys), Ok(set)) = (&in_kernel, b.security.parse::<SaSet>()) {
            let present = set
                .id()
                .is_some_and(|id| id.sas.iter().all(|k| keys.contains(k)));
            if !present {
                // The SAs went with the previous run (a clean stop removes them): the
                // UE cannot be reached or heard through them; it must register again.
                tracing::info!(contact = %b.contact, "registration not restored: its SA set is gone");
                node.unpersist(&b.contact);
                continue;
            }
        }
        let aor = if b.aor.is_empty() {
            aor_of(
                b.public_identities
                    .first()
                    .map(String::as_str)
                    .unwrap_or(""),
            )
        } else {
            b.aor.clone()
        };
        let key = UeKey {
            aor,
            ip: b.ue_addr.ip(),
        };
        let e = node.registry.entry(&key);
        let mut g = e.lock().await;
        node.registry.index(&key, &b);
        if let (Some(sec), Ok(set)) = (&node.sec, b.security.parse::<SaSet>()) {
            sec.adopt(&set).await;
            live.push(set.clone());
            g.sec_active = Some(set);
        }
        g.on_registered(b, None);
        // The reg-event subscription lives at the S-CSCF; do not subscribe again.
        g.subscribed = true;
        n += 1;
    }
    if let Some(sec) = &node.sec {
        tracing::info!(
            adopted = live.len(),
            "Gm SA sets of restored registrations adopted"
        );
        sec.remove_unused(&live).await;
    }
    Ok(n)
}

/// Removes registrations whose expiry passed (with their SAs), and SA sets built for
/// a 401 the UE did not answer within `[ipsec] unanswered_challenge_s`.
async fn expire(node: &Node) {
    let now = now_s();
    let unanswered = unanswered_challenge(&node.s.ipsec);
    for key in node.registry.keys() {
        let Some(e) = node.registry.get(&key) else {
            continue;
        };
        let mut g = e.lock().await;
        if let (Some(sec), Some(at)) = (&node.sec, g.sec_new_at) {
            if at.elapsed() > unanswered {
                g.sec_new_at = None;
                if let Some(set) = g.sec_new.take() {
                    // The UE did not register: say why, from what its SAs saw.
                    let cause = sec.diagnose_unanswered(&set).await;
                    tracing::warn!(aor = %key.aor, ue = %set.ue.addr, spi_s = set.pcscf.spi_s, %cause, "UE never answered its 401 through the SAs; set removed");
                    sec.remove(&set).await;
                }
            }
        }
        if g.binding.as_ref().is_none_or(|b| b.expires_at > now) {
            continue;
        }
        let sets: Vec<SaSet> = [g.sec_active.take(), g.sec_new.take()]
            .into_iter()
            .flatten()
            .collect();
        if let Some(sec) = &node.sec {
            for set in &sets {
                sec.remove(set).await;
            }
        }
        if let Some(b) = g.on_deregistered() {
            tracing::info!(aor = %key.aor, contact = %b.contact, "registration expired");
            node.registry.unindex(&key, &b);
            node.unpersist(&b.contact);
        }
    }
    for key in node.registry.keys() {
        node.registry.forget_if_idle(&key);
    }
}
