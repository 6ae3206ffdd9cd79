//! Grouped Cx AVPs as Rust types (TS 29.229 §6.3).

use bytes::Bytes;
use ims_diameter::codec::{Avp, AvpSet, DecodeError};

use super::common::require_enum;
use crate::dictionary::{self as cx, ReasonCode, SipAuthScheme};

/// Server-Capabilities (TS 29.229 §6.3.4): capabilities the I-CSCF uses to pick an
/// S-CSCF (TS 29.228 §6.7), plus optional S-CSCF names.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServerCapabilities {
    /// Mandatory-Capability values.
    pub mandatory: Vec<u32>,
    /// Optional-Capability values.
    pub optional: Vec<u32>,
    /// Server-Name values (SIP URIs of S-CSCFs).
    pub server_names: Vec<String>,
}

impl ServerCapabilities {
    /// The grouped AVP.
    pub fn to_avp(&self) -> Avp {
        let mut m = Vec::with_capacity(
            self.mandatory.len() + self.optional.len() + self.server_names.len(),
        );
        m.extend(
            self.mandatory
                .iter()
                .map(|v| Avp::unsigned32(&cx::MANDATORY_CAPABILITY, *v)),
        );
        m.extend(
            self.optional
                .iter()
                .map(|v| Avp::unsigned32(&cx::OPTIONAL_CAPABILITY, *v)),
        );
        m.extend(
            self.server_names
                .iter()
                .map(|s| Avp::utf8(&cx::SERVER_NAME, s)),
        );
        Avp::grouped(&cx::SERVER_CAPABILITIES, &m)
    }
    /// From the grouped AVP's members.
    pub fn from_avps(a: &[Avp]) -> Result<Self, DecodeError> {
        Ok(ServerCapabilities {
            mandatory: a.all_u32(&cx::MANDATORY_CAPABILITY)?,
            optional: a.all_u32(&cx::OPTIONAL_CAPABILITY)?,
            server_names: a.all_utf8(&cx::SERVER_NAME)?,
        })
    }
}

/// SIP-Digest-Authenticate (TS 29.229 §6.3.36) with the RFC 4590 members.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct SipDigestAuthenticate {
    /// Digest-Realm.
    pub realm: String,
    /// Digest-Algorithm (absent means MD5).
    pub algorithm: Option<String>,
    /// Digest-QoP, e.g. "auth".
    pub qop: Option<String>,
    /// Digest-HA1, hex of MD5(username:realm:password). Secret: not in `Debug`.
    pub ha1: String,
}

impl std::fmt::Debug for SipDigestAuthenticate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SipDigestAuthenticate")
            .field("realm", &self.realm)
            .field("algorithm", &self.algorithm)
            .field("qop", &self.qop)
            .field("ha1", &"<redacted>")
            .finish()
    }
}

impl SipDigestAuthenticate {
    /// The grouped AVP.
    pub fn to_avp(&self) -> Avp {
        let mut m = vec![Avp::utf8(&cx::DIGEST_REALM, &self.realm)];
        if let Some(a) = &self.algorithm {
            m.push(Avp::utf8(&cx::DIGEST_ALGORITHM, a));
        }
        if let Some(q) = &self.qop {
            m.push(Avp::utf8(&cx::DIGEST_QOP, q));
        }
        m.push(Avp::utf8(&cx::DIGEST_HA1, &self.ha1));
        Avp::grouped(&cx::SIP_DIGEST_AUTHENTICATE, &m)
    }
    /// From the grouped AVP's members.
    pub fn from_avps(a: &[Avp]) -> Result<Self, DecodeError> {
        Ok(SipDigestAuthenticate {
            realm: a.require_utf8(&cx::DIGEST_REALM)?,
            algorithm: a.get_utf8(&cx::DIGEST_ALGORITHM)?,
            qop: a.get_utf8(&cx::DIGEST_QOP)?,
            ha1: a.require_utf8(&cx::DIGEST_HA1)?,
        })
    }
}

