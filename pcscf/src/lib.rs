//! P-CSCF: the UE's first hop into IMS (TS 24.229 §5.2).
//!
//! - REGISTER from the UE (§5.2.2): proxy checks, `Path: <sip:term@<me>;lr>`,
//!   `Require`/`Supported: path`, `P-Visited-Network-ID`, `P-Charging-Vector` (icid),
//!   no `P-Asserted-Identity` from the UE, `Route` to the configured I-CSCF.
//!   The 401 loses `ck=`/`ik=` (kept per UE for IPsec); the 200 OK stores the
//!   registration (contact, flow, Service-Route, P-Associated-URI, expiry) in memory and
//!   in the [`store`], and a reg-event SUBSCRIBE goes out (§5.2.3).
//! - Requests from a registered UE (§5.2.6.3): `P-Asserted-Identity` from
//!   P-Preferred-Identity / the default P-Associated-URI, routed along the Service-Route.
//!   Requests from unregistered UEs get 403.
//! - Terminating requests (§5.2.6.4) reach the UE on its flow (UDP address, or its TCP
//!   connection while alive).
//! - reg-event NOTIFYs (§5.2.5.1) remove network-de-registered contacts.
//! - Gm IPsec (TS 33.203 §7, when `[ipsec] enabled` and an `SaStore` is given): offer
//!   chosen on the REGISTER, SAs installed and `Security-Server` added on the 401,
//!   `Security-Verify` checked on the protected REGISTER, requests from the UE accepted
//!   only on its protected port, requests to it sent from port-c to its port-s, old
//!   sets retired after the new one is used, SAs removed a grace period after the
//!   de-registration's 200 OK, on expiry and at shutdown.
//!
//! Forwarding is stateless (RFC 3261 §16.11) with a branch→flow table so responses
//! return on the flow their request came on.
//!
//! # Layout
//! - [`registrar`]: per-UE state machine and indexes; [`store`]: sqlx persistence.
//! - [`regevent`]: SUBSCRIBE / reginfo.
//! - [`secagree`]: Gm sec-agree and IPsec SA sets (TS 33.203 §7).
//! - [`checks`], [`route`], [`net`], [`sip`]: proxy checks, routing, UDP/TCP, messages.

pub mod checks;
pub mod net;
pub mod regevent;
pub mod registrar;
pub mod route;
pub mod secagree;
pub mod sip;
pub mod store;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use ims_config::{Listen, PcscfConfig};
use tokio::net::{TcpListener, UdpSocket};

use crate::net::{ConnId, Inbound, Net, Transport};
use crate::registrar::{flow_transport, AkaKeys, RegState, Registry, UeKey};
use crate::route::{PendingTable, Upstream};
use crate::secagree::{GmSecurity, Initial, SaSet};
use crate::sip::{Message, NameAddr, Uri, Via};
use crate::store::{Binding, FlowTransport, RegistrationStore};

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

#[derive(Debug, Clone)]
struct Settings {
    domain: String,
    icscf_uri: String,
    visited_network_id: String,
    advertised_host: String,
    subscribe_reg_event: bool,
    ipsec: ims_config::IpsecConfig,
}

/// The P-CSCF node.
pub struct Pcscf {
    settings: Settings,
    store: RegistrationStore,
    sa_store: Option<Arc<dyn ims_ipsec::SaStore>>,
}

impl std::fmt::Debug for Pcscf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pcscf")
            .field("settings", &self.settings)
            .field("ipsec", &self.sa_store.is_some())
            .finish_non_exhaustive()
    }
}

/// Context of a REGISTER forwarded to the I-CSCF, kept until its final response.
#[derive(Debug, Clone)]
struct RegisterCtx {
    key: UeKey,
    contact: String,
    impi: String,
    transport: Transport,
    src: SocketAddr,
    conn: Option<ConnId>,
    dereg: bool,
    requested_expires: Option<u64>,
    protected: bool,
}

/// Binding, TCP connection and end of grace of a UE that just de-registered.
type RecentDereg = (store::Binding, Option<ConnId>, std::time::Instant);

struct Node {
    s: Settings,
    net: Arc<Net>,
    pending: PendingTable,
    reg_ctx: Mutex<HashMap<String, RegisterCtx>>,
    registry: Registry,
    store: RegistrationStore,
    locals: Vec<(Transport, SocketAddr)>,
    sec: Option<Arc<GmSecurity>>,
    /// Protected ports bound so far (port-c and port-s values).
    protected_bound: Mutex<HashSet<(IpAddr, u16)>>,
    protected_server_ports: Mutex<HashSet<u16>>,
    /// Flows of UEs de-registered less than the grace period ago, by contact key, so
    /// the reg-event NOTIFY (`terminated`) the S-CSCF sends right after the 200 OK still
    /// reaches the UE (FIELD-LESSONS item 4; the SAs outlive the 200 OK as long).
    recent_dereg: Mutex<HashMap<String, RecentDereg>>,
}

fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn random_hex() -> String {
    format!("{:016x}", rand::random::<u64>())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Pcscf {
    /// A P-CSCF from its configuration and an opened registration store
    /// ([`RegistrationStore::open`] with `cfg.database.url`).
    pub fn new(cfg: &PcscfConfig, store: RegistrationStore) -> Self {
        let visited = if cfg.visited_network_id.is_empty() {
            cfg.domain.clone()
        } else {
            cfg.visited_network_id.clone()
        };
        Pcscf {
            settings: Settings {
                domain: cfg.domain.clone(),
                icscf_uri: cfg.icscf_uri.as_str().to_string(),
                visited_network_id: visited,
                advertised_host: cfg.sip.advertised_host.clone(),
                subscribe_reg_event: cfg.registration.subscribe_reg_event,
                ipsec: cfg.ipsec.clone(),
            },
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
    /// loaded first, so UEs registered before a restart are served at once.
    pub async fn run(
        self,
        sockets: SipSockets,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), PcscfError> {
        if sockets.udp.is_empty() && sockets.tcp.is_empty() {
            return Err(PcscfError::NoSockets);
        }
        let (net, mut rx) = Net::new();
        let mut locals = Vec::new();
        let sock_err = |source| PcscfError::Socket {
            addr: "bound socket".into(),
            source,
        };
        for u in sockets.udp {
            locals.push((Transport::Udp, net.add_udp(u).map_err(sock_err)?));
        }
        for t in sockets.tcp {
            locals.push((Transport::Tcp, net.add_tcp(t).map_err(sock_err)?));
        }
        let sec = match (&self.sa_store, self.settings.ipsec.enabled) {
            (Some(store), true) => {
                let owned = store.list_owned().await.map_err(secagree::SecError::from)?;
                let spis: Vec<u32> = owned.sas.iter().map(|s| s.spi).collect();
                let ports: Vec<u16> = owned.sas.iter().flat_map(|s| [s.sport, s.dport]).collect();
                Some(Arc::new(GmSecurity::new(
                    &self.settings.ipsec,
                    store.clone(),
                    spis,
                    ports,
                )?))
            }
            (None, true) => {
                tracing::warn!("[ipsec] enabled but no SA store given: Gm IPsec is off");
                None
            }
            _ => None,
        };
        let node = Arc::new(Node {
            sec,
            protected_bound: Mutex::new(HashSet::new()),
            protected_server_ports: Mutex::new(HashSet::new()),
            recent_dereg: Mutex::new(HashMap::new()),
            s: self.settings,
            net,
            pending: PendingTable::default(),
            reg_ctx: Mutex::new(HashMap::new()),
            registry: Registry::default(),
            store: self.store,
            locals,
        });
        let restored = node.restore().await?;
        tracing::info!(locals = ?node.locals, restored, "P-CSCF serving");
        let mut sweep = tokio::time::interval(Duration::from_secs(5));
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                _ = sweep.tick() => {
                    node.pending.sweep();
                    let n = node.clone();
                    tokio::spawn(async move { n.expire().await });
                }
                msg = rx.recv() => {
                    let Some(msg) = msg else { break };
                    let node = node.clone();
                    tokio::spawn(async move { node.handle(msg).await });
                }
            }
        }
        if let Some(sec) = &node.sec {
            sec.flush().await;
        }
        node.net.shutdown();
        tracing::info!("P-CSCF stopped");
        Ok(())
    }
}

impl Node {
    // === addresses ===

    fn host(&self) -> String {
        if !self.s.advertised_host.is_empty() {
            return self.s.advertised_host.clone();
        }
        match self.locals.first().map(|l| l.1.ip()) {
            Some(std::net::IpAddr::V6(v6)) => format!("[{v6}]"),
            Some(ip) => ip.to_string(),
            None => "127.0.0.1".into(),
        }
    }

    fn port(&self) -> u16 {
        self.locals.first().map(|l| l.1.port()).unwrap_or(5060)
    }

    fn local_for(&self, t: Transport) -> Option<SocketAddr> {
        self.locals
            .iter()
            .find(|l| l.0 == t)
            .or(self.locals.first())
            .map(|l| l.1)
    }

    fn is_me(&self, uri: &Uri) -> bool {
        let port = uri.port.unwrap_or(5060);
        let host = uri.host.trim_start_matches('[').trim_end_matches(']');
        let adv = self.host();
        let adv = adv.trim_start_matches('[').trim_end_matches(']');
        self.locals.iter().any(|(_, a)| {
            a.port() == port && (a.ip().to_string() == host || adv.eq_ignore_ascii_case(host))
        })
    }

    fn own_uri(&self, user: &str) -> String {
        format!("sip:{user}@{}:{}", self.host(), self.port())
    }

    fn charging_vector(&self) -> String {
        format!(
            "icid-value={}{};icid-generated-at={};orig-ioi={}",
            random_hex(),
            random_hex(),
            self.host(),
            self.s.domain
        )
    }

    // === start-up and expiry ===

    async fn restore(&self) -> Result<usize, PcscfError> {
        let now = now_s();
        let mut n = 0;
        for b in self.store.load_all().await? {
            if b.expires_at <= now {
                self.store.remove(&b.contact).await?;
                continue;
            }
            let key = UeKey {
                aor: b.public_identities.first().cloned().unwrap_or_default(),
                ip: b.ue_addr.ip(),
            };
            let key = UeKey {
                aor: Uri::parse(&key.aor).aor(),
                ..key
            };
            let e = self.registry.entry(&key);
            let mut g = e.lock().await;
            self.registry.index(&key, &b);
            if let Ok(set) = b.security.parse::<SaSet>() {
                self.bind_protected(&set).await;
                g.sec_active = Some(set);
            }
            g.on_registered(b, None);
            // The reg-event subscription lives at the S-CSCF; do not subscribe again.
            g.subscribed = true;
            n += 1;
        }
        Ok(n)
    }

    async fn expire(&self) {
        let now = now_s();
        for key in self.registry.keys() {
            let Some(e) = self.registry.get(&key) else {
                continue;
            };
            let mut g = e.lock().await;
            let expired = g.binding.as_ref().is_some_and(|b| b.expires_at <= now);
            if expired {
                let sets = [g.sec_active.take(), g.sec_new.take()];
                if let Some(sec) = &self.sec {
                    for set in sets.into_iter().flatten() {
                        sec.remove(&set).await;
                    }
                }
                if let Some(b) = g.on_deregistered() {
                    tracing::info!(aor = %key.aor, contact = %b.contact, "registration expired");
                    self.registry.unindex(&key, &b);
                    if let Err(e) = self.store.remove(&b.contact).await {
                        tracing::warn!(error = %e, "store remove failed");
                    }
                }
            }
        }
    }

    // === dispatch ===

    async fn handle(self: Arc<Self>, inb: Inbound) {
        let msg = match Message::parse(&inb.data, inb.transport == Transport::Udp) {
            Ok(m) => m,
            Err(e) => {
                if !e.is_response {
                    tracing::info!(peer = %inb.peer, reason = %e.reason, "unparsable request");
                    if let Some(r) = sip::fallback_response(&inb.data, e.status, &e.reason) {
                        self.send_back(&inb, r).await;
                    }
                } else {
                    tracing::debug!(peer = %inb.peer, reason = %e.reason, "unparsable response dropped");
                }
                return;
            }
        };
        let call_id = msg.get("call-id").unwrap_or("").to_string();
        let span = tracing::info_span!("sip", call_id = %call_id);
        let fut = async {
            if msg.code().is_some() {
                self.on_response(msg).await;
                return;
            }
            if let Err(e) = msg.check_request() {
                tracing::info!(reason = %e.reason, "malformed request");
                self.reply(&inb, &msg, e.status, &e.reason, &[]).await;
                return;
            }
            if let Err(r) = checks::proxy_checks(&msg, &["sec-agree", "path"]) {
                tracing::info!(code = r.code, "request refused by proxy checks");
                self.reply(&inb, &msg, r.code, &r.reason, &r.headers).await;
                return;
            }
            self.on_request(inb, msg).await;
        };
        tracing::Instrument::instrument(fut, span).await;
    }

    async fn on_request(&self, inb: Inbound, msg: Message) {
        let method = msg.method().unwrap_or("").to_string();
        let ruri = Uri::parse(msg.uri().unwrap_or(""));
        let no_route = msg.list("route").is_empty();
        if self.is_me(&ruri) && (ruri.user.is_empty() || ruri.user == "pcscf") && no_route {
            match method.as_str() {
                "OPTIONS" => {
                    let extra = [
                        ("Allow".to_string(), "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, SUBSCRIBE, NOTIFY, MESSAGE, PRACK, UPDATE, REFER, INFO".to_string()),
                        ("Supported".to_string(), "path, sec-agree".to_string()),
                    ];
                    self.reply(&inb, &msg, 200, "OK", &extra).await;
                }
                "NOTIFY" => self.on_notify(&inb, &msg).await,
                "ACK" => {}
                _ => self.reply(&inb, &msg, 403, "Forbidden", &[]).await,
            }
            return;
        }
        if method == "REGISTER" {
            self.on_register(inb, msg).await;
            return;
        }
        let flow = flow_transport(inb.transport);
        if let Some(key) = self.originator(&inb, &msg, flow) {
            self.originating(inb, msg, key).await;
            return;
        }
        let top_route_term = msg
            .list("route")
            .first()
            .and_then(|r| NameAddr::parse(r))
            .map(|na| Uri::parse(&na.uri))
            .is_some_and(|u| self.is_me(&u) && u.user == "term");
        let own_route_top = msg
            .list("route")
            .first()
            .and_then(|r| NameAddr::parse(r))
            .map(|na| Uri::parse(&na.uri))
            .is_some_and(|u| self.is_me(&u));
        let contact_key = self.registry.by_contact(msg.uri().unwrap_or(""));
        let known_ue = contact_key.is_some()
            || self
                .recently_deregistered(msg.uri().unwrap_or(""))
                .is_some();
        if top_route_term || (own_route_top && known_ue) {
            self.terminating(inb, msg, contact_key).await;
            return;
        }
        if method == "ACK" {
            return;
        }
        tracing::info!(peer = %inb.peer, %method, "request from an unregistered UE refused");
        self.reply(&inb, &msg, 403, "Forbidden - register first", &[])
            .await;
    }

    /// The registered UE a request comes from: its flow, else the same IP with an identity
    /// it registered (UEs that register over TCP and send SUBSCRIBE over UDP).
    fn originator(&self, inb: &Inbound, msg: &Message, flow: FlowTransport) -> Option<UeKey> {
        if let Some(k) = self.registry.by_flow(flow, inb.peer) {
            return Some(k);
        }
        let claimed: Vec<String> = msg
            .list("p-preferred-identity")
            .iter()
            .chain(msg.list("from").iter())
            .filter_map(|v| NameAddr::parse(v))
            .map(|na| Uri::parse(&na.uri).aor())
            .collect();
        self.registry
            .at_ip(inb.peer.ip())
            .into_iter()
            .find(|k| claimed.contains(&k.aor))
    }

    // === REGISTER (TS 24.229 §5.2.2) ===

    async fn on_register(&self, inb: Inbound, mut msg: Message) {
        let Some(to) = msg.get("to").and_then(NameAddr::parse) else {
            self.reply(&inb, &msg, 400, "Bad Request (To)", &[]).await;
            return;
        };
        let to_uri = Uri::parse(&to.uri);
        if !(to_uri.is_sip() || to_uri.scheme == "tel") {
            self.reply(
                &inb,
                &msg,
                400,
                "Bad Request (To is not a SIP or tel URI)",
                &[],
            )
            .await;
            return;
        }
        let key = UeKey {
            aor: to_uri.aor(),
            ip: inb.peer.ip(),
        };
        let contact = msg
            .list("contact")
            .into_iter()
            .find(|c| c.trim() != "*")
            .and_then(|c| NameAddr::parse(&c))
            .map(|na| na.uri)
            .unwrap_or_default();
        let impi = msg
            .get("authorization")
            .and_then(|a| sip::auth_param(a, "username"))
            .unwrap_or_default();
        let dereg = is_deregistration(&msg);
        let protected = self.sec.is_some() && self.is_protected_port(inb.local.port());
        if let Some(sec) = &self.sec {
            let ue = format!("{} at {}", key.aor, inb.peer);
            let client = msg.get("security-client").map(str::to_string);
            let e = self.registry.entry(&key);
            let mut g = e.lock().await;
            if protected {
                // TS 33.203 §7.4: Security-Verify must echo our Security-Server.
                let (set, is_new) = match (&g.sec_new, &g.sec_active) {
                    (Some(n), _) => (Some(n.clone()), true),
                    (None, Some(a)) => (Some(a.clone()), false),
                    _ => (None, false),
                };
                if let (Some(set), true) = (set, msg.has("security-verify")) {
                    if let Err(why) =
                        GmSecurity::verify(&set, msg.get("security-verify"), client.as_deref())
                    {
                        tracing::warn!(%ue, %why, "protected REGISTER refused: sec-agree check failed");
                        if is_new {
                            g.sec_new = None;
                            sec.remove(&set).await;
                        }
                        drop(g);
                        self.reply(&inb, &msg, 403, "Forbidden (Security-Verify mismatch)", &[])
                            .await;
                        return;
                    }
                }
                if client.is_some() {
                    if let Initial::Offer { offer, client } = sec.initial(client.as_deref(), &ue) {
                        g.sec_pending = Some((offer, client));
                    }
                }
            } else {
                match sec.initial(client.as_deref(), &ue) {
                    Initial::Unprotected => {}
                    Initial::Offer { offer, client } => g.sec_pending = Some((offer, client)),
                    Initial::Refuse(code, reason) => {
                        drop(g);
                        let extra = [("Require".to_string(), "sec-agree".to_string())];
                        self.reply(&inb, &msg, code, &reason, &extra).await;
                        return;
                    }
                }
                if g.sec_active.is_some() && client.is_none() {
                    drop(g);
                    tracing::warn!(%ue, "unprotected REGISTER for a UE registered with IPsec refused");
                    self.reply(&inb, &msg, 403, "Forbidden (use the protected ports)", &[])
                        .await;
                    return;
                }
            }
        }
        let requested_expires = msg
            .list("contact")
            .first()
            .and_then(|c| NameAddr::parse(c))
            .and_then(|na| na.param("expires"))
            .and_then(|e| e.parse().ok())
            .or_else(|| msg.get("expires").and_then(|e| e.trim().parse().ok()));

        // Headers the P-CSCF owns (§5.2.2.1): no identity assertion from the UE, our
        // charging vector, Path, visited network, Route to the I-CSCF, no sec-agree.
        msg.remove("p-asserted-identity");
        msg.remove("p-charging-vector");
        msg.remove("route");
        msg.remove("security-client");
        msg.remove("security-verify");
        strip_option_tag(&mut msg, "require", "sec-agree");
        strip_option_tag(&mut msg, "proxy-require", "sec-agree");
        add_option_tag(&mut msg, "Require", "path");
        add_option_tag(&mut msg, "Supported", "path");
        mark_integrity(&mut msg, if protected { "yes" } else { "no" });
        let icscf = route_value(&self.s.icscf_uri);
        msg.insert_before("via", "Route", icscf);
        msg.push_back("Path", format!("<{};lr>", self.own_uri("term")));
        msg.push_back(
            "P-Visited-Network-ID",
            format!("\"{}\"", self.s.visited_network_id),
        );
        msg.push_back("P-Charging-Vector", self.charging_vector());

        let ctx = RegisterCtx {
            key,
            contact,
            impi,
            transport: inb.transport,
            src: inb.peer,
            conn: inb.conn,
            dereg,
            requested_expires,
            protected,
        };
        if let Some(branch) = self.forward(&inb, msg, None).await {
            lock(&self.reg_ctx).insert(branch, ctx);
        }
    }

    async fn on_register_response(
        &self,
        ctx: &RegisterCtx,
        msg: &Message,
        keys: Option<AkaKeys>,
    ) -> RegOutcome {
        let code = msg.code().unwrap_or(0);
        let e = self.registry.entry(&ctx.key);
        let mut g = e.lock().await;
        if code == 401 {
            let mut out = RegOutcome::default();
            if let (Some(sec), Some((offer, client)), Some(k)) =
                (&self.sec, g.sec_pending.take(), keys.as_ref())
            {
                match sec.create(ctx.src.ip(), &offer, client, k).await {
                    Ok(set) => {
                        self.bind_protected(&set).await;
                        out.add
                            .push(("Security-Server".into(), GmSecurity::security_server(&set)));
                        out.add.push(("Require".into(), "sec-agree".into()));
                        if let Some(old) = g.sec_new.replace(set) {
                            // A challenge the UE never answered: its set was never used.
                            sec.remove(&old).await;
                        }
                    }
                    Err(err) => {
                        tracing::error!(aor = %ctx.key.aor, error = %err, "IPsec SA set not created");
                        out.replace =
                            Some((500, "Server Internal Error (IPsec SA setup failed)".into()));
                    }
                }
            }
            g.on_challenge(keys);
            return out;
        }
        if !(200..300).contains(&code) {
            return RegOutcome::default();
        }
        let expires = self.granted_expiry(ctx, msg);
        if ctx.dereg || expires == 0 {
            // FIELD-LESSONS item 4: the 200 OK (relayed right after this) still goes out
            // through the SAs; they are removed after a grace period.
            let sets: Vec<SaSet> = [g.sec_active.take(), g.sec_new.take()]
                .into_iter()
                .flatten()
                .collect();
            if let (Some(sec), false) = (&self.sec, sets.is_empty()) {
                let sec = sec.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(sec.grace).await;
                    for set in sets {
                        sec.remove(&set).await;
                    }
                });
            }
            let conn = g.conn;
            if let Some(b) = g.on_deregistered() {
                self.registry.unindex(&ctx.key, &b);
                self.remember_deregistered(&b, conn);
                if let Err(e) = self.store.remove(&b.contact).await {
                    tracing::warn!(error = %e, "store remove failed");
                }
            }
            tracing::info!(aor = %ctx.key.aor, "UE de-registered");
            return RegOutcome::default();
        }
        if ctx.protected {
            // The protected REGISTER came through the new set: it is in use; retire the
            // old one after the grace period (TS 33.203 §7.4).
            if let Some(new) = g.sec_new.take() {
                if let Some(old) = g.sec_active.replace(new) {
                    if let Some(sec) = self.sec.clone() {
                        tokio::spawn(async move {
                            tokio::time::sleep(sec.grace).await;
                            sec.remove(&old).await;
                        });
                    }
                }
            }
        }
        let public_identities: Vec<String> = msg
            .list("p-associated-uri")
            .iter()
            .filter_map(|v| NameAddr::parse(v))
            .map(|na| na.uri)
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
            service_route: msg.list("service-route"),
            transport: flow_transport(ctx.transport),
            ue_addr: ctx.src,
            expires_at: now_s() + expires as i64,
            security: g
                .sec_active
                .as_ref()
                .filter(|_| ctx.protected)
                .map(|s| s.to_string())
                .unwrap_or_default(),
        };
        if let Some(old) = g.binding.as_ref() {
            if old.contact != binding.contact || old.ue_addr != binding.ue_addr {
                self.registry.unindex(&ctx.key, old);
                if let Err(e) = self.store.remove(&old.contact).await {
                    tracing::warn!(error = %e, "store remove failed");
                }
            }
        }
        if let Err(e) = self.store.upsert(&binding).await {
            tracing::warn!(error = %e, "registration not persisted");
        }
        self.registry.index(&ctx.key, &binding);
        let subscribe = self.s.subscribe_reg_event && !g.subscribed;
        if subscribe {
            g.subscribed = true;
        }
        let sub_args = (
            binding.public_identities[0].clone(),
            binding.service_route.clone(),
        );
        tracing::info!(aor = %ctx.key.aor, contact = %binding.contact, expires, "UE registered");
        g.on_registered(binding, ctx.conn);
        drop(g);
        if subscribe {
            self.subscribe_reg_event(&sub_args.0, &sub_args.1).await;
        }
        RegOutcome::default()
    }

    // === Gm IPsec ports ===

    fn is_protected_port(&self, port: u16) -> bool {
        lock(&self.protected_server_ports).contains(&port)
    }

    /// Binds the set's protected ports (UDP port-c and port-s, TCP port-s) once.
    async fn bind_protected(&self, set: &SaSet) {
        let addr = set.pcscf.addr;
        lock(&self.protected_server_ports).insert(set.pcscf.port_s);
        for (port, tcp) in [(set.pcscf.port_c, false), (set.pcscf.port_s, true)] {
            if !lock(&self.protected_bound).insert((addr, port)) {
                continue;
            }
            let sa = SocketAddr::new(addr, port);
            match UdpSocket::bind(sa).await {
                Ok(u) => {
                    if let Err(e) = self.net.add_udp(u) {
                        tracing::warn!(%sa, error = %e, "protected UDP port not served");
                    }
                }
                Err(e) => tracing::warn!(%sa, error = %e, "protected UDP port not bound"),
            }
            if tcp {
                match TcpListener::bind(sa).await {
                    Ok(t) => {
                        if let Err(e) = self.net.add_tcp(t) {
                            tracing::warn!(%sa, error = %e, "protected TCP port not served");
                        }
                    }
                    Err(e) => tracing::warn!(%sa, error = %e, "protected TCP port not bound"),
                }
            }
        }
    }

    fn granted_expiry(&self, ctx: &RegisterCtx, msg: &Message) -> u64 {
        let mine = crate::registrar::contact_key(&ctx.contact);
        let header = msg
            .get("expires")
            .and_then(|e| e.trim().parse::<u64>().ok());
        for c in msg.list("contact") {
            if let Some(na) = NameAddr::parse(&c) {
                if crate::registrar::contact_key(&na.uri) == mine {
                    if let Some(e) = na.param("expires").and_then(|e| e.parse().ok()) {
                        return e;
                    }
                }
            }
        }
        header.or(ctx.requested_expires).unwrap_or(3600)
    }

    // === reg event (TS 24.229 §5.2.3, §5.2.5.1) ===

    async fn subscribe_reg_event(&self, impu: &str, service_route: &[String]) {
        let next = service_route
            .first()
            .and_then(|r| NameAddr::parse(r))
            .map(|na| Uri::parse(&na.uri))
            .unwrap_or_else(|| Uri::parse(impu));
        let Some((transport, dest)) = route::resolve(&next).await else {
            tracing::warn!(%impu, "reg-event SUBSCRIBE: next hop unresolvable");
            return;
        };
        let Some(local) = self.local_for(transport) else {
            return;
        };
        let via = format!(
            "SIP/2.0/{} {}:{}",
            transport.via_token(),
            self.host(),
            local.port()
        );
        let branch = format!("z9hG4bKPs{}", random_hex());
        let call_id = format!("{}@{}", random_hex(), self.host());
        let tag = random_hex();
        let pcscf = self.own_uri("pcscf");
        let cv = self.charging_vector();
        let text = regevent::subscribe(&regevent::SubscribeParams {
            impu,
            service_route,
            pcscf_uri: &pcscf,
            via: &via,
            branch: &branch,
            call_id: &call_id,
            from_tag: &tag,
            expires: 600_000,
            charging_vector: &cv,
        });
        tracing::info!(%impu, %dest, "subscribing to reg event");
        if let Err(e) = self
            .net
            .send(transport, dest, None, Some(local), Bytes::from(text))
            .await
        {
            tracing::warn!(%impu, error = %e, "reg-event SUBSCRIBE not sent");
        }
    }

    async fn on_notify(&self, inb: &Inbound, msg: &Message) {
        self.reply(inb, msg, 200, "OK", &[]).await;
        let body = String::from_utf8_lossy(&msg.body).into_owned();
        for reg in regevent::parse_reginfo(&body) {
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
                if let Some(b) = g.on_deregistered() {
                    tracing::info!(aor = %key.aor, contact = %b.contact, event = %c.event, "network de-registered the UE (reg event)");
                    self.registry.unindex(&key, &b);
                    self.remember_deregistered(&b, conn);
                    if let Err(e) = self.store.remove(&b.contact).await {
                        tracing::warn!(error = %e, "store remove failed");
                    }
                }
            }
        }
    }

    // === originating and terminating requests (TS 24.229 §5.2.6.3/§5.2.6.4) ===

    async fn originating(&self, inb: Inbound, mut msg: Message, key: UeKey) {
        let Some(e) = self.registry.get(&key) else {
            return;
        };
        let binding = {
            let g = e.lock().await;
            if g.state != RegState::Registered {
                None
            } else {
                g.binding.clone()
            }
        };
        let Some(b) = binding else {
            self.reply(&inb, &msg, 403, "Forbidden - register first", &[])
                .await;
            return;
        };
        if let Ok(set) = b.security.parse::<SaSet>() {
            // TS 33.203 §7.1: after registration only the SAs carry the UE's requests.
            if inb.local.port() != set.pcscf.port_s || inb.peer.ip() != set.ue.addr {
                tracing::warn!(aor = %key.aor, peer = %inb.peer, "unprotected request from an IPsec-registered UE refused");
                self.reply(&inb, &msg, 403, "Forbidden (use the protected ports)", &[])
                    .await;
                return;
            }
        }
        let preferred = msg
            .get("p-preferred-identity")
            .and_then(NameAddr::parse)
            .map(|na| na.uri);
        let asserted = preferred
            .filter(|p| {
                let a = Uri::parse(p).aor();
                b.public_identities.iter().any(|i| Uri::parse(i).aor() == a)
            })
            .or_else(|| b.public_identities.first().cloned())
            .unwrap_or_else(|| key.aor.clone());
        msg.remove("p-asserted-identity");
        msg.remove("p-preferred-identity");
        msg.push_back("P-Asserted-Identity", format!("<{asserted}>"));
        self.pop_own_routes(&mut msg);
        let initial = !has_to_tag(&msg);
        if initial {
            msg.remove("route");
            for r in b.service_route.iter().rev() {
                msg.insert_before("via", "Route", r.clone());
            }
            if !msg.has("p-charging-vector") {
                msg.push_back("P-Charging-Vector", self.charging_vector());
            }
            self.record_route(&mut msg);
        }
        self.forward(&inb, msg, None).await;
    }

    async fn terminating(&self, inb: Inbound, mut msg: Message, key: Option<UeKey>) {
        self.pop_own_routes(&mut msg);
        let key = key.or_else(|| self.registry.by_contact(msg.uri().unwrap_or("")));
        let target = match &key {
            Some(k) => match self.registry.get(k) {
                Some(e) => {
                    let g = e.lock().await;
                    g.binding.clone().map(|b| (b, g.conn))
                }
                None => None,
            },
            None => None,
        };
        let target = target.or_else(|| self.recently_deregistered(msg.uri().unwrap_or("")));
        let Some((b, conn)) = target else {
            tracing::info!(uri = ?msg.uri(), "terminating request for a UE not registered here");
            self.reply(&inb, &msg, 480, "Temporarily Unavailable", &[])
                .await;
            return;
        };
        if !has_to_tag(&msg) {
            self.record_route(&mut msg);
        }
        if let Ok(set) = b.security.parse::<SaSet>() {
            // Requests to the UE: P-CSCF port-c → UE port-s, inside SA2.
            let dest = Dest {
                transport: match b.transport {
                    FlowTransport::Udp => Transport::Udp,
                    FlowTransport::Tcp => Transport::Tcp,
                },
                addr: SocketAddr::new(set.ue.addr, set.ue.port_s),
                conn: None,
                from: Some(SocketAddr::new(set.pcscf.addr, set.pcscf.port_c)),
            };
            self.forward(&inb, msg, Some(dest)).await;
            return;
        }
        let dest = match b.transport {
            FlowTransport::Udp => Dest {
                transport: Transport::Udp,
                addr: b.ue_addr,
                conn: None,
                from: None,
            },
            FlowTransport::Tcp => {
                let alive = conn.filter(|c| self.net.conn_alive(*c));
                let addr = if alive.is_some() {
                    b.ue_addr
                } else {
                    // No live connection (e.g. after a restart): connect to the contact.
                    let u = Uri::parse(&b.contact);
                    route::resolve(&u)
                        .await
                        .map(|(_, a)| a)
                        .unwrap_or(b.ue_addr)
                };
                Dest {
                    transport: Transport::Tcp,
                    addr,
                    conn: alive,
                    from: None,
                }
            }
        };
        self.forward(&inb, msg, Some(dest)).await;
    }

    /// Keeps the flow of a UE that just de-registered for the grace period.
    fn remember_deregistered(&self, b: &store::Binding, conn: Option<ConnId>) {
        let until = std::time::Instant::now()
            + Duration::from_millis(self.s.ipsec.dereg_grace_ms.max(1000));
        let mut m = lock(&self.recent_dereg);
        let now = std::time::Instant::now();
        m.retain(|_, (_, _, t)| *t > now);
        m.insert(registrar::contact_key(&b.contact), (b.clone(), conn, until));
    }

    /// The flow of a UE de-registered less than the grace period ago, for `uri`.
    fn recently_deregistered(&self, uri: &str) -> Option<(store::Binding, Option<ConnId>)> {
        let m = lock(&self.recent_dereg);
        m.get(&registrar::contact_key(uri))
            .filter(|(_, _, t)| *t > std::time::Instant::now())
            .map(|(b, c, _)| (b.clone(), *c))
    }

    fn pop_own_routes(&self, msg: &mut Message) {
        while let Some(first) = msg.list("route").first() {
            match NameAddr::parse(first) {
                Some(na) if self.is_me(&Uri::parse(&na.uri)) => {
                    msg.pop_first("route");
                }
                _ => break,
            }
        }
    }

    fn record_route(&self, msg: &mut Message) {
        if matches!(
            msg.method(),
            Some("INVITE") | Some("SUBSCRIBE") | Some("REFER") | Some("NOTIFY")
        ) {
            msg.push_front(
                "Record-Route",
                format!("<sip:{}:{};lr>", self.host(), self.port()),
            );
        }
    }

    // === forwarding and responses ===

    /// Forwards a request (RFC 3261 §16.6): Max-Forwards, received/rport, our Via; to
    /// `dest` or the top Route / Request-URI. Returns our branch.
    async fn forward(&self, inb: &Inbound, mut msg: Message, dest: Option<Dest>) -> Option<String> {
        let dest = match dest {
            Some(d) => d,
            None => {
                let next = msg
                    .list("route")
                    .first()
                    .and_then(|r| NameAddr::parse(r))
                    .map(|na| Uri::parse(&na.uri))
                    .unwrap_or_else(|| Uri::parse(msg.uri().unwrap_or("")));
                match route::resolve(&next).await {
                    Some((transport, addr)) => Dest {
                        transport,
                        addr,
                        conn: None,
                        from: None,
                    },
                    None => {
                        self.reply(inb, &msg, 404, "Not Found (next hop unresolvable)", &[])
                            .await;
                        return None;
                    }
                }
            }
        };
        let mf = msg
            .get("max-forwards")
            .and_then(|m| m.trim().parse::<u32>().ok())
            .unwrap_or(70);
        msg.set("Max-Forwards", mf.saturating_sub(1).to_string());
        route::stamp_received(&mut msg, inb.peer);
        let branch = route::branch("P", &msg);
        let local = dest.from.or_else(|| self.local_for(dest.transport))?;
        msg.push_front(
            "Via",
            format!(
                "SIP/2.0/{} {}:{};branch={branch}",
                dest.transport.via_token(),
                self.host(),
                local.port()
            ),
        );
        self.pending.insert(
            branch.clone(),
            Upstream {
                transport: inb.transport,
                peer: inb.peer,
                conn: inb.conn,
                local: inb.local,
            },
        );
        let from = if dest.from.is_some() {
            dest.from
        } else {
            (dest.transport == Transport::Udp).then_some(local)
        };
        if let Err(e) = self
            .net
            .send(dest.transport, dest.addr, dest.conn, from, msg.to_bytes())
            .await
        {
            tracing::warn!(dest = %dest.addr, error = %e, "forwarding failed");
            msg.pop_first("via");
            self.reply(inb, &msg, 503, "Service Unavailable", &[]).await;
            return None;
        }
        Some(branch)
    }

    async fn on_response(&self, mut msg: Message) {
        let Some(top) = msg.list("via").first().and_then(|v| Via::parse(v)) else {
            return;
        };
        let Some(branch) = top.param("branch").filter(|b| b.starts_with("z9hG4bKP")) else {
            tracing::debug!("response not for this node: dropped");
            return;
        };
        if branch.starts_with("z9hG4bKPs") {
            tracing::info!(code = ?msg.code(), "reg-event SUBSCRIBE answered");
            return;
        }
        msg.pop_first("via");
        let keys = strip_ck_ik(&mut msg);
        let is_register = msg
            .get("cseq")
            .is_some_and(|c| c.split_whitespace().nth(1) == Some("REGISTER"));
        let code = msg.code().unwrap_or(0);
        if is_register {
            let ctx = if code >= 200 {
                lock(&self.reg_ctx).remove(&branch)
            } else {
                lock(&self.reg_ctx).get(&branch).cloned()
            };
            if let Some(ctx) = ctx {
                let out = self.on_register_response(&ctx, &msg, keys).await;
                for (n, v) in out.add {
                    msg.push_back(&n, v);
                }
                if let Some((code, reason)) = out.replace {
                    msg.start = sip::StartLine::Response { code, reason };
                    msg.remove("www-authenticate");
                    msg.push_back("Retry-After", "30");
                }
            }
        }
        let Some(next) = msg.list("via").first().and_then(|v| Via::parse(v)) else {
            return;
        };
        let data = msg.to_bytes();
        let result = match self.pending.get(&branch) {
            Some(up) => {
                let from = (up.transport == Transport::Udp).then_some(up.local);
                self.net
                    .send(up.transport, up.peer, up.conn, from, data)
                    .await
            }
            None => match route::via_target(&next) {
                Some((t, addr)) => self.net.send(t, addr, None, None, data).await,
                None => return,
            },
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "could not relay response");
        }
    }

    async fn send_back(&self, inb: &Inbound, data: Bytes) {
        let from = (inb.transport == Transport::Udp).then_some(inb.local);
        if let Err(e) = self
            .net
            .send(inb.transport, inb.peer, inb.conn, from, data)
            .await
        {
            tracing::warn!(peer = %inb.peer, error = %e, "could not send response");
        }
    }

    async fn reply(
        &self,
        inb: &Inbound,
        req: &Message,
        code: u16,
        reason: &str,
        extra: &[(String, String)],
    ) {
        if req.method() == Some("ACK") {
            return;
        }
        let mut r = req.response(code, reason, &random_hex());
        for (n, v) in extra {
            r.push_back(n, v.clone());
        }
        self.send_back(inb, r.to_bytes()).await;
    }
}

