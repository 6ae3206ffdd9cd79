//! Value types that appear in configuration files, each written as one TOML string
//! (`"udp:127.0.0.1:5060"`, `"sip:127.0.0.1:5070"`, `"hmac-sha-1-96/aes-cbc"`) and
//! checked when the file is read, so a bad value is reported with its key.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

/// Implements `Serialize`/`Deserialize` through `Display`/`FromStr`.
macro_rules! serde_via_str {
    ($t:ty, $expecting:literal) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl serde::de::Visitor<'_> for V {
                    type Value = $t;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<$t, E> {
                        v.parse().map_err(E::custom)
                    }
                }
                d.deserialize_str(V)
            }
        }
    };
}

/// SIP transport protocol of a listener or destination (RFC 3261 §18).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// Datagrams.
    Udp,
    /// Stream, framed on Content-Length.
    Tcp,
}

impl Transport {
    /// Lower-case name as used in `udp:…` and in the Via `transport` token.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Transport {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "udp" => Ok(Transport::Udp),
            "tcp" => Ok(Transport::Tcp),
            _ => Err(format!(
                "unknown transport {s:?} (expected \"udp\" or \"tcp\")"
            )),
        }
    }
}
serde_via_str!(Transport, "\"udp\" or \"tcp\"");

/// A SIP listening socket: `udp:127.0.0.1:5060`, `tcp:[::1]:5060`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Listen {
    /// UDP or TCP.
    pub transport: Transport,
    /// Local address and port.
    pub addr: SocketAddr,
}

impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.transport, self.addr)
    }
}

impl FromStr for Listen {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let Some((t, a)) = s.split_once(':') else {
            return Err(format!(
                "{s:?} is not \"udp:<ip>:<port>\" or \"tcp:<ip>:<port>\""
            ));
        };
        let transport = t.parse().map_err(|e| format!("{s:?}: {e}"))?;
        let addr = a.parse().map_err(|_| {
            format!(
                "{s:?}: invalid socket address {a:?} (expected <ipv4>:<port> or [<ipv6>]:<port>)"
            )
        })?;
        Ok(Listen { transport, addr })
    }
}
serde_via_str!(Listen, "a string like \"udp:127.0.0.1:5060\"");

/// A `sip:` or `sips:` URI, kept as written (RFC 3261 §19.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SipUri(String);

impl SipUri {
    /// The URI text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The host part (without brackets for IPv6 references) and the port if given.
    pub fn host_port(&self) -> (&str, Option<u16>) {
        host_port_of(&self.0)
    }
}

fn host_port_of(uri: &str) -> (&str, Option<u16>) {
    let rest = uri.split_once(':').map(|x| x.1).unwrap_or("");
    let rest = rest.rsplit_once('@').map(|x| x.1).unwrap_or(rest);
    let end = rest.find([';', '?']).unwrap_or(rest.len());
    let hp = &rest[..end];
    if let Some(v6) = hp.strip_prefix('[') {
        if let Some((h, after)) = v6.split_once(']') {
            let port = after.strip_prefix(':').and_then(|p| p.parse().ok());
            return (h, port);
        }
        return (hp, None);
    }
    match hp.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().ok()),
        None => (hp, None),
    }
}

impl fmt::Display for SipUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for SipUri {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let lower = s
            .get(..5)
            .map(|p| p.to_ascii_lowercase())
            .unwrap_or_default();
        if !(lower.starts_with("sip:") || lower.starts_with("sips:")) {
            return Err(format!("{s:?} is not a SIP URI (must start with \"sip:\")"));
        }
        if s.chars().any(|c| c.is_whitespace() || c == '<' || c == '>') {
            return Err(format!(
                "{s:?} is not a SIP URI (whitespace or angle brackets)"
            ));
        }
        let (host, _) = host_port_of(s);
        if host.is_empty() {
            return Err(format!("{s:?} has no host"));
        }
        if s.contains(']') || host.contains(':') {
            // IPv6 reference must be bracketed and valid.
            if host.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(format!("{s:?} has an invalid IPv6 host"));
            }
        }
        Ok(SipUri(s.to_owned()))
    }
}
serde_via_str!(SipUri, "a SIP URI like \"sip:127.0.0.1:5070\"");

