//! Cx client: typed UAR/MAR/SAR/LIR calls over one or more HSS peers with
//! failover, and delivery of HSS-initiated RTR/PPR (TS 29.228 §6.1–§6.5,
//! TS 29.229 §6.1; transport RFC 6733 with the RFC 3539 watchdog).
//!
//! Peer choice: peers are tried in configured order (or round robin), skipping
//! those that are not open; a request that fails on one peer (not connected,
//! connection lost, watchdog SUSPECT, timeout) is retransmitted to the next with
//! the same End-to-End identifier and the T bit set (RFC 6733 §5.5.4). An answer,
//! whatever its Result-Code, is returned as is: Cx errors are outcomes, not
//! transport failures.

mod events;

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ims_diameter::codec::{CommandFlags, Message};
use ims_diameter::peer::PeerTimers;
use ims_diameter::transport::{self, ClientConfig, LocalNode, PeerHandle, PeerStatus};
use tracing::{debug, warn};

pub use events::CxEventHandler;

use crate::messages::*;

/// Errors of a Cx call. A Cx answer with an error outcome is not an error here.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CxError {
    /// No HSS peer answered (all down, suspect, or timed out).
    #[error("no HSS answered after {attempts} attempt(s): {last}")]
    Unavailable {
        /// Peers tried.
        attempts: usize,
        /// The last peer's error.
        last: transport::Error,
    },
    /// The answer could not be decoded as the expected Cx answer.
    #[error("invalid answer from HSS: {0}")]
    InvalidAnswer(#[from] CxDecodeError),
    /// The client has no peers configured.
    #[error("no HSS peers configured")]
    NoPeers,
}

impl CxError {
    /// Whether the HSS could not be reached (CSCFs answer 5xx with Retry-After).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, CxError::Unavailable { .. } | CxError::NoPeers)
    }
}

/// The calls a CSCF makes to the HSS. Object-safe, so roles take
/// `Arc<dyn HssClient>` and tests inject an in-memory fake.
#[async_trait::async_trait]
pub trait HssClient: Send + Sync {
    /// UAR → UAA (I-CSCF, TS 29.228 §6.1.1).
    async fn uar(&self, req: UserAuthorizationRequest) -> Result<UserAuthorizationAnswer, CxError>;
    /// MAR → MAA (S-CSCF, TS 29.228 §6.3).
    async fn mar(&self, req: MultimediaAuthRequest) -> Result<MultimediaAuthAnswer, CxError>;
    /// SAR → SAA (S-CSCF, TS 29.228 §6.1.2).
    async fn sar(&self, req: ServerAssignmentRequest) -> Result<ServerAssignmentAnswer, CxError>;
    /// LIR → LIA (I-CSCF, TS 29.228 §6.2.1).
    async fn lir(&self, req: LocationInfoRequest) -> Result<LocationInfoAnswer, CxError>;
}

/// How requests are spread over the peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PeerSelection {
    /// First usable peer in configured order (primary/secondary).
    #[default]
    Failover,
    /// Rotate over usable peers.
    RoundRobin,
}

/// Cx client settings.
#[derive(Debug, Clone)]
pub struct CxClientConfig {
    /// HSS peers, `host:port`, in order of preference.
    pub peers: Vec<String>,
    /// Our Origin-Host (e.g. `scscf.ims.mnc001.mcc001.3gppnetwork.org`).
    pub origin_host: String,
    /// Our Origin-Realm.
    pub origin_realm: String,
    /// Host-IP-Address advertised in CER.
    pub host_ip_address: IpAddr,
    /// Destination-Realm of requests.
    pub destination_realm: String,
    /// Destination-Host of requests (optional).
    pub destination_host: Option<String>,
    /// Per-attempt request timeout.
    pub request_timeout: Duration,
    /// Watchdog Tw (RFC 3539, default 30 s).
    pub watchdog: Duration,
    /// Product-Name in CER.
    pub product_name: String,
    /// Peer choice.
    pub selection: PeerSelection,
    /// First reconnection delay (doubles up to 10 s).
    pub reconnect_min: Duration,
}

impl CxClientConfig {
    /// Settings with defaults: request timeout 2 s, Tw 30 s, failover order.
    pub fn new(
        peers: Vec<String>,
        origin_host: &str,
        origin_realm: &str,
        destination_realm: &str,
    ) -> Self {
        CxClientConfig {
            peers,
            origin_host: origin_host.to_owned(),
            origin_realm: origin_realm.to_owned(),
            host_ip_address: IpAddr::from([127, 0, 0, 1]),
            destination_realm: destination_realm.to_owned(),
            destination_host: None,
            request_timeout: Duration::from_secs(2),
            watchdog: Duration::from_secs(30),
            product_name: "ims-core".to_owned(),
            selection: PeerSelection::Failover,
            reconnect_min: Duration::from_millis(100),
        }
    }

