//! Header field names (RFC 3261 §7.3, §20; compact forms §7.3.3 and the IANA registry).
//!
//! Names compare case-insensitively; compact forms map to their long form, so
//! `i:` *is* `Call-ID`. Names this crate does not know are [`HeaderName::Other`];
//! the original spelling stays in the message buffer.

use std::fmt;
use std::sync::OnceLock;

/// Known names hashed on (length, first and last byte, case-folded) into 256 slots.
static TABLE: OnceLock<Vec<Vec<(HeaderName, &'static str)>>> = OnceLock::new();

#[inline]
fn slot(name: &[u8]) -> usize {
    let first = name.first().map_or(0, |c| c | 0x20) as usize;
    let last = name.last().map_or(0, |c| c | 0x20) as usize;
    (name.len().wrapping_mul(31) ^ first.wrapping_mul(7) ^ last.wrapping_mul(13)) & 0xff
}

macro_rules! names {
    ($($var:ident => $text:literal $(, $compact:literal)?;)*) => {
        /// A known header name, or `Other` for any other token.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum HeaderName {
            $(
                #[doc = $text]
                $var,
            )*
            /// A name this crate does not know (the message keeps its spelling).
            Other,
        }

        impl HeaderName {
            /// The canonical long name (`"Other"` has none: returns the empty string).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(HeaderName::$var => $text,)*
                    HeaderName::Other => "",
                }
            }

            /// Looks a name up, case-insensitively, compact forms included.
            pub fn from_bytes(name: &[u8]) -> HeaderName {
                if name.len() == 1 {
                    let c = name[0].to_ascii_lowercase();
                    $($(if c == $compact { return HeaderName::$var; })?)*
                    return HeaderName::Other;
                }
                let table = TABLE.get_or_init(|| {
                    let mut t: Vec<Vec<(HeaderName, &'static str)>> = vec![Vec::new(); 256];
                    $(t[slot($text.as_bytes())].push((HeaderName::$var, $text));)*
                    t
                });
                let candidates = &table[slot(name)];
                // Canonical spelling first (a plain memcmp), then case-insensitive.
                for (var, text) in candidates {
                    if name == text.as_bytes() {
                        return *var;
                    }
                }
                for (var, text) in candidates {
                    if name.eq_ignore_ascii_case(text.as_bytes()) {
                        return *var;
                    }
                }
                HeaderName::Other
            }

            /// The compact form, if the header has one.
            pub fn compact(self) -> Option<char> {
                match self {
                    $($(HeaderName::$var => Some($compact as char),)?)*
                    _ => None,
                }
            }
        }
    };
}

names! {
    Via => "Via", b'v';
    From => "From", b'f';
    To => "To", b't';
    CallId => "Call-ID", b'i';
    CSeq => "CSeq";
    MaxForwards => "Max-Forwards";
    Contact => "Contact", b'm';
    ContentLength => "Content-Length", b'l';
    ContentType => "Content-Type", b'c';
    ContentEncoding => "Content-Encoding", b'e';
    Supported => "Supported", b'k';
    Subject => "Subject", b's';
    Event => "Event", b'o';
    AllowEvents => "Allow-Events", b'u';
    ReferTo => "Refer-To", b'r';
    ReferredBy => "Referred-By", b'b';
    SessionExpires => "Session-Expires", b'x';
    AcceptContact => "Accept-Contact", b'a';
    RejectContact => "Reject-Contact", b'j';
    RequestDisposition => "Request-Disposition", b'd';
    Identity => "Identity", b'y';
    IdentityInfo => "Identity-Info", b'n';
    Route => "Route";
    RecordRoute => "Record-Route";
    Path => "Path";
    ServiceRoute => "Service-Route";
    Require => "Require";
    ProxyRequire => "Proxy-Require";
    Unsupported => "Unsupported";
    Expires => "Expires";
    MinExpires => "Min-Expires";
    Authorization => "Authorization";
    ProxyAuthorization => "Proxy-Authorization";
    WwwAuthenticate => "WWW-Authenticate";
    ProxyAuthenticate => "Proxy-Authenticate";
    AuthenticationInfo => "Authentication-Info";
    PAssertedIdentity => "P-Asserted-Identity";
    PPreferredIdentity => "P-Preferred-Identity";
    PAssociatedUri => "P-Associated-URI";
    PVisitedNetworkId => "P-Visited-Network-ID";
    PChargingVector => "P-Charging-Vector";
    PChargingFunctionAddresses => "P-Charging-Function-Addresses";
    PAccessNetworkInfo => "P-Access-Network-Info";
    PCalledPartyId => "P-Called-Party-ID";
    SecurityClient => "Security-Client";
    SecurityServer => "Security-Server";
    SecurityVerify => "Security-Verify";
    SubscriptionState => "Subscription-State";
    Allow => "Allow";
    Accept => "Accept";
    AcceptEncoding => "Accept-Encoding";
    AcceptLanguage => "Accept-Language";
    RetryAfter => "Retry-After";
    Warning => "Warning";
    Date => "Date";
    Timestamp => "Timestamp";
    UserAgent => "User-Agent";
    Server => "Server";
    Privacy => "Privacy";
    Reason => "Reason";
    ContentDisposition => "Content-Disposition";
    MinSe => "Min-SE";
    RSeq => "RSeq";
    RAck => "RAck";
}

impl HeaderName {
    /// Headers that may appear at most once (RFC 3261 §7.3.1: no comma lists, §20 tables).
    pub fn is_single_valued(self) -> bool {
        matches!(
            self,
            HeaderName::From
                | HeaderName::To
                | HeaderName::CallId
                | HeaderName::CSeq
                | HeaderName::MaxForwards
                | HeaderName::ContentType
        )
    }
}

impl fmt::Display for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// True for RFC 3261 `token` characters (§25.1).
#[inline]
pub fn is_token_char(c: u8) -> bool {
    crate::chars::TOKEN[c as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_and_case() {
        assert_eq!(HeaderName::from_bytes(b"i"), HeaderName::CallId);
        assert_eq!(HeaderName::from_bytes(b"I"), HeaderName::CallId);
        assert_eq!(HeaderName::from_bytes(b"call-id"), HeaderName::CallId);
        assert_eq!(HeaderName::from_bytes(b"MaX-fOrWaRdS"), HeaderName::MaxForwards);
        assert_eq!(HeaderName::from_bytes(b"y"), HeaderName::Identity);
        assert_eq!(HeaderName::from_bytes(b"n"), HeaderName::IdentityInfo);
        assert_eq!(HeaderName::from_bytes(b"C%6Fntact"), HeaderName::Other);
        assert_eq!(HeaderName::from_bytes(b"q"), HeaderName::Other);
        assert_eq!(HeaderName::Contact.compact(), Some('m'));
        assert_eq!(HeaderName::Route.compact(), None);
    }
}
