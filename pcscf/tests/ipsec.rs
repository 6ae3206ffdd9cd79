//! Gm sec-agree through the P-CSCF with the in-memory SA store (the kernel is exercised
//! in UML separately): offer chosen, four SAs installed on the 401 with Security-Server,
//! ck/ik stripped, protected REGISTER on port-s checked against Security-Verify,
//! requests accepted only through the protected port, requests to the UE sent from
//! port-c to its port-s, SAs removed after de-registration's grace period, and a wrong
//! Security-Verify refused with its SAs removed. Real UDP on 127.0.0.1.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use ims_ipsec::MemorySaStore;

const WWW: &str = "Digest realm=\"ims.test\", nonce=\"bm9uY2U=\", algorithm=AKAv1-MD5, ck=\"00112233445566778899aabbccddeeff\", ik=\"ffeeddccbbaa99887766554433221100\"";

fn ports() -> (u16, u16) {
    protected_port_pair()
}

struct Ue {
    plain: Peer,
    port_c: Peer,
    port_s: Peer,
}

fn security_client(ue: &Ue) -> String {
    format!(
        "Security-Client: ipsec-3gpp;alg=hmac-sha-1-96;ealg=null;spi-c=3000000001;spi-s=3000000002;port-c={};port-s={}, ipsec-3gpp;alg=hmac-sha-1-96;ealg=aes-cbc;spi-c=3000000001;spi-s=3000000002;port-c={};port-s={}\r\nRequire: sec-agree\r\nProxy-Require: sec-agree\r\n",
        ue.port_c.addr.port(),
        ue.port_s.addr.port(),
        ue.port_c.addr.port(),
        ue.port_s.addr.port()
    )
}

/// An unprotected REGISTER (CSeq `cseq`, which also makes its branch: a new
/// transaction each time, RFC 3261 §17.2.3) and its 401; returns Security-Server.
async fn challenge(core: &Peer, ue: &Ue, pcscf: std::net::SocketAddr, cseq: u32) -> String {
    ue.plain
        .send(
            pcscf,
            &register(ue.plain.addr, pcscf, cseq, 600, &security_client(ue)),
        )
        .await;
    let (req, from) = core.recv().await;
    assert!(
        req.get("security-client").is_none(),
        "Security-Client not forwarded"
    );
    assert!(!req.list("require").iter().any(|t| t == "sec-agree"));
    assert!(!req.list("proxy-require").iter().any(|t| t == "sec-agree"));
    core.answer(
        &req,
        from,
        401,
        "Unauthorized",
        &[("WWW-Authenticate", WWW.into())],
    )
    .await;
    let (r401, _) = ue.plain.recv().await;
    assert_eq!(r401.code(), Some(401));
    assert!(!r401.get("www-authenticate").unwrap().contains("ck="));
    assert!(r401.list("require").iter().any(|t| t == "sec-agree"));
    r401.get("security-server")
        .expect("Security-Server in the 401")
        .to_string()
}

