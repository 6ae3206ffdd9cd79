//! P-Visited-Network-ID (RFC 7315 §4.3): `(token / quoted-string) *(;param)`, a list.

use std::borrow::Cow;
use std::fmt;

use crate::error::HeaderError;
use crate::header::TypedHeader;
use crate::header_name::HeaderName;
use crate::params::Params;
use crate::text::{is_token_char, quoted_len, split_commas, unquote};

/// One visited network: its identifier (raw, quotes kept) and parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VisitedNetwork<'a> {
    /// The identifier as written (`"Visited network number 1"` or `other.net`).
    pub id: Cow<'a, str>,
    /// Parameters.
    pub params: Params<'a>,
}

/// P-Visited-Network-ID: a list of visited networks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PVisitedNetworkId<'a>(pub Vec<VisitedNetwork<'a>>);

impl VisitedNetwork<'_> {
    /// The identifier without quotes.
    pub fn name(&self) -> Cow<'_, str> {
        unquote(&self.id)
    }
}

impl PVisitedNetworkId<'_> {
    /// A single quoted identifier.
    pub fn new(id: &str) -> PVisitedNetworkId<'static> {
        PVisitedNetworkId(vec![VisitedNetwork {
            id: Cow::Owned(crate::text::quote(id)),
            params: Params::new(),
        }])
    }

    /// Detaches from the buffer.
    pub fn into_owned(self) -> PVisitedNetworkId<'static> {
        PVisitedNetworkId(
            self.0
                .into_iter()
                .map(|v| VisitedNetwork {
                    id: Cow::Owned(v.id.into_owned()),
                    params: v.params.into_owned(),
                })
                .collect(),
        )
    }
}

impl<'a> TypedHeader<'a> for PVisitedNetworkId<'a> {
    const NAME: HeaderName = HeaderName::PVisitedNetworkId;

    fn parse(value: &'a str) -> Result<Self, HeaderError> {
        let mut out = Vec::new();
        for e in split_commas(value) {
            let n = if e.starts_with('"') {
                quoted_len(e).ok_or(HeaderError::new(
                    "P-Visited-Network-ID",
                    "unterminated quoted string",
                ))?
            } else {
                e.bytes()
                    .position(|c| !(is_token_char(c) || c == b':'))
                    .unwrap_or(e.len())
            };
            if n == 0 {
                return Err(HeaderError::new("P-Visited-Network-ID", "empty value"));
            }
            out.push(VisitedNetwork {
                id: Cow::Borrowed(&e[..n]),
                params: Params::parse_semi(&e[n..])?,
            });
        }
        Ok(PVisitedNetworkId(out))
    }
}

impl fmt::Display for PVisitedNetworkId<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, v) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}{}", v.id, v.params)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_pvni() {
        let h = PVisitedNetworkId::parse("other.net, \"Visited network number 1\";x=1").unwrap();
        assert_eq!(h.0.len(), 2);
        assert_eq!(h.0[0].name(), "other.net");
        assert_eq!(h.0[1].name(), "Visited network number 1");
        assert_eq!(h.0[1].params.get("x"), Some(Some("1")));
        assert!(PVisitedNetworkId::parse("\"open").is_err());
    }

    #[test]
    fn print_pvni() {
        assert_eq!(
            PVisitedNetworkId::new("ims.test").to_line(),
            "P-Visited-Network-ID: \"ims.test\"\r\n"
        );
    }
}
