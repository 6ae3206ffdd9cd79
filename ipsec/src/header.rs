//! `Security-Client`, `Security-Server` and `Security-Verify` header values
//! (RFC 3329 §2.2, with the `ipsec-3gpp` mechanism parameters of TS 33.203 §7.2 and
//! Annex H).
//!
//! A header value is a comma-separated list of offers; each offer is a mechanism name
//! followed by `;`-separated parameters, in any order, with optional whitespace around
//! `;`, `=` and `,` (real handsets differ: see `../shared/reference/FIELD-LESSONS.md`).
//! `ipsec-3gpp` offers are typed ([`IpsecOffer`]); other mechanisms (`digest`, `tls`, …)
//! are kept as [`OtherMechanism`] so they can be forwarded or ignored. Unknown
//! parameters of an `ipsec-3gpp` offer are kept in order and printed back.
//!
//! Defaults (TS 33.203 §7.2): `prot` = `esp`, `mod` = `trans`, `ealg` = `null`.

use std::fmt;

use crate::alg::{AlgPair, EncryptionAlg, IntegrityAlg};

/// The mechanism name of 3GPP IMS access security.
pub const IPSEC_3GPP: &str = "ipsec-3gpp";

/// Why a header value or one of its offers could not be read. Every variant names
/// the parameter concerned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// The value holds no offer at all.
    #[error("empty security header")]
    Empty,
    /// An offer has no mechanism name (e.g. `;alg=…`).
    #[error("offer {offer}: missing mechanism name")]
    MissingMechanism {
        /// 1-based offer index.
        offer: usize,
    },
    /// A mandatory `ipsec-3gpp` parameter is absent.
    #[error("offer {offer}: missing parameter `{param}`")]
    MissingParam {
        /// 1-based offer index.
        offer: usize,
        /// Parameter name.
        param: &'static str,
    },
    /// A parameter has a value this implementation cannot accept.
    #[error("offer {offer}: parameter `{param}` has invalid value `{value}`: {reason}")]
    InvalidValue {
        /// 1-based offer index.
        offer: usize,
        /// Parameter name.
        param: String,
        /// The value as received.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A parameter appears twice in one offer.
    #[error("offer {offer}: parameter `{param}` given twice")]
    Duplicate {
        /// 1-based offer index.
        offer: usize,
        /// Parameter name.
        param: String,
    },
    /// A quoted string is not closed.
    #[error("unterminated quoted string")]
    UnterminatedQuote,
}

/// Protocol of the SAs (`prot=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Prot {
    /// `esp` (the only one IMS allows; the default).
    Esp,
    /// `ah` (RFC 3329 allows it; TS 33.203 does not use it).
    Ah,
}

/// Mode of the SAs (`mod=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// `trans` (the only one IMS allows; the default).
    Trans,
    /// `tun`.
    Tun,
    /// `UDP-enc-tun` (TS 33.203 Annex M, NAT traversal).
    UdpEncTun,
}

impl Prot {
    fn as_str(self) -> &'static str {
        match self {
            Prot::Esp => "esp",
            Prot::Ah => "ah",
        }
    }
}

impl Mode {
    fn as_str(self) -> &'static str {
        match self {
            Mode::Trans => "trans",
            Mode::Tun => "tun",
            Mode::UdpEncTun => "UDP-enc-tun",
        }
    }
}

/// A `q` value (RFC 3261 qvalue, 0 … 1 with up to three decimals), kept in thousandths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QValue(u16);

impl QValue {
    /// From thousandths (0 ..= 1000); larger values are clamped to 1000.
    pub fn from_thousandths(t: u16) -> Self {
        QValue(t.min(1000))
    }

    /// In thousandths.
    pub fn thousandths(self) -> u16 {
        self.0
    }

    fn parse(s: &str) -> Option<QValue> {
        let (int, frac) = match s.split_once('.') {
            Some((i, f)) => (i, f),
            None => (s, ""),
        };
        if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let mut t: u16 = match int {
            "0" => 0,
            "1" => 1000,
            _ => return None,
        };
        let mut scale = 100;
        for b in frac.bytes() {
            t += u16::from(b - b'0') * scale;
            scale /= 10;
        }
        (t <= 1000).then_some(QValue(t))
    }
}

