//! The integrity and encryption algorithms of IMS access security and their names
//! in each place they appear: sec-agree (`alg=`/`ealg=`, TS 33.203 §7.2 and Annex H),
//! Linux XFRM (`ip xfrm state … auth-trunc hmac(sha1) … enc cbc(aes)`) and Wireshark's
//! ESP SA table (`esp_sa` file, epan/dissectors/packet-ipsec.c).

use std::fmt;
use std::str::FromStr;

/// Integrity algorithm (`alg=` parameter, TS 33.203 §7.2). Both truncate the ICV
/// to 96 bits (RFC 2403, RFC 2404).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IntegrityAlg {
    /// `hmac-md5-96` (RFC 2403). Deprecated from Rel-12 on but still offered by handsets.
    HmacMd5_96,
    /// `hmac-sha-1-96` (RFC 2404).
    HmacSha1_96,
}

/// Encryption algorithm (`ealg=` parameter, TS 33.203 §7.2; absent means `null`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EncryptionAlg {
    /// `null`: no confidentiality (RFC 2410).
    Null,
    /// `aes-cbc` with a 128-bit key (RFC 3602).
    AesCbc,
    /// `des-ede3-cbc` (RFC 2451), key CK1‖CK2‖CK1.
    DesEde3Cbc,
}

impl IntegrityAlg {
    /// Every integrity algorithm, for iteration.
    pub const ALL: [IntegrityAlg; 2] = [IntegrityAlg::HmacMd5_96, IntegrityAlg::HmacSha1_96];

    /// The sec-agree token (`hmac-md5-96`, `hmac-sha-1-96`).
    pub fn as_str(self) -> &'static str {
        match self {
            IntegrityAlg::HmacMd5_96 => "hmac-md5-96",
            IntegrityAlg::HmacSha1_96 => "hmac-sha-1-96",
        }
    }

    /// The Linux crypto API name used in XFRM (`XFRMA_ALG_AUTH_TRUNC`).
    pub fn xfrm_name(self) -> &'static str {
        match self {
            IntegrityAlg::HmacMd5_96 => "hmac(md5)",
            IntegrityAlg::HmacSha1_96 => "hmac(sha1)",
        }
    }

    /// Truncated ICV length in bits (96 for both).
    pub fn trunc_bits(self) -> u32 {
        96
    }

    /// Wireshark's ESP SA table name (`esp_authentication_type_vals`).
    pub fn wireshark_name(self) -> &'static str {
        match self {
            IntegrityAlg::HmacMd5_96 => "HMAC-MD5-96 [RFC2403]",
            IntegrityAlg::HmacSha1_96 => "HMAC-SHA-1-96 [RFC2404]",
        }
    }
}

impl EncryptionAlg {
    /// Every encryption algorithm, for iteration.
    pub const ALL: [EncryptionAlg; 3] = [
        EncryptionAlg::Null,
        EncryptionAlg::AesCbc,
        EncryptionAlg::DesEde3Cbc,
    ];

    /// The sec-agree token (`null`, `aes-cbc`, `des-ede3-cbc`).
    pub fn as_str(self) -> &'static str {
        match self {
            EncryptionAlg::Null => "null",
            EncryptionAlg::AesCbc => "aes-cbc",
            EncryptionAlg::DesEde3Cbc => "des-ede3-cbc",
        }
    }

    /// The Linux crypto API name used in XFRM (`XFRMA_ALG_CRYPT`).
    pub fn xfrm_name(self) -> &'static str {
        match self {
            EncryptionAlg::Null => "ecb(cipher_null)",
            EncryptionAlg::AesCbc => "cbc(aes)",
            EncryptionAlg::DesEde3Cbc => "cbc(des3_ede)",
        }
    }

    /// Wireshark's ESP SA table name (`esp_encryption_type_vals`).
    pub fn wireshark_name(self) -> &'static str {
        match self {
            EncryptionAlg::Null => "NULL",
            EncryptionAlg::AesCbc => "AES-CBC [RFC3602]",
            EncryptionAlg::DesEde3Cbc => "TripleDES-CBC [RFC2451]",
        }
    }
}

