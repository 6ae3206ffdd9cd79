//! Unit tests of the registrar / notifier core against the fake HSS (no sockets).

use crate::core::{Core, Outcome};
use crate::cx::{AuthScheme, CxError, ServerAssignmentType as Sat};
use crate::notifier::Notify;
use crate::notifier::RtrReason;
use crate::settings::Settings;
use crate::testutil::*;
use ims_sip_core::Message;
use std::sync::Arc;
use std::time::Duration;

const NOW: u64 = 1_800_000_000;

fn core(hss: &Arc<FakeHss>) -> Core {
    let mut s = Settings::new("sip:scscf.ims.test:6060");
    s.realm = Some("ims.test".into());
    s.hss_timeout = Duration::from_millis(200);
    Core::new(s, hss.clone(), None)
}

fn msg(s: &str) -> Message {
    Message::parse(s.as_bytes().to_vec()).expect("test message parses")
}

fn code(o: &Outcome) -> u16 {
    o.code()
}

/// A NOTIFY as the service sends it.
fn req(n: &Notify) -> Message {
    n.to_request("UDP", "127.0.0.1:6060", "z9hG4bKtest")
        .expect("NOTIFY builds")
}

fn to_tag(m: &Message) -> Option<String> {
    m.to_addr()?.ok()?.tag().map(str::to_string)
}

async fn challenge(c: &Core, spec: &RegisterSpec) -> (Outcome, String) {
    let o = c.register(&msg(&spec.to_text()), NOW).await;
    assert_eq!(code(&o), 401, "{:?}", o.response);
    let www = o
        .response
        .header_str("WWW-Authenticate")
        .unwrap()
        .to_string();
    let nonce = nonce_of(&www).unwrap();
    (o, nonce)
}

async fn register_ok(c: &Core, spec: &RegisterSpec) -> Outcome {
    let (_, nonce) = challenge(c, spec).await;
    let mut s2 = spec.clone();
    s2.cseq += 1;
    s2.authorization = Some(answer(
        &spec.impi,
        "ims.test",
        &nonce,
        &hex::decode(SET1_RES).unwrap(),
        true,
        1,
    ));
    let o = c.register(&msg(&s2.to_text()), NOW).await;
    assert_eq!(code(&o), 200, "{:?}", o.response);
    o
}

#[tokio::test]
async fn initial_register_is_challenged_with_aka() {
    let hss = Arc::new(FakeHss::new(&["sip:alice@ims.test"]));
    let c = core(&hss);
    let (o, nonce) = challenge(&c, &RegisterSpec::alice()).await;
    let www = o.response.header_str("WWW-Authenticate").unwrap();
    assert!(www.starts_with("Digest realm=\"ims.test\""));
    assert!(www.contains("algorithm=AKAv1-MD5"));
    assert!(www.contains("qop=\"auth\""));
    assert!(www.contains(&format!("ck=\"{SET1_CK}\"")));
    assert!(www.contains(&format!("ik=\"{SET1_IK}\"")));
    assert!(!www.contains("stale"));
    let raw = crate::auth::decode_nonce(&nonce).unwrap();
    assert_eq!(hex::encode(&raw[16..]), SET1_AUTN);
    let mar = &hss.mar_log()[0];
    assert_eq!(
        mar.impi, "alice@ims.test",
        "IMPI derived from To without sip:"
    );
    assert_eq!(mar.impu, "sip:alice@ims.test");
    assert_eq!(mar.scheme, AuthScheme::AkaV1Md5);
    assert_eq!(mar.server_name, "sip:scscf.ims.test:6060");
    assert!(hss.sar_log().is_empty());
    assert!(c.registration("sip:alice@ims.test").is_none());
}

