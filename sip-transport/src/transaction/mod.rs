//! The transaction layer driver (RFC 3261 §17): runs `ims_sip_core::transaction`'s
//! sans-I/O machines on tokio timers over a [`TransportLayer`].
//!
//! - Client transactions ([`TransactionLayer::send_request`]): one task each; sends
//!   and retransmits over UDP (Timers A/E), ends with the final response or with
//!   [`TransportError::Timeout`] (Timers B/F) or the transport's error. Retransmissions
//!   keep to the local socket / connection of the first copy.
//! - Server transactions: created for each new request (non-INVITE, and INVITE with an
//!   automatic 100 Trying if [`TransactionOptions::auto_trying`]); retransmitted
//!   requests are absorbed and answered with the last response; the upper layer
//!   answers with [`TransactionLayer::respond`]. Timer tasks only exist once a timer
//!   runs (after the final response).
//! - Responses matching no client transaction go to the upper layer, or are forwarded
//!   statelessly (RFC 3261 §16.11 / §18.2.2) with
//!   [`TransactionOptions::forward_stray_responses`].
//! - ACKs matching no INVITE server transaction (ACK for 2xx) and requests that
//!   cannot key a transaction go to the upper layer as they are.

mod client;
mod mailbox;
mod server;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ims_sip_core::transaction::TransactionKey;
use ims_sip_core::{Message, Method};
use tracing::{debug, warn};

pub use client::ClientTransaction;
pub use ims_sip_core::transaction::{TimerConfig, TransactionKey as Key};

use crate::error::{Result, TransportError};
use crate::flow::{Flow, Incoming, Target, Transport};
use crate::handler::IncomingHandler;
use crate::layer::TransportLayer;
use crate::lock;
use crate::via::{response_destination, DEFAULT_PORT};

/// Where responses of server transactions go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ResponseRouting {
    /// RFC 3261 §18.2.2 / RFC 3581: the top Via's `received`/`rport` (or sent-by) for
    /// UDP; the request's connection for TCP.
    #[default]
    Via,
    /// Always back to the request's source address and port from the socket it came
    /// to (what IPsec on Gm needs: from port-s to the UE's port-c, TS 33.203 §7.1).
    Source,
}

/// Behaviour switches of a [`TransactionLayer`].
#[derive(Clone, Copy, Debug)]
pub struct TransactionOptions {
    /// Send `100 Trying` as soon as an INVITE server transaction starts (proxies,
    /// RFC 3261 §16.2).
    pub auto_trying: bool,
    /// Forward responses that match no client transaction to the next Via (a
    /// proxy's stateless forwarding, §16.11). Off: hand them to the upper layer.
    pub forward_stray_responses: bool,
    /// Where server transactions send responses.
    pub response_routing: ResponseRouting,
}

impl Default for TransactionOptions {
    fn default() -> Self {
        TransactionOptions {
            auto_trying: true,
            forward_stray_responses: false,
            response_routing: ResponseRouting::Via,
        }
    }
}

/// T1/T2/T4 from the `[timers]` section.
pub fn timer_config(t: &ims_config::TimersConfig) -> TimerConfig {
    TimerConfig {
        t1: Duration::from_millis(t.t1_ms),
        t2: Duration::from_millis(t.t2_ms),
        t4: Duration::from_millis(t.t4_ms),
    }
}

pub(crate) struct TsxInner {
    pub(crate) transport: TransportLayer,
    pub(crate) timers: TimerConfig,
    pub(crate) options: TransactionOptions,
    upper: Arc<dyn IncomingHandler>,
    pub(crate) clients: Mutex<HashMap<TransactionKey, mailbox::Sender<Message>>>,
    pub(crate) servers: Mutex<HashMap<TransactionKey, server::Shared>>,
    pub(crate) timer_j: server::TimerJQueue,
}

/// The transaction layer of one node. Cheap to clone.
#[derive(Clone)]
pub struct TransactionLayer {
    pub(crate) inner: Arc<TsxInner>,
}

impl std::fmt::Debug for TransactionLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransactionLayer")
            .field("clients", &self.client_count())
            .field("servers", &self.server_count())
            .finish()
    }
}

/// The transport's handler: routes each message to its transaction.
struct Dispatch(std::sync::Weak<TsxInner>);

impl IncomingHandler for Dispatch {
    fn handle(&self, incoming: Incoming) {
        if let Some(inner) = self.0.upgrade() {
            TransactionLayer { inner }.dispatch(incoming);
        }
    }

    fn connection_closed(&self, flow: Flow) {
        if let Some(inner) = self.0.upgrade() {
            inner.upper.connection_closed(flow);
        }
    }
}

impl TransactionLayer {
    /// Puts a transaction layer on `transport` (it becomes the transport's handler;
    /// the transport must have been created with
    /// [`TransportLayer::without_handler`]). New requests and unmatched messages go
    /// to `upper`.
    pub fn new(
        transport: TransportLayer,
        timers: TimerConfig,
        options: TransactionOptions,
        upper: Arc<dyn IncomingHandler>,
    ) -> TransactionLayer {
        let inner = Arc::new(TsxInner {
            transport,
            timers,
            options,
            upper,
            clients: Mutex::new(HashMap::new()),
            servers: Mutex::new(HashMap::new()),
            timer_j: server::TimerJQueue::default(),
        });
        if !inner
            .transport
            .set_handler(Arc::new(Dispatch(Arc::downgrade(&inner))))
        {
            warn!("transport already had a handler: the transaction layer will not see incoming messages");
        }
        TransactionLayer { inner }
    }

