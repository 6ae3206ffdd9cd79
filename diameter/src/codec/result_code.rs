//! Result-Code values of the base protocol (RFC 6733 §7.1).

/// A Result-Code (AVP 268) value, RFC 6733 §7.1.
///
/// Unknown values are kept in [`ResultCode::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ResultCode {
    /// 1001 DIAMETER_MULTI_ROUND_AUTH (§7.1.1)
    MultiRoundAuth,
    /// 2001 DIAMETER_SUCCESS (§7.1.2)
    Success,
    /// 2002 DIAMETER_LIMITED_SUCCESS
    LimitedSuccess,
    /// 3001 DIAMETER_COMMAND_UNSUPPORTED (§7.1.3)
    CommandUnsupported,
    /// 3002 DIAMETER_UNABLE_TO_DELIVER
    UnableToDeliver,
    /// 3003 DIAMETER_REALM_NOT_SERVED
    RealmNotServed,
    /// 3004 DIAMETER_TOO_BUSY
    TooBusy,
    /// 3005 DIAMETER_LOOP_DETECTED
    LoopDetected,
    /// 3006 DIAMETER_REDIRECT_INDICATION
    RedirectIndication,
    /// 3007 DIAMETER_APPLICATION_UNSUPPORTED
    ApplicationUnsupported,
    /// 3008 DIAMETER_INVALID_HDR_BITS
    InvalidHdrBits,
    /// 3009 DIAMETER_INVALID_AVP_BITS
    InvalidAvpBits,
    /// 3010 DIAMETER_UNKNOWN_PEER
    UnknownPeer,
    /// 4001 DIAMETER_AUTHENTICATION_REJECTED (§7.1.4)
    AuthenticationRejected,
    /// 4002 DIAMETER_OUT_OF_SPACE
    OutOfSpace,
    /// 4003 ELECTION_LOST
    ElectionLost,
    /// 5001 DIAMETER_AVP_UNSUPPORTED (§7.1.5)
    AvpUnsupported,
    /// 5002 DIAMETER_UNKNOWN_SESSION_ID
    UnknownSessionId,
    /// 5003 DIAMETER_AUTHORIZATION_REJECTED
    AuthorizationRejected,
    /// 5004 DIAMETER_INVALID_AVP_VALUE
    InvalidAvpValue,
    /// 5005 DIAMETER_MISSING_AVP
    MissingAvp,
    /// 5006 DIAMETER_RESOURCES_EXCEEDED
    ResourcesExceeded,
    /// 5007 DIAMETER_CONTRADICTING_AVPS
    ContradictingAvps,
    /// 5008 DIAMETER_AVP_NOT_ALLOWED
    AvpNotAllowed,
    /// 5009 DIAMETER_AVP_OCCURS_TOO_MANY_TIMES
    AvpOccursTooManyTimes,
    /// 5010 DIAMETER_NO_COMMON_APPLICATION
    NoCommonApplication,
    /// 5011 DIAMETER_UNSUPPORTED_VERSION
    UnsupportedVersion,
    /// 5012 DIAMETER_UNABLE_TO_COMPLY
    UnableToComply,
    /// 5013 DIAMETER_INVALID_BIT_IN_HEADER
    InvalidBitInHeader,
    /// 5014 DIAMETER_INVALID_AVP_LENGTH
    InvalidAvpLength,
    /// 5015 DIAMETER_INVALID_MESSAGE_LENGTH
    InvalidMessageLength,
    /// 5016 DIAMETER_INVALID_AVP_BIT_COMBO
    InvalidAvpBitCombo,
    /// 5017 DIAMETER_NO_COMMON_SECURITY
    NoCommonSecurity,
    /// Any other value.
    Other(u32),
}