#[tokio::test]
async fn impi_from_authorization_username() {
    let hss = Arc::new(FakeHss::new(&["sip:alice@ims.test"]));
    let c = core(&hss);
    let mut s = RegisterSpec::alice();
    s.authorization = Some("Digest username=\"001010000000001@ims.mnc001.mcc001.3gppnetwork.org\", realm=\"ims.test\", nonce=\"\", uri=\"sip:ims.test\", response=\"\"".into());
    challenge(&c, &s).await;
    assert_eq!(
        hss.mar_log()[0].impi,
        "001010000000001@ims.mnc001.mcc001.3gppnetwork.org"
    );
}

#[tokio::test]
async fn correct_response_registers_with_headers() {
    let hss = Arc::new(FakeHss::new(&["sip:alice@ims.test", "tel:+15551234"]));
    let c = core(&hss);
    let o = register_ok(&c, &RegisterSpec::alice()).await;
    let r = &o.response;
    assert_eq!(
        r.header_str("Service-Route"),
        Some("<sip:orig@scscf.ims.test:6060;lr>")
    );
    assert_eq!(
        r.header_str("P-Associated-URI"),
        Some("<sip:alice@ims.test>, <tel:+15551234>")
    );
    assert_eq!(
        r.header_str("Path"),
        Some("<sip:term@pcscf.ims.test:5060;lr>")
    );
    assert_eq!(
        r.header_str("Contact"),
        Some("<sip:alice@10.0.0.9:5060>;expires=600")
    );
    assert!(to_tag(r).is_some());
    let sars = hss.sar_log();
    assert_eq!(sars.len(), 1);
    assert_eq!(sars[0].assignment, Sat::Registration);
    // implicit registration set: the tel URI is registered with the same bindings
    let reg = c
        .registration("tel:+15551234")
        .expect("IRS member registered");
    assert_eq!(reg.contacts.len(), 1);
    assert_eq!(reg.impus, vec!["sip:alice@ims.test", "tel:+15551234"]);
}

#[tokio::test]
async fn response_without_qop_is_accepted_once() {
    let hss = Arc::new(FakeHss::new(&["sip:alice@ims.test"]));
    let c = core(&hss);
    let spec = RegisterSpec::alice();
    let (_, nonce) = challenge(&c, &spec).await;
    let mut s2 = spec.clone();
    s2.cseq = 2;
    s2.authorization = Some(answer(
        &spec.impi,
        "ims.test",
        &nonce,
        &hex::decode(SET1_RES).unwrap(),
        false,
        0,
    ));
    assert_eq!(code(&c.register(&msg(&s2.to_text()), NOW).await), 200);
    // replaying it is not accepted again: fresh stale challenge
    s2.cseq = 3;
    let o = c.register(&msg(&s2.to_text()), NOW).await;
    assert_eq!(code(&o), 401);
    assert!(o
        .response
        .header_str("WWW-Authenticate")
        .unwrap()
        .contains("stale=true"));
}

#[tokio::test]
async fn wrong_response_is_403_and_no_binding() {
    let hss = Arc::new(FakeHss::new(&["sip:alice@ims.test"]));
    let c = core(&hss);
    let spec = RegisterSpec::alice();
    let (_, nonce) = challenge(&c, &spec).await;
    let mut s2 = spec.clone();
    s2.cseq = 2;
    // the hex text of RES instead of its bytes: a classic interop bug
    s2.authorization = Some(answer(
        &spec.impi,
        "ims.test",
        &nonce,
        SET1_RES.as_bytes(),
        true,
        1,
    ));
    let o = c.register(&msg(&s2.to_text()), NOW).await;
    assert_eq!(code(&o), 403);
    assert!(c.registration("sip:alice@ims.test").is_none());
    assert!(hss.sar_log().is_empty());
    // the nonce is burnt: retrying with the right answer gets a fresh challenge
    s2.cseq = 3;
    s2.authorization = Some(answer(
        &spec.impi,
        "ims.test",
        &nonce,
        &hex::decode(SET1_RES).unwrap(),
        true,
        1,
    ));
    assert_eq!(code(&c.register(&msg(&s2.to_text()), NOW).await), 401);
}

