//! In-process S-CSCF over real UDP on 127.0.0.1 with a fake HSS: the AKA registration
//! story (401 → 200 / 403), retransmitted REGISTERs absorbed by the server transaction
//! (one MAR, one SAR, identical answers), reg-event SUBSCRIBE/NOTIFY with NOTIFY
//! retransmission and timeout, and state surviving a restart.

use ims_scscf::testutil::{
    answer, code, nonce_of, ok_to, parse, to_tag, FakeHss, RegisterSpec, SET1_RES,
};
use ims_scscf::{Scscf, ScscfHandle, Settings, Store};
use ims_sip_core::{Message, Method};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::oneshot;

struct Running {
    addr: std::net::SocketAddr,
    handle: ScscfHandle,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

async fn start(db: &str, hss: Arc<FakeHss>) -> Running {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    let mut s = Settings::new(format!("sip:{addr}"));
    s.realm = Some("ims.test".into());
    let store = Store::open(db).await.unwrap();
    let scscf = Scscf::new(s, hss, Some(store)).await.unwrap();
    let handle = scscf.handle();
    let (stop, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        scscf
            .run(sock, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
    });
    Running {
        addr,
        handle,
        stop,
        task,
    }
}

impl Running {
    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap();
    }
}

async fn recv(sock: &UdpSocket) -> Message {
    let mut buf = vec![0u8; 65535];
    let (n, _) = tokio::time::timeout(Duration::from_secs(5), sock.recv_from(&mut buf))
        .await
        .expect("an answer within 5 s")
        .unwrap();
    parse(&buf[..n]).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&buf[..n])))
}

async fn transact(ue: &UdpSocket, to: std::net::SocketAddr, text: &str) -> Message {
    ue.send_to(text.as_bytes(), to).await.unwrap();
    recv(ue).await
}

fn spec(ue: &UdpSocket) -> RegisterSpec {
    let mut s = RegisterSpec::alice();
    s.via = ue.local_addr().unwrap().to_string();
    s.contacts = vec![format!("<sip:alice@{}>", ue.local_addr().unwrap())];
    s
}

async fn register(
    ue: &UdpSocket,
    to: std::net::SocketAddr,
    s: &RegisterSpec,
    password: &[u8],
) -> (Message, Message) {
    let r1 = transact(ue, to, &s.to_text()).await;
    assert_eq!(code(&r1), 401);
    let nonce = nonce_of(r1.header_str("WWW-Authenticate").unwrap()).unwrap();
    let mut s2 = s.clone();
    s2.cseq += 1;
    s2.authorization = Some(answer(&s.impi, "ims.test", &nonce, password, true, 1));
    let r2 = transact(ue, to, &s2.to_text()).await;
    (r1, r2)
}

