//! SIP and SIPS URIs (RFC 3261 §19.1, §25.1), with comparison per §19.1.4.

use std::borrow::Cow;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::error::HeaderError;
use crate::params::{Param, Params};

/// A `sip:`/`sips:` URI. Parts stay escaped as received; compare with
/// [`SipUri::equivalent`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SipUri<'a> {
    /// `sips:`
    pub secure: bool,
    /// User part (escaped as received; may contain `;` as in RFC 4475 §3.1.1.9).
    pub user: Option<Cow<'a, str>>,
    /// Password (deprecated, kept).
    pub password: Option<Cow<'a, str>>,
    /// Host.
    pub host: Host<'a>,
    /// Port.
    pub port: Option<u16>,
    /// uri-parameters (`;transport=tcp;lr`).
    pub params: Params<'a>,
    /// Raw headers after `?` (without the `?`).
    pub headers: Option<Cow<'a, str>>,
}

/// The host of a SIP URI or Via sent-by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Host<'a> {
    /// A host name (as written).
    Name(Cow<'a, str>),
    /// An IPv4 address.
    V4(Ipv4Addr),
    /// An IPv6 reference (printed in brackets).
    V6(Ipv6Addr),
}

impl<'a> Host<'a> {
    /// Parses `hostname / IPv4address / "[" IPv6address "]"`; returns the host and the
    /// number of bytes consumed.
    pub fn parse_prefix(s: &'a str) -> Result<(Host<'a>, usize), HeaderError> {
        let b = s.as_bytes();
        if b.first() == Some(&b'[') {
            let end = s
                .find(']')
                .ok_or(HeaderError::new("host", "unterminated IPv6 reference"))?;
            let ip: Ipv6Addr = s[1..end]
                .parse()
                .map_err(|_| HeaderError::new("host", "invalid IPv6 address"))?;
            return Ok((Host::V6(ip), end + 1));
        }
        let n = b
            .iter()
            .position(|&c| !crate::chars::HOST[c as usize])
            .unwrap_or(b.len());
        if n == 0 {
            return Err(HeaderError::new("host", "empty host"));
        }
        let text = &s[..n];
        if text.bytes().all(|c| c.is_ascii_digit() || c == b'.') {
            if let Ok(ip) = text.parse::<Ipv4Addr>() {
                return Ok((Host::V4(ip), n));
            }
        }
        Ok((Host::Name(Cow::Borrowed(text)), n))
    }

    /// Parses a whole host string.
    pub fn parse(s: &'a str) -> Result<Host<'a>, HeaderError> {
        let (h, n) = Host::parse_prefix(s)?;
        if n != s.len() {
            return Err(HeaderError::new("host", "invalid character"));
        }
        Ok(h)
    }

    /// The IP address, if the host is one.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Host::V4(a) => Some(IpAddr::V4(*a)),
            Host::V6(a) => Some(IpAddr::V6(*a)),
            Host::Name(_) => None,
        }
    }

    /// Case-insensitive host comparison (§19.1.4).
    pub fn equivalent(&self, other: &Host<'_>) -> bool {
        match (self, other) {
            (Host::Name(a), Host::Name(b)) => a.eq_ignore_ascii_case(b),
            (Host::V4(a), Host::V4(b)) => a == b,
            (Host::V6(a), Host::V6(b)) => a == b,
            _ => false,
        }
    }

    /// Detaches from the buffer.
    pub fn into_owned(self) -> Host<'static> {
        match self {
            Host::Name(n) => Host::Name(Cow::Owned(n.into_owned())),
            Host::V4(a) => Host::V4(a),
            Host::V6(a) => Host::V6(a),
        }
    }
}

impl From<IpAddr> for Host<'static> {
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(a) => Host::V4(a),
            IpAddr::V6(a) => Host::V6(a),
        }
    }
}

impl fmt::Display for Host<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(n) => f.write_str(n),
            Host::V4(a) => write!(f, "{a}"),
            Host::V6(a) => write!(f, "[{a}]"),
        }
    }
}

fn is_user_char(c: u8) -> bool {
    crate::chars::USER[c as usize]
}

fn is_param_char(c: u8) -> bool {
    crate::chars::PARAM[c as usize]
}

fn is_header_char(c: u8) -> bool {
    crate::chars::URI_HEADER[c as usize]
}