#[tokio::test]
async fn other_username_with_our_nonce_is_403() {
    let hss = Arc::new(FakeHss::new(&["sip:alice@ims.test"]));
    let c = core(&hss);
    let spec = RegisterSpec::alice();
    let (_, nonce) = challenge(&c, &spec).await;
    let mut s2 = spec.clone();
    s2.cseq = 2;
    s2.authorization = Some(answer(
        "mallory@ims.test",
        "ims.test",
        &nonce,
        &hex::decode(SET1_RES).unwrap(),
        true,
        1,
    ));
    assert_eq!(code(&c.register(&msg(&s2.to_text()), NOW).await), 403);
}

#[tokio::test]
async fn unknown_nonce_gets_stale_challenge() {
    let hss = Arc::new(FakeHss::new(&["sip:alice@ims.test"]));
    let c = core(&hss);
    let mut s = RegisterSpec::alice();
    s.authorization = Some(answer(
        &s.impi,
        "ims.test",
        "bm90LWEtbm9uY2U=",
        b"x",
        true,
        1,
    ));
    let o = c.register(&msg(&s.to_text()), NOW).await;
    assert_eq!(code(&o), 401);
    assert!(o
        .response
        .header_str("WWW-Authenticate")
        .unwrap()
        .contains("stale=true"));
}

#[tokio::test]
async fn expired_nonce_gets_stale_challenge() {
    let hss = Arc::new(FakeHss::new(&["sip:alice@ims.test"]));
    let mut s = Settings::new("sip:scscf.ims.test:6060");
    s.realm = Some("ims.test".into());
    s.nonce_ttl = Duration::from_millis(1);
    let c = Core::new(s, hss.clone(), None);
    let spec = RegisterSpec::alice();
    let (_, nonce) = challenge(&c, &spec).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let mut s2 = spec.clone();
    s2.cseq = 2;
    s2.authorization = Some(answer(
        &spec.impi,
        "ims.test",
        &nonce,
        &hex::decode(SET1_RES).unwrap(),
        true,
        1,
    ));
    let o = c.register(&msg(&s2.to_text()), NOW).await;
    assert_eq!(code(&o), 401);
    assert!(o
        .response
        .header_str("WWW-Authenticate")
        .unwrap()
        .contains("stale=true"));
    assert!(c.registration("sip:alice@ims.test").is_none());
}

#[tokio::test]
async fn auts_triggers_resync_mar() {
    use base64::Engine as _;
    let hss = Arc::new(FakeHss::new(&["sip:alice@ims.test"]));
    let c = core(&hss);
    let spec = RegisterSpec::alice();
    let (_, nonce) = challenge(&c, &spec).await;
    let auts = [0x5au8; 14];
    let mut s2 = spec.clone();
    s2.cseq = 2;
    s2.authorization = Some(format!(
        "Digest username=\"alice@ims.test\", realm=\"ims.test\", nonce=\"{nonce}\", uri=\"sip:ims.test\", response=\"\", auts=\"{}\"",
        base64::engine::general_purpose::STANDARD.encode(auts)
    ));
    let o = c.register(&msg(&s2.to_text()), NOW).await;
    assert_eq!(code(&o), 401);
    let mars = hss.mar_log();
    assert_eq!(mars.len(), 2);
    let resync = mars[1]
        .resync
        .clone()
        .expect("SIP-Authorization = RAND‖AUTS");
    let rand = crate::auth::decode_nonce(&nonce).unwrap()[..16].to_vec();
    assert_eq!(&resync[..16], &rand[..]);
    assert_eq!(&resync[16..], &auts[..]);
    assert_ne!(
        nonce_of(o.response.header_str("WWW-Authenticate").unwrap()).unwrap(),
        nonce
    );
}

#[tokio::test]
async fn unknown_scheme_is_challenged_not_400() {
    // RFC 4475 §3.3.7 regaut01
    let hss = Arc::new(FakeHss::new(&["sip:alice@ims.test"]));
    let c = core(&hss);
    let mut s = RegisterSpec::alice();
    s.authorization = Some("NoOneKnowsThisScheme opaque-data=here".into());
    let (o, _) = challenge(&c, &s).await;
    assert_eq!(code(&o), 401);
    assert!(c.registration("sip:alice@ims.test").is_none());
}

