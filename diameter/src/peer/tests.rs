//! Peer state machine tests with a simulated clock (no sockets, no sleeps).

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use super::*;
use crate::codec::{Avp, AvpSet, Message};

fn node(host: &str) -> LocalNode {
    LocalNode::cx(host, "ims.test", IpAddr::V4(Ipv4Addr::LOCALHOST))
}

fn timers() -> PeerTimers {
    PeerTimers {
        watchdog: Duration::from_secs(30),
        watchdog_jitter: Duration::from_secs(2),
        capabilities_timeout: Duration::from_secs(10),
        disconnect_timeout: Duration::from_secs(2),
        reopen_dwa_required: 3,
    }
}

/// Two peers joined by a lossless wire that encodes and decodes every message.
struct Pair {
    now: Instant,
    client: Peer,
    server: Peer,
    /// When false, messages from server to client are dropped.
    server_to_client: bool,
    delivered_to_server: Vec<Message>,
}

impl Pair {
    fn new(reconnect: bool) -> Pair {
        let now = Instant::now();
        Pair {
            now,
            client: Peer::new(
                node("scscf.ims.test"),
                Role::Initiator,
                timers(),
                now,
                reconnect,
                7,
            ),
            server: Peer::new(
                node("hss.ims.test"),
                Role::Responder,
                timers(),
                now,
                false,
                9,
            ),
            server_to_client: true,
            delivered_to_server: Vec::new(),
        }
    }

    fn wire(m: Message) -> Message {
        Message::decode(&m.to_bytes().unwrap()).unwrap()
    }

    /// Moves messages both ways until both queues are empty.
    fn drive(&mut self) {
        loop {
            let mut moved = false;
            while let Some(m) = self.client.poll_transmit() {
                moved = true;
                if let Some(app) = self.server.handle_message(self.now, Self::wire(m)) {
                    self.delivered_to_server.push(app);
                }
            }
            while let Some(m) = self.server.poll_transmit() {
                moved = true;
                if self.server_to_client {
                    self.client.handle_message(self.now, Self::wire(m));
                }
            }
            if !moved {
                break;
            }
        }
    }

