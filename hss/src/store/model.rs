//! The subscriber model and its validation (identities per 3GPP TS 23.003 §2, §13).
//!
//! A subscriber has one IMSI and one private identity (IMPI, TS 23.003 §13.3), one or
//! more public identities (IMPU, `sip:`/`sips:`/`tel:`, §13.4) grouped into implicit
//! registration sets (TS 29.228 §6.7 / TS 23.228 §4.3.3.3), AKA credentials (K and OPc,
//! remembering whether OP or OPc was provisioned), AMF and SQN, an optional SIP Digest
//! password, the assigned S-CSCF and an optional iFC XML fragment.

use std::fmt;

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::milenage::{opc_from_op, Op, Opc, K};

/// A validation failure that names the offending field (the REST API answers 422 with it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct FieldError {
    /// The field, as named in the REST API and CLI (`k`, `opc`, `impu`, …).
    pub field: &'static str,
    /// Why it was refused (never contains secret values).
    pub reason: String,
}

impl FieldError {
    pub(crate) fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}

/// A SIP Digest password (zeroized, redacted).
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct Password(String);

impl Password {
    /// Wraps a password.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The password. Callers must not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(**redacted**)")
    }
}

/// AKA credentials: K and OPc, plus OP when that is what was provisioned.
#[derive(Clone, Debug)]
pub struct AkaKeys {
    /// Subscriber key.
    pub k: K,
    /// OPc (computed from OP when OP was given).
    pub opc: Opc,
    /// OP, if OP (not OPc) was provisioned.
    pub op: Option<Op>,
}

impl AkaKeys {
    /// Keys from K and OP: OPc is computed.
    pub fn with_op(k: K, op: Op) -> Self {
        let opc = opc_from_op(&k, &op);
        Self {
            k,
            opc,
            op: Some(op),
        }
    }

    /// Keys from K and OPc.
    pub fn with_opc(k: K, opc: Opc) -> Self {
        Self { k, opc, op: None }
    }
}

/// A public user identity and the implicit registration set it belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Impu {
    /// `sip:…`, `sips:…` or `tel:…`.
    pub uri: String,
    /// Implicit registration set number; IMPUs with the same number register together.
    #[serde(default)]
    pub irs: u32,
    /// Barred identity (TS 29.228 Annex B, `BarringIndication`).
    #[serde(default)]
    pub barred: bool,
}

/// A provisioned subscriber as the store holds it.
#[derive(Clone, Debug)]
pub struct Subscriber {
    /// IMSI (digits).
    pub imsi: String,
    /// IMPI (`User-Name` in Cx).
    pub impi: String,
    /// Public identities, in provisioning order.
    pub impus: Vec<Impu>,
    /// AKA credentials, absent for password-only subscribers.
    pub aka: Option<AkaKeys>,
    /// AMF used in new vectors.
    pub amf: [u8; 2],
    /// Highest SQN reserved in the store (see [`crate::store::sqn`]).
    pub sqn: u64,
    /// SIP Digest password.
    pub password: Option<Password>,
    /// Assigned S-CSCF (Server-Name), if any.
    pub scscf_name: Option<String>,
    /// Diameter Origin-Host of the S-CSCF that did the assigning SAR.
    pub scscf_host: Option<String>,
    /// Optional iFC XML: `<InitialFilterCriteria>` elements, or a whole `<ServiceProfile>`.
    pub ifc_xml: Option<String>,
}

impl Subscriber {
    /// The IMPUs in the same implicit registration set as `impu` (including it), or
    /// `None` when `impu` is not one of this subscriber's.
    pub fn implicit_set(&self, impu: &str) -> Option<Vec<&Impu>> {
        let me = self.impus.iter().find(|i| uri_eq(&i.uri, impu))?;
        Some(self.impus.iter().filter(|i| i.irs == me.irs).collect())
    }

    /// Whether `impu` is one of this subscriber's public identities.
    pub fn has_impu(&self, impu: &str) -> bool {
        self.impus.iter().any(|i| uri_eq(&i.uri, impu))
    }
}

/// Compares two URIs for identity purposes: scheme and host case-insensitively, and
/// ignoring URI parameters after `;` (e.g. `;user=phone`).
pub fn uri_eq(a: &str, b: &str) -> bool {
    fn norm(s: &str) -> String {
        let s = s.trim().trim_start_matches('<').trim_end_matches('>');
        let s = s.split(';').next().unwrap_or(s);
        s.to_ascii_lowercase()
    }
    norm(a) == norm(b)
}

/// Input of a subscriber creation (REST body, CLI flags).
#[derive(Clone, Debug)]
pub struct NewSubscriber {
    /// IMSI.
    pub imsi: String,
    /// IMPI; default derived from the IMSI.
    pub impi: Option<String>,
    /// Public identities.
    pub impus: Vec<Impu>,
    /// AKA credentials.
    pub aka: Option<AkaKeys>,
    /// AMF, default `8000`.
    pub amf: Option<[u8; 2]>,
    /// Starting SQN (the last one consumed: the first vector carries a higher one).
    pub sqn: Option<u64>,
    /// SIP Digest password.
    pub password: Option<Password>,
    /// iFC XML.
    pub ifc_xml: Option<String>,
    /// Pre-assigned S-CSCF.
    pub scscf_name: Option<String>,
}