#[tokio::test]
async fn sip_digest_md5_for_password_subscribers() {
    let hss = Arc::new(FakeHss::new(&["sip:bob@ims.test"]));
    hss.set_mode(FakeMode::Password("secret".into()));
    let c = core(&hss);
    let mut spec = RegisterSpec::alice();
    spec.impu = "sip:bob@ims.test".into();
    spec.impi = "bob@ims.test".into();
    let (o, nonce) = challenge(&c, &spec).await;
    let www = o.response.header_str("WWW-Authenticate").unwrap();
    assert!(www.contains("algorithm=MD5"));
    assert!(www.contains("qop=\"auth\""));
    assert!(!www.contains("ck="));
    let mars = hss.mar_log();
    assert_eq!(mars[1].scheme, AuthScheme::SipDigest);
    let mut s2 = spec.clone();
    s2.cseq = 2;
    s2.authorization = Some(answer(
        "bob@ims.test",
        "ims.test",
        &nonce,
        b"secret",
        true,
        1,
    ));
    assert_eq!(code(&c.register(&msg(&s2.to_text()), NOW).await), 200);
    let mut s3 = spec.clone();
    s3.cseq = 3;
    s3.authorization = Some(answer(
        "bob@ims.test",
        "ims.test",
        &nonce,
        b"wrong",
        true,
        2,
    ));
    assert_eq!(code(&c.register(&msg(&s3.to_text()), NOW).await), 403);
}

#[tokio::test]
async fn expiry_limits() {
    let hss = Arc::new(FakeHss::new(&["sip:alice@ims.test"]));
    let c = core(&hss);
    let mut spec = RegisterSpec::alice();
    spec.expires = Some(10);
    let (_, nonce) = challenge(&c, &spec).await;
    let mut s2 = spec.clone();
    s2.cseq = 2;
    s2.authorization = Some(answer(
        &spec.impi,
        "ims.test",
        &nonce,
        &hex::decode(SET1_RES).unwrap(),
        true,
        1,
    ));
    let o = c.register(&msg(&s2.to_text()), NOW).await;
    assert_eq!(code(&o), 423);
    assert_eq!(o.response.header_str("Min-Expires"), Some("60"));
    assert!(c.registration("sip:alice@ims.test").is_none());
    // too long: clamped to max
    s2.cseq = 3;
    s2.expires = Some(9_000_000);
    s2.authorization = Some(answer(
        &spec.impi,
        "ims.test",
        &nonce,
        &hex::decode(SET1_RES).unwrap(),
        true,
        2,
    ));
    let o = c.register(&msg(&s2.to_text()), NOW).await;
    assert_eq!(code(&o), 200);
    assert_eq!(
        o.response.header_str("Contact"),
        Some("<sip:alice@10.0.0.9:5060>;expires=600000")
    );
}

#[tokio::test]
async fn reregister_deregister_and_sar_types() {
    let hss = Arc::new(FakeHss::new(&["sip:alice@ims.test"]));
    let c = core(&hss);
    let spec = RegisterSpec::alice();
    register_ok(&c, &spec).await;
    let mut s = spec.clone();
    s.cseq = 10;
    register_ok(&c, &s).await;
    let mut s = spec.clone();
    s.cseq = 20;
    s.expires = Some(0);
    let o = register_ok(&c, &s).await;
    assert!(o.response.header_str("Contact").is_none());
    let types: Vec<Sat> = hss.sar_log().iter().map(|s| s.assignment).collect();
    assert_eq!(
        types,
        vec![
            Sat::Registration,
            Sat::ReRegistration,
            Sat::UserDeregistration
        ]
    );
    assert!(c.registration("sip:alice@ims.test").is_none());
}

