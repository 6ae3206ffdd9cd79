//! Authorization, Proxy-Authorization, WWW-Authenticate, Proxy-Authenticate
//! (RFC 3261 §20.7, §20.27, §20.28, §20.44; HTTP Digest RFC 2617 §3.2; AKA RFC 3310;
//! TS 24.229 §5.4.1 / TS 33.203 for `ck`, `ik`, `auts`, `integrity-protected`).
//!
//! Parameters are kept raw and in order, unknown ones included, so a header prints
//! back as it came. Handsets send `nonce=""` and `response=""` on the first REGISTER
//! in any order; these parse. Accessors return unquoted values.

use std::borrow::Cow;
use std::fmt;

use crate::error::HeaderError;
use crate::header::TypedHeader;
use crate::header_name::HeaderName;
use crate::params::Params;
use crate::text::{is_token_char, trim_lws, trim_lws_start};

/// A challenge or credentials: an auth scheme plus comma-separated parameters.
///
/// For a scheme other than Digest whose parameters do not parse as `name=value`
/// pairs, `params` is empty and `raw` holds the text after the scheme.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials<'a> {
    /// `Digest` (or any other scheme token as written).
    pub scheme: Cow<'a, str>,
    /// Parameters in order, values raw (quoted ones keep their quotes).
    pub params: Params<'a>,
    /// Text after the scheme, as received (empty for built values).
    pub raw: Cow<'a, str>,
}

macro_rules! accessors {
    ($($fn:ident => $name:expr;)*) => {
        $(
            #[doc = concat!("`", $name, "` (unquoted).")]
            pub fn $fn(&self) -> Option<Cow<'_, str>> {
                self.params.get_unquoted($name)
            }
        )*
    };
}

impl<'a> Credentials<'a> {
    /// An empty `Digest` value to fill with [`Params::set`] / [`Params::set_quoted`].
    pub fn digest() -> Credentials<'a> {
        Credentials {
            scheme: Cow::Borrowed("Digest"),
            params: Params::new(),
            raw: Cow::Borrowed(""),
        }
    }

    /// True for the Digest scheme (case-insensitive).
    pub fn is_digest(&self) -> bool {
        self.scheme.eq_ignore_ascii_case("Digest")
    }

    accessors! {
        username => "username";
        realm => "realm";
        nonce => "nonce";
        uri => "uri";
        response => "response";
        algorithm => "algorithm";
        cnonce => "cnonce";
        nc => "nc";
        qop => "qop";
        opaque => "opaque";
        auts => "auts";
        ck => "ck";
        ik => "ik";
        stale => "stale";
        domain => "domain";
    }

    /// True when `algorithm=AKAv1-MD5` (RFC 3310).
    pub fn is_aka_v1(&self) -> bool {
        self.algorithm()
            .is_some_and(|a| a.eq_ignore_ascii_case("AKAv1-MD5"))
    }

    /// Parses `scheme [LWS params]`.
    pub fn parse(value: &'a str) -> Result<Credentials<'a>, HeaderError> {
        let v = trim_lws(value);
        let n = v.bytes().position(|c| !is_token_char(c)).unwrap_or(v.len());
        if n == 0 {
            return Err(HeaderError::new("auth", "missing scheme"));
        }
        let scheme = &v[..n];
        let rest = trim_lws_start(&v[n..]);
        if n < v.len() && rest.len() == v.len() - n {
            return Err(HeaderError::new("auth", "invalid scheme"));
        }
        let params = match Params::parse_comma(rest) {
            Ok(p) => p,
            Err(e) if scheme.eq_ignore_ascii_case("Digest") => return Err(e),
            Err(_) => Params::new(),
        };
        Ok(Credentials {
            scheme: Cow::Borrowed(scheme),
            params,
            raw: Cow::Borrowed(rest),
        })
    }

    /// Detaches from the buffer.
    pub fn into_owned(self) -> Credentials<'static> {
        Credentials {
            scheme: Cow::Owned(self.scheme.into_owned()),
            params: self.params.into_owned(),
            raw: Cow::Owned(self.raw.into_owned()),
        }
    }
}

impl fmt::Display for Credentials<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.scheme)?;
        if self.params.is_empty() {
            if !self.raw.is_empty() {
                write!(f, " {}", self.raw)?;
            }
            return Ok(());
        }
        f.write_str(" ")?;
        self.params.fmt_comma(f)
    }
}

/// Redacted: `response`, `ck`, `ik`, `auts` and `nonce` are not shown.
impl fmt::Debug for Credentials<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SECRET: &[&str] = &["response", "ck", "ik", "auts", "nonce", "cnonce"];
        let mut d = f.debug_struct("Credentials");
        d.field("scheme", &self.scheme);
        let shown: Vec<String> = self
            .params
            .iter()
            .map(|p| {
                if SECRET.iter().any(|s| p.name.eq_ignore_ascii_case(s)) {
                    format!("{}=<redacted>", p.name)
                } else {
                    format!("{}={}", p.name, p.value.as_deref().unwrap_or(""))
                }
            })
            .collect();
        d.field("params", &shown);
        d.finish()
    }
}

