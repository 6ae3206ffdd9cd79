//! Overload control of the I-CSCF over real UDP on 127.0.0.1 (RFC 3261 §21.5.4):
//! with `[sip] max_pending_requests = 2` and a silent S-CSCF, two REGISTERs are
//! forwarded, the third is answered 503 with the configured `Retry-After` (no UAR for
//! it), an in-dialog request still passes, and an S-CSCF answer frees a place.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ims_sip_core::builder::ResponseBuilder;
use ims_sip_core::{Message, StatusCode};
use tokio::net::UdpSocket;

use crate::cx::{Assignment, Cx, CxFuture, Uar};
use crate::{Icscf, SipSockets};

struct Named {
    scscf: String,
    uars: AtomicUsize,
}

impl Cx for Named {
    fn uar(&self, _req: Uar) -> CxFuture<'_, Assignment> {
        self.uars.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move { Ok(Assignment::ServerName(self.scscf.clone())) })
    }
    fn lir(&self, _impu: String) -> CxFuture<'_, Assignment> {
        Box::pin(async move { Ok(Assignment::ServerName(self.scscf.clone())) })
    }
}

async fn recv_within(sock: &UdpSocket, ms: u64) -> Option<(Message, SocketAddr)> {
    let mut buf = vec![0u8; 65536];
    let (n, from) = tokio::time::timeout(Duration::from_millis(ms), sock.recv_from(&mut buf))
        .await
        .ok()?
        .ok()?;
    Message::parse(buf[..n].to_vec()).ok().map(|m| (m, from))
}

type Received = Vec<(String, Message, SocketAddr)>;

/// Distinct Call-IDs received (UDP retransmissions once), with a copy, until `done`
/// says so or `ms` have passed.
async fn distinct(sock: &UdpSocket, ms: u64, done: impl Fn(&Received) -> bool) -> Received {
    let end = Instant::now() + Duration::from_millis(ms);
    let mut out: Received = Vec::new();
    loop {
        let left = end.saturating_duration_since(Instant::now()).as_millis() as u64;
        let Some((m, from)) = (if left == 0 || done(&out) {
            None
        } else {
            recv_within(sock, left).await
        }) else {
            return out;
        };
        let id = m.call_id().unwrap_or_default().to_string();
        if !out.iter().any(|(c, _, _)| *c == id) {
            out.push((id, m, from));
        }
    }
}

fn register(pcscf: SocketAddr, icscf: SocketAddr, n: u32) -> String {
    format!(
        "REGISTER sip:ims.test SIP/2.0\r\nVia: SIP/2.0/UDP {pcscf};branch=z9hG4bKov{n}\r\n\
Max-Forwards: 69\r\nRoute: <sip:{icscf};lr>\r\nFrom: <sip:u{n}@ims.test>;tag=f{n}\r\n\
To: <sip:u{n}@ims.test>\r\nCall-ID: ov{n}\r\nCSeq: 1 REGISTER\r\n\
Contact: <sip:u{n}@10.0.0.9:5060>\r\nExpires: 600\r\nPath: <sip:term@{pcscf};lr>\r\n\
Content-Length: 0\r\n\r\n"
    )
}

#[tokio::test]
async fn past_the_limit_new_requests_get_503_with_retry_after() {
    let scscf = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let pcscf = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let (scscf_addr, pcscf_addr) = (
        scscf.local_addr().expect("addr"),
        pcscf.local_addr().expect("addr"),
    );
    let mut cfg = ims_config::IcscfConfig {
        domain: "ims.test".into(),
        ..Default::default()
    };
    cfg.sip.max_pending_requests = 2;
    cfg.sip.overload_retry_after_s = 9;
    cfg.timers.t1_ms = 50;
    cfg.timers.t2_ms = 400;
    let cx = Arc::new(Named {
        scscf: format!("sip:{scscf_addr}"),
        uars: AtomicUsize::new(0),
    });
    let udp = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let icscf = udp.local_addr().expect("addr");
    let (_stop, rx) = tokio::sync::oneshot::channel::<()>();
    let node = Icscf::with_cx(&cfg, cx.clone());
    tokio::spawn(async move {
        let _ = node
            .run(
                SipSockets {
                    udp: vec![udp],
                    tcp: vec![],
                },
                async {
                    let _ = rx.await;
                },
            )
            .await;
    });

    for n in 1..=3 {
        let m = register(pcscf_addr, icscf, n);
        pcscf.send_to(m.as_bytes(), icscf).await.expect("send");
    }
    let (r, _) = recv_within(&pcscf, 1000).await.expect("an answer");
    assert_eq!(r.status(), Some(StatusCode::SERVICE_UNAVAILABLE));
    assert_eq!(r.header_str("Retry-After"), Some("9"));
    assert_eq!(r.call_id(), Some("ov3"), "the third one is over the limit");
    let mut forwarded = distinct(&scscf, 1500, |r| r.len() == 2).await;
    // No third one within the next 200 ms (the budget of the two is 60·T1 = 3 s).
    for (id, m, from) in distinct(&scscf, 200, |_| false).await {
        if !forwarded.iter().any(|f| f.0 == id) {
            forwarded.push((id, m, from));
        }
    }
    let ids: BTreeSet<&str> = forwarded.iter().map(|f| f.0.as_str()).collect();
    assert_eq!(ids, BTreeSet::from(["ov1", "ov2"]));
    assert_eq!(
        cx.uars.load(Ordering::SeqCst),
        2,
        "no UAR for a refused request"
    );

    // In dialog (To tag): never refused. It has no Route beyond this node and asks
    // for an LIR like any request, but whatever the answer, not 503.
    let bye = format!(
        "BYE sip:bob@ims.test SIP/2.0\r\nVia: SIP/2.0/UDP {pcscf_addr};branch=z9hG4bKovbye\r\n\
Max-Forwards: 69\r\nFrom: <sip:u1@ims.test>;tag=f1\r\nTo: <sip:bob@ims.test>;tag=b\r\n\
Call-ID: ovbye\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
    );
    pcscf.send_to(bye.as_bytes(), icscf).await.expect("send");
    let bye_fwd = distinct(&scscf, 1500, |r| r.iter().any(|f| f.0 == "ovbye")).await;
    assert!(
        bye_fwd.iter().any(|f| f.0 == "ovbye"),
        "BYE forwarded at the limit: {:?}",
        bye_fwd.iter().map(|f| &f.0).collect::<Vec<_>>()
    );

    // The S-CSCF answers REGISTER 1: relayed, and its place comes back.
    let (_, req1, from) = forwarded
        .iter()
        .find(|f| f.0 == "ov1")
        .expect("ov1 forwarded");
    let ok = ResponseBuilder::new(req1, StatusCode::OK)
        .to_tag("s")
        .build();
    scscf.send_to(&ok, *from).await.expect("send");
    let (r, _) = recv_within(&pcscf, 1000).await.expect("200 relayed");
    assert_eq!(
        (r.status(), r.call_id()),
        (Some(StatusCode::OK), Some("ov1"))
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let m = register(pcscf_addr, icscf, 4);
    pcscf.send_to(m.as_bytes(), icscf).await.expect("send");
    let more = distinct(&scscf, 1500, |r| r.iter().any(|f| f.0 == "ov4")).await;
    assert!(
        more.iter().any(|f| f.0 == "ov4"),
        "a place came back: {:?}",
        more.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
}
