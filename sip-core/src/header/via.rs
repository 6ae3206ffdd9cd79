//! Via (RFC 3261 §20.42, §18.2.1 `received`, RFC 3581 `rport`). One value per
//! [`Via`]; a header line may carry several (use [`crate::Message::vias`]).

use std::borrow::Cow;
use std::fmt;

use crate::error::HeaderError;
use crate::header::TypedHeader;
use crate::header_name::{is_token_char, HeaderName};
use crate::params::Params;
use crate::text::{is_lws, trim_lws, trim_lws_start};
use crate::uri::Host;

/// The RFC 3261 branch magic cookie.
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// One Via value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Via<'a> {
    /// Protocol name (`SIP`).
    pub protocol_name: Cow<'a, str>,
    /// Protocol version (`2.0`).
    pub protocol_version: Cow<'a, str>,
    /// Transport (`UDP`, `TCP`, `TLS`, `SCTP`, or any token) as written.
    pub transport: Cow<'a, str>,
    /// sent-by host.
    pub host: Host<'a>,
    /// sent-by port.
    pub port: Option<u16>,
    /// `branch`, `received`, `rport`, `maddr`, `ttl` and any others, in order.
    pub params: Params<'a>,
}

fn token_at(s: &str) -> (&str, &str) {
    let n = s.bytes().position(|c| !is_token_char(c)).unwrap_or(s.len());
    (&s[..n], &s[n..])
}

fn expect_slash(s: &str) -> Result<&str, HeaderError> {
    trim_lws_start(s)
        .strip_prefix('/')
        .map(trim_lws_start)
        .ok_or(HeaderError::new("Via", "invalid sent-protocol"))
}

impl<'a> Via<'a> {
    /// A `SIP/2.0/<transport>` Via with a branch.
    pub fn new(transport: &'a str, host: Host<'a>, port: Option<u16>, branch: &'a str) -> Via<'a> {
        let mut params = Params::new();
        params.set("branch", Some(branch));
        Via {
            protocol_name: Cow::Borrowed("SIP"),
            protocol_version: Cow::Borrowed("2.0"),
            transport: Cow::Borrowed(transport),
            host,
            port,
            params,
        }
    }

    /// `branch` parameter.
    pub fn branch(&self) -> Option<&str> {
        self.params.get("branch").flatten()
    }

    /// True when the branch starts with the RFC 3261 magic cookie and has more after it.
    pub fn is_rfc3261_branch(&self) -> bool {
        self.branch()
            .is_some_and(|b| b.len() > MAGIC_COOKIE.len() && b.starts_with(MAGIC_COOKIE))
    }

    /// `received` parameter.
    pub fn received(&self) -> Option<&str> {
        self.params.get("received").flatten()
    }

    /// `rport`: `None` absent, `Some(None)` flag only, `Some(Some(p))` with a value.
    pub fn rport(&self) -> Option<Option<u16>> {
        self.params.get("rport").map(|v| v.and_then(|p| p.parse().ok()))
    }

    /// `sent-by` as `host[:port]`.
    pub fn sent_by(&self) -> String {
        match self.port {
            Some(p) => format!("{}:{p}", self.host),
            None => self.host.to_string(),
        }
    }

    /// Where a response to this Via goes (RFC 3261 §18.2.2, RFC 3581 §4): host from
    /// `received` (else sent-by), port from `rport=` (else sent-by port, else 5060/5061).
    pub fn response_target(&self) -> (String, u16) {
        let host = match self.received() {
            Some(r) => r.trim_start_matches('[').trim_end_matches(']').to_string(),
            None => match &self.host {
                Host::V6(a) => a.to_string(),
                h => h.to_string(),
            },
        };
        let default = if self.transport.eq_ignore_ascii_case("TLS") {
            5061
        } else {
            5060
        };
        let port = self.rport().flatten().or(self.port).unwrap_or(default);
        (host, port)
    }

    /// True when the transport is reliable (anything but UDP, RFC 3261 §17).
    pub fn is_reliable(&self) -> bool {
        !self.transport.eq_ignore_ascii_case("UDP")
    }

    /// Detaches from the buffer.
    pub fn into_owned(self) -> Via<'static> {
        Via {
            protocol_name: Cow::Owned(self.protocol_name.into_owned()),
            protocol_version: Cow::Owned(self.protocol_version.into_owned()),
            transport: Cow::Owned(self.transport.into_owned()),
            host: self.host.into_owned(),
            port: self.port,
            params: self.params.into_owned(),
        }
    }
}