#[tokio::test]
async fn several_contacts_and_star() {
    let hss = Arc::new(FakeHss::new(&["sip:alice@ims.test"]));
    let c = core(&hss);
    let mut spec = RegisterSpec::alice();
    spec.contacts = vec![
        "<sip:alice@10.0.0.9:5060>;+sip.instance=\"<urn:gsma:imei:1>\";reg-id=1".into(),
        "<sip:alice@10.0.0.10:5060>;expires=300".into(),
    ];
    let o = register_ok(&c, &spec).await;
    assert_eq!(o.response.header_values_str("Contact").count(), 2);
    // a second device adds a third contact
    let mut s = spec.clone();
    s.call_id = "other-device".into();
    s.contacts = vec!["<sip:alice@10.0.0.11:5060>".into()];
    let o = register_ok(&c, &s).await;
    assert_eq!(o.response.header_values_str("Contact").count(), 3);
    // remove one by expires=0
    let mut s = spec.clone();
    s.cseq = 10;
    s.contacts = vec!["<sip:alice@10.0.0.10:5060>;expires=0".into()];
    let o = register_ok(&c, &s).await;
    assert_eq!(o.response.header_values_str("Contact").count(), 2);
    // Contact: * with Expires 0 removes all
    let mut s = spec.clone();
    s.cseq = 20;
    s.contacts = vec!["*".into()];
    s.expires = Some(0);
    let o = register_ok(&c, &s).await;
    assert!(o.response.header_str("Contact").is_none());
    assert!(c.registration("sip:alice@ims.test").is_none());
    assert_eq!(
        hss.sar_log().last().unwrap().assignment,
        Sat::UserDeregistration
    );
}

#[tokio::test]
async fn star_without_expires_zero_is_400() {
    let hss = Arc::new(FakeHss::new(&["sip:alice@ims.test"]));
    let c = core(&hss);
    let mut spec = RegisterSpec::alice();
    spec.contacts = vec!["*".into()];
    spec.expires = Some(600);
    let (_, nonce) = challenge(&c, &spec).await;
    let mut s2 = spec.clone();
    s2.cseq = 2;
    s2.authorization = Some(answer(
        &spec.impi,
        "ims.test",
        &nonce,
        &hex::decode(SET1_RES).unwrap(),
        true,
        1,
    ));
    assert_eq!(code(&c.register(&msg(&s2.to_text()), NOW).await), 400);
}

#[tokio::test]
async fn concurrent_registers_for_one_impu_keep_both_contacts() {
    let hss = Arc::new(FakeHss::new(&["sip:alice@ims.test"]));
    *hss.sar_delay.lock().unwrap() = Duration::from_millis(20);
    let c = core(&hss);
    let mut a = RegisterSpec::alice();
    a.contacts = vec!["<sip:alice@10.0.0.1:5060>".into()];
    let mut b = RegisterSpec::alice();
    b.call_id = "device-b".into();
    b.contacts = vec!["<sip:alice@10.0.0.2:5060>".into()];
    let (_, na) = challenge(&c, &a).await;
    let (_, nb) = challenge(&c, &b).await;
    let res = hex::decode(SET1_RES).unwrap();
    a.cseq = 2;
    a.authorization = Some(answer(&a.impi, "ims.test", &na, &res, true, 1));
    b.cseq = 2;
    b.authorization = Some(answer(&b.impi, "ims.test", &nb, &res, true, 1));
    let (ma, mb) = (msg(&a.to_text()), msg(&b.to_text()));
    let (ra, rb) = tokio::join!(c.register(&ma, NOW), c.register(&mb, NOW));
    assert_eq!((code(&ra), code(&rb)), (200, 200));
    let reg = c.registration("sip:alice@ims.test").unwrap();
    assert_eq!(reg.contacts.len(), 2, "no lost update");
    let types: Vec<Sat> = hss.sar_log().iter().map(|s| s.assignment).collect();
    assert_eq!(types, vec![Sat::Registration, Sat::ReRegistration]);
}

