//! IMS AKA session keys CK and IK and the ESP keys derived from them
//! (TS 33.203 §6.1 and Annex I, as implemented by deployed P-CSCFs and handsets; see
//! `../shared/reference/SEC-AGREE.md` §3.3):
//!
//! | sec-agree | XFRM | key |
//! |---|---|---|
//! | `hmac-md5-96` | `hmac(md5)`, trunc 96 | IK (128 bit) |
//! | `hmac-sha-1-96` | `hmac(sha1)`, trunc 96 | IK ‖ 0x00000000 (160 bit) |
//! | `aes-cbc` | `cbc(aes)` | CK (128 bit) |
//! | `des-ede3-cbc` | `cbc(des3_ede)` | CK1 ‖ CK2 ‖ CK1 (192 bit), CK = CK1 ‖ CK2 |
//! | `null` | `ecb(cipher_null)` | empty |
//!
//! The same keys serve all four SAs of a UE. Key bytes are zeroized on drop and
//! never appear in `Debug` output.

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::alg::{EncryptionAlg, IntegrityAlg};

/// A CK or IK that is not 16 bytes / 32 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{which} must be 32 hex digits (128 bits)")]
pub struct KeyFormatError {
    /// `CK` or `IK`.
    pub which: &'static str,
}

macro_rules! session_key {
    ($name:ident, $label:literal, $doc:literal) => {
        #[doc = $doc]
        #[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
        pub struct $name([u8; 16]);

        impl $name {
            /// From the 16 key bytes.
            pub fn new(bytes: [u8; 16]) -> Self {
                $name(bytes)
            }

            /// From 32 hex digits, as in the 401's `ck="…"`/`ik="…"`.
            pub fn from_hex(hex_str: &str) -> Result<Self, KeyFormatError> {
                let mut b = [0u8; 16];
                hex::decode_to_slice(hex_str.trim(), &mut b)
                    .map_err(|_| KeyFormatError { which: $label })?;
                Ok($name(b))
            }

            /// The key bytes.
            pub fn as_bytes(&self) -> &[u8; 16] {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!($label, "(<redacted>)"))
            }
        }
    };
}

session_key!(Ck, "CK", "Cipher key CK (128 bits) from the AKA vector.");
session_key!(Ik, "IK", "Integrity key IK (128 bits) from the AKA vector.");

/// One XFRM algorithm with its key: what `ip xfrm state add … auth-trunc NAME KEY 96`
/// or `… enc NAME KEY` takes.
#[derive(Clone, PartialEq, Eq)]
pub struct XfrmKey {
    /// Linux crypto API name (`hmac(sha1)`, `cbc(aes)`, …).
    pub name: &'static str,
    /// Key bytes (empty for `ecb(cipher_null)`).
    pub key: Zeroizing<Vec<u8>>,
}

impl XfrmKey {
    /// Key length in bits.
    pub fn bits(&self) -> u32 {
        // Keys here are at most 24 bytes.
        (self.key.len() * 8) as u32
    }

    /// `0x…` hex of the key (`0x` alone for an empty key), as iproute2 and
    /// Wireshark take it. Handle with care: this is secret material.
    pub fn hex(&self) -> Zeroizing<String> {
        Zeroizing::new(format!("0x{}", hex::encode(&*self.key)))
    }
}

impl fmt::Debug for XfrmKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "XfrmKey {{ name: {:?}, key: <{} bits redacted> }}",
            self.name,
            self.bits()
        )
    }
}

/// The integrity and encryption keys of one UE's SA set.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct EspKeys {
    /// Integrity algorithm and key (`XFRMA_ALG_AUTH_TRUNC`).
    pub auth: XfrmKey,
    /// ICV truncation in bits (96).
    pub auth_trunc_bits: u32,
    /// Encryption algorithm and key (`XFRMA_ALG_CRYPT`).
    pub enc: XfrmKey,
}

/// Integrity key for `alg` from IK (see the module table).
pub fn derive_auth_key(alg: IntegrityAlg, ik: &Ik) -> XfrmKey {
    let mut key = Zeroizing::new(Vec::with_capacity(20));
    key.extend_from_slice(ik.as_bytes());
    if alg == IntegrityAlg::HmacSha1_96 {
        key.extend_from_slice(&[0, 0, 0, 0]);
    }
    XfrmKey {
        name: alg.xfrm_name(),
        key,
    }
}

