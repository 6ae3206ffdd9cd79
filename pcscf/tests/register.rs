//! Registration through the P-CSCF (TS 24.229 §5.2.2) against a fake I-CSCF/registrar
//! over real UDP on loopback: headers added, ck/ik stripped from the 401, the 200 OK
//! stored, P-Asserted-Identity and Service-Route afterwards, terminating requests on the
//! UE's flow, reg-event subscription, and all of it surviving a P-CSCF restart.

mod common;

use common::*;
use ims_sip_core::{NameAddr, Uri};

const CK: &str = "00112233445566778899aabbccddeeff";
const IK: &str = "ffeeddccbbaa99887766554433221100";

#[tokio::test]
async fn register_assert_route_terminate_and_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("pcscf.sqlite").display());
    let core = Peer::new().await;
    let ue = Peer::new().await;
    let p = start_pcscf(core.addr, &db, 0).await;
    let pcscf = p.udp;

    // 1. First REGISTER: P-CSCF adds its headers and routes to the I-CSCF.
    ue.send(pcscf, &register(ue.addr, pcscf, 1, 600, "")).await;
    let (req, from) = core.recv().await;
    assert_eq!(req.method(), Some("REGISTER"));
    let path = req.get("path").expect("Path added");
    assert_eq!(path, format!("<sip:term@{pcscf};lr>"));
    assert_eq!(req.get("p-visited-network-id"), Some("\"visited.test\""));
    assert!(req
        .get("p-charging-vector")
        .unwrap()
        .starts_with("icid-value="));
    assert!(req.get("p-asserted-identity").is_none(), "UE's PAI removed");
    assert!(req.list("require").contains(&"path".to_string()));
    assert!(req.list("supported").contains(&"path".to_string()));
    assert_eq!(req.list("route"), vec![format!("<sip:{};lr>", core.addr)]);
    assert_eq!(req.get("max-forwards"), Some("69"));
    assert_eq!(req.list("via").len(), 2);

    // 2. 401 with ck/ik: the UE must not see them.
    let www = format!(
        "Digest realm=\"ims.test\", nonce=\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\", algorithm=AKAv1-MD5, ck=\"{CK}\", ik=\"{IK}\", qop=\"auth\""
    );
    core.answer(
        &req,
        from,
        401,
        "Unauthorized",
        &[("WWW-Authenticate", www)],
    )
    .await;
    let (r401, _) = ue.recv().await;
    assert_eq!(r401.code(), Some(401));
    let w = r401.get("www-authenticate").unwrap();
    assert!(!w.contains("ck=") && !w.contains("ik="), "{w}");
    assert!(!w.contains(CK) && !w.contains(IK));
    assert!(w.contains("nonce=") && w.contains("qop=\"auth\""));
    assert_eq!(r401.list("via").len(), 1, "P-CSCF's Via removed");

    // 3. Second REGISTER → 200 OK with Service-Route and P-Associated-URI.
    let auth = "Authorization: Digest username=\"alice@ims.test\", realm=\"ims.test\", nonce=\"x\", uri=\"sip:ims.test\", response=\"y\"\r\n";
    ue.send(pcscf, &register(ue.addr, pcscf, 2, 600, auth))
        .await;
    let (req, from) = core.recv().await;
    let a = req.get("authorization").unwrap();
    assert!(a.contains("integrity-protected=\"no\""), "{a}");
    let service_route = format!("<sip:orig@{};lr>", core.addr);
    core.answer(
        &req,
        from,
        200,
        "OK",
        &[
            ("Service-Route", service_route.clone()),
            (
                "P-Associated-URI",
                "<sip:alice@ims.test>, <tel:+15550001>".into(),
            ),
            ("Path", format!("<sip:term@{pcscf};lr>")),
            ("Contact", format!("<sip:alice@{}>;expires=600", ue.addr)),
        ],
    )
    .await;
    let (r200, _) = ue.recv().await;
    assert_eq!(r200.code(), Some(200));

    // 4. Reg-event SUBSCRIBE from the P-CSCF along the Service-Route.
    let (sub, from) = core.recv().await;
    assert_eq!(sub.method(), Some("SUBSCRIBE"));
    assert_eq!(sub.uri(), Some("sip:alice@ims.test"));
    assert_eq!(sub.get("event"), Some("reg"));
    assert_eq!(sub.list("route"), vec![service_route.clone()]);
    core.answer(&sub, from, 200, "OK", &[("Expires", "600000".into())])
        .await;

    // 5. Originating request: PAI asserted, routed via the Service-Route.
    ue.send(pcscf, &message_from_ue(ue.addr, pcscf, 1)).await;
    let (m, from) = core.recv().await;
    assert_eq!(m.method(), Some("MESSAGE"));
    assert_eq!(
        m.list("p-asserted-identity"),
        vec!["<sip:alice@ims.test>".to_string()]
    );
    assert_eq!(m.list("route"), vec![service_route.clone()]);
    core.answer(&m, from, 200, "OK", &[]).await;
    let (r, _) = ue.recv().await;
    assert_eq!(r.code(), Some(200));

    // 6. Terminating request from the core reaches the UE on its flow.
    terminating_round_trip(&core, &ue, pcscf, 1).await;

    // 7. Restart the P-CSCF on the same address with the same store.
    p.stop().await;
    let p = start_pcscf(core.addr, &db, pcscf.port()).await;
    assert_eq!(p.udp, pcscf);
    ue.send(pcscf, &message_from_ue(ue.addr, pcscf, 2)).await;
    let (m, from) = core.recv().await;
    assert_eq!(
        m.list("p-asserted-identity"),
        vec!["<sip:alice@ims.test>".to_string()],
        "PAI still asserted after restart"
    );
    core.answer(&m, from, 200, "OK", &[]).await;
    assert_eq!(ue.recv().await.0.code(), Some(200));
    terminating_round_trip(&core, &ue, pcscf, 2).await;

    // 8. De-registration: afterwards the UE's requests are refused.
    ue.send(pcscf, &register(ue.addr, pcscf, 3, 0, auth)).await;
    let (req, from) = core.recv().await;
    core.answer(&req, from, 200, "OK", &[]).await;
    assert_eq!(ue.recv().await.0.code(), Some(200));
    ue.send(pcscf, &message_from_ue(ue.addr, pcscf, 3)).await;
    let (r, _) = ue.recv().await;
    assert_eq!(r.code(), Some(403), "not registered any more");
    p.stop().await;
}

