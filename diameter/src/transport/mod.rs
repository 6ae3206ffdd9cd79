//! Thin tokio TCP transport over [`crate::codec`] and [`crate::peer`], usable by
//! both ends of a Diameter application (RFC 6733 §2.1: TCP on port 3868).
//!
//! - [`Server`] accepts many peers, answers CER/DWR/DPR itself (through the
//!   [`crate::peer::Peer`] state machine), dispatches other requests concurrently to
//!   a [`RequestHandler`], answers undecodable requests with the RFC 6733 §7 error
//!   (5014, 5015, 3008, ...) and keeps the connection unless the stream cannot be
//!   framed any more; [`ServerHandle::peer_by_host`] gives a [`PeerHandle`] to send
//!   requests to a connected peer (e.g. RTR/PPR from the HSS to an S-CSCF).
//! - [`connect`] opens a client connection with CER, runs the watchdog, and
//!   reconnects with exponential backoff; it returns a [`PeerHandle`] at once.
//! - [`PeerHandle::request`] assigns Hop-by-Hop and End-to-End identifiers (RFC
//!   6733 §3), keeps many requests in flight on one connection matched by
//!   Hop-by-Hop identifier, and times each out.
//!
//! Each connection is two tasks: a driver (reads, frames with
//! [`crate::codec::check`] over one `BytesMut`, feeds the peer state machine, runs
//! its timers) and a writer that drains a channel of encoded messages and writes
//! them in batches (one syscall for many messages under load).
//!
//! Limits: the write queue is unbounded and every incoming request gets its own
//! task; what bounds them is the per-request timeout of the sender and the
//! message size limit ([`crate::codec::DEFAULT_MAX_MESSAGE_LEN`]). Only TCP is
//! implemented (no SCTP, no TLS/DTLS of RFC 6733 §13).

mod client;
mod connection;
mod handle;
mod server;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::time::Duration;

pub use client::{connect, ClientConfig};
pub use handle::{PeerHandle, PeerStatus};
pub use server::{Server, ServerConfig, ServerHandle};

use crate::codec::{EncodeError, Message};
pub use crate::peer::{ApplicationId, LocalNode, PeerTimers, RemoteCapabilities};

/// What a request handler knows about the peer that sent the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// Remote socket address.
    pub remote_addr: SocketAddr,
    /// What the peer advertised in CER/CEA.
    pub capabilities: RemoteCapabilities,
}

impl PeerInfo {
    /// The peer's Origin-Host.
    pub fn origin_host(&self) -> &str {
        &self.capabilities.origin_host
    }
    /// The peer's Origin-Realm.
    pub fn origin_realm(&self) -> &str {
        &self.capabilities.origin_realm
    }
}

/// Handles application requests received from a peer; returns the answer.
///
/// The transport copies the request's Hop-by-Hop and End-to-End identifiers and
/// Command Code into the answer and clears the R bit, so
/// [`Message::answer_to`] plus the AVPs is all a handler needs. Handlers run
/// concurrently, one task per request.
#[async_trait::async_trait]
pub trait RequestHandler: Send + Sync + 'static {
    /// Answers `request` from `peer`.
    async fn handle(&self, request: Message, peer: &PeerInfo) -> Message;
}

/// Transport errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No open connection to the peer right now.
    #[error("peer not connected")]
    NotConnected,
    /// No answer within the request timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The connection went down (or SUSPECT) while the request was pending.
    #[error("connection lost before the answer arrived")]
    ConnectionLost,
    /// The request could not be encoded.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// Socket error.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Result alias of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;