impl fmt::Display for QValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 >= 1000 {
            return f.write_str("1");
        }
        let mut frac = format!("{:03}", self.0);
        while frac.ends_with('0') {
            frac.pop();
        }
        if frac.is_empty() {
            f.write_str("0")
        } else {
            write!(f, "0.{frac}")
        }
    }
}

/// One `ipsec-3gpp` offer (TS 33.203 §7.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpsecOffer {
    /// `q=` preference, if given.
    pub q: Option<QValue>,
    /// `alg=` (mandatory).
    pub alg: IntegrityAlg,
    /// `ealg=`; `null` when absent.
    pub ealg: EncryptionAlg,
    /// `spi-c=`: SPI of the inbound SA at the sender's protected client port.
    pub spi_c: u32,
    /// `spi-s=`: SPI of the inbound SA at the sender's protected server port.
    pub spi_s: u32,
    /// `port-c=`: the sender's protected client port.
    pub port_c: u16,
    /// `port-s=`: the sender's protected server port.
    pub port_s: u16,
    /// `prot=`; `esp` when absent.
    pub prot: Prot,
    /// `mod=`; `trans` when absent.
    pub mode: Mode,
    /// Parameters this implementation does not know, in received order (name, value).
    pub other_params: Vec<(String, Option<String>)>,
}

impl IpsecOffer {
    /// The (alg, ealg) pair of this offer.
    pub fn pair(&self) -> AlgPair {
        AlgPair::new(self.alg, self.ealg)
    }

    /// An offer with the defaults `prot=esp`, `mod=trans`, no `q`, no extra parameters.
    pub fn new(pair: AlgPair, spi_c: u32, spi_s: u32, port_c: u16, port_s: u16) -> Self {
        IpsecOffer {
            q: None,
            alg: pair.alg,
            ealg: pair.ealg,
            spi_c,
            spi_s,
            port_c,
            port_s,
            prot: Prot::Esp,
            mode: Mode::Trans,
            other_params: Vec::new(),
        }
    }
}

/// A mechanism other than `ipsec-3gpp` (e.g. `digest`, `tls`), kept as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherMechanism {
    /// Mechanism name as received.
    pub name: String,
    /// Parameters in received order (name, value).
    pub params: Vec<(String, Option<String>)>,
}

/// One offer of a security header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecMechanism {
    /// `ipsec-3gpp`.
    Ipsec3gpp(IpsecOffer),
    /// Anything else.
    Other(OtherMechanism),
}

impl SecMechanism {
    /// The `ipsec-3gpp` offer, if this is one.
    pub fn as_ipsec(&self) -> Option<&IpsecOffer> {
        match self {
            SecMechanism::Ipsec3gpp(o) => Some(o),
            SecMechanism::Other(_) => None,
        }
    }
}

/// Splits `s` at `sep` outside double quotes.
fn split_unquoted(s: &str, sep: u8) -> Result<Vec<&str>, HeaderError> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, b) in s.bytes().enumerate() {
        if in_quotes {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_quotes = false;
            }
        } else if b == b'"' {
            in_quotes = true;
        } else if b == sep {
            parts.push(&s[start..i]);
            start = i + 1;
        }
    }
    if in_quotes {
        return Err(HeaderError::UnterminatedQuote);
    }
    parts.push(&s[start..]);
    Ok(parts)
}

/// Parses a whole header value, failing on the first bad offer.
pub fn parse_security_header(value: &str) -> Result<Vec<SecMechanism>, HeaderError> {
    parse_offers(value)?.into_iter().collect()
}

/// Parses a header value offer by offer, so one bad offer does not hide the others
/// (a P-CSCF can still choose among the good ones). Fails only when the value as a
/// whole cannot be split (empty, unterminated quote).
pub fn parse_offers(value: &str) -> Result<Vec<Result<SecMechanism, HeaderError>>, HeaderError> {
    let offers: Vec<&str> = split_unquoted(value, b',')?
        .into_iter()
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .collect();
    if offers.is_empty() {
        return Err(HeaderError::Empty);
    }
    Ok(offers
        .iter()
        .enumerate()
        .map(|(i, o)| parse_one(i + 1, o))
        .collect())
}

