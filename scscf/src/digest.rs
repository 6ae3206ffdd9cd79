//! HTTP Digest arithmetic for SIP (RFC 2617 §3.2.2, RFC 3261 §22.4) and its
//! IMS-AKA use (RFC 3310 §3.4): with AKAv1-MD5 the "password" is the raw
//! RES/XRES octets, not their hex text.

use md5::{Digest, Md5};

/// Lower-case hex MD5 of `data`.
pub fn md5_hex(data: &[u8]) -> String {
    hex::encode(Md5::digest(data))
}

/// `HA1 = MD5(username ":" realm ":" password)` (RFC 2617 §3.2.2.2), password as raw bytes.
pub fn ha1(username: &str, realm: &str, password: &[u8]) -> String {
    let mut h = Md5::new();
    h.update(username.as_bytes());
    h.update(b":");
    h.update(realm.as_bytes());
    h.update(b":");
    h.update(password);
    hex::encode(h.finalize())
}

/// `HA2 = MD5(method ":" digest-uri)` for qop absent or `auth` (RFC 2617 §3.2.2.3).
pub fn ha2(method: &str, digest_uri: &str) -> String {
    md5_hex(format!("{method}:{digest_uri}").as_bytes())
}

/// The `qop`-dependent fields of a digest response.
#[derive(Debug, Clone, Copy)]
pub struct QopFields<'a> {
    /// `qop` value (`auth`).
    pub qop: &'a str,
    /// `nc` (8 hex digits, as received).
    pub nc: &'a str,
    /// `cnonce`.
    pub cnonce: &'a str,
}

/// `request-digest` (RFC 2617 §3.2.2.1): with qop `MD5(HA1:nonce:nc:cnonce:qop:HA2)`,
/// without (RFC 2069 compatibility) `MD5(HA1:nonce:HA2)`.
pub fn request_digest(ha1: &str, nonce: &str, qop: Option<QopFields<'_>>, ha2: &str) -> String {
    match qop {
        Some(q) => {
            md5_hex(format!("{ha1}:{nonce}:{}:{}:{}:{ha2}", q.nc, q.cnonce, q.qop).as_bytes())
        }
        None => md5_hex(format!("{ha1}:{nonce}:{ha2}").as_bytes()),
    }
}

/// Constant-time comparison of two ASCII hex strings (case-insensitive).
pub fn hex_eq(a: &str, b: &str) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut diff = 0u8;
    for (x, y) in a.bytes().zip(b.bytes()) {
        diff |= x.to_ascii_lowercase() ^ y.to_ascii_lowercase();
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 2617 §3.5 example ("Mufasa" / "Circle Of Life").
    #[test]
    fn rfc2617_example() {
        let h1 = ha1("Mufasa", "testrealm@host.com", b"Circle Of Life");
        let h2 = ha2("GET", "/dir/index.html");
        let r = request_digest(
            &h1,
            "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            Some(QopFields {
                qop: "auth",
                nc: "00000001",
                cnonce: "0a4f113b",
            }),
            &h2,
        );
        assert_eq!(r, "6629fae49393a05397450978507c4ef1");
    }

    /// AKAv1-MD5 with the TS 35.208 test set 1 RES (f2 = a54211d5e3ba50bf) as the raw
    /// 8-byte password. Expected values computed independently with Python hashlib:
    /// `md5(b"user1@ims.test:ims.test:" + bytes.fromhex("a54211d5e3ba50bf"))`, etc.
    #[test]
    fn aka_ts35208_set1_res() {
        let res = hex::decode("a54211d5e3ba50bf").unwrap();
        let h1 = ha1("user1@ims.test", "ims.test", &res);
        assert_eq!(h1, "b3a7a951e9068b31eacfcc0bfad35c9f");
        // hex text as password would be a different (wrong) HA1
        assert_ne!(h1, ha1("user1@ims.test", "ims.test", b"a54211d5e3ba50bf"));
        let h2 = ha2("REGISTER", "sip:ims.test");
        let nonce = "I1U8vpY3qJ0hiuZNrke/NQ==";
        let with_qop = request_digest(
            &h1,
            nonce,
            Some(QopFields {
                qop: "auth",
                nc: "00000001",
                cnonce: "abcdef01",
            }),
            &h2,
        );
        assert_eq!(with_qop, "d28d89a91a28fcaf485906378f8458a3");
        let without = request_digest(&h1, nonce, None, &h2);
        assert_eq!(without, "dce4635b0b24e844ee74fe9786ab7098");
    }

    #[test]
    fn hex_eq_cases() {
        assert!(hex_eq("abCD", "ABcd"));
        assert!(!hex_eq("abcd", "abce"));
        assert!(!hex_eq("abc", "abcd"));
    }
}