    /// Advances the clock to the earliest timer and fires it.
    fn advance_to_next_timer(&mut self) -> Duration {
        let next = [self.client.poll_timeout(), self.server.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
            .expect("a timer");
        let step = next.saturating_duration_since(self.now);
        self.now = next.max(self.now);
        self.client.handle_timeout(self.now);
        self.server.handle_timeout(self.now);
        self.drive();
        step
    }

    fn events(p: &mut Peer) -> Vec<PeerEvent> {
        std::iter::from_fn(|| p.poll_event()).collect()
    }
}

#[test]
fn capabilities_exchange_opens_both_sides() {
    let mut p = Pair::new(false);
    assert_eq!(p.client.state(), PeerState::WaitCea);
    assert_eq!(p.server.state(), PeerState::WaitCer);
    // The CER carries what RFC 6733 §5.3.1 and Cx need.
    let cer = p.client.poll_transmit().unwrap();
    assert_eq!(cer.header.command_code, 257);
    assert!(cer.is_request() && !cer.header.flags.is_proxiable());
    assert_eq!(cer.require_utf8(&d::ORIGIN_HOST).unwrap(), "scscf.ims.test");
    assert_eq!(cer.require_u32(&d::SUPPORTED_VENDOR_ID).unwrap(), 10415);
    let vsai = cer
        .require_grouped(&d::VENDOR_SPECIFIC_APPLICATION_ID)
        .unwrap();
    assert_eq!(
        vsai.require_u32(&d::AUTH_APPLICATION_ID).unwrap(),
        16_777_216
    );
    assert!(cer.get_address(&d::HOST_IP_ADDRESS).unwrap().is_some());
    assert_eq!(cer.require_utf8(&d::PRODUCT_NAME).unwrap(), "ims-core");
    p.server.handle_message(p.now, cer);
    p.drive();
    assert_eq!(p.client.state(), PeerState::Open);
    assert_eq!(p.server.state(), PeerState::Open);
    match &Pair::events(&mut p.client)[..] {
        [PeerEvent::Opened(r)] => {
            assert_eq!(r.origin_host, "hss.ims.test");
            assert!(r.supports(16_777_216));
            assert!(!r.supports(16_777_217));
        }
        e => panic!("unexpected events {e:?}"),
    }
    assert!(
        matches!(&Pair::events(&mut p.server)[..], [PeerEvent::Opened(r)] if r.origin_host == "scscf.ims.test")
    );
}

#[test]
fn no_common_application_is_rejected_with_5010() {
    let now = Instant::now();
    let mut sh = node("sh-client");
    sh.applications = vec![ApplicationId::VendorAuth {
        vendor_id: 10415,
        application_id: 16_777_217,
    }];
    let mut client = Peer::new(sh, Role::Initiator, timers(), now, false, 1);
    let mut server = Peer::new(node("hss"), Role::Responder, timers(), now, false, 2);
    server.handle_message(now, client.poll_transmit().unwrap());
    let cea = server.poll_transmit().unwrap();
    assert_eq!(cea.result_code(), Some(ResultCode::NoCommonApplication));
    assert_eq!(cea.result_code().unwrap().code(), 5010);
    assert_eq!(server.state(), PeerState::Closed);
    assert_eq!(
        std::iter::from_fn(|| server.poll_event()).last(),
        Some(PeerEvent::Closed(CloseReason::NoCommonApplication))
    );
    client.handle_message(now, cea);
    assert_eq!(client.state(), PeerState::Closed);
    assert_eq!(
        client.poll_event(),
        Some(PeerEvent::Closed(CloseReason::NoCommonApplication))
    );
}

#[test]
fn relay_application_matches_everything() {
    let mut relay = node("dra");
    relay.applications = vec![ApplicationId::Auth(d::APP_RELAY)];
    let common = node("scscf").common_applications(&relay.applications);
    assert_eq!(common.len(), 1);
}

#[test]
fn cer_without_origin_host_is_5005_and_closes() {
    let now = Instant::now();
    let mut server = Peer::new(node("hss"), Role::Responder, timers(), now, false, 2);
    let mut cer = node("x").cer();
    cer.avps.retain(|a| !d::ORIGIN_HOST.matches(a));
    server.handle_message(now, cer);
    let cea = server.poll_transmit().unwrap();
    assert_eq!(cea.result_code(), Some(ResultCode::MissingAvp));
    assert_eq!(cea.require_grouped(&d::FAILED_AVP).unwrap()[0].code, 264);
    assert_eq!(server.state(), PeerState::Closed);
}

#[test]
fn requests_before_cer_get_3010_and_are_not_delivered() {
    let now = Instant::now();
    let mut server = Peer::new(node("hss"), Role::Responder, timers(), now, false, 2);
    let mut req = Message::request(300, 16_777_216);
    req.header.hop_by_hop = 5;
    assert!(server.handle_message(now, req).is_none());
    let ans = server.poll_transmit().unwrap();
    assert_eq!(ans.header.hop_by_hop, 5);
    assert_eq!(ans.result_code(), Some(ResultCode::UnknownPeer));
    assert!(ans.header.flags.is_error());
    assert_eq!(server.state(), PeerState::WaitCer);
}

#[test]
fn capabilities_timeout_closes() {
    let now = Instant::now();
    let mut server = Peer::new(node("hss"), Role::Responder, timers(), now, false, 2);
    server.handle_timeout(now + Duration::from_secs(5));
    assert_eq!(server.state(), PeerState::WaitCer);
    server.handle_timeout(now + Duration::from_secs(10));
    assert_eq!(server.state(), PeerState::Closed);
    assert_eq!(
        server.poll_event(),
        Some(PeerEvent::Closed(CloseReason::CapabilitiesTimeout))
    );
}

#[test]
fn watchdog_sends_dwr_after_tw_with_jitter_and_dwa_keeps_open() {
    let mut p = Pair::new(false);
    p.drive();
    Pair::events(&mut p.client);
    for _ in 0..5 {
        let before = p.now;
        let step = p.advance_to_next_timer();
        // Tw = 30 s ± 2 s.
        assert!(
            step >= Duration::from_secs(28) && step <= Duration::from_secs(32),
            "step {step:?}"
        );
        assert!(p.now > before);
        assert_eq!(p.client.state(), PeerState::Open);
        assert_eq!(p.server.state(), PeerState::Open);
    }
    assert!(Pair::events(&mut p.client).is_empty());
}

#[test]
fn application_traffic_postpones_the_watchdog() {
    let mut p = Pair::new(false);
    p.drive();
    let first = p.client.poll_timeout().unwrap();
    p.now += Duration::from_secs(20);
    let mut req = Message::request(300, 16_777_216);
    req.header.hop_by_hop = 99;
    let ans = Message::answer_to(&req).with(Avp::unsigned32(&d::RESULT_CODE, 2001));
    assert!(
        p.client.handle_message(p.now, ans).is_some(),
        "app answers are delivered"
    );
    assert!(p.client.poll_timeout().unwrap() > first);
    assert!(p.client.poll_transmit().is_none(), "no DWR needed yet");
}

#[test]
fn unanswered_dwr_makes_suspect_then_down_and_any_message_recovers() {
    let mut p = Pair::new(false);
    p.drive();
    Pair::events(&mut p.client);
    // Only the client's timer runs; its DWR is lost.
    let t = p.client.poll_timeout().unwrap();
    p.client.handle_timeout(t);
    let dwr = p.client.poll_transmit().unwrap();
    assert_eq!(dwr.header.command_code, 280);
    assert_eq!(p.client.state(), PeerState::Open);
    let t = p.client.poll_timeout().unwrap();
    p.now = t;
    p.client.handle_timeout(t);
    assert_eq!(p.client.state(), PeerState::Suspect);
    assert_eq!(p.client.poll_event(), Some(PeerEvent::Suspect));
    assert!(!p.client.can_send());
    // Any message in SUSPECT → OKAY (RFC 3539).
    let dwa = node("hss.ims.test").dwa(&node("scscf.ims.test").dwr());
    p.client.handle_message(t, dwa);
    assert_eq!(p.client.state(), PeerState::Open);
    assert_eq!(p.client.poll_event(), Some(PeerEvent::Reopened));
    // Lose again: DWR, SUSPECT, then DOWN.
    while p.client.poll_transmit().is_some() {}
    for expected in [PeerState::Open, PeerState::Suspect, PeerState::Closed] {
        let t = p.client.poll_timeout().unwrap();
        p.client.handle_timeout(t);
        assert_eq!(p.client.state(), expected);
    }
    let evs: Vec<_> = std::iter::from_fn(|| p.client.poll_event()).collect();
    assert_eq!(
        evs,
        vec![
            PeerEvent::Suspect,
            PeerEvent::Closed(CloseReason::WatchdogTimeout)
        ]
    );
}

#[test]
fn reopen_needs_three_dwas() {
    let mut p = Pair::new(true);
    p.drive();
    // DWR/DWA ping-pong happened three times during drive().
    assert_eq!(p.client.state(), PeerState::Open);
    let evs = Pair::events(&mut p.client);
    assert!(matches!(evs[0], PeerEvent::Opened(_)));
    assert_eq!(evs[1], PeerEvent::Reopened);

    // Without DWAs REOPEN goes DOWN at the first expiry.
    let mut p = Pair::new(true);
    p.server_to_client = false;
    let cer = p.client.poll_transmit().unwrap();
    p.server.handle_message(p.now, cer);
    let cea = p.server.poll_transmit().unwrap();
    p.client.handle_message(p.now, cea);
    assert_eq!(p.client.state(), PeerState::Reopen);
    assert!(p.client.can_send());
    let t = p.client.poll_timeout().unwrap();
    p.client.handle_timeout(t);
    assert_eq!(p.client.state(), PeerState::Closed);
}

#[test]
fn dpr_dpa_close_both_sides() {
    let mut p = Pair::new(false);
    p.drive();
    Pair::events(&mut p.client);
    Pair::events(&mut p.server);
    p.client.close(p.now, DisconnectCause::Rebooting);
    assert_eq!(p.client.state(), PeerState::Closing);
    let dpr = p.client.poll_transmit().unwrap();
    assert_eq!(dpr.header.command_code, 282);
    assert_eq!(dpr.require_i32(&d::DISCONNECT_CAUSE).unwrap(), 0);
    p.server.handle_message(p.now, dpr);
    assert_eq!(p.server.state(), PeerState::Closed);
    assert_eq!(
        p.server.poll_event(),
        Some(PeerEvent::Closed(CloseReason::DisconnectedByPeer(
            DisconnectCause::Rebooting
        )))
    );
    let dpa = p.server.poll_transmit().unwrap();
    assert_eq!(dpa.result_code(), Some(ResultCode::Success));
    p.client.handle_message(p.now, dpa);
    assert_eq!(p.client.state(), PeerState::Closed);
    assert_eq!(
        p.client.poll_event(),
        Some(PeerEvent::Closed(CloseReason::DisconnectedLocally))
    );
}

#[test]
fn dpr_without_dpa_times_out() {
    let mut p = Pair::new(false);
    p.drive();
    p.client.close(p.now, DisconnectCause::Busy);
    p.client.handle_timeout(p.now + Duration::from_secs(2));
    assert_eq!(p.client.state(), PeerState::Closed);
}

#[test]
fn hop_by_hop_ids_of_base_requests_differ() {
    let mut p = Pair::new(false);
    let cer = p.client.poll_transmit().unwrap();
    p.server.handle_message(p.now, cer.clone());
    p.drive();
    p.client.close(p.now, DisconnectCause::Rebooting);
    let dpr = p.client.poll_transmit().unwrap();
    assert_ne!(cer.header.hop_by_hop, dpr.header.hop_by_hop);
}

#[test]
fn second_cer_on_open_connection_is_refused_without_closing() {
    let mut p = Pair::new(false);
    p.drive();
    let mut cer = node("scscf.ims.test").cer();
    cer.header.hop_by_hop = 42;
    p.server.handle_message(p.now, cer);
    let cea = p.server.poll_transmit().unwrap();
    assert_eq!(cea.header.hop_by_hop, 42);
    assert_eq!(cea.result_code(), Some(ResultCode::UnableToComply));
    assert_eq!(p.server.state(), PeerState::Open);
}

#[test]
fn undecodable_traffic_counts_for_the_watchdog() {
    let mut p = Pair::new(false);
    p.drive();
    Pair::events(&mut p.client);
    let t = p.client.poll_timeout().unwrap();
    p.client.handle_timeout(t); // DWR out (lost)
    while p.client.poll_transmit().is_some() {}
    let t = p.client.poll_timeout().unwrap();
    p.client.handle_timeout(t);
    assert_eq!(p.client.state(), PeerState::Suspect);
    p.client.handle_traffic(t);
    assert_eq!(p.client.state(), PeerState::Open);
    let evs: Vec<_> = std::iter::from_fn(|| p.client.poll_event()).collect();
    assert_eq!(evs, vec![PeerEvent::Suspect, PeerEvent::Reopened]);
}

#[test]
fn dpr_is_answered_in_any_open_state_and_base_requests_are_not_proxiable() {
    let mut p = Pair::new(false);
    p.drive();
    Pair::events(&mut p.server);
    let dpr = node("scscf.ims.test").dpr(DisconnectCause::DoNotWantToTalkToYou);
    assert!(!dpr.header.flags.is_proxiable());
    p.server.handle_message(p.now, dpr);
    assert_eq!(
        p.server.poll_event(),
        Some(PeerEvent::Closed(CloseReason::DisconnectedByPeer(
            DisconnectCause::DoNotWantToTalkToYou
        )))
    );
    // Nothing is delivered once closed.
    let req = Message::request(300, 16_777_216);
    assert!(p.server.handle_message(p.now, req).is_none());
}