/// An algorithm token that is not one of the known values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown algorithm `{0}`")]
pub struct UnknownAlg(pub String);

impl FromStr for IntegrityAlg {
    type Err = UnknownAlg;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        IntegrityAlg::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownAlg(s.to_owned()))
    }
}

impl FromStr for EncryptionAlg {
    type Err = UnknownAlg;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EncryptionAlg::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownAlg(s.to_owned()))
    }
}

impl fmt::Display for IntegrityAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for EncryptionAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One (integrity, encryption) combination, as offered and as configured in the
/// P-CSCF's ordered preference list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AlgPair {
    /// `alg=`
    pub alg: IntegrityAlg,
    /// `ealg=`
    pub ealg: EncryptionAlg,
}

impl AlgPair {
    /// Shorthand constructor.
    pub const fn new(alg: IntegrityAlg, ealg: EncryptionAlg) -> Self {
        AlgPair { alg, ealg }
    }

    /// All six pairs, integrity-major.
    pub fn all() -> impl Iterator<Item = AlgPair> {
        IntegrityAlg::ALL.into_iter().flat_map(|alg| {
            EncryptionAlg::ALL
                .into_iter()
                .map(move |ealg| AlgPair { alg, ealg })
        })
    }
}

impl fmt::Display for AlgPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.alg, self.ealg)
    }
}

/// Parses `alg/ealg` (e.g. `hmac-sha-1-96/aes-cbc`), the form used in configuration.
impl FromStr for AlgPair {
    type Err = UnknownAlg;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (a, e) = s.split_once('/').ok_or_else(|| UnknownAlg(s.to_owned()))?;
        Ok(AlgPair {
            alg: a.trim().parse()?,
            ealg: e.trim().parse()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_case_insensitive() {
        for a in IntegrityAlg::ALL {
            assert_eq!(a.as_str().parse::<IntegrityAlg>(), Ok(a));
            assert_eq!(a.as_str().to_uppercase().parse::<IntegrityAlg>(), Ok(a));
        }
        for e in EncryptionAlg::ALL {
            assert_eq!(e.as_str().parse::<EncryptionAlg>(), Ok(e));
        }
        assert!("hmac-sha-256".parse::<IntegrityAlg>().is_err());
        assert!("aes-gcm".parse::<EncryptionAlg>().is_err());
    }

    #[test]
    fn xfrm_and_wireshark_names() {
        assert_eq!(IntegrityAlg::HmacSha1_96.xfrm_name(), "hmac(sha1)");
        assert_eq!(IntegrityAlg::HmacMd5_96.xfrm_name(), "hmac(md5)");
        assert_eq!(EncryptionAlg::DesEde3Cbc.xfrm_name(), "cbc(des3_ede)");
        assert_eq!(EncryptionAlg::Null.xfrm_name(), "ecb(cipher_null)");
        assert_eq!(
            EncryptionAlg::DesEde3Cbc.wireshark_name(),
            "TripleDES-CBC [RFC2451]"
        );
        assert_eq!(
            IntegrityAlg::HmacSha1_96.wireshark_name(),
            "HMAC-SHA-1-96 [RFC2404]"
        );
    }

    #[test]
    fn pair_parses_from_config_form() {
        let p: AlgPair = "hmac-sha-1-96 / aes-cbc".parse().unwrap();
        assert_eq!(
            p,
            AlgPair::new(IntegrityAlg::HmacSha1_96, EncryptionAlg::AesCbc)
        );
        assert_eq!(p.to_string(), "hmac-sha-1-96/aes-cbc");
        assert!("hmac-sha-1-96".parse::<AlgPair>().is_err());
        assert_eq!(AlgPair::all().count(), 6);
    }
}