#[tokio::test]
async fn hss_failures_map_to_sip() {
    let hss = Arc::new(FakeHss::new(&["sip:alice@ims.test"]));
    let c = core(&hss);
    hss.set_mode(FakeMode::Hang);
    let t0 = std::time::Instant::now();
    let o = c
        .register(&msg(&RegisterSpec::alice().to_text()), NOW)
        .await;
    assert!(t0.elapsed() < Duration::from_secs(2), "never hangs");
    assert_eq!(code(&o), 504);
    assert_eq!(o.response.header_str("Retry-After"), Some("30"));
    hss.set_mode(FakeMode::Fail(CxError::Unreachable("no peer".into())));
    assert_eq!(
        code(
            &c.register(&msg(&RegisterSpec::alice().to_text()), NOW)
                .await
        ),
        504
    );
    hss.set_mode(FakeMode::Fail(CxError::Experimental(5001)));
    assert_eq!(
        code(
            &c.register(&msg(&RegisterSpec::alice().to_text()), NOW)
                .await
        ),
        403
    );
    hss.set_mode(FakeMode::Fail(CxError::ResultCode(3004)));
    let o = c
        .register(&msg(&RegisterSpec::alice().to_text()), NOW)
        .await;
    assert_eq!(code(&o), 500);
    assert!(o.response.header_str("Retry-After").is_some());
    // service resumes by itself
    hss.set_mode(FakeMode::Aka);
    register_ok(&c, &RegisterSpec::alice()).await;
}

#[tokio::test]
async fn sar_failure_leaves_no_binding() {
    let hss = Arc::new(FakeHss::new(&["sip:alice@ims.test"]));
    let c = core(&hss);
    let spec = RegisterSpec::alice();
    let (_, nonce) = challenge(&c, &spec).await;
    hss.set_mode(FakeMode::Fail(CxError::Experimental(5004)));
    let mut s2 = spec.clone();
    s2.cseq = 2;
    s2.authorization = Some(answer(
        &spec.impi,
        "ims.test",
        &nonce,
        &hex::decode(SET1_RES).unwrap(),
        true,
        1,
    ));
    assert_eq!(code(&c.register(&msg(&s2.to_text()), NOW).await), 403);
    assert!(c.registration("sip:alice@ims.test").is_none());
}

#[tokio::test]
async fn expiry_sends_timeout_deregistration() {
    let hss = Arc::new(FakeHss::new(&["sip:alice@ims.test"]));
    let c = core(&hss);
    register_ok(&c, &RegisterSpec::alice()).await;
    assert!(c.tick(NOW + 599).await.is_empty());
    assert!(c.registration("sip:alice@ims.test").is_some());
    c.tick(NOW + 600).await;
    assert!(c.registration("sip:alice@ims.test").is_none());
    assert_eq!(
        hss.sar_log().last().unwrap().assignment,
        Sat::TimeoutDeregistration
    );
}

#[tokio::test]
async fn refresh_and_restore_reschedule_expiry() {
    let hss = Arc::new(FakeHss::new(&["sip:alice@ims.test"]));
    let c = core(&hss);
    register_ok(&c, &RegisterSpec::alice()).await;
    // re-registered at NOW + 300 (another 600 s): the first expiry time passes harmlessly
    let mut s = RegisterSpec::alice();
    s.cseq = 10;
    let (_, nonce) = challenge(&c, &s).await;
    s.cseq = 11;
    s.authorization = Some(answer(
        &s.impi,
        "ims.test",
        &nonce,
        &hex::decode(SET1_RES).unwrap(),
        true,
        1,
    ));
    let o = c.register(&msg(&s.to_text()), NOW + 300).await;
    assert_eq!(code(&o), 200);
    c.tick(NOW + 600).await;
    let reg = c
        .registration("sip:alice@ims.test")
        .expect("refreshed binding kept");
    // a restarted node with that state expires it on time
    let c2 = core(&hss);
    c2.restore(vec![reg], Vec::new());
    assert!(c2.tick(NOW + 899).await.is_empty());
    assert!(c2.registration("sip:alice@ims.test").is_some());
    c2.tick(NOW + 900).await;
    assert!(c2.registration("sip:alice@ims.test").is_none());
    assert_eq!(
        hss.sar_log().last().unwrap().assignment,
        Sat::TimeoutDeregistration
    );
}

