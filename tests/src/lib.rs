//! Test support for the end-to-end scenarios in `tests/`: starting the project's real
//! binaries as processes, driving SIPp (an independent SIP implementation), and a tiny
//! independent test UE that computes IMS-AKA with the `milenage` crate directly (not with
//! the project's own wrapper) for the cases SIPp cannot produce (AUTS re-synchronisation,
//! a wrong K).
//!
//! # Layout
//! - [`lab`]: the four roles as processes on a loopback net of their own.
//! - [`procs`]: find the workspace binaries, spawn them with logs, wait for ports.
//! - [`sipp`]: run SIPp scenarios and read its statistics.
//! - [`ue`]: the test UE (RFC 3310 AKAv1-MD5 over UDP).
//! - [`probe`]: is each subscriber still registered at the P- and S-CSCF (restart tests).
//! - [`reginfo`]: validate reg-event bodies against the RFC 3680 schema (xmllint).
//! - [`subscribers`]: subscriber key material SIPp can take (printable ASCII K/OP/AMF).

pub mod lab;
pub mod probe;
pub mod procs;
pub mod reginfo;
pub mod sipp;
pub mod subscribers;
pub mod ue;
