//! Errors of the S-CSCF core and their SIP final responses (TS 24.229 §5.4.1.2,
//! TS 29.228 §6.1.2/§6.3 result codes, RFC 3261 §21).

use crate::cx::CxError;

/// Which side a failure came from (STYLE item 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorSource {
    /// The request from the UE / P-CSCF.
    Downstream,
    /// The HSS.
    Upstream,
    /// This node.
    Internal,
}

/// Why a REGISTER or SUBSCRIBE was not served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScscfError {
    /// A header the request needs is absent or malformed.
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    /// Digest response did not verify or identities do not match.
    #[error("authentication failed: {0}")]
    AuthFailed(&'static str),
    /// Contact expiry below the minimum (RFC 3261 §10.3 step 6).
    #[error("interval too brief (min {min})")]
    IntervalTooBrief {
        /// Min-Expires to announce.
        min: u32,
    },
    /// Out-of-order REGISTER for a binding (RFC 3261 §10.3 step 7).
    #[error("out-of-order CSeq")]
    OutOfOrder,
    /// SUBSCRIBE for an event package other than `reg`.
    #[error("bad event package")]
    BadEvent,
    /// The subscribed identity is not registered here.
    #[error("identity not registered")]
    NotRegistered,
    /// In-dialog request for an unknown dialog.
    #[error("no such subscription")]
    NoSuchDialog,
    /// The HSS refused or failed.
    #[error("HSS: {0}")]
    Cx(#[from] CxError),
}

impl ScscfError {
    /// Which side failed.
    pub fn source_side(&self) -> ErrorSource {
        match self {
            ScscfError::Cx(_) => ErrorSource::Upstream,
            ScscfError::OutOfOrder => ErrorSource::Internal,
            _ => ErrorSource::Downstream,
        }
    }

    /// The SIP final response for this error: status code, reason phrase, and the
    /// `Retry-After` seconds to add (only for transient HSS trouble).
    ///
    /// HSS timeout/unreachable → `504 Server Time-out` (RFC 3261 §21.5.5: no timely answer
    /// from a server accessed to process the request) with `Retry-After`; DIAMETER_TOO_BUSY
    /// (3004) and other transient failures → `500` with `Retry-After`. Cx user errors
    /// (TS 29.228 §6.3: 5001 user unknown, 5002 identities don't match, 5003 not registered,
    /// 5004 roaming not allowed, 5006 scheme unsupported) → `403 Forbidden`
    /// (TS 24.229 §5.4.1.2.1 answers authentication failures with 403).
    pub fn to_sip_status(&self, retry_after: u32) -> (u16, &'static str, Option<u32>) {
        match self {
            ScscfError::BadRequest(_) => (400, "Bad Request", None),
            ScscfError::AuthFailed(_) => (403, "Forbidden", None),
            ScscfError::IntervalTooBrief { .. } => (423, "Interval Too Brief", None),
            ScscfError::OutOfOrder => (500, "Server Internal Error", None),
            ScscfError::BadEvent => (489, "Bad Event", None),
            ScscfError::NotRegistered => (403, "Forbidden", None),
            ScscfError::NoSuchDialog => (481, "Call/Transaction Does Not Exist", None),
            ScscfError::Cx(e) => match e {
                CxError::Timeout | CxError::Unreachable(_) => {
                    (504, "Server Time-out", Some(retry_after))
                }
                CxError::Experimental(5001..=5006) => (403, "Forbidden", None),
                CxError::Experimental(_) => (403, "Forbidden", None),
                CxError::ResultCode(3004) | CxError::ResultCode(3002) => {
                    (500, "Server Internal Error", Some(retry_after))
                }
                CxError::ResultCode(5001) => (403, "Forbidden", None),
                CxError::ResultCode(_) | CxError::BadAnswer(_) => {
                    (500, "Server Internal Error", Some(retry_after))
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sip_status_mapping() {
        let s = |e: ScscfError| e.to_sip_status(30);
        assert_eq!(
            s(CxError::Timeout.into()),
            (504, "Server Time-out", Some(30))
        );
        assert_eq!(s(CxError::Unreachable("x".into()).into()).0, 504);
        assert_eq!(
            s(CxError::Experimental(5001).into()),
            (403, "Forbidden", None)
        );
        assert_eq!(s(CxError::Experimental(5004).into()).0, 403);
        assert_eq!(s(CxError::Experimental(5006).into()).0, 403);
        assert_eq!(
            s(CxError::ResultCode(3004).into()),
            (500, "Server Internal Error", Some(30))
        );
        assert_eq!(s(CxError::BadAnswer("x".into()).into()).2, Some(30));
        assert_eq!(s(ScscfError::AuthFailed("x")).0, 403);
        assert_eq!(s(ScscfError::IntervalTooBrief { min: 60 }).0, 423);
        assert_eq!(s(ScscfError::BadEvent).0, 489);
        assert_eq!(s(ScscfError::NoSuchDialog).0, 481);
        assert_eq!(s(ScscfError::BadRequest("x")).0, 400);
        assert_eq!(
            ScscfError::from(CxError::Timeout).source_side(),
            ErrorSource::Upstream
        );
        assert_eq!(ScscfError::BadEvent.source_side(), ErrorSource::Downstream);
    }
}
