//! Allow (RFC 3261 §20.5): the methods a UA supports.

use std::fmt;

use crate::error::HeaderError;
use crate::header::TypedHeader;
use crate::header_name::HeaderName;
use crate::method::Method;
use crate::text::{is_token, split_commas, trim_lws};

/// Allow: a list of methods (may be empty).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Allow(pub Vec<Method>);

impl Allow {
    /// True when `m` is listed.
    pub fn contains(&self, m: &Method) -> bool {
        self.0.contains(m)
    }
}

impl TypedHeader<'_> for Allow {
    const NAME: HeaderName = HeaderName::Allow;

    fn parse(value: &str) -> Result<Self, HeaderError> {
        if trim_lws(value).is_empty() {
            return Ok(Allow(Vec::new()));
        }
        split_commas(value)
            .map(|t| {
                if is_token(t) {
                    Ok(Method::from_token(t))
                } else {
                    Err(HeaderError::new("Allow", "not a method"))
                }
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Allow)
    }
}

impl fmt::Display for Allow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, m) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(m.as_str())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_allow() {
        let a =
            Allow::parse("INVITE,ACK, CANCEL,BYE,UPDATE,PRACK,MESSAGE,REFER,NOTIFY,INFO,OPTIONS").unwrap();
        assert_eq!(a.0.len(), 11);
        assert!(a.contains(&Method::Message) && !a.contains(&Method::Register));
        assert!(Allow::parse("INVITE,,BYE").is_err());
    }

    #[test]
    fn print_allow() {
        assert_eq!(
            Allow(vec![Method::Register, Method::Subscribe]).to_line(),
            "Allow: REGISTER, SUBSCRIBE\r\n"
        );
    }
}
