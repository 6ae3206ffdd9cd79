//! The I-CSCF's view of Cx (TS 29.228 §6.1.1 user registration status query, §6.1.4
//! location query) and how each Cx outcome becomes a SIP answer (TS 24.229 §5.3.1.2 for
//! REGISTER, §5.3.2.1 for terminating requests).
//!
//! Chosen answers (and why):
//! - a negative UAA (5001 user unknown, 5002 identities don't match, 5003 authorization
//!   rejected / identity not registered on de-registration, 5004 roaming not allowed) →
//!   **403 Forbidden** (TS 24.229 §5.3.1.2: "Upon receiving a negative response from the
//!   HSS, the I-CSCF shall send back a 403 (Forbidden) response").
//! - LIA 5001 user unknown → **404 Not Found**; LIA 5003 identity not registered →
//!   **480 Temporarily Unavailable** (TS 24.229 §5.3.2.1).
//! - The HSS did not answer within `diameter.request_timeout_ms` (or the forwarding
//!   budget of 60·T1, whichever ends first) → **504 Server Time-out** with `Retry-After`
//!   (RFC 3261 §21.5.5: no timely answer from a server it accessed).
//! - The HSS cannot be reached at all, is too busy, or answers with another error →
//!   **500 Server Internal Error** with `Retry-After` (RFC 3261 §21.5.1, §20.33).
//!   The UE/P-CSCF retries after that many seconds; the I-CSCF never hangs.

use std::future::Future;
use std::pin::Pin;

/// Seconds put in `Retry-After` when the HSS is unreachable or slow.
pub const HSS_RETRY_AFTER_S: u32 = 30;

/// User-Authorization-Type AVP (TS 29.229 §6.3.24).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserAuthorizationType {
    /// 0: REGISTRATION.
    Registration,
    /// 1: DE_REGISTRATION (Expires 0).
    DeRegistration,
    /// 2: REGISTRATION_AND_CAPABILITIES.
    RegistrationAndCapabilities,
}

/// A UAR as the I-CSCF asks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uar {
    /// User-Name: the IMPI.
    pub user_name: String,
    /// Public-Identity: the IMPU from To.
    pub public_identity: String,
    /// Visited-Network-Identifier (from P-Visited-Network-ID).
    pub visited_network: String,
    /// User-Authorization-Type.
    pub authorization_type: UserAuthorizationType,
}

/// Server-Capabilities AVP (TS 29.229 §6.3.4).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerCapabilities {
    /// Mandatory-Capability values.
    pub mandatory: Vec<u32>,
    /// Optional-Capability values.
    pub optional: Vec<u32>,
    /// Server-Name values listed inside the capabilities.
    pub server_names: Vec<String>,
}

/// A successful UAA or LIA (2001/2002/2003 …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assignment {
    /// Server-Name: the S-CSCF already assigned (or chosen by the HSS).
    ServerName(String),
    /// Server-Capabilities: the I-CSCF picks an S-CSCF.
    Capabilities(ServerCapabilities),
    /// Neither (some HSSs answer like this, FIELD-LESSONS item 10): use the fallback.
    Nothing,
}

/// Why a Cx query failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CxFailure {
    /// 5001 DIAMETER_ERROR_USER_UNKNOWN.
    #[error("user unknown (5001)")]
    UserUnknown,
    /// 5002 DIAMETER_ERROR_IDENTITIES_DONT_MATCH.
    #[error("identities don't match (5002)")]
    IdentitiesDontMatch,
    /// 5003 DIAMETER_ERROR_IDENTITY_NOT_REGISTERED.
    #[error("identity not registered (5003)")]
    IdentityNotRegistered,
    /// 5003 DIAMETER_AUTHORIZATION_REJECTED (base result code).
    #[error("authorization rejected (5003)")]
    AuthorizationRejected,
    /// 5004 DIAMETER_ERROR_ROAMING_NOT_ALLOWED.
    #[error("roaming not allowed (5004)")]
    RoamingNotAllowed,
    /// No answer within the request timeout.
    #[error("HSS did not answer in time")]
    Timeout,
    /// No HSS reachable, or DIAMETER_TOO_BUSY / UNABLE_TO_DELIVER.
    #[error("HSS unavailable: {0}")]
    Unavailable(String),
    /// Any other result code.
    #[error("HSS answered result code {0}")]
    Other(u32),
}