#[tokio::test]
async fn rtr_removes_bindings() {
    let hss = Arc::new(FakeHss::new(&["sip:alice@ims.test", "tel:+15551234"]));
    let c = core(&hss);
    register_ok(&c, &RegisterSpec::alice()).await;
    let (affected, _) = c
        .registration_termination(
            "alice@ims.test",
            &["tel:+15551234".to_string()],
            RtrReason::PermanentTermination,
            NOW,
        )
        .await;
    assert_eq!(affected, vec!["sip:alice@ims.test", "tel:+15551234"]);
    assert!(c.registration("sip:alice@ims.test").is_none());
    assert_eq!(c.registration_count(), 0);
}

// === reg event (RFC 3680) ===

fn subscribe_text(call_id: &str, expires: u32, to_tag: Option<&str>, cseq: u32) -> String {
    let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
    format!(
        "SUBSCRIBE sip:alice@ims.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKsub{cseq}\r\n\
Record-Route: <sip:mo@pcscf.ims.test:5060;lr>\r\nMax-Forwards: 69\r\n\
From: <sip:alice@ims.test>;tag=ue-sub\r\nTo: <sip:alice@ims.test>{to_tag}\r\nCall-ID: {call_id}\r\n\
CSeq: {cseq} SUBSCRIBE\r\nEvent: reg\r\nAccept: application/reginfo+xml\r\n\
Contact: <sip:alice@10.0.0.9:5060>\r\nExpires: {expires}\r\nContent-Length: 0\r\n\r\n"
    )
}

fn golden(name: &str, actual: &[u8]) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    let actual = std::str::from_utf8(actual).unwrap();
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
    }
    let expected =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(actual, expected, "golden file {name}");
}

async fn subscribed(hss: &Arc<FakeHss>) -> (Core, String) {
    let c = core(hss);
    register_ok(&c, &RegisterSpec::alice()).await;
    let o = c
        .subscribe(&msg(&subscribe_text("sub-1", 600000, None, 1)), NOW)
        .await;
    assert_eq!(code(&o), 200, "{:?}", o.response);
    assert_eq!(o.response.header_str("Expires"), Some("600000"));
    assert_eq!(
        o.response.header_str("Record-Route"),
        Some("<sip:mo@pcscf.ims.test:5060;lr>")
    );
    let tag = to_tag(&o.response).unwrap();
    assert_eq!(o.notifies.len(), 1);
    let notify = &o.notifies[0];
    assert_eq!(notify.next_hop(), "sip:mo@pcscf.ims.test:5060;lr");
    let n = &req(notify);
    assert_eq!(n.method(), Some(&ims_sip_core::Method::Notify));
    assert_eq!(n.request_uri_str(), Some("sip:alice@10.0.0.9:5060"));
    assert_eq!(
        n.header_str("Route"),
        Some("<sip:mo@pcscf.ims.test:5060;lr>")
    );
    assert_eq!(
        n.header_str("From"),
        Some(format!("<sip:alice@ims.test>;tag={tag}").as_str())
    );
    assert_eq!(n.header_str("To"), Some("<sip:alice@ims.test>;tag=ue-sub"));
    assert_eq!(n.header_str("Call-ID"), Some("sub-1"));
    assert_eq!(n.header_str("CSeq"), Some("1 NOTIFY"));
    assert_eq!(n.header_str("Event"), Some("reg"));
    assert_eq!(
        n.header_str("Content-Type"),
        Some("application/reginfo+xml")
    );
    assert_eq!(
        n.header_str("Subscription-State"),
        Some("active;expires=600000")
    );
    golden("register.xml", n.body());
    (c, tag)
}