#[tokio::test]
async fn sec_agree_register_protected_flows_and_teardown() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("p.sqlite").display());
    let core = Peer::new().await;
    let sa = Arc::new(MemorySaStore::new(ims_ipsec::plan::DEFAULT_PCSCF_REQID));
    let (pc, ps) = ports();
    let p = start_pcscf_with(
        core.addr,
        &db,
        0,
        |cfg| {
            ipsec_only(cfg, (pc, ps));
            cfg.ipsec.dereg_grace_ms = 600;
        },
        Some(sa.clone()),
    )
    .await;
    let pcscf = p.udp;
    let ue = Ue {
        plain: Peer::new().await,
        port_c: Peer::new().await,
        port_s: Peer::new().await,
    };

    // Without Security-Client the policy refuses with 421.
    ue.plain
        .send(pcscf, &register(ue.plain.addr, pcscf, 9, 600, ""))
        .await;
    let (r, _) = ue.plain.recv().await;
    assert_eq!(r.code(), Some(421));

    let server = challenge(&core, &ue, pcscf, 1).await;
    assert!(
        server.contains("alg=hmac-sha-1-96") && server.contains("ealg=aes-cbc"),
        "{server}"
    );
    assert!(server.contains(&format!("port-s={ps}")));
    assert_eq!(sa.sa_count(), 4, "four SAs installed on the 401");

    // Protected REGISTER: UE port-c → P-CSCF port-s, Security-Verify echoes.
    let protected = std::net::SocketAddr::new(pcscf.ip(), ps);
    let verify_for = |server: &str| {
        format!("{}Security-Verify: {server}\r\nAuthorization: Digest username=\"alice@ims.test\", realm=\"ims.test\", nonce=\"bm9uY2U=\", uri=\"sip:ims.test\", response=\"0\"\r\n", security_client(&ue))
    };
    let verify = verify_for(&server);
    ue.port_c
        .send(
            protected,
            &register(ue.port_c.addr, protected, 2, 600, &verify),
        )
        .await;
    let (req, from) = core.recv().await;
    assert!(req
        .get("authorization")
        .unwrap()
        .contains("integrity-protected=\"yes\""));
    assert!(req.get("security-verify").is_none());
    core.answer(
        &req,
        from,
        200,
        "OK",
        &[
            ("Service-Route", format!("<sip:orig@{};lr>", core.addr)),
            ("P-Associated-URI", "<sip:alice@ims.test>".into()),
        ],
    )
    .await;
    let (r200, src) = ue.port_c.recv().await;
    assert_eq!(r200.code(), Some(200));
    assert_eq!(src.port(), ps, "200 OK from the P-CSCF's port-s");
    let (sub, from) = core.recv().await;
    core.answer(&sub, from, 200, "OK", &[]).await;

    // Unprotected request claiming the identity: refused.
    ue.plain
        .send(pcscf, &message_from_ue(ue.plain.addr, pcscf, 1))
        .await;
    assert_eq!(ue.plain.recv().await.0.code(), Some(403));
    // Through the protected port: forwarded with P-Asserted-Identity.
    ue.port_c
        .send(protected, &message_from_ue(ue.port_c.addr, protected, 2))
        .await;
    let (m, from) = core.recv().await;
    assert_eq!(
        m.list("p-asserted-identity"),
        vec!["<sip:alice@ims.test>".to_string()]
    );
    core.answer(&m, from, 200, "OK", &[]).await;
    assert_eq!(ue.port_c.recv().await.0.code(), Some(200));

    // Terminating: P-CSCF port-c → UE port-s.
    let term = format!(
        "MESSAGE sip:alice@{ue} SIP/2.0\r\nVia: SIP/2.0/UDP {core};branch=z9hG4bKt9\r\nMax-Forwards: 70\r\n\
Route: <sip:term@{pcscf};lr>\r\nFrom: <sip:bob@ims.test>;tag=b\r\nTo: <sip:alice@ims.test>\r\n\
Call-ID: t9\r\nCSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n",
        ue = ue.port_c.addr,
        core = core.addr
    );
    core.send(pcscf, &term).await;
    let (m, src) = ue.port_s.recv().await;
    assert_eq!(m.method(), Some("MESSAGE"));
    assert_eq!(src.port(), pc, "sent from the P-CSCF's port-c");
    // The UE answers from its port-s to the P-CSCF's port-c; the 200 reaches the core.
    ue.port_s.answer(&m, src, 200, "OK", &[]).await;
    let (r, _) = core.recv().await;
    assert_eq!(r.code(), Some(200));
    assert_eq!(r.list("via").len(), 1, "P-CSCF's Via removed");

    // De-registration: 200 OK still through the SAs, SAs gone after the grace period.
    ue.port_c
        .send(
            protected,
            &register(ue.port_c.addr, protected, 3, 0, &verify),
        )
        .await;
    let (req, from) = core.recv().await;
    core.answer(&req, from, 200, "OK", &[]).await;
    let (r, src) = ue.port_c.recv().await;
    assert_eq!((r.code(), src.port()), (Some(200), ps));
    let t0 = std::time::Instant::now();
    assert_eq!(sa.sa_count(), 4, "SAs kept during the grace period");
    // The reg-event NOTIFY (terminated) 400 ms later still crosses the SAs, and the
    // grace period starts again after it (FIELD-LESSONS item 4).
    tokio::time::sleep(Duration::from_millis(400)).await;
    let notify = format!(
        "NOTIFY sip:alice@{ue} SIP/2.0\r\nVia: SIP/2.0/UDP {core};branch=z9hG4bKn9\r\nMax-Forwards: 70\r\n\
Route: <sip:term@{pcscf};lr>\r\nFrom: <sip:alice@ims.test>;tag=s\r\nTo: <sip:alice@ims.test>;tag=u\r\n\
Call-ID: n9\r\nCSeq: 2 NOTIFY\r\nEvent: reg\r\nSubscription-State: terminated\r\nContent-Length: 0\r\n\r\n",
        ue = ue.port_c.addr,
        core = core.addr
    );
    core.send(pcscf, &notify).await;
    let (n, src) = ue.port_s.recv().await;
    assert_eq!((n.method(), src.port()), (Some("NOTIFY"), pc));
    ue.port_s.answer(&n, src, 200, "OK", &[]).await;
    assert_eq!(core.recv().await.0.code(), Some(200));
    tokio::time::sleep(Duration::from_millis(800).saturating_sub(t0.elapsed())).await;
    assert_eq!(sa.sa_count(), 4, "grace restarted by the NOTIFY");
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(sa.sa_count(), 0, "SAs removed after the grace period");
    assert_eq!(sa.policy_count(), 0);

    // A wrong Security-Verify: refused and its SAs removed.
    let server = challenge(&core, &ue, pcscf, 5).await;
    assert_eq!(sa.sa_count(), 4);
    let bad = verify_for(&server.replace("ealg=aes-cbc", "ealg=null"));
    assert!(bad.contains("ealg=null;"), "{bad}");
    ue.port_c
        .send(
            protected,
            &register(ue.port_c.addr, protected, 4, 600, &bad),
        )
        .await;
    let (r, _) = ue.port_c.recv().await;
    assert_eq!(r.code(), Some(403));
    assert_eq!(sa.sa_count(), 0, "no SA left behind");
    assert!(core.recv_within(200).await.is_none(), "nothing forwarded");
    p.stop().await;
}

