//! I-CSCF: the entry of the home network (TS 24.229 §5.3).
//!
//! - REGISTER: user registration status query (UAR, TS 29.228 §6.1.1) → S-CSCF from
//!   Server-Name, or chosen by Server-Capabilities from the configured list, or the
//!   configured fallback → forwarded with a `Route` to that S-CSCF (§5.3.1.2).
//! - Other initial requests (terminating): location query (LIR, TS 29.228 §6.1.4) →
//!   forwarded to the serving S-CSCF (§5.3.2.1).
//! - Cx failures become the SIP answers listed in [`cx`]; the HSS being slow or gone
//!   gets a 5xx with `Retry-After` within the request timeout, never a hang.
//!
//! Forwarding is stateless (RFC 3261 §16.11): the Via branch is derived from the
//! incoming one and responses return by Via, on the connection their request came on.
//!
//! # Layout
//! - [`cx`]: Cx queries as the I-CSCF needs them and their SIP mapping.
//! - [`hss`]: [`cx::Cx`] over `ims_hss_client::HssClient`.
//! - [`select`]: S-CSCF selection.
//! - [`checks`]: RFC 3261 §16.3 proxy checks.
//! - [`route`], [`net`], [`sip`]: routing helpers, UDP/TCP, the message view.

pub mod checks;
pub mod cx;
pub mod hss;
pub mod net;
pub mod route;
pub mod select;
pub mod sip;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ims_config::{IcscfConfig, Listen};
use tokio::net::{TcpListener, UdpSocket};

use crate::cx::{Assignment, Cx, CxFailure, Procedure, Uar, UserAuthorizationType};
use crate::net::{Inbound, Net, Transport};
use crate::route::{PendingTable, Upstream};
use crate::select::{ScscfEntry, Selected};
use crate::sip::{Message, NameAddr, Uri, Via};

/// Errors of the I-CSCF node.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IcscfError {
    /// A listener could not be bound or used.
    #[error("I-CSCF socket {addr}: {source}")]
    Socket {
        /// The address.
        addr: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// No socket was given to `run`.
    #[error("I-CSCF: no SIP socket to serve")]
    NoSockets,
}

/// Bound SIP sockets handed to [`Icscf::run`] (STYLE item 10: tests bind port 0).
#[derive(Debug, Default)]
pub struct SipSockets {
    /// UDP sockets; the first is the default sender.
    pub udp: Vec<UdpSocket>,
    /// TCP listeners.
    pub tcp: Vec<TcpListener>,
}

