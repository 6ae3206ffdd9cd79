//! The I-CSCF over real UDP on loopback with an injected fake Cx: S-CSCF by Server-Name,
//! by capabilities, by fallback; Cx errors as SIP answers; a silent HSS answered with
//! 504 + Retry-After inside the timeout; LIR for terminating requests.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ims_icscf::cx::{
    Assignment, Cx, CxFailure, CxFuture, ServerCapabilities, Uar, UserAuthorizationType,
};
use ims_icscf::{Icscf, SipSockets};
use ims_sip_core::builder::ResponseBuilder;
use ims_sip_core::{Message, Method, StatusCode};
use tokio::net::UdpSocket;
use tokio::sync::oneshot;

type Answer = Arc<dyn Fn() -> Result<Assignment, CxFailure> + Send + Sync>;

struct FakeCx {
    answer: Answer,
    slow: bool,
    last_uar: Mutex<Option<Uar>>,
    last_lir: Mutex<Option<String>>,
}

impl Cx for FakeCx {
    fn uar(&self, req: Uar) -> CxFuture<'_, Assignment> {
        *self.last_uar.lock().unwrap() = Some(req);
        Box::pin(async move {
            if self.slow {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
            (self.answer)()
        })
    }
    fn lir(&self, impu: String) -> CxFuture<'_, Assignment> {
        *self.last_lir.lock().unwrap() = Some(impu);
        Box::pin(async move { (self.answer)() })
    }
}

struct Peer {
    sock: UdpSocket,
    addr: SocketAddr,
}

impl Peer {
    async fn new() -> Peer {
        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = sock.local_addr().unwrap();
        Peer { sock, addr }
    }
    async fn recv_within(&self, ms: u64) -> Option<(Message, SocketAddr)> {
        let mut buf = vec![0u8; 65536];
        let (n, from) =
            tokio::time::timeout(Duration::from_millis(ms), self.sock.recv_from(&mut buf))
                .await
                .ok()?
                .ok()?;
        Some((Message::parse(buf[..n].to_vec()).unwrap(), from))
    }
    async fn recv(&self) -> (Message, SocketAddr) {
        self.recv_within(3000).await.expect("timed out")
    }
}

struct Setup {
    icscf: SocketAddr,
    pcscf: Peer,
    scscf: Vec<Peer>,
    fallback: Peer,
    cx: Arc<FakeCx>,
    _stop: oneshot::Sender<()>,
}

async fn setup(answer: Answer, slow: bool) -> Setup {
    let scscf = vec![Peer::new().await, Peer::new().await];
    let fallback = Peer::new().await;
    let mut diameter = ims_config::IcscfConfig::default().diameter;
    diameter.request_timeout_ms = 300;
    let cfg = ims_config::IcscfConfig {
        domain: "ims.test".into(),
        diameter,
        scscf_fallback: vec![format!("sip:{}", fallback.addr).parse().unwrap()],
        scscf: vec![
            ims_config::ScscfCapabilities {
                uri: format!("sip:{}", scscf[0].addr).parse().unwrap(),
                capabilities: vec![1],
            },
            ims_config::ScscfCapabilities {
                uri: format!("sip:{}", scscf[1].addr).parse().unwrap(),
                capabilities: vec![1, 2],
            },
        ],
        ..Default::default()
    };
    let cx = Arc::new(FakeCx {
        answer,
        slow,
        last_uar: Mutex::new(None),
        last_lir: Mutex::new(None),
    });
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let icscf = udp.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let node = Icscf::with_cx(&cfg, cx.clone());
    tokio::spawn(async move {
        node.run(
            SipSockets {
                udp: vec![udp],
                tcp: vec![],
            },
            async {
                let _ = rx.await;
            },
        )
        .await
        .unwrap();
    });
    Setup {
        icscf,
        pcscf: Peer::new().await,
        scscf,
        fallback,
        cx,
        _stop: tx,
    }
}

