//! Call-ID (RFC 3261 §20.8): `word ["@" word]`, compared byte for byte.

use std::borrow::Cow;
use std::fmt;

use crate::error::HeaderError;
use crate::header::TypedHeader;
use crate::header_name::HeaderName;
use crate::text::{is_lws, trim_lws};

/// A Call-ID.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CallId<'a>(pub Cow<'a, str>);

impl CallId<'_> {
    /// Detaches from the buffer.
    pub fn into_owned(self) -> CallId<'static> {
        CallId(Cow::Owned(self.0.into_owned()))
    }
}

impl<'a> TypedHeader<'a> for CallId<'a> {
    const NAME: HeaderName = HeaderName::CallId;

    fn parse(value: &'a str) -> Result<Self, HeaderError> {
        let v = trim_lws(value);
        if v.is_empty() || v.bytes().any(is_lws) {
            return Err(HeaderError::new("Call-ID", "empty or contains white space"));
        }
        Ok(CallId(Cow::Borrowed(v)))
    }
}

impl fmt::Display for CallId<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_call_id() {
        assert_eq!(
            CallId::parse(" a84b4c76e66710@pc33.atlanta.com ").unwrap().0,
            "a84b4c76e66710@pc33.atlanta.com"
        );
        assert_eq!(
            CallId::parse("intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{")
                .unwrap()
                .0
                .len(),
            42
        );
        assert!(CallId::parse("a b").is_err());
        assert!(CallId::parse("").is_err());
    }

    #[test]
    fn print_call_id() {
        assert_eq!(CallId(Cow::Borrowed("x@y")).to_line(), "Call-ID: x@y\r\n");
    }
}
