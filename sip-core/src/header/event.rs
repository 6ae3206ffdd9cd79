//! Event (RFC 6665 §8.2.1): `event-package *(.template) *(;param)`, e.g. `reg` (RFC 3680).

use std::borrow::Cow;
use std::fmt;

use crate::error::HeaderError;
use crate::header::TypedHeader;
use crate::header_name::HeaderName;
use crate::params::Params;
use crate::text::{is_token_char, trim_lws};

/// An Event value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event<'a> {
    /// Package (with templates), e.g. `reg`, `presence.winfo`.
    pub package: Cow<'a, str>,
    /// Parameters (`id`).
    pub params: Params<'a>,
}

impl<'a> Event<'a> {
    /// An event without parameters.
    pub fn new(package: impl Into<Cow<'a, str>>) -> Self {
        Event {
            package: package.into(),
            params: Params::new(),
        }
    }

    /// `id` parameter.
    pub fn id(&self) -> Option<&str> {
        self.params.get("id").flatten()
    }

    /// Detaches from the buffer.
    pub fn into_owned(self) -> Event<'static> {
        Event {
            package: Cow::Owned(self.package.into_owned()),
            params: self.params.into_owned(),
        }
    }
}

impl<'a> TypedHeader<'a> for Event<'a> {
    const NAME: HeaderName = HeaderName::Event;

    fn parse(value: &'a str) -> Result<Self, HeaderError> {
        let v = trim_lws(value);
        let n = v.bytes().position(|c| !is_token_char(c)).unwrap_or(v.len());
        if n == 0 {
            return Err(HeaderError::new("Event", "missing package"));
        }
        Ok(Event {
            package: Cow::Borrowed(&v[..n]),
            params: Params::parse_semi(&v[n..])?,
        })
    }
}

impl fmt::Display for Event<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.package, self.params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_event() {
        let e = Event::parse("reg;id=7").unwrap();
        assert_eq!(e.package, "reg");
        assert_eq!(e.id(), Some("7"));
        assert!(Event::parse(";id=1").is_err());
    }

    #[test]
    fn print_event() {
        assert_eq!(Event::new("reg").to_line(), "Event: reg\r\n");
    }
}