async fn terminating_round_trip(core: &Peer, ue: &Peer, pcscf: std::net::SocketAddr, n: u32) {
    let text = format!(
        "MESSAGE sip:alice@{ue} SIP/2.0\r\n\
Via: SIP/2.0/UDP {core};branch=z9hG4bKterm{n}\r\n\
Max-Forwards: 70\r\n\
Route: <sip:term@{pcscf};lr>\r\n\
From: <sip:bob@ims.test>;tag=b{n}\r\n\
To: <sip:alice@ims.test>\r\n\
Call-ID: term{n}@core\r\n\
CSeq: 1 MESSAGE\r\n\
P-Asserted-Identity: <sip:bob@ims.test>\r\n\
Content-Length: 0\r\n\r\n",
        ue = ue.addr,
        core = core.addr
    );
    core.send(pcscf, &text).await;
    let (m, from) = ue.recv().await;
    assert_eq!(m.method(), Some("MESSAGE"));
    assert_eq!(from, pcscf);
    assert!(m.list("route").is_empty(), "P-CSCF popped its Path entry");
    let top = m.list("via")[0].clone();
    assert!(top.contains(&pcscf.to_string()), "{top}");
    ue.answer(&m, from, 200, "OK", &[]).await;
    let (r, _) = core.recv().await;
    assert_eq!(r.code(), Some(200));
    assert_eq!(r.list("via").len(), 1);
}

#[tokio::test]
async fn network_deregistration_by_reg_event_notify() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("pcscf.sqlite").display());
    let core = Peer::new().await;
    let ue = Peer::new().await;
    let p = start_pcscf(core.addr, &db, 0).await;
    let pcscf = p.udp;
    ue.send(pcscf, &register(ue.addr, pcscf, 1, 600, "")).await;
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
    assert_eq!(ue.recv().await.0.code(), Some(200));
    let (sub, from) = core.recv().await;
    assert_eq!(sub.method(), Some("SUBSCRIBE"));
    core.answer(&sub, from, 200, "OK", &[]).await;
    let contact = NameAddr::parse(sub.get("contact").unwrap())
        .unwrap()
        .uri
        .to_string();
    match Uri::parse(&contact).unwrap() {
        Uri::Sip(u) => assert_eq!(u.user.as_deref(), Some("pcscf")),
        other => panic!("{other:?}"),
    }
    let body = format!(
        "<?xml version=\"1.0\"?>\n<reginfo xmlns=\"urn:ietf:params:xml:ns:reginfo\" version=\"1\" state=\"full\">\
<registration aor=\"sip:alice@ims.test\" id=\"1\" state=\"terminated\">\
<contact id=\"1\" state=\"terminated\" event=\"deactivated\"><uri>sip:alice@{}</uri></contact>\
</registration></reginfo>",
        ue.addr
    );
    let notify = format!(
        "NOTIFY {contact} SIP/2.0\r\nVia: SIP/2.0/UDP {core};branch=z9hG4bKn1\r\nMax-Forwards: 70\r\n\
From: <sip:alice@ims.test>;tag=s1\r\nTo: <sip:pcscf@{pcscf}>;tag={tag}\r\nCall-ID: {cid}\r\n\
CSeq: 1 NOTIFY\r\nEvent: reg\r\nSubscription-State: terminated\r\n\
Content-Type: application/reginfo+xml\r\nContent-Length: {len}\r\n\r\n{body}",
        core = core.addr,
        tag = NameAddr::parse(sub.get("from").unwrap()).unwrap().tag().unwrap(),
        cid = sub.get("call-id").unwrap(),
        len = body.len()
    );
    core.send(pcscf, &notify).await;
    let (r, _) = core.recv().await;
    assert_eq!(r.code(), Some(200));
    ue.send(pcscf, &message_from_ue(ue.addr, pcscf, 9)).await;
    let (r, _) = ue.recv().await;
    assert_eq!(r.code(), Some(403), "de-registered by the network");
    p.stop().await;
}
