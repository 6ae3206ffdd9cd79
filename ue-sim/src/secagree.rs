//! The UE's side of sec-agree (RFC 3329 §2; TS 33.203 §7.2, TS 24.229 §5.1.1.2):
//! its `Security-Client` offers, written the way a chosen handset family writes them,
//! and reading the P-CSCF's `Security-Server` from the 401.
//!
//! Handset styles come from public traces (`shared/reference/FIELD-LESSONS.md`,
//! "What real handsets send"): the RFC layout, a Qualcomm-style stack (space after
//! every `;`, no `prot`/`mod`), Huawei (`alg;prot;mod;ealg` order), Samsung (port-c >
//! port-s) and iPhone (one offer, parameters in alphabetical order).

use std::fmt::Write as _;
use std::str::FromStr;

use ims_ipsec::{parse_security_header, AlgPair, EncryptionAlg, IntegrityAlg, IpsecOffer};

/// How the `Security-Client` header is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HeaderStyle {
    /// `ipsec-3gpp;prot=esp;mod=trans;spi-c=…;spi-s=…;port-c=…;port-s=…;alg=…;ealg=…`.
    #[default]
    Standard,
    /// `ipsec-3gpp; alg=…; ealg=…; spi-c=…; spi-s=…; port-c=…; port-s=…` (no prot/mod).
    Qualcomm,
    /// `ipsec-3gpp;alg=…;prot=esp;mod=trans;ealg=…;spi-c=…;…`.
    Huawei,
    /// Parameters in alphabetical order: `alg;ealg;mod;port-c;port-s;prot;spi-c;spi-s`.
    Alphabetical,
}

impl FromStr for HeaderStyle {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "standard" | "rfc" => Ok(HeaderStyle::Standard),
            "qualcomm" => Ok(HeaderStyle::Qualcomm),
            "huawei" => Ok(HeaderStyle::Huawei),
            "alphabetical" | "iphone" => Ok(HeaderStyle::Alphabetical),
            _ => Err(format!(
                "unknown header style `{s}` (standard, qualcomm, huawei, alphabetical)"
            )),
        }
    }
}

/// The UE's protected ports and SPIs (what it puts in every offer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UeSecParams {
    /// SPI of the SA arriving at port-c.
    pub spi_c: u32,
    /// SPI of the SA arriving at port-s.
    pub spi_s: u32,
    /// Protected client port.
    pub port_c: u16,
    /// Protected server port.
    pub port_s: u16,
}

/// Formats one offer in `style`.
pub fn format_offer(style: HeaderStyle, pair: AlgPair, p: &UeSecParams) -> String {
    let mut s = String::from("ipsec-3gpp");
    let (alg, ealg) = (pair.alg.as_str(), pair.ealg.as_str());
    let (sc, ss, pc, ps) = (p.spi_c, p.spi_s, p.port_c, p.port_s);
    // Writing to a String cannot fail.
    let _ = match style {
        HeaderStyle::Standard => write!(
            s,
            ";prot=esp;mod=trans;spi-c={sc};spi-s={ss};port-c={pc};port-s={ps};alg={alg};ealg={ealg}"
        ),
        HeaderStyle::Qualcomm => write!(
            s,
            "; alg={alg}; ealg={ealg}; spi-c={sc}; spi-s={ss}; port-c={pc}; port-s={ps}"
        ),
        HeaderStyle::Huawei => write!(
            s,
            ";alg={alg};prot=esp;mod=trans;ealg={ealg};spi-c={sc};spi-s={ss};port-c={pc};port-s={ps}"
        ),
        HeaderStyle::Alphabetical => write!(
            s,
            ";alg={alg};ealg={ealg};mod=trans;port-c={pc};port-s={ps};prot=esp;spi-c={sc};spi-s={ss}"
        ),
    };
    s
}

