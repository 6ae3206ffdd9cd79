//! Receive-side Via processing and the response address.
//!
//! - [`stamp_received`]: RFC 3261 §18.2.1 — add `received=<source ip>` to the top Via
//!   of a request when sent-by is not that address; RFC 3581 §4 — when the top Via has
//!   `rport` without a value, set it to the source port (and always add `received`).
//!   Only the top Via value is rewritten; every other octet is kept.
//! - [`response_destination`]: RFC 3261 §18.2.2 with RFC 3581 §4 — where a response
//!   goes over UDP: `maddr`, else `received` with `rport` (or the sent-by port), else
//!   sent-by.

use std::net::{IpAddr, SocketAddr};

use bytes::{BufMut, BytesMut};
use ims_sip_core::header::{TypedHeader, Via};
use ims_sip_core::uri::Host;
use ims_sip_core::{HeaderName, Message};

/// Default SIP port (RFC 3261 §19.1.2).
pub const DEFAULT_PORT: u16 = 5060;

fn host_ip(h: &Host<'_>) -> Option<IpAddr> {
    match h {
        Host::V4(a) => Some(IpAddr::V4(*a)),
        Host::V6(a) => Some(IpAddr::V6(*a)),
        Host::Name(n) => n.parse().ok(),
    }
}

/// Byte range of `part` inside `whole` when it is a sub-slice of it.
fn range_in(whole: &[u8], part: &str) -> Option<std::ops::Range<usize>> {
    let start = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    let end = start.checked_add(part.len())?;
    (end <= whole.len()).then_some(start..end)
}

/// The request with `received`/`rport` set on its top Via for a message from
/// `source`; the message itself when nothing needs to change or the Via does not
/// parse (the caller's validation deals with that).
pub fn stamp_received(msg: Message, source: SocketAddr) -> Message {
    if !msg.is_request() {
        return msg;
    }
    let raw = msg.as_bytes().clone();
    let Some(value) = msg.header(HeaderName::Via) else {
        return msg;
    };
    let Some(first) = ims_sip_core::text::split_commas(value).next() else {
        return msg;
    };
    let Ok(mut via) = Via::parse(first) else {
        return msg;
    };
    let rport_flag = matches!(via.rport(), Some(None));
    let sent_by_is_source = host_ip(&via.host) == Some(source.ip());
    if !rport_flag && sent_by_is_source {
        return msg;
    }
    let Some(range) = range_in(&raw, first) else {
        return msg;
    };
    let ip = source.ip().to_string();
    via.params.set("received", Some(ip.as_str()));
    let port = source.port().to_string();
    if rport_flag {
        via.params.set("rport", Some(port.as_str()));
    }
    let text = via.to_string();
    let mut out = BytesMut::with_capacity(raw.len() + 48);
    out.put_slice(&raw[..range.start]);
    out.put_slice(text.as_bytes());
    out.put_slice(&raw[range.end..]);
    match Message::index(out.freeze()) {
        Ok(m) => m,
        Err(_) => msg,
    }
}

/// Where a response goes over UDP (RFC 3261 §18.2.2, RFC 3581 §4), from its top Via;
/// `fallback` (the request's source) when the Via names no usable address.
pub fn response_destination(response: &Message, fallback: SocketAddr) -> SocketAddr {
    let Some(Ok(via)) = response.top_via() else {
        return fallback;
    };
    let port = via.port.unwrap_or(DEFAULT_PORT);
    if let Some(maddr) = via.params.get("maddr").flatten() {
        if let Ok(ip) = maddr.trim_matches(['[', ']']).parse::<IpAddr>() {
            return SocketAddr::new(ip, port);
        }
    }
    if let Some(received) = via.received() {
        if let Ok(ip) = received.trim_matches(['[', ']']).parse::<IpAddr>() {
            let p = match via.rport() {
                Some(Some(rp)) => rp,
                _ => port,
            };
            return SocketAddr::new(ip, p);
        }
    }
    match host_ip(&via.host) {
        Some(ip) => SocketAddr::new(ip, port),
        None => fallback,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(via: &str) -> Message {
        let s = format!(
            "OPTIONS sip:p.ims.test SIP/2.0\r\nVia: {via}\r\nVia: SIP/2.0/UDP 10.9.9.9;branch=z9hG4bKz\r\n\
             From: <sip:a@ims.test>;tag=1\r\nTo: <sip:p.ims.test>\r\nCall-ID: c1\r\nCSeq: 1 OPTIONS\r\n\
             Max-Forwards: 70\r\nX-Other: keep  me\r\nContent-Length: 0\r\n\r\n"
        );
        Message::parse(s.into_bytes()).unwrap()
    }

    #[test]
    fn adds_received_when_sent_by_differs() {
        let m = req("SIP/2.0/UDP ue.ims.test:5060;branch=z9hG4bK1");
        let m = stamp_received(m, "192.0.2.7:5060".parse().unwrap());
        let v = m.top_via().unwrap().unwrap();
        assert_eq!(v.received(), Some("192.0.2.7"));
        assert_eq!(v.rport(), None);
        assert!(std::str::from_utf8(m.as_bytes())
            .unwrap()
            .contains("X-Other: keep  me\r\n"));
        assert_eq!(m.vias().count(), 2);
    }

    #[test]
    fn leaves_matching_sent_by_alone() {
        let m = req("SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bK1");
        let before = m.as_bytes().clone();
        let m = stamp_received(m, "192.0.2.7:5060".parse().unwrap());
        assert_eq!(m.as_bytes(), &before);
    }

    #[test]
    fn fills_rport_and_always_adds_received() {
        let m = req("SIP/2.0/UDP 192.0.2.7:5060;rport;branch=z9hG4bK1");
        let m = stamp_received(m, "192.0.2.7:40123".parse().unwrap());
        let v = m.top_via().unwrap().unwrap();
        assert_eq!(v.rport(), Some(Some(40123)));
        assert_eq!(v.received(), Some("192.0.2.7"));
        assert_eq!(
            response_destination(&m, "127.0.0.1:1".parse().unwrap()),
            "192.0.2.7:40123".parse().unwrap()
        );
    }

    #[test]
    fn several_vias_on_one_line() {
        let m = req("SIP/2.0/UDP a.test;rport;branch=z9hG4bK1, SIP/2.0/UDP b.test;branch=z9hG4bK2");
        let m = stamp_received(m, "[2001:db8::1]:5070".parse().unwrap());
        let vias: Vec<_> = m.vias().map(|v| v.unwrap().into_owned()).collect();
        assert_eq!(vias.len(), 3);
        assert_eq!(vias[0].received(), Some("2001:db8::1"));
        assert_eq!(vias[0].rport(), Some(Some(5070)));
        assert_eq!(vias[1].branch(), Some("z9hG4bK2"));
        assert_eq!(
            response_destination(&m, "127.0.0.1:1".parse().unwrap()),
            "[2001:db8::1]:5070".parse().unwrap()
        );
    }

    #[test]
    fn destination_without_received() {
        let m = req("SIP/2.0/UDP 192.0.2.7;branch=z9hG4bK1");
        assert_eq!(
            response_destination(&m, "127.0.0.1:1".parse().unwrap()),
            "192.0.2.7:5060".parse().unwrap()
        );
        let m = req("SIP/2.0/UDP ue.ims.test:5080;branch=z9hG4bK1");
        assert_eq!(
            response_destination(&m, "127.0.0.1:1".parse().unwrap()),
            "127.0.0.1:1".parse().unwrap()
        );
    }
}
