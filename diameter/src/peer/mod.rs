//! Sans-I/O Diameter peer state machine.
//!
//! - Capabilities exchange, RFC 6733 §5.3: the initiator sends CER and waits for
//!   CEA; the responder waits for CER and answers CEA, or CEA with 5010
//!   DIAMETER_NO_COMMON_APPLICATION and closes when no application is shared.
//! - Transport failure detection, RFC 3539 §3.4 (as RFC 6733 §5.5 requires): the
//!   watchdog timer Tw (default 30 s, jittered, RFC 3539 §3.4.1 `SetWatchdog`)
//!   restarts on every message received; when it fires a DWR is sent; if it fires
//!   again with that DWR unanswered the peer is SUSPECT (pending requests should
//!   fail over); a third expiry closes the connection (DOWN). After a reconnection
//!   the peer is REOPEN until `reopen_dwa_required` DWAs were received (RFC 3539:
//!   three).
//! - Disconnection, RFC 6733 §5.4: [`Peer::close`] sends DPR and waits for DPA; a
//!   DPR received is answered with DPA and the peer closes.
//!
//! Shape (STYLE.md items 1, 2): [`Peer::handle_message`], [`Peer::handle_timeout`]
//! take `now`; [`Peer::poll_transmit`], [`Peer::poll_event`], [`Peer::poll_timeout`]
//! return what the driver must do. No sockets, no clocks, no tokio.

mod capabilities;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

pub use capabilities::{ApplicationId, LocalNode, RemoteCapabilities};

use crate::codec::{AvpSet, Message, ResultCode};
use crate::dictionary::{self as d, DisconnectCause};

/// Which side opened the transport connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// We connected: we send CER.
    Initiator,
    /// We accepted: we expect CER.
    Responder,
}

/// Peer state (RFC 6733 §5.6 folded with the RFC 3539 watchdog states).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerState {
    /// Initiator: CER sent, waiting for CEA.
    WaitCea,
    /// Responder: waiting for CER.
    WaitCer,
    /// Capabilities exchanged, watchdog OKAY.
    Open,
    /// Watchdog SUSPECT: a DWR went unanswered for Tw.
    Suspect,
    /// Watchdog REOPEN: reconnected, waiting for enough DWAs.
    Reopen,
    /// DPR sent, waiting for DPA.
    Closing,
    /// Done: the driver closes the transport once the transmit queue is empty.
    Closed,
}

/// Why the peer closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// The CEA carried a Result-Code other than 2001.
    CapabilitiesRejected(ResultCode),
    /// No application in common (5010), either side.
    NoCommonApplication,
    /// CER/CEA malformed (e.g. missing Origin-Host).
    CapabilitiesInvalid(String),
    /// No CEA/CER in time.
    CapabilitiesTimeout,
    /// Watchdog: no answer to DWR for 2·Tw (RFC 3539 DOWN).
    WatchdogTimeout,
    /// The peer sent DPR with this Disconnect-Cause.
    DisconnectedByPeer(DisconnectCause),
    /// We sent DPR (and got DPA or gave up waiting).
    DisconnectedLocally,
}

/// Something the driver should know about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerEvent {
    /// Capabilities exchanged; application messages may flow.
    Opened(RemoteCapabilities),
    /// Watchdog SUSPECT: stop sending, fail pending requests over.
    Suspect,
    /// Back to OKAY after SUSPECT or REOPEN.
    Reopened,
    /// The peer is closed; close the transport after flushing transmits.
    Closed(CloseReason),
}

/// Timer settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerTimers {
    /// Tw (RFC 3539 §3.4.1 Twinit, default 30 s; the RFC says not below 6 s,
    /// tests use less).
    pub watchdog: Duration,
    /// Maximum jitter added to or removed from Tw (RFC 3539: ±2 s); capped at Tw/4.
    pub watchdog_jitter: Duration,
    /// How long to wait for CER (responder) or CEA (initiator).
    pub capabilities_timeout: Duration,
    /// How long to wait for DPA after DPR.
    pub disconnect_timeout: Duration,
    /// DWAs needed in REOPEN before OKAY (RFC 3539: 3).
    pub reopen_dwa_required: u32,
}

