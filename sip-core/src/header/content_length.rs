//! Content-Length (RFC 3261 §20.14: body length in octets).

use std::fmt;

use crate::error::HeaderError;
use crate::header::TypedHeader;
use crate::header_name::HeaderName;
use crate::text::trim_lws;

/// Content-Length value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ContentLength(pub u32);

impl TypedHeader<'_> for ContentLength {
    const NAME: HeaderName = HeaderName::ContentLength;

    fn parse(value: &str) -> Result<Self, HeaderError> {
        let v = trim_lws(value);
        if v.is_empty() || !v.bytes().all(|c| c.is_ascii_digit()) {
            return Err(HeaderError::new("Content-Length", "not a number"));
        }
        let n = v.parse::<u64>().unwrap_or(u64::MAX);
        u32::try_from(n)
            .map(ContentLength)
            .map_err(|_| HeaderError::new("Content-Length", "too large"))
    }
}

impl fmt::Display for ContentLength {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_content_length() {
        assert_eq!(ContentLength::parse(" 600 ").unwrap(), ContentLength(600));
        assert_eq!(ContentLength::parse("0").unwrap(), ContentLength(0));
        assert!(ContentLength::parse("-1").is_err());
        assert!(ContentLength::parse("1 2").is_err());
        assert!(ContentLength::parse("10000000000000000000000").is_err());
    }

    #[test]
    fn print_content_length() {
        assert_eq!(ContentLength(3600).to_line(), "Content-Length: 3600\r\n");
    }
}
