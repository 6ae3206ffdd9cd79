//! URIs in SIP messages: `sip:`/`sips:` (RFC 3261 §19.1), `tel:` (RFC 3966) and any
//! other absolute URI kept raw (RFC 3261 §25.1 `absoluteURI`).

mod sip;
mod tel;

use std::borrow::Cow;
use std::fmt;

pub use sip::{percent_decode, Host, SipUri};
pub use tel::TelUri;

use crate::error::HeaderError;

/// The scheme class a proxy routes on (416 for anything it cannot handle).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// `sip:`
    Sip,
    /// `sips:`
    Sips,
    /// `tel:`
    Tel,
    /// Anything else.
    Other,
}

/// A parsed URI; borrowed from the message buffer until [`Uri::into_owned`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Uri<'a> {
    /// `sip:` or `sips:`.
    Sip(SipUri<'a>),
    /// `tel:`.
    Tel(TelUri<'a>),
    /// Any other scheme, kept raw (`raw` is the whole URI including the scheme).
    Other {
        /// The scheme as written.
        scheme: Cow<'a, str>,
        /// The whole URI.
        raw: Cow<'a, str>,
    },
}

/// Length of an RFC 3986 scheme at the start of `s` followed by `:`.
pub(crate) fn scheme_len(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    if !b.first()?.is_ascii_alphabetic() {
        return None;
    }
    let n = b
        .iter()
        .position(|&c| !(c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.')))?;
    (b[n] == b':').then_some(n)
}

impl<'a> Uri<'a> {
    /// Parses a URI (no surrounding white space, no `<>`).
    pub fn parse(s: &'a str) -> Result<Uri<'a>, HeaderError> {
        let n = scheme_len(s).ok_or(HeaderError::new("URI", "missing or invalid scheme"))?;
        let scheme = &s[..n];
        if scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips") {
            SipUri::parse(s).map(Uri::Sip)
        } else if scheme.eq_ignore_ascii_case("tel") {
            TelUri::parse(s).map(Uri::Tel)
        } else {
            let rest = &s[n + 1..];
            if rest.is_empty()
                || rest
                    .bytes()
                    .any(|c| c <= b' ' || matches!(c, b'<' | b'>' | b'"') || c == 0x7f)
            {
                return Err(HeaderError::new("URI", "invalid absolute URI"));
            }
            Ok(Uri::Other {
                scheme: Cow::Borrowed(scheme),
                raw: Cow::Borrowed(s),
            })
        }
    }

    /// The scheme class.
    pub fn scheme(&self) -> Scheme {
        match self {
            Uri::Sip(u) if u.secure => Scheme::Sips,
            Uri::Sip(_) => Scheme::Sip,
            Uri::Tel(_) => Scheme::Tel,
            Uri::Other { .. } => Scheme::Other,
        }
    }

    /// The SIP URI, if this is one.
    pub fn as_sip(&self) -> Option<&SipUri<'a>> {
        match self {
            Uri::Sip(u) => Some(u),
            _ => None,
        }
    }

    /// The tel URI, if this is one.
    pub fn as_tel(&self) -> Option<&TelUri<'a>> {
        match self {
            Uri::Tel(u) => Some(u),
            _ => None,
        }
    }

    /// Detaches from the buffer.
    pub fn into_owned(self) -> Uri<'static> {
        match self {
            Uri::Sip(u) => Uri::Sip(u.into_owned()),
            Uri::Tel(u) => Uri::Tel(u.into_owned()),
            Uri::Other { scheme, raw } => Uri::Other {
                scheme: Cow::Owned(scheme.into_owned()),
                raw: Cow::Owned(raw.into_owned()),
            },
        }
    }

    /// Equivalence: RFC 3261 §19.1.4 for SIP URIs, RFC 3966 §4 (roughly: number without
    /// visual separators, params case-insensitive) for tel, case-insensitive text otherwise.
    pub fn equivalent(&self, other: &Uri<'_>) -> bool {
        match (self, other) {
            (Uri::Sip(a), Uri::Sip(b)) => a.equivalent(b),
            (Uri::Tel(a), Uri::Tel(b)) => a.equivalent(b),
            (Uri::Other { raw: a, .. }, Uri::Other { raw: b, .. }) => a.eq_ignore_ascii_case(b),
            _ => false,
        }
    }
}

impl fmt::Display for Uri<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Uri::Sip(u) => u.fmt(f),
            Uri::Tel(u) => u.fmt(f),
            Uri::Other { raw, .. } => f.write_str(raw),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify() {
        assert_eq!(Uri::parse("sip:a@b").unwrap().scheme(), Scheme::Sip);
        assert_eq!(Uri::parse("SIPS:a@b").unwrap().scheme(), Scheme::Sips);
        assert_eq!(Uri::parse("tel:+123").unwrap().scheme(), Scheme::Tel);
        let u = Uri::parse("soap.beep://192.0.2.103:3002").unwrap();
        assert_eq!(u.scheme(), Scheme::Other);
        assert_eq!(u.to_string(), "soap.beep://192.0.2.103:3002");
        assert!(Uri::parse("<sip:a@b>").is_err());
        assert!(Uri::parse("nobodyKnowsThisScheme:totallyopaquecontent").is_ok());
        assert!(Uri::parse("foo:a b").is_err());
    }
}