/// A partial update (REST PATCH; PUT fills every field).
#[derive(Clone, Debug, Default)]
pub struct SubscriberUpdate {
    /// New IMPI.
    pub impi: Option<String>,
    /// Replace the IMPUs.
    pub impus: Option<Vec<Impu>>,
    /// Replace the AKA credentials (`Some(None)` removes them).
    pub aka: Option<Option<AkaKeys>>,
    /// New AMF.
    pub amf: Option<[u8; 2]>,
    /// New SQN.
    pub sqn: Option<u64>,
    /// New password (`Some(None)` removes it).
    pub password: Option<Option<Password>>,
    /// New iFC XML (`Some(None)` removes it).
    pub ifc_xml: Option<Option<String>>,
    /// New S-CSCF assignment (`Some(None)` clears it).
    pub scscf_name: Option<Option<String>>,
}

/// Default IMPI for an IMSI (TS 23.003 §13.3), assuming a 2-digit MNC:
/// `<imsi>@ims.mnc<MNC padded to 3>.mcc<MCC>.3gppnetwork.org`.
pub fn default_impi(imsi: &str) -> String {
    let mcc = imsi.get(0..3).unwrap_or("000");
    let mnc = imsi.get(3..5).unwrap_or("00");
    format!("{imsi}@ims.mnc0{mnc}.mcc{mcc}.3gppnetwork.org")
}

/// Checks an IMSI: 6 to 15 decimal digits (TS 23.003 §2.2).
pub fn validate_imsi(imsi: &str) -> Result<(), FieldError> {
    if (6..=15).contains(&imsi.len()) && imsi.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(FieldError::new("imsi", "must be 6 to 15 decimal digits"))
    }
}

/// Checks an IMPI: a NAI `user@realm` without spaces or angle brackets.
pub fn validate_impi(impi: &str) -> Result<(), FieldError> {
    let ok = impi.len() <= 255
        && !impi.is_empty()
        && impi
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'<' && b != b'>' && b != b'"')
        && impi
            .split_once('@')
            .is_some_and(|(u, r)| !u.is_empty() && !r.is_empty());
    if ok {
        Ok(())
    } else {
        Err(FieldError::new(
            "impi",
            "must be a NAI of the form user@realm",
        ))
    }
}

/// Checks an IMPU: `sip:user@host`, `sips:…`, or `tel:` with a (global or local) number.
pub fn validate_impu(uri: &str) -> Result<(), FieldError> {
    let bad = |why: &str| Err(FieldError::new("impu", format!("{uri:?}: {why}")));
    if uri.len() > 255 || uri.is_empty() {
        return bad("length must be 1 to 255");
    }
    if !uri
        .bytes()
        .all(|b| b.is_ascii_graphic() && b != b'<' && b != b'>' && b != b'"')
    {
        return bad("contains a space, control character, quote or angle bracket");
    }
    let lower = uri.to_ascii_lowercase();
    if let Some(rest) = lower
        .strip_prefix("sip:")
        .or_else(|| lower.strip_prefix("sips:"))
    {
        let rest = rest.split(';').next().unwrap_or("");
        let host = match rest.rsplit_once('@') {
            Some((user, host)) if !user.is_empty() => host,
            Some(_) => return bad("empty user part"),
            None => rest,
        };
        let host = host.split(':').next().unwrap_or("");
        if host.is_empty()
            || !host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.[]".contains(&b))
        {
            return bad("invalid host part");
        }
        Ok(())
    } else if let Some(num) = lower.strip_prefix("tel:") {
        let num = num.split(';').next().unwrap_or("");
        let digits = num.strip_prefix('+').unwrap_or(num);
        if digits.is_empty()
            || !digits
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b"-.()*#".contains(&b))
            || !digits.bytes().any(|b| b.is_ascii_digit())
        {
            return bad("tel: needs a telephone number");
        }
        Ok(())
    } else {
        bad("must start with sip:, sips: or tel:")
    }
}

/// Parses a 128-bit key given as 32 hex digits, naming `field` on error.
pub fn parse_key_hex<T>(
    field: &'static str,
    s: &str,
    make: impl Fn(&str) -> Result<T, crate::milenage::HexError>,
) -> Result<T, FieldError> {
    make(s).map_err(|_| FieldError::new(field, "must be exactly 32 hex digits"))
}

/// Parses AMF (4 hex digits).
pub fn parse_amf(s: &str) -> Result<[u8; 2], FieldError> {
    let mut out = [0u8; 2];
    hex::decode_to_slice(s.trim(), &mut out)
        .map_err(|_| FieldError::new("amf", "must be exactly 4 hex digits"))?;
    Ok(out)
}

/// Parses SQN (1 to 12 hex digits, 48 bits).
pub fn parse_sqn(s: &str) -> Result<u64, FieldError> {
    let s = s.trim();
    if s.is_empty() || s.len() > 12 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(FieldError::new("sqn", "must be 1 to 12 hex digits"));
    }
    u64::from_str_radix(s, 16).map_err(|_| FieldError::new("sqn", "must be 1 to 12 hex digits"))
}

