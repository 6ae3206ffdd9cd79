//! Subscription-State (RFC 6665 §8.2.3): `active` / `pending` / `terminated` / other,
//! with `expires`, `reason`, `retry-after`.

use std::borrow::Cow;
use std::fmt;

use crate::error::HeaderError;
use crate::header::TypedHeader;
use crate::header_name::HeaderName;
use crate::params::Params;
use crate::text::{is_token_char, trim_lws};

/// A Subscription-State value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriptionState<'a> {
    /// `active`, `pending`, `terminated` or an extension.
    pub state: Cow<'a, str>,
    /// Parameters.
    pub params: Params<'a>,
}

impl<'a> SubscriptionState<'a> {
    /// `active;expires=<n>`.
    pub fn active(expires: u32) -> SubscriptionState<'static> {
        let mut params = Params::new();
        params.set("expires", Some(expires.to_string()));
        SubscriptionState {
            state: Cow::Borrowed("active"),
            params,
        }
    }

    /// `terminated;reason=<reason>`.
    pub fn terminated(reason: &'a str) -> SubscriptionState<'a> {
        let mut params = Params::new();
        params.set("reason", Some(reason));
        SubscriptionState {
            state: Cow::Borrowed("terminated"),
            params,
        }
    }

    /// `expires` parameter.
    pub fn expires(&self) -> Option<u32> {
        self.params.get("expires")??.parse().ok()
    }

    /// `reason` parameter.
    pub fn reason(&self) -> Option<&str> {
        self.params.get("reason").flatten()
    }

    /// Detaches from the buffer.
    pub fn into_owned(self) -> SubscriptionState<'static> {
        SubscriptionState {
            state: Cow::Owned(self.state.into_owned()),
            params: self.params.into_owned(),
        }
    }
}

impl<'a> TypedHeader<'a> for SubscriptionState<'a> {
    const NAME: HeaderName = HeaderName::SubscriptionState;

    fn parse(value: &'a str) -> Result<Self, HeaderError> {
        let v = trim_lws(value);
        let n = v.bytes().position(|c| !is_token_char(c)).unwrap_or(v.len());
        if n == 0 {
            return Err(HeaderError::new("Subscription-State", "missing state"));
        }
        Ok(SubscriptionState {
            state: Cow::Borrowed(&v[..n]),
            params: Params::parse_semi(&v[n..])?,
        })
    }
}

impl fmt::Display for SubscriptionState<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.state, self.params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_substate() {
        let s = SubscriptionState::parse("active;expires=600000").unwrap();
        assert_eq!(s.state, "active");
        assert_eq!(s.expires(), Some(600000));
        let t = SubscriptionState::parse("terminated; reason=deactivated").unwrap();
        assert_eq!(t.reason(), Some("deactivated"));
    }

    #[test]
    fn print_substate() {
        assert_eq!(
            SubscriptionState::active(3600).to_line(),
            "Subscription-State: active;expires=3600\r\n"
        );
        assert_eq!(
            SubscriptionState::terminated("timeout").to_string(),
            "terminated;reason=timeout"
        );
    }
}
