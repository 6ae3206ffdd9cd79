//! RFC 3261 §17 transactions as sans-I/O state machines (with the RFC 6026 `Accepted`
//! state for INVITE 2xx), in the `handle_* / poll_*` shape:
//!
//! - feed input with `handle_response` / `handle_request` / `send_response` /
//!   `handle_timeout(now)` / `handle_transport_error(now)`;
//! - drain [`Action`]s with `poll_action()` (`Transmit`, `Deliver`, `Timeout`,
//!   `TransportError`, `Terminated`);
//! - sleep until `poll_timeout()`.
//!
//! Time is only ever given as `now: Instant`. With `reliable = true` (TCP/TLS/SCTP) no
//! retransmissions are scheduled and Timers K, J, I (and D) are zero (§17.1.1.2, §17.1.2.2,
//! §17.2.1, §17.2.2).
//!
//! Matching (§17.1.3, §17.2.3) is by [`TransactionKey`]: a driver keeps a map from key to
//! machine; [`TransactionKey::server`] maps ACK onto its INVITE, and
//! [`TransactionKey::cancel_target`] finds the INVITE a CANCEL refers to.
//!
//! # Layout
//! - [`key`]: transaction keys (RFC 3261 branch, RFC 2543 fallback).
//! - [`timers`]: [`TimerConfig`] (T1, T2, T4).
//! - [`client`]: non-INVITE client (Timers E, F, K).
//! - [`client_invite`]: INVITE client (Timers A, B, D, M; ACK for non-2xx).
//! - [`server`]: non-INVITE server (Timer J).
//! - [`server_invite`]: INVITE server (Timers G, H, I, L; 100 Trying; ACK absorption).
//! - [`requests`]: ACK (§17.1.1.3) and CANCEL (§9.1) construction.

pub mod client;
pub mod client_invite;
pub mod key;
pub mod requests;
pub mod server;
pub mod server_invite;
pub mod timers;

use std::collections::VecDeque;
use std::time::Instant;

use bytes::Bytes;

use crate::message::Message;

pub use client::ClientNonInvite;
pub use client_invite::ClientInvite;
pub use key::TransactionKey;
pub use server::ServerNonInvite;
pub use server_invite::ServerInvite;
pub use timers::TimerConfig;

/// What the driver must do. (`Debug` prints sizes, not octets: a 401 may carry `ck`/`ik`.)
#[derive(Clone)]
pub enum Action {
    /// Send these octets to the transaction's peer (the request's destination for
    /// client transactions; the response address of the request for server ones).
    Transmit(Bytes),
    /// Hand this message to the TU: a response (client) — server transactions do not
    /// deliver the initial request, the driver does that when it creates them.
    Deliver(Message),
    /// Timer B/F (client, no final response) or H (server, no ACK) fired.
    Timeout,
    /// The transport reported a failure (§17.1.4 / §17.2.4).
    TransportError,
    /// The transaction is over; drop it.
    Terminated,
}

impl std::fmt::Debug for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::Transmit(b) => write!(f, "Transmit({} octets)", b.len()),
            Action::Deliver(m) => f.debug_tuple("Deliver").field(m).finish(),
            Action::Timeout => f.write_str("Timeout"),
            Action::TransportError => f.write_str("TransportError"),
            Action::Terminated => f.write_str("Terminated"),
        }
    }
}

/// Common interface of the four machines (for drivers that keep them in one map).
pub trait Transaction {
    /// The key this transaction is found under.
    fn key(&self) -> &TransactionKey;
    /// Processes every timer that expired at `now`.
    fn handle_timeout(&mut self, now: Instant);
    /// The earliest instant `handle_timeout` must be called (None: no timer running).
    fn poll_timeout(&self) -> Option<Instant>;
    /// The next action, if any.
    fn poll_action(&mut self) -> Option<Action>;
    /// The transport failed to send (§17.1.4): the transaction terminates.
    fn handle_transport_error(&mut self, now: Instant);
    /// True once terminated.
    fn is_terminated(&self) -> bool;
}

/// A deadline slot.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Timer(Option<Instant>);

impl Timer {
    pub(crate) fn set(&mut self, at: Instant) {
        self.0 = Some(at);
    }
    pub(crate) fn clear(&mut self) {
        self.0 = None;
    }
    /// True (and cleared) when expired at `now`.
    pub(crate) fn fired(&mut self, now: Instant) -> bool {
        match self.0 {
            Some(t) if t <= now => {
                self.0 = None;
                true
            }
            _ => false,
        }
    }
    pub(crate) fn get(&self) -> Option<Instant> {
        self.0
    }
}

pub(crate) fn earliest(timers: &[Timer]) -> Option<Instant> {
    timers.iter().filter_map(|t| t.get()).min()
}

/// Output queue shared by the machines.
#[derive(Clone, Debug, Default)]
pub(crate) struct Outbox(VecDeque<Action>);

impl Outbox {
    pub(crate) fn push(&mut self, a: Action) {
        self.0.push_back(a);
    }
    pub(crate) fn pop(&mut self) -> Option<Action> {
        self.0.pop_front()
    }
}