/// Where a request goes.
#[derive(Debug, Clone, Copy)]
struct Dest {
    transport: Transport,
    addr: SocketAddr,
    conn: Option<ConnId>,
    /// Local address to send from (a protected client port).
    from: Option<SocketAddr>,
}

/// What the REGISTER response handling asks of the relayed response.
#[derive(Debug, Default)]
struct RegOutcome {
    /// Header fields to add.
    add: Vec<(String, String)>,
    /// Replace the response by this status.
    replace: Option<(u16, String)>,
}

fn has_to_tag(msg: &Message) -> bool {
    msg.get("to")
        .and_then(NameAddr::parse)
        .is_some_and(|na| na.param("tag").is_some_and(|t| !t.is_empty()))
}

fn route_value(uri: &str) -> String {
    if uri.contains(";lr") {
        format!("<{uri}>")
    } else {
        format!("<{uri};lr>")
    }
}

/// Removes `ck`/`ik` from every challenge of a response (TS 33.203 §7.1; the UE must not
/// see them) and returns them.
fn strip_ck_ik(msg: &mut Message) -> Option<AkaKeys> {
    let mut keys: Option<AkaKeys> = None;
    for idx in 0..msg.headers.len() {
        let key = msg.headers[idx].key.clone();
        if key != "www-authenticate" && key != "proxy-authenticate" {
            continue;
        }
        let (value, removed) = sip::strip_auth_params(&msg.headers[idx].value, &["ck", "ik"]);
        if removed.is_empty() {
            continue;
        }
        let get = |n: &str| {
            removed
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| zeroize::Zeroizing::new(v.clone()))
        };
        if let (Some(ck), Some(ik)) = (get("ck"), get("ik")) {
            keys.get_or_insert(AkaKeys { ck, ik });
        }
        msg.edit(idx, value);
    }
    keys
}

