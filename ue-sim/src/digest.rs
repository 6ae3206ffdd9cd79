//! HTTP Digest as IMS-AKA uses it (RFC 2617 §3.2, RFC 3310 §3): reading the
//! `WWW-Authenticate` challenge and writing the `Authorization` answer with RES as the
//! password, `auts` on a synchronisation failure (RFC 3310 §3.4) and an empty password
//! when the network failed authentication (RFC 3310 §3.2: the client answers with an
//! empty password so the server learns that AUTN was refused).

use ims_sip_core::text::{split_commas, split_once_unquoted, unquote};
use md5::{Digest, Md5};

/// The parameters of one `Digest` challenge.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DigestChallenge {
    /// `realm`.
    pub realm: String,
    /// `nonce` (base64(RAND ‖ AUTN) for AKAv1-MD5).
    pub nonce: String,
    /// `algorithm` (e.g. `AKAv1-MD5`); empty when absent.
    pub algorithm: String,
    /// `qop` options as sent (e.g. `auth,auth-int`); empty when absent.
    pub qop: String,
    /// `opaque`, echoed when present.
    pub opaque: Option<String>,
    /// Whether `ck=` or `ik=` reached the UE (the P-CSCF should have removed them).
    pub has_ck_ik: bool,
}

/// Why a challenge header cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeError {
    /// Not the Digest scheme.
    #[error("WWW-Authenticate scheme is not Digest: `{0}`")]
    NotDigest(String),
    /// No `nonce`.
    #[error("WWW-Authenticate without nonce")]
    NoNonce,
}

/// Parses a `WWW-Authenticate` value.
pub fn parse_challenge(value: &str) -> Result<DigestChallenge, ChallengeError> {
    let v = value.trim();
    let (scheme, rest) = v.split_once([' ', '\t']).unwrap_or((v, ""));
    if !scheme.eq_ignore_ascii_case("Digest") {
        return Err(ChallengeError::NotDigest(scheme.to_string()));
    }
    let mut c = DigestChallenge::default();
    let mut nonce = None;
    for part in split_commas(rest) {
        let Some((name, val)) = split_once_unquoted(part, b'=') else {
            continue;
        };
        let name = name.trim().to_ascii_lowercase();
        let val = unquote(val.trim()).into_owned();
        match name.as_str() {
            "realm" => c.realm = val,
            "nonce" => nonce = Some(val),
            "algorithm" => c.algorithm = val,
            "qop" => c.qop = val,
            "opaque" => c.opaque = Some(val),
            "ck" | "ik" => c.has_ck_ik = true,
            _ => {}
        }
    }
    c.nonce = nonce.ok_or(ChallengeError::NoNonce)?;
    Ok(c)
}

fn md5_hex(parts: &[&[u8]]) -> String {
    let mut h = Md5::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h.update(b":");
        }
        h.update(p);
    }
    hex::encode(h.finalize())
}

/// Inputs of one `Authorization` answer.
pub struct DigestAnswer<'a> {
    /// `username` (the IMPI).
    pub username: &'a str,
    /// The challenge answered.
    pub challenge: &'a DigestChallenge,
    /// Request method.
    pub method: &'a str,
    /// `uri` (the Request-URI).
    pub uri: &'a str,
    /// The password: RES, or empty after a MAC failure or with `auts`.
    pub password: &'a [u8],
    /// `cnonce` (used when the challenge offered `qop=auth`).
    pub cnonce: &'a str,
    /// `nc`.
    pub nc: u32,
    /// `auts` (base64 of AUTS) on a synchronisation failure.
    pub auts: Option<&'a str>,
}

/// RFC 2617 `response` value. With `qop=auth` offered, uses it.
pub fn response(a: &DigestAnswer<'_>) -> String {
    let ha1 = md5_hex(&[
        a.username.as_bytes(),
        a.challenge.realm.as_bytes(),
        a.password,
    ]);
    let ha2 = md5_hex(&[a.method.as_bytes(), a.uri.as_bytes()]);
    if offers_auth(&a.challenge.qop) {
        let nc = format!("{:08x}", a.nc);
        md5_hex(&[
            ha1.as_bytes(),
            a.challenge.nonce.as_bytes(),
            nc.as_bytes(),
            a.cnonce.as_bytes(),
            b"auth",
            ha2.as_bytes(),
        ])
    } else {
        md5_hex(&[ha1.as_bytes(), a.challenge.nonce.as_bytes(), ha2.as_bytes()])
    }
}