fn client_with_spis(ue: &Ue, spi_c: u32, spi_s: u32) -> String {
    format!(
        "Security-Client: ipsec-3gpp;alg=hmac-sha-1-96;ealg=aes-cbc;spi-c={spi_c};spi-s={spi_s};port-c={};port-s={}\r\nRequire: sec-agree\r\nProxy-Require: sec-agree\r\n",
        ue.port_c.addr.port(),
        ue.port_s.addr.port()
    )
}

const AUTH: &str = "Authorization: Digest username=\"alice@ims.test\", realm=\"ims.test\", nonce=\"bm9uY2U=\", uri=\"sip:ims.test\", response=\"0\"\r\n";

/// TS 33.203 §7.4 re-registration (new SPIs over the set in use, a new set on the 401,
/// the old one retired after the new one carried a 200), a concurrent REGISTER and
/// de-REGISTER of one UE, SAs removed at shutdown, and SAs a crashed run left removed
/// at start.
#[tokio::test]
async fn reregistration_concurrency_shutdown_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("p.sqlite").display());
    let core = Peer::new().await;
    let sa = Arc::new(MemorySaStore::new(ims_ipsec::plan::DEFAULT_PCSCF_REQID));
    let (pc, ps) = protected_port_pair();
    let tweak = move |cfg: &mut ims_config::PcscfConfig| {
        ipsec_only(cfg, (pc, ps));
        cfg.ipsec.dereg_grace_ms = 300;
    };
    let p = start_pcscf_with(core.addr, &db, 0, tweak, Some(sa.clone())).await;
    let pcscf = p.udp;
    let protected = std::net::SocketAddr::new(pcscf.ip(), ps);
    let ue = Ue {
        plain: Peer::new().await,
        port_c: Peer::new().await,
        port_s: Peer::new().await,
    };
    let www = |n: u32| {
        vec![(
            "WWW-Authenticate",
            WWW.replace("bm9uY2U=", &format!("bm9uY2U{n}")),
        )]
    };
    let ok = |cseq: u32| {
        let _ = cseq;
        vec![
            ("Service-Route", format!("<sip:orig@{};lr>", core.addr)),
            ("P-Associated-URI", "<sip:alice@ims.test>".to_string()),
        ]
    };

    // Initial registration with SPIs 1/2.
    let c1 = client_with_spis(&ue, 1_000_001, 1_000_002);
    ue.plain
        .send(pcscf, &register(ue.plain.addr, pcscf, 1, 600, &c1))
        .await;
    let (req, from) = core.recv().await;
    core.answer(&req, from, 401, "Unauthorized", &www(1)).await;
    let s1 = ue
        .plain
        .recv()
        .await
        .0
        .get("security-server")
        .unwrap()
        .to_string();
    let verify1 = format!("{c1}Security-Verify: {s1}\r\n{AUTH}");
    ue.port_c
        .send(
            protected,
            &register(ue.port_c.addr, protected, 2, 600, &verify1),
        )
        .await;
    let (req, from) = core.recv().await;
    core.answer(&req, from, 200, "OK", &ok(2)).await;
    assert_eq!(ue.port_c.recv().await.0.code(), Some(200));
    let (sub, from) = core.recv().await;
    core.answer(&sub, from, 200, "OK", &[]).await;
    assert_eq!(sa.sa_count(), 4);

    // Re-registration over the set in use: Security-Verify = S1, NEW SPIs 3/4.
    let c2 = client_with_spis(&ue, 1_000_003, 1_000_004);
    let rereg = format!("{c2}Security-Verify: {s1}\r\n{AUTH}");
    ue.port_c
        .send(
            protected,
            &register(ue.port_c.addr, protected, 3, 600, &rereg),
        )
        .await;
    let (req, from) = core.recv().await;
    assert!(req
        .get("authorization")
        .unwrap()
        .contains("integrity-protected=\"yes\""));
    core.answer(&req, from, 401, "Unauthorized", &www(2)).await;
    let (r401, src) = ue.port_c.recv().await;
    assert_eq!(
        (r401.code(), src.port()),
        (Some(401), ps),
        "401 through the old set"
    );
    let s2 = r401
        .get("security-server")
        .expect("new Security-Server")
        .to_string();
    assert_ne!(s1, s2, "a new set (new P-CSCF SPIs)");
    assert_eq!(sa.sa_count(), 8, "old and new sets both installed");
    // The protected REGISTER answering it, with Security-Verify = S2.
    let verify2 = format!("{c2}Security-Verify: {s2}\r\n{AUTH}");
    ue.port_c
        .send(
            protected,
            &register(ue.port_c.addr, protected, 4, 600, &verify2),
        )
        .await;
    let (req, from) = core.recv().await;
    core.answer(&req, from, 200, "OK", &ok(4)).await;
    assert_eq!(ue.port_c.recv().await.0.code(), Some(200));
    assert_eq!(sa.sa_count(), 8, "old set kept for the grace period");
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        sa.sa_count(),
        4,
        "old set retired once the new one was used"
    );
    let pols = sa.policy_count();
    assert!(
        pols > 0,
        "the new set's policies survive the old set's removal"
    );
    // A Security-Verify naming the retired set is refused now.
    ue.port_c
        .send(
            protected,
            &register(ue.port_c.addr, protected, 5, 600, &rereg),
        )
        .await;
    assert_eq!(ue.port_c.recv().await.0.code(), Some(403));

    // Concurrent re-REGISTER and de-REGISTER of the UE (kamailio#4671): answered in
    // the reverse order; the end state is consistent (de-registered, SAs gone).
    let again = format!("{c2}Security-Verify: {s2}\r\n{AUTH}");
    ue.port_c
        .send(
            protected,
            &register(ue.port_c.addr, protected, 6, 600, &again),
        )
        .await;
    ue.port_c
        .send(
            protected,
            &register(ue.port_c.addr, protected, 7, 0, &again),
        )
        .await;
    let (a, fa) = core.recv().await;
    let (b, fb) = core.recv().await;
    let (rereg_req, rf, dereg_req, df) = if a.get("cseq").unwrap().starts_with('6') {
        (a, fa, b, fb)
    } else {
        (b, fb, a, fa)
    };
    core.answer(&dereg_req, df, 200, "OK", &[]).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    core.answer(&rereg_req, rf, 200, "OK", &ok(6)).await;
    let mut codes = vec![
        ue.port_c.recv().await.0.code(),
        ue.port_c.recv().await.0.code(),
    ];
    codes.sort();
    assert_eq!(codes, vec![Some(200), Some(200)]);
    tokio::time::sleep(Duration::from_millis(700)).await;
    // Registered again by the later 200 (state and SAs agree): a request through
    // the set is forwarded; otherwise it is refused and no SA is left.
    ue.port_c
        .send(protected, &message_from_ue(ue.port_c.addr, protected, 8))
        .await;
    let mut forwarded = None;
    while let Some((m, from)) = core.recv_within(1000).await {
        if m.method() == Some("SUBSCRIBE") {
            // Registered again after the de-registration: a new reg-event subscription.
            core.answer(&m, from, 200, "OK", &[]).await;
            continue;
        }
        forwarded = Some((m, from));
        break;
    }
    match forwarded {
        Some((m, from)) => {
            assert_eq!(m.method(), Some("MESSAGE"));
            core.answer(&m, from, 200, "OK", &[]).await;
            assert_eq!(ue.port_c.recv().await.0.code(), Some(200));
            assert_eq!(sa.sa_count(), 4, "registered: its set stays installed");
        }
        None => {
            assert_eq!(ue.port_c.recv().await.0.code(), Some(403));
            assert_eq!(sa.sa_count(), 0, "de-registered: no SA left");
        }
    }

    // Shutdown (SIGTERM/SIGINT in the binary) removes every SA of the P-CSCF.
    p.stop().await;
    assert_eq!(
        (sa.sa_count(), sa.policy_count()),
        (0, 0),
        "SAs removed at shutdown"
    );

    // A crashed run left a set behind: the next start removes it.
    let ue_ep = ims_ipsec::SecEndpoint {
        addr: "127.0.0.9".parse().unwrap(),
        spi_c: 5_000_001,
        spi_s: 5_000_002,
        port_c: 41_000,
        port_s: 41_001,
    };
    let me = ims_ipsec::SecEndpoint {
        addr: "127.0.0.1".parse().unwrap(),
        spi_c: 777_001,
        spi_s: 777_002,
        port_c: pc,
        port_s: ps,
    };
    let plan = ims_ipsec::plan_sa_set(
        ims_ipsec::Side::Pcscf,
        &ue_ep,
        &me,
        "hmac-sha-1-96/null".parse().unwrap(),
        &ims_ipsec::Ck::new([1; 16]),
        &ims_ipsec::Ik::new([2; 16]),
        &ims_ipsec::PlanOptions::default(),
    )
    .unwrap();
    ims_ipsec::SaStore::install(&*sa, &plan).await.unwrap();
    assert_eq!(sa.sa_count(), 4);
    let p = start_pcscf_with(core.addr, &db, pcscf.port(), tweak, Some(sa.clone())).await;
    // OPTIONS answered: the node is up (restore ran before serving).
    let probe = Peer::new().await;
    probe
        .send(
            pcscf,
            &format!(
                "OPTIONS sip:{pcscf} SIP/2.0\r\nVia: SIP/2.0/UDP {a};branch=z9hG4bKup1\r\nMax-Forwards: 70\r\n\
From: <sip:probe@ims.test>;tag=1\r\nTo: <sip:{pcscf}>\r\nCall-ID: up1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
                a = probe.addr
            ),
        )
        .await;
    assert_eq!(probe.recv().await.0.code(), Some(200));
    assert_eq!(sa.sa_count(), 0, "SAs of the crashed run removed at start");
    // The UE's SAs went at shutdown, so its registration was not restored: a request
    // toward it is answered 480 instead of vanishing into a missing SA.
    let term = format!(
        "MESSAGE sip:alice@{ue} SIP/2.0\r\nVia: SIP/2.0/UDP {core};branch=z9hG4bKt77\r\nMax-Forwards: 70\r\n\
Route: <sip:term@{pcscf};lr>\r\nFrom: <sip:bob@ims.test>;tag=b\r\nTo: <sip:alice@ims.test>\r\n\
Call-ID: t77\r\nCSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n",
        ue = ue.port_c.addr,
        core = core.addr
    );
    core.send(pcscf, &term).await;
    assert_eq!(core.recv().await.0.code(), Some(480));
    p.stop().await;
}

