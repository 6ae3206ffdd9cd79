//! RFC 3261 §17 transactions driven by a simulated clock: every timer fires at its exact
//! instant in microseconds of test time (Timer B/F at 64·T1 = 32 s), retransmission
//! schedules, absorption of retransmitted requests/responses, and a client/server pair
//! over a lossy link.
#![allow(clippy::disallowed_methods)] // Instant::now() only as the simulated epoch

use std::time::{Duration, Instant};

use bytes::Bytes;
use ims_sip_core::builder::ResponseBuilder;
use ims_sip_core::transaction::{
    client, client_invite, server, server_invite, Action, ClientInvite, ClientNonInvite, ServerInvite,
    ServerNonInvite, TimerConfig, Transaction, TransactionKey,
};
use ims_sip_core::{Message, StatusCode};

const REGISTER: &str = "REGISTER sip:ims.test SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKreg1\r\n\
Max-Forwards: 70\r\nFrom: <sip:a@ims.test>;tag=1\r\nTo: <sip:a@ims.test>\r\nCall-ID: r1\r\nCSeq: 1 REGISTER\r\n\
Content-Length: 0\r\n\r\n";
const INVITE: &str = "INVITE sip:b@ims.test SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKinv1\r\n\
Max-Forwards: 70\r\nFrom: <sip:a@ims.test>;tag=1\r\nTo: <sip:b@ims.test>\r\nCall-ID: i1\r\nCSeq: 1 INVITE\r\n\
Content-Length: 0\r\n\r\n";

fn msg(s: &str) -> Message {
    Message::parse(Bytes::copy_from_slice(s.as_bytes())).unwrap()
}

fn response(req: &Message, code: u16) -> Message {
    ResponseBuilder::new(req, StatusCode::new(code).unwrap())
        .to_tag("srv")
        .build_message()
        .unwrap()
}

/// Actions with their offset from the epoch.
#[derive(Debug)]
#[allow(dead_code)] // offsets are read through Debug output in failure messages
enum Ev {
    Tx(Duration, Bytes),
    Deliver(Duration, u16),
    Timeout(Duration),
    TransportError(Duration),
    Terminated(Duration),
}

fn drain(t: &mut impl Transaction, epoch: Instant, now: Instant, evs: &mut Vec<Ev>) {
    let at = now - epoch;
    while let Some(a) = t.poll_action() {
        evs.push(match a {
            Action::Transmit(b) => Ev::Tx(at, b),
            Action::Deliver(m) => Ev::Deliver(at, m.status().map(|s| s.as_u16()).unwrap_or(0)),
            Action::Timeout => Ev::Timeout(at),
            Action::TransportError => Ev::TransportError(at),
            Action::Terminated => Ev::Terminated(at),
        });
    }
}

/// Runs only the timers until `until` (no input), collecting actions.
fn run_timers(
    t: &mut impl Transaction,
    epoch: Instant,
    from: Instant,
    until: Instant,
    evs: &mut Vec<Ev>,
) -> Instant {
    let mut now = from;
    drain(t, epoch, now, evs);
    while let Some(at) = t.poll_timeout() {
        if at > until {
            break;
        }
        assert!(at >= now, "timer in the past");
        now = at;
        t.handle_timeout(now);
        drain(t, epoch, now, evs);
    }
    now
}

fn tx_times(evs: &[Ev]) -> Vec<f64> {
    evs.iter()
        .filter_map(|e| {
            if let Ev::Tx(d, _) = e {
                Some(d.as_secs_f64())
            } else {
                None
            }
        })
        .collect()
}

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