#[tokio::test]
async fn register_subscribe_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("scscf.db").display());
    let hss = Arc::new(FakeHss::new(&["sip:alice@ims.test", "tel:+15551234"]));
    let node = start(&db, hss.clone()).await;
    let ue = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let s = spec(&ue);

    // wrong RES → 403, no binding
    let (r1, r2) = register(&ue, node.addr, &s, b"wrong-res").await;
    assert!(r1
        .header_str("WWW-Authenticate")
        .unwrap()
        .contains("algorithm=AKAv1-MD5"));
    assert_eq!(code(&r2), 403);
    assert!(node
        .handle
        .core()
        .registration("sip:alice@ims.test")
        .is_none());

    // right RES → 200 with Service-Route, P-Associated-URI, Path
    let mut s = s.clone();
    s.call_id = "reg-2".into();
    let (_, r2) = register(&ue, node.addr, &s, &hex::decode(SET1_RES).unwrap()).await;
    assert_eq!(code(&r2), 200, "{r2:?}");
    assert_eq!(
        r2.header_str("Service-Route"),
        Some(format!("<sip:orig@{};lr>", node.addr).as_str())
    );
    assert_eq!(
        r2.header_str("P-Associated-URI"),
        Some("<sip:alice@ims.test>, <tel:+15551234>")
    );
    assert_eq!(
        r2.header_str("Path"),
        Some("<sip:term@pcscf.ims.test:5060;lr>")
    );
    assert_eq!(
        r2.header_str("Contact"),
        Some(format!("<sip:alice@{}>;expires=600", ue.local_addr().unwrap()).as_str())
    );

    // SUBSCRIBE reg → 200 + NOTIFY
    let sub = format!(
        "SUBSCRIBE sip:alice@ims.test SIP/2.0\r\nVia: SIP/2.0/UDP {ua};branch=z9hG4bKs1;rport\r\nMax-Forwards: 70\r\n\
From: <sip:alice@ims.test>;tag=ue-sub\r\nTo: <sip:alice@ims.test>\r\nCall-ID: sub-1\r\nCSeq: 1 SUBSCRIBE\r\n\
Event: reg\r\nAccept: application/reginfo+xml\r\nContact: <sip:alice@{ua}>\r\nExpires: 600000\r\nContent-Length: 0\r\n\r\n",
        ua = ue.local_addr().unwrap()
    );
    let ok = transact(&ue, node.addr, &sub).await;
    assert_eq!(code(&ok), 200);
    let notify = recv(&ue).await;
    assert_eq!(notify.method(), Some(&Method::Notify));
    assert_eq!(
        notify.header_str("Subscription-State"),
        Some("active;expires=600000")
    );
    let body = String::from_utf8(notify.body().to_vec()).unwrap();
    assert!(body.contains("state=\"full\""));
    assert!(body.contains(&format!(
        "<uri>sip:alice@{}</uri>",
        ue.local_addr().unwrap()
    )));
    ue.send_to(&ok_to(&notify), node.addr).await.unwrap();

    // restart on the same database: the binding and the subscription are still there
    node.stop().await;
    let node = start(&db, hss.clone()).await;
    let reg = node
        .handle
        .core()
        .registration("tel:+15551234")
        .expect("binding survived the restart");
    assert_eq!(reg.contacts.len(), 1);
    assert_eq!(node.handle.core().subscriptions().len(), 1);

    // a re-registration after the restart is a RE_REGISTRATION and NOTIFYs the old dialog
    let mut s4 = s.clone();
    s4.call_id = "reg-3".into();
    let (_, r) = register(&ue, node.addr, &s4, &hex::decode(SET1_RES).unwrap()).await;
    assert_eq!(code(&r), 200);
    let n2 = recv(&ue).await;
    assert_eq!(n2.method(), Some(&Method::Notify));
    assert_eq!(n2.header_str("CSeq"), Some("2 NOTIFY"));
    assert_eq!(to_tag(&n2).as_deref(), Some("ue-sub"));
    assert!(String::from_utf8_lossy(n2.body()).contains("version=\"1\""));
    ue.send_to(&ok_to(&n2), node.addr).await.unwrap();
    assert_eq!(
        hss.sar_log().last().unwrap().assignment,
        ims_scscf::ServerAssignmentType::ReRegistration
    );
    node.stop().await;
}

#[tokio::test]
async fn garbage_and_unknown_methods_do_not_stop_the_node() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("scscf.db").display());
    let hss = Arc::new(FakeHss::new(&["sip:alice@ims.test"]));
    let node = start(&db, hss).await;
    let ue = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    ue.send_to(b"\x00\x01garbage\r\n\r\n", node.addr)
        .await
        .unwrap();
    // the transport answers what it cannot parse with a bare 400 (no Via to route by:
    // back to the source)
    let mut buf = vec![0u8; 65535];
    let (n, _) = tokio::time::timeout(Duration::from_secs(5), ue.recv_from(&mut buf))
        .await
        .expect("a 400 within 5 s")
        .unwrap();
    assert!(
        buf[..n].starts_with(b"SIP/2.0 400 "),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    let opt = format!(
        "OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKo\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x>\r\nCall-ID: o1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
        ue.local_addr().unwrap()
    );
    assert_eq!(code(&transact(&ue, node.addr, &opt).await), 200);
    let inv = opt
        .replace("OPTIONS", "INVITE")
        .replace("z9hG4bKo", "z9hG4bKi");
    let r = transact(&ue, node.addr, &inv).await;
    assert_eq!(code(&r), 501);
    // the INVITE server transaction retransmits the 501 until it is ACKed (RFC 3261 §17.2.1)
    let ack = inv
        .replace("INVITE sip:x", "ACK sip:x")
        .replace("1 INVITE", "1 ACK")
        .replace(
            "To: <sip:x>",
            &format!("To: <sip:x>;tag={}", to_tag(&r).unwrap_or_default()),
        );
    ue.send_to(ack.as_bytes(), node.addr).await.unwrap();
    // the registrar still works
    let s = spec(&ue);
    let r = transact(&ue, node.addr, &s.to_text()).await;
    assert_eq!(code(&r), 401);
    node.stop().await;
}