fn offers_auth(qop: &str) -> bool {
    qop.split(',')
        .any(|q| q.trim().eq_ignore_ascii_case("auth"))
}

/// The full `Authorization` header value answering the challenge.
pub fn authorization(a: &DigestAnswer<'_>) -> String {
    let c = a.challenge;
    let algorithm = if c.algorithm.is_empty() {
        "AKAv1-MD5"
    } else {
        &c.algorithm
    };
    let mut s = format!(
        "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{}\", response=\"{}\", algorithm={}",
        a.username,
        c.realm,
        c.nonce,
        a.uri,
        response(a),
        algorithm
    );
    if offers_auth(&c.qop) {
        s.push_str(&format!(
            ", qop=auth, nc={:08x}, cnonce=\"{}\"",
            a.nc, a.cnonce
        ));
    }
    if let Some(o) = &c.opaque {
        s.push_str(&format!(", opaque=\"{o}\""));
    }
    if let Some(auts) = a.auts {
        s.push_str(&format!(", auts=\"{auts}\""));
    }
    s
}

/// The `Authorization` of an initial REGISTER (TS 24.229 §5.1.1.2.1): username, realm,
/// uri, empty nonce and response, so the S-CSCF knows the IMPI.
pub fn initial_authorization(impi: &str, realm: &str, uri: &str) -> String {
    format!(
        "Digest username=\"{impi}\", realm=\"{realm}\", uri=\"{uri}\", nonce=\"\", response=\"\""
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_aka_challenge_any_order_and_flags_ck_ik() {
        let c = parse_challenge(
            "Digest nonce=\"bm9uY2U=\", algorithm=AKAv1-MD5, realm=\"ims.test\", qop=\"auth,auth-int\", ck=\"00\", ik=\"11\"",
        )
        .unwrap();
        assert_eq!(c.realm, "ims.test");
        assert_eq!(c.nonce, "bm9uY2U=");
        assert_eq!(c.algorithm, "AKAv1-MD5");
        assert!(c.has_ck_ik);
        let c = parse_challenge("Digest realm=\"r\",nonce=\"n\"").unwrap();
        assert!(!c.has_ck_ik);
        assert_eq!(
            parse_challenge("Basic realm=\"r\""),
            Err(ChallengeError::NotDigest("Basic".into()))
        );
        assert_eq!(
            parse_challenge("Digest realm=\"r\""),
            Err(ChallengeError::NoNonce)
        );
    }

    /// RFC 2617 §3.5 example (qop=auth), computed independently of our formatting.
    #[test]
    fn rfc2617_example_response() {
        let c = DigestChallenge {
            realm: "testrealm@host.com".into(),
            nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093".into(),
            qop: "auth,auth-int".into(),
            ..Default::default()
        };
        let a = DigestAnswer {
            username: "Mufasa",
            challenge: &c,
            method: "GET",
            uri: "/dir/index.html",
            password: b"Circle Of Life",
            cnonce: "0a4f113b",
            nc: 1,
            auts: None,
        };
        assert_eq!(response(&a), "6629fae49393a05397450978507c4ef1");
        let h = authorization(&a);
        assert!(
            h.contains("qop=auth, nc=00000001, cnonce=\"0a4f113b\""),
            "{h}"
        );
    }

    #[test]
    fn no_qop_uses_rfc2069_form_and_auts_is_appended() {
        let c = DigestChallenge {
            realm: "r".into(),
            nonce: "n".into(),
            algorithm: "AKAv1-MD5".into(),
            ..Default::default()
        };
        let a = DigestAnswer {
            username: "u",
            challenge: &c,
            method: "REGISTER",
            uri: "sip:r",
            password: b"",
            cnonce: "x",
            nc: 1,
            auts: Some("QUFB"),
        };
        let ha1 = md5_hex(&[b"u", b"r", b""]);
        let ha2 = md5_hex(&[b"REGISTER", b"sip:r"]);
        assert_eq!(
            response(&a),
            md5_hex(&[ha1.as_bytes(), b"n", ha2.as_bytes()])
        );
        let h = authorization(&a);
        assert!(h.ends_with(", auts=\"QUFB\""), "{h}");
        assert!(!h.contains("qop"), "{h}");
    }
}
