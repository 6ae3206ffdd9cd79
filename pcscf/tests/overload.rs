//! Overload control of the P-CSCF (RFC 3261 §21.5.4, §20.33) over real UDP on
//! loopback: with `[sip] max_pending_requests = 5` and an I-CSCF that does not answer,
//! five new REGISTERs are forwarded and the next ones are answered
//! `503 Service Unavailable` with the configured `Retry-After`, in their server
//! transaction (a retransmission gets the same 503 and is not forwarded). Responses
//! and in-dialog requests pass while at the limit; a place comes back when the
//! upstream answers, and all of them when the forwarded REGISTERs time out.

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;

const LIMIT: usize = 5;
const RETRY_AFTER: u32 = 7;

fn overload_settings(cfg: &mut ims_config::PcscfConfig) {
    cfg.sip.max_pending_requests = LIMIT;
    cfg.sip.overload_retry_after_s = RETRY_AFTER;
    // Timer F = 64·T1 = 3.2 s: the unanswered REGISTERs end within the test.
    cfg.timers.t1_ms = 50;
    cfg.timers.t2_ms = 200;
}

/// An initial REGISTER of user `n` (own AoR, Call-ID and branch).
fn register_n(ue: SocketAddr, pcscf: SocketAddr, n: u32) -> String {
    format!(
        "REGISTER sip:ims.test SIP/2.0\r\n\
Via: SIP/2.0/UDP {ue};branch=z9hG4bKovl{n};rport\r\n\
Max-Forwards: 70\r\n\
From: <sip:user{n}@ims.test>;tag=f{n}\r\n\
To: <sip:user{n}@ims.test>\r\n\
Call-ID: ovl-{n}@{ue}\r\n\
CSeq: 1 REGISTER\r\n\
Contact: <sip:user{n}@{ue}>;expires=600\r\n\
Route: <sip:{pcscf};lr>\r\n\
Supported: path\r\n\
Content-Length: 0\r\n\r\n"
    )
}

type Upstream = Vec<(String, Message, SocketAddr)>;

/// The distinct REGISTERs (by Call-ID: the P-CSCF's UDP retransmissions count once)
/// the fake I-CSCF receives, until `done` says so or `ms` have passed.
async fn collect_upstream(core: &Peer, ms: u64, done: impl Fn(&Upstream) -> bool) -> Upstream {
    let until = Instant::now() + Duration::from_millis(ms);
    let mut seen: Upstream = Vec::new();
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() || done(&seen) {
            break;
        }
        let Some((m, from)) = core.recv_within(left.as_millis() as u64).await else {
            break;
        };
        assert_eq!(m.method(), Some("REGISTER"), "only REGISTERs go upstream");
        let id = m.get("call-id").unwrap_or_default().to_string();
        if !seen.iter().any(|(c, _, _)| *c == id) {
            seen.push((id, m, from));
        }
    }
    seen
}

/// Final responses the UE receives (with their Call-ID), until it has `want` or `ms`
/// have passed.
async fn collect_ue(ue: &Peer, ms: u64, want: usize) -> Vec<(String, Message)> {
    let until = Instant::now() + Duration::from_millis(ms);
    let mut got = Vec::new();
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() || got.len() >= want {
            break;
        }
        let Some((m, _)) = ue.recv_within(left.as_millis() as u64).await else {
            break;
        };
        if m.code().is_some_and(|c| c >= 200) {
            got.push((m.get("call-id").unwrap_or_default().to_string(), m));
        }
    }
    got
}

