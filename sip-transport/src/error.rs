//! Errors of the transport and transaction layers.

use std::net::SocketAddr;

use crate::flow::Transport;

/// Why a message could not be sent, or a transaction ended without a response.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// No bound socket can send to this destination (wrong address family, or the
    /// requested local address is not bound).
    #[error("no {transport} socket to send from{} to {remote}", .local.map(|l| format!(" {l}")).unwrap_or_default())]
    NoSocket {
        /// The transport asked for.
        transport: Transport,
        /// The local address asked for.
        local: Option<SocketAddr>,
        /// The destination.
        remote: SocketAddr,
    },
    /// A UDP message larger than a datagram can carry.
    #[error("message of {0} bytes is too large for UDP")]
    TooLarge(usize),
    /// The connection table is full.
    #[error("connection limit reached ({0})")]
    ConnectionLimit(usize),
    /// Connecting timed out.
    #[error("TCP connect to {0} timed out")]
    ConnectTimeout(SocketAddr),
    /// The transport layer was shut down.
    #[error("transport layer shut down")]
    Shutdown,
    /// A socket error.
    #[error("{op} {remote}: {source}")]
    Io {
        /// What was attempted (`send`, `connect`, `bind`).
        op: &'static str,
        /// The peer (or local address for `bind`).
        remote: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Timer B or F fired: no final response within 64·T1 (RFC 3261 §17.1.1.2,
    /// §17.1.2.2). A proxy answers 408 upstream.
    #[error("transaction timed out (no final response)")]
    Timeout,
    /// The message cannot start a transaction (no Via branch, ACK, …).
    #[error("cannot start a transaction: {0}")]
    BadRequest(&'static str),
}

impl TransportError {
    /// True when the peer could not be reached at all (connection refused, timeout…):
    /// an RFC 3261 §8.1.3.1 transport error, treated like a 503 from that peer.
    pub fn is_transport_failure(&self) -> bool {
        !matches!(
            self,
            TransportError::BadRequest(_) | TransportError::TooLarge(_)
        )
    }
}

/// Result alias.
pub type Result<T, E = TransportError> = std::result::Result<T, E>;