/// Encryption key for `ealg` from CK (see the module table).
pub fn derive_enc_key(ealg: EncryptionAlg, ck: &Ck) -> XfrmKey {
    let ck = ck.as_bytes();
    let mut key = Zeroizing::new(Vec::with_capacity(24));
    match ealg {
        EncryptionAlg::Null => {}
        EncryptionAlg::AesCbc => key.extend_from_slice(ck),
        EncryptionAlg::DesEde3Cbc => {
            key.extend_from_slice(ck);
            key.extend_from_slice(&ck[..8]);
        }
    }
    XfrmKey {
        name: ealg.xfrm_name(),
        key,
    }
}

/// Both keys for one (alg, ealg) choice.
pub fn derive_esp_keys(alg: IntegrityAlg, ealg: EncryptionAlg, ck: &Ck, ik: &Ik) -> EspKeys {
    EspKeys {
        auth: derive_auth_key(alg, ik),
        auth_trunc_bits: alg.trunc_bits(),
        enc: derive_enc_key(ealg, ck),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CK_HEX: &str = "00112233445566778899aabbccddeeff";
    const IK_HEX: &str = "ffeeddccbbaa99887766554433221100";

    fn ck() -> Ck {
        Ck::from_hex(CK_HEX).unwrap()
    }
    fn ik() -> Ik {
        Ik::from_hex(IK_HEX).unwrap()
    }

    #[test]
    fn md5_uses_ik_as_is() {
        let k = derive_auth_key(IntegrityAlg::HmacMd5_96, &ik());
        assert_eq!(k.name, "hmac(md5)");
        assert_eq!(hex::encode(&*k.key), IK_HEX);
        assert_eq!(k.bits(), 128);
    }

    #[test]
    fn sha1_pads_ik_with_32_zero_bits() {
        let k = derive_auth_key(IntegrityAlg::HmacSha1_96, &ik());
        assert_eq!(k.name, "hmac(sha1)");
        assert_eq!(hex::encode(&*k.key), format!("{IK_HEX}00000000"));
        assert_eq!(k.bits(), 160);
    }

    #[test]
    fn aes_uses_ck() {
        let k = derive_enc_key(EncryptionAlg::AesCbc, &ck());
        assert_eq!(k.name, "cbc(aes)");
        assert_eq!(&*k.hex(), &format!("0x{CK_HEX}"));
    }

    #[test]
    fn des3_is_ck1_ck2_ck1() {
        let k = derive_enc_key(EncryptionAlg::DesEde3Cbc, &ck());
        assert_eq!(k.name, "cbc(des3_ede)");
        assert_eq!(
            hex::encode(&*k.key),
            "00112233445566778899aabbccddeeff0011223344556677"
        );
        assert_eq!(k.bits(), 192);
    }

    #[test]
    fn null_has_empty_key() {
        let k = derive_enc_key(EncryptionAlg::Null, &ck());
        assert_eq!(k.name, "ecb(cipher_null)");
        assert!(k.key.is_empty());
        assert_eq!(&*k.hex(), "0x");
    }

    #[test]
    fn keys_are_redacted_in_debug() {
        let keys = derive_esp_keys(
            IntegrityAlg::HmacSha1_96,
            EncryptionAlg::AesCbc,
            &ck(),
            &ik(),
        );
        let d = format!("{keys:?} {:?} {:?}", ck(), ik());
        assert!(!d.contains("0011"), "{d}");
        assert!(!d.contains("ffee"), "{d}");
        assert!(!d.to_lowercase().contains("ddcc"), "{d}");
        assert!(d.contains("redacted"));
    }

    #[test]
    fn bad_hex_is_refused() {
        assert_eq!(Ck::from_hex("0011").unwrap_err().which, "CK");
        assert!(Ik::from_hex(&"zz".repeat(16)).is_err());
        assert!(Ik::from_hex(&format!("{IK_HEX}00")).is_err());
    }
}