    /// Settings from a role's `[diameter]` section (`ims_config::DiameterClientConfig`):
    /// peers, Origin-Host/Realm, Destination-Realm/Host, request timeout, Tw, reconnect delay.
    pub fn from_settings(d: &ims_config::DiameterClientConfig) -> Self {
        let mut c = CxClientConfig::new(
            d.peers.iter().map(|p| p.to_string()).collect(),
            &d.origin_host,
            &d.origin_realm,
            &d.destination_realm,
        );
        if !d.destination_host.is_empty() {
            c.destination_host = Some(d.destination_host.clone());
        }
        c.request_timeout = Duration::from_millis(d.request_timeout_ms);
        c.watchdog = Duration::from_secs(d.watchdog_s);
        c.reconnect_min = Duration::from_millis(d.reconnect_ms);
        c
    }

    fn local_node(&self) -> LocalNode {
        let mut n = LocalNode::cx(&self.origin_host, &self.origin_realm, self.host_ip_address);
        n.product_name = self.product_name.clone();
        n
    }
}

/// A Cx client over one or more HSS peers.
#[derive(Debug, Clone)]
pub struct CxClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: CxClientConfig,
    peers: Vec<PeerHandle>,
    session_high: u32,
    session_low: AtomicU64,
    next: AtomicUsize,
    end_to_end: std::sync::atomic::AtomicU32,
}

