//! From (RFC 3261 §20.20): the initiator of the request, with its `tag` (§19.3).

use std::fmt;

use crate::error::HeaderError;
use crate::header::TypedHeader;
use crate::header_name::HeaderName;
use crate::nameaddr::NameAddr;

/// From header: one address with parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct From<'a>(pub NameAddr<'a>);

impl From<'_> {
    /// The `tag` parameter.
    pub fn tag(&self) -> Option<&str> {
        self.0.tag()
    }

    /// Detaches from the buffer.
    pub fn into_owned(self) -> From<'static> {
        From(self.0.into_owned())
    }
}

impl<'a> TypedHeader<'a> for From<'a> {
    const NAME: HeaderName = HeaderName::From;

    fn parse(value: &'a str) -> Result<Self, HeaderError> {
        NameAddr::parse(value).map(From)
    }
}

impl fmt::Display for From<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_from() {
        let h = From::parse("\"Alice\" <sip:alice@ims.test>;tag=a73kszlfl").unwrap();
        assert_eq!(h.tag(), Some("a73kszlfl"));
        assert_eq!(h.0.display_name().as_deref(), Some("Alice"));
        assert!(From::parse("Bell, Alexander <sip:a.g.bell@example.com>").is_err());
    }

    #[test]
    fn print_from() {
        let mut h = From::parse("<sip:alice@ims.test>").unwrap();
        h.0.params.set("tag", Some("x1"));
        assert_eq!(h.to_line(), "From: <sip:alice@ims.test>;tag=x1\r\n");
    }
}