/// `sas_on_shutdown = "keep"`: a clean stop leaves the UE's SAs; the next start adopts
/// them (their protected ports are bound again): a request toward the UE leaves from
/// port-c to its port-s, and its re-REGISTER over the old set passes the
/// Security-Verify check and gets a new set; de-registration then removes everything.
#[tokio::test]
async fn keep_mode_restart_adopts_the_live_sas() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("p.sqlite").display());
    let core = Peer::new().await;
    let sa = Arc::new(MemorySaStore::new(ims_ipsec::plan::DEFAULT_PCSCF_REQID));
    let (pc, ps) = protected_port_pair();
    let tweak = move |cfg: &mut ims_config::PcscfConfig| {
        ipsec_only(cfg, (pc, ps));
        cfg.ipsec.dereg_grace_ms = 300;
        cfg.ipsec.sas_on_shutdown = ims_config::SasOnShutdown::Keep;
    };
    let p = start_pcscf_with(core.addr, &db, 0, tweak, Some(sa.clone())).await;
    let pcscf = p.udp;
    let protected = std::net::SocketAddr::new(pcscf.ip(), ps);
    let ue = Ue {
        plain: Peer::new().await,
        port_c: Peer::new().await,
        port_s: Peer::new().await,
    };
    let ok = vec![
        ("Service-Route", format!("<sip:orig@{};lr>", core.addr)),
        ("P-Associated-URI", "<sip:alice@ims.test>".to_string()),
    ];
    let c1 = client_with_spis(&ue, 2_000_001, 2_000_002);
    ue.plain
        .send(pcscf, &register(ue.plain.addr, pcscf, 1, 600, &c1))
        .await;
    let (req, from) = core.recv().await;
    core.answer(
        &req,
        from,
        401,
        "Unauthorized",
        &[("WWW-Authenticate", WWW.into())],
    )
    .await;
    let s1 = ue
        .plain
        .recv()
        .await
        .0
        .get("security-server")
        .unwrap()
        .to_string();
    let verify1 = format!("{c1}Security-Verify: {s1}\r\n{AUTH}");
    ue.port_c
        .send(
            protected,
            &register(ue.port_c.addr, protected, 2, 600, &verify1),
        )
        .await;
    let (req, from) = core.recv().await;
    core.answer(&req, from, 200, "OK", &ok).await;
    assert_eq!(ue.port_c.recv().await.0.code(), Some(200));
    let (sub, from) = core.recv().await;
    core.answer(&sub, from, 200, "OK", &[]).await;
    assert_eq!(sa.sa_count(), 4);
    let policies = sa.policy_count();

    // Clean stop in keep mode: the SAs stay.
    p.stop().await;
    assert_eq!(
        (sa.sa_count(), sa.policy_count()),
        (4, policies),
        "keep: SAs and policies left for the next start"
    );

    // Next start: the set is adopted, not removed.
    let p = start_pcscf_with(core.addr, &db, pcscf.port(), tweak, Some(sa.clone())).await;
    let term = |n: u32| {
        format!(
            "MESSAGE sip:alice@{ue} SIP/2.0\r\nVia: SIP/2.0/UDP {core};branch=z9hG4bKk{n}\r\nMax-Forwards: 70\r\n\
Route: <sip:term@{pcscf};lr>\r\nFrom: <sip:bob@ims.test>;tag=b\r\nTo: <sip:alice@ims.test>\r\n\
Call-ID: k{n}\r\nCSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n",
            ue = ue.port_c.addr,
            core = core.addr
        )
    };
    core.send(pcscf, &term(1)).await;
    let (m, src) = ue.port_s.recv().await;
    assert_eq!(m.method(), Some("MESSAGE"));
    assert_eq!(
        src.port(),
        pc,
        "toward the UE from port-c of the adopted set"
    );
    ue.port_s.answer(&m, src, 200, "OK", &[]).await;
    assert_eq!(core.recv().await.0.code(), Some(200));
    assert_eq!(sa.sa_count(), 4, "adopted set kept at start");

    // Re-registration over the adopted set (TS 33.203 §7.4): Security-Verify = S1.
    let c2 = client_with_spis(&ue, 2_000_003, 2_000_004);
    let rereg = format!("{c2}Security-Verify: {s1}\r\n{AUTH}");
    ue.port_c
        .send(
            protected,
            &register(ue.port_c.addr, protected, 3, 600, &rereg),
        )
        .await;
    let (req, from) = core.recv().await;
    assert_eq!(req.method(), Some("REGISTER"), "re-REGISTER forwarded");
    core.answer(
        &req,
        from,
        401,
        "Unauthorized",
        &[("WWW-Authenticate", WWW.replace("bm9uY2U=", "bm9uY2U2"))],
    )
    .await;
    let (r401, src) = ue.port_c.recv().await;
    assert_eq!((r401.code(), src.port()), (Some(401), ps));
    let s2 = r401.get("security-server").unwrap().to_string();
    assert_eq!(sa.sa_count(), 8);
    let verify2 = format!("{c2}Security-Verify: {s2}\r\n{AUTH}");
    ue.port_c
        .send(
            protected,
            &register(ue.port_c.addr, protected, 4, 600, &verify2),
        )
        .await;
    let (req, from) = core.recv().await;
    core.answer(&req, from, 200, "OK", &ok).await;
    assert_eq!(ue.port_c.recv().await.0.code(), Some(200));
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        sa.sa_count(),
        4,
        "the adopted set retired after the new one"
    );

    // De-registration over the new set: nothing left after the grace period.
    ue.port_c
        .send(
            protected,
            &register(ue.port_c.addr, protected, 5, 0, &verify2),
        )
        .await;
    let (req, from) = core.recv().await;
    core.answer(&req, from, 200, "OK", &[]).await;
    assert_eq!(ue.port_c.recv().await.0.code(), Some(200));
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!((sa.sa_count(), sa.policy_count()), (0, 0));
    p.stop().await;
    assert_eq!((sa.sa_count(), sa.policy_count()), (0, 0));
}