fn strip_option_tag(msg: &mut Message, key: &str, tag: &str) {
    let values: Vec<String> = msg
        .list(key)
        .into_iter()
        .filter(|t| !t.eq_ignore_ascii_case(tag))
        .collect();
    if !msg.has(key) {
        return;
    }
    let name = msg
        .headers
        .iter()
        .find(|h| h.key == key)
        .map(|h| h.name.clone())
        .unwrap_or_default();
    if values.is_empty() {
        msg.remove(key);
    } else if values.len() != msg.list(key).len() {
        msg.set(&name, values.join(", "));
    }
}

fn add_option_tag(msg: &mut Message, name: &str, tag: &str) {
    let key = sip::canonical(name);
    let mut values = msg.list(&key);
    if values.iter().any(|t| t.eq_ignore_ascii_case(tag)) {
        return;
    }
    values.push(tag.to_string());
    msg.set(name, values.join(", "));
}

/// Sets `integrity-protected` in the Authorization header (TS 24.229 §5.2.2.1).
fn mark_integrity(msg: &mut Message, value: &str) {
    let Some(idx) = msg.headers.iter().position(|h| h.key == "authorization") else {
        return;
    };
    let (v, _) = sip::strip_auth_params(&msg.headers[idx].value, &["integrity-protected"]);
    let v = v.trim_end().to_string();
    let sep = if v.trim_end().ends_with("Digest") {
        " "
    } else {
        ", "
    };
    msg.edit(idx, format!("{v}{sep}integrity-protected=\"{value}\""));
}