impl Default for PeerTimers {
    fn default() -> Self {
        PeerTimers {
            watchdog: Duration::from_secs(30),
            watchdog_jitter: Duration::from_secs(2),
            capabilities_timeout: Duration::from_secs(10),
            disconnect_timeout: Duration::from_secs(2),
            reopen_dwa_required: 3,
        }
    }
}

/// The state machine for one transport connection to one peer.
#[derive(Debug)]
pub struct Peer {
    local: LocalNode,
    timers: PeerTimers,
    state: PeerState,
    remote: Option<RemoteCapabilities>,
    transmit: VecDeque<Message>,
    events: VecDeque<PeerEvent>,
    deadline: Option<Instant>,
    dwr_pending: bool,
    reopen: bool,
    dwa_count: u32,
    next_hop_by_hop: u32,
    rng: u64,
}

impl Peer {
    /// A peer on a fresh connection. An initiator queues its CER at once.
    /// `reconnect` makes the first open go through REOPEN (RFC 3539 §3.4.1).
    /// `seed` feeds the watchdog jitter (any value; tests fix it).
    pub fn new(
        local: LocalNode,
        role: Role,
        timers: PeerTimers,
        now: Instant,
        reconnect: bool,
        seed: u64,
    ) -> Peer {
        let mut p = Peer {
            local,
            timers,
            state: match role {
                Role::Initiator => PeerState::WaitCea,
                Role::Responder => PeerState::WaitCer,
            },
            remote: None,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            deadline: Some(now + timers.capabilities_timeout),
            dwr_pending: false,
            reopen: reconnect,
            dwa_count: 0,
            next_hop_by_hop: (seed as u32) | 1,
            rng: seed | 1,
        };
        if role == Role::Initiator {
            let cer = p.local.cer();
            p.send_request(cer);
        }
        p
    }

    /// Current state.
    pub fn state(&self) -> PeerState {
        self.state
    }

    /// The peer's capabilities once open.
    pub fn remote(&self) -> Option<&RemoteCapabilities> {
        self.remote.as_ref()
    }

    /// The local node description.
    pub fn local(&self) -> &LocalNode {
        &self.local
    }

    /// Whether application requests may be sent now (OKAY or REOPEN).
    pub fn can_send(&self) -> bool {
        matches!(self.state, PeerState::Open | PeerState::Reopen)
    }

    /// Next message to write to the transport.
    pub fn poll_transmit(&mut self) -> Option<Message> {
        self.transmit.pop_front()
    }

    /// Next event for the driver.
    pub fn poll_event(&mut self) -> Option<PeerEvent> {
        self.events.pop_front()
    }

    /// When [`Peer::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    /// Traffic that could not be decoded still proves the transport is alive
    /// (RFC 3539 §3.4.1: any message received resets the watchdog).
    pub fn handle_traffic(&mut self, now: Instant) {
        if matches!(
            self.state,
            PeerState::Open | PeerState::Suspect | PeerState::Reopen
        ) {
            self.on_traffic(now);
        }
    }

