//! The Cx/Dx dictionary (3GPP TS 29.229 §6.3, command codes §6.1, result codes
//! §6.2), kept here once and shared by the client and the HSS.
//!
//! AVP codes and flags follow TS 29.229 table 6.3.1: the AVPs 600–626 are sent with
//! V and M, the later ones (628 onwards) with V only. SIP-Digest-Authenticate's
//! members come from RFC 4740 §9.5 / RFC 4590 (Digest-Realm 104, Digest-QoP 110,
//! Digest-Algorithm 111, Digest-HA1 121, IETF vendor space, M set).

use ims_diameter::codec::{AvpDef, AvpType};
use ims_diameter::dictionary as base;

pub use ims_diameter::dictionary::VENDOR_3GPP;

/// Cx/Dx Auth-Application-Id (TS 29.229 §5.2, IANA 16777216).
pub const CX_APPLICATION_ID: u32 = 16_777_216;

/// User-Authorization-Request/Answer (TS 29.229 §6.1.1, §6.1.2).
pub const CMD_USER_AUTHORIZATION: u32 = 300;
/// Server-Assignment-Request/Answer (§6.1.3, §6.1.4).
pub const CMD_SERVER_ASSIGNMENT: u32 = 301;
/// Location-Info-Request/Answer (§6.1.5, §6.1.6).
pub const CMD_LOCATION_INFO: u32 = 302;
/// Multimedia-Auth-Request/Answer (§6.1.7, §6.1.8).
pub const CMD_MULTIMEDIA_AUTH: u32 = 303;
/// Registration-Termination-Request/Answer (§6.1.9, §6.1.10).
pub const CMD_REGISTRATION_TERMINATION: u32 = 304;
/// Push-Profile-Request/Answer (§6.1.11, §6.1.12).
pub const CMD_PUSH_PROFILE: u32 = 305;

/// Every Cx command code.
pub const CX_COMMANDS: &[u32] = &[
    CMD_USER_AUTHORIZATION,
    CMD_SERVER_ASSIGNMENT,
    CMD_LOCATION_INFO,
    CMD_MULTIMEDIA_AUTH,
    CMD_REGISTRATION_TERMINATION,
    CMD_PUSH_PROFILE,
];

use AvpType::*;

