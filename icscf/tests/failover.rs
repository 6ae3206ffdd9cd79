//! The I-CSCF as a transaction-stateful proxy (TS 24.229 §5.3.1.1, RFC 3261 §16/§17)
//! over real UDP on 127.0.47.0/24 with a fake Cx and plain sockets as P- and S-CSCFs:
//! - failover to the next capable S-CSCF when the first never answers or answers 503
//!   (TS 24.229 §5.3.1.3), with short timers from `[timers]`;
//! - 504 Server Time-out when no S-CSCF answers, inside the upstream Timer F; an
//!   S-CSCF the HSS assigned (Server-Name) is replaced only with capabilities from a
//!   new UAR (REGISTRATION_AND_CAPABILITIES); a lone 503 → 500;
//! - a retransmitted REGISTER is absorbed by the server transaction (one UAR, one
//!   forward) and answered again with the last response;
//! - INVITE: 100 Trying at once, 180 relayed, CANCEL answered and sent on.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
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

/// This file's loopback network (tests/ uses 127.0.31–34).
const NET: &str = "127.0.47";

struct FakeCx {
    answer: Assignment,
    /// The answer to REGISTRATION_AND_CAPABILITIES, when set.
    capabilities: Mutex<Option<Assignment>>,
    delay: Duration,
    uars: AtomicUsize,
    uar_types: Mutex<Vec<UserAuthorizationType>>,
    lirs: AtomicUsize,
}

impl Cx for FakeCx {
    fn uar(&self, req: Uar) -> CxFuture<'_, Assignment> {
        self.uars.fetch_add(1, Ordering::SeqCst);
        self.uar_types.lock().unwrap().push(req.authorization_type);
        let caps = self.capabilities.lock().unwrap().clone();
        let answer = match (req.authorization_type, caps) {
            (UserAuthorizationType::RegistrationAndCapabilities, Some(c)) => c,
            _ => self.answer.clone(),
        };
        Box::pin(async move {
            tokio::time::sleep(self.delay).await;
            Ok::<_, CxFailure>(answer)
        })
    }
    fn lir(&self, _impu: String) -> CxFuture<'_, Assignment> {
        self.lirs.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move { Ok(self.answer.clone()) })
    }
}

struct Peer {
    sock: UdpSocket,
    addr: SocketAddr,
}

impl Peer {
    async fn bind(host: u8) -> Peer {
        let sock = UdpSocket::bind(format!("{NET}.{host}:0")).await.unwrap();
        let addr = sock.local_addr().unwrap();
        Peer { sock, addr }
    }
    fn uri(&self) -> String {
        format!("sip:{}", self.addr)
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
        self.recv_within(5000)
            .await
            .expect("nothing received in 5 s")
    }
    /// Everything received within `ms`.
    async fn drain(&self, ms: u64) -> Vec<Message> {
        let end = Instant::now() + Duration::from_millis(ms);
        let mut out = Vec::new();
        loop {
            let left = end.saturating_duration_since(Instant::now()).as_millis() as u64;
            if left == 0 {
                return out;
            }
            match self.recv_within(left).await {
                Some((m, _)) => out.push(m),
                None => return out,
            }
        }
    }
    async fn send(&self, to: SocketAddr, data: &[u8]) {
        self.sock.send_to(data, to).await.unwrap();
    }
    async fn reply(&self, req: &Message, to: SocketAddr, status: StatusCode) {
        let r = ResponseBuilder::new(req, status).to_tag("s").build();
        self.send(to, &r).await;
    }
}

fn top_branch(m: &Message) -> String {
    m.top_via()
        .and_then(Result::ok)
        .and_then(|v| v.branch().map(str::to_string))
        .unwrap_or_default()
}

struct Lab {
    icscf: SocketAddr,
    pcscf: Peer,
    scscf: Vec<Peer>,
    cx: Arc<FakeCx>,
    _stop: oneshot::Sender<()>,
}

/// An I-CSCF on `{NET}.{host}` with `n` S-CSCFs (all with capability 1), T1 = `t1_ms`.
async fn lab(
    host: u8,
    n: u8,
    answer: impl Fn(&[Peer]) -> Assignment,
    t1_ms: u64,
    cx_delay: Duration,
) -> Lab {
    let mut scscf = Vec::new();
    for i in 0..n {
        scscf.push(Peer::bind(host + 10 + i).await);
    }
    let cfg = ims_config::IcscfConfig {
        domain: "ims.test".into(),
        scscf_fallback: vec![],
        scscf: scscf
            .iter()
            .map(|p| ims_config::ScscfCapabilities {
                uri: p.uri().parse().unwrap(),
                capabilities: vec![1],
            })
            .collect(),
        timers: ims_config::TimersConfig {
            t1_ms,
            t2_ms: t1_ms * 8,
            t4_ms: t1_ms * 10,
        },
        ..Default::default()
    };
    let cx = Arc::new(FakeCx {
        answer: answer(&scscf),
        capabilities: Mutex::new(None),
        delay: cx_delay,
        uars: AtomicUsize::new(0),
        uar_types: Mutex::new(Vec::new()),
        lirs: AtomicUsize::new(0),
    });
    let udp = UdpSocket::bind(format!("{NET}.{host}:0")).await.unwrap();
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
    Lab {
        icscf,
        pcscf: Peer::bind(host + 1).await,
        scscf,
        cx,
        _stop: tx,
    }
}

