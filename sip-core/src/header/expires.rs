//! Expires (RFC 3261 §20.19: seconds (delta-seconds; overlarge values saturate, §10.2.1 / RFC 4475 §3.1.2.4)).

use std::fmt;

use crate::error::HeaderError;
use crate::header::TypedHeader;
use crate::header_name::HeaderName;
use crate::text::trim_lws;

/// Expires value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Expires(pub u32);

impl TypedHeader<'_> for Expires {
    const NAME: HeaderName = HeaderName::Expires;

    fn parse(value: &str) -> Result<Self, HeaderError> {
        let v = trim_lws(value);
        if v.is_empty() || !v.bytes().all(|c| c.is_ascii_digit()) {
            return Err(HeaderError::new("Expires", "not a number"));
        }
        let n = v.parse::<u64>().unwrap_or(u64::MAX);
        Ok(Expires(n.min(u32::MAX as u64) as u32))
    }
}

impl fmt::Display for Expires {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_expires() {
        assert_eq!(Expires::parse(" 600 ").unwrap(), Expires(600));
        assert_eq!(Expires::parse("0").unwrap(), Expires(0));
        assert!(Expires::parse("-1").is_err());
        assert!(Expires::parse("1 2").is_err());
        assert_eq!(
            Expires::parse("10000000000000000000000").unwrap(),
            Expires(u32::MAX)
        );
    }

    #[test]
    fn print_expires() {
        assert_eq!(Expires(3600).to_line(), "Expires: 3600\r\n");
    }
}