/// A protected port another process holds: the P-CSCF cannot receive the protected
/// REGISTER there, so it must not name it in a Security-Server. The REGISTER gets a
/// 500 instead of the 401, no SA stays installed, and once the port is free again
/// the next REGISTER gets its 401 with the set installed.
#[tokio::test]
async fn protected_port_in_use_gives_500_and_leaves_no_sa() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("p.sqlite").display());
    let core = Peer::new().await;
    let sa = Arc::new(MemorySaStore::new(ims_ipsec::plan::DEFAULT_PCSCF_REQID));
    let (pc, ps) = ports();
    let squatter = std::net::UdpSocket::bind(("127.0.0.1", ps)).unwrap();
    let p = start_pcscf_with(
        core.addr,
        &db,
        0,
        |cfg| {
            ipsec_only(cfg, (pc, ps));
        },
        Some(sa.clone()),
    )
    .await;
    let pcscf = p.udp;
    let ue = Ue {
        plain: Peer::new().await,
        port_c: Peer::new().await,
        port_s: Peer::new().await,
    };
    ue.plain
        .send(
            pcscf,
            &register(ue.plain.addr, pcscf, 1, 600, &security_client(&ue)),
        )
        .await;
    let (req, from) = core.recv().await;
    core.answer(
        &req,
        from,
        401,
        "Unauthorized",
        &[("WWW-Authenticate", WWW.into())],
    )
    .await;
    let (r, _) = ue.plain.recv().await;
    assert_eq!(r.code(), Some(500), "no 401 naming a port we cannot use");
    assert!(r.get("security-server").is_none());
    assert_eq!(sa.sa_count(), 0, "the set's SAs removed again");
    assert_eq!(sa.policy_count(), 0);

    drop(squatter);
    let server = challenge(&core, &ue, pcscf, 2).await;
    assert!(server.contains(&format!("port-s={ps}")), "{server}");
    assert_eq!(sa.sa_count(), 4);
}