fn capabilities(_: &[Peer]) -> Assignment {
    Assignment::Capabilities(ServerCapabilities {
        mandatory: vec![1],
        optional: vec![],
        server_names: vec![],
    })
}

fn register(lab: &Lab, branch: &str) -> String {
    let p = lab.pcscf.addr;
    let i = lab.icscf;
    format!(
        "REGISTER sip:ims.test SIP/2.0\r\nVia: SIP/2.0/UDP {p};branch={branch}\r\n\
Via: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bKue1\r\nMax-Forwards: 69\r\n\
Route: <sip:{i};lr>\r\nFrom: <sip:alice@ims.test>;tag=1\r\nTo: <sip:alice@ims.test>\r\n\
Call-ID: {branch}\r\nCSeq: 1 REGISTER\r\nContact: <sip:alice@10.0.0.9:5060>\r\nExpires: 600\r\n\
Path: <sip:term@{p};lr>\r\nContent-Length: 0\r\n\r\n"
    )
}

fn route_of(m: &Message) -> Vec<String> {
    m.header_values_str("Route").map(str::to_string).collect()
}

#[tokio::test]
async fn silent_first_scscf_fails_over_to_the_second() {
    let lab = lab(10, 2, capabilities, 20, Duration::ZERO).await;
    let t0 = Instant::now();
    lab.pcscf
        .send(lab.icscf, register(&lab, "z9hG4bKf1").as_bytes())
        .await;
    // The first S-CSCF gets the REGISTER (and UDP retransmissions) but never answers.
    let (first, _) = lab.scscf[0].recv().await;
    assert_eq!(
        route_of(&first),
        vec![format!("<{};lr>", lab.scscf[0].uri())]
    );
    // Budget 60·T1 = 1.2 s shared by two candidates: the second gets it after ~0.6 s.
    let (second, from) = lab.scscf[1].recv().await;
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(450),
        "failed over after only {took:?}"
    );
    assert_eq!(second.method(), Some(&Method::Register));
    assert_eq!(
        route_of(&second),
        vec![format!("<{};lr>", lab.scscf[1].uri())]
    );
    assert_ne!(
        top_branch(&first),
        top_branch(&second),
        "a new client transaction"
    );
    assert_eq!(second.header_str("Max-Forwards"), Some("68"));
    lab.scscf[1].reply(&second, from, StatusCode::OK).await;
    let (resp, _) = lab.pcscf.recv().await;
    assert_eq!(resp.status(), Some(StatusCode::OK));
    assert_eq!(resp.vias().count(), 2, "the I-CSCF's Via removed");
    assert_eq!(
        lab.cx.uars.load(Ordering::SeqCst),
        1,
        "one UAR for the whole failover"
    );
    let retransmitted = lab.scscf[0].drain(100).await;
    assert!(
        retransmitted
            .iter()
            .all(|m| top_branch(m) == top_branch(&first)),
        "only retransmissions of the first attempt reach the silent S-CSCF"
    );
}

#[tokio::test]
async fn scscf_answering_503_fails_over_at_once() {
    let lab = lab(20, 2, capabilities, 500, Duration::ZERO).await;
    let t0 = Instant::now();
    lab.pcscf
        .send(lab.icscf, register(&lab, "z9hG4bKf2").as_bytes())
        .await;
    let (first, from) = lab.scscf[0].recv().await;
    lab.scscf[0]
        .reply(&first, from, StatusCode::SERVICE_UNAVAILABLE)
        .await;
    let (second, from) = lab.scscf[1].recv().await;
    assert!(
        t0.elapsed() < Duration::from_millis(400),
        "no wait after a 503"
    );
    assert_eq!(
        route_of(&second),
        vec![format!("<{};lr>", lab.scscf[1].uri())]
    );
    lab.scscf[1]
        .reply(&second, from, StatusCode::UNAUTHORIZED)
        .await;
    let (resp, _) = lab.pcscf.recv().await;
    assert_eq!(resp.status(), Some(StatusCode::UNAUTHORIZED));
    assert!(
        lab.pcscf.recv_within(200).await.is_none(),
        "the 503 never reaches the P-CSCF"
    );
}

