//! Socket creation with the options SIP needs: IPv6 sockets are IPv6-only (so
//! `0.0.0.0:5060` and `[::]:5060` can both be bound), TCP listeners and sockets bound
//! to a chosen local port share the port (SO_REUSEADDR + SO_REUSEPORT) so that
//! connections can be opened *from* a listening port, as the IPsec protected client
//! port needs (TS 33.203 §7.1).

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

fn new_socket(addr: SocketAddr, ty: Type, proto: Protocol) -> io::Result<Socket> {
    let domain = if addr.is_ipv6() {
        Domain::IPV6
    } else {
        Domain::IPV4
    };
    let s = Socket::new(domain, ty, Some(proto))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_nonblocking(true)?;
    Ok(s)
}

/// A bound UDP socket.
pub(crate) fn udp(addr: SocketAddr, recv_buffer: usize) -> io::Result<tokio::net::UdpSocket> {
    let s = new_socket(addr, Type::DGRAM, Protocol::UDP)?;
    // Best effort: the kernel caps it at net.core.rmem_max.
    let _ = s.set_recv_buffer_size(recv_buffer);
    s.bind(&SockAddr::from(addr))?;
    tokio::net::UdpSocket::from_std(s.into())
}

/// A listening TCP socket whose port can also be the source of outgoing connections.
pub(crate) fn tcp_listener(addr: SocketAddr) -> io::Result<tokio::net::TcpListener> {
    let s = new_socket(addr, Type::STREAM, Protocol::TCP)?;
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    s.bind(&SockAddr::from(addr))?;
    s.listen(1024)?;
    tokio::net::TcpListener::from_std(s.into())
}

/// A TCP socket ready to connect, bound to `local` when given.
pub(crate) fn tcp_connector(
    remote: SocketAddr,
    local: Option<SocketAddr>,
) -> io::Result<tokio::net::TcpSocket> {
    let s = new_socket(remote, Type::STREAM, Protocol::TCP)?;
    if let Some(l) = local {
        s.set_reuse_address(true)?;
        s.set_reuse_port(true)?;
        s.bind(&SockAddr::from(l))?;
    }
    s.set_tcp_nodelay(true)?;
    let std: std::net::TcpStream = s.into();
    Ok(tokio::net::TcpSocket::from_std_stream(std))
}
