//! A UE simulator for IMS labs and tests: registers like a handset — IMS-AKA with
//! Milenage (TS 33.102 §6.3, RFC 3310), sec-agree with its own ESP SAs (TS 33.203 §7,
//! RFC 3329), the protected REGISTER, reg-event (RFC 3680), re- and de-registration
//! (TS 24.229 §5.1.1) — for N subscribers at a chosen rate, with a failure reason per
//! UE. The `ue-sim` binary is the command-line front end.
//!
//! # Layout
//! - [`aka`]: the USIM (Milenage wrapper with zeroizing keys; AUTN check, AUTS).
//! - [`digest`]: `WWW-Authenticate` / `Authorization` for AKAv1-MD5.
//! - [`secagree`]: `Security-Client` offers in several handset styles; `Security-Server`.
//! - [`sipmsg`]: REGISTER / SUBSCRIBE building, answers to network requests.
//! - [`net`]: the UE's unprotected and protected sockets (UDP, TCP).
//! - [`ue`]: one UE's procedures ([`ue::Ue`]).
//! - [`runner`]: many UEs at a rate, with a [`runner::Summary`].
//! - [`subscribers`]: CSV or generated IMSI ranges.
//! - [`error`]: [`error::UeError`], the per-UE failure reasons.

pub mod aka;
pub mod digest;
pub mod error;
pub mod net;
pub mod runner;
pub mod secagree;
pub mod sipmsg;
pub mod subscribers;
pub mod ue;

pub use aka::{AkaOutcome, Challenge, SimKeys, Usim};
pub use error::UeError;
pub use runner::{run, RunConfig, RunIpsec, Summary};
pub use secagree::{HeaderStyle, UeSecParams};
pub use sipmsg::Transport;
pub use ue::{IpsecOptions, Subscriber, Ue, UeConfig};
