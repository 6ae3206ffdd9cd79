//! `name-addr` / `addr-spec` with header parameters (RFC 3261 §20.10, §25.1):
//! the value shape of From, To, Contact, Route, Record-Route, Path, Service-Route,
//! P-Asserted-Identity and friends.
//!
//! Strict where RFC 4475 wants a 400: unterminated quotes (§3.1.2.6), white space
//! inside `<>` (§3.1.2.14), non-token display names (§3.1.2.15), `?`-headers in an
//! addr-spec without `<>` (§3.1.2.13), empty parameters (§3.1.2.1).

use std::borrow::Cow;
use std::fmt;

use crate::error::HeaderError;
use crate::params::Params;
use crate::text::{is_lws, is_token_char, quoted_len, trim_lws, unquote};
use crate::uri::Uri;

/// An address with optional display name and header parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameAddr<'a> {
    /// Display name as written (quotes kept if it was quoted).
    pub display: Option<Cow<'a, str>>,
    /// The URI.
    pub uri: Uri<'a>,
    /// Whether the URI was (or is to be printed) in `<>`.
    pub angle: bool,
    /// Header parameters after the address (`;tag=…`, `;expires=…`).
    pub params: Params<'a>,
}

impl<'a> NameAddr<'a> {
    /// An address printed as `<uri>`.
    pub fn new(uri: Uri<'a>) -> Self {
        NameAddr {
            display: None,
            uri,
            angle: true,
            params: Params::new(),
        }
    }

    /// Parses one `(name-addr / addr-spec) *(SEMI param)` element.
    pub fn parse(s: &'a str) -> Result<NameAddr<'a>, HeaderError> {
        let s = trim_lws(s);
        let b = s.as_bytes();
        let (display, rest) = if b.first() == Some(&b'"') {
            let n = quoted_len(s).ok_or(HeaderError::new("address", "unterminated quoted string"))?;
            let rest = trim_lws(&s[n..]);
            if !rest.starts_with('<') {
                return Err(HeaderError::new("address", "display name without <URI>"));
            }
            (Some(Cow::Borrowed(&s[..n])), rest)
        } else {
            // Find whichever comes first: '<' (name-addr) or ':' (addr-spec scheme).
            let lt = b.iter().position(|&c| c == b'<');
            let colon = b.iter().position(|&c| c == b':');
            match (lt, colon) {
                (Some(l), c) if c.is_none_or(|c| l < c) => {
                    let dn = trim_lws(&s[..l]);
                    if !dn.bytes().all(|c| is_token_char(c) || is_lws(c)) {
                        return Err(HeaderError::new("address", "display name is not a token list"));
                    }
                    (
                        if dn.is_empty() {
                            None
                        } else {
                            Some(Cow::Borrowed(dn))
                        },
                        &s[l..],
                    )
                }
                _ => (None, s),
            }
        };
        if let Some(inner) = rest.strip_prefix('<') {
            let end = inner
                .find('>')
                .ok_or(HeaderError::new("address", "missing '>'"))?;
            let uri_text = &inner[..end];
            if uri_text.bytes().any(is_lws) {
                return Err(HeaderError::new("address", "white space inside <>"));
            }
            let uri = Uri::parse(uri_text)?;
            let params = Params::parse_semi(&inner[end + 1..])?;
            return Ok(NameAddr {
                display,
                uri,
                angle: true,
                params,
            });
        }
        // addr-spec: the URI ends at ';' or white space; its parameters are header params.
        let end = rest
            .bytes()
            .position(|c| c == b';' || is_lws(c))
            .unwrap_or(rest.len());
        let uri_text = &rest[..end];
        if uri_text.contains('?') {
            return Err(HeaderError::new("address", "URI with headers must be in <>"));
        }
        if uri_text.contains('>') || uri_text.contains('"') {
            return Err(HeaderError::new("address", "invalid character"));
        }
        let uri = Uri::parse(uri_text)?;
        let params = Params::parse_semi(&rest[end..])?;
        Ok(NameAddr {
            display: None,
            uri,
            angle: false,
            params,
        })
    }

    /// The display name without quotes.
    pub fn display_name(&self) -> Option<Cow<'_, str>> {
        self.display.as_deref().map(unquote)
    }

