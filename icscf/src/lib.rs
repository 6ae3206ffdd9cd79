//! I-CSCF: the entry of the home network (TS 24.229 §5.3), a transaction-stateful
//! proxy (§5.3.1.1: "During the registration procedure the I-CSCF shall behave as a
//! stateful proxy"; RFC 3261 §16).
//!
//! - REGISTER: user registration status query (UAR, TS 29.228 §6.1.1) → S-CSCF from
//!   Server-Name, or chosen by Server-Capabilities from the configured list, or the
//!   configured fallback → forwarded with a `Route` to that S-CSCF (TS 24.229
//!   §5.3.1.2). When the S-CSCF does not answer, is unreachable or answers 503, 3xx
//!   or 480, a REGISTER whose S-CSCF the I-CSCF chose itself goes to the next
//!   candidate (§5.3.1.3); one the HSS assigned is replaced only after a UAR with
//!   REGISTRATION_AND_CAPABILITIES (TS 29.229 §6.3.24) gives capabilities; with no
//!   S-CSCF left, 504 Server Time-out (RFC 3261 §16.7 step 6).
//! - Other initial requests (terminating): location query (LIR, TS 29.228 §6.1.4) →
//!   forwarded to the serving S-CSCF (§5.3.2.1).
//! - Cx failures become the SIP answers listed in [`cx`]; the HSS being slow or gone
//!   gets a 5xx with `Retry-After` within the request timeout, never a hang.
//! - Overload control (RFC 3261 §21.5.4, §20.33): past `[sip] max_pending_requests`
//!   new requests in progress, further new out-of-dialog requests are answered 503
//!   with `Retry-After: [sip] overload_retry_after_s`; responses, ACK, CANCEL and
//!   in-dialog requests always pass (`ims_sip_transport::overload`,
//!   `docs/overload.md`).
//!
//! SIP comes from `ims_sip_core` (parse, edit, build, proxy checks) and
//! `ims_sip_transport` (UDP/TCP, `received`/`rport`, and the RFC 3261 §17
//! transaction layer: one server transaction per request from the P-CSCF, whose
//! retransmissions it absorbs, and one client transaction per forwarding attempt).
//!
//! # Layout
//! - [`cx`]: Cx queries as the I-CSCF needs them and their SIP mapping.
//! - [`hss`]: [`cx::Cx`] over `ims_hss_client::HssClient`.
//! - [`identity`]: UAR/LIR identities from the SIP request.
//! - [`select`]: S-CSCF selection and the failover order.
//! - `proxy`: request handling (checks, Route, Cx, CANCEL/ACK).
//! - `forward`: the stateful forwarding attempts and failover.

pub mod cx;
mod forward;
pub mod hss;
pub mod identity;
mod proxy;
pub mod select;

#[cfg(test)]
mod overload_tests;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ims_config::{IcscfConfig, Listen};
use ims_sip_transport::overload::{Admission, REPORT_INTERVAL};
use ims_sip_transport::transaction::{
    timer_config, ResponseRouting, TransactionLayer, TransactionOptions,
};
use ims_sip_transport::{channel, TransportLayer, TransportOptions};
use tokio::net::{TcpListener, UdpSocket};

pub use identity::is_deregistration;

use crate::cx::Cx;
use crate::select::ScscfEntry;

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
    /// A bound socket could not be handed to the SIP transport.
    #[error("I-CSCF transport: {0}")]
    Transport(#[from] ims_sip_transport::TransportError),
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
pub(crate) struct Settings {
    pub(crate) domain: String,
    pub(crate) advertised_host: String,
    pub(crate) scscf: Vec<ScscfEntry>,
    pub(crate) fallback: Vec<String>,
    pub(crate) cx_timeout: Duration,
    pub(crate) transport: TransportOptions,
    pub(crate) timers: ims_config::TimersConfig,
    /// `[sip] max_pending_requests` (0: no limit).
    pub(crate) max_pending_requests: usize,
    /// `[sip] overload_retry_after_s`.
    pub(crate) overload_retry_after_s: u32,
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
            transport: TransportOptions::from_config(&cfg.sip),
            timers: cfg.timers,
            max_pending_requests: cfg.sip.max_pending_requests,
            overload_retry_after_s: cfg.sip.overload_retry_after_s,
        };
        Icscf { settings, cx }
    }

    /// Serves SIP on `sockets` until `shutdown` completes; every socket is released
    /// when this returns.
    pub async fn run(
        self,
        sockets: SipSockets,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), IcscfError> {
        if sockets.udp.is_empty() && sockets.tcp.is_empty() {
            return Err(IcscfError::NoSockets);
        }
        let transport = TransportLayer::without_handler(self.settings.transport.clone());
        for u in sockets.udp {
            transport.add_udp_socket(u)?;
        }
        for t in sockets.tcp {
            transport.add_tcp_listener(t)?;
        }
        let (upper, mut rx) = channel(8192);
        let options = TransactionOptions {
            // RFC 3261 §16.2: a stateful proxy sends 100 Trying for INVITE at once.
            auto_trying: true,
            // §16.11: responses matching no client transaction (2xx retransmissions
            // after it ended) go on statelessly by Via.
            forward_stray_responses: true,
            response_routing: ResponseRouting::Via,
        };
        let layer = TransactionLayer::new(
            transport,
            timer_config(&self.settings.timers),
            options,
            Arc::new(upper),
        );
        let locals = layer.transport().local_addrs();
        tracing::info!(?locals, domain = %self.settings.domain, "I-CSCF serving");
        let admission = Admission::new(
            self.settings.max_pending_requests,
            self.settings.overload_retry_after_s,
        );
        let node = Arc::new(proxy::Proxy::new(
            self.settings,
            self.cx,
            layer.clone(),
            admission.clone(),
        ));
        // Refusals of the overload control, reported once per interval.
        let mut report = tokio::time::interval_at(
            tokio::time::Instant::now() + REPORT_INTERVAL,
            REPORT_INTERVAL,
        );
        // The dispatch loop runs as a task on the runtime's workers, not in this future:
        // `#[tokio::main]` polls `run` on the main thread, and every request handed from
        // a worker to the main thread and spawned back cost two cross-thread wake-ups.
        let mut dispatch = tokio::spawn(async move {
            loop {
                tokio::select! {
                    inc = rx.recv() => {
                        let Some(inc) = inc else { break };
                        node.admit_and_spawn(inc);
                    }
                    _ = report.tick() => {
                        node.admission.log_refusals("I-CSCF");
                    }
                }
            }
        });
        tokio::select! {
            _ = shutdown => dispatch.abort(),
            _ = &mut dispatch => {}
        }
        layer.close().await;
        admission.log_refusals("I-CSCF");
        tracing::info!(
            refused_overloaded = admission.refused_total(),
            "I-CSCF stopped"
        );
        Ok(())
    }
}