impl SipSockets {
    /// Binds every configured listener.
    pub async fn bind(listen: &[Listen]) -> Result<Self, IcscfError> {
        let mut s = SipSockets::default();
        for l in listen {
            let err = |source| IcscfError::Socket {
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

/// Settings the I-CSCF acts on, taken from [`IcscfConfig`].
#[derive(Debug, Clone)]
struct Settings {
    domain: String,
    advertised_host: String,
    scscf: Vec<ScscfEntry>,
    fallback: Vec<String>,
    cx_timeout: Duration,
}

/// The I-CSCF node.
pub struct Icscf {
    settings: Settings,
    cx: Arc<dyn Cx>,
}

impl std::fmt::Debug for Icscf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Icscf")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

struct Node {
    settings: Settings,
    cx: Arc<dyn Cx>,
    net: Arc<Net>,
    pending: PendingTable,
    /// (transport, address) of every local socket, for Via and "is this Route me".
    locals: Vec<(Transport, SocketAddr)>,
}

impl Icscf {
    /// An I-CSCF asking `hss` (any `ims_hss_client::HssClient`, e.g. `CxClient`).
    pub fn new(cfg: &IcscfConfig, hss: Arc<dyn ims_hss_client::HssClient>) -> Self {
        Self::with_cx(cfg, Arc::new(hss::HssCx::new(hss)))
    }

    /// An I-CSCF over any [`Cx`] implementation (tests inject fakes here).
    pub fn with_cx(cfg: &IcscfConfig, cx: Arc<dyn Cx>) -> Self {
        let settings = Settings {
            domain: cfg.domain.clone(),
            advertised_host: cfg.sip.advertised_host.clone(),
            scscf: cfg
                .scscf
                .iter()
                .map(|s| ScscfEntry {
                    uri: s.uri.as_str().to_string(),
                    capabilities: s.capabilities.clone(),
                })
                .collect(),
            fallback: cfg
                .scscf_fallback
                .iter()
                .map(|u| u.as_str().to_string())
                .collect(),
            cx_timeout: Duration::from_millis(cfg.diameter.request_timeout_ms.max(1)),
        };
        Icscf { settings, cx }
    }

    /// Serves SIP on `sockets` until `shutdown` completes.
    pub async fn run(
        self,
        sockets: SipSockets,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), IcscfError> {
        if sockets.udp.is_empty() && sockets.tcp.is_empty() {
            return Err(IcscfError::NoSockets);
        }
        let (net, mut rx) = Net::new();
        let mut locals = Vec::new();
        let sock_err = |source| IcscfError::Socket {
            addr: "bound socket".into(),
            source,
        };
        for u in sockets.udp {
            locals.push((Transport::Udp, net.add_udp(u).map_err(sock_err)?));
        }
        for t in sockets.tcp {
            locals.push((Transport::Tcp, net.add_tcp(t).map_err(sock_err)?));
        }
        tracing::info!(?locals, domain = %self.settings.domain, "I-CSCF serving");
        let node = Arc::new(Node {
            settings: self.settings,
            cx: self.cx,
            net,
            pending: PendingTable::default(),
            locals,
        });
        let mut sweep = tokio::time::interval(Duration::from_secs(10));
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                _ = sweep.tick() => node.pending.sweep(),
                msg = rx.recv() => {
                    let Some(msg) = msg else { break };
                    let node = node.clone();
                    tokio::spawn(async move { node.handle(msg).await });
                }
            }
        }
        node.net.shutdown();
        tracing::info!("I-CSCF stopped");
        Ok(())
    }
}

fn random_tag() -> String {
    format!("{:016x}", rand::random::<u64>())
}

impl Node {
    fn host(&self) -> String {
        if !self.settings.advertised_host.is_empty() {
            return self.settings.advertised_host.clone();
        }
        let ip = self.locals.first().map(|l| l.1.ip());
        match ip {
            Some(std::net::IpAddr::V6(v6)) => format!("[{v6}]"),
            Some(ip) => ip.to_string(),
            None => "127.0.0.1".into(),
        }
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

    async fn handle(self: Arc<Self>, inb: Inbound) {
        let msg = match Message::parse(&inb.data, inb.transport == Transport::Udp) {
            Ok(m) => m,
            Err(e) => {
                if !e.is_response {
                    tracing::info!(peer = %inb.peer, reason = %e.reason, "unparsable request");
                    if let Some(r) = sip::fallback_response(&inb.data, e.status, &e.reason) {
                        self.send_back(&inb, r).await;
                    }
                }
                return;
            }
        };
        let call_id = msg.get("call-id").unwrap_or("").to_string();
        let span = tracing::info_span!("sip", call_id = %call_id);
        let _g = span.enter();
        if msg.code().is_some() {
            drop(_g);
            self.relay_response(msg).await;
            return;
        }
        if let Err(e) = msg.check_request() {
            tracing::info!(reason = %e.reason, "malformed request");
            self.reply(&inb, &msg, e.status, &e.reason, &[]).await;
            return;
        }
        drop(_g);
        self.handle_request(inb, msg).await;
    }

    async fn send_back(&self, inb: &Inbound, data: Bytes) {
        if let Err(e) = self
            .net
            .send(inb.transport, inb.peer, inb.conn, Some(inb.local), data)
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
        let mut r = req.response(code, reason, &random_tag());
        for (n, v) in extra {
            r.push_back(n, v.clone());
        }
        self.send_back(inb, r.to_bytes()).await;
    }

    async fn handle_request(&self, inb: Inbound, mut msg: Message) {
        if let Err(r) = checks::proxy_checks(&msg, &["path", "sec-agree"]) {
            self.reply(&inb, &msg, r.code, &r.reason, &r.headers).await;
            return;
        }
        // Pop Route entries naming this node (RFC 3261 §16.4).
        while let Some(first) = msg.list("route").first() {
            match NameAddr::parse(first) {
                Some(na) if self.is_me(&Uri::parse(&na.uri)) => {
                    msg.pop_first("route");
                }
                _ => break,
            }
        }
        let method = msg.method().unwrap_or("").to_string();
        let mut target: Option<String> = None;
        if msg.list("route").is_empty() {
            let procedure = if method == "REGISTER" {
                Procedure::Registration
            } else {
                Procedure::Terminating
            };
            let result = match procedure {
                Procedure::Registration => self.uar_for(&msg).await,
                Procedure::Terminating => {
                    let impu = Uri::parse(msg.uri().unwrap_or("")).aor();
                    self.with_timeout(self.cx.lir(impu)).await
                }
            };
            match result {
                Ok(assignment) => {
                    match select::select(&assignment, &self.settings.scscf, &self.settings.fallback)
                    {
                        Some((uri, how)) => {
                            tracing::info!(scscf = %uri, how = ?how, method = %method, "S-CSCF selected");
                            let _ = Selected::Fallback;
                            target = Some(uri);
                        }
                        None => {
                            tracing::warn!("no S-CSCF configured and the HSS named none");
                            self.reply(
                                &inb,
                                &msg,
                                500,
                                "Server Internal Error (no S-CSCF)",
                                &[("Retry-After".into(), "30".into())],
                            )
                            .await;
                            return;
                        }
                    }
                }
                Err(f) => {
                    let a = f.to_sip(procedure);
                    tracing::info!(failure = %f, code = a.code, "Cx query failed");
                    let extra: Vec<(String, String)> = a
                        .retry_after
                        .map(|s| vec![("Retry-After".to_string(), s.to_string())])
                        .unwrap_or_default();
                    self.reply(&inb, &msg, a.code, a.reason, &extra).await;
                    return;
                }
            }
        }
        if let Some(scscf) = &target {
            let lr = if scscf.contains(";lr") {
                String::new()
            } else {
                ";lr".into()
            };
            msg.insert_before("route", "Route", format!("<{scscf}{lr}>"));
        }
        self.forward(inb, msg).await;
    }

    async fn with_timeout(&self, f: cx::CxFuture<'_, Assignment>) -> Result<Assignment, CxFailure> {
        match tokio::time::timeout(self.settings.cx_timeout, f).await {
            Ok(r) => r,
            Err(_) => Err(CxFailure::Timeout),
        }
    }

    async fn uar_for(&self, msg: &Message) -> Result<Assignment, CxFailure> {
        let to = msg.get("to").and_then(NameAddr::parse);
        let impu_uri = to
            .map(|t| Uri::parse(&t.uri))
            .unwrap_or_else(|| Uri::parse(""));
        let public_identity = impu_uri.aor();
        let user_name = msg
            .get("authorization")
            .and_then(|a| sip::auth_param(a, "username"))
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| {
                // TS 24.229 §5.3.1.2: derive the IMPI from the To IMPU without scheme,
                // port and parameters.
                if impu_uri.user.is_empty() {
                    impu_uri.host.clone()
                } else {
                    format!("{}@{}", impu_uri.user, impu_uri.host)
                }
            });
        let visited_network = msg
            .get("p-visited-network-id")
            .map(|v| v.trim().trim_matches('"').to_string())
            .unwrap_or_else(|| self.settings.domain.clone());
        let authorization_type = if is_deregistration(msg) {
            UserAuthorizationType::DeRegistration
        } else {
            UserAuthorizationType::Registration
        };
        self.with_timeout(self.cx.uar(Uar {
            user_name,
            public_identity,
            visited_network,
            authorization_type,
        }))
        .await
    }

    async fn forward(&self, inb: Inbound, mut msg: Message) {
        // Next hop: the top Route, else the Request-URI.
        let next = msg
            .list("route")
            .first()
            .and_then(|r| NameAddr::parse(r))
            .map(|na| Uri::parse(&na.uri))
            .unwrap_or_else(|| Uri::parse(msg.uri().unwrap_or("")));
        let Some((transport, dest)) = route::resolve(&next).await else {
            self.reply(&inb, &msg, 404, "Not Found (next hop unresolvable)", &[])
                .await;
            return;
        };
        let mf = msg
            .get("max-forwards")
            .and_then(|m| m.trim().parse::<u32>().ok())
            .unwrap_or(70);
        msg.set("Max-Forwards", mf.saturating_sub(1).to_string());
        route::stamp_received(&mut msg, inb.peer);
        let branch = route::branch("I", &msg);
        let Some(local) = self.local_for(transport) else {
            return;
        };
        let host = self.host();
        msg.push_front(
            "Via",
            format!(
                "SIP/2.0/{} {host}:{};branch={branch}",
                transport.via_token(),
                local.port()
            ),
        );
        self.pending.insert(
            branch,
            Upstream {
                transport: inb.transport,
                peer: inb.peer,
                conn: inb.conn,
                local: inb.local,
            },
        );
        if let Err(e) = self
            .net
            .send(transport, dest, None, None, msg.to_bytes())
            .await
        {
            tracing::warn!(%dest, error = %e, "forwarding failed");
            self.reply(
                &inb,
                &msg_without_top_via(msg),
                503,
                "Service Unavailable",
                &[],
            )
            .await;
        }
    }

    async fn relay_response(&self, mut msg: Message) {
        let Some(top) = msg.list("via").first().and_then(|v| Via::parse(v)) else {
            return;
        };
        let Some(branch) = top.param("branch").filter(|b| b.starts_with("z9hG4bKI")) else {
            tracing::debug!("response not for this node: dropped");
            return;
        };
        msg.pop_first("via");
        let Some(next) = msg.list("via").first().and_then(|v| Via::parse(v)) else {
            return;
        };
        let data = msg.to_bytes();
        let result = match self.pending.get(&branch) {
            Some(up) => {
                self.net
                    .send(up.transport, up.peer, up.conn, Some(up.local), data)
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
}

fn msg_without_top_via(mut m: Message) -> Message {
    m.pop_first("via");
    m
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
