//! Semantic checks run by [`crate::Message::parse`] (RFC 3261 §8.2.2, §16.3, §20 and
//! the expectations of RFC 4475 §3.1.2 / §3.3), and the proxy decision helper
//! [`check_request_for_proxy`] (416 / 420 / 483 / 400, RFC 3261 §16.3).

use crate::error::{ParseError, ParseErrorKind as K};
use crate::header::{CSeq, MaxForwards, TypedHeader, Via};
use crate::header_name::HeaderName as H;
use crate::message::Message;
use crate::nameaddr::NameAddr;
use crate::status::StatusCode;
use crate::text::{is_lws, split_commas};
use crate::uri::{Scheme, Uri};

/// Option tags this core supports in `Proxy-Require` (RFC 3329 `sec-agree`, RFC 3327 `path`).
pub const SUPPORTED_PROXY_OPTIONS: &[&str] = &["sec-agree", "path"];

pub(crate) fn validate(m: &Message) -> Result<(), ParseError> {
    let req = m.is_request();
    let err = |k: K| ParseError::new(k, req);

    if req {
        let uri = m.request_uri_str().unwrap_or("");
        match Uri::parse(uri) {
            Err(e) => return Err(err(K::BadRequestUri(e.reason))),
            Ok(Uri::Sip(u)) if u.headers.is_some() => {
                return Err(err(K::BadRequestUri("headers are not allowed in a Request-URI")))
            }
            Ok(_) => {}
        }
    }

    // Counts of single-valued and mandatory headers.
    let mut counts = [0u8; 6];
    const SINGLE: [H; 6] = [H::From, H::To, H::CallId, H::CSeq, H::MaxForwards, H::ContentType];
    let mut vias = 0usize;
    for h in &m.headers {
        if let Some(i) = SINGLE.iter().position(|s| *s == h.name) {
            counts[i] = counts[i].saturating_add(1);
        } else if h.name == H::Via {
            vias += 1;
        }
    }
    for (i, name) in SINGLE.iter().enumerate() {
        if counts[i] > 1 {
            return Err(err(K::DuplicateHeader(*name)));
        }
    }
    for (i, name) in SINGLE.iter().enumerate().take(4) {
        if counts[i] == 0 {
            return Err(err(K::MissingHeader(*name)));
        }
    }
    if vias == 0 {
        return Err(err(K::MissingHeader(H::Via)));
    }

    let cseq = m.header(H::CSeq).unwrap_or("");
    let cseq = CSeq::parse(cseq).map_err(|e| err(K::InvalidHeader(H::CSeq, e)))?;
    if let Some(method) = m.method() {
        if !cseq.method_is(method) {
            return Err(err(K::CSeqMethodMismatch));
        }
    }
    let call_id = m.call_id().unwrap_or("");
    if call_id.is_empty() || call_id.bytes().any(is_lws) {
        return Err(err(K::InvalidHeader(
            H::CallId,
            crate::error::HeaderError::new("Call-ID", "empty or contains white space"),
        )));
    }
    for v in m.header_elements(H::Via) {
        if v.is_empty() {
            return Err(err(K::InvalidHeader(
                H::Via,
                crate::error::HeaderError::new("Via", "empty value"),
            )));
        }
        Via::parse(v).map_err(|e| err(K::InvalidHeader(H::Via, e)))?;
    }
    for name in [H::From, H::To] {
        if let Some(v) = m.header(name) {
            NameAddr::parse(v).map_err(|e| err(K::InvalidHeader(name, e)))?;
        }
    }
    if !req {
        return Ok(());
    }
    for v in m.header_elements(H::Contact) {
        if v == "*" {
            continue;
        }
        if v.is_empty() {
            return Err(err(K::InvalidHeader(
                H::Contact,
                crate::error::HeaderError::new("Contact", "empty value"),
            )));
        }
        NameAddr::parse(v).map_err(|e| err(K::InvalidHeader(H::Contact, e)))?;
    }
    for name in [H::Route, H::RecordRoute] {
        for v in m.header_values(name) {
            crate::nameaddr::parse_list(v).map_err(|e| err(K::InvalidHeader(name, e)))?;
        }
    }
    if let Some(v) = m.header(H::MaxForwards) {
        MaxForwards::parse(v).map_err(|e| err(K::InvalidHeader(H::MaxForwards, e)))?;
    }
    if let Some(d) = m.header(H::Date) {
        // RFC 3261 §20.17: rfc1123-date in "GMT" only (RFC 4475 §3.1.2.12).
        if !d.trim_end().ends_with("GMT") {
            return Err(err(K::InvalidHeader(
                H::Date,
                crate::error::HeaderError::new("Date", "time zone must be GMT"),
            )));
        }
    }
    Ok(())
}

/// What a proxy does with a parsed request before forwarding it (RFC 3261 §16.3):
/// 416 when the Request-URI scheme is neither sip, sips nor tel; 483 when Max-Forwards
/// is 0 (OPTIONS included: the proxy may answer it itself, a caller can special-case it);
/// 420 when `Proxy-Require` lists an option tag not in `supported` (use
/// [`unsupported_proxy_options`] to fill `Unsupported`).
pub fn check_request_for_proxy(m: &Message, supported: &[&str]) -> Result<(), StatusCode> {
    let Some(Ok(uri)) = m.request_uri() else {
        return Err(StatusCode::BAD_REQUEST);
    };
    if uri.scheme() == Scheme::Other {
        return Err(StatusCode::UNSUPPORTED_URI_SCHEME);
    }
    if m.max_forwards() == Some(0) {
        return Err(StatusCode::TOO_MANY_HOPS);
    }
    if unsupported_proxy_options(m, supported).next().is_some() {
        return Err(StatusCode::BAD_EXTENSION);
    }
    Ok(())
}

/// The `Proxy-Require` option tags not in `supported` (for the 420's `Unsupported`).
pub fn unsupported_proxy_options<'m>(
    m: &'m Message,
    supported: &'m [&'m str],
) -> impl Iterator<Item = &'m str> + 'm {
    option_tags(m, H::ProxyRequire).filter(move |t| !supported.iter().any(|s| s.eq_ignore_ascii_case(t)))
}

/// Every option tag of every header line with this name (Require, Proxy-Require,
/// Supported, Unsupported), empty elements skipped.
pub fn option_tags(m: &Message, name: H) -> impl Iterator<Item = &str> + '_ {
    m.header_values(name)
        .flat_map(split_commas)
        .filter(|t| !t.is_empty())
}
