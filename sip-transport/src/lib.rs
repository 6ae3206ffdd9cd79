//! SIP transports on tokio (RFC 3261 §18) and the driver of the transaction layer
//! (RFC 3261 §17), on top of `ims-sip-core`.
//!
//! - UDP sockets and TCP listeners on configured addresses (IPv4 and IPv6), plus
//!   ports bound at run time (IPsec protected ports, TS 33.203 §7) that can be the
//!   source of sent messages ([`Target::from_local`]).
//! - Receiving: each message is parsed, the top Via of a request gets `received` /
//!   `rport` (RFC 3261 §18.2.1, RFC 3581 §4), and it goes to an [`IncomingHandler`]
//!   as an [`Incoming`]. Unparsable requests get 400/505 (built from whatever could be
//!   indexed) or are dropped and logged. TCP is framed on Content-Length; a framing
//!   error closes the connection; `CRLFCRLF` keep-alives get `CRLF` (RFC 5626 §3.5.1).
//! - Sending: requests to a [`Target`], reusing an open TCP connection to the same
//!   address — including connections the peer opened (RFC 5923 spirit); responses
//!   back along the request's [`Flow`] ([`TransportLayer::send_response`]).
//!   [`transport_for_size`] is the RFC 3261 §18.1.1 size rule.
//! - Connection table with a limit and an idle timeout.
//! - [`transaction`]: client and server transactions on tokio timers.
//! - Every log line about a message carries its `call_id`.
//!
//! # Layout
//! - [`flow`] — [`Flow`], [`Target`], [`Incoming`], [`ConnectionId`].
//! - [`layer`] — [`TransportLayer`]. `udp`, `tcp`, `conn`, `sockets`: its parts.
//! - [`via`] — Via stamping and the response address.
//! - [`resolve`] — SIP URI → [`Target`]; whether a URI names a local socket.
//! - [`handler`] — [`IncomingHandler`], [`handler::channel`].
//! - [`transaction`] — [`transaction::TransactionLayer`].
//! - [`overload`] — admission of new requests, 503 + Retry-After past a limit.

//! # Use from a role
//!
//! ```no_run
//! use std::sync::Arc;
//! use ims_sip_core::{builder::ResponseBuilder, StatusCode};
//! use ims_sip_transport::transaction::{TransactionLayer, TransactionOptions};
//! use ims_sip_transport::{channel, Target};
//! # async fn demo(cfg: ims_config::IcscfConfig) -> Result<(), Box<dyn std::error::Error>> {
//! let (upper, mut rx) = channel(4096);
//! let sip = TransactionLayer::bind(&cfg.sip, &cfg.timers, TransactionOptions::default(), Arc::new(upper)).await?;
//! while let Some(req) = rx.recv().await {
//!     // A request in its server transaction (retransmissions never show up here).
//!     let resp = ResponseBuilder::new(&req.message, StatusCode::OK).to_tag("x").build_message()?;
//!     sip.respond(&req, &resp).await?;
//!     // Forwarding it: a client transaction (UDP retransmissions, Timer F → Err(Timeout)).
//!     let mut e = req.message.edit();
//!     e.prepend("Via", format!("SIP/2.0/UDP 127.0.0.1:5070;branch={}", ims_sip_core::builder::new_branch()));
//!     e.decrement_max_forwards()?;
//!     let answer = sip.request(e.finish_message()?, Target::udp("127.0.0.1:5080".parse()?)).await;
//! #   let _ = answer;
//! }
//! # Ok(()) }
//! ```

#![deny(missing_docs)]

mod conn;
pub mod error;
pub mod flow;
pub mod handler;
pub mod layer;
pub mod options;
pub mod overload;
pub mod resolve;
mod sockets;
mod tcp;
pub mod transaction;
mod udp;
pub mod via;

pub use error::{Result, TransportError};
pub use flow::{transport_for_size, ConnectionId, Flow, Incoming, Target, Transport};
pub use handler::{channel, ChannelHandler, IncomingHandler};
pub use layer::TransportLayer;
pub use options::TransportOptions;

use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Locks, ignoring poisoning (the data stays consistent: no code panics while
/// holding these locks on purpose, and a panic elsewhere must not stop the node).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn read<T>(m: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn write<T>(m: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(|e| e.into_inner())
}
