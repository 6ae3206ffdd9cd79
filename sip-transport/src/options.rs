//! Transport limits, from the `[sip]` section of a role's configuration.

use std::time::Duration;

use ims_config::SipConfig;

/// Limits and timeouts of a [`crate::TransportLayer`].
#[derive(Clone, Debug)]
pub struct TransportOptions {
    /// Largest message accepted; a TCP stream announcing more is closed.
    pub max_message_size: usize,
    /// RFC 3261 §18.1.1 threshold (see [`crate::transport_for_size`]).
    pub udp_size_limit: usize,
    /// Close a TCP connection after this long without traffic.
    pub tcp_idle_timeout: Duration,
    /// Most TCP connections at once (accepted + opened).
    pub tcp_max_connections: usize,
    /// Give up connecting after this long.
    pub tcp_connect_timeout: Duration,
    /// SO_RCVBUF asked for on UDP sockets (bursts of thousands of REGISTERs).
    pub udp_recv_buffer: usize,
}

impl Default for TransportOptions {
    fn default() -> Self {
        TransportOptions::from_config(&SipConfig::default())
    }
}

impl TransportOptions {
    /// From `[sip]`.
    pub fn from_config(sip: &SipConfig) -> Self {
        TransportOptions {
            max_message_size: sip.max_message_size,
            udp_size_limit: sip.udp_size_limit,
            tcp_idle_timeout: Duration::from_secs(sip.tcp_idle_timeout_s),
            tcp_max_connections: sip.tcp_max_connections,
            tcp_connect_timeout: Duration::from_secs(5),
            udp_recv_buffer: 4 * 1024 * 1024,
        }
    }
}
