//! Supported, Require, Proxy-Require, Unsupported (RFC 3261 §20.37, §20.32, §20.29,
//! §20.40): comma-separated option tags (`path`, `sec-agree`, `gruu`, `100rel`, …).

use std::borrow::Cow;
use std::fmt;

use crate::error::HeaderError;
use crate::header::TypedHeader;
use crate::header_name::HeaderName;
use crate::text::{is_token, split_commas};

/// A list of option tags (shared by the four headers).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct OptionTags<'a>(pub Vec<Cow<'a, str>>);

impl<'a> OptionTags<'a> {
    /// True when the tag is listed (case-insensitive).
    pub fn contains(&self, tag: &str) -> bool {
        self.0.iter().any(|t| t.eq_ignore_ascii_case(tag))
    }

    /// Parses the list. An empty value is an empty list (Supported may be empty).
    pub fn parse(value: &'a str) -> Result<Self, HeaderError> {
        if crate::text::trim_lws(value).is_empty() {
            return Ok(OptionTags(Vec::new()));
        }
        split_commas(value)
            .map(|t| {
                if is_token(t) {
                    Ok(Cow::Borrowed(t))
                } else {
                    Err(HeaderError::new("option-tag", "not a token"))
                }
            })
            .collect::<Result<Vec<_>, _>>()
            .map(OptionTags)
    }

    /// Detaches from the buffer.
    pub fn into_owned(self) -> OptionTags<'static> {
        OptionTags(self.0.into_iter().map(|t| Cow::Owned(t.into_owned())).collect())
    }
}

impl fmt::Display for OptionTags<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, t) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(t)?;
        }
        Ok(())
    }
}

macro_rules! tags_header {
    ($(#[$doc:meta])* $ty:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Default)]
        pub struct $ty<'a>(pub OptionTags<'a>);

        impl<'a> std::ops::Deref for $ty<'a> {
            type Target = OptionTags<'a>;
            fn deref(&self) -> &OptionTags<'a> {
                &self.0
            }
        }

        impl<'a> TypedHeader<'a> for $ty<'a> {
            const NAME: HeaderName = HeaderName::$ty;

            fn parse(value: &'a str) -> Result<Self, HeaderError> {
                OptionTags::parse(value).map($ty)
            }
        }

        impl fmt::Display for $ty<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

tags_header!(
    /// Supported: extensions the sender supports.
    Supported
);
tags_header!(
    /// Require: extensions the UAS must support.
    Require
);
tags_header!(
    /// Proxy-Require: extensions every proxy must support (else 420).
    ProxyRequire
);
tags_header!(
    /// Unsupported: the tags a 420 refuses.
    Unsupported
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_tags() {
        let s = Supported::parse("100rel,path,\r\n replaces").unwrap();
        assert!(s.contains("PATH") && s.contains("replaces") && !s.contains("sec-agree"));
        assert_eq!(Supported::parse("").unwrap().0 .0.len(), 0);
        assert!(Require::parse("a,,b").is_err());
        assert!(ProxyRequire::parse("sec-agree").unwrap().contains("sec-agree"));
    }

    #[test]
    fn print_tags() {
        let u = Unsupported(OptionTags(vec!["noProxiesSupportThis".into(), "x".into()]));
        assert_eq!(u.to_line(), "Unsupported: noProxiesSupportThis, x\r\n");
    }
}
