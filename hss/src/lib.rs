//! The HSS of the IMS core: Diameter Cx server (3GPP TS 29.228/29.229), subscriber store
//! (sqlx: SQLite by default, PostgreSQL by URL), Milenage vectors (TS 33.102, TS 35.206)
//! and REST/CLI provisioning.
//!
//! # Layout
//! - [`milenage`]: key types, AUTN/AUTS, authentication vectors.
//! - [`store`]: subscriber model, SQL store, auth cache and SQN allocation.
//! - [`service`]: the Cx procedures (UAR, MAR, SAR, LIR) as pure logic over the store.
//! - [`push`]: HSS-initiated RTR/PPR as a trait.
//! - [`api`]: the REST provisioning API (axum) and its OpenAPI description.

pub mod api;
pub mod cli;
pub mod milenage;
pub mod push;
pub mod service;
pub mod settings;
pub mod store;

pub use settings::HssSettings;
pub mod cx;
pub mod node;

pub use node::{run, start, HssError, RunningHss};
