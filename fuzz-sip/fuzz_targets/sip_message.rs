//! Message parse → print → reparse, plus proxy edits and every typed header:
//! - an indexed message prints back as the received octets, and an editor without
//!   edits gives the same octets;
//! - the reprinted message indexes to the same start line, headers and body;
//! - a message after proxy edits still indexes;
//! - typed headers that parse print to text that parses again and prints the same.
#![no_main]

use bytes::Bytes;
use ims_sip_core::header::{
    Allow, Authorization, CSeq, CallId, Contact, ContentType, Event, MaxForwards, PChargingVector,
    PVisitedNetworkId, Path, RecordRoute, RetryAfter, Route, ServiceRoute, SubscriptionState, Supported,
    TypedHeader, Via, Warning, WwwAuthenticate,
};
use ims_sip_core::{Message, NameAddr};
use libfuzzer_sys::fuzz_target;

macro_rules! roundtrip {
    ($h:ident, $value:expr) => {
        if let Ok(h) = $h::parse($value) {
            let printed = h.to_string();
            let again = $h::parse(&printed).unwrap_or_else(|e| panic!("{printed:?} does not reparse: {e}"));
            assert_eq!(again.to_string(), printed);
        }
    };
}

fn typed(m: &Message) {
    for h in m.headers() {
        let v = h.value;
        roundtrip!(Via, v);
        roundtrip!(Contact, v);
        roundtrip!(CSeq, v);
        roundtrip!(CallId, v);
        roundtrip!(MaxForwards, v);
        roundtrip!(Route, v);
        roundtrip!(RecordRoute, v);
        roundtrip!(Path, v);
        roundtrip!(ServiceRoute, v);
        roundtrip!(Authorization, v);
        roundtrip!(WwwAuthenticate, v);
        roundtrip!(ContentType, v);
        roundtrip!(PChargingVector, v);
        roundtrip!(PVisitedNetworkId, v);
        roundtrip!(Supported, v);
        roundtrip!(Event, v);
        roundtrip!(SubscriptionState, v);
        roundtrip!(Allow, v);
        roundtrip!(RetryAfter, v);
        roundtrip!(Warning, v);
        if let Ok(a) = NameAddr::parse(v) {
            let p = a.to_string();
            let b = NameAddr::parse(&p).unwrap_or_else(|e| panic!("{p:?} does not reparse: {e}"));
            assert_eq!(b.to_string(), p);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let input = Bytes::copy_from_slice(data);
    let Ok(m) = Message::index(input.clone()) else {
        let _ = Message::parse(input);
        return;
    };
    let lead = data.iter().take_while(|&&c| c == b'\r' || c == b'\n').count();
    assert!(data[lead..].starts_with(m.as_bytes()));
    let printed = m.edit().finish();
    assert_eq!(&printed, m.as_bytes());
    let again = Message::index(printed).expect("printed message indexes");
    assert_eq!(again.start_line(), m.start_line());
    assert!(again.headers().map(|h| (h.name, h.raw_name, h.value)).eq(m.headers().map(|h| (h.name, h.raw_name, h.value))));
    assert_eq!(again.body(), m.body());

    let mut e = m.edit();
    e.prepend("Via", "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKfuzz");
    e.remove_top_via();
    e.remove_top_via();
    e.pop_route();
    let _ = e.decrement_max_forwards();
    e.remove_param("WWW-Authenticate", "ck");
    e.remove_param("Contact", "expires");
    let _ = e.stamp_via_received("192.0.2.1:5060".parse().expect("address"));
    e.set_body(Some("text/plain"), Bytes::from_static(b"x"));
    let edited = e.finish();
    let em = Message::index(edited).expect("edited message indexes");
    assert_eq!(em.body(), b"x");

    if let Ok(valid) = Message::parse(input) {
        typed(&valid);
    }
});
