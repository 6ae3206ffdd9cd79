//! Max-Forwards (RFC 3261 §20.22). Values above 255 are clamped (RFC 4475 §3.1.2.4
//! allows treating an overlarge value as the maximum).

use std::fmt;

use crate::error::HeaderError;
use crate::header::TypedHeader;
use crate::header_name::HeaderName;
use crate::text::trim_lws;

/// A Max-Forwards value (0–255).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxForwards(pub u32);

impl TypedHeader<'_> for MaxForwards {
    const NAME: HeaderName = HeaderName::MaxForwards;

    fn parse(value: &str) -> Result<Self, HeaderError> {
        let v = trim_lws(value);
        if v.is_empty() || !v.bytes().all(|c| c.is_ascii_digit()) {
            return Err(HeaderError::new("Max-Forwards", "not a number"));
        }
        let n = v.parse::<u64>().unwrap_or(u64::MAX);
        Ok(MaxForwards(n.min(255) as u32))
    }
}

impl fmt::Display for MaxForwards {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_mf() {
        assert_eq!(MaxForwards::parse("0068").unwrap(), MaxForwards(68));
        assert_eq!(MaxForwards::parse("300").unwrap(), MaxForwards(255));
        assert!(MaxForwards::parse("-1").is_err());
        assert!(MaxForwards::parse("").is_err());
    }

    #[test]
    fn print_mf() {
        assert_eq!(MaxForwards(70).to_line(), "Max-Forwards: 70\r\n");
    }
}