macro_rules! auth_header {
    ($(#[$doc:meta])* $ty:ident, $var:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct $ty<'a>(pub Credentials<'a>);

        impl $ty<'_> {
            /// Detaches from the buffer.
            pub fn into_owned(self) -> $ty<'static> {
                $ty(self.0.into_owned())
            }
        }

        impl<'a> std::ops::Deref for $ty<'a> {
            type Target = Credentials<'a>;
            fn deref(&self) -> &Credentials<'a> {
                &self.0
            }
        }

        impl<'a> TypedHeader<'a> for $ty<'a> {
            const NAME: HeaderName = HeaderName::$var;

            fn parse(value: &'a str) -> Result<Self, HeaderError> {
                Credentials::parse(value).map($ty)
            }
        }

        impl fmt::Display for $ty<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

auth_header!(
    /// Authorization (UA → registrar/UAS credentials).
    Authorization,
    Authorization
);
auth_header!(
    /// Proxy-Authorization (UA → proxy credentials).
    ProxyAuthorization,
    ProxyAuthorization
);
auth_header!(
    /// WWW-Authenticate (401 challenge).
    WwwAuthenticate,
    WwwAuthenticate
);
auth_header!(
    /// Proxy-Authenticate (407 challenge).
    ProxyAuthenticate,
    ProxyAuthenticate
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_initial_register_credentials() {
        let a = Authorization::parse("Digest nonce=\"\",uri=\"sip:ims.test\",response=\"\",realm=\"ims.test\",username=\"001010000000002@ims.test\"").unwrap();
        assert!(a.is_digest());
        assert_eq!(a.nonce().as_deref(), Some(""));
        assert_eq!(a.response().as_deref(), Some(""));
        assert_eq!(a.username().as_deref(), Some("001010000000002@ims.test"));
        assert_eq!(a.algorithm(), None);
        assert_eq!(a.params.0[0].name, "nonce");
    }

    #[test]
    fn parse_aka_response_and_auts() {
        let a = Authorization::parse(
            "Digest username=\"u@ims.test\", realm=\"ims.test\", nonce=\"3q2+7w==\", uri=\"sip:ims.test\", \
             response=\"6629fae49393a05397450978507c4ef1\", algorithm=AKAv1-MD5, cnonce=\"0a4f113b\", nc=00000001, \
             qop=auth, auts=\"CjkyMzRfOiwg\", opaque=\"5ccc\", x-vendor=1",
        )
        .unwrap();
        assert!(a.is_aka_v1());
        assert_eq!(a.nc().as_deref(), Some("00000001"));
        assert_eq!(a.qop().as_deref(), Some("auth"));
        assert_eq!(a.auts().as_deref(), Some("CjkyMzRfOiwg"));
        assert_eq!(a.opaque().as_deref(), Some("5ccc"));
        assert_eq!(a.params.get("x-vendor"), Some(Some("1")));
        let dbg = format!("{a:?}");
        assert!(!dbg.contains("6629fae4") && dbg.contains("username"));
        let w = WwwAuthenticate::parse("Digest realm=\"ims.test\", nonce=\"q80=\", algorithm=AKAv1-MD5, qop=\"auth\", ck=\"00ff\", ik=\"ff00\"").unwrap();
        assert_eq!(w.ck().as_deref(), Some("00ff"));
        assert_eq!(w.ik().as_deref(), Some("ff00"));
        let other = ProxyAuthorization::parse("NoOneKnowsThisScheme opaque-data=here").unwrap();
        assert_eq!(other.scheme, "NoOneKnowsThisScheme");
        let basic = Authorization::parse("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==").unwrap();
        assert_eq!(basic.raw, "QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
        assert!(Authorization::parse("Digest realm=\"open").is_err());
        assert!(Authorization::parse("").is_err());
    }

    #[test]
    fn print_auth() {
        let mut c = Credentials::digest();
        c.params.set_quoted("realm", "ims.test");
        c.params.set_quoted("nonce", "q80=");
        c.params.set("algorithm", Some("AKAv1-MD5"));
        c.params.set_quoted("qop", "auth");
        assert_eq!(
            WwwAuthenticate(c).to_line(),
            "WWW-Authenticate: Digest realm=\"ims.test\", nonce=\"q80=\", algorithm=AKAv1-MD5, qop=\"auth\"\r\n"
        );
        let raw = "Digest username=\"a\",nonce=\"\",response=\"\"";
        assert_eq!(
            Authorization::parse(raw).unwrap().to_string(),
            "Digest username=\"a\", nonce=\"\", response=\"\""
        );
        assert_eq!(
            Authorization::parse("Basic QQ==").unwrap().to_string(),
            "Basic QQ=="
        );
    }
}
