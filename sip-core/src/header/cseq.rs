//! CSeq (RFC 3261 §20.16): `1*DIGIT LWS Method`, number below 2^31.

use std::borrow::Cow;
use std::fmt;

use crate::error::HeaderError;
use crate::header::TypedHeader;
use crate::header_name::{is_token_char, HeaderName};
use crate::method::Method;
use crate::text::{is_lws, trim_lws};

/// A CSeq value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CSeq<'a> {
    /// Sequence number (≤ 2^31 − 1).
    pub seq: u32,
    /// Method token as written (compare with the start line with [`CSeq::method_is`]).
    pub method: Cow<'a, str>,
}

impl CSeq<'_> {
    /// A CSeq for a method.
    pub fn new(seq: u32, method: &Method) -> CSeq<'static> {
        CSeq {
            seq,
            method: Cow::Owned(method.as_str().to_string()),
        }
    }

    /// The method, classified.
    pub fn method(&self) -> Method {
        Method::from_token(&self.method)
    }

    /// True when the method token equals `m` (case-sensitive).
    pub fn method_is(&self, m: &Method) -> bool {
        self.method == m.as_str()
    }
}

impl<'a> TypedHeader<'a> for CSeq<'a> {
    const NAME: HeaderName = HeaderName::CSeq;

    fn parse(value: &'a str) -> Result<Self, HeaderError> {
        let v = trim_lws(value);
        let n = v.bytes().position(|c| !c.is_ascii_digit()).unwrap_or(v.len());
        if n == 0 {
            return Err(HeaderError::new("CSeq", "missing sequence number"));
        }
        let digits = v[..n].trim_start_matches('0');
        let seq: u64 = if digits.len() > 10 {
            u64::MAX
        } else {
            digits.parse().unwrap_or(0)
        };
        if seq > 0x7fff_ffff {
            return Err(HeaderError::new("CSeq", "sequence number larger than 2**31-1"));
        }
        let rest = &v[n..];
        if !rest.bytes().next().is_some_and(is_lws) {
            return Err(HeaderError::new("CSeq", "missing method"));
        }
        let m = trim_lws(rest);
        if m.is_empty() || !m.bytes().all(is_token_char) {
            return Err(HeaderError::new("CSeq", "invalid method"));
        }
        Ok(CSeq {
            seq: seq as u32,
            method: Cow::Borrowed(m),
        })
    }
}

impl fmt::Display for CSeq<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_cseq() {
        let c = CSeq::parse("0009\r\n  INVITE").unwrap();
        assert_eq!(c.seq, 9);
        assert!(c.method_is(&Method::Invite));
        assert_eq!(CSeq::parse("2147483647 REGISTER").unwrap().seq, 2147483647);
        assert!(CSeq::parse("2147483648 REGISTER").is_err());
        assert!(CSeq::parse("36893488147419103232 REGISTER").is_err());
        assert!(CSeq::parse("1").is_err());
        assert!(CSeq::parse("1REGISTER").is_err());
        assert!(CSeq::parse("x REGISTER").is_err());
    }

    #[test]
    fn print_cseq() {
        assert_eq!(CSeq::new(7, &Method::Register).to_line(), "CSeq: 7 REGISTER\r\n");
    }
}