#[tokio::test]
async fn past_the_limit_new_requests_get_503_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("p.sqlite").display());
    let core = Peer::new().await; // the I-CSCF: silent unless told
    let ue = Peer::new().await;
    let p = start_pcscf_with(core.addr, &db, 0, overload_settings, None).await;
    let started = Instant::now();

    // 1. Eight distinct REGISTERs: five forwarded, three refused with 503.
    for n in 1..=8 {
        ue.send(p.udp, &register_n(ue.addr, p.udp, n)).await;
    }
    let refused = collect_ue(&ue, 2_500, 3).await;
    let upstream = collect_upstream(&core, 2_000, |u| u.len() == LIMIT).await;
    // Nothing more within the next 200 ms (well before Timer F).
    assert!(collect_ue(&ue, 200, usize::MAX).await.is_empty());
    let extra: Vec<String> = collect_upstream(&core, 200, |_| false)
        .await
        .into_iter()
        .map(|u| u.0)
        .filter(|id| !upstream.iter().any(|u| u.0 == *id))
        .collect();
    assert!(extra.is_empty(), "more forwarded: {extra:?}");
    assert_eq!(
        upstream.len(),
        LIMIT,
        "forwarded: {:?}",
        upstream.iter().map(|u| &u.0).collect::<Vec<_>>()
    );
    assert_eq!(refused.len(), 3, "refused: {refused:?}");
    let forwarded_ids: BTreeSet<&str> = upstream.iter().map(|u| u.0.as_str()).collect();
    for (id, r) in &refused {
        assert_eq!(r.code(), Some(503), "{id}: {:?}", r.0.start_line());
        assert_eq!(
            r.get("retry-after"),
            Some(RETRY_AFTER.to_string().as_str()),
            "{id}: Retry-After from [sip] overload_retry_after_s"
        );
        assert!(r.get("to").is_some_and(|t| t.contains("tag=")), "{id}");
        assert!(
            !forwarded_ids.contains(id.as_str()),
            "{id} both forwarded and refused"
        );
    }

    // 2. A retransmission of a refused REGISTER is absorbed by its server transaction:
    //    the same 503 again, nothing upstream.
    let refused_n: u32 = refused[0]
        .0
        .trim_start_matches("ovl-")
        .split('@')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("Call-ID ovl-<n>@…");
    ue.send(p.udp, &register_n(ue.addr, p.udp, refused_n)).await;
    let (again, _) = ue.recv_within(1000).await.expect("503 re-sent");
    assert_eq!(again.code(), Some(503));
    assert_eq!(again.get("to"), refused[0].1.get("to"), "the same response");

    // 3. At the limit, an in-dialog request (To tag) is not refused: it is handled
    //    (this UE is not registered: 403), never 503.
    let bye = format!(
        "BYE sip:bob@ims.test SIP/2.0\r\n\
Via: SIP/2.0/UDP {ue};branch=z9hG4bKovlbye;rport\r\n\
Max-Forwards: 70\r\n\
From: <sip:user1@ims.test>;tag=f1\r\n\
To: <sip:bob@ims.test>;tag=b1\r\n\
Call-ID: ovl-bye@{ue}\r\n\
CSeq: 2 BYE\r\n\
Route: <sip:{pcscf};lr>\r\n\
Content-Length: 0\r\n\r\n",
        ue = ue.addr,
        pcscf = p.udp
    );
    ue.send(p.udp, &bye).await;
    let (r, _) = ue.recv_within(1000).await.expect("BYE answered");
    assert_eq!(
        r.get("call-id"),
        Some(format!("ovl-bye@{}", ue.addr).as_str())
    );
    assert_ne!(r.code(), Some(503), "in-dialog requests always pass");
    assert_eq!(r.code(), Some(403));

    // 4. A response from upstream passes at the limit (relayed to the UE) and frees
    //    a place: the next new REGISTER is forwarded, the one after it refused.
    let (id, req, from) = &upstream[0];
    core.answer(req, *from, 403, "Forbidden", &[]).await;
    let (r, _) = ue.recv_within(1000).await.expect("403 relayed");
    assert_eq!(r.code(), Some(403));
    assert_eq!(r.get("call-id"), Some(id.as_str()));
    tokio::time::sleep(Duration::from_millis(200)).await;
    ue.send(p.udp, &register_n(ue.addr, p.udp, 9)).await;
    let nine = format!("ovl-9@{}", ue.addr);
    let more = collect_upstream(&core, 2_000, |u| u.iter().any(|m| m.0 == nine)).await;
    let ids: Vec<&str> = more.iter().map(|m| m.0.as_str()).collect();
    assert!(
        ids.contains(&nine.as_str()),
        "a place came back: REGISTER 9 forwarded ({ids:?})"
    );
    ue.send(p.udp, &register_n(ue.addr, p.udp, 10)).await;
    let (r, _) = ue.recv_within(1000).await.expect("REGISTER 10 answered");
    assert_eq!(
        (r.code(), r.get("call-id")),
        (Some(503), Some(format!("ovl-10@{}", ue.addr).as_str())),
        "at the limit again"
    );

    // 5. The unanswered REGISTERs end at Timer F (504): every place comes back.
    let timed_out = collect_ue(&ue, 8_000, LIMIT).await;
    let codes: Vec<Option<u16>> = timed_out.iter().map(|(_, m)| m.code()).collect();
    assert_eq!(codes, vec![Some(504); LIMIT], "{timed_out:?}");
    assert!(started.elapsed() >= Duration::from_millis(64 * 50));
    // Retransmissions of the timed-out REGISTERs still queued at the fake I-CSCF.
    let _ = collect_upstream(&core, 100, |_| false).await;
    for n in 11..=15 {
        ue.send(p.udp, &register_n(ue.addr, p.udp, n)).await;
    }
    let after = collect_upstream(&core, 3_000, |u| u.len() == 5).await;
    let ids: BTreeSet<&str> = after.iter().map(|m| m.0.as_str()).collect();
    let want: BTreeSet<String> = (11..=15).map(|n| format!("ovl-{n}@{}", ue.addr)).collect();
    assert_eq!(
        ids,
        want.iter().map(String::as_str).collect(),
        "all five places are free again"
    );
    assert!(
        collect_ue(&ue, 200, usize::MAX).await.is_empty(),
        "none of them refused"
    );
    p.stop().await;
}