/// A peer reached by host name or address and port: `127.0.0.1:3868`,
/// `hss.ims.example:3868`, `[::1]:3868`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPort {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// Port.
    pub port: u16,
}

impl HostPort {
    /// The address when `host` is an IP literal (no resolution is done here).
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        self.host
            .parse::<IpAddr>()
            .ok()
            .map(|ip| SocketAddr::new(ip, self.port))
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl FromStr for HostPort {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if let Ok(sa) = s.parse::<SocketAddr>() {
            return Ok(HostPort {
                host: sa.ip().to_string(),
                port: sa.port(),
            });
        }
        let bad = || format!("{s:?} is not <host>:<port>");
        let (h, p) = s.rsplit_once(':').ok_or_else(bad)?;
        let port: u16 = p.parse().map_err(|_| bad())?;
        let host_ok = !h.is_empty()
            && h.len() <= 253
            && h.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
        if !host_ok || port == 0 {
            return Err(bad());
        }
        Ok(HostPort {
            host: h.to_owned(),
            port,
        })
    }
}
serde_via_str!(HostPort, "a string like \"127.0.0.1:3868\"");

/// An inclusive range of ports, `{ first = 5100, last = 5199 }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortRange {
    /// First port of the range.
    pub first: u16,
    /// Last port of the range (inclusive).
    pub last: u16,
}

impl PortRange {
    /// Whether `port` lies in the range.
    pub fn contains(&self, port: u16) -> bool {
        self.first <= port && port <= self.last
    }

    /// Whether two ranges share a port.
    pub fn overlaps(&self, other: &PortRange) -> bool {
        self.first <= other.last && other.first <= self.last
    }

    /// Number of ports (0 when `first > last`).
    pub fn len(&self) -> u32 {
        if self.first > self.last {
            0
        } else {
            u32::from(self.last - self.first) + 1
        }
    }

    /// True when the range holds no port.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

/// Integrity algorithm of a sec-agree offer (`alg=`, TS 33.203 §6.1, RFC 3329).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IntegrityAlg {
    /// `hmac-md5-96` (key: IK).
    HmacMd5_96,
    /// `hmac-sha-1-96` (key: IK ‖ 32 zero bits).
    HmacSha1_96,
}

impl IntegrityAlg {
    /// Name as written in `Security-Client`.
    pub fn as_str(self) -> &'static str {
        match self {
            IntegrityAlg::HmacMd5_96 => "hmac-md5-96",
            IntegrityAlg::HmacSha1_96 => "hmac-sha-1-96",
        }
    }
}

/// Encryption algorithm of a sec-agree offer (`ealg=`, TS 33.203 §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EncryptionAlg {
    /// `null`: integrity only.
    Null,
    /// `aes-cbc` (key: CK).
    AesCbc,
    /// `des-ede3-cbc` (key: CK1 ‖ CK2 ‖ CK1).
    DesEde3Cbc,
}

impl EncryptionAlg {
    /// Name as written in `Security-Client`.
    pub fn as_str(self) -> &'static str {
        match self {
            EncryptionAlg::Null => "null",
            EncryptionAlg::AesCbc => "aes-cbc",
            EncryptionAlg::DesEde3Cbc => "des-ede3-cbc",
        }
    }
}

/// One (alg, ealg) choice, written `"hmac-sha-1-96/aes-cbc"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AlgPair {
    /// Integrity algorithm.
    pub alg: IntegrityAlg,
    /// Encryption algorithm.
    pub ealg: EncryptionAlg,
}