#[tokio::test]
async fn register_over_tcp_answers_on_the_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let hss = Arc::new(FakeHss::new(&["sip:alice@ims.test"]));
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let taddr = tcp.local_addr().unwrap();
    let mut s = Settings::new(format!("sip:{}", udp.local_addr().unwrap()));
    s.realm = Some("ims.test".into());
    let scscf = Scscf::new(s, hss, None).await.unwrap();
    let (stop, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(scscf.run_with_tcp(udp, Some(tcp), async move {
        let _ = rx.await;
    }));
    let mut conn = tokio::net::TcpStream::connect(taddr).await.unwrap();
    let mut spec = RegisterSpec::alice();
    spec.via = conn.local_addr().unwrap().to_string();
    // two requests in one write, with a CRLF keep-alive in front: framing by Content-Length
    let mut second = spec.clone();
    second.call_id = "reg-tcp-2".into();
    let both = format!("\r\n\r\n{}{}", spec.to_text(), second.to_text());
    conn.write_all(both.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 8192];
    while got.windows(12).filter(|w| w == b"SIP/2.0 401 ").count() < 2 {
        let n = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf))
            .await
            .expect("answers on the same connection")
            .unwrap();
        assert!(n > 0, "connection closed early");
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got);
    assert!(text.contains("Call-ID: reg-alice-1"));
    assert!(text.contains("Call-ID: reg-tcp-2"));
    let _ = stop.send(());
    task.await.unwrap().unwrap();
}

