//! Wire-independent inputs and outcomes of the Cx procedures (TS 29.228 §6.1–§6.3).
//!
//! The Cx server ([`crate::cx`]) maps the typed Diameter messages of `ims-hss-client`
//! to and from these, so the logic in [`super`] is testable without sockets.

use crate::milenage::{Ck, Ik};

/// Experimental-Result codes (vendor 10415, TS 29.229 §6.2) and the base Result-Codes
/// (RFC 6733 §7.1) that the procedures can end with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CxError {
    /// 5001 DIAMETER_ERROR_USER_UNKNOWN.
    UserUnknown,
    /// 5002 DIAMETER_ERROR_IDENTITIES_DONT_MATCH.
    IdentitiesDontMatch,
    /// 5003 DIAMETER_ERROR_IDENTITY_NOT_REGISTERED.
    IdentityNotRegistered,
    /// 5006 DIAMETER_ERROR_AUTH_SCHEME_NOT_SUPPORTED.
    AuthSchemeNotSupported,
    /// 5007 DIAMETER_ERROR_IN_ASSIGNMENT_TYPE.
    InAssignmentType,
    /// Base 5003 DIAMETER_AUTHORIZATION_REJECTED (e.g. a barred identity).
    AuthorizationRejected,
    /// Base 4001 DIAMETER_AUTHENTICATION_REJECTED (AUTS whose MAC-S does not verify).
    AuthenticationRejected,
    /// Base 5012 DIAMETER_UNABLE_TO_COMPLY (store failure).
    UnableToComply,
}

impl CxError {
    /// `(vendor-specific?, code)`: `true` means Experimental-Result with vendor 10415.
    pub fn code(self) -> (bool, u32) {
        match self {
            Self::UserUnknown => (true, 5001),
            Self::IdentitiesDontMatch => (true, 5002),
            Self::IdentityNotRegistered => (true, 5003),
            Self::AuthSchemeNotSupported => (true, 5006),
            Self::InAssignmentType => (true, 5007),
            Self::AuthorizationRejected => (false, 5003),
            Self::AuthenticationRejected => (false, 4001),
            Self::UnableToComply => (false, 5012),
        }
    }
}

/// User-Authorization-Type (TS 29.229 §6.3.24).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthorizationType {
    /// 0 REGISTRATION.
    Registration,
    /// 1 DE_REGISTRATION.
    DeRegistration,
    /// 2 REGISTRATION_AND_CAPABILITIES.
    RegistrationAndCapabilities,
}

/// S-CSCF capabilities (TS 29.229 §6.3.4).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// Mandatory-Capability values.
    pub mandatory: Vec<u32>,
    /// Optional-Capability values.
    pub optional: Vec<u32>,
    /// Server-Name values inside Server-Capabilities.
    pub server_names: Vec<String>,
}

/// How the I-CSCF is told where to send the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerSelection {
    /// A Server-Name.
    Name(String),
    /// Server-Capabilities for the I-CSCF to choose with.
    Capabilities(Capabilities),
}

/// UAR input (TS 29.228 §6.1.1).
#[derive(Debug, Clone)]
pub struct UarInput {
    /// User-Name (IMPI).
    pub impi: String,
    /// Public-Identity.
    pub impu: String,
    /// User-Authorization-Type (absent = REGISTRATION).
    pub authorization_type: AuthorizationType,
}

/// UAR outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UarOutcome {
    /// Experimental-Result 2001 DIAMETER_FIRST_REGISTRATION.
    FirstRegistration(ServerSelection),
    /// Experimental-Result 2002 DIAMETER_SUBSEQUENT_REGISTRATION, with Server-Name.
    SubsequentRegistration(String),
    /// Result-Code 2001 DIAMETER_SUCCESS (de-registration or capabilities query).
    Success(ServerSelection),
}

/// SIP-Authentication-Scheme values (TS 29.229 §6.3.9, TS 33.203).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthScheme {
    /// `Digest-AKAv1-MD5`.
    AkaV1Md5,
    /// `SIP Digest` / `Digest-MD5` (HTTP Digest with MD5).
    SipDigest,
    /// `Unknown`: the HSS picks (AKA when the subscriber has K, else SIP Digest).
    Unknown,
    /// Anything else (answered with 5006).
    Other(String),
}

impl AuthScheme {
    /// Parses the SIP-Authentication-Scheme string.
    pub fn parse(s: &str) -> Self {
        match s.trim() {
            "Digest-AKAv1-MD5" => Self::AkaV1Md5,
            "SIP Digest" | "Digest-MD5" | "Digest" | "MD5" => Self::SipDigest,
            "Unknown" | "" => Self::Unknown,
            other => Self::Other(other.to_string()),
        }
    }
}