/// Builds AKA keys from hex K and exactly one of OP/OPc.
pub fn aka_from_hex(k: &str, op: Option<&str>, opc: Option<&str>) -> Result<AkaKeys, FieldError> {
    let k = parse_key_hex("k", k, K::from_hex)?;
    match (op, opc) {
        (Some(op), None) => Ok(AkaKeys::with_op(k, parse_key_hex("op", op, Op::from_hex)?)),
        (None, Some(opc)) => Ok(AkaKeys::with_opc(
            k,
            parse_key_hex("opc", opc, Opc::from_hex)?,
        )),
        (Some(_), Some(_)) => Err(FieldError::new("op", "give either op or opc, not both")),
        (None, None) => Err(FieldError::new(
            "opc",
            "one of op or opc is required with k",
        )),
    }
}

impl NewSubscriber {
    /// Validates every field and fills the defaults (IMPI).
    pub fn validate(mut self) -> Result<Self, FieldError> {
        validate_imsi(&self.imsi)?;
        let impi = self.impi.take().unwrap_or_else(|| default_impi(&self.imsi));
        validate_impi(&impi)?;
        self.impi = Some(impi);
        if self.impus.is_empty() {
            return Err(FieldError::new("impu", "at least one IMPU is required"));
        }
        for i in &self.impus {
            validate_impu(&i.uri)?;
        }
        check_duplicate_impus(&self.impus)?;
        if self.aka.is_none() && self.password.is_none() {
            return Err(FieldError::new(
                "k",
                "k (with op or opc) or a password is required",
            ));
        }
        if let Some(sqn) = self.sqn {
            if sqn > crate::milenage::SQN_MAX {
                return Err(FieldError::new("sqn", "must fit in 48 bits"));
            }
        }
        Ok(self)
    }
}

/// Refuses the same IMPU twice in one subscriber.
pub fn check_duplicate_impus(impus: &[Impu]) -> Result<(), FieldError> {
    for (n, a) in impus.iter().enumerate() {
        if impus[..n].iter().any(|b| uri_eq(&a.uri, &b.uri)) {
            return Err(FieldError::new("impu", format!("{:?} given twice", a.uri)));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn impi_default() {
        assert_eq!(
            default_impi("001010000000001"),
            "001010000000001@ims.mnc001.mcc001.3gppnetwork.org"
        );
    }

    #[test]
    fn impu_validation() {
        for ok in [
            "sip:alice@ims.example.org",
            "sip:+15551234@ims.mnc001.mcc001.3gppnetwork.org;user=phone",
            "tel:+15551234",
            "tel:1234;phone-context=ims.test",
            "sips:bob@[::1]:5061",
        ] {
            assert!(validate_impu(ok).is_ok(), "{ok}");
        }
        for bad in [
            "alice@ims",
            "sip:",
            "sip:@host",
            "tel:",
            "tel:abc-",
            "sip:alice@ims example",
            "<sip:a@b>",
            "http://x",
        ] {
            let e = validate_impu(bad).unwrap_err();
            assert_eq!(e.field, "impu", "{bad}");
        }
    }

    #[test]
    fn keys_validation_names_fields() {
        let k = "465b5ce8b199b49faa5f0a2ee238a6bc";
        assert_eq!(aka_from_hex("12", Some(k), None).unwrap_err().field, "k");
        assert_eq!(aka_from_hex(k, Some("xyz"), None).unwrap_err().field, "op");
        assert_eq!(aka_from_hex(k, None, Some("00")).unwrap_err().field, "opc");
        let keys = aka_from_hex(k, Some("cdc202d5123e20f62b6d676ac72cb318"), None).unwrap();
        assert_eq!(keys.opc.expose_hex(), "cd63cb71954a9f4e48a5994e37a02baf");
        assert_eq!(parse_sqn("ff9bb4d0b607").unwrap(), 0xff9bb4d0b607);
        assert!(parse_sqn("1ff9bb4d0b607").is_err());
        assert_eq!(parse_amf("8000").unwrap(), [0x80, 0]);
        assert_eq!(parse_amf("800").unwrap_err().field, "amf");
    }

    #[test]
    fn implicit_sets() {
        let s = Subscriber {
            imsi: "001010000000001".into(),
            impi: "x@y".into(),
            impus: vec![
                Impu {
                    uri: "sip:a@x".into(),
                    irs: 0,
                    barred: false,
                },
                Impu {
                    uri: "tel:+1".into(),
                    irs: 0,
                    barred: false,
                },
                Impu {
                    uri: "sip:other@x".into(),
                    irs: 1,
                    barred: false,
                },
            ],
            aka: None,
            amf: [0x80, 0],
            sqn: 0,
            password: None,
            scscf_name: None,
            scscf_host: None,
            ifc_xml: None,
        };
        let set = s.implicit_set("SIP:a@X;user=phone").unwrap();
        assert_eq!(set.len(), 2);
        assert!(s.implicit_set("sip:nobody@x").is_none());
        assert!(s.has_impu("sip:other@x"));
    }
}