/// A P-CSCF with IPsec on the protected ports (`pc`, `ps`) and `tweak` applied.
async fn start_protected(
    core: &Peer,
    db: &str,
    sa: &Arc<MemorySaStore>,
    (pc, ps): (u16, u16),
    tweak: impl FnOnce(&mut ims_config::PcscfConfig),
) -> RunningPcscf {
    start_pcscf_with(
        core.addr,
        db,
        0,
        move |cfg| {
            ipsec_only(cfg, (pc, ps));
            tweak(cfg);
        },
        Some(sa.clone()),
    )
    .await
}

/// Registers `ue` over IPsec: 401 with Security-Server, protected REGISTER to
/// `protected`, 200 with Service-Route `<sip:orig@core;lr>`, reg-event SUBSCRIBE
/// answered.
async fn register_protected(
    core: &Peer,
    ue: &Ue,
    pcscf: std::net::SocketAddr,
    protected: std::net::SocketAddr,
) {
    let server = challenge(core, ue, pcscf, 1).await;
    let verify = format!("{}Security-Verify: {server}\r\n{AUTH}", security_client(ue));
    ue.port_c
        .send(
            protected,
            &register(ue.port_c.addr, protected, 2, 600, &verify),
        )
        .await;
    let (req, from) = core.recv().await;
    core.answer(
        &req,
        from,
        200,
        "OK",
        &[
            ("Service-Route", format!("<sip:orig@{};lr>", core.addr)),
            ("P-Associated-URI", "<sip:alice@ims.test>".into()),
        ],
    )
    .await;
    assert_eq!(ue.port_c.recv().await.0.code(), Some(200));
    let (sub, from) = core.recv().await;
    assert_eq!(sub.method(), Some("SUBSCRIBE"));
    core.answer(&sub, from, 200, "OK", &[]).await;
}

/// The next request or final response (provisional responses skipped).
async fn recv_final(peer: &Peer) -> (Message, std::net::SocketAddr) {
    loop {
        let (m, from) = peer.recv().await;
        if m.code().is_some_and(|c| c < 200) {
            continue;
        }
        return (m, from);
    }
}

