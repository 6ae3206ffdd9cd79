//! Base protocol dictionary: AVPs of RFC 6733 §4.5 (and §4.4 for Grouped) and the
//! base commands of §3.1. Application dictionaries (Cx) live in their own crates.

use crate::codec::avp::{AvpDef, AvpType};

/// Application-ID of the base protocol common messages (RFC 6733 §2.4).
pub const APP_COMMON: u32 = 0;
/// Relay Application-ID (RFC 6733 §2.4).
pub const APP_RELAY: u32 = 0xffff_ffff;
/// Vendor-ID of 3GPP (IANA enterprise 10415).
pub const VENDOR_3GPP: u32 = 10415;

/// Capabilities-Exchange-Request/Answer (§5.3.1, §5.3.2).
pub const CMD_CAPABILITIES_EXCHANGE: u32 = 257;
/// Device-Watchdog-Request/Answer (§5.5.1, §5.5.2).
pub const CMD_DEVICE_WATCHDOG: u32 = 280;
/// Disconnect-Peer-Request/Answer (§5.4.1, §5.4.2).
pub const CMD_DISCONNECT_PEER: u32 = 282;
/// Re-Auth-Request/Answer (§8.3).
pub const CMD_RE_AUTH: u32 = 258;
/// Session-Termination-Request/Answer (§8.4).
pub const CMD_SESSION_TERMINATION: u32 = 275;
/// Abort-Session-Request/Answer (§8.5).
pub const CMD_ABORT_SESSION: u32 = 274;

use AvpType::*;

