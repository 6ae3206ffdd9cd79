//! To (RFC 3261 §20.39): the logical recipient of the request, with its `tag` (§19.3).

use std::fmt;

use crate::error::HeaderError;
use crate::header::TypedHeader;
use crate::header_name::HeaderName;
use crate::nameaddr::NameAddr;

/// To header: one address with parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct To<'a>(pub NameAddr<'a>);

impl To<'_> {
    /// The `tag` parameter.
    pub fn tag(&self) -> Option<&str> {
        self.0.tag()
    }

    /// Detaches from the buffer.
    pub fn into_owned(self) -> To<'static> {
        To(self.0.into_owned())
    }
}

impl<'a> TypedHeader<'a> for To<'a> {
    const NAME: HeaderName = HeaderName::To;

    fn parse(value: &'a str) -> Result<Self, HeaderError> {
        NameAddr::parse(value).map(To)
    }
}

impl fmt::Display for To<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_to() {
        let h = To::parse("\"Alice\" <sip:alice@ims.test>;tag=a73kszlfl").unwrap();
        assert_eq!(h.tag(), Some("a73kszlfl"));
        assert_eq!(h.0.display_name().as_deref(), Some("Alice"));
        assert!(To::parse("Bell, Alexander <sip:a.g.bell@example.com>").is_err());
    }

    #[test]
    fn print_to() {
        let mut h = To::parse("<sip:alice@ims.test>").unwrap();
        h.0.params.set("tag", Some("x1"));
        assert_eq!(h.to_line(), "To: <sip:alice@ims.test>;tag=x1\r\n");
    }
}