#[test]
fn non_invite_client_timer_e_doubles_to_t2_and_f_fires_at_64_t1() {
    let epoch = Instant::now();
    let cfg = TimerConfig::default();
    let mut t = ClientNonInvite::new(msg(REGISTER), false, cfg, epoch).unwrap();
    let mut evs = Vec::new();
    run_timers(&mut t, epoch, epoch, epoch + Duration::from_secs(100), &mut evs);
    assert_eq!(
        tx_times(&evs),
        vec![0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    );
    let tail: Vec<_> = evs.iter().skip(11).collect();
    assert!(
        matches!(tail[..], [Ev::Timeout(d), Ev::Terminated(d2)] if *d == ms(32_000) && *d2 == ms(32_000)),
        "{tail:?}"
    );
    assert!(t.is_terminated());
    assert_eq!(t.poll_timeout(), None);
}

#[test]
fn non_invite_client_custom_t1_and_proceeding_retransmits_at_t2() {
    let epoch = Instant::now();
    let cfg = TimerConfig {
        t1: ms(100),
        t2: ms(400),
        t4: ms(1000),
    };
    let req = msg(REGISTER);
    let mut t = ClientNonInvite::new(req.clone(), false, cfg, epoch).unwrap();
    let mut evs = Vec::new();
    // 0, 0.1, 0.3 transmissions; a 100 Trying arrives at 0.35.
    let now = run_timers(&mut t, epoch, epoch, epoch + ms(350), &mut evs);
    t.handle_response(epoch + ms(350), response(&req, 100));
    assert_eq!(t.state(), client::State::Proceeding);
    drain(&mut t, epoch, epoch + ms(350), &mut evs);
    // Next E was scheduled at 0.3 + 0.4 = 0.7; after that, every T2 = 0.4 in Proceeding.
    run_timers(&mut t, epoch, now, epoch + ms(1600), &mut evs);
    assert_eq!(tx_times(&evs), vec![0.0, 0.1, 0.3, 0.7, 1.1, 1.5]);
    // Final response: delivered once; the retransmitted final is absorbed; K = T4.
    t.handle_response(epoch + ms(1600), response(&req, 200));
    t.handle_response(epoch + ms(1700), response(&req, 200));
    assert_eq!(t.state(), client::State::Completed);
    let mut evs = Vec::new();
    run_timers(&mut t, epoch, epoch + ms(1700), epoch + ms(10_000), &mut evs);
    let delivered: Vec<_> = evs.iter().filter(|e| matches!(e, Ev::Deliver(..))).collect();
    assert_eq!(delivered.len(), 1);
    assert!(
        matches!(evs.last(), Some(Ev::Terminated(d)) if *d == ms(2600)),
        "{evs:?}"
    );
    // Timer F (6.4 s) never fired.
    assert!(!evs.iter().any(|e| matches!(e, Ev::Timeout(_))));
}

#[test]
fn non_invite_client_reliable_has_no_retransmissions_and_zero_k() {
    let epoch = Instant::now();
    let req = msg(REGISTER);
    let mut t = ClientNonInvite::new(req.clone(), true, TimerConfig::default(), epoch).unwrap();
    let mut evs = Vec::new();
    run_timers(&mut t, epoch, epoch, epoch + ms(20_000), &mut evs);
    assert_eq!(tx_times(&evs), vec![0.0]);
    t.handle_response(epoch + ms(20_000), response(&req, 401));
    drain(&mut t, epoch, epoch + ms(20_000), &mut evs);
    assert!(
        matches!(evs[1..], [Ev::Deliver(_, 401), Ev::Terminated(_)]),
        "{evs:?}"
    );
}

#[test]
fn invite_client_timer_a_doubles_and_b_fires_at_64_t1() {
    let epoch = Instant::now();
    let mut t = ClientInvite::new(msg(INVITE), false, TimerConfig::default(), epoch).unwrap();
    let mut evs = Vec::new();
    run_timers(&mut t, epoch, epoch, epoch + ms(100_000), &mut evs);
    assert_eq!(tx_times(&evs), vec![0.0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]);
    assert!(
        matches!(evs[7..], [Ev::Timeout(d), Ev::Terminated(_)] if d == ms(32_000)),
        "{evs:?}"
    );
}

#[test]
fn invite_client_acks_non_2xx_and_absorbs_retransmissions() {
    let epoch = Instant::now();
    let req = msg(INVITE);
    let mut t = ClientInvite::new(req.clone(), false, TimerConfig::default(), epoch).unwrap();
    let mut evs = Vec::new();
    drain(&mut t, epoch, epoch, &mut evs);
    t.handle_response(epoch + ms(100), response(&req, 180));
    t.handle_response(epoch + ms(200), response(&req, 486));
    assert_eq!(t.state(), client_invite::State::Completed);
    t.handle_response(epoch + ms(300), response(&req, 486));
    drain(&mut t, epoch, epoch + ms(300), &mut evs);
    let acks: Vec<_> = evs
        .iter()
        .filter_map(|e| {
            if let Ev::Tx(_, b) = e {
                Some(Message::parse(b.clone()).unwrap())
            } else {
                None
            }
        })
        .filter(|m| m.method().map(|m| m.as_str()) == Some("ACK"))
        .collect();
    assert_eq!(
        acks.len(),
        2,
        "ACK sent for the 486 and again for its retransmission"
    );
    assert_eq!(acks[0].to_addr().unwrap().unwrap().tag(), Some("srv"));
    assert_eq!(acks[0].top_via().unwrap().unwrap().branch(), Some("z9hG4bKinv1"));
    let delivered: Vec<u16> = evs
        .iter()
        .filter_map(|e| if let Ev::Deliver(_, c) = e { Some(*c) } else { None })
        .collect();
    assert_eq!(delivered, vec![180, 486]);
    let mut evs = Vec::new();
    run_timers(&mut t, epoch, epoch + ms(300), epoch + ms(100_000), &mut evs);
    assert!(
        matches!(evs[..], [Ev::Terminated(d)] if d == ms(32_200)),
        "Timer D = 32 s: {evs:?}"
    );
}

#[test]
fn invite_client_2xx_goes_accepted_and_passes_retransmitted_2xx() {
    let epoch = Instant::now();
    let req = msg(INVITE);
    let mut t = ClientInvite::new(req.clone(), false, TimerConfig::default(), epoch).unwrap();
    let mut evs = Vec::new();
    drain(&mut t, epoch, epoch, &mut evs);
    t.handle_response(epoch + ms(50), response(&req, 200));
    assert_eq!(t.state(), client_invite::State::Accepted);
    t.handle_response(epoch + ms(550), response(&req, 200));
    run_timers(&mut t, epoch, epoch + ms(550), epoch + ms(100_000), &mut evs);
    let delivered = evs.iter().filter(|e| matches!(e, Ev::Deliver(_, 200))).count();
    assert_eq!(delivered, 2);
    assert_eq!(tx_times(&evs), vec![0.0], "no retransmission after the 2xx");
    assert!(
        matches!(evs.last(), Some(Ev::Terminated(d)) if *d == ms(32_050)),
        "Timer M: {evs:?}"
    );
}

#[test]
fn invite_server_trying_g_retransmits_ack_confirms_i_terminates() {
    let epoch = Instant::now();
    let req = msg(INVITE);
    let mut t = ServerInvite::new(&req, false, TimerConfig::default(), epoch, true).unwrap();
    let mut evs = Vec::new();
    drain(&mut t, epoch, epoch, &mut evs);
    t.handle_request(epoch + ms(500), &req); // retransmitted INVITE → 100 again
    drain(&mut t, epoch, epoch + ms(500), &mut evs);
    let codes: Vec<u16> = evs
        .iter()
        .filter_map(|e| {
            if let Ev::Tx(_, b) = e {
                Message::parse(b.clone()).unwrap().status().map(|s| s.as_u16())
            } else {
                None
            }
        })
        .collect();
    assert_eq!(codes, vec![100, 100]);
    let busy = ResponseBuilder::new(&req, StatusCode::BUSY_HERE)
        .to_tag("x")
        .build();
    t.send_response(epoch + ms(1000), StatusCode::BUSY_HERE, busy);
    let mut evs = Vec::new();
    run_timers(&mut t, epoch, epoch + ms(1000), epoch + ms(9000), &mut evs);
    // 486 at 1.0, then G: +0.5, +1, +2, +4, +4 → 1.5, 2.5, 4.5, 8.5
    assert_eq!(tx_times(&evs), vec![1.0, 1.5, 2.5, 4.5, 8.5]);
    t.handle_request(epoch + ms(9000), &req); // INVITE retransmission in Completed → 486 again
    let ack = msg(&INVITE
        .replace("INVITE sip", "ACK sip")
        .replace("1 INVITE", "1 ACK"));
    assert_eq!(TransactionKey::server(&ack).unwrap(), *t.key());
    t.handle_request(epoch + ms(9100), &ack);
    assert_eq!(t.state(), server_invite::State::Confirmed);
    t.handle_request(epoch + ms(9200), &ack); // absorbed
    let mut evs = Vec::new();
    run_timers(&mut t, epoch, epoch + ms(9200), epoch + ms(100_000), &mut evs);
    assert_eq!(
        tx_times(&evs),
        vec![9.2],
        "one 486 for the INVITE retransmission, nothing after the ACK"
    );
    assert!(
        matches!(evs.last(), Some(Ev::Terminated(d)) if *d == ms(14_100)),
        "Timer I = T4: {evs:?}"
    );
    assert!(!evs.iter().any(|e| matches!(e, Ev::Deliver(..))), "ACK absorbed");
}

#[test]
fn invite_server_h_fires_without_ack() {
    let epoch = Instant::now();
    let req = msg(INVITE);
    let mut t = ServerInvite::new(&req, false, TimerConfig::default(), epoch, false).unwrap();
    t.send_response(
        epoch,
        StatusCode::NOT_FOUND,
        ResponseBuilder::new(&req, StatusCode::NOT_FOUND).build(),
    );
    let mut evs = Vec::new();
    run_timers(&mut t, epoch, epoch, epoch + ms(100_000), &mut evs);
    assert_eq!(
        tx_times(&evs),
        vec![0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    );
    assert!(
        matches!(evs[11..], [Ev::Timeout(d), Ev::Terminated(_)] if d == ms(32_000)),
        "{evs:?}"
    );
}

#[test]
fn invite_server_2xx_accepted_absorbs_invite_passes_2xx() {
    let epoch = Instant::now();
    let req = msg(INVITE);
    let mut t = ServerInvite::new(&req, true, TimerConfig::default(), epoch, false).unwrap();
    let ok = ResponseBuilder::new(&req, StatusCode::OK).to_tag("x").build();
    t.send_response(epoch, StatusCode::OK, ok.clone());
    assert_eq!(t.state(), server_invite::State::Accepted);
    t.handle_request(epoch + ms(10), &req);
    t.send_response(epoch + ms(500), StatusCode::OK, ok);
    let mut evs = Vec::new();
    run_timers(&mut t, epoch, epoch, epoch + ms(100_000), &mut evs);
    assert_eq!(
        tx_times(&evs).len(),
        2,
        "the 2xx and the TU's 2xx retransmission, not one for the INVITE"
    );
    assert!(
        matches!(evs.last(), Some(Ev::Terminated(d)) if *d == ms(32_000)),
        "Timer L: {evs:?}"
    );
}

#[test]
fn non_invite_server_absorbs_and_j() {
    let epoch = Instant::now();
    let req = msg(REGISTER);
    let mut t = ServerNonInvite::new(&req, false, TimerConfig::default(), epoch).unwrap();
    t.handle_request(epoch + ms(10), &req);
    assert!(t.poll_action().is_none(), "nothing to resend before a response");
    let r401 = ResponseBuilder::new(&req, StatusCode::UNAUTHORIZED).build();
    t.send_response(epoch + ms(20), StatusCode::UNAUTHORIZED, r401);
    t.handle_request(epoch + ms(520), &req);
    t.send_response(
        epoch + ms(600),
        StatusCode::OK,
        ResponseBuilder::new(&req, StatusCode::OK).build(),
    );
    assert_eq!(t.state(), server::State::Completed);
    let mut evs = Vec::new();
    run_timers(&mut t, epoch, epoch + ms(20), epoch + ms(100_000), &mut evs);
    assert_eq!(
        evs.iter().filter(|e| matches!(e, Ev::Tx(..))).count(),
        2,
        "401 + its retransmission; the late 200 is ignored"
    );
    assert!(
        matches!(evs.last(), Some(Ev::Terminated(d)) if *d == ms(32_020)),
        "Timer J: {evs:?}"
    );

    let mut t = ServerNonInvite::new(&req, true, TimerConfig::default(), epoch).unwrap();
    t.send_response(
        epoch,
        StatusCode::OK,
        ResponseBuilder::new(&req, StatusCode::OK).build(),
    );
    let mut evs = Vec::new();
    drain(&mut t, epoch, epoch, &mut evs);
    assert!(
        matches!(evs[..], [Ev::Tx(..), Ev::Terminated(_)]),
        "reliable: J = 0"
    );
}

#[test]
fn transport_error_terminates() {
    let epoch = Instant::now();
    let mut t = ClientNonInvite::new(msg(REGISTER), true, TimerConfig::default(), epoch).unwrap();
    t.handle_transport_error(epoch);
    let mut evs = Vec::new();
    drain(&mut t, epoch, epoch, &mut evs);
    assert!(matches!(
        evs[..],
        [Ev::Tx(..), Ev::TransportError(_), Ev::Terminated(_)]
    ));
}

/// A client and a server INVITE transaction joined by a link that drops chosen packets.
/// The UAC's first INVITE and the UAS's first 486 are lost; retransmissions recover.
#[test]
fn tsx_pair_over_a_lossy_link() {
    let epoch = Instant::now();
    let cfg = TimerConfig::default();
    let latency = ms(20);
    let mut client = ClientInvite::new(msg(INVITE), false, cfg, epoch).unwrap();
    let mut server: Option<ServerInvite> = None;
    let mut in_flight: Vec<(Instant, bool, Bytes)> = Vec::new(); // (arrival, to_server, bytes)
    let mut sent_to_server = 0;
    let mut sent_to_client_final = 0;
    let mut client_final = None;
    let mut now = epoch;
    let mut steps = 0;
    loop {
        steps += 1;
        assert!(steps < 1000);
        while let Some(a) = client.poll_action() {
            match a {
                Action::Transmit(b) => {
                    sent_to_server += 1;
                    if sent_to_server > 1 {
                        in_flight.push((now + latency, true, b));
                    }
                }
                Action::Deliver(m) => client_final = m.status().filter(|s| s.is_final()).or(client_final),
                _ => {}
            }
        }
        if let Some(s) = server.as_mut() {
            while let Some(a) = s.poll_action() {
                if let Action::Transmit(b) = a {
                    let is_final = Message::parse(b.clone())
                        .unwrap()
                        .status()
                        .is_some_and(|s| s.is_final());
                    if is_final {
                        sent_to_client_final += 1;
                    }
                    if !(is_final && sent_to_client_final == 1) {
                        in_flight.push((now + latency, false, b));
                    }
                }
            }
        }
        if client.is_terminated() && server.as_ref().is_some_and(|s| s.is_terminated()) {
            break;
        }
        // Next event: earliest packet arrival or timer.
        let next_pkt = in_flight.iter().map(|p| p.0).min();
        let next_timer = [
            client.poll_timeout(),
            server.as_ref().and_then(|s| s.poll_timeout()),
        ]
        .into_iter()
        .flatten()
        .min();
        let Some(next) = [next_pkt, next_timer].into_iter().flatten().min() else {
            break;
        };
        now = next;
        if next_pkt == Some(next) {
            let i = in_flight.iter().position(|p| p.0 == next).unwrap();
            let (_, to_server, b) = in_flight.remove(i);
            let m = Message::parse(b).unwrap();
            if to_server {
                match server.as_mut() {
                    None => {
                        let mut s = ServerInvite::new(&m, false, cfg, now, true).unwrap();
                        // The TU answers 486 right away.
                        s.send_response(
                            now,
                            StatusCode::BUSY_HERE,
                            ResponseBuilder::new(&m, StatusCode::BUSY_HERE)
                                .to_tag("u")
                                .build(),
                        );
                        server = Some(s);
                    }
                    Some(s) => {
                        assert_eq!(TransactionKey::server(&m).unwrap(), *s.key());
                        s.handle_request(now, &m);
                    }
                }
            } else {
                assert_eq!(TransactionKey::from_response(&m).unwrap(), *client.key());
                client.handle_response(now, m);
            }
        } else {
            client.handle_timeout(now);
            if let Some(s) = server.as_mut() {
                s.handle_timeout(now);
            }
        }
    }
    assert_eq!(client_final.map(|s| s.as_u16()), Some(486));
    assert!(
        sent_to_client_final >= 2,
        "the lost 486 was retransmitted by Timer G"
    );
    // The INVITE was retransmitted once (lost first copy) and the exchange finished long
    // before Timer B; the run ends when Timer D (32 s) and I (T4) have expired.
    assert!(now - epoch < Duration::from_secs(40), "{:?}", now - epoch);
    assert!(client.is_terminated());
}