fn register(p: SocketAddr, icscf: SocketAddr, expires: u32, auth: bool) -> String {
    let auth = if auth {
        "Authorization: Digest username=\"001010000000001@ims.test\", realm=\"ims.test\", nonce=\"\", uri=\"sip:ims.test\", response=\"\"\r\n"
    } else {
        ""
    };
    format!(
        "REGISTER sip:ims.test SIP/2.0\r\nVia: SIP/2.0/UDP {p};branch=z9hG4bKp1\r\n\
Via: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bKue1\r\nMax-Forwards: 69\r\n\
Route: <sip:{icscf};lr>\r\nFrom: <sip:alice@ims.test>;tag=1\r\nTo: <sip:alice@ims.test>\r\n\
Call-ID: c1\r\nCSeq: 1 REGISTER\r\nContact: <sip:alice@10.0.0.9:5060>\r\nExpires: {expires}\r\n\
P-Visited-Network-ID: \"visited.test\"\r\nPath: <sip:term@{p};lr>\r\n{auth}Content-Length: 0\r\n\r\n"
    )
}

async fn send(p: &Peer, to: SocketAddr, text: &str) {
    p.sock.send_to(text.as_bytes(), to).await.unwrap();
}

#[tokio::test]
async fn server_name_route_and_response_relay() {
    let s = setup(
        Arc::new(|| Ok(Assignment::ServerName(String::new()))),
        false,
    )
    .await;
    // Empty Server-Name → fallback; then real Server-Name below.
    send(
        &s.pcscf,
        s.icscf,
        &register(s.pcscf.addr, s.icscf, 600, true),
    )
    .await;
    let (req, _) = s.fallback.recv().await;
    assert_eq!(req.method(), Some(&Method::Register));

    let named = Arc::new(Mutex::new(String::new()));
    let n2 = named.clone();
    let s2 = setup(
        Arc::new(move || Ok(Assignment::ServerName(n2.lock().unwrap().clone()))),
        false,
    )
    .await;
    *named.lock().unwrap() = format!("sip:{}", s2.scscf[0].addr);
    send(
        &s2.pcscf,
        s2.icscf,
        &register(s2.pcscf.addr, s2.icscf, 600, true),
    )
    .await;
    let (req, from) = s2.scscf[0].recv().await;
    assert_eq!(
        req.header_values_str("Route").collect::<Vec<_>>(),
        vec![format!("<sip:{};lr>", s2.scscf[0].addr)]
    );
    assert_eq!(req.header_str("Max-Forwards"), Some("68"));
    assert_eq!(req.vias().count(), 3);
    assert!(req.header_str("Path").is_some(), "Path forwarded untouched");
    let uar = s2.cx.last_uar.lock().unwrap().clone().unwrap();
    assert_eq!(uar.user_name, "001010000000001@ims.test");
    assert_eq!(uar.public_identity, "sip:alice@ims.test");
    assert_eq!(uar.visited_network, "visited.test");
    assert_eq!(uar.authorization_type, UserAuthorizationType::Registration);
    // S-CSCF answers: the response goes back to the P-CSCF without the I-CSCF's Via.
    let r = ResponseBuilder::new(&req, StatusCode::UNAUTHORIZED)
        .to_tag("s")
        .build();
    s2.scscf[0].sock.send_to(&r, from).await.unwrap();
    let (resp, _) = s2.pcscf.recv().await;
    assert_eq!(resp.status(), Some(StatusCode::UNAUTHORIZED));
    assert_eq!(resp.vias().count(), 2);
}

#[tokio::test]
async fn capabilities_select_the_matching_scscf() {
    let s = setup(
        Arc::new(|| {
            Ok(Assignment::Capabilities(ServerCapabilities {
                mandatory: vec![2],
                optional: vec![],
                server_names: vec![],
            }))
        }),
        false,
    )
    .await;
    send(
        &s.pcscf,
        s.icscf,
        &register(s.pcscf.addr, s.icscf, 600, false),
    )
    .await;
    let (req, _) = s.scscf[1].recv().await;
    assert_eq!(req.method(), Some(&Method::Register));
    let uar = s.cx.last_uar.lock().unwrap().clone().unwrap();
    assert_eq!(uar.user_name, "alice@ims.test", "IMPI derived from To");
}

