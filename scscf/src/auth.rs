//! The `Authorization` header of a REGISTER and the `WWW-Authenticate` challenge
//! (RFC 2617 §3.2.1–3.2.2, RFC 3310 §3.1–3.4 with the `auts` parameter, TS 24.229 §5.4.1.2
//! with `ck`/`ik` towards the P-CSCF).

use crate::sip::{split_list, unquote};
use base64::Engine as _;

/// Parsed credentials (`Authorization: <scheme> k=v, …`).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// Authentication scheme token (`Digest` for everything the S-CSCF accepts).
    pub scheme: String,
    params: Vec<(String, String)>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("scheme", &self.scheme)
            .field("username", &self.get("username"))
            .field("nonce", &self.get("nonce"))
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// Parses one Authorization header value; `None` if it has no scheme token.
    pub fn parse(v: &str) -> Option<Credentials> {
        let v = v.trim();
        let (scheme, rest) = match v.find(char::is_whitespace) {
            Some(i) => (&v[..i], &v[i..]),
            None => (v, ""),
        };
        if scheme.is_empty() || scheme.contains('=') {
            return None;
        }
        let params = split_list(rest)
            .into_iter()
            .filter_map(|p| {
                let (k, val) = p.split_once('=')?;
                Some((k.trim().to_ascii_lowercase(), unquote(val)))
            })
            .collect();
        Some(Credentials {
            scheme: scheme.to_string(),
            params,
        })
    }

    /// A parameter value, unquoted.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// `true` for the `Digest` scheme (case-insensitive, RFC 2617 §1.2).
    pub fn is_digest(&self) -> bool {
        self.scheme.eq_ignore_ascii_case("Digest")
    }

    /// `username`.
    pub fn username(&self) -> Option<&str> {
        self.get("username").filter(|u| !u.is_empty())
    }

    /// The non-empty `nonce`.
    pub fn nonce(&self) -> Option<&str> {
        self.get("nonce").filter(|n| !n.is_empty())
    }

    /// The non-empty `response`.
    pub fn response(&self) -> Option<&str> {
        self.get("response").filter(|n| !n.is_empty())
    }

    /// `true` when the UE asked for plain MD5 (no AKA).
    pub fn wants_md5(&self) -> bool {
        self.get("algorithm")
            .is_some_and(|a| a.eq_ignore_ascii_case("MD5"))
    }
}

/// What the 401 offers.
#[derive(Clone, PartialEq, Eq)]
pub enum Challenge {
    /// AKAv1-MD5 with the keys for the P-CSCF.
    Aka {
        /// RAND ‖ AUTN.
        rand_autn: Vec<u8>,
        /// CK (16 octets).
        ck: Vec<u8>,
        /// IK (16 octets).
        ik: Vec<u8>,
    },
    /// SIP Digest MD5 with a server-chosen nonce.
    Md5 {
        /// Nonce text.
        nonce: String,
    },
}

impl std::fmt::Debug for Challenge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Challenge::Aka { .. } => f.write_str("Challenge::Aka{..}"),
            Challenge::Md5 { nonce } => write!(f, "Challenge::Md5{{nonce:{nonce}}}"),
        }
    }
}

impl Challenge {
    /// The nonce this challenge carries.
    pub fn nonce(&self) -> String {
        match self {
            Challenge::Aka { rand_autn, .. } => {
                base64::engine::general_purpose::STANDARD.encode(rand_autn)
            }
            Challenge::Md5 { nonce } => nonce.clone(),
        }
    }

    /// The `WWW-Authenticate` header value (RFC 3310 §3.1; TS 24.229 §5.4.1.2.1 adds
    /// `ck`/`ik` for the P-CSCF, which removes them).
    pub fn www_authenticate(&self, realm: &str, stale: bool) -> String {
        let stale = if stale { ", stale=true" } else { "" };
        match self {
            Challenge::Aka { ck, ik, .. } => format!(
                "Digest realm=\"{realm}\", nonce=\"{}\", algorithm=AKAv1-MD5, qop=\"auth\"{stale}, ck=\"{}\", ik=\"{}\"",
                self.nonce(),
                hex::encode(ck),
                hex::encode(ik)
            ),
            Challenge::Md5 { nonce } => format!(
                "Digest realm=\"{realm}\", nonce=\"{nonce}\", algorithm=MD5, qop=\"auth\"{stale}"
            ),
        }
    }
}

/// Decodes a base64 nonce (RAND ‖ AUTN ‖ server data, RFC 3310 §3.2); `None` if not base64.
pub fn decode_nonce(nonce: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(nonce.trim())
        .ok()
}

/// Decodes the `auts` parameter (base64 of 14 octets, RFC 3310 §3.4).
pub fn decode_auts(auts: &str) -> Option<Vec<u8>> {
    let b = base64::engine::general_purpose::STANDARD
        .decode(auts.trim())
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(auts.trim()))
        .ok()?;
    (b.len() == 14).then_some(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_handset_authorization() {
        let c = Credentials::parse(
            "Digest username=\"001010000000001@ims.mnc001.mcc001.3gppnetwork.org\",realm=\"ims.test\", nonce=\"\",uri=\"sip:ims.test\",response=\"\", algorithm=AKAv1-MD5",
        )
        .unwrap();
        assert!(c.is_digest());
        assert_eq!(
            c.username(),
            Some("001010000000001@ims.mnc001.mcc001.3gppnetwork.org")
        );
        assert_eq!(c.nonce(), None);
        assert_eq!(c.response(), None);
        assert!(!c.wants_md5());
        let dbg = format!("{c:?}");
        assert!(dbg.contains("001010000000001"));
    }

    #[test]
    fn unknown_scheme_is_kept_apart() {
        // RFC 4475 §3.3.7 regaut01
        let c = Credentials::parse("NoOneKnowsThisScheme opaque-data=here").unwrap();
        assert!(!c.is_digest());
    }

    #[test]
    fn challenge_headers() {
        let ch = Challenge::Aka {
            rand_autn: vec![0x23; 32],
            ck: vec![0xb4; 16],
            ik: vec![0xf7; 16],
        };
        let h = ch.www_authenticate("ims.test", true);
        assert!(h.starts_with("Digest realm=\"ims.test\", nonce=\""));
        assert!(h.contains("algorithm=AKAv1-MD5, qop=\"auth\", stale=true, ck=\"b4b4"));
        assert!(h.contains(&format!("ik=\"{}\"", "f7".repeat(16))));
        assert_eq!(decode_nonce(&ch.nonce()).unwrap(), vec![0x23; 32]);
        assert!(!format!("{ch:?}").contains("b4"));
        let m = Challenge::Md5 { nonce: "n1".into() }.www_authenticate("r", false);
        assert_eq!(
            m,
            "Digest realm=\"r\", nonce=\"n1\", algorithm=MD5, qop=\"auth\""
        );
    }

    #[test]
    fn auts_decoding() {
        let a = base64::engine::general_purpose::STANDARD.encode([7u8; 14]);
        assert_eq!(decode_auts(&a), Some(vec![7u8; 14]));
        assert_eq!(decode_auts("AAAA"), None);
    }
}