macro_rules! cx {
    ($(#[$m:meta])* $id:ident, $name:literal, $code:literal, $mand:literal, $kind:ident) => {
        $(#[$m])*
        pub const $id: AvpDef = AvpDef::vendor($name, $code, VENDOR_3GPP, $mand, $kind);
    };
}

cx!(/// 600 Visited-Network-Identifier (§6.3.1)
    VISITED_NETWORK_IDENTIFIER, "Visited-Network-Identifier", 600, true, OctetString);
cx!(/// 601 Public-Identity (§6.3.2)
    PUBLIC_IDENTITY, "Public-Identity", 601, true, Utf8String);
cx!(/// 602 Server-Name (§6.3.3)
    SERVER_NAME, "Server-Name", 602, true, Utf8String);
cx!(/// 603 Server-Capabilities (§6.3.4), Grouped
    SERVER_CAPABILITIES, "Server-Capabilities", 603, true, Grouped);
cx!(/// 604 Mandatory-Capability (§6.3.5)
    MANDATORY_CAPABILITY, "Mandatory-Capability", 604, true, Unsigned32);
cx!(/// 605 Optional-Capability (§6.3.6)
    OPTIONAL_CAPABILITY, "Optional-Capability", 605, true, Unsigned32);
cx!(/// 606 User-Data (§6.3.7), IMSSubscription XML
    USER_DATA, "User-Data", 606, true, OctetString);
cx!(/// 607 SIP-Number-Auth-Items (§6.3.8)
    SIP_NUMBER_AUTH_ITEMS, "SIP-Number-Auth-Items", 607, true, Unsigned32);
cx!(/// 608 SIP-Authentication-Scheme (§6.3.9)
    SIP_AUTHENTICATION_SCHEME, "SIP-Authentication-Scheme", 608, true, Utf8String);
cx!(/// 609 SIP-Authenticate (§6.3.10), RAND‖AUTN for AKA
    SIP_AUTHENTICATE, "SIP-Authenticate", 609, true, OctetString);
cx!(/// 610 SIP-Authorization (§6.3.11), XRES in MAA, RAND‖AUTS in a resync MAR
    SIP_AUTHORIZATION, "SIP-Authorization", 610, true, OctetString);
cx!(/// 611 SIP-Authentication-Context (§6.3.12)
    SIP_AUTHENTICATION_CONTEXT, "SIP-Authentication-Context", 611, true, OctetString);
cx!(/// 612 SIP-Auth-Data-Item (§6.3.13), Grouped
    SIP_AUTH_DATA_ITEM, "SIP-Auth-Data-Item", 612, true, Grouped);
cx!(/// 613 SIP-Item-Number (§6.3.14)
    SIP_ITEM_NUMBER, "SIP-Item-Number", 613, true, Unsigned32);
cx!(/// 614 Server-Assignment-Type (§6.3.15)
    SERVER_ASSIGNMENT_TYPE, "Server-Assignment-Type", 614, true, Enumerated);
cx!(/// 615 Deregistration-Reason (§6.3.16), Grouped
    DEREGISTRATION_REASON, "Deregistration-Reason", 615, true, Grouped);
cx!(/// 616 Reason-Code (§6.3.17)
    REASON_CODE, "Reason-Code", 616, true, Enumerated);
cx!(/// 617 Reason-Info (§6.3.18)
    REASON_INFO, "Reason-Info", 617, true, Utf8String);
cx!(/// 618 Charging-Information (§6.3.19), Grouped
    CHARGING_INFORMATION, "Charging-Information", 618, true, Grouped);
cx!(/// 619 Primary-Event-Charging-Function-Name (§6.3.20)
    PRIMARY_EVENT_CHARGING_FUNCTION_NAME, "Primary-Event-Charging-Function-Name", 619, true, DiameterUri);
cx!(/// 620 Secondary-Event-Charging-Function-Name (§6.3.21)
    SECONDARY_EVENT_CHARGING_FUNCTION_NAME, "Secondary-Event-Charging-Function-Name", 620, true, DiameterUri);
cx!(/// 621 Primary-Charging-Collection-Function-Name (§6.3.22)
    PRIMARY_CHARGING_COLLECTION_FUNCTION_NAME, "Primary-Charging-Collection-Function-Name", 621, true, DiameterUri);
cx!(/// 622 Secondary-Charging-Collection-Function-Name (§6.3.23)
    SECONDARY_CHARGING_COLLECTION_FUNCTION_NAME, "Secondary-Charging-Collection-Function-Name", 622, true, DiameterUri);
cx!(/// 623 User-Authorization-Type (§6.3.24)
    USER_AUTHORIZATION_TYPE, "User-Authorization-Type", 623, true, Enumerated);
cx!(/// 624 User-Data-Already-Available (§6.3.26)
    USER_DATA_ALREADY_AVAILABLE, "User-Data-Already-Available", 624, true, Enumerated);
cx!(/// 625 Confidentiality-Key (§6.3.27), CK
    CONFIDENTIALITY_KEY, "Confidentiality-Key", 625, true, OctetString);
cx!(/// 626 Integrity-Key (§6.3.28), IK
    INTEGRITY_KEY, "Integrity-Key", 626, true, OctetString);
cx!(/// 628 Supported-Features (TS 29.229 §6.3.29), Grouped
    SUPPORTED_FEATURES, "Supported-Features", 628, false, Grouped);
cx!(/// 629 Feature-List-ID (§6.3.30)
    FEATURE_LIST_ID, "Feature-List-ID", 629, false, Unsigned32);
cx!(/// 630 Feature-List (§6.3.31)
    FEATURE_LIST, "Feature-List", 630, false, Unsigned32);
cx!(/// 631 Supported-Applications (§6.3.32), Grouped
    SUPPORTED_APPLICATIONS, "Supported-Applications", 631, false, Grouped);
cx!(/// 632 Associated-Identities (§6.3.33), Grouped
    ASSOCIATED_IDENTITIES, "Associated-Identities", 632, false, Grouped);
cx!(/// 633 Originating-Request (§6.3.34)
    ORIGINATING_REQUEST, "Originating-Request", 633, true, Enumerated);
cx!(/// 634 Wildcarded-PSI (§6.3.35)
    WILDCARDED_PSI, "Wildcarded-PSI", 634, false, Utf8String);
cx!(/// 635 SIP-Digest-Authenticate (§6.3.36), Grouped
    SIP_DIGEST_AUTHENTICATE, "SIP-Digest-Authenticate", 635, false, Grouped);
cx!(/// 636 Wildcarded-IMPU (§6.3.43)
    WILDCARDED_IMPU, "Wildcarded-IMPU", 636, false, Utf8String);
cx!(/// 637 UAR-Flags (§6.3.44)
    UAR_FLAGS, "UAR-Flags", 637, false, Unsigned32);
cx!(/// 638 Loose-Route-Indication (§6.3.45)
    LOOSE_ROUTE_INDICATION, "Loose-Route-Indication", 638, false, Enumerated);
cx!(/// 639 SCSCF-Restoration-Info (§6.3.46), Grouped
    SCSCF_RESTORATION_INFO, "SCSCF-Restoration-Info", 639, false, Grouped);
cx!(/// 640 Path (§6.3.47)
    PATH, "Path", 640, false, OctetString);
cx!(/// 641 Contact (§6.3.48)
    CONTACT, "Contact", 641, false, OctetString);
cx!(/// 642 Subscription-Info (§6.3.49), Grouped
    SUBSCRIPTION_INFO, "Subscription-Info", 642, false, Grouped);
cx!(/// 643 Call-ID-SIP-Header (§6.3.49.1)
    CALL_ID_SIP_HEADER, "Call-ID-SIP-Header", 643, false, OctetString);
cx!(/// 644 From-SIP-Header (§6.3.49.2)
    FROM_SIP_HEADER, "From-SIP-Header", 644, false, OctetString);
cx!(/// 645 To-SIP-Header (§6.3.49.3)
    TO_SIP_HEADER, "To-SIP-Header", 645, false, OctetString);
cx!(/// 646 Record-Route (§6.3.49.4)
    RECORD_ROUTE, "Record-Route", 646, false, OctetString);
cx!(/// 647 Associated-Registered-Identities (§6.3.50), Grouped
    ASSOCIATED_REGISTERED_IDENTITIES, "Associated-Registered-Identities", 647, false, Grouped);
cx!(/// 648 Multiple-Registration-Indication (§6.3.51)
    MULTIPLE_REGISTRATION_INDICATION, "Multiple-Registration-Indication", 648, false, Enumerated);
cx!(/// 649 Restoration-Info (§6.3.52), Grouped
    RESTORATION_INFO, "Restoration-Info", 649, false, Grouped);

/// RFC 4590 Digest-Realm (104), member of SIP-Digest-Authenticate.
pub const DIGEST_REALM: AvpDef = AvpDef::ietf("Digest-Realm", 104, true, Utf8String);
/// RFC 4590 Digest-QoP (110).
pub const DIGEST_QOP: AvpDef = AvpDef::ietf("Digest-QoP", 110, true, Utf8String);
/// RFC 4590 Digest-Algorithm (111).
pub const DIGEST_ALGORITHM: AvpDef = AvpDef::ietf("Digest-Algorithm", 111, true, Utf8String);
/// RFC 4590 Digest-HA1 (121).
pub const DIGEST_HA1: AvpDef = AvpDef::ietf("Digest-HA1", 121, true, OctetString);

/// Every Cx AVP defined above (3GPP vendor space) plus the RFC 4590 digest AVPs.
pub const CX_AVPS: &[AvpDef] = &[
    VISITED_NETWORK_IDENTIFIER,
    PUBLIC_IDENTITY,
    SERVER_NAME,
    SERVER_CAPABILITIES,
    MANDATORY_CAPABILITY,
    OPTIONAL_CAPABILITY,
    USER_DATA,
    SIP_NUMBER_AUTH_ITEMS,
    SIP_AUTHENTICATION_SCHEME,
    SIP_AUTHENTICATE,
    SIP_AUTHORIZATION,
    SIP_AUTHENTICATION_CONTEXT,
    SIP_AUTH_DATA_ITEM,
    SIP_ITEM_NUMBER,
    SERVER_ASSIGNMENT_TYPE,
    DEREGISTRATION_REASON,
    REASON_CODE,
    REASON_INFO,
    CHARGING_INFORMATION,
    PRIMARY_EVENT_CHARGING_FUNCTION_NAME,
    SECONDARY_EVENT_CHARGING_FUNCTION_NAME,
    PRIMARY_CHARGING_COLLECTION_FUNCTION_NAME,
    SECONDARY_CHARGING_COLLECTION_FUNCTION_NAME,
    USER_AUTHORIZATION_TYPE,
    USER_DATA_ALREADY_AVAILABLE,
    CONFIDENTIALITY_KEY,
    INTEGRITY_KEY,
    SUPPORTED_FEATURES,
    FEATURE_LIST_ID,
    FEATURE_LIST,
    SUPPORTED_APPLICATIONS,
    ASSOCIATED_IDENTITIES,
    ORIGINATING_REQUEST,
    WILDCARDED_PSI,
    SIP_DIGEST_AUTHENTICATE,
    WILDCARDED_IMPU,
    UAR_FLAGS,
    LOOSE_ROUTE_INDICATION,
    SCSCF_RESTORATION_INFO,
    PATH,
    CONTACT,
    SUBSCRIPTION_INFO,
    CALL_ID_SIP_HEADER,
    FROM_SIP_HEADER,
    TO_SIP_HEADER,
    RECORD_ROUTE,
    ASSOCIATED_REGISTERED_IDENTITIES,
    MULTIPLE_REGISTRATION_INDICATION,
    RESTORATION_INFO,
    DIGEST_REALM,
    DIGEST_QOP,
    DIGEST_ALGORITHM,
    DIGEST_HA1,
];

/// Whether an AVP is known to a Cx node (base protocol or Cx dictionary): AVPs for
/// which this is false and whose M bit is set are answered with 5001.
pub fn is_known(code: u32, vendor_id: Option<u32>) -> bool {
    base::is_base_avp(code, vendor_id)
        || CX_AVPS
            .iter()
            .any(|d| d.code == code && d.vendor_id.unwrap_or(0) == vendor_id.unwrap_or(0))
}

/// Generates an enum over an Enumerated AVP with an `Other(i32)` catch-all.
macro_rules! enumerated {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $var:ident = $val:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vm])* $var,)+
            /// A value this dictionary does not name.
            Other(i32),
        }
        impl $name {
            /// Wire value.
            pub fn code(self) -> i32 {
                match self { $($name::$var => $val,)+ $name::Other(v) => v }
            }
        }
        impl From<i32> for $name {
            fn from(v: i32) -> Self {
                match v { $($val => $name::$var,)+ v => $name::Other(v) }
            }
        }
    };
}