#[tokio::test]
async fn reg_event_register_reregister_ue_deregister() {
    let hss = Arc::new(FakeHss::new(&["sip:alice@ims.test", "tel:+15551234"]));
    let (c, _tag) = subscribed(&hss).await;
    let mut s = RegisterSpec::alice();
    s.cseq = 10;
    let o = register_ok(&c, &s).await;
    assert_eq!(o.notifies.len(), 1);
    assert_eq!(req(&o.notifies[0]).header_str("CSeq"), Some("2 NOTIFY"));
    assert_eq!(
        req(&o.notifies[0]).header_str("Subscription-State"),
        Some("active;expires=600000")
    );
    golden("reregister.xml", &o.notifies[0].body);
    let mut s = RegisterSpec::alice();
    s.cseq = 20;
    s.expires = Some(0);
    let o = register_ok(&c, &s).await;
    assert_eq!(o.notifies.len(), 1);
    assert_eq!(req(&o.notifies[0]).header_str("CSeq"), Some("3 NOTIFY"));
    assert_eq!(
        req(&o.notifies[0]).header_str("Subscription-State"),
        Some("terminated;reason=noresource")
    );
    golden("ue-deregister.xml", &o.notifies[0].body);
    assert!(c.subscriptions().is_empty());
}

#[tokio::test]
async fn reg_event_rtr() {
    let hss = Arc::new(FakeHss::new(&["sip:alice@ims.test", "tel:+15551234"]));
    let (c, _) = subscribed(&hss).await;
    let (_, n) = c
        .registration_termination(
            "alice@ims.test",
            &[],
            RtrReason::PermanentTermination,
            NOW + 10,
        )
        .await;
    assert_eq!(n.len(), 1);
    // kamailio#4296: must be terminated, not active
    assert_eq!(
        req(&n[0]).header_str("Subscription-State"),
        Some("terminated;reason=rejected")
    );
    golden("rtr-deregister.xml", &n[0].body);
    assert!(c.subscriptions().is_empty());
}

#[tokio::test]
async fn reg_event_expiry() {
    let hss = Arc::new(FakeHss::new(&["sip:alice@ims.test", "tel:+15551234"]));
    let (c, _) = subscribed(&hss).await;
    let n = c.tick(NOW + 600).await;
    assert_eq!(n.len(), 1);
    assert_eq!(
        req(&n[0]).header_str("Subscription-State"),
        Some("terminated;reason=noresource")
    );
    golden("expiry.xml", &n[0].body);
}

#[tokio::test]
async fn reg_event_unsubscribe_refresh_and_errors() {
    let hss = Arc::new(FakeHss::new(&["sip:alice@ims.test", "tel:+15551234"]));
    let (c, tag) = subscribed(&hss).await;
    // refresh in dialog
    let o = c
        .subscribe(&msg(&subscribe_text("sub-1", 3600, Some(&tag), 2)), NOW)
        .await;
    assert_eq!(code(&o), 200);
    assert_eq!(
        req(&o.notifies[0]).header_str("Subscription-State"),
        Some("active;expires=3600")
    );
    assert!(String::from_utf8_lossy(&o.notifies[0].body).contains("version=\"1\""));
    // unknown dialog
    let o = c
        .subscribe(&msg(&subscribe_text("sub-1", 3600, Some("nope"), 3)), NOW)
        .await;
    assert_eq!(code(&o), 481);
    // Expires 0 terminates
    let o = c
        .subscribe(&msg(&subscribe_text("sub-1", 0, Some(&tag), 4)), NOW)
        .await;
    assert_eq!(code(&o), 200);
    assert_eq!(
        req(&o.notifies[0]).header_str("Subscription-State"),
        Some("terminated;reason=timeout")
    );
    assert!(c.subscriptions().is_empty());
    // other event package
    let bad = subscribe_text("sub-2", 60, None, 1).replace("Event: reg", "Event: presence");
    let o = c.subscribe(&msg(&bad), NOW).await;
    assert_eq!(code(&o), 489);
    // not registered
    let other =
        subscribe_text("sub-3", 60, None, 1).replace("sip:alice@ims.test", "sip:nobody@ims.test");
    assert_eq!(code(&c.subscribe(&msg(&other), NOW).await), 403);
}
