//! Transaction keys (RFC 3261 §17.1.3 client matching, §17.2.3 server matching, with
//! the RFC 2543 fallback for requests whose branch lacks the magic cookie).

use std::fmt;

use crate::error::HeaderError;
use crate::header::{CSeq, Via};
use crate::message::Message;
use crate::method::Method;

/// Identifies a transaction.
///
/// RFC 3261 form: top Via `branch`, `sent-by` (server side; empty on the client side)
/// and method (ACK folded onto INVITE). RFC 2543 form (no `z9hG4bK` cookie): `branch`
/// holds a composite of Request-URI, From tag, Call-ID, CSeq number and top Via.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TransactionKey {
    /// Branch (or the RFC 2543 composite).
    pub branch: Box<str>,
    /// Top Via sent-by, lowercased (server keys only).
    pub sent_by: Box<str>,
    /// Method of the transaction (INVITE for ACK).
    pub method: Method,
    /// True for an RFC 2543 composite key.
    pub rfc2543: bool,
}

fn top_via(m: &Message) -> Result<Via<'_>, HeaderError> {
    m.top_via().ok_or(HeaderError::new("Via", "missing"))?
}

fn cseq(m: &Message) -> Result<CSeq<'_>, HeaderError> {
    m.cseq().ok_or(HeaderError::new("CSeq", "missing"))?
}

impl TransactionKey {
    /// Key of a client transaction, from the request it sends (§17.1.3: branch of the
    /// top Via + CSeq method).
    pub fn client(request: &Message) -> Result<TransactionKey, HeaderError> {
        let via = top_via(request)?;
        let branch = via.branch().ok_or(HeaderError::new("Via", "missing branch"))?;
        let method = request
            .method()
            .cloned()
            .ok_or(HeaderError::new("start line", "not a request"))?;
        Ok(TransactionKey {
            branch: branch.into(),
            sent_by: "".into(),
            method: fold_ack(method),
            rfc2543: false,
        })
    }

    /// Key a response matches on the client side (§17.1.3).
    pub fn from_response(response: &Message) -> Result<TransactionKey, HeaderError> {
        let via = top_via(response)?;
        let branch = via.branch().ok_or(HeaderError::new("Via", "missing branch"))?;
        let method = cseq(response)?.method();
        Ok(TransactionKey {
            branch: branch.into(),
            sent_by: "".into(),
            method: fold_ack(method),
            rfc2543: false,
        })
    }

    /// Key of a server transaction for a received request (§17.2.3). ACK maps to the
    /// INVITE transaction; CANCEL has its own (see [`TransactionKey::cancel_target`]).
    /// Without the magic cookie, the RFC 2543 composite key is used (§17.2.3, second part).
    pub fn server(request: &Message) -> Result<TransactionKey, HeaderError> {
        let via = top_via(request)?;
        let method = fold_ack(
            request
                .method()
                .cloned()
                .ok_or(HeaderError::new("start line", "not a request"))?,
        );
        if via.is_rfc3261_branch() {
            let branch = via.branch().unwrap_or_default();
            return Ok(TransactionKey {
                branch: branch.into(),
                sent_by: via.sent_by().to_ascii_lowercase().into(),
                method,
                rfc2543: false,
            });
        }
        let from_tag = request
            .from_addr()
            .and_then(|r| r.ok())
            .and_then(|a| a.tag().map(str::to_string));
        let composite = format!(
            "{}|{}|{}|{}|{}",
            request.request_uri_str().unwrap_or(""),
            from_tag.unwrap_or_default(),
            request.call_id().unwrap_or(""),
            cseq(request)?.seq,
            via
        );
        Ok(TransactionKey {
            branch: composite.into(),
            sent_by: via.sent_by().to_ascii_lowercase().into(),
            method,
            rfc2543: true,
        })
    }

    /// For a CANCEL's server key, the key of the INVITE server transaction it cancels.
    pub fn cancel_target(&self) -> TransactionKey {
        TransactionKey {
            method: Method::Invite,
            ..self.clone()
        }
    }
}

fn fold_ack(m: Method) -> Method {
    if m == Method::Ack {
        Method::Invite
    } else {
        m
    }
}

impl fmt::Display for TransactionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.branch, self.sent_by, self.method)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(s: &str) -> Message {
        Message::parse(s.as_bytes().to_vec()).unwrap()
    }

    const INVITE: &str = "INVITE sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP A.example:5060;branch=z9hG4bK77\r\n\
From: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: c\r\nCSeq: 5 INVITE\r\nContent-Length: 0\r\n\r\n";

    #[test]
    fn ack_and_cancel_match_invite() {
        let inv = TransactionKey::server(&msg(INVITE)).unwrap();
        let ack = TransactionKey::server(&msg(&INVITE
            .replace("INVITE sip", "ACK sip")
            .replace("5 INVITE", "5 ACK")
            .replace("A.example", "a.EXAMPLE")))
        .unwrap();
        assert_eq!(inv, ack);
        let cancel = TransactionKey::server(&msg(&INVITE
            .replace("INVITE sip", "CANCEL sip")
            .replace("5 INVITE", "5 CANCEL")))
        .unwrap();
        assert_ne!(cancel, inv);
        assert_eq!(cancel.cancel_target(), inv);
        let other_host = TransactionKey::server(&msg(&INVITE.replace("A.example", "b.example"))).unwrap();
        assert_ne!(other_host, inv);
    }

    #[test]
    fn client_key_matches_response() {
        let req = msg(INVITE);
        let resp = msg(
            "SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP A.example:5060;branch=z9hG4bK77\r\n\
From: <sip:a@x>;tag=1\r\nTo: <sip:b@x>;tag=2\r\nCall-ID: c\r\nCSeq: 5 INVITE\r\nContent-Length: 0\r\n\r\n",
        );
        assert_eq!(
            TransactionKey::client(&req).unwrap(),
            TransactionKey::from_response(&resp).unwrap()
        );
    }

    #[test]
    fn rfc2543_fallback() {
        let old = INVITE.replace(";branch=z9hG4bK77", "");
        let k = TransactionKey::server(&msg(&old)).unwrap();
        assert!(k.rfc2543);
        let ack = old.replace("INVITE sip", "ACK sip").replace("5 INVITE", "5 ACK");
        assert_eq!(TransactionKey::server(&msg(&ack)).unwrap(), k);
        let bad = INVITE.replace("z9hG4bK77", "z9hG4bK");
        assert!(
            TransactionKey::server(&msg(&bad)).unwrap().rfc2543,
            "bare cookie falls back (RFC 4475 §3.2.1)"
        );
    }
}
