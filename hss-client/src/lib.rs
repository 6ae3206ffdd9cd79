//! Cx (3GPP TS 29.228 procedures, TS 29.229 protocol) over `ims-diameter`.
//!
//! # Layout
//!
//! - [`dictionary`]: Cx command codes, AVP codes and flags, enumerations and
//!   Experimental-Result codes (TS 29.229 §6.1–§6.3), shared with the HSS.
//! - [`messages`]: typed UAR/UAA, MAR/MAA, SAR/SAA, LIR/LIA, RTR/RTA, PPR/PPA with
//!   `to_message`/`from_message` in both directions; outcomes as [`messages::CxOutcome`].
//! - [`client`]: [`client::CxClient`] over one or more HSS peers with failover, typed
//!   async calls, and [`client::CxEventHandler`] for HSS-initiated RTR/PPR;
//!   [`HssClient`], the object-safe trait the CSCFs depend on.

pub mod client;
pub mod dictionary;
pub mod messages;

pub use client::{CxClient, CxClientConfig, CxError, CxEventHandler, HssClient, PeerSelection};
pub use dictionary::{
    ExperimentalResultCode, ReasonCode, ServerAssignmentType, SipAuthScheme, UserAuthorizationType,
};
pub use messages::*;