    /// Feeds a received message. Base protocol messages (CER/CEA, DWR/DWA,
    /// DPR/DPA) are consumed; application messages are returned for delivery when
    /// the peer is open, and dropped (requests answered 3010) before that.
    pub fn handle_message(&mut self, now: Instant, msg: Message) -> Option<Message> {
        let code = msg.header.command_code;
        let base = msg.header.application_id == d::APP_COMMON;
        let request = msg.is_request();
        if self.state == PeerState::Closed {
            return None;
        }
        match (base, code, request) {
            (true, d::CMD_CAPABILITIES_EXCHANGE, true) => {
                self.on_cer(now, &msg);
                None
            }
            (true, d::CMD_CAPABILITIES_EXCHANGE, false) => {
                self.on_cea(now, &msg);
                None
            }
            _ if matches!(self.state, PeerState::WaitCea | PeerState::WaitCer) => {
                if request {
                    // RFC 6733 §5.3: nothing but CER/CEA before the exchange.
                    let ans = Message::error_answer(
                        &msg,
                        ResultCode::UnknownPeer,
                        &self.local.origin_host,
                        &self.local.origin_realm,
                        None,
                        Some("capabilities exchange not done"),
                    );
                    self.transmit.push_back(ans);
                }
                None
            }
            (true, d::CMD_DEVICE_WATCHDOG, true) => {
                self.on_traffic(now);
                let dwa = self.local.dwa(&msg);
                self.transmit.push_back(dwa);
                None
            }
            (true, d::CMD_DEVICE_WATCHDOG, false) => {
                self.on_dwa(now);
                None
            }
            (true, d::CMD_DISCONNECT_PEER, true) => {
                let cause = msg
                    .get_i32(&d::DISCONNECT_CAUSE)
                    .ok()
                    .flatten()
                    .map(DisconnectCause::from)
                    .unwrap_or(DisconnectCause::Rebooting);
                let dpa = self.local.dpa(&msg);
                self.transmit.push_back(dpa);
                self.close_with(CloseReason::DisconnectedByPeer(cause));
                None
            }
            (true, d::CMD_DISCONNECT_PEER, false) => {
                if self.state == PeerState::Closing {
                    self.close_with(CloseReason::DisconnectedLocally);
                }
                None
            }
            _ => {
                self.on_traffic(now);
                Some(msg)
            }
        }
    }

