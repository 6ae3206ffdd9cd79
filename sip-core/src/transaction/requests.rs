//! Requests the transaction layer builds itself: the ACK for a non-2xx final response
//! (RFC 3261 §17.1.1.3) and CANCEL (§9.1).

use bytes::{BufMut, Bytes, BytesMut};

use crate::header::{CSeq, TypedHeader};
use crate::header_name::HeaderName;
use crate::message::Message;

fn put(out: &mut BytesMut, name: &str, value: &str) {
    out.put_slice(name.as_bytes());
    out.put_slice(b": ");
    out.put_slice(value.as_bytes());
    out.put_slice(b"\r\n");
}

/// Common part of ACK and CANCEL: Request-Line, top Via only, From, To, Call-ID, CSeq
/// with the new method, Route lines, Max-Forwards 70, no body.
fn build(req: &Message, method: &str, to_value: &str) -> Bytes {
    let mut out = BytesMut::with_capacity(req.len());
    out.put_slice(format!("{method} {} SIP/2.0\r\n", req.request_uri_str().unwrap_or("")).as_bytes());
    if let Some(via) = req.header_elements(HeaderName::Via).next() {
        put(&mut out, "Via", via);
    }
    put(&mut out, "Max-Forwards", "70");
    if let Some(f) = req.header(HeaderName::From) {
        put(&mut out, "From", f);
    }
    put(&mut out, "To", to_value);
    if let Some(c) = req.call_id() {
        put(&mut out, "Call-ID", c);
    }
    let seq = req
        .header(HeaderName::CSeq)
        .and_then(|c| CSeq::parse(c).ok())
        .map(|c| c.seq)
        .unwrap_or(0);
    put(&mut out, "CSeq", &format!("{seq} {method}"));
    for r in req.header_values(HeaderName::Route) {
        put(&mut out, "Route", r);
    }
    put(&mut out, "Content-Length", "0");
    out.put_slice(b"\r\n");
    out.freeze()
}

/// The ACK for a non-2xx final response to `invite` (To taken from the response).
pub fn build_ack(invite: &Message, response: &Message) -> Bytes {
    let to = response
        .header(HeaderName::To)
        .or_else(|| invite.header(HeaderName::To))
        .unwrap_or("");
    build(invite, "ACK", to)
}

/// A CANCEL for `invite` (§9.1): same Request-URI, Call-ID, From, To, CSeq number and top
/// Via (so it reaches the same server transaction's element), Route copied.
pub fn build_cancel(invite: &Message) -> Bytes {
    build(invite, "CANCEL", invite.header(HeaderName::To).unwrap_or(""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transaction::TransactionKey;

    #[test]
    fn ack_and_cancel() {
        let inv = Message::parse(
            &b"INVITE sip:b@ims.test SIP/2.0\r\nVia: SIP/2.0/UDP p:5060;branch=z9hG4bKa, SIP/2.0/UDP u;branch=z9hG4bKu\r\n\
Route: <sip:s;lr>\r\nMax-Forwards: 69\r\nFrom: <sip:a@ims.test>;tag=1\r\nTo: <sip:b@ims.test>\r\nCall-ID: c9\r\nCSeq: 42 INVITE\r\n\
Content-Type: application/sdp\r\nContent-Length: 3\r\n\r\nv=0"[..],
        )
        .unwrap();
        let resp = Message::parse(
            &b"SIP/2.0 486 Busy Here\r\nVia: SIP/2.0/UDP p:5060;branch=z9hG4bKa\r\nVia: SIP/2.0/UDP u;branch=z9hG4bKu\r\n\
From: <sip:a@ims.test>;tag=1\r\nTo: <sip:b@ims.test>;tag=9\r\nCall-ID: c9\r\nCSeq: 42 INVITE\r\nContent-Length: 0\r\n\r\n"[..],
        )
        .unwrap();
        let ack = Message::parse(build_ack(&inv, &resp)).unwrap();
        assert_eq!(ack.method().unwrap().as_str(), "ACK");
        assert_eq!(ack.request_uri_str(), Some("sip:b@ims.test"));
        assert_eq!(ack.vias().count(), 1);
        assert_eq!(ack.to_addr().unwrap().unwrap().tag(), Some("9"));
        assert_eq!(ack.cseq().unwrap().unwrap().to_string(), "42 ACK");
        assert_eq!(ack.header(HeaderName::Route), Some("<sip:s;lr>"));
        assert!(ack.body().is_empty());
        assert_eq!(
            TransactionKey::server(&ack).unwrap(),
            TransactionKey::server(&inv).unwrap()
        );
        let cancel = Message::parse(build_cancel(&inv)).unwrap();
        assert_eq!(cancel.cseq().unwrap().unwrap().to_string(), "42 CANCEL");
        assert_eq!(
            TransactionKey::server(&cancel).unwrap().cancel_target(),
            TransactionKey::server(&inv).unwrap()
        );
    }
}
