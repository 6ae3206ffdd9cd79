//! INVITE client transaction (RFC 3261 §17.1.1, Figure 5, with the RFC 6026 §8.4
//! `Accepted` state): Timers A, B, D, M; the ACK for a non-2xx final response is built
//! and sent by the transaction.

use std::time::{Duration, Instant};

use crate::error::HeaderError;
use crate::message::Message;
use crate::transaction::requests::build_ack;
use crate::transaction::{earliest, Action, Outbox, Timer, TimerConfig, Transaction, TransactionKey};

/// States of Figure 5 plus RFC 6026 `Accepted`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// INVITE sent, nothing received.
    Calling,
    /// A provisional response arrived.
    Proceeding,
    /// A 300–699 arrived and was ACKed; absorbing retransmissions until Timer D.
    Completed,
    /// A 2xx arrived; further 2xx are delivered until Timer M (RFC 6026).
    Accepted,
    /// Over.
    Terminated,
}

/// An INVITE client transaction.
#[derive(Debug)]
pub struct ClientInvite {
    key: TransactionKey,
    request: Message,
    ack: Option<bytes::Bytes>,
    state: State,
    reliable: bool,
    cfg: TimerConfig,
    interval: Duration,
    a: Timer,
    b: Timer,
    d: Timer,
    m: Timer,
    out: Outbox,
}

impl ClientInvite {
    /// Starts the transaction: queues the first `Transmit` and starts Timer B (and A
    /// for unreliable transports).
    pub fn new(
        request: Message,
        reliable: bool,
        cfg: TimerConfig,
        now: Instant,
    ) -> Result<Self, HeaderError> {
        let key = TransactionKey::client(&request)?;
        let mut t = ClientInvite {
            key,
            ack: None,
            state: State::Calling,
            reliable,
            cfg,
            interval: cfg.t1,
            a: Timer::default(),
            b: Timer::default(),
            d: Timer::default(),
            m: Timer::default(),
            out: Outbox::default(),
            request,
        };
        t.out.push(Action::Transmit(t.request.as_bytes().clone()));
        t.b.set(now + cfg.t1x64());
        if !reliable {
            t.a.set(now + cfg.t1);
        }
        Ok(t)
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The INVITE.
    pub fn request(&self) -> &Message {
        &self.request
    }

    /// A response whose key matched.
    pub fn handle_response(&mut self, now: Instant, response: Message) {
        let Some(status) = response.status() else { return };
        match self.state {
            State::Calling | State::Proceeding => {
                self.a.clear();
                if status.is_provisional() {
                    self.b.clear();
                    self.state = State::Proceeding;
                    self.out.push(Action::Deliver(response));
                } else if status.is_success() {
                    self.b.clear();
                    self.state = State::Accepted;
                    self.m.set(now + self.cfg.t1x64());
                    self.out.push(Action::Deliver(response));
                } else {
                    self.b.clear();
                    let ack = build_ack(&self.request, &response);
                    self.out.push(Action::Transmit(ack.clone()));
                    self.ack = Some(ack);
                    self.out.push(Action::Deliver(response));
                    self.state = State::Completed;
                    if self.reliable {
                        self.terminate();
                    } else {
                        self.d.set(now + self.cfg.timer_d(false));
                    }
                }
            }
            State::Completed => {
                if status.is_final() && !status.is_success() {
                    if let Some(ack) = &self.ack {
                        self.out.push(Action::Transmit(ack.clone()));
                    }
                }
            }
            State::Accepted => {
                if status.is_success() {
                    self.out.push(Action::Deliver(response));
                }
            }
            State::Terminated => {}
        }
    }

    fn terminate(&mut self) {
        for t in [&mut self.a, &mut self.b, &mut self.d, &mut self.m] {
            t.clear();
        }
        self.state = State::Terminated;
        self.out.push(Action::Terminated);
    }
}

impl Transaction for ClientInvite {
    fn key(&self) -> &TransactionKey {
        &self.key
    }

    fn handle_timeout(&mut self, now: Instant) {
        if self.state == State::Terminated {
            return;
        }
        if self.b.fired(now) {
            self.out.push(Action::Timeout);
            self.terminate();
            return;
        }
        if self.a.fired(now) {
            self.out.push(Action::Transmit(self.request.as_bytes().clone()));
            self.interval *= 2;
            self.a.set(now + self.interval);
        }
        if self.d.fired(now) || self.m.fired(now) {
            self.terminate();
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        earliest(&[self.a, self.b, self.d, self.m])
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