    /// Builds a node's SIP stack from its configuration: a transport with the
    /// `[sip]` limits, every `[sip] listen` socket bound, the `[timers]` values, and
    /// this transaction layer on top delivering to `upper`.
    pub async fn bind(
        sip: &ims_config::SipConfig,
        timers: &ims_config::TimersConfig,
        options: TransactionOptions,
        upper: Arc<dyn IncomingHandler>,
    ) -> Result<TransactionLayer> {
        let transport =
            TransportLayer::without_handler(crate::options::TransportOptions::from_config(sip));
        transport.bind_all(&sip.listen).await?;
        Ok(TransactionLayer::new(
            transport,
            timer_config(timers),
            options,
            upper,
        ))
    }

    /// Closes the transport (every socket released when this returns). Client
    /// transactions still running end with transport errors.
    pub async fn close(&self) {
        self.inner.transport.close().await;
    }

    /// The transport underneath.
    pub fn transport(&self) -> &TransportLayer {
        &self.inner.transport
    }

    /// The timer values in use.
    pub fn timers(&self) -> TimerConfig {
        self.inner.timers
    }

    /// Open client transactions.
    pub fn client_count(&self) -> usize {
        lock(&self.inner.clients).len()
    }

    /// Open server transactions.
    pub fn server_count(&self) -> usize {
        lock(&self.inner.servers).len()
    }

    /// Starts a client transaction for `request` (INVITE or not) towards `target`.
    /// The request's top Via must carry an RFC 3261 branch that is unique.
    pub async fn send_request(
        &self,
        request: Message,
        target: Target,
    ) -> Result<ClientTransaction> {
        client::start(self.inner.clone(), request, target).await
    }

    /// [`Self::send_request`] and wait for the final response.
    pub async fn request(&self, request: Message, target: Target) -> Result<Message> {
        self.send_request(request, target)
            .await?
            .final_response()
            .await
    }

    /// Sends a response within the server transaction of `request` (retransmitted
    /// for INVITE over UDP, re-sent on request retransmissions). Without a matching
    /// transaction (already over, or an ACK) the response is sent statelessly along
    /// the request's flow.
    pub async fn respond(&self, request: &Incoming, response: &Message) -> Result<Flow> {
        server::respond(&self.inner, request, response).await
    }

    /// Forwards a response statelessly (RFC 3261 §16.7 steps 3, 9 / §16.11): removes
    /// the top Via (ours) and sends to the next one — UDP to its `received`/`rport`
    /// or sent-by, TCP reusing a connection to that address.
    pub async fn forward_response_stateless(&self, response: &Message) -> Result<Flow> {
        let call_id = response.call_id().unwrap_or("").to_owned();
        let mut e = response.edit();
        e.remove_top_via();
        let out = e
            .finish_message()
            .map_err(|_| TransportError::BadRequest("response does not re-parse"))?;
        let Some(Ok(via)) = out.top_via() else {
            debug!(call_id, "response has no Via left: dropped");
            return Err(TransportError::BadRequest("no Via left to forward to"));
        };
        let transport = if via.transport.eq_ignore_ascii_case("TCP") {
            Transport::Tcp
        } else {
            Transport::Udp
        };
        let fallback = std::net::SocketAddr::from(([0, 0, 0, 0], DEFAULT_PORT));
        let dest = response_destination(&out, fallback);
        if dest == fallback {
            return Err(TransportError::BadRequest("next Via names no address"));
        }
        debug!(call_id, %dest, "forwarding response statelessly");
        self.inner
            .transport
            .send(&Target::new(transport, dest), &out)
            .await
    }

    fn dispatch(&self, incoming: Incoming) {
        if incoming.message.is_response() {
            self.dispatch_response(incoming);
        } else {
            server::on_request(&self.inner, incoming);
        }
    }

    fn dispatch_response(&self, incoming: Incoming) {
        let m = &incoming.message;
        let tx = TransactionKey::from_response(m)
            .ok()
            .and_then(|k| lock(&self.inner.clients).get(&k).cloned());
        if let Some(tx) = tx {
            if let Err(e) = tx.send(incoming.message) {
                debug!(
                    call_id = e.call_id().unwrap_or(""),
                    "client transaction ended: response dropped"
                );
            }
            return;
        }
        debug!(
            call_id = m.call_id().unwrap_or(""),
            start = m.start_line(),
            "response matches no transaction"
        );
        if self.inner.options.forward_stray_responses {
            let this = self.clone();
            tokio::spawn(async move {
                let _ = this.forward_response_stateless(&incoming.message).await;
            });
        } else {
            self.inner.upper.handle(incoming);
        }
    }
}

impl TsxInner {
    pub(crate) fn deliver_up(&self, incoming: Incoming) {
        self.upper.handle(incoming);
    }
}

pub(crate) fn is_ack(m: &Message) -> bool {
    m.method() == Some(&Method::Ack)
}