/// Parses `;name[=value]` URI parameters (no white space allowed) up to `?` or the end.
fn parse_uri_params(s: &str) -> Result<(Params<'_>, usize), HeaderError> {
    let mut params = Params::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && b[i] == b';' {
        i += 1;
        let start = i;
        while i < b.len() && is_param_char(b[i]) {
            i += 1;
        }
        if i == start {
            return Err(HeaderError::new("URI", "empty uri-parameter"));
        }
        let name = &s[start..i];
        let mut value = None;
        if i < b.len() && b[i] == b'=' {
            i += 1;
            let vs = i;
            while i < b.len() && is_param_char(b[i]) {
                i += 1;
            }
            if i == vs {
                return Err(HeaderError::new("URI", "empty uri-parameter value"));
            }
            value = Some(Cow::Borrowed(&s[vs..i]));
        }
        params.0.push(Param {
            name: Cow::Borrowed(name),
            value,
        });
    }
    Ok((params, i))
}

impl<'a> SipUri<'a> {
    /// A `sip:` URI for a host.
    pub fn new(host: Host<'a>) -> Self {
        SipUri {
            secure: false,
            user: None,
            password: None,
            host,
            port: None,
            params: Params::new(),
            headers: None,
        }
    }

    /// Parses a `sip:`/`sips:` URI.
    pub fn parse(s: &'a str) -> Result<SipUri<'a>, HeaderError> {
        let (secure, rest) = if s.len() >= 4 && s[..4].eq_ignore_ascii_case("sip:") {
            (false, &s[4..])
        } else if s.len() >= 5 && s[..5].eq_ignore_ascii_case("sips:") {
            (true, &s[5..])
        } else {
            return Err(HeaderError::new("URI", "not a sip: or sips: URI"));
        };
        let (user, password, hostpart) = match rest.find('@') {
            Some(at) => {
                let userinfo = &rest[..at];
                let (u, p) = match userinfo.find(':') {
                    Some(c) => (&userinfo[..c], Some(&userinfo[c + 1..])),
                    None => (userinfo, None),
                };
                if u.is_empty() || !u.bytes().all(is_user_char) {
                    return Err(HeaderError::new("URI", "invalid user part"));
                }
                if let Some(p) = p {
                    if !p
                        .bytes()
                        .all(|c| is_user_char(c) && !matches!(c, b';' | b'?' | b'/'))
                    {
                        return Err(HeaderError::new("URI", "invalid password"));
                    }
                }
                (Some(Cow::Borrowed(u)), p.map(Cow::Borrowed), &rest[at + 1..])
            }
            None => (None, None, rest),
        };
        let (host, mut i) = Host::parse_prefix(hostpart)?;
        let b = hostpart.as_bytes();
        let mut port = None;
        if i < b.len() && b[i] == b':' {
            let ps = i + 1;
            i = ps;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            port = Some(
                hostpart[ps..i]
                    .parse::<u16>()
                    .map_err(|_| HeaderError::new("URI", "invalid port"))?,
            );
        }
        let (params, n) = parse_uri_params(&hostpart[i..])?;
        i += n;
        let mut headers = None;
        if i < b.len() && b[i] == b'?' {
            let h = &hostpart[i + 1..];
            if !h.bytes().all(is_header_char) {
                return Err(HeaderError::new("URI", "invalid headers"));
            }
            headers = Some(Cow::Borrowed(h));
            i = b.len();
        }
        if i != b.len() {
            return Err(HeaderError::new("URI", "invalid character"));
        }
        Ok(SipUri {
            secure,
            user,
            password,
            host,
            port,
            params,
            headers,
        })
    }

    /// `transport` parameter.
    pub fn transport(&self) -> Option<&str> {
        self.params.get("transport").flatten()
    }

    /// Has the `lr` parameter (loose routing, RFC 3261 §19.1.1).
    pub fn lr(&self) -> bool {
        self.params.contains("lr")
    }

    /// `user@host` without port or parameters, useful as an AOR key (user unescaped,
    /// host lowercased).
    pub fn aor(&self) -> String {
        let host = self.host.to_string().to_ascii_lowercase();
        match &self.user {
            Some(u) => format!(
                "{}:{}@{host}",
                if self.secure { "sips" } else { "sip" },
                percent_decode(u)
            ),
            None => format!("{}:{host}", if self.secure { "sips" } else { "sip" }),
        }
    }

    /// RFC 3261 §19.1.4 comparison: user/password case-sensitive after unescaping, host
    /// case-insensitive, ports must agree, `user`/`ttl`/`method`/`maddr`/`transport`
    /// must agree if present in either, other parameters only if present in both,
    /// headers must agree.
    pub fn equivalent(&self, other: &SipUri<'_>) -> bool {
        if self.secure != other.secure
            || self.port != other.port
            || !self.host.equivalent(&other.host)
            || self.user.as_deref().map(percent_decode) != other.user.as_deref().map(percent_decode)
            || self.password.as_deref().map(percent_decode) != other.password.as_deref().map(percent_decode)
        {
            return false;
        }
        for name in ["user", "ttl", "method", "maddr", "transport"] {
            let a = self.params.get(name);
            let b = other.params.get(name);
            let same = match (a, b) {
                (None, None) => true,
                (Some(x), Some(y)) => eq_param(x, y),
                _ => false,
            };
            if !same {
                return false;
            }
        }
        for (i, p) in self.params.iter().enumerate() {
            // Only the first occurrence of a name counts (as `get` sees it).
            if self
                .params
                .0
                .iter()
                .position(|q| q.name.eq_ignore_ascii_case(&p.name))
                != Some(i)
            {
                continue;
            }
            if let Some(v) = other.params.get(&p.name) {
                if !eq_param(p.value.as_deref(), v) {
                    return false;
                }
            }
        }
        self.headers.as_deref().map(percent_decode) == other.headers.as_deref().map(percent_decode)
    }

    /// Detaches from the buffer.
    pub fn into_owned(self) -> SipUri<'static> {
        SipUri {
            secure: self.secure,
            user: self.user.map(|u| Cow::Owned(u.into_owned())),
            password: self.password.map(|u| Cow::Owned(u.into_owned())),
            host: self.host.into_owned(),
            port: self.port,
            params: self.params.into_owned(),
            headers: self.headers.map(|u| Cow::Owned(u.into_owned())),
        }
    }
}