macro_rules! ietf {
    ($(#[$m:meta])* $id:ident, $name:literal, $code:literal, $mand:literal, $kind:ident) => {
        $(#[$m])*
        pub const $id: AvpDef = AvpDef::ietf($name, $code, $mand, $kind);
    };
}

ietf!(/// User-Name (1)
    USER_NAME, "User-Name", 1, true, Utf8String);
ietf!(/// Class (25)
    CLASS, "Class", 25, true, OctetString);
ietf!(/// Session-Timeout (27)
    SESSION_TIMEOUT, "Session-Timeout", 27, true, Unsigned32);
ietf!(/// Proxy-State (33)
    PROXY_STATE, "Proxy-State", 33, true, OctetString);
ietf!(/// Event-Timestamp (55)
    EVENT_TIMESTAMP, "Event-Timestamp", 55, true, Time);
ietf!(/// Host-IP-Address (257)
    HOST_IP_ADDRESS, "Host-IP-Address", 257, true, Address);
ietf!(/// Auth-Application-Id (258)
    AUTH_APPLICATION_ID, "Auth-Application-Id", 258, true, Unsigned32);
ietf!(/// Acct-Application-Id (259)
    ACCT_APPLICATION_ID, "Acct-Application-Id", 259, true, Unsigned32);
ietf!(/// Vendor-Specific-Application-Id (260), Grouped
    VENDOR_SPECIFIC_APPLICATION_ID, "Vendor-Specific-Application-Id", 260, true, Grouped);
ietf!(/// Redirect-Host-Usage (261)
    REDIRECT_HOST_USAGE, "Redirect-Host-Usage", 261, true, Enumerated);
ietf!(/// Redirect-Max-Cache-Time (262)
    REDIRECT_MAX_CACHE_TIME, "Redirect-Max-Cache-Time", 262, true, Unsigned32);
ietf!(/// Session-Id (263)
    SESSION_ID, "Session-Id", 263, true, Utf8String);
ietf!(/// Origin-Host (264)
    ORIGIN_HOST, "Origin-Host", 264, true, DiameterIdentity);
ietf!(/// Supported-Vendor-Id (265)
    SUPPORTED_VENDOR_ID, "Supported-Vendor-Id", 265, true, Unsigned32);
ietf!(/// Vendor-Id (266)
    VENDOR_ID, "Vendor-Id", 266, true, Unsigned32);
ietf!(/// Firmware-Revision (267), M bit not set
    FIRMWARE_REVISION, "Firmware-Revision", 267, false, Unsigned32);
ietf!(/// Result-Code (268)
    RESULT_CODE, "Result-Code", 268, true, Unsigned32);
ietf!(/// Product-Name (269), M bit not set
    PRODUCT_NAME, "Product-Name", 269, false, Utf8String);
ietf!(/// Disconnect-Cause (273)
    DISCONNECT_CAUSE, "Disconnect-Cause", 273, true, Enumerated);
ietf!(/// Auth-Request-Type (274)
    AUTH_REQUEST_TYPE, "Auth-Request-Type", 274, true, Enumerated);
ietf!(/// Auth-Grace-Period (276)
    AUTH_GRACE_PERIOD, "Auth-Grace-Period", 276, true, Unsigned32);
ietf!(/// Auth-Session-State (277)
    AUTH_SESSION_STATE, "Auth-Session-State", 277, true, Enumerated);
ietf!(/// Origin-State-Id (278)
    ORIGIN_STATE_ID, "Origin-State-Id", 278, true, Unsigned32);
ietf!(/// Failed-AVP (279), Grouped
    FAILED_AVP, "Failed-AVP", 279, true, Grouped);
ietf!(/// Proxy-Host (280)
    PROXY_HOST, "Proxy-Host", 280, true, DiameterIdentity);
ietf!(/// Error-Message (281), M bit not set
    ERROR_MESSAGE, "Error-Message", 281, false, Utf8String);
ietf!(/// Route-Record (282)
    ROUTE_RECORD, "Route-Record", 282, true, DiameterIdentity);
ietf!(/// Destination-Realm (283)
    DESTINATION_REALM, "Destination-Realm", 283, true, DiameterIdentity);
ietf!(/// Proxy-Info (284), Grouped
    PROXY_INFO, "Proxy-Info", 284, true, Grouped);
ietf!(/// Re-Auth-Request-Type (285)
    RE_AUTH_REQUEST_TYPE, "Re-Auth-Request-Type", 285, true, Enumerated);
ietf!(/// Authorization-Lifetime (291)
    AUTHORIZATION_LIFETIME, "Authorization-Lifetime", 291, true, Unsigned32);
ietf!(/// Redirect-Host (292)
    REDIRECT_HOST, "Redirect-Host", 292, true, DiameterUri);
ietf!(/// Destination-Host (293)
    DESTINATION_HOST, "Destination-Host", 293, true, DiameterIdentity);
ietf!(/// Error-Reporting-Host (294), M bit not set
    ERROR_REPORTING_HOST, "Error-Reporting-Host", 294, false, DiameterIdentity);
ietf!(/// Termination-Cause (295)
    TERMINATION_CAUSE, "Termination-Cause", 295, true, Enumerated);
ietf!(/// Origin-Realm (296)
    ORIGIN_REALM, "Origin-Realm", 296, true, DiameterIdentity);
ietf!(/// Experimental-Result (297), Grouped
    EXPERIMENTAL_RESULT, "Experimental-Result", 297, true, Grouped);
ietf!(/// Experimental-Result-Code (298)
    EXPERIMENTAL_RESULT_CODE, "Experimental-Result-Code", 298, true, Unsigned32);
ietf!(/// Inband-Security-Id (299)
    INBAND_SECURITY_ID, "Inband-Security-Id", 299, true, Unsigned32);

/// Every base AVP above, for "is this AVP known" checks (5001).
pub const BASE_AVPS: &[AvpDef] = &[
    USER_NAME,
    CLASS,
    SESSION_TIMEOUT,
    PROXY_STATE,
    EVENT_TIMESTAMP,
    HOST_IP_ADDRESS,
    AUTH_APPLICATION_ID,
    ACCT_APPLICATION_ID,
    VENDOR_SPECIFIC_APPLICATION_ID,
    REDIRECT_HOST_USAGE,
    REDIRECT_MAX_CACHE_TIME,
    SESSION_ID,
    ORIGIN_HOST,
    SUPPORTED_VENDOR_ID,
    VENDOR_ID,
    FIRMWARE_REVISION,
    RESULT_CODE,
    PRODUCT_NAME,
    DISCONNECT_CAUSE,
    AUTH_REQUEST_TYPE,
    AUTH_GRACE_PERIOD,
    AUTH_SESSION_STATE,
    ORIGIN_STATE_ID,
    FAILED_AVP,
    PROXY_HOST,
    ERROR_MESSAGE,
    ROUTE_RECORD,
    DESTINATION_REALM,
    PROXY_INFO,
    RE_AUTH_REQUEST_TYPE,
    AUTHORIZATION_LIFETIME,
    REDIRECT_HOST,
    DESTINATION_HOST,
    ERROR_REPORTING_HOST,
    TERMINATION_CAUSE,
    ORIGIN_REALM,
    EXPERIMENTAL_RESULT,
    EXPERIMENTAL_RESULT_CODE,
    INBAND_SECURITY_ID,
];

/// Whether `(code, vendor)` is a base protocol AVP.
pub fn is_base_avp(code: u32, vendor_id: Option<u32>) -> bool {
    vendor_id.unwrap_or(0) == 0 && BASE_AVPS.iter().any(|d| d.code == code)
}

/// Disconnect-Cause values (RFC 6733 §5.4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisconnectCause {
    /// 0 REBOOTING
    Rebooting,
    /// 1 BUSY
    Busy,
    /// 2 DO_NOT_WANT_TO_TALK_TO_YOU
    DoNotWantToTalkToYou,
    /// Any other value.
    Other(i32),
}

impl DisconnectCause {
    /// Wire value.
    pub fn code(self) -> i32 {
        match self {
            DisconnectCause::Rebooting => 0,
            DisconnectCause::Busy => 1,
            DisconnectCause::DoNotWantToTalkToYou => 2,
            DisconnectCause::Other(v) => v,
        }
    }
}

impl From<i32> for DisconnectCause {
    fn from(v: i32) -> Self {
        match v {
            0 => DisconnectCause::Rebooting,
            1 => DisconnectCause::Busy,
            2 => DisconnectCause::DoNotWantToTalkToYou,
            v => DisconnectCause::Other(v),
        }
    }
}