fn parse_one(offer: usize, text: &str) -> Result<SecMechanism, HeaderError> {
    let mut parts = split_unquoted(text, b';')?.into_iter().map(str::trim);
    let name = parts.next().unwrap_or_default();
    if name.is_empty() {
        return Err(HeaderError::MissingMechanism { offer });
    }
    let mut params: Vec<(String, Option<String>)> = Vec::new();
    for p in parts {
        if p.is_empty() {
            continue; // tolerate `;;` and a trailing `;`
        }
        let (n, v) = match p.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim().to_owned())),
            None => (p, None),
        };
        if params.iter().any(|(e, _)| e.eq_ignore_ascii_case(n)) {
            return Err(HeaderError::Duplicate {
                offer,
                param: n.to_owned(),
            });
        }
        params.push((n.to_owned(), v));
    }
    if !name.eq_ignore_ascii_case(IPSEC_3GPP) {
        return Ok(SecMechanism::Other(OtherMechanism {
            name: name.to_owned(),
            params,
        }));
    }
    ipsec_offer(offer, params).map(SecMechanism::Ipsec3gpp)
}

fn ipsec_offer(
    offer: usize,
    params: Vec<(String, Option<String>)>,
) -> Result<IpsecOffer, HeaderError> {
    let invalid = |param: &str, value: &str, reason: &'static str| HeaderError::InvalidValue {
        offer,
        param: param.to_owned(),
        value: value.to_owned(),
        reason,
    };
    let mut q = None;
    let mut alg = None;
    let mut ealg = None;
    let (mut spi_c, mut spi_s, mut port_c, mut port_s) = (None, None, None, None);
    let mut prot = None;
    let mut mode = None;
    let mut other_params = Vec::new();

    for (name, value) in params {
        let lname = name.to_ascii_lowercase();
        let known = matches!(
            lname.as_str(),
            "q" | "alg" | "ealg" | "spi-c" | "spi-s" | "port-c" | "port-s" | "prot" | "mod"
        );
        if !known {
            other_params.push((name, value));
            continue;
        }
        let v = match value.as_deref() {
            Some(v) if !v.is_empty() => v,
            _ => return Err(invalid(&lname, "", "a value is required")),
        };
        match lname.as_str() {
            "q" => q = Some(QValue::parse(v).ok_or_else(|| invalid("q", v, "not a qvalue 0..1"))?),
            "alg" => {
                alg = Some(
                    v.parse::<IntegrityAlg>()
                        .map_err(|_| invalid("alg", v, "expected hmac-md5-96 or hmac-sha-1-96"))?,
                )
            }
            "ealg" => {
                ealg =
                    Some(v.parse::<EncryptionAlg>().map_err(|_| {
                        invalid("ealg", v, "expected null, aes-cbc or des-ede3-cbc")
                    })?)
            }
            "spi-c" => {
                spi_c = Some(
                    v.parse::<u32>()
                        .map_err(|_| invalid("spi-c", v, "not a 32-bit unsigned number"))?,
                )
            }
            "spi-s" => {
                spi_s = Some(
                    v.parse::<u32>()
                        .map_err(|_| invalid("spi-s", v, "not a 32-bit unsigned number"))?,
                )
            }
            "port-c" => {
                port_c = Some(
                    v.parse::<u16>()
                        .map_err(|_| invalid("port-c", v, "not a port number 0..65535"))?,
                )
            }
            "port-s" => {
                port_s = Some(
                    v.parse::<u16>()
                        .map_err(|_| invalid("port-s", v, "not a port number 0..65535"))?,
                )
            }
            "prot" => {
                prot = Some(match v.to_ascii_lowercase().as_str() {
                    "esp" => Prot::Esp,
                    "ah" => Prot::Ah,
                    _ => return Err(invalid("prot", v, "expected esp or ah")),
                })
            }
            _ => {
                mode = Some(match v.to_ascii_lowercase().as_str() {
                    "trans" => Mode::Trans,
                    "tun" => Mode::Tun,
                    "udp-enc-tun" => Mode::UdpEncTun,
                    _ => return Err(invalid("mod", v, "expected trans, tun or UDP-enc-tun")),
                })
            }
        }
    }
    let missing = |param| HeaderError::MissingParam { offer, param };
    Ok(IpsecOffer {
        q,
        alg: alg.ok_or(missing("alg"))?,
        ealg: ealg.unwrap_or(EncryptionAlg::Null),
        spi_c: spi_c.ok_or(missing("spi-c"))?,
        spi_s: spi_s.ok_or(missing("spi-s"))?,
        port_c: port_c.ok_or(missing("port-c"))?,
        port_s: port_s.ok_or(missing("port-s"))?,
        prot: prot.unwrap_or(Prot::Esp),
        mode: mode.unwrap_or(Mode::Trans),
        other_params,
    })
}

