//! Overload control of the S-CSCF over real UDP on 127.0.0.1 (RFC 3261 §21.5.4):
//! with `max_pending_requests = 2` and a slow HSS (every MAR takes 1.5 s), two
//! REGISTERs are served, the third is answered 503 with the configured `Retry-After`
//! at once and costs no MAR; a SUBSCRIBE inside a dialog (To tag) is not refused;
//! once the MAAs are in, a new REGISTER is served again.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ims_sip_core::{Message, StatusCode};
use tokio::net::UdpSocket;

use crate::testutil::{FakeHss, RegisterSpec};
use crate::{Scscf, Settings};

async fn recv_within(sock: &UdpSocket, ms: u64) -> Option<Message> {
    let mut buf = vec![0u8; 65536];
    let (n, _) = tokio::time::timeout(Duration::from_millis(ms), sock.recv_from(&mut buf))
        .await
        .ok()?
        .ok()?;
    Message::parse(buf[..n].to_vec()).ok()
}

fn register(via: SocketAddr, n: u32) -> String {
    let mut s = RegisterSpec::alice();
    s.via = via.to_string();
    s.call_id = format!("ov{n}");
    s.impu = format!("sip:u{n}@ims.test");
    s.impi = format!("u{n}@ims.test");
    s.to_text()
}

#[tokio::test]
async fn past_the_limit_new_requests_get_503_with_retry_after() {
    let hss = Arc::new(FakeHss::new(&["sip:alice@ims.test"]));
    hss.set_mar_delay(Duration::from_millis(1500));
    let sock = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let addr = sock.local_addr().expect("addr");
    let mut s = Settings::new(format!("sip:{addr}"));
    s.realm = Some("ims.test".into());
    let scscf = Scscf::new(s, hss.clone(), None)
        .await
        .expect("node")
        .with_overload(2, 11);
    let (_stop, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = scscf
            .run(sock, async {
                let _ = rx.await;
            })
            .await;
    });
    let icscf = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let me = icscf.local_addr().expect("addr");

    let t0 = Instant::now();
    for n in 1..=3 {
        icscf
            .send_to(register(me, n).as_bytes(), addr)
            .await
            .expect("send");
    }
    let r = recv_within(&icscf, 1000).await.expect("an answer");
    assert!(
        t0.elapsed() < Duration::from_millis(1000),
        "refused at once"
    );
    assert_eq!(r.status(), Some(StatusCode::SERVICE_UNAVAILABLE));
    assert_eq!(r.header_str("Retry-After"), Some("11"));
    assert_eq!(r.call_id(), Some("ov3"));

    // A SUBSCRIBE refresh (in dialog: To tag) is served at the limit: not 503.
    let sub = format!(
        "SUBSCRIBE sip:u1@ims.test SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKovsub\r\n\
Max-Forwards: 70\r\nFrom: <sip:u1@ims.test>;tag=p1\r\nTo: <sip:u1@ims.test>;tag=gone\r\n\
Call-ID: ovsub\r\nCSeq: 2 SUBSCRIBE\r\nEvent: reg\r\nExpires: 600\r\n\
Contact: <sip:{me}>\r\nContent-Length: 0\r\n\r\n"
    );
    icscf.send_to(sub.as_bytes(), addr).await.expect("send");
    let r = recv_within(&icscf, 1000).await.expect("SUBSCRIBE answered");
    assert_eq!(r.call_id(), Some("ovsub"));
    assert_ne!(r.status(), Some(StatusCode::SERVICE_UNAVAILABLE));

    // The two admitted REGISTERs get their 401 once the MARs return.
    let mut got = Vec::new();
    while got.len() < 2 {
        let r = recv_within(&icscf, 3000).await.expect("401s");
        got.push((r.call_id().map(str::to_string), r.status()));
    }
    got.sort();
    assert_eq!(
        got,
        vec![
            (Some("ov1".into()), Some(StatusCode::UNAUTHORIZED)),
            (Some("ov2".into()), Some(StatusCode::UNAUTHORIZED)),
        ]
    );
    assert_eq!(hss.mar_log().len(), 2, "no MAR for the refused REGISTER");

    // Places came back: a new REGISTER is served (401 after its MAR), not refused.
    tokio::time::sleep(Duration::from_millis(50)).await;
    icscf
        .send_to(register(me, 4).as_bytes(), addr)
        .await
        .expect("send");
    let r = recv_within(&icscf, 3000)
        .await
        .expect("answer to REGISTER 4");
    assert_eq!(
        (r.call_id(), r.status()),
        (Some("ov4"), Some(StatusCode::UNAUTHORIZED))
    );
}