enumerated!(
    /// Server-Assignment-Type (TS 29.229 §6.3.15).
    ServerAssignmentType {
        /// 0
        NoAssignment = 0,
        /// 1
        Registration = 1,
        /// 2
        ReRegistration = 2,
        /// 3
        UnregisteredUser = 3,
        /// 4
        TimeoutDeregistration = 4,
        /// 5
        UserDeregistration = 5,
        /// 6
        TimeoutDeregistrationStoreServerName = 6,
        /// 7
        UserDeregistrationStoreServerName = 7,
        /// 8
        AdministrativeDeregistration = 8,
        /// 9
        AuthenticationFailure = 9,
        /// 10
        AuthenticationTimeout = 10,
        /// 11
        DeregistrationTooMuchData = 11,
        /// 12
        AaaUserDataRequest = 12,
        /// 13
        PgwUpdate = 13,
        /// 14
        Restoration = 14,
    }
);

impl ServerAssignmentType {
    /// Whether this type de-registers the user (TS 29.228 §6.1.2 table 6.1.2.1).
    pub fn is_deregistration(self) -> bool {
        matches!(
            self,
            ServerAssignmentType::TimeoutDeregistration
                | ServerAssignmentType::UserDeregistration
                | ServerAssignmentType::TimeoutDeregistrationStoreServerName
                | ServerAssignmentType::UserDeregistrationStoreServerName
                | ServerAssignmentType::AdministrativeDeregistration
                | ServerAssignmentType::DeregistrationTooMuchData
        )
    }
}

