//! SIP message model, zero-copy parser and printer, URIs, typed headers, message editing
//! and sans-I/O transaction state machines (RFC 3261 §7, §8, §16–§20, §25; RFC 3966
//! tel URIs; RFC 5626 §3.5.1 keep-alives; the IMS headers of RFC 3325, 3327, 3455, 3608,
//! 7315 and TS 24.229).
//!
//! No tokio, no sockets, no clocks: time comes in as `now: Instant` arguments, and the
//! state machines return actions for a driver (`ims-sip-transport`) to carry out.
//!
//! # Layout
//!
//! - [`message`]: [`Message`], a zero-copy index over the received `Bytes` (start line,
//!   header name/value/line ranges, body). [`Message::parse`] (datagram rules + the
//!   validation below) and [`Message::index`] (framing only). Printing an unmodified
//!   message is `msg.as_bytes()`: the octets received.
//! - [`error`]: [`ParseError`] (with [`ParseError::response_status`]: 400/505/None and
//!   [`ParseError::message`] to build the answer), [`HeaderError`], [`EditError`].
//! - [`validate`]: what `Message::parse` checks (RFC 4475) and
//!   [`validate::check_request_for_proxy`] (416/420/483).
//! - [`framing`]: TCP/TLS stream framing on Content-Length, CRLF keep-alives.
//! - [`header_name`]: [`HeaderName`] (compact forms mapped, case-insensitive).
//! - [`method`], [`status`]: [`Method`] (extension methods kept), [`StatusCode`].
//! - [`uri`]: [`Uri`] (`Sip`/`Tel`/`Other`), [`uri::SipUri`], [`uri::TelUri`],
//!   [`uri::Host`], §19.1.4 comparison.
//! - [`nameaddr`]: [`NameAddr`] (display name, URI, header params) and list parsing.
//! - [`params`], [`text`]: `;name=value` and Digest-style parameter lists, comma
//!   splitting that respects quotes and `<>`, quoting helpers (public for other header
//!   parsers such as the `ipsec` crate's Security-* headers).
//! - [`header`]: typed headers, one file each, trait [`header::TypedHeader`].
//! - [`edit`]: [`edit::Editor`] — proxy edits that copy untouched header lines byte
//!   for byte (prepend Via, remove top Via, pop Route, add Record-Route/Path, set/remove
//!   headers, Request-URI, Max-Forwards, body, strip a parameter).
//! - [`builder`]: [`builder::ResponseBuilder`], [`builder::RequestBuilder`],
//!   [`builder::new_branch`], [`builder::new_tag`], [`builder::new_call_id`].
//! - [`transaction`]: RFC 3261 §17 client/server, INVITE/non-INVITE machines
//!   ([`transaction::ClientNonInvite`], [`transaction::ClientInvite`],
//!   [`transaction::ServerNonInvite`], [`transaction::ServerInvite`]) driven by
//!   `handle_*(now, …)` / `handle_timeout(now)` / `poll_timeout()` / `poll_action()`,
//!   keyed by [`transaction::TransactionKey`]; ACK/CANCEL construction.

pub mod builder;
mod chars;
pub mod edit;
pub mod error;
pub mod framing;
pub mod header;
pub mod header_name;
pub mod message;
pub mod method;
pub mod nameaddr;
pub mod params;
mod parser;
pub mod status;
pub mod text;
pub mod transaction;
pub mod uri;
pub mod validate;

pub use error::{EditError, HeaderError, ParseError, ParseErrorKind};
pub use header_name::HeaderName;
pub use message::{HeaderRef, Message};
pub use method::Method;
pub use nameaddr::NameAddr;
pub use params::{Param, Params};
pub use status::StatusCode;
pub use uri::Uri;
