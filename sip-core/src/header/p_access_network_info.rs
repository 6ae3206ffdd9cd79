//! P-Access-Network-Info (RFC 7315 §4.4, TS 24.229 §7.2A.4): the access type token and
//! its parameters. Kept raw for forwarding; accessors parse on demand.

use std::borrow::Cow;
use std::fmt;

use crate::error::HeaderError;
use crate::header::TypedHeader;
use crate::header_name::HeaderName;
use crate::params::Params;
use crate::text::{is_token_char, trim_lws};

/// P-Access-Network-Info, raw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PAccessNetworkInfo<'a>(pub Cow<'a, str>);

impl PAccessNetworkInfo<'_> {
    /// The access type (`3GPP-E-UTRAN-FDD`, `IEEE-802.11`, …).
    pub fn access_type(&self) -> &str {
        let n = self
            .0
            .bytes()
            .position(|c| !is_token_char(c))
            .unwrap_or(self.0.len());
        &self.0[..n]
    }

    /// The parameters after the access type (`utran-cell-id-3gpp`, `network-provided`).
    pub fn params(&self) -> Result<Params<'_>, HeaderError> {
        let n = self.access_type().len();
        Params::parse_semi(&self.0[n..])
    }

    /// Detaches from the buffer.
    pub fn into_owned(self) -> PAccessNetworkInfo<'static> {
        PAccessNetworkInfo(Cow::Owned(self.0.into_owned()))
    }
}

impl<'a> TypedHeader<'a> for PAccessNetworkInfo<'a> {
    const NAME: HeaderName = HeaderName::PAccessNetworkInfo;

    fn parse(value: &'a str) -> Result<Self, HeaderError> {
        let v = trim_lws(value);
        if v.is_empty() {
            return Err(HeaderError::new("P-Access-Network-Info", "empty"));
        }
        Ok(PAccessNetworkInfo(Cow::Borrowed(v)))
    }
}

impl fmt::Display for PAccessNetworkInfo<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_pani() {
        let h = PAccessNetworkInfo::parse(
            "3GPP-E-UTRAN-FDD; utran-cell-id-3gpp=0010100010019B01;network-provided",
        )
        .unwrap();
        assert_eq!(h.access_type(), "3GPP-E-UTRAN-FDD");
        let p = h.params().unwrap();
        assert_eq!(p.get("utran-cell-id-3gpp"), Some(Some("0010100010019B01")));
        assert!(p.contains("network-provided"));
    }

    #[test]
    fn print_pani() {
        let h = PAccessNetworkInfo::parse("IEEE-802.11;i-wlan-node-id=ffffffeeeeee").unwrap();
        assert_eq!(
            h.to_line(),
            "P-Access-Network-Info: IEEE-802.11;i-wlan-node-id=ffffffeeeeee\r\n"
        );
    }
}