enumerated!(
    /// User-Authorization-Type (TS 29.229 §6.3.24).
    UserAuthorizationType {
        /// 0 REGISTRATION
        Registration = 0,
        /// 1 DE_REGISTRATION
        DeRegistration = 1,
        /// 2 REGISTRATION_AND_CAPABILITIES
        RegistrationAndCapabilities = 2,
    }
);

enumerated!(
    /// Deregistration-Reason / Reason-Code (TS 29.229 §6.3.17).
    ReasonCode {
        /// 0 PERMANENT_TERMINATION
        PermanentTermination = 0,
        /// 1 NEW_SERVER_ASSIGNED
        NewServerAssigned = 1,
        /// 2 SERVER_CHANGE
        ServerChange = 2,
        /// 3 REMOVE_S-CSCF
        RemoveScscf = 3,
    }
);

enumerated!(
    /// Originating-Request (TS 29.229 §6.3.34).
    OriginatingRequest {
        /// 0 ORIGINATING
        Originating = 0,
    }
);

/// SIP-Authentication-Scheme values (TS 29.229 §6.3.9; TS 33.203; the Digest-MD5
/// spelling as Kamailio and PyHSS use it).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SipAuthScheme {
    /// "Digest-AKAv1-MD5" (RFC 3310).
    DigestAkaV1Md5,
    /// "Digest-AKAv2-MD5" (RFC 4169).
    DigestAkaV2Md5,
    /// "SIP Digest" (TS 29.229: IETF SIP Digest with SIP-Digest-Authenticate).
    SipDigest,
    /// "Digest-MD5" (Kamailio/PyHSS name for MD5 digest).
    DigestMd5,
    /// "Digest" (early IMS usage).
    Digest,
    /// "NASS-Bundled".
    NassBundled,
    /// "Early-IMS-Security".
    EarlyImsSecurity,
    /// "Unknown": let the HSS choose (TS 29.228 §6.3).
    Unknown,
    /// Anything else, verbatim.
    Other(String),
}