    /// The `tag` parameter (RFC 3261 §19.3).
    pub fn tag(&self) -> Option<&str> {
        self.params.get("tag").flatten()
    }

    /// Detaches from the buffer.
    pub fn into_owned(self) -> NameAddr<'static> {
        NameAddr {
            display: self.display.map(|d| Cow::Owned(d.into_owned())),
            uri: self.uri.into_owned(),
            angle: self.angle,
            params: self.params.into_owned(),
        }
    }
}

/// Parses a comma-separated list of addresses (Route, Path, P-Associated-URI …).
pub fn parse_list(value: &str) -> Result<Vec<NameAddr<'_>>, HeaderError> {
    crate::text::split_commas(value)
        .map(|e| {
            if e.is_empty() {
                Err(HeaderError::new("address", "empty list element"))
            } else {
                NameAddr::parse(e)
            }
        })
        .collect()
}

impl fmt::Display for NameAddr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(d) = &self.display {
            write!(f, "{d} ")?;
        }
        let angle = self.angle
            || self.display.is_some()
            || matches!(&self.uri, Uri::Sip(u) if !u.params.is_empty() || u.headers.is_some());
        if angle {
            write!(f, "<{}>{}", self.uri, self.params)
        } else {
            write!(f, "{}{}", self.uri, self.params)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let a = NameAddr::parse(
            "\"J Rosenberg \\\\\\\"\"       <sip:jdrosen@example.com>\r\n  ;\r\n  tag = 98asjd8",
        )
        .unwrap();
        assert_eq!(a.tag(), Some("98asjd8"));
        assert_eq!(a.display_name().as_deref(), Some("J Rosenberg \\\""));
        let a = NameAddr::parse("sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n").unwrap();
        assert!(!a.angle);
        assert_eq!(a.tag(), Some("1918181833n"));
        let a = NameAddr::parse("caller<sip:caller@example.com>;tag=323").unwrap();
        assert_eq!(a.display.as_deref(), Some("caller"));
        let a = NameAddr::parse("sip:+19725552222@gw1.example.net;unknownparam").unwrap();
        assert!(a.params.contains("unknownparam"));
        assert!(a.uri.as_sip().unwrap().params.is_empty());
        let a = NameAddr::parse("<name:John_Smith>").unwrap();
        assert_eq!(a.uri.to_string(), "name:John_Smith");
        assert_eq!(
            NameAddr::parse("isbn:2983792873").unwrap().uri.to_string(),
            "isbn:2983792873"
        );
        let a = NameAddr::parse("token1~` token2'+_ token3*%!.- <sip:mundane@example.com>;fromParam''~+*_!.-%=\"\u{0440}\";tag=_token~1'+`*%!-.").unwrap();
        assert_eq!(a.tag(), Some("_token~1'+`*%!-."));
        assert_eq!(a.to_string(), "token1~` token2'+_ token3*%!.- <sip:mundane@example.com>;fromParam''~+*_!.-%=\"\u{0440}\";tag=_token~1'+`*%!-.");
    }

    #[test]
    fn torture_rejects() {
        assert!(NameAddr::parse("\"Mr. J. User <sip:j.user@example.com>").is_err());
        assert!(NameAddr::parse("\"Watson, Thomas\" < sip:t.watson@example.org >").is_err());
        assert!(NameAddr::parse("Watson, Thomas <sip:t.watson@example.org>").is_err());
        assert!(NameAddr::parse("sip:user@example.com?Route=%3Csip:sip.example.com%3E").is_err());
        assert!(NameAddr::parse("\"Joe\" <sip:joe@example.org>;;;;").is_err());
        assert!(NameAddr::parse("sip:a @b").is_err());
        assert!(NameAddr::parse("<sip:user@example.com?Route=%3Csip:sip.example.com%3E>").is_ok());
    }

    #[test]
    fn print() {
        let mut a = NameAddr::parse("<sip:pcscf.ims.test;lr>").unwrap();
        a.params.set("x", Some("1"));
        assert_eq!(a.to_string(), "<sip:pcscf.ims.test;lr>;x=1");
        let l = parse_list("<sip:a;lr>, <sip:b;lr>").unwrap();
        assert_eq!(l.len(), 2);
        assert!(parse_list("<sip:a>,,<sip:b>").is_err());
    }
}