impl CxClient {
    /// Starts connections to every configured peer (in the background; see
    /// [`CxClient::wait_ready`]). RTR/PPR received from an HSS go to `events`;
    /// without a handler they are answered 3001. Must run inside tokio.
    pub fn start(config: CxClientConfig, events: Option<Arc<dyn CxEventHandler>>) -> CxClient {
        let local = config.local_node();
        let handler = events.map(|e| {
            Arc::new(events::EventAdapter::new(
                e,
                &config.origin_host,
                &config.origin_realm,
            )) as Arc<dyn transport::RequestHandler>
        });
        let peers = config
            .peers
            .iter()
            .map(|p| {
                let mut cc = ClientConfig::new(p.clone());
                cc.request_timeout = config.request_timeout;
                cc.timers = PeerTimers {
                    watchdog: config.watchdog,
                    ..PeerTimers::default()
                };
                cc.reconnect_min = config.reconnect_min;
                transport::connect(cc, local.clone(), handler.clone())
            })
            .collect();
        let session_high = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as u32)
            .unwrap_or(0);
        CxClient {
            inner: Arc::new(Inner {
                config,
                peers,
                session_high,
                session_low: AtomicU64::new(0),
                next: AtomicUsize::new(0),
                // RFC 6733 §3: high 12 bits from the clock, low 20 bits random.
                end_to_end: std::sync::atomic::AtomicU32::new(
                    ((session_high & 0xfff) << 20) | (rand::random::<u32>() & 0x000f_ffff),
                ),
            }),
        }
    }

    /// Waits until at least one peer is open.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<(), CxError> {
        if self.inner.peers.is_empty() {
            return Err(CxError::NoPeers);
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.inner.peers.iter().any(PeerHandle::is_usable) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(CxError::Unavailable {
                    attempts: 0,
                    last: transport::Error::Timeout(timeout),
                });
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The peer handles, in configured order.
    pub fn peers(&self) -> &[PeerHandle] {
        &self.inner.peers
    }

    /// Sends DPR to every peer and stops reconnecting.
    pub async fn close(&self) {
        for p in &self.inner.peers {
            p.close().await;
        }
    }

    /// A new Session-Id `<Origin-Host>;<high 32>;<low 32>` (RFC 6733 §8.8).
    pub fn new_session_id(&self) -> String {
        let low = self.inner.session_low.fetch_add(1, Ordering::Relaxed);
        format!(
            "{};{};{}",
            self.inner.config.origin_host, self.inner.session_high, low
        )
    }

    fn fill(&self, r: &mut RequestRouting) {
        let c = &self.inner.config;
        if r.session_id.is_empty() {
            r.session_id = self.new_session_id();
        }
        if r.origin_host.is_empty() {
            r.origin_host = c.origin_host.clone();
        }
        if r.origin_realm.is_empty() {
            r.origin_realm = c.origin_realm.clone();
        }
        if r.destination_realm.is_empty() {
            r.destination_realm = c.destination_realm.clone();
        }
        if r.destination_host.is_none() {
            r.destination_host = c.destination_host.clone();
        }
    }

    /// Peers in the order to try: usable ones first (Open before Reopen), in
    /// configured or rotated order, then the rest (they fail fast).
    fn order(&self) -> Vec<&PeerHandle> {
        let n = self.inner.peers.len();
        let start = match self.inner.config.selection {
            PeerSelection::Failover => 0,
            PeerSelection::RoundRobin => self.inner.next.fetch_add(1, Ordering::Relaxed) % n.max(1),
        };
        let rotated = (0..n).map(|i| &self.inner.peers[(start + i) % n]);
        let mut v: Vec<&PeerHandle> = rotated.collect();
        v.sort_by_key(|p| match p.status() {
            PeerStatus::Open => 0,
            PeerStatus::Reopen => 1,
            _ => 2,
        });
        v
    }

    /// Sends `msg` with failover; returns the first answer.
    pub async fn send(&self, mut msg: Message) -> Result<Message, CxError> {
        let order = self.order();
        if order.is_empty() {
            return Err(CxError::NoPeers);
        }
        if msg.header.end_to_end == 0 {
            // One End-to-End id for every attempt, so a retransmission after
            // failover is recognisable as a duplicate (RFC 6733 §6.1.9).
            msg.header.end_to_end = self.inner.end_to_end.fetch_add(1, Ordering::Relaxed);
        }
        let mut last = transport::Error::NotConnected;
        let last_index = order.len() - 1;
        let mut sent = false;
        for (i, peer) in order.iter().enumerate() {
            if sent {
                // RFC 6733 §5.5.4: retransmission after failover carries T.
                msg.header.flags.set(CommandFlags::RETRANSMIT, true);
            }
            // Skip peers that cannot take the request without cloning it.
            if i < last_index && !peer.is_usable() {
                last = transport::Error::NotConnected;
                continue;
            }
            let attempt = if i == last_index {
                std::mem::replace(&mut msg, Message::request(0, 0))
            } else {
                msg.clone()
            };
            let sent_before = sent;
            sent = true;
            match peer.request(attempt).await {
                Ok(ans) => return Ok(ans),
                Err(e) => {
                    match e {
                        transport::Error::NotConnected => {
                            // Refused before anything went out.
                            sent = sent_before;
                            debug!(peer = peer.label(), "HSS peer not connected")
                        }
                        ref e => {
                            warn!(peer = peer.label(), error = %e, "HSS request failed, trying next peer")
                        }
                    }
                    last = e;
                }
            }
        }
        Err(CxError::Unavailable {
            attempts: order.len(),
            last,
        })
    }

    /// UAR → UAA.
    pub async fn uar(
        &self,
        mut req: UserAuthorizationRequest,
    ) -> Result<UserAuthorizationAnswer, CxError> {
        self.fill(&mut req.routing);
        let ans = self.send(req.to_message()).await?;
        Ok(UserAuthorizationAnswer::from_message(&ans)?)
    }

    /// MAR → MAA.
    pub async fn mar(
        &self,
        mut req: MultimediaAuthRequest,
    ) -> Result<MultimediaAuthAnswer, CxError> {
        self.fill(&mut req.routing);
        let ans = self.send(req.to_message()).await?;
        Ok(MultimediaAuthAnswer::from_message(&ans)?)
    }

    /// SAR → SAA.
    pub async fn sar(
        &self,
        mut req: ServerAssignmentRequest,
    ) -> Result<ServerAssignmentAnswer, CxError> {
        self.fill(&mut req.routing);
        let ans = self.send(req.to_message()).await?;
        Ok(ServerAssignmentAnswer::from_message(&ans)?)
    }

    /// LIR → LIA.
    pub async fn lir(&self, mut req: LocationInfoRequest) -> Result<LocationInfoAnswer, CxError> {
        self.fill(&mut req.routing);
        let ans = self.send(req.to_message()).await?;
        Ok(LocationInfoAnswer::from_message(&ans)?)
    }
}

#[async_trait::async_trait]
impl HssClient for CxClient {
    async fn uar(&self, req: UserAuthorizationRequest) -> Result<UserAuthorizationAnswer, CxError> {
        CxClient::uar(self, req).await
    }
    async fn mar(&self, req: MultimediaAuthRequest) -> Result<MultimediaAuthAnswer, CxError> {
        CxClient::mar(self, req).await
    }
    async fn sar(&self, req: ServerAssignmentRequest) -> Result<ServerAssignmentAnswer, CxError> {
        CxClient::sar(self, req).await
    }
    async fn lir(&self, req: LocationInfoRequest) -> Result<LocationInfoAnswer, CxError> {
        CxClient::lir(self, req).await
    }
}