/// SIP-Auth-Data-Item (TS 29.229 §6.3.13).
///
/// In a MAR: the scheme, and for AKA re-synchronisation `authorization` =
/// RAND‖AUTS. In a MAA (AKA): `authenticate` = RAND‖AUTN, `authorization` = XRES,
/// `confidentiality_key` = CK, `integrity_key` = IK; (SIP Digest): `digest`.
/// Secrets (XRES, CK, IK, HA1) are not printed by `Debug`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct SipAuthDataItem {
    /// SIP-Item-Number.
    pub item_number: Option<u32>,
    /// SIP-Authentication-Scheme.
    pub scheme: Option<SipAuthScheme>,
    /// SIP-Authenticate.
    pub authenticate: Option<Bytes>,
    /// SIP-Authorization.
    pub authorization: Option<Bytes>,
    /// SIP-Authentication-Context.
    pub authentication_context: Option<Bytes>,
    /// Confidentiality-Key (CK).
    pub confidentiality_key: Option<Bytes>,
    /// Integrity-Key (IK).
    pub integrity_key: Option<Bytes>,
    /// SIP-Digest-Authenticate.
    pub digest: Option<SipDigestAuthenticate>,
}

impl std::fmt::Debug for SipAuthDataItem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let present = |b: &Option<Bytes>| b.as_ref().map(|b| format!("<{} bytes>", b.len()));
        f.debug_struct("SipAuthDataItem")
            .field("item_number", &self.item_number)
            .field("scheme", &self.scheme)
            .field("authenticate", &self.authenticate)
            .field("authorization", &present(&self.authorization))
            .field("authentication_context", &self.authentication_context)
            .field("confidentiality_key", &present(&self.confidentiality_key))
            .field("integrity_key", &present(&self.integrity_key))
            .field("digest", &self.digest)
            .finish()
    }
}

impl SipAuthDataItem {
    /// RAND (first 16 bytes of SIP-Authorization) and AUTS (next 14) of a resync
    /// MAR (TS 29.228 §6.3.3, TS 33.203 §6.3.5), if present and long enough.
    pub fn resync_rand_auts(&self) -> Option<(&[u8], &[u8])> {
        let a = self.authorization.as_ref()?;
        (a.len() >= 30).then(|| (&a[..16], &a[16..30]))
    }

    /// The grouped AVP.
    pub fn to_avp(&self) -> Avp {
        let mut m = Vec::with_capacity(8);
        if let Some(n) = self.item_number {
            m.push(Avp::unsigned32(&cx::SIP_ITEM_NUMBER, n));
        }
        if let Some(s) = &self.scheme {
            m.push(Avp::utf8(&cx::SIP_AUTHENTICATION_SCHEME, s.as_str()));
        }
        let octets = [
            (&cx::SIP_AUTHENTICATE, &self.authenticate),
            (&cx::SIP_AUTHORIZATION, &self.authorization),
            (
                &cx::SIP_AUTHENTICATION_CONTEXT,
                &self.authentication_context,
            ),
            (&cx::CONFIDENTIALITY_KEY, &self.confidentiality_key),
            (&cx::INTEGRITY_KEY, &self.integrity_key),
        ];
        for (def, v) in octets {
            if let Some(b) = v {
                m.push(Avp::octets(def, b.clone()));
            }
        }
        if let Some(d) = &self.digest {
            m.push(d.to_avp());
        }
        Avp::grouped(&cx::SIP_AUTH_DATA_ITEM, &m)
    }

    /// From the grouped AVP's members.
    pub fn from_avps(a: &[Avp]) -> Result<Self, DecodeError> {
        Ok(SipAuthDataItem {
            item_number: a.get_u32(&cx::SIP_ITEM_NUMBER)?,
            scheme: a
                .get_utf8(&cx::SIP_AUTHENTICATION_SCHEME)?
                .map(|s| SipAuthScheme::parse(&s)),
            authenticate: a.get_octets(&cx::SIP_AUTHENTICATE)?,
            authorization: a.get_octets(&cx::SIP_AUTHORIZATION)?,
            authentication_context: a.get_octets(&cx::SIP_AUTHENTICATION_CONTEXT)?,
            confidentiality_key: a.get_octets(&cx::CONFIDENTIALITY_KEY)?,
            integrity_key: a.get_octets(&cx::INTEGRITY_KEY)?,
            digest: a
                .get_grouped(&cx::SIP_DIGEST_AUTHENTICATE)?
                .map(|g| SipDigestAuthenticate::from_avps(&g))
                .transpose()?,
        })
    }
}

