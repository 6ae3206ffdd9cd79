//! Header work that belongs to the P-CSCF's role (TS 24.229 §5.2.2, TS 33.203 §7):
//! taking `ck`/`ik` out of the 401 before it reaches the UE, the `sec-agree` and `path`
//! option tags, `integrity-protected` in Authorization, and the reading of the
//! REGISTER's contact, expiry and identities. Generic SIP lives in `ims-sip-core`.

use std::fmt;

use ims_sip_core::edit::Editor;
use ims_sip_core::header::{Authorization, TypedHeader, WwwAuthenticate};
use ims_sip_core::text::split_commas;
use ims_sip_core::{Message, NameAddr, Uri};
use zeroize::Zeroizing;

/// CK and IK from the 401 (hex as received), kept for the IPsec SAs; never logged.
#[derive(Clone, PartialEq, Eq)]
pub struct AkaKeys {
    /// Confidentiality key, 32 hex digits.
    pub ck: Zeroizing<String>,
    /// Integrity key, 32 hex digits.
    pub ik: Zeroizing<String>,
}

impl fmt::Debug for AkaKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AkaKeys { ck: <redacted>, ik: <redacted> }")
    }
}

/// Every comma-separated element of every line named `name` (any header name).
pub fn elements(msg: &Message, name: &str) -> Vec<String> {
    msg.header_values_str(name)
        .flat_map(split_commas)
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// The URI (as text) of a name-addr value, None if it does not parse.
pub fn uri_of(value: &str) -> Option<String> {
    NameAddr::parse(value).ok().map(|na| na.uri.to_string())
}

/// AOR key (`sip:user@host`, `tel:+digits`) of a URI text.
pub fn aor_of(uri: &str) -> String {
    match Uri::parse(uri.trim()) {
        Ok(Uri::Sip(s)) => s.aor(),
        Ok(Uri::Tel(t)) => format!("tel:{}", t.digits()),
        _ => uri.trim().to_string(),
    }
}

/// Takes `ck`/`ik` from the challenges of a response (TS 33.203 §7.1: the UE must not
/// see them) and returns them with the edited message octets.
pub fn strip_ck_ik(msg: &Message) -> (Option<AkaKeys>, Option<Message>) {
    let mut keys = None;
    for v in msg
        .header_values_str("WWW-Authenticate")
        .chain(msg.header_values_str("Proxy-Authenticate"))
    {
        if let Ok(w) = WwwAuthenticate::parse(v) {
            if let (Some(ck), Some(ik)) = (w.ck(), w.ik()) {
                keys.get_or_insert(AkaKeys {
                    ck: Zeroizing::new(ck.into_owned()),
                    ik: Zeroizing::new(ik.into_owned()),
                });
            }
        }
    }
    let mut e = msg.edit();
    let mut changed = 0;
    for h in ["WWW-Authenticate", "Proxy-Authenticate"] {
        for p in ["ck", "ik"] {
            changed += e.remove_param(h, p);
        }
    }
    let edited = if changed > 0 {
        e.finish_message().ok()
    } else {
        None
    };
    (keys, edited)
}

/// Rewrites the option tags of `name` (Require, Proxy-Require, Supported): `remove`
/// taken out, `add` added unless present; the header goes when nothing is left.
pub fn edit_option_tags(
    msg: &Message,
    e: &mut Editor<'_>,
    name: &str,
    remove: Option<&str>,
    add: Option<&str>,
) {
    let all = elements(msg, name);
    let mut out: Vec<&str> = all
        .iter()
        .map(String::as_str)
        .filter(|t| remove.is_none_or(|r| !t.eq_ignore_ascii_case(r)))
        .collect();
    if let Some(a) = add {
        if !out.iter().any(|t| t.eq_ignore_ascii_case(a)) {
            out.push(a);
        }
    }
    if out.len() == all.len() && out.iter().zip(&all).all(|(a, b)| *a == b.as_str()) {
        return;
    }
    if out.is_empty() {
        e.remove(name);
    } else {
        e.set(name, out.join(", "));
    }
}

/// Sets `integrity-protected` in the Authorization header (TS 24.229 §5.2.2.1).
pub fn mark_integrity(msg: &Message, e: &mut Editor<'_>, value: &str) {
    let Some(auth) = msg.header_str("Authorization") else {
        return;
    };
    let Some(stripped) = remove_auth_param(auth, "integrity-protected") else {
        return;
    };
    let v = stripped.trim_end();
    let sep = if v.ends_with("Digest") { " " } else { ", " };
    e.set(
        "Authorization",
        format!("{v}{sep}integrity-protected=\"{value}\""),
    );
}

/// `param` removed from a Digest value (`Digest a=1, b="x"`); None if it is not Digest.
fn remove_auth_param(v: &str, param: &str) -> Option<String> {
    let v = v.trim();
    let (scheme, rest) = v.split_once(char::is_whitespace).unwrap_or((v, ""));
    let kept: Vec<&str> = split_commas(rest)
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .filter(|p| {
            p.split('=')
                .next()
                .is_none_or(|n| !n.trim().eq_ignore_ascii_case(param))
        })
        .collect();
    if kept.is_empty() {
        Some(scheme.to_string())
    } else {
        Some(format!("{scheme} {}", kept.join(", ")))
    }
}

/// The private identity (Authorization `username`), "" if none.
pub fn impi(msg: &Message) -> String {
    msg.header_str("Authorization")
        .and_then(|a| Authorization::parse(a).ok())
        .and_then(|a| a.username().map(|u| u.into_owned()))
        .unwrap_or_default()
}

/// The Contact URIs of a REGISTER with their own `expires` parameter; `*` gives
/// `("*", None)`.
pub fn contacts(msg: &Message) -> Vec<(String, Option<u64>)> {
    elements(msg, "Contact")
        .iter()
        .filter_map(|c| {
            if c == "*" {
                return Some(("*".to_string(), None));
            }
            let na = NameAddr::parse(c).ok()?;
            let exp = na
                .params
                .get_unquoted("expires")
                .and_then(|e| e.trim().parse().ok());
            Some((na.uri.to_string(), exp))
        })
        .collect()
}

/// The `Expires` header value.
pub fn expires_header(msg: &Message) -> Option<u64> {
    msg.header_str("Expires")
        .and_then(|e| e.trim().parse().ok())
}

/// Whether a REGISTER removes bindings: `Expires: 0`, every Contact with `expires=0`
/// (RFC 3261 §10.2.2), or `Contact: *`.
pub fn is_deregistration(msg: &Message) -> bool {
    let cs = contacts(msg);
    if cs.iter().any(|(c, _)| c == "*") {
        return true;
    }
    let header = expires_header(msg);
    if cs.is_empty() {
        return header == Some(0);
    }
    cs.iter().all(|(_, e)| match e {
        Some(e) => *e == 0,
        None => header == Some(0),
    })
}

/// Whether the request has a To tag (in-dialog).
pub fn has_to_tag(msg: &Message) -> bool {
    matches!(msg.to_addr(), Some(Ok(na)) if na.tag().is_some_and(|t| !t.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Message {
        Message::parse(s.as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn ck_ik_leave_the_401() {
        let m = parse("SIP/2.0 401 Unauthorized\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK1\r\nFrom: <sip:a@ims.test>;tag=1\r\nTo: <sip:a@ims.test>;tag=2\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\nWWW-Authenticate: Digest realm=\"ims.test\", nonce=\"bm9uY2U=\", algorithm=AKAv1-MD5, ck=\"00112233445566778899aabbccddeeff\", ik=\"ffeeddccbbaa99887766554433221100\"\r\nl: 0\r\n\r\n");
        let (keys, edited) = strip_ck_ik(&m);
        let keys = keys.unwrap();
        assert_eq!(keys.ck.as_str(), "00112233445566778899aabbccddeeff");
        let out = String::from_utf8(edited.unwrap().as_bytes().to_vec()).unwrap();
        assert!(!out.contains("ck=") && !out.contains("ik="), "{out}");
        assert!(out.contains("algorithm=AKAv1-MD5"));
        assert!(!format!("{keys:?}").contains("0011"));
    }

    #[test]
    fn option_tags_and_integrity() {
        let m = parse("REGISTER sip:ims.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK1\r\nFrom: <sip:a@ims.test>;tag=1\r\nTo: <sip:a@ims.test>\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\nRequire: sec-agree\r\nProxy-Require: sec-agree, foo\r\nSupported: path\r\nAuthorization: Digest username=\"u\", nonce=\"\", integrity-protected=\"yes\"\r\nl: 0\r\n\r\n");
        let mut e = m.edit();
        edit_option_tags(&m, &mut e, "Require", Some("sec-agree"), Some("path"));
        edit_option_tags(&m, &mut e, "Proxy-Require", Some("sec-agree"), None);
        edit_option_tags(&m, &mut e, "Supported", None, Some("path"));
        mark_integrity(&m, &mut e, "no");
        let out = e.finish_message().unwrap();
        assert_eq!(elements(&out, "Require"), vec!["path"]);
        assert_eq!(elements(&out, "Proxy-Require"), vec!["foo"]);
        assert_eq!(elements(&out, "Supported"), vec!["path"]);
        let auth = out.header_str("Authorization").unwrap();
        assert!(auth.ends_with("integrity-protected=\"no\""), "{auth}");
        assert_eq!(auth.matches("integrity-protected").count(), 1);
        assert_eq!(impi(&out), "u");
    }

    #[test]
    fn deregistration_forms() {
        let base = |extra: &str| {
            parse(&format!("REGISTER sip:ims.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK1\r\nFrom: <sip:a@ims.test>;tag=1\r\nTo: <sip:a@ims.test>\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\n{extra}l: 0\r\n\r\n"))
        };
        assert!(is_deregistration(&base("Contact: *\r\nExpires: 0\r\n")));
        assert!(is_deregistration(&base(
            "Contact: <sip:a@1.2.3.4>;expires=0\r\n"
        )));
        assert!(is_deregistration(&base(
            "Contact: <sip:a@1.2.3.4>\r\nExpires: 0\r\n"
        )));
        assert!(!is_deregistration(&base(
            "Contact: <sip:a@1.2.3.4>;expires=600\r\nExpires: 0\r\n"
        )));
        assert!(!is_deregistration(&base("Contact: <sip:a@1.2.3.4>\r\n")));
        assert_eq!(
            aor_of("sip:Alice@IMS.test:5060;transport=udp"),
            "sip:Alice@ims.test"
        );
    }
}