/// Whether a REGISTER removes bindings: `Expires: 0`, or every Contact has `expires=0`
/// (RFC 3261 §10.2.2), or `Contact: *`.
pub fn is_deregistration(msg: &Message) -> bool {
    let contacts = msg.list("contact");
    if contacts.iter().any(|c| c.trim() == "*") {
        return true;
    }
    let header = msg
        .get("expires")
        .and_then(|e| e.trim().parse::<u64>().ok());
    if contacts.is_empty() {
        return header == Some(0);
    }
    contacts.iter().all(|c| {
        let own = NameAddr::parse(c).and_then(|na| na.param("expires"));
        match own.and_then(|e| e.parse::<u64>().ok()) {
            Some(e) => e == 0,
            None => header == Some(0),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ck_ik_leave_the_401() {
        let mut m = Message::parse(
            b"SIP/2.0 401 Unauthorized\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK1\r\nWWW-Authenticate: Digest realm=\"ims.test\", nonce=\"bm9uY2U=\", algorithm=AKAv1-MD5, ck=\"00112233445566778899aabbccddeeff\", ik=\"ffeeddccbbaa99887766554433221100\"\r\nl: 0\r\n\r\n",
            true,
        )
        .unwrap();
        let keys = strip_ck_ik(&mut m).unwrap();
        assert_eq!(keys.ck.as_str(), "00112233445566778899aabbccddeeff");
        let out = String::from_utf8(m.to_bytes().to_vec()).unwrap();
        assert!(!out.contains("ck="), "{out}");
        assert!(!out.contains("ik="), "{out}");
        assert!(out.contains("algorithm=AKAv1-MD5"));
        assert!(!format!("{keys:?}").contains("0011"));
    }

    #[test]
    fn option_tags_and_integrity() {
        let mut m = Message::parse(
            b"REGISTER sip:ims.test SIP/2.0\r\nRequire: sec-agree\r\nProxy-Require: sec-agree, foo\r\nSupported: path\r\nAuthorization: Digest username=\"u\", nonce=\"\", integrity-protected=\"yes\"\r\nl: 0\r\n\r\n",
            true,
        )
        .unwrap();
        strip_option_tag(&mut m, "require", "sec-agree");
        strip_option_tag(&mut m, "proxy-require", "sec-agree");
        add_option_tag(&mut m, "Require", "path");
        add_option_tag(&mut m, "Supported", "path");
        mark_integrity(&mut m, "no");
        assert_eq!(m.list("require"), vec!["path"]);
        assert_eq!(m.list("proxy-require"), vec!["foo"]);
        assert_eq!(m.list("supported"), vec!["path"]);
        let auth = m.get("authorization").unwrap();
        assert!(auth.ends_with("integrity-protected=\"no\""), "{auth}");
        assert_eq!(auth.matches("integrity-protected").count(), 1);
    }
}