    /// Drives the timers; call when [`Peer::poll_timeout`] has passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.deadline {
            Some(t) if t <= now => {}
            _ => return,
        }
        match self.state {
            PeerState::WaitCea | PeerState::WaitCer => {
                self.close_with(CloseReason::CapabilitiesTimeout);
            }
            PeerState::Open | PeerState::Reopen => {
                if self.dwr_pending {
                    if self.state == PeerState::Reopen {
                        // RFC 3539: REOPEN with an unanswered DWR goes DOWN.
                        self.close_with(CloseReason::WatchdogTimeout);
                        return;
                    }
                    self.state = PeerState::Suspect;
                    self.events.push_back(PeerEvent::Suspect);
                    self.set_watchdog(now);
                } else {
                    self.send_dwr(now);
                }
            }
            PeerState::Suspect => self.close_with(CloseReason::WatchdogTimeout),
            PeerState::Closing => self.close_with(CloseReason::DisconnectedLocally),
            PeerState::Closed => self.deadline = None,
        }
    }

    /// Starts an orderly disconnection: DPR now, closed on DPA or timeout. Before
    /// the capabilities exchange completes the peer closes at once.
    pub fn close(&mut self, now: Instant, cause: DisconnectCause) {
        match self.state {
            PeerState::Open | PeerState::Suspect | PeerState::Reopen => {
                let dpr = self.local.dpr(cause);
                self.send_request(dpr);
                self.state = PeerState::Closing;
                self.deadline = Some(now + self.timers.disconnect_timeout);
            }
            PeerState::WaitCea | PeerState::WaitCer => {
                self.close_with(CloseReason::DisconnectedLocally)
            }
            PeerState::Closing | PeerState::Closed => {}
        }
    }

    fn send_request(&mut self, mut m: Message) {
        m.header.hop_by_hop = self.next_hop_by_hop;
        m.header.end_to_end = self.next_hop_by_hop;
        self.next_hop_by_hop = self.next_hop_by_hop.wrapping_add(2);
        self.transmit.push_back(m);
    }

    fn on_cer(&mut self, now: Instant, cer: &Message) {
        if self.state != PeerState::WaitCer {
            // A second CER on an open connection: answer it but keep going
            // (RFC 6733 §5.6.4 election applies to two connections, not one).
            let cea = self.local.cea(cer, ResultCode::UnableToComply);
            self.transmit.push_back(cea);
            return;
        }
        match RemoteCapabilities::read(cer, &self.local) {
            Err(e) => {
                let mut cea = self.local.cea(cer, e.result_code());
                if let Some(f) = e.failed_avp() {
                    cea.push(crate::codec::Avp::grouped(
                        &d::FAILED_AVP,
                        std::slice::from_ref(f),
                    ));
                }
                self.transmit.push_back(cea);
                self.close_with(CloseReason::CapabilitiesInvalid(e.to_string()));
            }
            Ok(remote) if remote.common_applications.is_empty() => {
                let cea = self.local.cea(cer, ResultCode::NoCommonApplication);
                self.transmit.push_back(cea);
                self.close_with(CloseReason::NoCommonApplication);
            }
            Ok(remote) => {
                let cea = self.local.cea(cer, ResultCode::Success);
                self.transmit.push_back(cea);
                self.open(now, remote);
            }
        }
    }

    fn on_cea(&mut self, now: Instant, cea: &Message) {
        if self.state != PeerState::WaitCea {
            return;
        }
        let rc = cea.result_code().unwrap_or(ResultCode::Other(0));
        if rc != ResultCode::Success {
            let reason = if rc == ResultCode::NoCommonApplication {
                CloseReason::NoCommonApplication
            } else {
                CloseReason::CapabilitiesRejected(rc)
            };
            self.close_with(reason);
            return;
        }
        match RemoteCapabilities::read(cea, &self.local) {
            Err(e) => self.close_with(CloseReason::CapabilitiesInvalid(e.to_string())),
            Ok(remote) if remote.common_applications.is_empty() => {
                self.close_with(CloseReason::NoCommonApplication)
            }
            Ok(remote) => self.open(now, remote),
        }
    }

    fn open(&mut self, now: Instant, remote: RemoteCapabilities) {
        self.remote = Some(remote.clone());
        self.events.push_back(PeerEvent::Opened(remote));
        if self.reopen && self.timers.reopen_dwa_required > 0 {
            self.state = PeerState::Reopen;
            self.dwa_count = 0;
            self.send_dwr(now);
        } else {
            self.state = PeerState::Open;
            self.set_watchdog(now);
        }
    }

    fn on_traffic(&mut self, now: Instant) {
        match self.state {
            PeerState::Open => self.set_watchdog(now),
            PeerState::Suspect => {
                // RFC 3539: any message in SUSPECT → OKAY.
                self.dwr_pending = false;
                self.state = PeerState::Open;
                self.events.push_back(PeerEvent::Reopened);
                self.set_watchdog(now);
            }
            _ => {}
        }
    }

    fn on_dwa(&mut self, now: Instant) {
        self.dwr_pending = false;
        match self.state {
            PeerState::Reopen => {
                self.dwa_count += 1;
                if self.dwa_count >= self.timers.reopen_dwa_required {
                    self.state = PeerState::Open;
                    self.events.push_back(PeerEvent::Reopened);
                    self.set_watchdog(now);
                } else {
                    // Ask again right away rather than one Tw later: the DWAs
                    // prove the path, waiting adds nothing.
                    self.send_dwr(now);
                }
            }
            _ => self.on_traffic(now),
        }
    }

    fn send_dwr(&mut self, now: Instant) {
        let dwr = self.local.dwr();
        self.send_request(dwr);
        self.dwr_pending = true;
        self.set_watchdog(now);
    }

    fn set_watchdog(&mut self, now: Instant) {
        let tw = self.timers.watchdog;
        let max_jitter = self.timers.watchdog_jitter.min(tw / 4);
        let span = max_jitter.as_micros() as u64 * 2;
        let jittered = if span == 0 {
            tw
        } else {
            let r = self.next_random() % (span + 1);
            tw + Duration::from_micros(r) - max_jitter
        };
        self.deadline = Some(now + jittered);
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64*: deterministic per seed, enough for timer jitter.
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn close_with(&mut self, reason: CloseReason) {
        if self.state == PeerState::Closed {
            return;
        }
        self.state = PeerState::Closed;
        self.deadline = None;
        self.events.push_back(PeerEvent::Closed(reason));
    }
}
