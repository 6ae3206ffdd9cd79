//! Retry-After (RFC 3261 §20.33): `delta-seconds [comment] *(;param)`; overlarge
//! values saturate (RFC 4475 §3.1.2.5).

use std::borrow::Cow;
use std::fmt;

use crate::error::HeaderError;
use crate::header::TypedHeader;
use crate::header_name::HeaderName;
use crate::params::Params;
use crate::text::{trim_lws, trim_lws_start};

/// A Retry-After value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryAfter<'a> {
    /// Seconds.
    pub seconds: u32,
    /// `(comment)` as written, parentheses included.
    pub comment: Option<Cow<'a, str>>,
    /// Parameters (`duration`).
    pub params: Params<'a>,
}

impl RetryAfter<'_> {
    /// `Retry-After: <seconds>`.
    pub fn new(seconds: u32) -> RetryAfter<'static> {
        RetryAfter {
            seconds,
            comment: None,
            params: Params::new(),
        }
    }
}

impl<'a> TypedHeader<'a> for RetryAfter<'a> {
    const NAME: HeaderName = HeaderName::RetryAfter;

    fn parse(value: &'a str) -> Result<Self, HeaderError> {
        let v = trim_lws(value);
        let n = v.bytes().position(|c| !c.is_ascii_digit()).unwrap_or(v.len());
        if n == 0 {
            return Err(HeaderError::new("Retry-After", "not a number"));
        }
        let seconds = v[..n].parse::<u64>().unwrap_or(u64::MAX).min(u32::MAX as u64) as u32;
        let mut rest = trim_lws_start(&v[n..]);
        let mut comment = None;
        if rest.starts_with('(') {
            let end = rest
                .find(')')
                .ok_or(HeaderError::new("Retry-After", "unterminated comment"))?;
            comment = Some(Cow::Borrowed(&rest[..=end]));
            rest = &rest[end + 1..];
        }
        Ok(RetryAfter {
            seconds,
            comment,
            params: Params::parse_semi(rest)?,
        })
    }
}

impl fmt::Display for RetryAfter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.seconds)?;
        if let Some(c) = &self.comment {
            write!(f, " {c}")?;
        }
        write!(f, "{}", self.params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_retry_after() {
        let r = RetryAfter::parse("18000;duration=3600").unwrap();
        assert_eq!(r.seconds, 18000);
        assert_eq!(r.params.get("duration"), Some(Some("3600")));
        let r = RetryAfter::parse("120 (I'm in a meeting)").unwrap();
        assert_eq!(r.comment.as_deref(), Some("(I'm in a meeting)"));
        assert_eq!(
            RetryAfter::parse("949302838503028349304023988").unwrap().seconds,
            u32::MAX
        );
        assert!(RetryAfter::parse("soon").is_err());
    }

    #[test]
    fn print_retry_after() {
        assert_eq!(RetryAfter::new(30).to_line(), "Retry-After: 30\r\n");
    }
}
