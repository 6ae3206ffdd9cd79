//! The UDP receive loop (RFC 3261 §18.3: one message per datagram, octets beyond
//! Content-Length discarded by the parser).

use std::net::SocketAddr;
use std::sync::{Arc, Weak};

use bytes::Bytes;
use tokio::net::UdpSocket;
use tracing::{debug, trace};

use crate::flow::Transport;
use crate::layer::Inner;

pub(crate) async fn receive_loop(inner: Weak<Inner>, socket: Arc<UdpSocket>, local: SocketAddr) {
    let mut buf = vec![0u8; 65_536];
    loop {
        let (n, source) = match socket.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                // ICMP port unreachable from an earlier send and similar: not fatal.
                debug!(%local, error = %e, "udp receive error");
                if inner.strong_count() == 0 {
                    return;
                }
                continue;
            }
        };
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let data = &buf[..n];
        // RFC 5626 §3.5.1 CRLF keep-alives over UDP carry nothing to parse.
        if data
            .iter()
            .all(|b| matches!(b, b'\r' | b'\n' | b' ' | b'\t' | 0))
        {
            trace!(%source, "udp keep-alive");
            continue;
        }
        let data = Bytes::copy_from_slice(data);
        if let Some(reply) = inner.on_message(data, source, local, Transport::Udp, None) {
            if let Err(e) = socket.send_to(&reply, source).await {
                debug!(%source, error = %e, "error response not sent");
            }
        }
    }
}