fn write_params(f: &mut fmt::Formatter<'_>, params: &[(String, Option<String>)]) -> fmt::Result {
    for (n, v) in params {
        match v {
            Some(v) => write!(f, ";{n}={v}")?,
            None => write!(f, ";{n}")?,
        }
    }
    Ok(())
}

/// Prints `ipsec-3gpp;q=0.1;prot=esp;mod=trans;spi-c=…;spi-s=…;port-c=…;port-s=…;alg=…;ealg=…`
/// (the order Kamailio and most handsets use), then any unknown parameters.
impl fmt::Display for IpsecOffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(IPSEC_3GPP)?;
        if let Some(q) = self.q {
            write!(f, ";q={q}")?;
        }
        write!(
            f,
            ";prot={};mod={};spi-c={};spi-s={};port-c={};port-s={};alg={};ealg={}",
            self.prot.as_str(),
            self.mode.as_str(),
            self.spi_c,
            self.spi_s,
            self.port_c,
            self.port_s,
            self.alg,
            self.ealg
        )?;
        write_params(f, &self.other_params)
    }
}

impl fmt::Display for SecMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecMechanism::Ipsec3gpp(o) => o.fmt(f),
            SecMechanism::Other(o) => {
                f.write_str(&o.name)?;
                write_params(f, &o.params)
            }
        }
    }
}