/// Deregistration-Reason (TS 29.229 §6.3.16).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeregistrationReason {
    /// Reason-Code.
    pub reason_code: ReasonCode,
    /// Reason-Info, text for the user.
    pub reason_info: Option<String>,
}

impl DeregistrationReason {
    /// The grouped AVP.
    pub fn to_avp(&self) -> Avp {
        let mut m = vec![Avp::integer32(&cx::REASON_CODE, self.reason_code.code())];
        if let Some(i) = &self.reason_info {
            m.push(Avp::utf8(&cx::REASON_INFO, i));
        }
        Avp::grouped(&cx::DEREGISTRATION_REASON, &m)
    }
    /// From the grouped AVP's members.
    pub fn from_avps(a: &[Avp]) -> Result<Self, DecodeError> {
        Ok(DeregistrationReason {
            reason_code: require_enum(a, &cx::REASON_CODE)?,
            reason_info: a.get_utf8(&cx::REASON_INFO)?,
        })
    }
}

/// Charging-Information (TS 29.229 §6.3.19): charging function addresses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChargingInformation {
    /// Primary-Event-Charging-Function-Name.
    pub primary_event_charging_function_name: Option<String>,
    /// Secondary-Event-Charging-Function-Name.
    pub secondary_event_charging_function_name: Option<String>,
    /// Primary-Charging-Collection-Function-Name.
    pub primary_charging_collection_function_name: Option<String>,
    /// Secondary-Charging-Collection-Function-Name.
    pub secondary_charging_collection_function_name: Option<String>,
}

impl ChargingInformation {
    fn fields(&self) -> [(&'static ims_diameter::AvpDef, &Option<String>); 4] {
        [
            (
                &cx::PRIMARY_EVENT_CHARGING_FUNCTION_NAME,
                &self.primary_event_charging_function_name,
            ),
            (
                &cx::SECONDARY_EVENT_CHARGING_FUNCTION_NAME,
                &self.secondary_event_charging_function_name,
            ),
            (
                &cx::PRIMARY_CHARGING_COLLECTION_FUNCTION_NAME,
                &self.primary_charging_collection_function_name,
            ),
            (
                &cx::SECONDARY_CHARGING_COLLECTION_FUNCTION_NAME,
                &self.secondary_charging_collection_function_name,
            ),
        ]
    }
    /// The grouped AVP.
    pub fn to_avp(&self) -> Avp {
        let m: Vec<Avp> = self
            .fields()
            .iter()
            .filter_map(|(d, v)| v.as_ref().map(|s| Avp::utf8(d, s)))
            .collect();
        Avp::grouped(&cx::CHARGING_INFORMATION, &m)
    }
    /// From the grouped AVP's members.
    pub fn from_avps(a: &[Avp]) -> Result<Self, DecodeError> {
        Ok(ChargingInformation {
            primary_event_charging_function_name: a
                .get_utf8(&cx::PRIMARY_EVENT_CHARGING_FUNCTION_NAME)?,
            secondary_event_charging_function_name: a
                .get_utf8(&cx::SECONDARY_EVENT_CHARGING_FUNCTION_NAME)?,
            primary_charging_collection_function_name: a
                .get_utf8(&cx::PRIMARY_CHARGING_COLLECTION_FUNCTION_NAME)?,
            secondary_charging_collection_function_name: a
                .get_utf8(&cx::SECONDARY_CHARGING_COLLECTION_FUNCTION_NAME)?,
        })
    }
}