const SCHEMES: &[(&str, SipAuthScheme)] = &[
    ("Digest-AKAv1-MD5", SipAuthScheme::DigestAkaV1Md5),
    ("Digest-AKAv2-MD5", SipAuthScheme::DigestAkaV2Md5),
    ("SIP Digest", SipAuthScheme::SipDigest),
    ("Digest-MD5", SipAuthScheme::DigestMd5),
    ("Digest", SipAuthScheme::Digest),
    ("NASS-Bundled", SipAuthScheme::NassBundled),
    ("Early-IMS-Security", SipAuthScheme::EarlyImsSecurity),
    ("Unknown", SipAuthScheme::Unknown),
];

impl SipAuthScheme {
    /// Wire string.
    pub fn as_str(&self) -> &str {
        match self {
            SipAuthScheme::Other(s) => s,
            s => SCHEMES
                .iter()
                .find(|(_, v)| v == s)
                .map(|(n, _)| *n)
                .unwrap_or(""),
        }
    }
    /// Parses a wire string (exact match, as the values are tokens of TS 29.229).
    pub fn parse(s: &str) -> SipAuthScheme {
        SCHEMES
            .iter()
            .find(|(n, _)| *n == s)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| SipAuthScheme::Other(s.to_owned()))
    }
    /// Whether this is an MD5 digest scheme answered with SIP-Digest-Authenticate.
    pub fn is_md5_digest(&self) -> bool {
        matches!(
            self,
            SipAuthScheme::SipDigest | SipAuthScheme::DigestMd5 | SipAuthScheme::Digest
        )
    }
}

impl std::fmt::Display for SipAuthScheme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Experimental-Result-Code values of Cx (TS 29.229 §6.2), vendor 10415.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExperimentalResultCode {
    /// 2001 DIAMETER_FIRST_REGISTRATION
    FirstRegistration,
    /// 2002 DIAMETER_SUBSEQUENT_REGISTRATION
    SubsequentRegistration,
    /// 2003 DIAMETER_UNREGISTERED_SERVICE
    UnregisteredService,
    /// 2004 DIAMETER_SUCCESS_SERVER_NAME_NOT_STORED
    SuccessServerNameNotStored,
    /// 2005 DIAMETER_SERVER_SELECTION (deprecated in later releases)
    ServerSelection,
    /// 4100 DIAMETER_USER_DATA_NOT_AVAILABLE
    UserDataNotAvailable,
    /// 4101 DIAMETER_PRIOR_UPDATE_IN_PROGRESS
    PriorUpdateInProgress,
    /// 5001 DIAMETER_ERROR_USER_UNKNOWN
    UserUnknown,
    /// 5002 DIAMETER_ERROR_IDENTITIES_DONT_MATCH
    IdentitiesDontMatch,
    /// 5003 DIAMETER_ERROR_IDENTITY_NOT_REGISTERED
    IdentityNotRegistered,
    /// 5004 DIAMETER_ERROR_ROAMING_NOT_ALLOWED
    RoamingNotAllowed,
    /// 5005 DIAMETER_ERROR_IDENTITY_ALREADY_REGISTERED
    IdentityAlreadyRegistered,
    /// 5006 DIAMETER_ERROR_AUTH_SCHEME_NOT_SUPPORTED
    AuthSchemeNotSupported,
    /// 5007 DIAMETER_ERROR_IN_ASSIGNMENT_TYPE
    InAssignmentType,
    /// 5008 DIAMETER_ERROR_TOO_MUCH_DATA
    TooMuchData,
    /// 5009 DIAMETER_ERROR_NOT_SUPPORTED_USER_DATA
    NotSupportedUserData,
    /// 5011 DIAMETER_ERROR_FEATURE_UNSUPPORTED
    FeatureUnsupported,
    /// Any other value.
    Other(u32),
}