#[tokio::test]
async fn no_scscf_answers_gives_504_before_upstream_timer_f() {
    let lab = lab(30, 2, capabilities, 50, Duration::ZERO).await;
    let t0 = Instant::now();
    lab.pcscf
        .send(lab.icscf, register(&lab, "z9hG4bKf3").as_bytes())
        .await;
    let (resp, _) = lab.pcscf.recv().await;
    let took = t0.elapsed();
    assert_eq!(resp.status(), Some(StatusCode::SERVER_TIMEOUT));
    assert_eq!(resp.vias().count(), 2);
    // Both were tried, and the answer came before the P-CSCF's Timer F (64·T1).
    assert!(lab.scscf[0].recv_within(10).await.is_some());
    assert!(lab.scscf[1].recv_within(10).await.is_some());
    // Budget 60·T1 = 3 s; the P-CSCF's Timer F is 64·T1 = 3.2 s.
    assert!(
        took >= Duration::from_millis(2500),
        "504 after only {took:?}"
    );
    assert!(
        took < Duration::from_millis(64 * 50),
        "504 after {took:?}: past Timer F"
    );
}

#[tokio::test]
async fn hss_assigned_scscf_is_replaced_only_through_a_new_uar() {
    // Server-Name: the HSS chose. A silent S-CSCF → UAR with
    // REGISTRATION_AND_CAPABILITIES (TS 29.229 §6.3.24); the HSS names it again and
    // gives no capabilities → 504, nothing else tried.
    let lab = lab(
        40,
        2,
        |p| Assignment::ServerName(p[0].uri()),
        20,
        Duration::ZERO,
    )
    .await;
    lab.pcscf
        .send(lab.icscf, register(&lab, "z9hG4bKf4").as_bytes())
        .await;
    let (resp, _) = lab.pcscf.recv().await;
    assert_eq!(resp.status(), Some(StatusCode::SERVER_TIMEOUT));
    assert!(lab.scscf[0].recv_within(10).await.is_some());
    assert!(
        lab.scscf[1].recv_within(100).await.is_none(),
        "no other S-CSCF without capabilities from the HSS"
    );
    assert_eq!(
        *lab.cx.uar_types.lock().unwrap(),
        vec![
            UserAuthorizationType::Registration,
            UserAuthorizationType::RegistrationAndCapabilities
        ]
    );
}

#[tokio::test]
async fn assigned_scscf_silent_capabilities_pick_another() {
    let lab = lab(
        45,
        2,
        |p| Assignment::ServerName(p[0].uri()),
        20,
        Duration::ZERO,
    )
    .await;
    *lab.cx.capabilities.lock().unwrap() = Some(capabilities(&[]));
    let t0 = Instant::now();
    lab.pcscf
        .send(lab.icscf, register(&lab, "z9hG4bKf45").as_bytes())
        .await;
    let (first, _) = lab.scscf[0].recv().await;
    assert_eq!(
        route_of(&first),
        vec![format!("<{};lr>", lab.scscf[0].uri())]
    );
    // The assigned one had half the budget (0.6 s of 1.2 s), then the other.
    let (second, from) = lab.scscf[1].recv().await;
    assert!(t0.elapsed() >= Duration::from_millis(450));
    assert_eq!(
        route_of(&second),
        vec![format!("<{};lr>", lab.scscf[1].uri())]
    );
    lab.scscf[1]
        .reply(&second, from, StatusCode::UNAUTHORIZED)
        .await;
    let (resp, _) = lab.pcscf.recv().await;
    assert_eq!(resp.status(), Some(StatusCode::UNAUTHORIZED));
    assert!(t0.elapsed() < Duration::from_millis(64 * 20));
}

#[tokio::test]
async fn a_lone_503_becomes_500_with_retry_after() {
    let lab = lab(
        50,
        1,
        |p| Assignment::ServerName(p[0].uri()),
        500,
        Duration::ZERO,
    )
    .await;
    lab.pcscf
        .send(lab.icscf, register(&lab, "z9hG4bKf5").as_bytes())
        .await;
    let (req, from) = lab.scscf[0].recv().await;
    let r = ResponseBuilder::new(&req, StatusCode::SERVICE_UNAVAILABLE)
        .header("Retry-After", 7)
        .build();
    lab.scscf[0].send(from, &r).await;
    let (resp, _) = lab.pcscf.recv().await;
    assert_eq!(resp.status(), Some(StatusCode::SERVER_INTERNAL_ERROR));
    assert_eq!(resp.header_str("Retry-After"), Some("7"));
}

