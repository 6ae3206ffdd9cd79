//! Sans-I/O Diameter codec (RFC 6733 §3 header, §4 AVPs).
//!
//! Bytes from the wire are read through buffer views ([`HeaderBuffer`],
//! [`AvpBuffer`]) whose lengths are checked before any field is used, then turned
//! into an owned [`Message`] of [`Avp`]s. AVP data is kept as raw bytes (`Bytes`,
//! slices of the received buffer, no copy per AVP), so an AVP this code does not
//! know survives a decode/encode round trip unchanged; typed getters
//! ([`Avp::as_u32`], [`Avp::as_grouped`], ...) interpret the data on demand.
//!
//! Errors are [`DecodeError`]s that know their RFC 6733 §7.1 Result-Code and the
//! Failed-AVP (§7.5) to report; [`error_answer_for_raw`] builds the answer for a
//! request that could not be decoded.
//!
//! No tokio, no sockets, no clocks here.

pub(crate) mod avp;
mod avp_set;
mod error;
mod framer;
mod header;
mod message;
mod result_code;

#[cfg(test)]
mod tests;

pub use avp::{Avp, AvpBuffer, AvpDef, AvpFlags, AvpType, AVP_HEADER_LEN, AVP_VENDOR_HEADER_LEN};
pub use avp_set::AvpSet;
pub use error::{DecodeError, EncodeError};
pub use framer::{check, check_with_limit, Frame, DEFAULT_MAX_MESSAGE_LEN};
pub use header::{CommandFlags, Header, HeaderBuffer, HEADER_LEN};
pub use message::{error_answer_for_raw, Message};
pub use result_code::ResultCode;
