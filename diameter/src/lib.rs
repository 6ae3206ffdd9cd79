//! Diameter base protocol (RFC 6733) for the IMS core.
//!
//! # Layout
//!
//! - [`codec`]: sans-I/O message codec. Header and AVP buffer views (RFC 6733 §3,
//!   §4), typed AVP data (§4.2, §4.3), a stream framer, answer builders (§6.2) and
//!   the mapping of decode errors to Result-Code values (§7.1) with Failed-AVP (§7.5).
//!   Unknown AVPs are kept verbatim and re-encoded byte for byte.
//! - [`dictionary`]: base protocol AVP and command codes (RFC 6733 §4.5, §3.1).
//! - [`peer`]: sans-I/O peer state machine: capabilities exchange (CER/CEA, §5.3),
//!   watchdog (DWR/DWA, §5.5 and RFC 3539 §3.4), disconnection (DPR/DPA, §5.4),
//!   driven by `now: Instant` passed in by the caller.
//! - [`transport`]: thin tokio TCP transport over the two: [`transport::Server`]
//!   accepting many peers, [`transport::PeerHandle`] for requests with many in flight
//!   per connection, client connect with reconnection and backoff.
//!
//! The crate knows no Diameter application; Cx lives in `ims-hss-client`.
//!
//! Why our own stack: the `diameter` crate (0.7.1) has closed command/application
//! enums, rejects unknown AVPs (RFC 6733 §4.1 says to ignore them unless the M bit is
//! set) and has no peer state machine.

pub mod codec;
pub mod dictionary;
pub mod peer;
pub mod transport;

pub use codec::{
    Avp, AvpDef, AvpFlags, AvpSet, CommandFlags, DecodeError, EncodeError, Frame, Header, Message,
    ResultCode,
};