/// Prints a header value: the offers joined by `, `.
pub fn format_security_header(offers: &[SecMechanism]) -> String {
    offers
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use EncryptionAlg::*;
    use IntegrityAlg::*;

    fn ipsec(v: &str) -> Vec<IpsecOffer> {
        parse_security_header(v)
            .unwrap()
            .into_iter()
            .map(|m| m.as_ipsec().cloned().unwrap())
            .collect()
    }

    /// Samsung, docker_open5gs PR #458: three offers, md5 with each ealg.
    #[test]
    fn samsung_three_offers() {
        let v = "ipsec-3gpp;prot=esp;mod=trans;spi-c=74618;spi-s=74619;port-c=8001;port-s=8000;alg=hmac-md5-96;ealg=des-ede3-cbc, ipsec-3gpp;prot=esp;mod=trans;spi-c=74618;spi-s=74619;port-c=8001;port-s=8000;alg=hmac-md5-96;ealg=aes-cbc, ipsec-3gpp;prot=esp;mod=trans;spi-c=74618;spi-s=74619;port-c=8001;port-s=8000;alg=hmac-md5-96;ealg=null";
        let o = ipsec(v);
        assert_eq!(o.len(), 3);
        assert_eq!(
            o.iter().map(|o| o.ealg).collect::<Vec<_>>(),
            vec![DesEde3Cbc, AesCbc, Null]
        );
        assert!(o.iter().all(|o| o.alg == HmacMd5_96));
        assert_eq!(
            (o[0].spi_c, o[0].spi_s, o[0].port_c, o[0].port_s),
            (74618, 74619, 8001, 8000)
        );
        // Printing gives back exactly the input's parameter set (our order is Kamailio's).
        let printed = format_security_header(&parse_security_header(v).unwrap());
        assert_eq!(
            parse_security_header(&printed).unwrap(),
            parse_security_header(v).unwrap()
        );
    }

    /// Samsung-style integrity-only pair (FIELD-LESSONS.md): md5 then sha-1, no ealg,
    /// port-c greater than port-s.
    #[test]
    fn samsung_integrity_only_ealg_absent_is_null() {
        let v = "ipsec-3gpp;alg=hmac-md5-96;spi-c=1139301654;spi-s=1139301655;port-c=65530;port-s=65529;prot=esp;mod=trans, ipsec-3gpp;alg=hmac-sha-1-96;spi-c=1139301654;spi-s=1139301655;port-c=65530;port-s=65529;prot=esp;mod=trans";
        let o = ipsec(v);
        assert_eq!(o[0].pair(), AlgPair::new(HmacMd5_96, Null));
        assert_eq!(o[1].pair(), AlgPair::new(HmacSha1_96, Null));
        assert!(o[0].port_c > o[0].port_s);
    }

    /// open5gs#564 / Huawei-style order `alg;prot;mod;ealg;spi…` with large SPIs.
    #[test]
    fn huawei_order_and_large_spis() {
        let v = "ipsec-3gpp;alg=hmac-sha-1-96;prot=esp;mod=trans;ealg=des-ede3-cbc;spi-c=46903775;spi-s=56984977;port-c=31422;port-s=31892,ipsec-3gpp;alg=hmac-sha-1-96;prot=esp;mod=trans;ealg=aes-cbc;spi-c=46903775;spi-s=56984977;port-c=31422;port-s=31892,ipsec-3gpp;alg=hmac-sha-1-96;prot=esp;mod=trans;ealg=null;spi-c=46903775;spi-s=56984977;port-c=31422;port-s=31892";
        let o = ipsec(v);
        assert_eq!(o.len(), 3);
        assert_eq!(o[1].pair(), AlgPair::new(HmacSha1_96, AesCbc));
        assert_eq!(o[2].spi_s, 56984977);
    }

    /// Qualcomm-style: a space after every `;`, no prot/mod, six offers, md5 first.
    #[test]
    fn qualcomm_spaces_no_prot_mod() {
        let mut offers = Vec::new();
        for a in ["hmac-md5-96", "hmac-sha-1-96"] {
            for e in ["des-ede3-cbc", "aes-cbc", "null"] {
                offers.push(format!(
                    "ipsec-3gpp; alg={a}; ealg={e}; spi-c=3929944542; spi-s=4294967295; port-c=50000; port-s=50001"
                ));
            }
        }
        let o = ipsec(&offers.join(", "));
        assert_eq!(o.len(), 6);
        assert_eq!(o[0].pair(), AlgPair::new(HmacMd5_96, DesEde3Cbc));
        assert_eq!(o[5].pair(), AlgPair::new(HmacSha1_96, Null));
        assert!(o
            .iter()
            .all(|o| o.prot == Prot::Esp && o.mode == Mode::Trans));
        assert_eq!(o[0].spi_s, u32::MAX);
    }

    /// iPhone: one offer, parameters in alphabetical order.
    #[test]
    fn iphone_alphabetical() {
        let v = "ipsec-3gpp;alg=hmac-sha-1-96;ealg=aes-cbc;mod=trans;port-c=65300;port-s=65301;prot=esp;spi-c=201524541;spi-s=201524542";
        let o = ipsec(v);
        assert_eq!(o.len(), 1);
        assert_eq!(o[0].pair(), AlgPair::new(HmacSha1_96, AesCbc));
        assert_eq!((o[0].port_c, o[0].port_s), (65300, 65301));
    }

    #[test]
    fn spaces_around_equals_and_uppercase_names() {
        let o = ipsec("IPSEC-3GPP ; ALG = hmac-sha-1-96 ; Spi-C = 1 ; spi-s=2; port-c=3 ;port-s = 4 ; q = 0.5");
        assert_eq!(
            (o[0].spi_c, o[0].spi_s, o[0].port_c, o[0].port_s),
            (1, 2, 3, 4)
        );
        assert_eq!(o[0].q, Some(QValue::from_thousandths(500)));
    }

    #[test]
    fn kamailio_security_server_format() {
        let mut o = IpsecOffer::new(AlgPair::new(HmacSha1_96, AesCbc), 4096, 4097, 5100, 6100);
        o.q = Some(QValue::from_thousandths(100));
        assert_eq!(
            o.to_string(),
            "ipsec-3gpp;q=0.1;prot=esp;mod=trans;spi-c=4096;spi-s=4097;port-c=5100;port-s=6100;alg=hmac-sha-1-96;ealg=aes-cbc"
        );
    }

    #[test]
    fn unknown_params_and_mechanisms_are_kept() {
        let v = "digest;d-alg=md5;d-qop=auth, ipsec-3gpp;alg=hmac-md5-96;spi-c=1;spi-s=2;port-c=3;port-s=4;x-vendor=\"a;b,c\";flag";
        let m = parse_security_header(v).unwrap();
        assert!(
            matches!(&m[0], SecMechanism::Other(o) if o.name == "digest" && o.params.len() == 2)
        );
        let o = m[1].as_ipsec().unwrap();
        assert_eq!(
            o.other_params,
            vec![
                ("x-vendor".into(), Some("\"a;b,c\"".into())),
                ("flag".into(), None)
            ]
        );
        let printed = format_security_header(&m);
        assert!(printed.starts_with("digest;d-alg=md5;d-qop=auth, ipsec-3gpp;prot=esp"));
        assert!(printed.ends_with(";x-vendor=\"a;b,c\";flag"));
        assert_eq!(parse_security_header(&printed).unwrap(), m);
    }

    #[test]
    fn errors_name_the_parameter() {
        let base = "ipsec-3gpp;alg=hmac-md5-96;spi-c=1;spi-s=2;port-c=3;port-s=4";
        let e = parse_security_header(&base.replace("spi-c=1", "spi-c=4294967296")).unwrap_err();
        assert!(
            matches!(&e, HeaderError::InvalidValue { param, .. } if param == "spi-c"),
            "{e}"
        );
        assert!(e.to_string().contains("spi-c"));
        let e = parse_security_header(&base.replace("port-s=4", "port-s=70000")).unwrap_err();
        assert!(e.to_string().contains("`port-s`"), "{e}");
        let e = parse_security_header(&base.replace("alg=hmac-md5-96;", "")).unwrap_err();
        assert_eq!(
            e,
            HeaderError::MissingParam {
                offer: 1,
                param: "alg"
            }
        );
        let e = parse_security_header(&format!("{base};ealg=aes-gcm")).unwrap_err();
        assert!(e.to_string().contains("`ealg`"), "{e}");
        let e = parse_security_header(&format!("{base};prot=udp")).unwrap_err();
        assert!(e.to_string().contains("`prot`"), "{e}");
        let e = parse_security_header(&format!("{base};spi-c=9")).unwrap_err();
        assert!(matches!(e, HeaderError::Duplicate { .. }));
        let e = parse_security_header(&format!("{base};q=2")).unwrap_err();
        assert!(e.to_string().contains("`q`"));
        let e = parse_security_header(&base.replace("port-c=3", "port-c=")).unwrap_err();
        assert!(e.to_string().contains("`port-c`"));
        assert_eq!(parse_security_header(" , "), Err(HeaderError::Empty));
        assert_eq!(
            parse_security_header(";alg=x"),
            Err(HeaderError::MissingMechanism { offer: 1 })
        );
        assert_eq!(
            parse_security_header("x;a=\"b"),
            Err(HeaderError::UnterminatedQuote)
        );
    }

    #[test]
    fn one_bad_offer_does_not_hide_the_good_ones() {
        let v = "ipsec-3gpp;alg=hmac-sha-256-128;spi-c=1;spi-s=2;port-c=3;port-s=4, ipsec-3gpp;alg=hmac-sha-1-96;spi-c=1;spi-s=2;port-c=3;port-s=4";
        let r = parse_offers(v).unwrap();
        assert!(r[0].is_err());
        assert!(r[1].is_ok());
    }

    #[test]
    fn qvalue_parse_and_print() {
        for (s, t, p) in [
            ("0.1", 100, "0.1"),
            ("1", 1000, "1"),
            ("1.000", 1000, "1"),
            ("0", 0, "0"),
            ("0.125", 125, "0.125"),
            ("0.50", 500, "0.5"),
        ] {
            let q = QValue::parse(s).unwrap();
            assert_eq!(q.thousandths(), t);
            assert_eq!(q.to_string(), p);
        }
        for bad in ["1.5", "2", "0.1234", ".5", "-0", "0.x"] {
            assert!(QValue::parse(bad).is_none(), "{bad}");
        }
    }
}