/// What the SIP side answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipAnswer {
    /// Status code.
    pub code: u16,
    /// Reason phrase.
    pub reason: &'static str,
    /// `Retry-After` seconds, if any.
    pub retry_after: Option<u32>,
}

/// Which procedure the query served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Procedure {
    /// REGISTER (UAR).
    Registration,
    /// Terminating initial request (LIR).
    Terminating,
}

impl CxFailure {
    /// The SIP answer for this failure (see the module docs for the reasoning).
    pub fn to_sip(&self, procedure: Procedure) -> SipAnswer {
        let a = |code, reason| SipAnswer {
            code,
            reason,
            retry_after: None,
        };
        match (self, procedure) {
            (CxFailure::Timeout, _) => SipAnswer {
                code: 504,
                reason: "Server Time-out (HSS)",
                retry_after: Some(HSS_RETRY_AFTER_S),
            },
            (CxFailure::Unavailable(_) | CxFailure::Other(_), _) => SipAnswer {
                code: 500,
                reason: "Server Internal Error (HSS unavailable)",
                retry_after: Some(HSS_RETRY_AFTER_S),
            },
            (CxFailure::UserUnknown, Procedure::Registration) => a(403, "Forbidden (user unknown)"),
            (CxFailure::IdentitiesDontMatch, Procedure::Registration) => {
                a(403, "Forbidden (identities don't match)")
            }
            (CxFailure::RoamingNotAllowed, Procedure::Registration) => {
                a(403, "Forbidden (roaming not allowed)")
            }
            (CxFailure::AuthorizationRejected, Procedure::Registration) => {
                a(403, "Forbidden (authorization rejected)")
            }
            (CxFailure::IdentityNotRegistered, Procedure::Registration) => {
                a(403, "Forbidden (identity not registered)")
            }
            (CxFailure::UserUnknown, Procedure::Terminating) => a(404, "Not Found"),
            (CxFailure::IdentityNotRegistered, Procedure::Terminating) => {
                a(480, "Temporarily Unavailable")
            }
            (
                CxFailure::IdentitiesDontMatch
                | CxFailure::RoamingNotAllowed
                | CxFailure::AuthorizationRejected,
                Procedure::Terminating,
            ) => a(403, "Forbidden"),
        }
    }
}

/// Boxed future returned by [`Cx`] methods.
pub type CxFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, CxFailure>> + Send + 'a>>;

/// The two Cx queries the I-CSCF makes; implemented over `ims_hss_client::HssClient`
/// and by test fakes.
pub trait Cx: Send + Sync {
    /// User-Authorization-Request (TS 29.228 §6.1.1).
    fn uar(&self, req: Uar) -> CxFuture<'_, Assignment>;
    /// Location-Info-Request for a public identity (TS 29.228 §6.1.4).
    fn lir(&self, public_identity: String) -> CxFuture<'_, Assignment>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_failures_are_403() {
        for f in [
            CxFailure::UserUnknown,
            CxFailure::IdentitiesDontMatch,
            CxFailure::RoamingNotAllowed,
            CxFailure::AuthorizationRejected,
            CxFailure::IdentityNotRegistered,
        ] {
            let a = f.to_sip(Procedure::Registration);
            assert_eq!(a.code, 403, "{f}");
            assert_eq!(a.retry_after, None);
        }
    }

    #[test]
    fn terminating_failures() {
        assert_eq!(
            CxFailure::UserUnknown.to_sip(Procedure::Terminating).code,
            404
        );
        assert_eq!(
            CxFailure::IdentityNotRegistered
                .to_sip(Procedure::Terminating)
                .code,
            480
        );
    }

    #[test]
    fn hss_trouble_is_5xx_with_retry_after() {
        let t = CxFailure::Timeout.to_sip(Procedure::Registration);
        assert_eq!((t.code, t.retry_after), (504, Some(HSS_RETRY_AFTER_S)));
        let u = CxFailure::Unavailable("no peer".into()).to_sip(Procedure::Terminating);
        assert_eq!((u.code, u.retry_after), (500, Some(HSS_RETRY_AFTER_S)));
        let o = CxFailure::Other(5012).to_sip(Procedure::Registration);
        assert_eq!(o.code, 500);
    }
}
