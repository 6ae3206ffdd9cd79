//! The P-CSCF as a transaction-stateful proxy (RFC 3261 §16, §17) over real UDP on
//! loopback: a UE's retransmitted REGISTER is absorbed by the server transaction (the
//! next hop sees only the P-CSCF's own client retransmissions, one branch), a next hop
//! that never answers gets the UE a 504 after Timer F (from `[timers]`), and an INVITE
//! gets 100 Trying at once.

mod common;

use std::time::{Duration, Instant};

use common::*;

fn fast_timers(cfg: &mut ims_config::PcscfConfig) {
    cfg.timers.t1_ms = 50;
    cfg.timers.t2_ms = 200;
}

#[tokio::test]
async fn silent_next_hop_gives_504_and_retransmissions_are_absorbed() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("p.sqlite").display());
    let core = Peer::new().await; // never answers
    let ue = Peer::new().await;
    let p = start_pcscf_with(core.addr, &db, 0, fast_timers, None).await;
    let started = Instant::now();
    let reg = register(ue.addr, p.udp, 1, 600, "");
    ue.send(p.udp, &reg).await;
    tokio::time::sleep(Duration::from_millis(120)).await;
    ue.send(p.udp, &reg).await; // the UE's retransmission
                                // Everything the core gets carries one branch: the P-CSCF's client transaction.
    let mut branches = Vec::new();
    let answer = loop {
        tokio::select! {
            got = core.recv_within(6_000) => {
                let Some((m, _)) = got else { panic!("core saw nothing") };
                branches.push(m.list("via")[0].clone());
            }
            got = ue.recv_within(6_000) => break got,
        }
    };
    let (r, _) = answer.expect("the UE got an answer");
    assert_eq!(r.code(), Some(504), "Timer F at the P-CSCF: 504 to the UE");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(64 * 50 - 200) && waited < Duration::from_secs(6),
        "504 after Timer F = 64*T1 (3.2 s), got {waited:?}"
    );
    assert!(
        branches.len() >= 3,
        "UDP retransmissions by the P-CSCF: {branches:?}"
    );
    branches.dedup();
    assert_eq!(branches.len(), 1, "one client transaction: {branches:?}");
    assert!(ue.recv_within(300).await.is_none(), "one final response");
    p.stop().await;
}

#[tokio::test]
async fn invite_gets_100_trying_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("p.sqlite").display());
    let core = Peer::new().await;
    let ue = Peer::new().await;
    let p = start_pcscf_with(core.addr, &db, 0, fast_timers, None).await;
    let invite = format!(
        "INVITE sip:bob@ims.test SIP/2.0\r\n\
Via: SIP/2.0/UDP {ue};branch=z9hG4bKinv1;rport\r\n\
Max-Forwards: 70\r\n\
From: <sip:alice@ims.test>;tag=i1\r\n\
To: <sip:bob@ims.test>\r\n\
Call-ID: inv1@{ue}\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:alice@{ue}>\r\n\
Content-Length: 0\r\n\r\n",
        ue = ue.addr
    );
    ue.send(p.udp, &invite).await;
    let (r, _) = ue.recv_within(500).await.expect("100 Trying");
    assert_eq!(r.code(), Some(100));
    // Not registered: refused, and the refusal follows the 100.
    let (r, _) = ue.recv().await;
    assert_eq!(r.code(), Some(403));
    assert!(core.recv_within(200).await.is_none(), "nothing forwarded");
    p.stop().await;
}
