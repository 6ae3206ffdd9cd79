//! RFC 4475 torture messages (testdata/rfc4475, see PROVENANCE.md) against the
//! expectation class in INDEX.tsv: valid ones parse (never a 400) and print back
//! byte-identical; invalid ones are refused with 400/505 (requests) or dropped
//! (responses); the semantic ones get what a proxy must answer.

use std::collections::BTreeMap;
use std::path::PathBuf;

use bytes::Bytes;
use ims_sip_core::framing::{check, check_frame, Frame, FramingError};
use ims_sip_core::validate::{check_request_for_proxy, unsupported_proxy_options, SUPPORTED_PROXY_OPTIONS};
use ims_sip_core::{HeaderName, Message, StatusCode};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/rfc4475")
}

fn load(name: &str) -> Bytes {
    Bytes::from(std::fs::read(dir().join(format!("{name}.dat"))).expect("torture file"))
}

fn index() -> BTreeMap<String, (String, String)> {
    let text = std::fs::read_to_string(dir().join("INDEX.tsv")).expect("INDEX.tsv");
    text.lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[0].to_string(), (f[2].to_string(), f[3].to_string()))
        })
        .collect()
}

/// What this crate does with each message, spelled out per name.
#[derive(Debug, PartialEq)]
enum Expect {
    /// Parses; a proxy forwards it (check_request_for_proxy is Ok for requests).
    Forward,
    /// Parses; the proxy answers with this code.
    ProxyAnswers(u16),
    /// Refused at parse time with this status (None: dropped, it's a response).
    Refused(Option<u16>),
}

fn expectation(name: &str, class: &str) -> Expect {
    use Expect::*;
    match name {
        "badvers" => Refused(Some(505)),
        "bigcode" | "scalarlg" => Refused(None),
        "insuf" | "multi01" | "mcl01" => Refused(Some(400)),
        "unkscm" | "novelsc" => ProxyAnswers(416),
        "bext01" => ProxyAnswers(420),
        "zeromf" => ProxyAnswers(483),
        _ => match class {
            "valid" | "semantic" | "backcompat" => Forward,
            "invalid" => Refused(Some(400)),
            other => panic!("unknown class {other}"),
        },
    }
}

#[test]
fn every_torture_message_gets_the_expected_answer() {
    let idx = index();
    assert_eq!(idx.len(), 49, "INDEX.tsv lists 49 messages");
    let mut checked = 0;
    for (name, (class, _)) in &idx {
        let raw = load(name);
        let exp = expectation(name, class);
        let res = Message::parse(raw.clone());
        match (&exp, &res) {
            (Expect::Refused(code), Err(e)) => {
                assert_eq!(e.response_status().map(|s| s.as_u16()), *code, "{name}: {e}");
                if code.is_some() {
                    // A 400/505 can be built: the header section was indexed.
                    let m = e
                        .message()
                        .unwrap_or_else(|| panic!("{name}: no message to answer"));
                    assert!(m.header(HeaderName::Via).is_some(), "{name}");
                }
            }
            (Expect::Forward | Expect::ProxyAnswers(_), Ok(m)) => {
                // Printing an unmodified message gives the octets back.
                assert!(raw.starts_with(m.as_bytes()), "{name}: printed bytes differ");
                assert_eq!(m.edit().finish(), *m.as_bytes(), "{name}: editor without edits");
                if m.is_request() {
                    let got = check_request_for_proxy(m, SUPPORTED_PROXY_OPTIONS)
                        .err()
                        .map(|s| s.as_u16());
                    let want = match exp {
                        Expect::ProxyAnswers(c) => Some(c),
                        _ => None,
                    };
                    assert_eq!(got, want, "{name}: proxy decision");
                }
            }
            _ => panic!("{name} ({class}): expected {exp:?}, got {res:?}"),
        }
        checked += 1;
    }
    assert_eq!(checked, 49);
}