const EXPERIMENTAL: &[(u32, ExperimentalResultCode)] = &[
    (2001, ExperimentalResultCode::FirstRegistration),
    (2002, ExperimentalResultCode::SubsequentRegistration),
    (2003, ExperimentalResultCode::UnregisteredService),
    (2004, ExperimentalResultCode::SuccessServerNameNotStored),
    (2005, ExperimentalResultCode::ServerSelection),
    (4100, ExperimentalResultCode::UserDataNotAvailable),
    (4101, ExperimentalResultCode::PriorUpdateInProgress),
    (5001, ExperimentalResultCode::UserUnknown),
    (5002, ExperimentalResultCode::IdentitiesDontMatch),
    (5003, ExperimentalResultCode::IdentityNotRegistered),
    (5004, ExperimentalResultCode::RoamingNotAllowed),
    (5005, ExperimentalResultCode::IdentityAlreadyRegistered),
    (5006, ExperimentalResultCode::AuthSchemeNotSupported),
    (5007, ExperimentalResultCode::InAssignmentType),
    (5008, ExperimentalResultCode::TooMuchData),
    (5009, ExperimentalResultCode::NotSupportedUserData),
    (5011, ExperimentalResultCode::FeatureUnsupported),
];

impl ExperimentalResultCode {
    /// Wire value.
    pub fn code(self) -> u32 {
        match self {
            ExperimentalResultCode::Other(v) => v,
            c => EXPERIMENTAL
                .iter()
                .find(|(_, e)| *e == c)
                .map(|(n, _)| *n)
                .unwrap_or(0),
        }
    }
    /// 2xxx: the request succeeded.
    pub fn is_success(self) -> bool {
        (2000..3000).contains(&self.code())
    }
}

impl From<u32> for ExperimentalResultCode {
    fn from(v: u32) -> Self {
        EXPERIMENTAL
            .iter()
            .find(|(n, _)| *n == v)
            .map(|(_, e)| *e)
            .unwrap_or(ExperimentalResultCode::Other(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_flags_follow_ts_29_229() {
        assert_eq!(PUBLIC_IDENTITY.code, 601);
        assert_eq!(PUBLIC_IDENTITY.flags().0, 0xc0);
        assert_eq!(SIP_AUTH_DATA_ITEM.code, 612);
        assert_eq!(SUPPORTED_FEATURES.flags().0, 0x80);
        assert_eq!(DIGEST_HA1.code, 121);
        assert_eq!(DIGEST_HA1.vendor_id, None);
        assert!(CX_AVPS
            .iter()
            .all(|d| d.code < 600 || d.vendor_id == Some(10415)));
        let mut codes: Vec<u32> = CX_AVPS.iter().map(|d| d.code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), CX_AVPS.len(), "duplicate code");
    }

    #[test]
    fn enums_round_trip() {
        for (n, e) in EXPERIMENTAL {
            assert_eq!(ExperimentalResultCode::from(*n), *e);
            assert_eq!(e.code(), *n);
        }
        assert_eq!(
            ExperimentalResultCode::from(5010),
            ExperimentalResultCode::Other(5010)
        );
        assert_eq!(
            ServerAssignmentType::from(8),
            ServerAssignmentType::AdministrativeDeregistration
        );
        assert_eq!(ServerAssignmentType::Other(99).code(), 99);
        assert!(ServerAssignmentType::UserDeregistration.is_deregistration());
        assert!(!ServerAssignmentType::ReRegistration.is_deregistration());
        assert_eq!(
            UserAuthorizationType::from(2),
            UserAuthorizationType::RegistrationAndCapabilities
        );
        assert_eq!(ReasonCode::RemoveScscf.code(), 3);
        for (s, v) in SCHEMES {
            assert_eq!(SipAuthScheme::parse(s), *v);
            assert_eq!(v.as_str(), *s);
        }
        assert_eq!(SipAuthScheme::parse("X").as_str(), "X");
        assert!(is_known(601, Some(10415)));
        assert!(!is_known(601, None));
        assert!(is_known(263, None));
    }
}
