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
//!
//! # Client (S-CSCF / I-CSCF side)
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use ims_hss_client::*;
//!
//! let cfg = CxClientConfig::new(
//!     vec!["127.0.0.1:3868".into(), "127.0.0.2:3868".into()], // failover order
//!     "scscf.ims.test", "ims.test", "ims.test");
//! let cx = CxClient::start(cfg, None); // Some(handler) to receive RTR/PPR
//! cx.wait_ready(Duration::from_secs(5)).await?;
//! let maa = cx
//!     .mar(MultimediaAuthRequest::new("alice@ims.test", "sip:alice@ims.test",
//!         "sip:scscf.ims.test", SipAuthScheme::DigestAkaV1Md5, 1))
//!     .await?;
//! match maa.outcome {
//!     CxOutcome::Success => { /* maa.sip_auth_data_items[0].authenticate = RAND‖AUTN */ }
//!     CxOutcome::Experimental(ExperimentalResultCode::UserUnknown) => { /* 403/404 */ }
//!     other => { let _ = other; }
//! }
//! # Ok(()) }
//! ```
//!
//! # Server (HSS side)
//!
//! Decode with `XxxRequest::from_message`, answer with `XxxAnswer::to_message(&request)`,
//! or `CxDecodeError::to_answer` for malformed requests (5005, 5009, 5001, 3001…),
//! inside an [`ims_diameter::transport::RequestHandler`] given to
//! [`ims_diameter::transport::Server`].

pub mod client;
pub mod dictionary;
pub mod messages;

pub use client::{CxClient, CxClientConfig, CxError, CxEventHandler, HssClient, PeerSelection};
pub use dictionary::{
    ExperimentalResultCode, ReasonCode, ServerAssignmentType, SipAuthScheme, UserAuthorizationType,
};
pub use messages::*;
