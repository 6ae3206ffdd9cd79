//! The identities a Cx query is made for, read from the SIP request:
//! - REGISTER → UAR (TS 24.229 §5.3.1.2, TS 29.228 §6.1.1): Public-Identity from
//!   To, User-Name from the Authorization `username` or, without one, derived from
//!   the To URI "by removing URI scheme and the following parts of the URI if
//!   present: port number, URI parameters, and To header field parameters";
//!   Visited-Network-Identifier from P-Visited-Network-ID (RFC 7315 §4.3), the home
//!   domain when absent; User-Authorization-Type DE_REGISTRATION for a request that
//!   removes bindings (RFC 3261 §10.2.2).
//! - Terminating request → LIR (TS 24.229 §5.3.2.1, TS 29.228 §6.1.4): the
//!   Request-URI as Public-Identity.

use ims_sip_core::header::{Authorization, Contact, Expires, PVisitedNetworkId};
use ims_sip_core::{Message, Uri};

use crate::cx::{Uar, UserAuthorizationType};

/// The UAR for a REGISTER; `home_domain` stands in for a missing
/// P-Visited-Network-ID.
pub fn uar_for(msg: &Message, home_domain: &str) -> Uar {
    let to = msg.to_addr().and_then(Result::ok);
    let (public_identity, derived_impi) = match to.as_ref().map(|t| &t.uri) {
        Some(uri) => (public_identity(uri), impi_from(uri)),
        None => (String::new(), String::new()),
    };
    let user_name = msg
        .typed::<Authorization>()
        .and_then(Result::ok)
        .and_then(|a| a.username().map(|u| u.into_owned()))
        .filter(|u| !u.is_empty())
        .unwrap_or(derived_impi);
    let visited_network = msg
        .typed::<PVisitedNetworkId>()
        .and_then(Result::ok)
        .and_then(|v| v.0.first().map(|n| n.name().trim().to_string()))
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| home_domain.to_string());
    let authorization_type = if is_deregistration(msg) {
        UserAuthorizationType::DeRegistration
    } else {
        UserAuthorizationType::Registration
    };
    Uar {
        user_name,
        public_identity,
        visited_network,
        authorization_type,
    }
}

/// The Public-Identity of a LIR: the Request-URI without parameters.
pub fn lir_identity(msg: &Message) -> String {
    match msg.request_uri() {
        Some(Ok(uri)) => public_identity(&uri),
        _ => msg.request_uri_str().unwrap_or("").to_string(),
    }
}

/// A URI as a public identity: `sip:user@host` (no port, no parameters) or
/// `tel:number`.
fn public_identity(uri: &Uri<'_>) -> String {
    match uri {
        Uri::Sip(s) => s.aor(),
        Uri::Tel(t) => format!("tel:{}", t.number),
        Uri::Other { raw, .. } => raw.to_string(),
    }
}

/// TS 24.229 §5.3.1.2: the private identity derived from a public one.
fn impi_from(uri: &Uri<'_>) -> String {
    match uri {
        Uri::Sip(s) => match &s.user {
            Some(u) => format!("{}@{}", ims_sip_core::uri::percent_decode(u), s.host),
            None => s.host.to_string(),
        },
        Uri::Tel(t) => t.number.to_string(),
        Uri::Other { raw, scheme } => raw.get(scheme.len() + 1..).unwrap_or_default().to_string(),
    }
}

/// Whether a REGISTER removes bindings: `Contact: *`, or every Contact has
/// `expires=0` (or none and `Expires: 0`), or no Contact and `Expires: 0`
/// (RFC 3261 §10.2.2).
pub fn is_deregistration(msg: &Message) -> bool {
    let header = msg.typed::<Expires>().and_then(Result::ok).map(|e| e.0);
    let mut contacts = Vec::new();
    for c in msg.typed_all::<Contact>() {
        match c {
            Ok(Contact::Star) => return true,
            Ok(Contact::Addrs(addrs)) => contacts.extend(addrs),
            Err(_) => {}
        }
    }
    if contacts.is_empty() {
        return header == Some(0);
    }
    contacts
        .iter()
        .all(|c| c.expires().or(header).is_some_and(|e| e == 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(extra: &str) -> Message {
        Message::parse(format!(
            "REGISTER sip:ims.test SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKx\r\n\
From: <sip:alice@ims.test>;tag=1\r\nTo: <sip:alice@IMS.test:5060;user=phone>\r\nCall-ID: c\r\n\
CSeq: 1 REGISTER\r\nMax-Forwards: 70\r\n{extra}Content-Length: 0\r\n\r\n"
        ))
        .unwrap()
    }

    #[test]
    fn uar_from_to_without_authorization() {
        let u = uar_for(
            &msg("Contact: <sip:a@10.0.0.1>\r\nExpires: 600\r\n"),
            "home.test",
        );
        assert_eq!(u.public_identity, "sip:alice@ims.test");
        assert_eq!(u.user_name, "alice@IMS.test");
        assert_eq!(u.visited_network, "home.test");
        assert_eq!(u.authorization_type, UserAuthorizationType::Registration);
    }

    #[test]
    fn uar_with_authorization_and_visited_network() {
        let u = uar_for(
            &msg("Authorization: Digest username=\"impi@ims.test\", realm=\"ims.test\", nonce=\"\", uri=\"sip:ims.test\", response=\"\"\r\nP-Visited-Network-ID: \"visited.test\"\r\n"),
            "home.test",
        );
        assert_eq!(u.user_name, "impi@ims.test");
        assert_eq!(u.visited_network, "visited.test");
    }

    #[test]
    fn deregistration_forms() {
        assert!(is_deregistration(&msg("Contact: *\r\nExpires: 0\r\n")));
        assert!(is_deregistration(&msg(
            "Contact: <sip:a@x>\r\nExpires: 0\r\n"
        )));
        assert!(is_deregistration(&msg(
            "Contact: <sip:a@x>;expires=0\r\nExpires: 600\r\n"
        )));
        assert!(!is_deregistration(&msg(
            "Contact: <sip:a@x>;expires=0, <sip:b@x>\r\nExpires: 600\r\n"
        )));
        assert!(is_deregistration(&msg("Expires: 0\r\n")));
        assert!(!is_deregistration(&msg("")));
    }
}