/// RFC 3261 §17.2.2: a REGISTER retransmitted with the same branch — while its MAR is
/// still out, and after the answer — never reaches the registrar twice: one MAR, one
/// SAR, and every copy gets the very same 401 / 200.
#[tokio::test]
async fn retransmitted_register_is_answered_from_the_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("scscf.db").display());
    let hss = Arc::new(FakeHss::new(&["sip:alice@ims.test"]));
    hss.set_mar_delay(Duration::from_millis(300));
    let node = start(&db, hss.clone()).await;
    let ue = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let s = spec(&ue);
    let text = s.to_text();

    // three copies while the MAR is out: absorbed, exactly one 401 comes back
    for _ in 0..3 {
        ue.send_to(text.as_bytes(), node.addr).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let r1 = recv(&ue).await;
    assert_eq!(code(&r1), 401);
    let mut buf = vec![0u8; 65535];
    assert!(
        tokio::time::timeout(Duration::from_millis(400), ue.recv_from(&mut buf))
            .await
            .is_err(),
        "copies that arrived during the MAR got no second answer"
    );
    // a copy after the answer: the same 401 again, byte for byte (same nonce)
    let again = transact(&ue, node.addr, &text).await;
    assert_eq!(again.as_bytes(), r1.as_bytes());
    assert_eq!(hss.mar_log().len(), 1, "one MAR for all copies");

    // the answer, sent twice: one SAR, the same 200 twice
    let nonce = nonce_of(r1.header_str("WWW-Authenticate").unwrap()).unwrap();
    let mut s2 = s.clone();
    s2.cseq += 1;
    s2.authorization = Some(answer(
        &s.impi,
        "ims.test",
        &nonce,
        &hex::decode(SET1_RES).unwrap(),
        true,
        1,
    ));
    let text2 = s2.to_text();
    let ok = transact(&ue, node.addr, &text2).await;
    assert_eq!(code(&ok), 200, "{ok:?}");
    let ok2 = transact(&ue, node.addr, &text2).await;
    assert_eq!(ok2.as_bytes(), ok.as_bytes());
    assert_eq!(hss.sar_log().len(), 1, "one SAR for both copies");
    assert_eq!(hss.mar_log().len(), 1);
    assert!(node
        .handle
        .core()
        .registration("sip:alice@ims.test")
        .is_some());

    // a SUBSCRIBE sent twice: the same 200, and one NOTIFY (a second run through the
    // notifier would send CSeq 2)
    let sub = format!(
        "SUBSCRIBE sip:alice@ims.test SIP/2.0\r\nVia: SIP/2.0/UDP {ua};branch=z9hG4bKs5;rport\r\nMax-Forwards: 70\r\n\
From: <sip:alice@ims.test>;tag=ue-sub\r\nTo: <sip:alice@ims.test>\r\nCall-ID: sub-5\r\nCSeq: 1 SUBSCRIBE\r\n\
Event: reg\r\nContact: <sip:alice@{ua}>\r\nExpires: 3600\r\nContent-Length: 0\r\n\r\n",
        ua = ue.local_addr().unwrap()
    );
    let sub_ok = transact(&ue, node.addr, &sub).await;
    assert_eq!(code(&sub_ok), 200);
    let n1 = recv(&ue).await;
    assert_eq!(n1.header_str("CSeq"), Some("1 NOTIFY"));
    ue.send_to(&ok_to(&n1), node.addr).await.unwrap();
    let sub_again = transact(&ue, node.addr, &sub).await;
    assert_eq!(sub_again.as_bytes(), sub_ok.as_bytes());
    assert!(
        tokio::time::timeout(Duration::from_millis(700), ue.recv_from(&mut buf))
            .await
            .is_err(),
        "no second NOTIFY for the retransmitted SUBSCRIBE"
    );
    node.stop().await;
}

