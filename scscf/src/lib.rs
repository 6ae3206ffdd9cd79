//! The S-CSCF role (TS 24.229 §5.4): registrar and authenticator for IMS-AKA
//! (RFC 3310, TS 33.203) and SIP Digest (RFC 2617), Cx client side (TS 29.228 MAR/SAR,
//! RTR), and notifier of the reg event package (RFC 3680).
//!
//! # Layout
//! - SIP itself (parsing, building, typed headers, transport, transactions) comes from
//!   `ims_sip_core` and `ims_sip_transport`.
//! - [`digest`], [`auth`]: digest arithmetic, Authorization / WWW-Authenticate.
//! - [`cx`]: the Cx requests the S-CSCF sends, behind the object-safe [`cx::Cx`] trait.
//! - [`model`], [`core`], [`registrar`], [`notifier`], [`reginfo`]: the sans-I/O core.
//! - [`store`]: sqlx persistence (SQLite default, PostgreSQL by URL) with a batching writer.
//! - [`service`]: the tokio SIP service [`Scscf`] on the shared transaction layer.

pub mod auth;
pub mod core;
pub mod cx;
pub mod digest;
pub mod error;
pub mod hss;
pub mod model;
pub mod node;
pub mod notifier;
pub mod reginfo;
pub mod registrar;
pub mod service;
pub mod settings;
pub mod store;
pub mod testutil;

#[cfg(test)]
mod core_tests;
#[cfg(test)]
mod overload_tests;

pub use crate::core::{Core, Outcome};
pub use crate::cx::{
    AuthScheme, AuthVector, Cx, CxError, MarRequest, SarAnswer, SarRequest, ServerAssignmentType,
};
pub use crate::error::ScscfError;
pub use crate::notifier::{Notify, RtrReason};
pub use crate::service::{Scscf, ScscfHandle, ServiceError, SipTimers};
pub use crate::settings::Settings;
pub use crate::store::Store;
