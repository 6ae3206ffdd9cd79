//! The transaction driver over real sockets on 127.0.0.1, with short timers.

mod common;

use std::time::{Duration, Instant};

use common::*;
use ims_sip_core::builder::ResponseBuilder;
use ims_sip_core::{Message, Method, StatusCode};
use ims_sip_transport::transaction::{ResponseRouting, TransactionLayer, TransactionOptions};
use ims_sip_transport::{Incoming, Target, TransportError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;

/// Answers every request delivered to `rx` with `status`.
fn answer_all(layer: TransactionLayer, mut rx: mpsc::Receiver<Incoming>, status: StatusCode) {
    tokio::spawn(async move {
        while let Some(inc) = rx.recv().await {
            if inc.message.is_request() && inc.message.method() != Some(&Method::Ack) {
                let r = ResponseBuilder::new(&inc.message, status)
                    .to_tag("srv")
                    .build_message()
                    .unwrap();
                layer.respond(&inc, &r).await.unwrap();
            }
        }
    });
}

async fn recv_udp(s: &UdpSocket, ms: u64) -> Option<(Message, std::net::SocketAddr)> {
    let mut buf = vec![0u8; 65536];
    match tokio::time::timeout(Duration::from_millis(ms), s.recv_from(&mut buf)).await {
        Ok(Ok((n, from))) => Some((Message::parse(buf[..n].to_vec()).unwrap(), from)),
        _ => None,
    }
}

#[tokio::test]
async fn udp_client_and_server_transactions() {
    let (a, _arx, a_udp, _) = tsx_node(20).await;
    let (b, brx, b_udp, _) = tsx_node(20).await;
    answer_all(b.clone(), brx, StatusCode::OK);
    let req = request(Method::Options, "UDP", &a_udp.to_string(), "tsx-udp");
    let resp = a.request(req, Target::udp(b_udp)).await.unwrap();
    assert_eq!(resp.status(), Some(StatusCode::OK));
    assert_eq!(resp.call_id(), Some("tsx-udp"));
    // B keeps the server transaction for Timer J (64·T1 = 1.28 s), A for Timer K (T4).
    let answered = Instant::now();
    assert_eq!(b.server_count(), 1);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(b.server_count(), 1, "still absorbing retransmissions");
    while b.server_count() > 0 || a.client_count() > 0 {
        assert!(
            answered.elapsed() < Duration::from_secs(10),
            "Timer J/K never ended the transactions"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        answered.elapsed() >= Duration::from_millis(1200),
        "Timer J ended early: {:?}",
        answered.elapsed()
    );
}

#[tokio::test]
async fn request_is_retransmitted_when_the_first_copy_is_dropped() {
    let (a, _arx, a_udp, _) = tsx_node(50).await;
    let peer = UdpSocket::bind(LOCAL).await.unwrap();
    let peer_addr = peer.local_addr().unwrap();
    let req = request(Method::Register, "UDP", &a_udp.to_string(), "retrans");
    let original = req.as_bytes().clone();
    let started = Instant::now();
    let pending = tokio::spawn({
        let a = a.clone();
        async move { a.request(req, Target::udp(peer_addr)).await }
    });
    // First copy: ignored.
    let (first, from) = recv_udp(&peer, 2000).await.expect("first copy");
    assert_eq!(from, a_udp);
    // Second copy after Timer E (T1 = 50 ms), byte-identical.
    let (second, from2) = recv_udp(&peer, 2000).await.expect("retransmission");
    assert!(
        started.elapsed() >= Duration::from_millis(45),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(from2, a_udp, "retransmitted from the same socket");
    assert_eq!(first.as_bytes(), &original);
    assert_eq!(second.as_bytes(), &original);
    let ok = ResponseBuilder::new(&second, StatusCode::OK).build();
    peer.send_to(&ok, from2).await.unwrap();
    let resp = pending.await.unwrap().unwrap();
    assert_eq!(resp.status(), Some(StatusCode::OK));
}

#[tokio::test]
async fn timer_f_times_out_with_short_t1() {
    let (a, _arx, a_udp, _) = tsx_node(10).await;
    let peer = UdpSocket::bind(LOCAL).await.unwrap();
    let peer_addr = peer.local_addr().unwrap();
    let counter = tokio::spawn(async move {
        let mut n = 0;
        while recv_udp(&peer, 1500).await.is_some() {
            n += 1;
        }
        n
    });
    let started = Instant::now();
    let req = request(Method::Options, "UDP", &a_udp.to_string(), "timer-f");
    let err = a.request(req, Target::udp(peer_addr)).await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(matches!(err, TransportError::Timeout), "{err}");
    assert!(
        elapsed >= Duration::from_millis(640),
        "Timer F is 64·T1 = 640 ms, fired at {elapsed:?}"
    );
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    // Timer E: 10, 20, 40, 80, 80, ... ms (T2 = 80 ms): about 10 copies in 640 ms.
    let copies = counter.await.unwrap();
    // (a loaded machine fires timers late, so fewer copies; never more than 12)
    assert!((4..=12).contains(&copies), "{copies} copies");
    assert_eq!(a.client_count(), 0);
}

#[tokio::test]
async fn provisional_then_final() {
    let (a, _arx, a_udp, _) = tsx_node(50).await;
    let peer = UdpSocket::bind(LOCAL).await.unwrap();
    let req = request(Method::Subscribe, "UDP", &a_udp.to_string(), "prov");
    let mut tsx = a
        .send_request(req, Target::udp(peer.local_addr().unwrap()))
        .await
        .unwrap();
    let (got, from) = recv_udp(&peer, 2000).await.unwrap();
    peer.send_to(
        &ResponseBuilder::new(&got, StatusCode::TRYING).build(),
        from,
    )
    .await
    .unwrap();
    let r1 = tsx.next_response().await.unwrap().unwrap();
    assert_eq!(r1.status(), Some(StatusCode::TRYING));
    peer.send_to(
        &ResponseBuilder::new(&got, StatusCode::ACCEPTED).build(),
        from,
    )
    .await
    .unwrap();
    let r2 = tsx.next_response().await.unwrap().unwrap();
    assert_eq!(r2.status(), Some(StatusCode::ACCEPTED));
}

#[tokio::test]
async fn server_transaction_absorbs_retransmissions() {
    let (b, mut brx, b_udp, _) = tsx_node(50).await;
    let ue = UdpSocket::bind(LOCAL).await.unwrap();
    let req = request(
        Method::Register,
        "UDP",
        &ue.local_addr().unwrap().to_string(),
        "absorb",
    );
    ue.send_to(req.as_bytes(), b_udp).await.unwrap();
    let inc = recv(&mut brx).await;
    let resp = ResponseBuilder::new(&inc.message, StatusCode::UNAUTHORIZED)
        .to_tag("t")
        .build_message()
        .unwrap();
    b.respond(&inc, &resp).await.unwrap();
    let (r1, _) = recv_udp(&ue, 2000).await.unwrap();
    assert_eq!(r1.status(), Some(StatusCode::UNAUTHORIZED));
    // The same request again (a retransmission): the last response comes back,
    // the upper layer sees nothing.
    ue.send_to(req.as_bytes(), b_udp).await.unwrap();
    let (r2, _) = recv_udp(&ue, 2000).await.expect("response re-sent");
    assert_eq!(r2.as_bytes(), r1.as_bytes());
    no_message(&mut brx, 100).await;
    // A second response from the upper layer is refused (already final).
    assert!(b.respond(&inc, &resp).await.is_err());
}

#[tokio::test]
async fn retransmission_before_the_response_is_absorbed_silently() {
    let (b, mut brx, b_udp, _) = tsx_node(50).await;
    let ue = UdpSocket::bind(LOCAL).await.unwrap();
    let req = request(
        Method::Register,
        "UDP",
        &ue.local_addr().unwrap().to_string(),
        "slow",
    );
    ue.send_to(req.as_bytes(), b_udp).await.unwrap();
    let inc = recv(&mut brx).await;
    ue.send_to(req.as_bytes(), b_udp).await.unwrap();
    no_message(&mut brx, 100).await;
    assert!(recv_udp(&ue, 100).await.is_none(), "nothing to re-send yet");
    let resp = ResponseBuilder::new(&inc.message, StatusCode::OK)
        .build_message()
        .unwrap();
    b.respond(&inc, &resp).await.unwrap();
    assert_eq!(
        recv_udp(&ue, 2000).await.unwrap().0.status(),
        Some(StatusCode::OK)
    );
}

#[tokio::test]
async fn tcp_client_transaction_does_not_retransmit() {
    let (a, _arx, _, a_tcp) = tsx_node(20).await;
    let server = TcpListener::bind(LOCAL).await.unwrap();
    let addr = server.local_addr().unwrap();
    let req = request(Method::Options, "TCP", &a_tcp.to_string(), "tcp-tsx");
    let pending = tokio::spawn({
        let a = a.clone();
        async move { a.request(req, Target::tcp(addr)).await }
    });
    let (mut conn, _) = server.accept().await.unwrap();
    let mut buf = vec![0u8; 65536];
    let mut got = Vec::new();
    // Wait well past several T1: exactly one copy must arrive.
    let deadline = tokio::time::Instant::now() + Duration::from_millis(300);
    while let Ok(Ok(n)) = tokio::time::timeout_at(deadline, conn.read(&mut buf)).await {
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    let n = ims_sip_core::framing::check(&got).unwrap().unwrap();
    assert_eq!(n, got.len(), "exactly one request over TCP");
    let req = Message::parse(got).unwrap();
    conn.write_all(&ResponseBuilder::new(&req, StatusCode::OK).build())
        .await
        .unwrap();
    let resp = pending.await.unwrap().unwrap();
    assert_eq!(resp.status(), Some(StatusCode::OK));
}

#[tokio::test]
async fn tcp_transaction_end_to_end() {
    let (a, _arx, _, a_tcp) = tsx_node(20).await;
    let (b, brx, _, b_tcp) = tsx_node(20).await;
    answer_all(b.clone(), brx, StatusCode::OK);
    for i in 0..5 {
        let req = request(
            Method::Register,
            "TCP",
            &a_tcp.to_string(),
            &format!("tcp-e2e-{i}"),
        );
        let resp = a.request(req, Target::tcp(b_tcp)).await.unwrap();
        assert_eq!(resp.status(), Some(StatusCode::OK));
    }
    assert_eq!(a.transport().connection_count(), 1, "one connection reused");
}

#[tokio::test]
async fn connect_failure_is_reported() {
    let (a, _arx, _, a_tcp) = tsx_node(20).await;
    let closed = {
        let l = TcpListener::bind(LOCAL).await.unwrap();
        l.local_addr().unwrap()
    };
    let req = request(Method::Options, "TCP", &a_tcp.to_string(), "refused");
    let err = a.request(req, Target::tcp(closed)).await.unwrap_err();
    assert!(
        matches!(err, TransportError::Io { op: "connect", .. }),
        "{err}"
    );
    assert!(err.is_transport_failure());
}

#[tokio::test]
async fn invite_server_sends_trying_retransmits_final_and_absorbs_ack() {
    let (b, mut brx, b_udp, _) = tsx_node(30).await;
    let ue = UdpSocket::bind(LOCAL).await.unwrap();
    let invite = request(
        Method::Invite,
        "UDP",
        &ue.local_addr().unwrap().to_string(),
        "inv",
    );
    ue.send_to(invite.as_bytes(), b_udp).await.unwrap();
    let (trying, _) = recv_udp(&ue, 2000).await.unwrap();
    assert_eq!(trying.status(), Some(StatusCode::TRYING));
    let inc = recv(&mut brx).await;
    let busy = ResponseBuilder::new(&inc.message, StatusCode::BUSY_HERE)
        .to_tag("b")
        .build_message()
        .unwrap();
    b.respond(&inc, &busy).await.unwrap();
    let (r1, _) = recv_udp(&ue, 2000).await.unwrap();
    assert_eq!(r1.status(), Some(StatusCode::BUSY_HERE));
    // No ACK yet: Timer G retransmits the 486.
    let (r2, _) = recv_udp(&ue, 2000).await.expect("Timer G retransmission");
    assert_eq!(r2.status(), Some(StatusCode::BUSY_HERE));
    // ACK (same branch): absorbed, not delivered, retransmissions stop.
    let ack = ims_sip_core::transaction::requests::build_ack(&invite, &r1);
    ue.send_to(&ack, b_udp).await.unwrap();
    no_message(&mut brx, 100).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    while recv_udp(&ue, 10).await.is_some() {}
    assert!(
        recv_udp(&ue, 300).await.is_none(),
        "retransmissions continued after ACK"
    );
}

#[tokio::test]
async fn stray_responses_are_forwarded_statelessly() {
    let opts = TransactionOptions {
        forward_stray_responses: true,
        ..TransactionOptions::default()
    };
    let (_b, mut brx, b_udp, _) = tsx_node_with(50, opts).await;
    let upstream = UdpSocket::bind(LOCAL).await.unwrap();
    let ue = UdpSocket::bind(LOCAL).await.unwrap();
    let ue_addr = ue.local_addr().unwrap();
    let resp = format!(
        "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP {b_udp};branch=z9hG4bKproxy1\r\n\
         Via: SIP/2.0/UDP ue.invalid:5060;received=127.0.0.1;rport={};branch=z9hG4bKue1\r\n\
         From: <sip:a@ims.test>;tag=1\r\nTo: <sip:a@ims.test>;tag=2\r\nCall-ID: stray\r\n\
         CSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n",
        ue_addr.port()
    );
    upstream.send_to(resp.as_bytes(), b_udp).await.unwrap();
    let (fwd, from) = recv_udp(&ue, 2000).await.expect("forwarded response");
    assert_eq!(from, b_udp);
    assert_eq!(fwd.vias().count(), 1);
    assert_eq!(fwd.top_via().unwrap().unwrap().branch(), Some("z9hG4bKue1"));
    no_message(&mut brx, 50).await;
}

#[tokio::test]
async fn source_routing_answers_the_packet_source() {
    let opts = TransactionOptions {
        response_routing: ResponseRouting::Source,
        ..TransactionOptions::default()
    };
    let (b, brx, b_udp, _) = tsx_node_with(50, opts).await;
    answer_all(b, brx, StatusCode::OK);
    let ue = UdpSocket::bind(LOCAL).await.unwrap();
    // Via names the UE's protected server port (nobody there); no rport.
    let req = request(Method::Register, "UDP", "127.0.0.1:1", "ipsec-like");
    ue.send_to(req.as_bytes(), b_udp).await.unwrap();
    let (r, from) = recv_udp(&ue, 2000)
        .await
        .expect("response to the source port");
    assert_eq!(r.status(), Some(StatusCode::OK));
    assert_eq!(from, b_udp);
}