#[tokio::test]
async fn nothing_in_the_uaa_uses_the_fallback_and_dereg_type() {
    let s = setup(Arc::new(|| Ok(Assignment::Nothing)), false).await;
    send(&s.pcscf, s.icscf, &register(s.pcscf.addr, s.icscf, 0, true)).await;
    let (req, _) = s.fallback.recv().await;
    assert_eq!(req.method(), Some(&Method::Register));
    let uar = s.cx.last_uar.lock().unwrap().clone().unwrap();
    assert_eq!(
        uar.authorization_type,
        UserAuthorizationType::DeRegistration
    );
}

#[tokio::test]
async fn user_unknown_is_403() {
    let s = setup(Arc::new(|| Err(CxFailure::UserUnknown)), false).await;
    send(
        &s.pcscf,
        s.icscf,
        &register(s.pcscf.addr, s.icscf, 600, true),
    )
    .await;
    let (resp, _) = s.pcscf.recv().await;
    assert_eq!(resp.status(), Some(StatusCode::FORBIDDEN));
    assert!(s.scscf[0].recv_within(200).await.is_none());
}

#[tokio::test]
async fn silent_hss_gets_504_with_retry_after_in_time() {
    let s = setup(Arc::new(|| Ok(Assignment::Nothing)), true).await;
    let t0 = Instant::now();
    send(
        &s.pcscf,
        s.icscf,
        &register(s.pcscf.addr, s.icscf, 600, true),
    )
    .await;
    let (resp, _) = s.pcscf.recv().await;
    let took = t0.elapsed();
    assert_eq!(resp.status(), Some(StatusCode::SERVER_TIMEOUT));
    assert_eq!(resp.header_str("Retry-After"), Some("30"));
    assert!(took < Duration::from_secs(2), "answered after {took:?}");
    assert!(
        took >= Duration::from_millis(250),
        "answered before the timeout: {took:?}"
    );
}

#[tokio::test]
async fn terminating_requests_use_lir() {
    let invite = |p: SocketAddr| {
        format!(
            "MESSAGE sip:bob@ims.test SIP/2.0\r\nVia: SIP/2.0/UDP {p};branch=z9hG4bKt1\r\nMax-Forwards: 70\r\n\
From: <sip:alice@ims.test>;tag=1\r\nTo: <sip:bob@ims.test>\r\nCall-ID: t1\r\nCSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n"
        )
    };
    let s = setup(Arc::new(|| Err(CxFailure::UserUnknown)), false).await;
    send(&s.pcscf, s.icscf, &invite(s.pcscf.addr)).await;
    assert_eq!(s.pcscf.recv().await.0.status(), Some(StatusCode::NOT_FOUND));
    assert_eq!(
        s.cx.last_lir.lock().unwrap().clone().unwrap(),
        "sip:bob@ims.test"
    );

    let s = setup(Arc::new(|| Err(CxFailure::IdentityNotRegistered)), false).await;
    send(&s.pcscf, s.icscf, &invite(s.pcscf.addr)).await;
    assert_eq!(
        s.pcscf.recv().await.0.status(),
        Some(StatusCode::TEMPORARILY_UNAVAILABLE)
    );

    let s = setup(
        Arc::new(|| Err(CxFailure::Unavailable("down".into()))),
        false,
    )
    .await;
    send(&s.pcscf, s.icscf, &invite(s.pcscf.addr)).await;
    let (r, _) = s.pcscf.recv().await;
    assert_eq!(r.status(), Some(StatusCode::SERVER_INTERNAL_ERROR));
    assert!(r.header_str("Retry-After").is_some());

    let named = Arc::new(Mutex::new(String::new()));
    let n2 = named.clone();
    let s = setup(
        Arc::new(move || Ok(Assignment::ServerName(n2.lock().unwrap().clone()))),
        false,
    )
    .await;
    *named.lock().unwrap() = format!("sip:{}", s.scscf[1].addr);
    send(&s.pcscf, s.icscf, &invite(s.pcscf.addr)).await;
    let (req, _) = s.scscf[1].recv().await;
    assert_eq!(req.method(), Some(&Method::Message));
    assert_eq!(req.request_uri_str(), Some("sip:bob@ims.test"));
}
