//! `tel:` URIs (RFC 3966 §3): global (`+` digits) and local numbers with parameters.

use std::borrow::Cow;
use std::fmt;

use crate::error::HeaderError;
use crate::params::{Param, Params};

/// A `tel:` URI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TelUri<'a> {
    /// The number as written, visual separators included (`+1-201-555-0123`).
    pub number: Cow<'a, str>,
    /// Parameters (`phone-context`, `ext`, `isub`, …).
    pub params: Params<'a>,
}

impl<'a> TelUri<'a> {
    /// Parses `tel:` number *( ";" par ).
    pub fn parse(s: &'a str) -> Result<TelUri<'a>, HeaderError> {
        if s.len() < 4 || !s[..4].eq_ignore_ascii_case("tel:") {
            return Err(HeaderError::new("tel URI", "not a tel: URI"));
        }
        let rest = &s[4..];
        let end = rest.find(';').unwrap_or(rest.len());
        let number = &rest[..end];
        let digits = number.strip_prefix('+').unwrap_or(number);
        let global = number.starts_with('+');
        let ok_char = |c: u8| {
            matches!(c, b'-' | b'.' | b'(' | b')')
                || c.is_ascii_digit()
                || (!global && (c.is_ascii_hexdigit() || c == b'*' || c == b'#'))
        };
        if !digits
            .bytes()
            .any(|c| c.is_ascii_hexdigit() || c == b'*' || c == b'#')
            || !digits.bytes().all(ok_char)
        {
            return Err(HeaderError::new("tel URI", "invalid number"));
        }
        let mut params = Params::new();
        for p in rest[end..].split(';').skip(1) {
            let (n, v) = match p.split_once('=') {
                Some((n, v)) => (n, Some(Cow::Borrowed(v))),
                None => (p, None),
            };
            let valid = |x: &str| {
                !x.is_empty()
                    && x.bytes().all(|c| {
                        c.is_ascii_alphanumeric()
                            || matches!(
                                c,
                                b'-' | b'_'
                                    | b'.'
                                    | b'!'
                                    | b'~'
                                    | b'*'
                                    | b'\''
                                    | b'('
                                    | b')'
                                    | b'%'
                                    | b'['
                                    | b']'
                                    | b'/'
                                    | b':'
                                    | b'&'
                                    | b'+'
                                    | b'$'
                                    | b'#'
                            )
                    })
            };
            if !valid(n) || v.as_deref().is_some_and(|v| !valid(v)) {
                return Err(HeaderError::new("tel URI", "invalid parameter"));
            }
            params.0.push(Param {
                name: Cow::Borrowed(n),
                value: v,
            });
        }
        Ok(TelUri {
            number: Cow::Borrowed(number),
            params,
        })
    }

    /// True for a global number (`+` E.164).
    pub fn is_global(&self) -> bool {
        self.number.starts_with('+')
    }

    /// The number without visual separators (`+12015550123`).
    pub fn digits(&self) -> String {
        self.number
            .chars()
            .filter(|c| !matches!(c, '-' | '.' | '(' | ')'))
            .collect()
    }

    /// RFC 3966 §4: numbers equal without visual separators, parameters equal as a set.
    pub fn equivalent(&self, other: &TelUri<'_>) -> bool {
        self.digits().eq_ignore_ascii_case(&other.digits())
            && self.params.0.len() == other.params.0.len()
            && self.params.iter().all(|p| {
                // Duplicate names: the first occurrence is the one that counts.
                let first = self.params.get(&p.name).flatten();
                other.params.get(&p.name).is_some_and(|v| match (v, first) {
                    (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
                    (None, None) => true,
                    _ => false,
                })
            })
    }

    /// Detaches from the buffer.
    pub fn into_owned(self) -> TelUri<'static> {
        TelUri {
            number: Cow::Owned(self.number.into_owned()),
            params: self.params.into_owned(),
        }
    }
}

impl fmt::Display for TelUri<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tel:{}{}", self.number, self.params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_and_local() {
        let t = TelUri::parse("tel:+1-201-555-0123;ext=22").unwrap();
        assert!(t.is_global());
        assert_eq!(t.digits(), "+12015550123");
        assert_eq!(t.params.get("ext"), Some(Some("22")));
        assert_eq!(t.to_string(), "tel:+1-201-555-0123;ext=22");
        let l = TelUri::parse("tel:7042;phone-context=example.com").unwrap();
        assert!(!l.is_global());
        assert!(TelUri::parse("tel:+").is_err());
        assert!(TelUri::parse("tel:+12a").is_err());
        assert!(TelUri::parse("tel:+1201;;x").is_err());
        assert!(t.equivalent(&TelUri::parse("tel:+12015550123;EXT=22").unwrap()));
        // Fuzz regression (sip_uri crash-a3a32111): duplicate parameter names.
        let d = TelUri::parse("tel:-9)3;par=a;par=b").unwrap();
        assert!(d.equivalent(&d));
    }
}
