//! INVITE server transaction (RFC 3261 §17.2.1, Figure 7, with the RFC 6026 §8.7
//! `Accepted` state): 100 Trying, Timers G, H, I, L; INVITE retransmissions and the ACK
//! for a non-2xx response are absorbed.

use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::builder::ResponseBuilder;
use crate::error::HeaderError;
use crate::message::Message;
use crate::method::Method;
use crate::status::StatusCode;
use crate::transaction::{earliest, Action, Outbox, Timer, TimerConfig, Transaction, TransactionKey};

/// States of Figure 7 plus RFC 6026 `Accepted`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// INVITE received; provisional responses may be sent.
    Proceeding,
    /// A 300–699 was sent; retransmitting it until the ACK (Timer G) or Timer H.
    Completed,
    /// The ACK arrived; absorbing ACK retransmissions until Timer I.
    Confirmed,
    /// A 2xx was sent; INVITE retransmissions absorbed, further 2xx pass, until Timer L.
    Accepted,
    /// Over.
    Terminated,
}

/// An INVITE server transaction.
#[derive(Debug)]
pub struct ServerInvite {
    key: TransactionKey,
    state: State,
    reliable: bool,
    cfg: TimerConfig,
    last_response: Option<Bytes>,
    interval: Duration,
    g: Timer,
    h: Timer,
    i: Timer,
    l: Timer,
    out: Outbox,
}

impl ServerInvite {
    /// A server transaction for an INVITE. With `send_trying`, a `100 Trying` (built from
    /// the request, Timestamp echoed) is queued at once (§17.2.1; proxies always do this,
    /// §16.2).
    pub fn new(
        request: &Message,
        reliable: bool,
        cfg: TimerConfig,
        _now: Instant,
        send_trying: bool,
    ) -> Result<Self, HeaderError> {
        let mut t = ServerInvite {
            key: TransactionKey::server(request)?,
            state: State::Proceeding,
            reliable,
            cfg,
            last_response: None,
            interval: cfg.t1,
            g: Timer::default(),
            h: Timer::default(),
            i: Timer::default(),
            l: Timer::default(),
            out: Outbox::default(),
        };
        if send_trying {
            let trying = ResponseBuilder::new(request, StatusCode::TRYING).build();
            t.out.push(Action::Transmit(trying.clone()));
            t.last_response = Some(trying);
        }
        Ok(t)
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// A request that matched this transaction: an INVITE retransmission (the last
    /// response is re-sent in Proceeding/Completed) or the ACK (Completed → Confirmed).
    /// Both are absorbed: nothing is delivered to the TU. (An ACK for a 2xx has its own
    /// branch and never matches.)
    pub fn handle_request(&mut self, now: Instant, request: &Message) {
        let is_ack = request.method() == Some(&Method::Ack);
        match (self.state, is_ack) {
            (State::Proceeding | State::Completed, false) => {
                if let Some(r) = &self.last_response {
                    self.out.push(Action::Transmit(r.clone()));
                }
            }
            (State::Completed, true) => {
                self.g.clear();
                self.h.clear();
                self.state = State::Confirmed;
                if self.reliable {
                    self.terminate();
                } else {
                    self.i.set(now + self.cfg.t4_or_zero(false));
                }
            }
            _ => {}
        }
    }

    /// The TU sends a response with this status (`response` is its octets).
    pub fn send_response(&mut self, now: Instant, status: StatusCode, response: Bytes) {
        match self.state {
            State::Proceeding => {
                self.out.push(Action::Transmit(response.clone()));
                self.last_response = Some(response);
                if status.is_success() {
                    self.state = State::Accepted;
                    self.l.set(now + self.cfg.t1x64());
                } else if status.is_final() {
                    self.state = State::Completed;
                    self.h.set(now + self.cfg.t1x64());
                    if !self.reliable {
                        self.g.set(now + self.cfg.t1);
                    }
                }
            }
            State::Accepted if status.is_success() => {
                self.out.push(Action::Transmit(response));
            }
            _ => {}
        }
    }

    fn terminate(&mut self) {
        for t in [&mut self.g, &mut self.h, &mut self.i, &mut self.l] {
            t.clear();
        }
        self.state = State::Terminated;
        self.out.push(Action::Terminated);
    }
}

impl Transaction for ServerInvite {
    fn key(&self) -> &TransactionKey {
        &self.key
    }

    fn handle_timeout(&mut self, now: Instant) {
        if self.state == State::Terminated {
            return;
        }
        if self.h.fired(now) {
            self.out.push(Action::Timeout);
            self.terminate();
            return;
        }
        if self.g.fired(now) {
            if let Some(r) = &self.last_response {
                self.out.push(Action::Transmit(r.clone()));
            }
            self.interval = (self.interval * 2).min(self.cfg.t2);
            self.g.set(now + self.interval);
        }
        if self.i.fired(now) || self.l.fired(now) {
            self.terminate();
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        earliest(&[self.g, self.h, self.i, self.l])
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
