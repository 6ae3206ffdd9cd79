//! Typed Cx messages (TS 29.229 §6.1) with `to_message`/`from_message` for requests
//! and answers, so the client and the HSS use the same types in both directions.
//!
//! Every message carries Session-Id, Vendor-Specific-Application-Id {Vendor-Id
//! 10415, Auth-Application-Id 16777216}, Auth-Session-State = NO_STATE_MAINTAINED
//! (1), Origin-Host/Realm and, in requests, Destination-Realm and an optional
//! Destination-Host (TS 29.229 §6.1, RFC 6733 §6). Answers carry their outcome as
//! a [`CxOutcome`], never a bare integer.
//!
//! `from_message` on a request applies the command's ABNF: a missing `{AVP}` is
//! 5005, a repeated single AVP 5009, an unknown AVP with the M bit 5001 (RFC 6733
//! §7.1.5), wrong command or application 3001/3007. Answers are decoded leniently
//! (only what is needed to read the outcome is required) to interoperate with
//! HSSs that leave out AVPs.

mod common;
mod lir;
mod mar;
mod ppr;
mod rtr;
mod sar;
mod types;
mod uar;

#[cfg(test)]
mod tests;

pub use common::{AnswerRouting, CxDecodeError, CxOutcome, RequestRouting};
pub use lir::{LocationInfoAnswer, LocationInfoRequest};
pub use mar::{MultimediaAuthAnswer, MultimediaAuthRequest};
pub use ppr::{PushProfileAnswer, PushProfileRequest};
pub use rtr::{RegistrationTerminationAnswer, RegistrationTerminationRequest};
pub use sar::{ServerAssignmentAnswer, ServerAssignmentRequest};
pub use types::{
    ChargingInformation, DeregistrationReason, ServerCapabilities, SipAuthDataItem,
    SipDigestAuthenticate,
};
pub use uar::{UserAuthorizationAnswer, UserAuthorizationRequest};