#[test]
fn dblreq_only_the_register() {
    let raw = load("dblreq");
    let m = Message::parse(raw.clone()).unwrap();
    assert_eq!(m.method().map(|m| m.as_str()), Some("REGISTER"));
    assert!(m.body().is_empty());
    assert!(m.len() < raw.len());
    assert!(!m.as_bytes().windows(6).any(|w| w == b"INVITE"));
    assert_eq!(m.call_id(), Some("dblreq.0ha0isndaksdj99sdfafnl3lk233412"));
}

#[test]
fn wsinv_fields() {
    let m = Message::parse(load("wsinv")).unwrap();
    assert_eq!(m.call_id(), Some("wsinv.ndaksdj@192.0.2.1"));
    assert_eq!(m.cseq().unwrap().unwrap().seq, 9);
    assert_eq!(m.max_forwards(), Some(68));
    let vias: Vec<_> = m.vias().map(|v| v.unwrap().into_owned()).collect();
    assert_eq!(vias.len(), 3);
    assert_eq!(vias[1].branch(), Some("z9hG4bK9ikj8"));
    assert_eq!(vias[1].transport, "TCP");
    assert_eq!(vias[2].branch(), Some("z9hG4bK30239"));
    assert_eq!(m.to_addr().unwrap().unwrap().tag(), Some("1918181833n"));
    assert_eq!(m.from_addr().unwrap().unwrap().tag(), Some("98asjd8"));
    assert_eq!(m.header(HeaderName::Subject), Some(""));
    assert_eq!(
        m.header_str("newfangledheader"),
        Some("newfangled value\r\n continued newfangled value")
    );
    assert_eq!(m.body().len(), 150);
}

#[test]
fn binary_and_utf8_kept() {
    let raw = load("mpart01");
    let m = Message::parse(raw.clone()).unwrap();
    assert_eq!(m.body().len(), 553);
    assert!(raw.ends_with(m.body()));
    let m = Message::parse(load("unreason")).unwrap();
    assert_eq!(m.status(), Some(StatusCode::OK));
    assert!(m.reason().unwrap().starts_with("= 2**3 * 5**2 но"));
    let m = Message::parse(load("noreason")).unwrap();
    assert_eq!(m.reason(), Some(""));
    let m = Message::parse(load("intmeth")).unwrap();
    assert_eq!(
        m.method().unwrap().as_str(),
        "!interesting-Method0123456789_*+`.%indeed'~"
    );
    let m = Message::parse(load("esc02")).unwrap();
    assert_ne!(m.method(), Some(&ims_sip_core::Method::Register));
    assert_eq!(m.header_values(HeaderName::Contact).count(), 2);
    assert_eq!(m.header_str("C%6Fntact"), Some("<sip:alias2@host2.example.com>"));
}

#[test]
fn bext01_unsupported_lists_proxy_require_only() {
    let m = Message::parse(load("bext01")).unwrap();
    let u: Vec<_> = unsupported_proxy_options(&m, SUPPORTED_PROXY_OPTIONS).collect();
    assert_eq!(u, vec!["noProxiesSupportThis", "norDoAnyProxiesSupportThis"]);
}

#[test]
fn stream_framing_of_torture_messages() {
    assert_eq!(check(&load("clerr")), Ok(None), "clerr: wait for more octets");
    assert!(matches!(
        check(&load("ncl")),
        Err(FramingError::BadContentLength(_))
    ));
    assert!(matches!(
        check(&load("mcl01")),
        Err(FramingError::BadContentLength(_))
    ));
    let dbl = load("dblreq");
    let Ok(Frame::Message(n)) = check_frame(&dbl) else {
        panic!("dblreq frames")
    };
    let first = Message::parse(dbl.slice(..n)).unwrap();
    assert_eq!(first.method().unwrap().as_str(), "REGISTER");
    // Over a stream, the rest is the next message (with a bad SDP, but well framed).
    let rest = &dbl[n..];
    assert!(matches!(check_frame(rest), Ok(Frame::KeepAlive(2))));
    let Ok(Frame::Message(n2)) = check_frame(&rest[2..]) else {
        panic!("second frames")
    };
    let second = Message::parse(Bytes::copy_from_slice(&rest[2..2 + n2])).unwrap();
    assert_eq!(second.method().unwrap().as_str(), "INVITE");
    assert_eq!(second.body().len(), 150);
}