/// An in-dialog request (`method`, CSeq `cseq`) of dialog `call_id`.
#[allow(clippy::too_many_arguments)]
fn in_dialog(
    method: &str,
    ruri: &str,
    via: std::net::SocketAddr,
    routes: &[String],
    from: &str,
    to: &str,
    call_id: &str,
    cseq: u32,
) -> String {
    format!(
        "{method} {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP {via};branch=z9hG4bK{call_id}{method}{cseq}\r\nMax-Forwards: 70\r\n\
Route: {}\r\nFrom: {from}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n",
        routes.join(", ")
    )
}

/// Double record-routing toward an IPsec-protected UE (RFC 5658; TS 24.229 §5.2.6.3.3,
/// §5.2.6.4.3, §5.2.7): the P-CSCF's UE-facing entry names port-s, the core-facing one
/// its main port, in the order each side's route set needs. The UE's in-dialog
/// requests (ACK, BYE) sent along its route set reach port-s through the SAs and go on
/// to the core; the core's in-dialog request reaches the UE's port-s from port-c.
/// Both directions: the UE calling and the UE called.
#[tokio::test]
async fn dialogs_of_a_protected_ue_are_double_record_routed() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("p.sqlite").display());
    let core = Peer::new().await;
    let sa = Arc::new(MemorySaStore::new(ims_ipsec::plan::DEFAULT_PCSCF_REQID));
    let (pc, ps) = ports();
    let p = start_protected(&core, &db, &sa, (pc, ps), |_| {}).await;
    let pcscf = p.udp;
    let protected = std::net::SocketAddr::new(pcscf.ip(), ps);
    let ue = Ue {
        plain: Peer::new().await,
        port_c: Peer::new().await,
        port_s: Peer::new().await,
    };
    register_protected(&core, &ue, pcscf, protected).await;
    let uec = ue.port_c.addr;
    let ue_facing = format!("<sip:127.0.0.1:{ps};lr>");
    let core_facing = format!("<sip:127.0.0.1:{};lr>", pcscf.port());
    let orig = format!("<sip:orig@{};lr>", core.addr);

    // --- The UE calls: INVITE through its SAs. ---
    let invite = format!(
        "INVITE sip:bob@ims.test SIP/2.0\r\nVia: SIP/2.0/UDP {uec};branch=z9hG4bKmo1;rport\r\nMax-Forwards: 70\r\n\
Route: <sip:{protected};lr>\r\nFrom: <sip:alice@ims.test>;tag=a1\r\nTo: <sip:bob@ims.test>\r\n\
Call-ID: mo1\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@{uec}>\r\nContent-Length: 0\r\n\r\n"
    );
    ue.port_c.send(protected, &invite).await;
    let (inv, from) = recv_final(&core).await;
    assert_eq!(inv.method(), Some("INVITE"));
    let rr = inv.list("record-route");
    assert_eq!(
        rr,
        vec![core_facing.clone(), ue_facing.clone()],
        "core-facing entry above the UE-facing one"
    );
    assert_eq!(inv.list("route"), vec![orig.clone()], "Service-Route");
    // The callee side (the S-CSCF record-routes too) answers 200 with the list.
    let callee_rr = format!("<sip:mo@{};lr>", core.addr);
    let rr_200 = [callee_rr.clone(), core_facing.clone(), ue_facing.clone()];
    core.answer(
        &inv,
        from,
        200,
        "OK",
        &[
            ("Record-Route", rr_200.join(", ")),
            ("Contact", format!("<sip:bob@{}>", core.addr)),
        ],
    )
    .await;
    let (ok, src) = recv_final(&ue.port_c).await;
    assert_eq!((ok.code(), src.port()), (Some(200), ps), "200 from port-s");
    let seen = ok.list("record-route");
    assert_eq!(
        seen.last(),
        Some(&ue_facing),
        "the UE's route set starts with the UE-facing entry (port-s)"
    );
    // The UE's route set: the 200's Record-Route reversed (RFC 3261 §12.1.2).
    let ue_routes: Vec<String> = seen.iter().rev().cloned().collect();
    let bob = format!("sip:bob@{}", core.addr);
    let (alice_tag, bob_tag) = (
        "<sip:alice@ims.test>;tag=a1",
        "<sip:bob@ims.test>;tag=coretag",
    );
    // ACK for the 2xx, along the route set: popped to the S-CSCF's entry.
    ue.port_c
        .send(
            protected,
            &in_dialog("ACK", &bob, uec, &ue_routes, alice_tag, bob_tag, "mo1", 1),
        )
        .await;
    let (ack, _) = core.recv().await;
    assert_eq!(ack.method(), Some("ACK"));
    assert_eq!(ack.list("route"), vec![callee_rr.clone()]);

    // The core's in-dialog request: its route set from the S-CSCF on is the two
    // P-CSCF entries; the request reaches the UE's port-s from port-c.
    let core_routes = vec![core_facing.clone(), ue_facing.clone()];
    core.send(
        pcscf,
        &in_dialog(
            "INFO",
            &format!("sip:alice@{uec}"),
            core.addr,
            &core_routes,
            bob_tag,
            alice_tag,
            "mo1",
            2,
        ),
    )
    .await;
    let (info, src) = ue.port_s.recv().await;
    assert_eq!(info.method(), Some("INFO"));
    assert_eq!(src.port(), pc, "from the P-CSCF's port-c");
    assert!(info.list("route").is_empty(), "both own entries popped");
    ue.port_s.answer(&info, src, 200, "OK", &[]).await;
    let (r, _) = core.recv().await;
    assert_eq!((r.method(), r.code()), (None, Some(200)));

    // BYE from the UE along its route set reaches the core.
    ue.port_c
        .send(
            protected,
            &in_dialog("BYE", &bob, uec, &ue_routes, alice_tag, bob_tag, "mo1", 3),
        )
        .await;
    let (bye, from) = core.recv().await;
    assert_eq!(bye.method(), Some("BYE"));
    assert_eq!(bye.list("route"), vec![callee_rr]);
    core.answer(&bye, from, 200, "OK", &[]).await;
    let (r, src) = recv_final(&ue.port_c).await;
    assert_eq!((r.code(), src.port()), (Some(200), ps));

    // --- The UE is called: INVITE from the core along the Path. ---
    let mt_rr = format!("<sip:mt@{};lr>", core.addr);
    let invite = format!(
        "INVITE sip:alice@{uec} SIP/2.0\r\nVia: SIP/2.0/UDP {c};branch=z9hG4bKmt1\r\nMax-Forwards: 70\r\n\
Route: <sip:term@{pcscf};lr>\r\nRecord-Route: {mt_rr}\r\nFrom: <sip:bob@ims.test>;tag=b2\r\nTo: <sip:alice@ims.test>\r\n\
Call-ID: mt1\r\nCSeq: 1 INVITE\r\nContact: <sip:bob@{c}>\r\nContent-Length: 0\r\n\r\n",
        c = core.addr
    );
    core.send(pcscf, &invite).await;
    let (inv, src) = ue.port_s.recv().await;
    assert_eq!((inv.method(), src.port()), (Some("INVITE"), pc));
    let rr = inv.list("record-route");
    assert_eq!(
        rr,
        vec![ue_facing.clone(), core_facing.clone(), mt_rr.clone()],
        "UE-facing entry on top for the called UE"
    );
    ue.port_s
        .answer(
            &inv,
            src,
            200,
            "OK",
            &[
                ("Record-Route", rr.join(", ")),
                ("Contact", format!("<sip:alice@{uec}>")),
            ],
        )
        .await;
    let (ok, _) = recv_final(&core).await;
    assert_eq!(ok.code(), Some(200));
    assert_eq!(ok.list("record-route"), rr, "Record-Route back intact");
    // The called UE's route set is the Record-Route in order (RFC 3261 §12.1.1): its
    // BYE goes to port-s through the SAs, then on to the core.
    ue.port_c
        .send(
            protected,
            &in_dialog(
                "BYE",
                &format!("sip:bob@{}", core.addr),
                uec,
                &rr,
                "<sip:alice@ims.test>;tag=coretag",
                "<sip:bob@ims.test>;tag=b2",
                "mt1",
                1,
            ),
        )
        .await;
    let (bye, from) = core.recv().await;
    assert_eq!(bye.method(), Some("BYE"));
    assert_eq!(bye.list("route"), vec![mt_rr]);
    core.answer(&bye, from, 200, "OK", &[]).await;
    let (r, src) = recv_final(&ue.port_c).await;
    assert_eq!((r.code(), src.port()), (Some(200), ps));
    p.stop().await;
}