#[tokio::test]
async fn retransmitted_register_is_absorbed() {
    // The UAR takes 300 ms: the P-CSCF's retransmissions arrive meanwhile.
    let lab = lab(60, 1, capabilities, 500, Duration::from_millis(300)).await;
    let req = register(&lab, "z9hG4bKf6");
    lab.pcscf.send(lab.icscf, req.as_bytes()).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    lab.pcscf.send(lab.icscf, req.as_bytes()).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    lab.pcscf.send(lab.icscf, req.as_bytes()).await;
    let (fwd, from) = lab.scscf[0].recv().await;
    lab.scscf[0].reply(&fwd, from, StatusCode::OK).await;
    let (resp, _) = lab.pcscf.recv().await;
    assert_eq!(resp.status(), Some(StatusCode::OK));
    // A retransmission after the answer gets the same 200 again from the server
    // transaction, without a new UAR or forward.
    lab.pcscf.send(lab.icscf, req.as_bytes()).await;
    let (again, _) = lab.pcscf.recv().await;
    assert_eq!(again.status(), Some(StatusCode::OK));
    assert_eq!(
        again.as_bytes(),
        resp.as_bytes(),
        "the same response resent"
    );
    assert!(lab.scscf[0].drain(300).await.is_empty(), "one forward only");
    assert_eq!(lab.cx.uars.load(Ordering::SeqCst), 1, "one UAR only");
    assert!(
        lab.pcscf.recv_within(100).await.is_none(),
        "no extra responses"
    );
}

#[tokio::test]
async fn invite_gets_trying_ringing_and_cancel_goes_on() {
    let lab = lab(
        70,
        1,
        |p| Assignment::ServerName(p[0].uri()),
        500,
        Duration::ZERO,
    )
    .await;
    let p = lab.pcscf.addr;
    let invite = format!(
        "INVITE sip:bob@ims.test SIP/2.0\r\nVia: SIP/2.0/UDP {p};branch=z9hG4bKinv1\r\nMax-Forwards: 70\r\n\
From: <sip:alice@ims.test>;tag=a1\r\nTo: <sip:bob@ims.test>\r\nCall-ID: inv1\r\nCSeq: 1 INVITE\r\n\
Contact: <sip:alice@10.0.0.9>\r\nContent-Length: 0\r\n\r\n"
    );
    lab.pcscf.send(lab.icscf, invite.as_bytes()).await;
    let (trying, _) = lab.pcscf.recv().await;
    assert_eq!(trying.status(), Some(StatusCode::TRYING));
    let (fwd, from) = lab.scscf[0].recv().await;
    assert_eq!(fwd.method(), Some(&Method::Invite));
    assert_eq!(lab.cx.lirs.load(Ordering::SeqCst), 1);
    lab.scscf[0].reply(&fwd, from, StatusCode::RINGING).await;
    let (ringing, _) = lab.pcscf.recv().await;
    assert_eq!(ringing.status(), Some(StatusCode::RINGING));
    let cancel = invite
        .replace("INVITE sip:", "CANCEL sip:")
        .replace("1 INVITE", "1 CANCEL");
    lab.pcscf.send(lab.icscf, cancel.as_bytes()).await;
    let (ok, _) = lab.pcscf.recv().await;
    assert_eq!(ok.status(), Some(StatusCode::OK));
    assert_eq!(ok.header_str("CSeq"), Some("1 CANCEL"));
    let (c, from) = lab.scscf[0].recv().await;
    assert_eq!(c.method(), Some(&Method::Cancel));
    assert_eq!(
        top_branch(&c),
        top_branch(&fwd),
        "CANCEL follows the INVITE's branch"
    );
    lab.scscf[0].reply(&c, from, StatusCode::OK).await;
    lab.scscf[0]
        .reply(&fwd, from, StatusCode::REQUEST_TERMINATED)
        .await;
    let (terminated, _) = lab.pcscf.recv().await;
    assert_eq!(terminated.status(), Some(StatusCode::REQUEST_TERMINATED));
    // The I-CSCF's client transaction ACKs the 487 itself.
    let (ack, _) = lab.scscf[0].recv().await;
    assert_eq!(ack.method(), Some(&Method::Ack));
}

#[tokio::test]
async fn slow_hss_is_answered_within_the_transaction_timer() {
    // The HSS never answers and `diameter.request_timeout_ms` (default) is longer
    // than the forwarding budget (60·T1 = 1.2 s): the 5xx still comes in time.
    let lab = lab(100, 1, capabilities, 20, Duration::from_secs(3600)).await;
    let t0 = Instant::now();
    lab.pcscf
        .send(lab.icscf, register(&lab, "z9hG4bKf9").as_bytes())
        .await;
    let (resp, _) = lab.pcscf.recv().await;
    let took = t0.elapsed();
    assert_eq!(resp.status(), Some(StatusCode::SERVER_TIMEOUT));
    assert_eq!(resp.header_str("Retry-After"), Some("30"));
    assert!(
        took < Duration::from_millis(64 * 20),
        "answered after {took:?}"
    );
    assert!(lab.scscf[0].recv_within(50).await.is_none());
}
