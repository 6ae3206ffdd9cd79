//! Where a message came from and where one goes: [`Flow`] (transport, local and remote
//! address, TCP connection — the "flow" of RFC 5626 §3.1), [`Target`] for new requests,
//! and [`Incoming`], a parsed message with its flow.

use std::fmt;
use std::net::SocketAddr;
use std::time::Instant;

use ims_sip_core::Message;

pub use ims_config::Transport;

/// Identifies one TCP connection for as long as the transport layer lives (never reused).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(pub u64);

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn#{}", self.0)
    }
}

/// The path a message took: what a response or a later request back must reuse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Flow {
    /// UDP or TCP.
    pub transport: Transport,
    /// Our socket (for IPsec: the protected port the UE talks to).
    pub local: SocketAddr,
    /// The peer's address and port as seen on the wire.
    pub remote: SocketAddr,
    /// The TCP connection (None for UDP).
    pub connection: Option<ConnectionId>,
}

impl fmt::Display for Flow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} <-> {}", self.transport, self.local, self.remote)?;
        if let Some(c) = self.connection {
            write!(f, " {c}")?;
        }
        Ok(())
    }
}

/// Where to send a new request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Target {
    /// UDP or TCP.
    pub transport: Transport,
    /// Destination address and port.
    pub remote: SocketAddr,
    /// Send from this local address/port (must be bound: a listener or an extra port
    /// added with [`crate::TransportLayer::bind_udp`]/`bind_tcp`). For TCP, a new
    /// connection is opened from this port if none exists from it. None: any socket of
    /// the right address family.
    pub local: Option<SocketAddr>,
    /// Use this TCP connection if it is still open.
    pub connection: Option<ConnectionId>,
}

impl Target {
    /// UDP to `remote`.
    pub fn udp(remote: SocketAddr) -> Target {
        Target {
            transport: Transport::Udp,
            remote,
            local: None,
            connection: None,
        }
    }

    /// TCP to `remote` (an open connection to it is reused, RFC 5923 spirit).
    pub fn tcp(remote: SocketAddr) -> Target {
        Target {
            transport: Transport::Tcp,
            ..Target::udp(remote)
        }
    }

    /// `transport` to `remote`.
    pub fn new(transport: Transport, remote: SocketAddr) -> Target {
        Target {
            transport,
            ..Target::udp(remote)
        }
    }

    /// Send from this local socket.
    pub fn from_local(mut self, local: SocketAddr) -> Target {
        self.local = Some(local);
        self
    }

    /// Prefer this connection.
    pub fn on_connection(mut self, id: ConnectionId) -> Target {
        self.connection = Some(id);
        self
    }
}

impl From<Flow> for Target {
    /// Back along a flow: same transport, same local socket, same connection.
    fn from(f: Flow) -> Target {
        Target {
            transport: f.transport,
            remote: f.remote,
            local: Some(f.local),
            connection: f.connection,
        }
    }
}

/// A message received and parsed. Requests have had their top Via stamped with
/// `received` and `rport` (RFC 3261 §18.2.1, RFC 3581 §4).
#[derive(Clone, Debug)]
pub struct Incoming {
    /// The message.
    pub message: Message,
    /// The sender's address and port.
    pub source: SocketAddr,
    /// Our socket it arrived on.
    pub local: SocketAddr,
    /// UDP or TCP.
    pub transport: Transport,
    /// The TCP connection it arrived on.
    pub connection: Option<ConnectionId>,
    /// When it was read from the socket.
    pub received_at: Instant,
    /// The server transaction key, once the transaction layer computed it (saves
    /// parsing the Via again when the response is sent).
    pub(crate) server_key: Option<ims_sip_core::transaction::TransactionKey>,
}

impl Incoming {
    /// The flow it arrived on (what [`crate::TransportLayer::send_response`] takes).
    pub fn flow(&self) -> Flow {
        Flow {
            transport: self.transport,
            local: self.local,
            remote: self.source,
            connection: self.connection,
        }
    }

    /// The Call-ID, "" when absent (for logs).
    pub fn call_id(&self) -> &str {
        self.message.call_id().unwrap_or("")
    }
}

/// RFC 3261 §18.1.1: a request larger than `udp_size_limit` (1300 bytes when the path
/// MTU is unknown) must go over a congestion-controlled transport. Returns the
/// transport to use for a request of `len` octets that would otherwise use `wanted`.
/// The caller writes the result into the Via before sending.
pub fn transport_for_size(len: usize, wanted: Transport, udp_size_limit: usize) -> Transport {
    if wanted == Transport::Udp && len > udp_size_limit {
        Transport::Tcp
    } else {
        wanted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_rule() {
        assert_eq!(
            transport_for_size(1300, Transport::Udp, 1300),
            Transport::Udp
        );
        assert_eq!(
            transport_for_size(1301, Transport::Udp, 1300),
            Transport::Tcp
        );
        assert_eq!(
            transport_for_size(9000, Transport::Tcp, 1300),
            Transport::Tcp
        );
    }

    #[test]
    fn target_from_flow() {
        let f = Flow {
            transport: Transport::Tcp,
            local: "127.0.0.1:5060".parse().unwrap(),
            remote: "127.0.0.1:40000".parse().unwrap(),
            connection: Some(ConnectionId(7)),
        };
        let t = Target::from(f);
        assert_eq!(t.local, Some(f.local));
        assert_eq!(t.connection, Some(ConnectionId(7)));
        assert_eq!(
            f.to_string(),
            "tcp 127.0.0.1:5060 <-> 127.0.0.1:40000 conn#7"
        );
    }
}
