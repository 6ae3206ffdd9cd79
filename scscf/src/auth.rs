//! The `WWW-Authenticate` challenge of the S-CSCF and the AKA nonce/`auts` encodings
//! (RFC 2617 §3.2.1, RFC 3310 §3.1–3.4, TS 24.229 §5.4.1.2 with `ck`/`ik` towards the
//! P-CSCF). The `Authorization` header itself is parsed by
//! `ims_sip_core::header::Credentials`.

use base64::Engine as _;

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
