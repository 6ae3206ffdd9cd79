//! Codec errors and their RFC 6733 §7.1 Result-Codes.

use super::avp::Avp;
use super::result_code::ResultCode;

/// Why a message or AVP could not be accepted.
///
/// Each variant knows the Result-Code to answer with ([`DecodeError::result_code`])
/// and, where RFC 6733 §7.5 asks for one, the Failed-AVP to report
/// ([`DecodeError::failed_avp`]). The codec produces the framing and length
/// variants; the value/presence variants come from typed getters and from
/// application validation (e.g. the Cx messages in `ims-hss-client`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Version field other than 1 (5011 DIAMETER_UNSUPPORTED_VERSION).
    #[error("unsupported Diameter version {0}")]
    UnsupportedVersion(u8),
    /// Message Length inconsistent with the bytes received, shorter than a header or
    /// not a multiple of 4 (5015 DIAMETER_INVALID_MESSAGE_LENGTH).
    #[error("invalid message length (declared {declared:?}, {available} bytes available)")]
    InvalidMessageLength {
        /// Length from the header, if a header could be read.
        declared: Option<usize>,
        /// Bytes actually available.
        available: usize,
    },
    /// Message larger than the configured limit; the stream cannot be trusted.
    #[error("message of {length} bytes exceeds the limit of {max}")]
    MessageTooLarge {
        /// Declared length.
        length: usize,
        /// Configured limit.
        max: usize,
    },
    /// Header flags in an invalid combination, e.g. E bit in a request
    /// (3008 DIAMETER_INVALID_HDR_BITS).
    #[error("invalid command flags {flags:#04x}")]
    InvalidHdrBits {
        /// Flags as received.
        flags: u8,
    },
    /// AVP Length below the AVP header size, past the end of the enclosing data, or
    /// wrong for the AVP's fixed-size type (5014 DIAMETER_INVALID_AVP_LENGTH).
    #[error("AVP {} (vendor {:?}) has an invalid length {length}", failed_avp.code, failed_avp.vendor_id)]
    InvalidAvpLength {
        /// Length field as received.
        length: usize,
        /// The offending AVP header with a zero-filled payload (§7.1.5).
        failed_avp: Avp,
    },
    /// AVP flags inconsistent with its definition (3009 DIAMETER_INVALID_AVP_BITS).
    #[error("AVP {} has invalid flag bits {:#04x}", failed_avp.code, failed_avp.flags.0)]
    InvalidAvpBits {
        /// The offending AVP.
        failed_avp: Avp,
    },
    /// AVP with the M bit set that the receiver does not know
    /// (5001 DIAMETER_AVP_UNSUPPORTED).
    #[error("unsupported mandatory AVP {} (vendor {:?})", failed_avp.code, failed_avp.vendor_id)]
    AvpUnsupported {
        /// The offending AVP.
        failed_avp: Avp,
    },
    /// AVP whose value is not allowed (5004 DIAMETER_INVALID_AVP_VALUE).
    #[error("invalid value in AVP {} (vendor {:?}): {reason}", failed_avp.code, failed_avp.vendor_id)]
    InvalidAvpValue {
        /// The offending AVP.
        failed_avp: Avp,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Required AVP absent (5005 DIAMETER_MISSING_AVP). Failed-AVP is an example of
    /// the missing AVP with a zero-filled value (§7.5).
    #[error("missing AVP {name} ({}, vendor {:?})", failed_avp.code, failed_avp.vendor_id)]
    MissingAvp {
        /// Dictionary name of the AVP.
        name: &'static str,
        /// Example AVP.
        failed_avp: Avp,
    },
    /// AVP not allowed in this message (5008 DIAMETER_AVP_NOT_ALLOWED).
    #[error("AVP {} not allowed here", failed_avp.code)]
    AvpNotAllowed {
        /// The offending AVP.
        failed_avp: Avp,
    },
    /// AVP present more often than the command's ABNF allows
    /// (5009 DIAMETER_AVP_OCCURS_TOO_MANY_TIMES). Failed-AVP is the first extra one.
    #[error("AVP {} (vendor {:?}) occurs too many times", failed_avp.code, failed_avp.vendor_id)]
    AvpOccursTooManyTimes {
        /// The first occurrence beyond the allowed count.
        failed_avp: Avp,
    },
    /// Unknown command code for the application (3001 DIAMETER_COMMAND_UNSUPPORTED).
    #[error("unsupported command code {command_code}")]
    CommandUnsupported {
        /// Command code as received.
        command_code: u32,
    },
    /// Application not supported on this connection
    /// (3007 DIAMETER_APPLICATION_UNSUPPORTED).
    #[error("unsupported application {application_id}")]
    ApplicationUnsupported {
        /// Application-ID as received.
        application_id: u32,
    },
}

impl DecodeError {
    /// The Result-Code to answer with (RFC 6733 §7.1).
    pub fn result_code(&self) -> ResultCode {
        match self {
            DecodeError::UnsupportedVersion(_) => ResultCode::UnsupportedVersion,
            DecodeError::InvalidMessageLength { .. } | DecodeError::MessageTooLarge { .. } => {
                ResultCode::InvalidMessageLength
            }
            DecodeError::InvalidHdrBits { .. } => ResultCode::InvalidHdrBits,
            DecodeError::InvalidAvpLength { .. } => ResultCode::InvalidAvpLength,
            DecodeError::InvalidAvpBits { .. } => ResultCode::InvalidAvpBits,
            DecodeError::AvpUnsupported { .. } => ResultCode::AvpUnsupported,
            DecodeError::InvalidAvpValue { .. } => ResultCode::InvalidAvpValue,
            DecodeError::MissingAvp { .. } => ResultCode::MissingAvp,
            DecodeError::AvpNotAllowed { .. } => ResultCode::AvpNotAllowed,
            DecodeError::AvpOccursTooManyTimes { .. } => ResultCode::AvpOccursTooManyTimes,
            DecodeError::CommandUnsupported { .. } => ResultCode::CommandUnsupported,
            DecodeError::ApplicationUnsupported { .. } => ResultCode::ApplicationUnsupported,
        }
    }

    /// The AVP to put in Failed-AVP (RFC 6733 §7.5), if the error concerns one.
    pub fn failed_avp(&self) -> Option<&Avp> {
        match self {
            DecodeError::InvalidAvpLength { failed_avp, .. }
            | DecodeError::InvalidAvpBits { failed_avp }
            | DecodeError::AvpUnsupported { failed_avp }
            | DecodeError::InvalidAvpValue { failed_avp, .. }
            | DecodeError::MissingAvp { failed_avp, .. }
            | DecodeError::AvpNotAllowed { failed_avp }
            | DecodeError::AvpOccursTooManyTimes { failed_avp } => Some(failed_avp),
            _ => None,
        }
    }
}

/// Why a message could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// An AVP or the whole message exceeds the 24-bit length field.
    #[error("{what} of {length} bytes does not fit a 24-bit length")]
    TooLong {
        /// "AVP" or "message".
        what: &'static str,
        /// Length that did not fit.
        length: usize,
    },
}
