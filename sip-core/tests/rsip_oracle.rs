//! Cross-check against an independent parser: `rsip` 0.4 (dev-dependency only; the
//! project does not use it, see ARCHITECTURE.md). On every valid RFC 4475 message and
//! every handset fixture that rsip manages to parse, Call-ID, CSeq number and method,
//! and the From/To tags must agree with ours. rsip fails on several of these inputs
//! (compact forms, folding, extension methods, …); those are skipped, and the test
//! asserts that enough messages were compared for the check to mean something.

use std::path::PathBuf;

use bytes::Bytes;
use ims_sip_core::Message;
use rsip::prelude::*;

fn files() -> Vec<(String, Vec<u8>)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let index = std::fs::read_to_string(root.join("rfc4475/INDEX.tsv")).expect("INDEX.tsv");
    let mut out = Vec::new();
    for line in index.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        if f[2] == "valid" || f[2] == "semantic" || f[2] == "backcompat" {
            let bytes = std::fs::read(root.join(format!("rfc4475/{}.dat", f[0]))).expect("dat");
            out.push((f[0].to_string(), bytes));
        }
    }
    for e in std::fs::read_dir(root.join("handsets")).expect("handsets") {
        let p = e.expect("entry").path();
        if p.extension().is_some_and(|x| x == "sip") {
            out.push((p.display().to_string(), std::fs::read(&p).expect("fixture")));
        }
    }
    out
}

#[test]
fn rsip_agrees_where_it_parses() {
    let mut compared = 0;
    let mut rsip_failed = Vec::new();
    for (name, bytes) in files() {
        let Ok(ours) = Message::parse(Bytes::from(bytes.clone())) else {
            continue;
        };
        // rsip ignores Content-Length: give it exactly our message's octets.
        let Ok(theirs) = rsip::SipMessage::try_from(ours.as_bytes().as_ref()) else {
            rsip_failed.push(name);
            continue;
        };
        if let Ok(cid) = theirs.call_id_header() {
            assert_eq!(ours.call_id(), Some(cid.value().trim()), "{name}: Call-ID");
            compared += 1;
        }
        if let Ok(cseq) = theirs.cseq_header() {
            if let (Ok(seq), Ok(method)) = (cseq.seq(), cseq.method()) {
                let c = ours.cseq().expect("CSeq").expect("parses");
                assert_eq!(c.seq, seq, "{name}: CSeq number");
                assert_eq!(c.method, method.to_string(), "{name}: CSeq method");
            }
        }
        if let Ok(Ok(Some(tag))) = theirs.from_header().map(|f| f.tag()) {
            let a = ours.from_addr().expect("From").expect("parses");
            assert_eq!(a.tag(), Some(tag.value()), "{name}: From tag");
        }
        if let Ok(Ok(Some(tag))) = theirs.to_header().map(|t| t.tag()) {
            let a = ours.to_addr().expect("To").expect("parses");
            assert_eq!(a.tag(), Some(tag.value()), "{name}: To tag");
        }
    }
    println!("compared {compared} messages with rsip; rsip could not parse: {rsip_failed:?}");
    assert!(compared >= 10, "only {compared} messages could be compared");
}
