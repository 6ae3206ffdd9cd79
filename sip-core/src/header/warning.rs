//! Warning (RFC 3261 §20.43): `warn-code SP warn-agent SP warn-text`, a list. Kept
//! mostly raw: code, agent and quoted text.

use std::borrow::Cow;
use std::fmt;

use crate::error::HeaderError;
use crate::header::TypedHeader;
use crate::header_name::HeaderName;
use crate::text::{quoted_len, split_commas, unquote};

/// One warning value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WarningValue<'a> {
    /// The code as written (3 digits per RFC; longer codes are kept, RFC 4475 §3.1.2.5).
    pub code: Cow<'a, str>,
    /// warn-agent (host[:port] or pseudonym).
    pub agent: Cow<'a, str>,
    /// warn-text with its quotes.
    pub text: Cow<'a, str>,
}

impl WarningValue<'_> {
    /// The text without quotes.
    pub fn text_unquoted(&self) -> Cow<'_, str> {
        unquote(&self.text)
    }
}

/// Warning: a list of values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning<'a>(pub Vec<WarningValue<'a>>);

impl<'a> TypedHeader<'a> for Warning<'a> {
    const NAME: HeaderName = HeaderName::Warning;

    fn parse(value: &'a str) -> Result<Self, HeaderError> {
        let bad = HeaderError::new("Warning", "expected code agent \"text\"");
        split_commas(value)
            .map(|e| {
                let (code, rest) = e.split_once([' ', '\t']).ok_or(bad.clone())?;
                if code.is_empty() || !code.bytes().all(|c| c.is_ascii_digit()) {
                    return Err(bad.clone());
                }
                let (agent, text) = rest.trim_start().split_once([' ', '\t']).ok_or(bad.clone())?;
                let text = text.trim();
                if quoted_len(text) != Some(text.len()) {
                    return Err(bad.clone());
                }
                Ok(WarningValue {
                    code: Cow::Borrowed(code),
                    agent: Cow::Borrowed(agent),
                    text: Cow::Borrowed(text),
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Warning)
    }
}

impl fmt::Display for Warning<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, w) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{} {} {}", w.code, w.agent, w.text)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_warning() {
        let w = Warning::parse("307 isi.edu \"Session parameter 'foo' not understood\", 301 isi.edu \"Incompatible network address type 'E.164'\"").unwrap();
        assert_eq!(w.0.len(), 2);
        assert_eq!(w.0[0].code, "307");
        assert_eq!(
            w.0[1].text_unquoted(),
            "Incompatible network address type 'E.164'"
        );
        assert_eq!(
            Warning::parse("1812 overture \"In Progress\"").unwrap().0[0].code,
            "1812"
        );
        assert!(Warning::parse("399 host no-quotes").is_err());
    }

    #[test]
    fn print_warning() {
        let w = Warning::parse("399 pcscf.ims.test \"Bad Request\"").unwrap();
        assert_eq!(w.to_line(), "Warning: 399 pcscf.ims.test \"Bad Request\"\r\n");
    }
}
