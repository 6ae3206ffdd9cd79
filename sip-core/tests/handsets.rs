//! Handset-style REGISTERs (testdata/handsets, see PROVENANCE.md): they parse, print
//! back byte-identical, and survive the proxy edits of a P-CSCF with every untouched
//! line copied byte for byte.

use std::path::PathBuf;

use bytes::Bytes;
use ims_sip_core::builder::{new_branch, ResponseBuilder};
use ims_sip_core::uri::Host;
use ims_sip_core::validate::{check_request_for_proxy, SUPPORTED_PROXY_OPTIONS};
use ims_sip_core::{HeaderName, Message, StatusCode};

fn load(name: &str) -> Bytes {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/handsets")
        .join(name);
    Bytes::from(std::fs::read(p).expect("fixture"))
}

const ALL: &[&str] = &[
    "qualcomm-initial-register.sip",
    "samsung-initial-register.sip",
    "iphone-initial-register.sip",
    "huawei-protected-register.sip",
];

#[test]
fn handset_registers_parse_and_print_identically() {
    for name in ALL {
        let raw = load(name);
        let m = Message::parse(raw.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(m.as_bytes(), &raw, "{name}");
        assert_eq!(m.edit().finish(), raw, "{name}");
        assert_eq!(
            check_request_for_proxy(&m, SUPPORTED_PROXY_OPTIONS),
            Ok(()),
            "{name}"
        );
        assert_eq!(m.method().unwrap().as_str(), "REGISTER");
        assert!(m.header(HeaderName::SecurityClient).is_some(), "{name}");
        assert!(m.top_via().unwrap().is_ok(), "{name}");
        assert!(m.call_id().is_some());
    }
}

#[test]
fn compact_forms_and_middle_content_length() {
    let m = Message::parse(load("qualcomm-initial-register.sip")).unwrap();
    assert_eq!(m.call_id(), Some("1492087089_2850174720@10.45.0.2"));
    assert_eq!(m.cseq().unwrap().unwrap().seq, 701374722);
    assert_eq!(m.header(HeaderName::ContentLength), Some("0"));
    assert_eq!(
        m.header_values(HeaderName::Supported).collect::<Vec<_>>(),
        vec!["path,gruu,sec-agree", "path"]
    );
    assert_eq!(m.header_elements(HeaderName::SecurityClient).count(), 6);
    assert!(m.body().is_empty());
}

#[test]
fn ipv6_via() {
    let m = Message::parse(load("samsung-initial-register.sip")).unwrap();
    let v = m.top_via().unwrap().unwrap();
    assert_eq!(v.host, Host::V6("2001:db8:45::2".parse().unwrap()));
    assert_eq!(v.port, Some(5060));
    assert_eq!(v.rport(), Some(None));
    assert_eq!(v.branch(), Some("z9hG4bK-524287-1---8a1b2c3d4e5f6071"));
}

/// The P-CSCF forwards the REGISTER: Via on top, Path, Max-Forwards − 1, P-Visited-Network-ID
/// and P-Charging-Vector; every other line is unchanged.
#[test]
fn pcscf_forwarding_edits_keep_other_lines() {
    let raw = load("qualcomm-initial-register.sip");
    let m = Message::parse(raw.clone()).unwrap();
    let branch = new_branch();
    let mut e = m.edit();
    e.prepend("Via", format_args!("SIP/2.0/UDP 127.0.0.1:5060;branch={branch}"));
    e.prepend("Path", "<sip:term@pcscf.ims.test;lr>");
    assert_eq!(e.decrement_max_forwards(), Ok(69));
    e.append("P-Visited-Network-ID", "\"ims.test\"");
    e.append("P-Charging-Vector", "icid-value=\"abc\"");
    let out = e.finish_message().unwrap();
    // Every original line except Max-Forwards is present verbatim, in order.
    let orig_lines: Vec<&[u8]> = raw
        .split(|&c| c == b'\n')
        .filter(|l| !l.starts_with(b"Max-Forwards"))
        .collect();
    let mut out_lines = out.as_bytes().split(|&c| c == b'\n');
    for l in orig_lines {
        assert!(
            out_lines.any(|o| o == l),
            "line {:?} missing or out of order",
            String::from_utf8_lossy(l)
        );
    }
    assert_eq!(out.vias().count(), 2);
    assert_eq!(out.top_via().unwrap().unwrap().branch(), Some(branch.as_str()));
    assert_eq!(out.max_forwards(), Some(69));
    assert_eq!(out.header(HeaderName::Path), Some("<sip:term@pcscf.ims.test;lr>"));
    assert!(Message::parse(out.as_bytes().clone()).is_ok());

    // The 401 comes back with ck/ik: the P-CSCF removes its Via and strips them.
    let resp = ResponseBuilder::new(&out, StatusCode::UNAUTHORIZED)
        .to_tag("scscf1")
        .header(
            "WWW-Authenticate",
            "Digest realm=\"ims.test\", nonce=\"q80=\", algorithm=AKAv1-MD5, qop=\"auth\", ck=\"00112233445566778899aabbccddeeff\", ik=\"ffeeddccbbaa99887766554433221100\"",
        )
        .build_message()
        .unwrap();
    assert_eq!(resp.vias().count(), 2);
    // CK/IK never reach logs through Debug.
    let dbg = format!("{resp:?} {:?}", resp.edit());
    assert!(
        !dbg.contains("00112233445566778899aabbccddeeff") && dbg.contains("401"),
        "{dbg}"
    );
    let mut e = resp.edit();
    assert!(e.remove_top_via().unwrap().contains(&branch));
    assert_eq!(e.remove_param("WWW-Authenticate", "ck"), 1);
    assert_eq!(e.remove_param("WWW-Authenticate", "ik"), 1);
    let to_ue = Message::parse(e.finish()).unwrap();
    assert_eq!(to_ue.vias().count(), 1);
    assert_eq!(
        to_ue.top_via().unwrap().unwrap().branch(),
        Some("z9hG4bK1492087153")
    );
    let www = to_ue.header(HeaderName::WwwAuthenticate).unwrap();
    assert_eq!(
        www,
        "Digest realm=\"ims.test\", nonce=\"q80=\", algorithm=AKAv1-MD5, qop=\"auth\""
    );
    assert_eq!(to_ue.to_addr().unwrap().unwrap().tag(), Some("scscf1"));
    assert_eq!(to_ue.header(HeaderName::CallId), m.call_id());
}

#[test]
fn editor_operations() {
    let m = Message::parse(
        &b"INVITE sip:bob@ims.test SIP/2.0\r\nRoute: <sip:p1;lr>, <sip:p2;lr>\r\nRoute: <sip:p3;lr>\r\n\
v: SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b;branch=z9hG4bK2\r\nMax-Forwards: 1\r\n\
f: <sip:a@x>;tag=1\r\nt: <sip:b@x>\r\ni: c\r\nCSeq: 1 INVITE\r\nX-Odd:  keep   me \r\nc: text/plain\r\nl: 2\r\n\r\nhi"[..],
    )
    .unwrap();
    let mut e = m.edit();
    assert_eq!(e.pop_route().as_deref(), Some("<sip:p1;lr>"));
    assert_eq!(
        e.remove_top_via().as_deref(),
        Some("SIP/2.0/UDP a;branch=z9hG4bK1")
    );
    e.set_request_uri("sip:bob@10.0.0.9:5060").unwrap();
    assert_eq!(e.decrement_max_forwards(), Ok(0));
    assert_eq!(
        e.decrement_max_forwards(),
        Err(ims_sip_core::EditError::TooManyHops)
    );
    e.set_body(Some("application/sdp"), Bytes::from_static(b"v=0\r\n"));
    e.insert_before("Route", "Record-Route", "<sip:s.ims.test;lr>");
    assert_eq!(e.remove("x-odd"), 1);
    let out = e.finish_message().unwrap();
    assert_eq!(out.request_uri_str(), Some("sip:bob@10.0.0.9:5060"));
    assert_eq!(
        out.header_elements(HeaderName::Route).collect::<Vec<_>>(),
        vec!["<sip:p2;lr>", "<sip:p3;lr>"]
    );
    assert_eq!(out.vias().count(), 1);
    assert_eq!(out.header(HeaderName::ContentType), Some("application/sdp"));
    assert_eq!(out.body(), b"v=0\r\n");
    assert_eq!(out.header(HeaderName::ContentLength), Some("5"));
    assert_eq!(out.header_values(HeaderName::ContentLength).count(), 1);
    assert_eq!(out.headers().next().unwrap().name, HeaderName::RecordRoute);
    assert!(out.header_str("X-Odd").is_none());
    assert!(Message::parse(out.as_bytes().clone()).is_ok());
}

#[test]
fn typed_headers_of_handset_registers() {
    use ims_sip_core::header::{Authorization, Contact, ProxyRequire, Supported};
    for name in ALL {
        let m = Message::parse(load(name)).unwrap();
        let auth = m.typed::<Authorization>().unwrap().unwrap();
        assert!(auth.is_digest(), "{name}");
        assert!(
            auth.username()
                .is_some_and(|u| u.ends_with("@ims.mnc001.mcc001.3gppnetwork.org")),
            "{name}"
        );
        let contact = m.typed::<Contact>().unwrap().unwrap();
        assert_eq!(contact.addrs().len(), 1, "{name}");
        assert!(contact.addrs()[0].expires().is_some(), "{name}");
        assert!(contact.addrs()[0].sip_instance().is_some(), "{name}");
        assert!(m.typed::<ProxyRequire>().unwrap().unwrap().contains("sec-agree"));
        assert!(m.typed_all::<Supported>().all(|s| s.is_ok()));
    }
    let initial = Message::parse(load("samsung-initial-register.sip")).unwrap();
    let auth = initial.typed::<Authorization>().unwrap().unwrap();
    assert_eq!(auth.nonce().as_deref(), Some(""));
    assert_eq!(auth.response().as_deref(), Some(""));
    let c = initial.typed::<Contact>().unwrap().unwrap();
    assert_eq!(c.addrs()[0].reg_id(), Some(1));
    assert_eq!(
        c.addrs()[0].params.get_unquoted("+g.3gpp.accesstype").as_deref(),
        Some("cellular2")
    );
    let prot = Message::parse(load("huawei-protected-register.sip")).unwrap();
    let auth = prot.typed::<Authorization>().unwrap().unwrap();
    assert!(auth.is_aka_v1());
    assert_eq!(
        auth.response().as_deref(),
        Some("6629fae49393a05397450978507c4ef1")
    );
    assert_eq!(auth.qop(), None);
    let iphone = Message::parse(load("iphone-initial-register.sip")).unwrap();
    let c = iphone.typed::<Contact>().unwrap().unwrap();
    assert!(c.addrs()[0].uri.as_sip().unwrap().user.is_none());
}

#[test]
fn via_received_and_rport_stamping() {
    let m = Message::parse(load("samsung-initial-register.sip")).unwrap();
    let mut e = m.edit();
    let src: std::net::SocketAddr = "[2001:db8:45::2]:40001".parse().unwrap();
    assert_eq!(e.stamp_via_received(src), Ok(true));
    let out = e.finish_message().unwrap();
    let v = out.top_via().unwrap().unwrap();
    assert_eq!(v.rport(), Some(Some(40001)));
    assert_eq!(v.received(), Some("2001:db8:45::2"));
    assert_eq!(v.response_target(), ("2001:db8:45::2".to_string(), 40001));
    assert_eq!(v.branch(), Some("z9hG4bK-524287-1---8a1b2c3d4e5f6071"));

    // No rport and sent-by equals the source: unchanged, byte for byte.
    let m = Message::parse(load("iphone-initial-register.sip")).unwrap();
    let mut e = m.edit();
    assert_eq!(e.stamp_via_received("10.45.0.4:5060".parse().unwrap()), Ok(false));
    assert_eq!(e.finish(), *m.as_bytes());
    // NAT: different source IP → received added, second Via value (if any) kept.
    let m = Message::parse(
        &b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1, SIP/2.0/UDP 10.0.0.2;branch=z9hG4bK2\r\n\
From: <sip:a@x>;tag=1\r\nTo: <sip:x>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nl: 0\r\n\r\n"[..],
    )
    .unwrap();
    let mut e = m.edit();
    assert_eq!(e.stamp_via_received("192.0.2.1:6000".parse().unwrap()), Ok(true));
    let out = e.finish_message().unwrap();
    let vias: Vec<_> = out.vias().map(|v| v.unwrap().to_string()).collect();
    assert_eq!(
        vias,
        vec![
            "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;received=192.0.2.1",
            "SIP/2.0/UDP 10.0.0.2;branch=z9hG4bK2"
        ]
    );
}
