//! Why one UE failed, in words a lab user can act on.

use std::time::Duration;

use crate::aka::NonceError;
use crate::digest::ChallengeError;
use crate::secagree::ServerError;

/// Failure of one UE's procedure.
#[derive(Debug, thiserror::Error)]
pub enum UeError {
    /// A socket operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was attempted.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// No final response in time.
    #[error("no {expected} within {} s {place}", .after.as_secs_f32())]
    Timeout {
        /// What was awaited ("200", "response to the initial REGISTER", …).
        expected: String,
        /// Where it was awaited ("on protected port 10.45.0.2:31800 …").
        place: String,
        /// How long.
        after: Duration,
    },
    /// A final response other than the expected one.
    #[error("{status} {reason} to the {stage}{}", .warning.as_ref().map(|w| format!(" (Warning: {w})")).unwrap_or_default())]
    Rejected {
        /// `initial REGISTER`, `protected REGISTER`, …
        stage: &'static str,
        /// Status code.
        status: u16,
        /// Reason phrase.
        reason: String,
        /// Warning header, if any.
        warning: Option<String>,
    },
    /// The 401 carried no `Security-Server`.
    #[error("401 without Security-Server: the P-CSCF did not set up IPsec for this UE")]
    NoSecurityServer,
    /// The `Security-Server` is unusable.
    #[error("{0}")]
    SecurityServer(#[from] ServerError),
    /// The 401 carried no usable challenge.
    #[error("401 without a usable Digest challenge: {0}")]
    Challenge(#[from] ChallengeError),
    /// The nonce is not RAND ‖ AUTN.
    #[error("401 nonce is not an AKA nonce: {0}")]
    Nonce(#[from] NonceError),
    /// `ck=`/`ik=` reached the UE.
    #[error("the 401 reaching the UE still carries ck=/ik=: the P-CSCF must strip them (TS 33.203 §7.2)")]
    CkIkLeaked,
    /// MAC-A did not verify.
    #[error("AUTN MAC mismatch: K/OP differ from the HSS (the network failed authentication)")]
    MacFailure,
    /// Still a synchronisation failure after sending AUTS.
    #[error("SQN still not fresh after re-synchronisation with AUTS (SQN {sqn:#x} <= SQN_MS {sqn_ms:#x})")]
    ResyncFailed {
        /// The SQN received.
        sqn: u64,
        /// The USIM's SQN_MS.
        sqn_ms: u64,
    },
    /// The SAs could not be planned.
    #[error("cannot plan the UE's SAs: {0}")]
    Plan(#[from] ims_ipsec::PlanError),
    /// The kernel refused the SAs.
    #[error("cannot install the UE's SAs: {0}")]
    Store(#[from] ims_ipsec::StoreError),
    /// No reg-event NOTIFY.
    #[error("registered, but no reg-event NOTIFY arrived at the UE within {} s", .0.as_secs_f32())]
    NoNotify(Duration),
    /// The response could not be understood.
    #[error("{0}")]
    Protocol(String),
}

impl UeError {
    /// A short category for the summary (same text for the same kind of failure).
    pub fn category(&self) -> String {
        match self {
            UeError::Io { what, .. } => format!("I/O: {what}"),
            UeError::Timeout {
                expected,
                place,
                after,
            } => {
                format!(
                    "no {expected} within {} s {}",
                    after.as_secs_f32(),
                    strip_numbers(place)
                )
            }
            UeError::Rejected {
                stage,
                status,
                reason,
                ..
            } => format!("{status} {reason} to the {stage}"),
            other => other.to_string(),
        }
    }
}

fn strip_numbers(s: &str) -> String {
    // "on protected port 10.45.0.2:31800" -> "on protected port" for grouping.
    s.split_whitespace()
        .filter(|w| {
            !w.chars()
                .next()
                .is_some_and(|c| c.is_ascii_digit() || c == '[')
        })
        .collect::<Vec<_>>()
        .join(" ")
}