/// The whole `Security-Client` value: one offer per pair, in the given order.
pub fn security_client(style: HeaderStyle, pairs: &[AlgPair], p: &UeSecParams) -> String {
    pairs
        .iter()
        .map(|&pair| format_offer(style, pair, p))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Parses a comma-separated list of `alg/ealg` pairs (`hmac-sha-1-96/aes-cbc,…`).
pub fn parse_pairs(s: &str) -> Result<Vec<AlgPair>, String> {
    let pairs: Result<Vec<AlgPair>, String> = s
        .split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(|x| x.parse::<AlgPair>().map_err(|e| format!("{e} in `{x}`")))
        .collect();
    let pairs = pairs?;
    if pairs.is_empty() {
        return Err("no alg/ealg pair given".into());
    }
    Ok(pairs)
}

/// What a handset of this kind offers by default.
pub fn default_pairs() -> Vec<AlgPair> {
    use EncryptionAlg::*;
    use IntegrityAlg::*;
    vec![
        AlgPair::new(HmacSha1_96, AesCbc),
        AlgPair::new(HmacSha1_96, DesEde3Cbc),
        AlgPair::new(HmacSha1_96, Null),
        AlgPair::new(HmacMd5_96, AesCbc),
        AlgPair::new(HmacMd5_96, DesEde3Cbc),
        AlgPair::new(HmacMd5_96, Null),
    ]
}

/// What is wrong with the P-CSCF's `Security-Server`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServerError {
    /// Could not be parsed.
    #[error("Security-Server cannot be parsed: {0}")]
    Parse(String),
    /// No `ipsec-3gpp` mechanism in it.
    #[error("Security-Server has no ipsec-3gpp offer")]
    NoIpsec,
    /// The chosen pair is not one the UE offered (RFC 3329 §2.3.1 downgrade).
    #[error("Security-Server chose {0}, which this UE did not offer")]
    NotOffered(AlgPair),
}

/// Reads the P-CSCF's choice from `Security-Server` (the highest-`q` ipsec-3gpp
/// offer, RFC 3329 §2.3.1) and checks the pair was offered.
pub fn read_security_server(value: &str, offered: &[AlgPair]) -> Result<IpsecOffer, ServerError> {
    let mechs = parse_security_header(value).map_err(|e| ServerError::Parse(e.to_string()))?;
    let best = mechs
        .iter()
        .filter_map(|m| m.as_ipsec())
        .max_by_key(|o| o.q.map(|q| q.thousandths()).unwrap_or(0))
        .cloned()
        .ok_or(ServerError::NoIpsec)?;
    if !offered.contains(&best.pair()) {
        return Err(ServerError::NotOffered(best.pair()));
    }
    Ok(best)
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: UeSecParams = UeSecParams {
        spi_c: 3_000_000_001,
        spi_s: 4_294_967_295,
        port_c: 31800,
        port_s: 31801,
    };

    #[test]
    fn every_style_parses_back_to_the_same_offer() {
        for style in [
            HeaderStyle::Standard,
            HeaderStyle::Qualcomm,
            HeaderStyle::Huawei,
            HeaderStyle::Alphabetical,
        ] {
            let v = security_client(style, &default_pairs(), &P);
            let parsed = parse_security_header(&v).unwrap();
            assert_eq!(parsed.len(), 6, "{style:?}: {v}");
            for (m, pair) in parsed.iter().zip(default_pairs()) {
                let o = m.as_ipsec().unwrap();
                assert_eq!(o.pair(), pair);
                assert_eq!(
                    (o.spi_c, o.spi_s, o.port_c, o.port_s),
                    (P.spi_c, P.spi_s, P.port_c, P.port_s)
                );
            }
        }
    }

    #[test]
    fn styles_look_like_the_handsets() {
        let q = format_offer(HeaderStyle::Qualcomm, default_pairs()[0], &P);
        assert!(
            q.starts_with("ipsec-3gpp; alg=hmac-sha-1-96; ealg=aes-cbc; "),
            "{q}"
        );
        assert!(!q.contains("prot=") && !q.contains("mod="), "{q}");
        let a = format_offer(HeaderStyle::Alphabetical, default_pairs()[2], &P);
        assert_eq!(
            a,
            "ipsec-3gpp;alg=hmac-sha-1-96;ealg=null;mod=trans;port-c=31800;port-s=31801;prot=esp;spi-c=3000000001;spi-s=4294967295"
        );
    }

    #[test]
    fn security_server_choice_is_checked() {
        let offered = vec![default_pairs()[0]];
        let ss = "ipsec-3gpp;q=0.1;prot=esp;mod=trans;spi-c=10000;spi-s=10001;port-c=5100;port-s=6100;alg=hmac-sha-1-96;ealg=aes-cbc";
        let o = read_security_server(ss, &offered).unwrap();
        assert_eq!(
            (o.port_c, o.port_s, o.spi_c, o.spi_s),
            (5100, 6100, 10000, 10001)
        );
        let ss_md5 = ss.replace("hmac-sha-1-96", "hmac-md5-96");
        assert!(matches!(
            read_security_server(&ss_md5, &offered),
            Err(ServerError::NotOffered(_))
        ));
        assert!(matches!(
            read_security_server("digest;d-alg=md5", &offered),
            Err(ServerError::NoIpsec)
        ));
    }

    #[test]
    fn pairs_parse() {
        assert_eq!(
            parse_pairs("hmac-md5-96/null, hmac-sha-1-96/aes-cbc")
                .unwrap()
                .len(),
            2
        );
        assert!(parse_pairs("hmac-md5-96").is_err());
        assert!(parse_pairs("").is_err());
    }
}