const TABLE: &[(u32, ResultCode)] = &[
    (1001, ResultCode::MultiRoundAuth),
    (2001, ResultCode::Success),
    (2002, ResultCode::LimitedSuccess),
    (3001, ResultCode::CommandUnsupported),
    (3002, ResultCode::UnableToDeliver),
    (3003, ResultCode::RealmNotServed),
    (3004, ResultCode::TooBusy),
    (3005, ResultCode::LoopDetected),
    (3006, ResultCode::RedirectIndication),
    (3007, ResultCode::ApplicationUnsupported),
    (3008, ResultCode::InvalidHdrBits),
    (3009, ResultCode::InvalidAvpBits),
    (3010, ResultCode::UnknownPeer),
    (4001, ResultCode::AuthenticationRejected),
    (4002, ResultCode::OutOfSpace),
    (4003, ResultCode::ElectionLost),
    (5001, ResultCode::AvpUnsupported),
    (5002, ResultCode::UnknownSessionId),
    (5003, ResultCode::AuthorizationRejected),
    (5004, ResultCode::InvalidAvpValue),
    (5005, ResultCode::MissingAvp),
    (5006, ResultCode::ResourcesExceeded),
    (5007, ResultCode::ContradictingAvps),
    (5008, ResultCode::AvpNotAllowed),
    (5009, ResultCode::AvpOccursTooManyTimes),
    (5010, ResultCode::NoCommonApplication),
    (5011, ResultCode::UnsupportedVersion),
    (5012, ResultCode::UnableToComply),
    (5013, ResultCode::InvalidBitInHeader),
    (5014, ResultCode::InvalidAvpLength),
    (5015, ResultCode::InvalidMessageLength),
    (5016, ResultCode::InvalidAvpBitCombo),
    (5017, ResultCode::NoCommonSecurity),
];

impl ResultCode {
    /// The numeric value carried in the Result-Code AVP.
    pub fn code(self) -> u32 {
        if let ResultCode::Other(v) = self {
            return v;
        }
        TABLE
            .iter()
            .find(|(_, rc)| *rc == self)
            .map(|(c, _)| *c)
            .unwrap_or(0)
    }

    /// 1xxx informational (§7.1.1).
    pub fn is_informational(self) -> bool {
        (1000..2000).contains(&self.code())
    }
    /// 2xxx success (§7.1.2).
    pub fn is_success(self) -> bool {
        (2000..3000).contains(&self.code())
    }
    /// 3xxx protocol errors (§7.1.3): answered with the 'E' bit set (§7.2).
    pub fn is_protocol_error(self) -> bool {
        (3000..4000).contains(&self.code())
    }
    /// 4xxx transient failures (§7.1.4).
    pub fn is_transient_failure(self) -> bool {
        (4000..5000).contains(&self.code())
    }
    /// 5xxx permanent failures (§7.1.5).
    pub fn is_permanent_failure(self) -> bool {
        (5000..6000).contains(&self.code())
    }
}

impl From<u32> for ResultCode {
    fn from(v: u32) -> Self {
        TABLE
            .iter()
            .find(|(c, _)| *c == v)
            .map(|(_, rc)| *rc)
            .unwrap_or(ResultCode::Other(v))
    }
}

impl From<ResultCode> for u32 {
    fn from(rc: ResultCode) -> u32 {
        rc.code()
    }
}

impl std::fmt::Display for ResultCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ResultCode::Other(v) => write!(f, "{v}"),
            rc => write!(f, "{:?} ({})", rc, rc.code()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_match_rfc6733_section_7_1() {
        assert_eq!(ResultCode::Success.code(), 2001);
        assert_eq!(ResultCode::CommandUnsupported.code(), 3001);
        assert_eq!(ResultCode::ApplicationUnsupported.code(), 3007);
        assert_eq!(ResultCode::InvalidHdrBits.code(), 3008);
        assert_eq!(ResultCode::InvalidAvpBits.code(), 3009);
        assert_eq!(ResultCode::AvpUnsupported.code(), 5001);
        assert_eq!(ResultCode::InvalidAvpValue.code(), 5004);
        assert_eq!(ResultCode::MissingAvp.code(), 5005);
        assert_eq!(ResultCode::AvpNotAllowed.code(), 5008);
        assert_eq!(ResultCode::AvpOccursTooManyTimes.code(), 5009);
        assert_eq!(ResultCode::NoCommonApplication.code(), 5010);
        assert_eq!(ResultCode::InvalidAvpLength.code(), 5014);
        assert_eq!(ResultCode::InvalidMessageLength.code(), 5015);
    }

    #[test]
    fn round_trips_through_u32() {
        for (c, rc) in TABLE {
            assert_eq!(ResultCode::from(*c), *rc);
            assert_eq!(rc.code(), *c);
        }
        assert_eq!(ResultCode::from(4242), ResultCode::Other(4242));
        assert_eq!(ResultCode::Other(4242).code(), 4242);
        assert!(ResultCode::InvalidHdrBits.is_protocol_error());
        assert!(ResultCode::Success.is_success());
        assert!(ResultCode::MissingAvp.is_permanent_failure());
    }
}