/// RFC 3261 §17.1.2 / RFC 6665 §4.2.2: an unanswered NOTIFY is retransmitted over UDP
/// (Timer E) and, after Timer F, its subscription is removed.
#[tokio::test]
async fn unanswered_notify_is_retransmitted_then_ends_the_subscription() {
    let hss = Arc::new(FakeHss::new(&["sip:alice@ims.test"]));
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    let mut settings = Settings::new(format!("sip:{addr}"));
    settings.realm = Some("ims.test".into());
    let timers = ims_scscf::SipTimers {
        t1: Duration::from_millis(40),
        t2: Duration::from_millis(160),
        t4: Duration::from_millis(200),
    };
    let scscf = Scscf::new(settings, hss, None)
        .await
        .unwrap()
        .with_timers(timers);
    let handle = scscf.handle();
    let (stop, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(scscf.run(sock, async move {
        let _ = rx.await;
    }));
    let ue = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (_, ok) = register(&ue, addr, &spec(&ue), &hex::decode(SET1_RES).unwrap()).await;
    assert_eq!(code(&ok), 200);
    let sub = format!(
        "SUBSCRIBE sip:alice@ims.test SIP/2.0\r\nVia: SIP/2.0/UDP {ua};branch=z9hG4bKs9;rport\r\nMax-Forwards: 70\r\n\
From: <sip:alice@ims.test>;tag=ue-sub\r\nTo: <sip:alice@ims.test>\r\nCall-ID: sub-9\r\nCSeq: 1 SUBSCRIBE\r\n\
Event: reg\r\nContact: <sip:alice@{ua}>\r\nExpires: 3600\r\nContent-Length: 0\r\n\r\n",
        ua = ue.local_addr().unwrap()
    );
    assert_eq!(code(&transact(&ue, addr, &sub).await), 200);
    assert_eq!(handle.core().subscriptions().len(), 1);
    let first = recv(&ue).await;
    assert_eq!(first.method(), Some(&Method::Notify));
    let again = recv(&ue).await;
    assert_eq!(again.as_bytes(), first.as_bytes(), "a retransmission");
    // Timer F = 64·T1 = 2.56 s; then the subscription is gone
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !handle.core().subscriptions().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "subscription removed after Timer F"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = stop.send(());
    task.await.unwrap().unwrap();
}

/// The next response, skipping NOTIFY retransmissions that arrive in between.
async fn recv_response(sock: &UdpSocket) -> Message {
    loop {
        let m = recv(sock).await;
        if m.is_response() {
            return m;
        }
    }
}

/// One NOTIFY in flight per subscription: the re-registration's NOTIFY (CSeq 2) waits
/// until the first one (CSeq 1) has its final response, so CSeqs reach the subscriber in
/// order (RFC 3261 §12.2.2).
#[tokio::test]
async fn notifies_of_one_subscription_go_one_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("scscf.db").display());
    let hss = Arc::new(FakeHss::new(&["sip:alice@ims.test"]));
    let node = start(&db, hss).await;
    let ue = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let s = spec(&ue);
    let (_, ok) = register(&ue, node.addr, &s, &hex::decode(SET1_RES).unwrap()).await;
    assert_eq!(code(&ok), 200);
    let sub = format!(
        "SUBSCRIBE sip:alice@ims.test SIP/2.0\r\nVia: SIP/2.0/UDP {ua};branch=z9hG4bKs7;rport\r\nMax-Forwards: 70\r\n\
From: <sip:alice@ims.test>;tag=ue-sub\r\nTo: <sip:alice@ims.test>\r\nCall-ID: sub-7\r\nCSeq: 1 SUBSCRIBE\r\n\
Event: reg\r\nContact: <sip:alice@{ua}>\r\nExpires: 3600\r\nContent-Length: 0\r\n\r\n",
        ua = ue.local_addr().unwrap()
    );
    assert_eq!(code(&transact(&ue, node.addr, &sub).await), 200);
    let n1 = recv(&ue).await;
    assert_eq!(n1.header_str("CSeq"), Some("1 NOTIFY"));

    // re-register while NOTIFY 1 is unanswered
    let mut s2 = s.clone();
    s2.call_id = "reg-7".into();
    ue.send_to(s2.to_text().as_bytes(), node.addr)
        .await
        .unwrap();
    let r1 = recv_response(&ue).await;
    assert_eq!(code(&r1), 401);
    let nonce = nonce_of(r1.header_str("WWW-Authenticate").unwrap()).unwrap();
    let mut s3 = s2.clone();
    s3.cseq += 1;
    s3.authorization = Some(answer(
        &s.impi,
        "ims.test",
        &nonce,
        &hex::decode(SET1_RES).unwrap(),
        true,
        1,
    ));
    ue.send_to(s3.to_text().as_bytes(), node.addr)
        .await
        .unwrap();
    assert_eq!(code(&recv_response(&ue).await), 200);
    // for a while only NOTIFY 1 (retransmitted) may show up
    let mut buf = vec![0u8; 65535];
    let quiet_until = tokio::time::Instant::now() + Duration::from_millis(700);
    while let Ok(r) = tokio::time::timeout_at(quiet_until, ue.recv_from(&mut buf)).await {
        let (n, _) = r.unwrap();
        let m = parse(&buf[..n]).unwrap();
        assert_eq!(
            m.header_str("CSeq"),
            Some("1 NOTIFY"),
            "nothing but NOTIFY 1 before it is answered"
        );
    }
    // answer NOTIFY 1: NOTIFY 2 follows
    ue.send_to(&ok_to(&n1), node.addr).await.unwrap();
    let n2 = loop {
        let m = recv(&ue).await;
        if m.header_str("CSeq") == Some("2 NOTIFY") {
            break m;
        }
    };
    assert_eq!(n2.method(), Some(&Method::Notify));
    ue.send_to(&ok_to(&n2), node.addr).await.unwrap();
    assert_eq!(node.handle.core().subscriptions().len(), 1);
    node.stop().await;
}