fn eq_param(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (Some(x), Some(y)) => percent_decode(x).eq_ignore_ascii_case(&percent_decode(y)),
        (None, None) => true,
        _ => false,
    }
}

/// Resolves `%HH` escapes (invalid escapes are kept literally, invalid UTF-8 replaced).
pub fn percent_decode(s: &str) -> Cow<'_, str> {
    if !s.contains('%') {
        return Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let h = (b[i + 1] as char).to_digit(16);
            let l = (b[i + 2] as char).to_digit(16);
            if let (Some(h), Some(l)) = (h, l) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

impl fmt::Display for SipUri<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.secure { "sips:" } else { "sip:" })?;
        if let Some(u) = &self.user {
            f.write_str(u)?;
            if let Some(p) = &self.password {
                write!(f, ":{p}")?;
            }
            f.write_str("@")?;
        }
        write!(f, "{}", self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write!(f, "{}", self.params)?;
        if let Some(h) = &self.headers {
            write!(f, "?{h}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_full() {
        let u = SipUri::parse("sips:alice:pw@[2001:db8::1]:5061;transport=tcp;lr?subject=x").unwrap();
        assert!(u.secure);
        assert_eq!(u.user.as_deref(), Some("alice"));
        assert_eq!(u.password.as_deref(), Some("pw"));
        assert_eq!(u.host, Host::V6("2001:db8::1".parse().unwrap()));
        assert_eq!(u.port, Some(5061));
        assert_eq!(u.transport(), Some("tcp"));
        assert!(u.lr());
        assert_eq!(u.headers.as_deref(), Some("subject=x"));
        assert_eq!(
            u.to_string(),
            "sips:alice:pw@[2001:db8::1]:5061;transport=tcp;lr?subject=x"
        );
    }

    #[test]
    fn torture_users() {
        let u = SipUri::parse("sip:user;par=u%40example.net@example.com").unwrap();
        assert_eq!(u.user.as_deref(), Some("user;par=u%40example.net"));
        assert_eq!(u.host, Host::Name("example.com".into()));
        let u = SipUri::parse("sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com");
        assert!(u.is_ok(), "{u:?}");
        assert!(SipUri::parse("sip:user@example.com; lr").is_err());
        assert!(SipUri::parse("sip:a@b;;x").is_err());
        assert!(SipUri::parse("sip:a@").is_err());
        assert!(SipUri::parse("sip:a@b:99999").is_err());
        assert!(SipUri::parse("sip:t.watson@example.org ").is_err());
    }

    #[test]
    fn comparison_19_1_4() {
        let eq = |a: &str, b: &str| SipUri::parse(a).unwrap().equivalent(&SipUri::parse(b).unwrap());
        assert!(eq(
            "sip:%61lice@atlanta.com;transport=TCP",
            "sip:alice@AtLanTa.CoM;Transport=tcp"
        ));
        assert!(eq("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"));
        assert!(eq(
            "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
            "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com"
        ));
        assert!(!eq(
            "SIP:ALICE@AtLanTa.CoM;Transport=udp",
            "sip:alice@AtLanTa.CoM;Transport=UDP"
        ));
        assert!(!eq("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"));
        assert!(!eq("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"));
        assert!(!eq(
            "sip:carol@chicago.com;security=on",
            "sip:carol@chicago.com;security=off"
        ));
        assert_eq!(percent_decode("null-%00-x%4"), "null-\0-x%4");
        // Fuzz regression (sip_uri crash-f047e9f2): duplicate parameter names.
        let u = "sip:alice:5061;rtiansport=tcp;1;rtiansport=tctp;l:r??sub";
        assert!(eq(u, u));
    }
}