/// `[ipsec] unanswered_challenge_s`: the SA set of a 401 the UE never answers is
/// removed (SAs, policies, ports back in the pool) once that many seconds passed, not
/// before; the UE's next unprotected REGISTER gets a new set on the same ports.
#[tokio::test]
async fn unanswered_challenge_set_removed_after_the_configured_time() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("p.sqlite").display());
    let core = Peer::new().await;
    let sa = Arc::new(MemorySaStore::new(ims_ipsec::plan::DEFAULT_PCSCF_REQID));
    let (pc, ps) = ports();
    let p = start_protected(&core, &db, &sa, (pc, ps), |cfg| {
        cfg.ipsec.unanswered_challenge_s = 1;
    })
    .await;
    let pcscf = p.udp;
    let ue = Ue {
        plain: Peer::new().await,
        port_c: Peer::new().await,
        port_s: Peer::new().await,
    };
    challenge(&core, &ue, pcscf, 1).await;
    let t0 = std::time::Instant::now();
    assert_eq!(sa.sa_count(), 4);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sa.sa_count(), 4, "kept while the UE may still answer");
    while sa.sa_count() != 0 && t0.elapsed() < Duration::from_secs(6) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        (sa.sa_count(), sa.policy_count()),
        (0, 0),
        "set of the unanswered 401 removed"
    );
    assert!(t0.elapsed() >= Duration::from_secs(1), "not before 1 s");
    assert!(
        t0.elapsed() < Duration::from_secs(4),
        "removed within a sweep of the deadline: {:?}",
        t0.elapsed()
    );
    // The ports and SPIs went back to the pool: a new challenge gets a set on them.
    let server = challenge(&core, &ue, pcscf, 2).await;
    assert!(server.contains(&format!("port-s={ps}")), "{server}");
    assert_eq!(sa.sa_count(), 4);
    p.stop().await;
}
