//! Non-INVITE server transaction (RFC 3261 §17.2.2, Figure 8): Timer J; request
//! retransmissions are absorbed and answered with the last response.

use std::time::Instant;

use bytes::Bytes;

use crate::error::HeaderError;
use crate::message::Message;
use crate::status::StatusCode;
use crate::transaction::{earliest, Action, Outbox, Timer, TimerConfig, Transaction, TransactionKey};

/// States of Figure 8.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Request received, no response yet.
    Trying,
    /// A provisional response was sent.
    Proceeding,
    /// A final response was sent; retransmissions of the request get it again.
    Completed,
    /// Over.
    Terminated,
}

/// A non-INVITE server transaction. The driver creates it for a new request (and hands
/// the request to the TU itself).
#[derive(Debug)]
pub struct ServerNonInvite {
    key: TransactionKey,
    state: State,
    reliable: bool,
    cfg: TimerConfig,
    last_response: Option<Bytes>,
    j: Timer,
    out: Outbox,
}

impl ServerNonInvite {
    /// A server transaction for `request`.
    pub fn new(
        request: &Message,
        reliable: bool,
        cfg: TimerConfig,
        _now: Instant,
    ) -> Result<Self, HeaderError> {
        Ok(ServerNonInvite {
            key: TransactionKey::server(request)?,
            state: State::Trying,
            reliable,
            cfg,
            last_response: None,
            j: Timer::default(),
            out: Outbox::default(),
        })
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// A retransmission of the request arrived: absorbed, the last response is re-sent.
    pub fn handle_request(&mut self, _now: Instant, _request: &Message) {
        if matches!(self.state, State::Proceeding | State::Completed) {
            if let Some(r) = &self.last_response {
                self.out.push(Action::Transmit(r.clone()));
            }
        }
    }

    /// The TU sends a response with this status (`response` is its octets). Ignored after
    /// the final response.
    pub fn send_response(&mut self, now: Instant, status: StatusCode, response: Bytes) {
        match self.state {
            State::Trying | State::Proceeding => {
                self.out.push(Action::Transmit(response.clone()));
                self.last_response = Some(response);
                if status.is_provisional() {
                    self.state = State::Proceeding;
                } else {
                    self.state = State::Completed;
                    if self.reliable {
                        self.terminate();
                    } else {
                        self.j.set(now + self.cfg.timer_j(false));
                    }
                }
            }
            State::Completed | State::Terminated => {}
        }
    }

    fn terminate(&mut self) {
        self.j.clear();
        self.state = State::Terminated;
        self.out.push(Action::Terminated);
    }
}

impl Transaction for ServerNonInvite {
    fn key(&self) -> &TransactionKey {
        &self.key
    }

    fn handle_timeout(&mut self, now: Instant) {
        if self.state != State::Terminated && self.j.fired(now) {
            self.terminate();
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        earliest(&[self.j])
    }

    fn poll_action(&mut self) -> Option<Action> {
        self.out.pop()
    }

    fn handle_transport_error(&mut self, _now: Instant) {
        if self.state != State::Terminated {
            self.out.push(Action::TransportError);
            self.terminate();
        }
    }

    fn is_terminated(&self) -> bool {
        self.state == State::Terminated
    }
}
