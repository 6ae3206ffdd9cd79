//! In-process S-CSCF over real UDP on 127.0.0.1 with a fake HSS: the AKA registration
//! story (401 → 200 / 403), reg-event SUBSCRIBE/NOTIFY, and state surviving a restart.

use ims_scscf::sip::{param_of, Message, StartLine};
use ims_scscf::testutil::{answer, nonce_of, FakeHss, RegisterSpec, SET1_RES};
use ims_scscf::{Scscf, ScscfHandle, Settings, Store};
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
    Message::parse(&buf[..n]).unwrap()
}

fn code(m: &Message) -> u16 {
    match m.start {
        StartLine::Response { code, .. } => code,
        StartLine::Request { .. } => 0,
    }
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
    let nonce = nonce_of(r1.header("WWW-Authenticate").unwrap()).unwrap();
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
        .header("WWW-Authenticate")
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
        r2.header("Service-Route"),
        Some(format!("<sip:orig@{};lr>", node.addr).as_str())
    );
    assert_eq!(
        r2.header("P-Associated-URI"),
        Some("<sip:alice@ims.test>, <tel:+15551234>")
    );
    assert_eq!(r2.header("Path"), Some("<sip:term@pcscf.ims.test:5060;lr>"));
    assert_eq!(
        r2.header("Contact"),
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
    assert_eq!(notify.method(), Some("NOTIFY"));
    assert_eq!(
        notify.header("Subscription-State"),
        Some("active;expires=600000")
    );
    let body = String::from_utf8(notify.body.clone()).unwrap();
    assert!(body.contains("state=\"full\""));
    assert!(body.contains(&format!(
        "<uri>sip:alice@{}</uri>",
        ue.local_addr().unwrap()
    )));
    let resp = notify.response(200, "OK", None);
    ue.send_to(&resp.to_bytes(), node.addr).await.unwrap();

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
    assert_eq!(n2.method(), Some("NOTIFY"));
    assert_eq!(n2.header("CSeq"), Some("2 NOTIFY"));
    assert_eq!(
        param_of(n2.header("To").unwrap(), "tag").as_deref(),
        Some("ue-sub")
    );
    assert!(String::from_utf8_lossy(&n2.body).contains("version=\"1\""));
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
    let opt = format!(
        "OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKo\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x>\r\nCall-ID: o1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
        ue.local_addr().unwrap()
    );
    assert_eq!(code(&transact(&ue, node.addr, &opt).await), 200);
    let inv = opt
        .replace("OPTIONS", "INVITE")
        .replace("z9hG4bKo", "z9hG4bKi");
    assert_eq!(code(&transact(&ue, node.addr, &inv).await), 501);
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