impl fmt::Display for AlgPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.alg.as_str(), self.ealg.as_str())
    }
}

impl FromStr for AlgPair {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let Some((a, e)) = s.split_once('/') else {
            return Err(format!(
                "{s:?} is not \"<alg>/<ealg>\", e.g. \"hmac-sha-1-96/null\""
            ));
        };
        let alg = match a.trim().to_ascii_lowercase().as_str() {
            "hmac-md5-96" => IntegrityAlg::HmacMd5_96,
            "hmac-sha-1-96" => IntegrityAlg::HmacSha1_96,
            other => {
                return Err(format!(
                    "unknown integrity algorithm {other:?} in {s:?} (expected hmac-md5-96 or hmac-sha-1-96)"
                ))
            }
        };
        let ealg = match e.trim().to_ascii_lowercase().as_str() {
            "null" => EncryptionAlg::Null,
            "aes-cbc" => EncryptionAlg::AesCbc,
            "des-ede3-cbc" => EncryptionAlg::DesEde3Cbc,
            other => {
                return Err(format!(
                    "unknown encryption algorithm {other:?} in {s:?} (expected null, aes-cbc or des-ede3-cbc)"
                ))
            }
        };
        Ok(AlgPair { alg, ealg })
    }
}
serde_via_str!(AlgPair, "a string like \"hmac-sha-1-96/aes-cbc\"");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_parses_v4_and_v6() {
        let l: Listen = "udp:127.0.0.1:5060".parse().unwrap();
        assert_eq!(l.transport, Transport::Udp);
        assert_eq!(l.addr.port(), 5060);
        let l: Listen = "TCP:[::1]:5061".parse().unwrap();
        assert_eq!(l.transport, Transport::Tcp);
        assert_eq!(l.to_string(), "tcp:[::1]:5061");
        assert!("sctp:127.0.0.1:5060".parse::<Listen>().is_err());
        assert!("udp:127.0.0.1".parse::<Listen>().is_err());
    }

    #[test]
    fn sip_uri_host_port() {
        let u: SipUri = "sip:scscf.ims.test:6060;lr".parse().unwrap();
        assert_eq!(u.host_port(), ("scscf.ims.test", Some(6060)));
        let u: SipUri = "sip:user@[::1]:5060".parse().unwrap();
        assert_eq!(u.host_port(), ("::1", Some(5060)));
        assert!("tel:+123".parse::<SipUri>().is_err());
        assert!("sip:".parse::<SipUri>().is_err());
        assert!("sip:a b".parse::<SipUri>().is_err());
    }

    #[test]
    fn host_port_forms() {
        let h: HostPort = "hss.ims.test:3868".parse().unwrap();
        assert_eq!(h.socket_addr(), None);
        let h: HostPort = "[::1]:3868".parse().unwrap();
        assert_eq!(h.host, "::1");
        assert_eq!(h.to_string(), "[::1]:3868");
        assert!("hss".parse::<HostPort>().is_err());
        assert!("a_b:1".parse::<HostPort>().is_err());
    }

    #[test]
    fn alg_pairs() {
        let p: AlgPair = "hmac-sha-1-96/aes-cbc".parse().unwrap();
        assert_eq!(p.to_string(), "hmac-sha-1-96/aes-cbc");
        let err = "hmac-sha-256/null".parse::<AlgPair>().unwrap_err();
        assert!(err.contains("unknown integrity algorithm"), "{err}");
        let err = "hmac-md5-96/aes-gcm".parse::<AlgPair>().unwrap_err();
        assert!(err.contains("unknown encryption algorithm"), "{err}");
    }

    #[test]
    fn port_ranges() {
        let a = PortRange {
            first: 5100,
            last: 5199,
        };
        let b = PortRange {
            first: 5199,
            last: 5300,
        };
        assert!(a.overlaps(&b));
        assert_eq!(a.len(), 100);
        assert!(!a.contains(5060));
    }
}
