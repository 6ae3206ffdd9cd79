//! Content-Type (RFC 3261 §20.15, media-type of RFC 2045): `type/subtype *(;param)`.

use std::borrow::Cow;
use std::fmt;

use crate::error::HeaderError;
use crate::header::TypedHeader;
use crate::header_name::HeaderName;
use crate::params::Params;
use crate::text::{is_token_char, trim_lws, trim_lws_start};

/// A media type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContentType<'a> {
    /// Type (`application`).
    pub mtype: Cow<'a, str>,
    /// Subtype (`sdp`, `reginfo+xml`).
    pub subtype: Cow<'a, str>,
    /// Parameters (`charset`, `boundary`, …).
    pub params: Params<'a>,
}

impl ContentType<'_> {
    /// True when type and subtype match (case-insensitive).
    pub fn is(&self, mtype: &str, subtype: &str) -> bool {
        self.mtype.eq_ignore_ascii_case(mtype) && self.subtype.eq_ignore_ascii_case(subtype)
    }

    /// Detaches from the buffer.
    pub fn into_owned(self) -> ContentType<'static> {
        ContentType {
            mtype: Cow::Owned(self.mtype.into_owned()),
            subtype: Cow::Owned(self.subtype.into_owned()),
            params: self.params.into_owned(),
        }
    }
}

impl<'a> TypedHeader<'a> for ContentType<'a> {
    const NAME: HeaderName = HeaderName::ContentType;

    fn parse(value: &'a str) -> Result<Self, HeaderError> {
        let v = trim_lws(value);
        let n = v.bytes().position(|c| !is_token_char(c)).unwrap_or(v.len());
        let mtype = &v[..n];
        let rest = trim_lws_start(&v[n..]);
        let rest = rest
            .strip_prefix('/')
            .ok_or(HeaderError::new("Content-Type", "missing '/'"))?;
        let rest = trim_lws_start(rest);
        let m = rest.bytes().position(|c| !is_token_char(c)).unwrap_or(rest.len());
        let subtype = &rest[..m];
        if mtype.is_empty() || subtype.is_empty() {
            return Err(HeaderError::new("Content-Type", "invalid media type"));
        }
        let params = Params::parse_semi(&rest[m..])?;
        Ok(ContentType {
            mtype: Cow::Borrowed(mtype),
            subtype: Cow::Borrowed(subtype),
            params,
        })
    }
}

impl fmt::Display for ContentType<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}{}", self.mtype, self.subtype, self.params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_content_type() {
        let c = ContentType::parse(
            "multipart/signed;\r\n protocol=\"application/pkcs7-signature\"; micalg=sha1;boundary=boundary42",
        )
        .unwrap();
        assert!(c.is("Multipart", "SIGNED"));
        assert_eq!(c.params.get("boundary"), Some(Some("boundary42")));
        assert!(ContentType::parse("application").is_err());
        assert!(ContentType::parse("application/").is_err());
    }

    #[test]
    fn print_content_type() {
        let c = ContentType::parse("application/reginfo+xml").unwrap();
        assert_eq!(c.to_line(), "Content-Type: application/reginfo+xml\r\n");
    }
}
