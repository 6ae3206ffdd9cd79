//! HSS-initiated Cx requests (TS 29.228 §6.1.3 RTR, §6.1.6 PPR), as a trait the REST API
//! calls, so the API is testable without a Diameter stack. [`crate::cx`] implements it
//! by sending to the S-CSCF connected with the Origin-Host the subscriber's SAR came from.

use async_trait::async_trait;

/// Deregistration-Reason Reason-Code (TS 29.229 §6.3.17).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReasonCode {
    /// 0 PERMANENT_TERMINATION.
    PermanentTermination,
    /// 1 NEW_SERVER_ASSIGNED.
    NewServerAssigned,
    /// 2 SERVER_CHANGE.
    ServerChange,
    /// 3 REMOVE_S-CSCF.
    RemoveScscf,
}

impl ReasonCode {
    /// The enumerated value.
    pub fn value(self) -> u32 {
        match self {
            Self::PermanentTermination => 0,
            Self::NewServerAssigned => 1,
            Self::ServerChange => 2,
            Self::RemoveScscf => 3,
        }
    }
}

/// An RTR to send.
#[derive(Debug, Clone)]
pub struct RtrRequest {
    /// Destination-Host: Origin-Host of the serving S-CSCF.
    pub destination_host: String,
    /// User-Name (IMPI).
    pub impi: String,
    /// Public-Identity values (empty: all of the IMPI's).
    pub impus: Vec<String>,
    /// Reason-Code.
    pub reason: ReasonCode,
    /// Reason-Info (text for the user).
    pub reason_info: String,
}

/// A PPR to send.
#[derive(Debug, Clone)]
pub struct PprRequest {
    /// Destination-Host: Origin-Host of the serving S-CSCF.
    pub destination_host: String,
    /// User-Name (IMPI).
    pub impi: String,
    /// User-Data (IMSSubscription XML).
    pub user_data: String,
}

/// The answer's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushOutcome {
    /// Result-Code, or the Experimental-Result-Code.
    pub code: u32,
    /// Whether `code` came from Experimental-Result.
    pub experimental: bool,
}

impl PushOutcome {
    /// 2xxx.
    pub fn is_success(&self) -> bool {
        (2000..3000).contains(&self.code)
    }
}

/// Why a push could not be done.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PushError {
    /// No Diameter connection to that S-CSCF.
    #[error("S-CSCF {0:?} is not connected")]
    NotConnected(String),
    /// No answer in time.
    #[error("no answer from {0:?} in time")]
    Timeout(String),
    /// Sending failed or the answer was unusable.
    #[error("{0}")]
    Failed(String),
}

/// Sends HSS-initiated Cx requests.
#[async_trait]
pub trait CxPush: Send + Sync {
    /// Registration-Termination-Request.
    async fn registration_termination(&self, req: RtrRequest) -> Result<PushOutcome, PushError>;
    /// Push-Profile-Request.
    async fn push_profile(&self, req: PprRequest) -> Result<PushOutcome, PushError>;
}
