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
    // Protected ports for this test run, away from the ephemeral range.
    let base = 20_000 + (std::process::id() % 5_000) as u16 * 2;
    (base, base + 1)
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
            cfg.ipsec.enabled = true;
            cfg.ipsec.allow_unprotected = false;
            cfg.ipsec.port_c = ims_config::PortRange {
                first: pc,
                last: pc,
            };
            cfg.ipsec.port_s = ims_config::PortRange {
                first: ps,
                last: ps,
            };
            cfg.ipsec.dereg_grace_ms = 300;
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
    assert_eq!(sa.sa_count(), 4, "SAs kept during the grace period");
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