/// MAR input (TS 29.228 §6.3.1).
#[derive(Debug, Clone)]
pub struct MarInput {
    /// User-Name (IMPI).
    pub impi: String,
    /// Public-Identity.
    pub impu: String,
    /// SIP-Number-Auth-Items.
    pub number_items: u32,
    /// Requested scheme.
    pub scheme: AuthScheme,
    /// SIP-Authorization (RAND ‖ AUTS) for re-synchronisation, if present.
    pub resync: Option<Vec<u8>>,
    /// Server-Name of the requesting S-CSCF.
    pub server_name: Option<String>,
}

/// One AKA vector in an MAA (SIP-Auth-Data-Item).
#[derive(Debug, Clone)]
pub struct AkaItem {
    /// SIP-Item-Number (1-based).
    pub item_number: u32,
    /// SIP-Authenticate = RAND ‖ AUTN.
    pub sip_authenticate: [u8; 32],
    /// SIP-Authorization = XRES.
    pub sip_authorization: [u8; 8],
    /// Confidentiality-Key.
    pub ck: Ck,
    /// Integrity-Key.
    pub ik: Ik,
}

/// A SIP Digest item (SIP-Digest-Authenticate, TS 29.229 §6.3.36).
#[derive(Debug, Clone)]
pub struct DigestItem {
    /// Digest-Realm.
    pub realm: String,
    /// Digest-Algorithm (`MD5`).
    pub algorithm: String,
    /// Digest-QoP (`auth`).
    pub qop: String,
    /// Digest-HA1: lower-case hex MD5(username:realm:password). Secret: not logged.
    pub ha1: String,
}

/// MAR outcome.
#[derive(Debug, Clone)]
pub enum MarOutcome {
    /// AKA vectors (Result-Code 2001).
    Aka(Vec<AkaItem>),
    /// SIP Digest (Result-Code 2001).
    Digest(DigestItem),
}

/// Server-Assignment-Type (TS 29.229 §6.3.15).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssignmentType {
    /// 0.
    NoAssignment,
    /// 1.
    Registration,
    /// 2.
    ReRegistration,
    /// 3.
    UnregisteredUser,
    /// 4.
    TimeoutDeregistration,
    /// 5.
    UserDeregistration,
    /// 6.
    TimeoutDeregStoreServerName,
    /// 7.
    UserDeregStoreServerName,
    /// 8.
    AdministrativeDeregistration,
    /// 9.
    AuthenticationFailure,
    /// 10.
    AuthenticationTimeout,
    /// 11.
    DeregistrationTooMuchData,
    /// Any other value (12 AAA_USER_DATA_REQUEST, 13 PGW_UPDATE, unknown).
    Other(u32),
}

impl AssignmentType {
    /// From the enumerated value.
    pub fn from_u32(v: u32) -> Self {
        match v {
            0 => Self::NoAssignment,
            1 => Self::Registration,
            2 => Self::ReRegistration,
            3 => Self::UnregisteredUser,
            4 => Self::TimeoutDeregistration,
            5 => Self::UserDeregistration,
            6 => Self::TimeoutDeregStoreServerName,
            7 => Self::UserDeregStoreServerName,
            8 => Self::AdministrativeDeregistration,
            9 => Self::AuthenticationFailure,
            10 => Self::AuthenticationTimeout,
            11 => Self::DeregistrationTooMuchData,
            o => Self::Other(o),
        }
    }
}

/// SAR input (TS 29.228 §6.1.2).
#[derive(Debug, Clone)]
pub struct SarInput {
    /// User-Name (IMPI), if present.
    pub impi: Option<String>,
    /// Public-Identity values.
    pub impus: Vec<String>,
    /// Server-Name.
    pub server_name: String,
    /// Origin-Host of the S-CSCF (kept to send it RTR/PPR).
    pub origin_host: String,
    /// Server-Assignment-Type.
    pub assignment_type: AssignmentType,
    /// User-Data-Already-Available = USER_DATA_ALREADY_AVAILABLE (1).
    pub user_data_already_available: bool,
}

/// SAR outcome (Result-Code 2001 DIAMETER_SUCCESS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SarOutcome {
    /// User-Name to put in the SAA.
    pub impi: String,
    /// User-Data (IMSSubscription XML), when sent.
    pub user_data: Option<String>,
}

/// LIR input (TS 29.228 §6.1.4).
#[derive(Debug, Clone)]
pub struct LirInput {
    /// Public-Identity.
    pub impu: String,
}

/// LIR outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LirOutcome {
    /// Result-Code 2001 with the assigned Server-Name.
    Registered(String),
    /// Experimental-Result 2003 DIAMETER_UNREGISTERED_SERVICE with a Server-Name or
    /// Server-Capabilities for an S-CSCF to serve the unregistered user.
    Unregistered(ServerSelection),
}
