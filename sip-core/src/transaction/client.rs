//! Non-INVITE client transaction (RFC 3261 §17.1.2, Figure 6): Timers E, F, K.

use std::time::{Duration, Instant};

use crate::error::HeaderError;
use crate::message::Message;
use crate::transaction::{earliest, Action, Outbox, Timer, TimerConfig, Transaction, TransactionKey};

/// States of Figure 6.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Request sent, nothing received.
    Trying,
    /// A provisional response arrived.
    Proceeding,
    /// A final response arrived; absorbing retransmissions until Timer K.
    Completed,
    /// Over.
    Terminated,
}

/// A non-INVITE client transaction.
#[derive(Debug)]
pub struct ClientNonInvite {
    key: TransactionKey,
    request: Message,
    state: State,
    reliable: bool,
    cfg: TimerConfig,
    interval: Duration,
    e: Timer,
    f: Timer,
    k: Timer,
    out: Outbox,
}

impl ClientNonInvite {
    /// Starts the transaction: queues the first `Transmit` of `request` and starts
    /// Timer F (and E for unreliable transports).
    pub fn new(
        request: Message,
        reliable: bool,
        cfg: TimerConfig,
        now: Instant,
    ) -> Result<Self, HeaderError> {
        let key = TransactionKey::client(&request)?;
        let mut t = ClientNonInvite {
            key,
            state: State::Trying,
            reliable,
            cfg,
            interval: cfg.t1,
            e: Timer::default(),
            f: Timer::default(),
            k: Timer::default(),
            out: Outbox::default(),
            request,
        };
        t.out.push(Action::Transmit(t.request.as_bytes().clone()));
        t.f.set(now + cfg.t1x64());
        if !reliable {
            t.e.set(now + cfg.t1);
        }
        Ok(t)
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The request this transaction sends.
    pub fn request(&self) -> &Message {
        &self.request
    }

    /// A response whose key matched.
    pub fn handle_response(&mut self, now: Instant, response: Message) {
        let Some(status) = response.status() else { return };
        match self.state {
            State::Trying | State::Proceeding => {
                if status.is_provisional() {
                    self.state = State::Proceeding;
                    self.out.push(Action::Deliver(response));
                } else {
                    self.out.push(Action::Deliver(response));
                    self.e.clear();
                    self.f.clear();
                    self.state = State::Completed;
                    self.k.set(now + self.cfg.t4_or_zero(self.reliable));
                    if self.reliable {
                        self.terminate();
                    }
                }
            }
            State::Completed | State::Terminated => {}
        }
    }

    fn terminate(&mut self) {
        self.e.clear();
        self.f.clear();
        self.k.clear();
        self.state = State::Terminated;
        self.out.push(Action::Terminated);
    }
}

impl Transaction for ClientNonInvite {
    fn key(&self) -> &TransactionKey {
        &self.key
    }

    fn handle_timeout(&mut self, now: Instant) {
        if self.state == State::Terminated {
            return;
        }
        if self.f.fired(now) {
            self.out.push(Action::Timeout);
            self.terminate();
            return;
        }
        if self.e.fired(now) {
            self.out.push(Action::Transmit(self.request.as_bytes().clone()));
            self.interval = match self.state {
                State::Proceeding => self.cfg.t2,
                _ => (self.interval * 2).min(self.cfg.t2),
            };
            self.e.set(now + self.interval);
        }
        if self.k.fired(now) {
            self.terminate();
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        earliest(&[self.e, self.f, self.k])
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