impl<'a> TypedHeader<'a> for Via<'a> {
    const NAME: HeaderName = HeaderName::Via;

    /// Parses one Via value (not a comma list).
    fn parse(value: &'a str) -> Result<Self, HeaderError> {
        let v = trim_lws(value);
        let (name, rest) = token_at(v);
        let (version, rest) = token_at(expect_slash(rest)?);
        let (transport, rest) = token_at(expect_slash(rest)?);
        if name.is_empty() || version.is_empty() || transport.is_empty() {
            return Err(HeaderError::new("Via", "invalid sent-protocol"));
        }
        if !rest.bytes().next().is_some_and(is_lws) {
            return Err(HeaderError::new("Via", "missing sent-by"));
        }
        let rest = trim_lws_start(rest);
        let (host, n) =
            Host::parse_prefix(rest).map_err(|_| HeaderError::new("Via", "invalid sent-by host"))?;
        let mut rest = &rest[n..];
        let mut port = None;
        if let Some(p) = trim_lws_start(rest).strip_prefix(':') {
            let p = trim_lws_start(p);
            let d = p.bytes().position(|c| !c.is_ascii_digit()).unwrap_or(p.len());
            port = Some(
                p[..d]
                    .parse::<u16>()
                    .map_err(|_| HeaderError::new("Via", "invalid port"))?,
            );
            rest = &p[d..];
        }
        let params = Params::parse_semi(rest).map_err(|e| HeaderError::new("Via", e.reason))?;
        Ok(Via {
            protocol_name: Cow::Borrowed(name),
            protocol_version: Cow::Borrowed(version),
            transport: Cow::Borrowed(transport),
            host,
            port,
            params,
        })
    }
}

impl fmt::Display for Via<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{} {}",
            self.protocol_name, self.protocol_version, self.transport, self.host
        )?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write!(f, "{}", self.params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_via() {
        let v = Via::parse("SIP  /   2.0\r\n /UDP\r\n    192.0.2.2;branch=390skdjuw").unwrap();
        assert_eq!(v.transport, "UDP");
        assert_eq!(v.host, Host::V4("192.0.2.2".parse().unwrap()));
        assert_eq!(v.branch(), Some("390skdjuw"));
        assert!(!v.is_rfc3261_branch());
        let v = Via::parse(
            "SIP/2.0/TCP [2001:db8::9]:5060;branch=z9hG4bK-524287-1---abc;rport;received=2001:db8::9",
        )
        .unwrap();
        assert_eq!(v.port, Some(5060));
        assert_eq!(v.rport(), Some(None));
        assert_eq!(v.received(), Some("2001:db8::9"));
        assert!(v.is_rfc3261_branch() && v.is_reliable());
        let v = Via::parse("SIP/2.0/UDP 10.0.0.1:5060;rport=1234;branch=z9hG4bKx").unwrap();
        assert_eq!(v.rport(), Some(Some(1234)));
        assert_eq!(v.sent_by(), "10.0.0.1:5060");
        assert_eq!(v.response_target(), ("10.0.0.1".to_string(), 1234));
        let v6 = Via::parse("SIP/2.0/UDP [2001:db8::1];branch=z9hG4bKx").unwrap();
        assert_eq!(v6.response_target(), ("2001:db8::1".to_string(), 5060));
        let nat = Via::parse("SIP/2.0/UDP ue.local:5060;received=192.0.2.9;branch=z9hG4bKx").unwrap();
        assert_eq!(nat.response_target(), ("192.0.2.9".to_string(), 5060));
        assert!(Via::parse("SIP/2.0/UDP 192.0.2.15;;").is_err());
        assert!(Via::parse("SIP/2.0/UDP").is_err());
        assert!(Via::parse("SIP/2.0 host").is_err());
        assert!(Via::parse("SIP/2.0/UDP host;branch=z9hG4bK1 x").is_err());
    }

    #[test]
    fn print_via() {
        let mut v = Via::new(
            "UDP",
            Host::Name("pcscf.ims.test".into()),
            Some(5060),
            "z9hG4bKabc",
        );
        v.params.set("rport", None::<&str>);
        assert_eq!(
            v.to_line(),
            "Via: SIP/2.0/UDP pcscf.ims.test:5060;branch=z9hG4bKabc;rport\r\n"
        );
        let p = Via::parse("SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKx;rport").unwrap();
        assert_eq!(p.to_string(), "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKx;rport");
    }
}
