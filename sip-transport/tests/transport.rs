//! The transport layer over real sockets on 127.0.0.1.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use ims_sip_core::builder::ResponseBuilder;
use ims_sip_core::{Message, Method, StatusCode};
use ims_sip_transport::{Target, Transport, TransportOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

/// Reads whole messages from a stream, keeping what follows for the next call.
struct Reader {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Reader {
    fn new(s: TcpStream) -> Self {
        Reader { s, buf: Vec::new() }
    }

    async fn message(&mut self) -> Message {
        let mut chunk = [0u8; 4096];
        loop {
            if let Ok(Some(n)) = ims_sip_core::framing::check(&self.buf) {
                let m = Message::index(self.buf[..n].to_vec()).unwrap();
                self.buf.drain(..n);
                return m;
            }
            let n = tokio::time::timeout(Duration::from_secs(5), self.s.read(&mut chunk))
                .await
                .expect("read timed out")
                .unwrap();
            assert!(n > 0, "connection closed before a whole message");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

#[tokio::test]
async fn udp_request_and_response_with_received_and_rport() {
    let (t, mut rx, udp, _) = transport_node(TransportOptions::default()).await;
    let peer = UdpSocket::bind(LOCAL).await.unwrap();
    let req = request(Method::Options, "UDP", "ue.invalid:5099", "udp-1");
    // add rport: send raw with ;rport in the Via
    let raw = String::from_utf8(req.as_bytes().to_vec())
        .unwrap()
        .replace(";branch=", ";rport;branch=");
    peer.send_to(raw.as_bytes(), udp).await.unwrap();
    let inc = recv(&mut rx).await;
    assert_eq!(inc.transport, Transport::Udp);
    assert_eq!(inc.source, peer.local_addr().unwrap());
    assert_eq!(inc.local, udp);
    assert_eq!(inc.connection, None);
    assert_eq!(inc.call_id(), "udp-1");
    let via = inc.message.top_via().unwrap().unwrap();
    assert_eq!(via.received(), Some("127.0.0.1"));
    assert_eq!(via.rport(), Some(Some(peer.local_addr().unwrap().port())));

    // The response goes to received:rport (the peer), not to ue.invalid:5099.
    let resp = ResponseBuilder::new(&inc.message, StatusCode::OK)
        .to_tag("x")
        .build_message()
        .unwrap();
    let flow = t.send_response(&inc.flow(), &resp).await.unwrap();
    assert_eq!(flow.remote, peer.local_addr().unwrap());
    let mut buf = [0u8; 4096];
    let (n, from) = tokio::time::timeout(Duration::from_secs(5), peer.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(from, udp);
    let got = Message::parse(buf[..n].to_vec()).unwrap();
    assert_eq!(got.status(), Some(StatusCode::OK));
    assert_eq!(got.call_id(), Some("udp-1"));
}

#[tokio::test]
async fn tcp_two_messages_in_one_segment() {
    let (_t, mut rx, _, tcp) = transport_node(TransportOptions::default()).await;
    let mut s = TcpStream::connect(tcp).await.unwrap();
    let a = request_with_body(Method::Message, "TCP", "ue.invalid", "tcp-a", "first");
    let b = request_with_body(Method::Message, "TCP", "ue.invalid", "tcp-b", "second");
    let mut both = a.as_bytes().to_vec();
    both.extend_from_slice(b.as_bytes());
    s.write_all(&both).await.unwrap();
    let m1 = recv(&mut rx).await;
    let m2 = recv(&mut rx).await;
    assert_eq!(m1.call_id(), "tcp-a");
    assert_eq!(m1.message.body(), b"first");
    assert_eq!(m2.call_id(), "tcp-b");
    assert_eq!(m2.message.body(), b"second");
    assert_eq!(m1.connection, m2.connection);
    assert!(m1.connection.is_some());
    assert_eq!(m1.transport, Transport::Tcp);
}

#[tokio::test]
async fn tcp_message_split_over_segments() {
    let (_t, mut rx, _, tcp) = transport_node(TransportOptions::default()).await;
    let mut s = TcpStream::connect(tcp).await.unwrap();
    s.set_nodelay(true).unwrap();
    let m = request_with_body(
        Method::Message,
        "TCP",
        "ue.invalid",
        "split",
        "0123456789abcdef",
    );
    let bytes = m.as_bytes();
    let cuts = [10, 60, bytes.len() - 5];
    let mut prev = 0;
    for c in cuts {
        s.write_all(&bytes[prev..c]).await.unwrap();
        s.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(30)).await;
        prev = c;
    }
    no_message(&mut rx, 50).await;
    s.write_all(&bytes[prev..]).await.unwrap();
    let got = recv(&mut rx).await;
    assert_eq!(got.call_id(), "split");
    assert_eq!(got.message.body(), b"0123456789abcdef");
}

#[tokio::test]
async fn response_goes_back_on_the_same_tcp_connection() {
    let (t, mut rx, _, tcp) = transport_node(TransportOptions::default()).await;
    let mut s = TcpStream::connect(tcp).await.unwrap();
    // sent-by names a port nobody listens on: the response must use the connection.
    let req = request(Method::Register, "TCP", "127.0.0.1:1", "same-conn");
    s.write_all(req.as_bytes()).await.unwrap();
    let inc = recv(&mut rx).await;
    let resp = ResponseBuilder::new(&inc.message, StatusCode::OK)
        .build_message()
        .unwrap();
    let flow = t.send_response(&inc.flow(), &resp).await.unwrap();
    assert_eq!(flow.connection, inc.connection);
    let got = Reader::new(s).message().await;
    assert_eq!(got.status(), Some(StatusCode::OK));
    assert_eq!(got.call_id(), Some("same-conn"));
    assert_eq!(t.connection_count(), 1);
}

#[tokio::test]
async fn requests_back_to_the_ue_reuse_its_connection() {
    let (t, mut rx, _, tcp) = transport_node(TransportOptions::default()).await;
    let mut ue = TcpStream::connect(tcp).await.unwrap();
    let ue_addr = ue.local_addr().unwrap();
    ue.write_all(request(Method::Register, "TCP", "ue.invalid", "reg").as_bytes())
        .await
        .unwrap();
    let inc = recv(&mut rx).await;
    // A new request to the UE's address (e.g. NOTIFY) uses the UE's own connection.
    let notify = request(Method::Notify, "TCP", "pcscf.invalid", "notify-1");
    let flow = t.send(&Target::tcp(ue_addr), &notify).await.unwrap();
    assert_eq!(flow.connection, inc.connection);
    let mut ue = Reader::new(ue);
    let got = ue.message().await;
    assert_eq!(got.method(), Some(&Method::Notify));
    // And a request to the flow (Target::from) as well.
    let flow2 = t
        .send(
            &Target::from(inc.flow()),
            &request(Method::Notify, "TCP", "p.invalid", "notify-2"),
        )
        .await
        .unwrap();
    assert_eq!(flow2.connection, inc.connection);
    assert_eq!(ue.message().await.call_id(), Some("notify-2"));
    assert_eq!(t.connection_count(), 1);
}

#[tokio::test]
async fn outgoing_tcp_connection_is_opened_once_and_reused() {
    let (t, _rx, _, _) = transport_node(TransportOptions::default()).await;
    let server = TcpListener::bind(LOCAL).await.unwrap();
    let addr = server.local_addr().unwrap();
    let f1 = t
        .send(
            &Target::tcp(addr),
            &request(Method::Options, "TCP", "x.invalid", "o1"),
        )
        .await
        .unwrap();
    let (conn, _) = server.accept().await.unwrap();
    let mut conn = Reader::new(conn);
    let f2 = t
        .send(
            &Target::tcp(addr),
            &request(Method::Options, "TCP", "x.invalid", "o2"),
        )
        .await
        .unwrap();
    assert_eq!(f1.connection, f2.connection);
    assert_eq!(conn.message().await.call_id(), Some("o1"));
    assert_eq!(conn.message().await.call_id(), Some("o2"));
    assert_eq!(t.connection_count(), 1);
    // A response from the peer on that connection reaches the handler.
    let timeout = tokio::time::timeout(Duration::from_millis(200), server.accept()).await;
    assert!(timeout.is_err(), "a second connection was opened");
}

#[tokio::test]
async fn garbage_over_udp_gets_400_and_the_node_keeps_working() {
    let (_t, mut rx, udp, _) = transport_node(TransportOptions::default()).await;
    let peer = UdpSocket::bind(LOCAL).await.unwrap();
    // Headers parse, but CSeq is not a number: 400 built from what was indexed.
    let bad =
        "OPTIONS sip:p.ims.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKbad\r\n\
               From: <sip:a@ims.test>;tag=1\r\nTo: <sip:a@ims.test>\r\nCall-ID: garbage-1\r\n\
               CSeq: abc OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";
    peer.send_to(bad.as_bytes(), udp).await.unwrap();
    let mut buf = [0u8; 4096];
    let (n, _) = tokio::time::timeout(Duration::from_secs(5), peer.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    // (index, not parse: the 400 copies the request's bad CSeq, RFC 3261 §8.2.6.2)
    let resp = Message::index(buf[..n].to_vec()).unwrap();
    assert_eq!(resp.status(), Some(StatusCode::BAD_REQUEST));
    assert_eq!(resp.call_id(), Some("garbage-1"));
    assert!(
        resp.reason().unwrap().contains("CSeq"),
        "{}",
        resp.start_line()
    );
    // SIP/3.0 gets 505.
    let v3 = bad
        .replace("SIP/2.0\r\nVia", "SIP/3.0\r\nVia")
        .replace("abc OPTIONS", "1 OPTIONS");
    peer.send_to(v3.as_bytes(), udp).await.unwrap();
    let (n, _) = tokio::time::timeout(Duration::from_secs(5), peer.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        Message::parse(buf[..n].to_vec()).unwrap().status(),
        Some(StatusCode::VERSION_NOT_SUPPORTED)
    );
    // Pure garbage: no answer, nothing delivered.
    peer.send_to(b"\x00\x01\x02 hello", udp).await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(200), peer.recv_from(&mut buf))
            .await
            .is_err()
    );
    no_message(&mut rx, 50).await;
    // Still alive.
    peer.send_to(
        request(Method::Options, "UDP", "127.0.0.1:9", "after").as_bytes(),
        udp,
    )
    .await
    .unwrap();
    assert_eq!(recv(&mut rx).await.call_id(), "after");
}

#[tokio::test]
async fn bad_request_over_tcp_gets_400_and_connection_stays() {
    let (_t, mut rx, _, tcp) = transport_node(TransportOptions::default()).await;
    let mut s = TcpStream::connect(tcp).await.unwrap();
    let bad =
        "OPTIONS sip:p.ims.test SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bKbad\r\n\
               From: <sip:a@ims.test>;tag=1\r\nTo: <sip:a@ims.test>\r\nCall-ID: garbage-2\r\n\
               CSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";
    s.write_all(bad.as_bytes()).await.unwrap();
    let mut s = Reader::new(s);
    let resp = s.message().await;
    assert_eq!(resp.status(), Some(StatusCode::BAD_REQUEST));
    s.s.write_all(request(Method::Options, "TCP", "ue.invalid", "ok-after").as_bytes())
        .await
        .unwrap();
    assert_eq!(recv(&mut rx).await.call_id(), "ok-after");
}

#[tokio::test]
async fn framing_error_closes_the_connection() {
    let (t, _rx, _, tcp) = transport_node(TransportOptions::default()).await;
    let mut s = TcpStream::connect(tcp).await.unwrap();
    s.write_all(b"OPTIONS sip:a SIP/2.0\r\nContent-Length: -5\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0, "expected close, got {:?}", &buf[..n]);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(t.connection_count(), 0);
}

#[tokio::test]
async fn crlf_keepalive_ping_gets_pong() {
    let (_t, mut rx, _, tcp) = transport_node(TransportOptions::default()).await;
    let mut s = TcpStream::connect(tcp).await.unwrap();
    s.set_nodelay(true).unwrap();
    // A ping split over two segments still gets exactly one pong.
    s.write_all(b"\r\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(30)).await;
    s.write_all(b"\r\n").await.unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf[..n], b"\r\n");
    // A message right after a ping is still framed.
    let mut both = b"\r\n\r\n".to_vec();
    both.extend_from_slice(request(Method::Options, "TCP", "ue.invalid", "after-ping").as_bytes());
    s.write_all(&both).await.unwrap();
    assert_eq!(recv(&mut rx).await.call_id(), "after-ping");
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf[..n], b"\r\n");
}

#[tokio::test]
async fn idle_connections_are_closed() {
    let opts = TransportOptions {
        tcp_idle_timeout: Duration::from_millis(1000),
        ..TransportOptions::default()
    };
    let (t, _rx, _, tcp) = transport_node(opts).await;
    let mut s = TcpStream::connect(tcp).await.unwrap();
    // Traffic keeps it open past the idle time.
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        s.write_all(b"\r\n\r\n").await.unwrap();
        let mut pong = [0u8; 2];
        s.read_exact(&mut pong).await.unwrap();
    }
    assert_eq!(t.connection_count(), 1);
    let mut buf = [0u8; 8];
    let started = std::time::Instant::now();
    let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0);
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "closed too early: {:?}",
        started.elapsed()
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(t.connection_count(), 0);
}

#[tokio::test]
async fn connection_limit_refuses_extra_connections() {
    let opts = TransportOptions {
        tcp_max_connections: 1,
        ..TransportOptions::default()
    };
    let (t, mut rx, _, tcp) = transport_node(opts).await;
    let mut first = TcpStream::connect(tcp).await.unwrap();
    first
        .write_all(request(Method::Options, "TCP", "a.invalid", "first").as_bytes())
        .await
        .unwrap();
    recv(&mut rx).await;
    let mut second = TcpStream::connect(tcp).await.unwrap();
    let mut buf = [0u8; 8];
    let n = tokio::time::timeout(Duration::from_secs(5), second.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0, "second connection should be closed");
    assert_eq!(t.connection_count(), 1);
    // Outgoing connections are refused too.
    let l = TcpListener::bind(LOCAL).await.unwrap();
    let err = t
        .send(
            &Target::tcp(l.local_addr().unwrap()),
            &request(Method::Options, "TCP", "a.invalid", "x"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, ims_sip_transport::TransportError::ConnectionLimit(1)),
        "{err}"
    );
}

#[tokio::test]
async fn extra_udp_port_at_runtime_receives_and_sends() {
    let (t, mut rx, main_udp, _) = transport_node(TransportOptions::default()).await;
    let protected = t.bind_udp(local()).await.unwrap();
    assert_ne!(protected.port(), main_udp.port());
    let ue = UdpSocket::bind(LOCAL).await.unwrap();
    // Receive on it.
    ue.send_to(
        request(Method::Register, "UDP", "127.0.0.1:9", "prot").as_bytes(),
        protected,
    )
    .await
    .unwrap();
    let inc = recv(&mut rx).await;
    assert_eq!(inc.local, protected);
    // Send from it.
    let target = Target::udp(ue.local_addr().unwrap()).from_local(protected);
    let flow = t
        .send(
            &target,
            &request(Method::Notify, "UDP", "p.invalid", "from-prot"),
        )
        .await
        .unwrap();
    assert_eq!(flow.local, protected);
    let mut buf = [0u8; 4096];
    let (_, from) = tokio::time::timeout(Duration::from_secs(5), ue.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(from, protected);
    // Without a local choice, the first (main) socket is used.
    t.send(
        &Target::udp(ue.local_addr().unwrap()),
        &request(Method::Notify, "UDP", "p.invalid", "main"),
    )
    .await
    .unwrap();
    let (_, from) = tokio::time::timeout(Duration::from_secs(5), ue.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(from, main_udp);
    // Unbinding stops it: sending from it is refused.
    assert!(t.unbind(Transport::Udp, protected));
    let err = t
        .send(
            &target,
            &request(Method::Notify, "UDP", "p.invalid", "gone"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, ims_sip_transport::TransportError::NoSocket { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn extra_tcp_port_at_runtime_is_the_source_of_new_connections() {
    let (t, mut rx, _, _) = transport_node(TransportOptions::default()).await;
    // The protected client port also listens (SO_REUSEPORT lets both coexist).
    let port_c = t.bind_tcp(local()).await.unwrap();
    let ue_server = TcpListener::bind(LOCAL).await.unwrap();
    let target = Target::tcp(ue_server.local_addr().unwrap()).from_local(port_c);
    let flow = t
        .send(
            &target,
            &request(Method::Notify, "TCP", "p.invalid", "tcp-from-c"),
        )
        .await
        .unwrap();
    let (conn, peer) = ue_server.accept().await.unwrap();
    let mut conn = Reader::new(conn);
    assert_eq!(peer, port_c, "connection must come from the protected port");
    assert_eq!(flow.local, port_c);
    assert_eq!(conn.message().await.call_id(), Some("tcp-from-c"));
    // The UE answers on that connection: delivered with the connection id.
    let req = request(Method::Options, "TCP", "ue.invalid", "ue-answer");
    conn.s.write_all(req.as_bytes()).await.unwrap();
    let inc = recv(&mut rx).await;
    assert_eq!(inc.connection, flow.connection);
    assert_eq!(inc.local, port_c);
    // And the listener on port_c still accepts.
    let mut s = TcpStream::connect(port_c).await.unwrap();
    s.write_all(request(Method::Options, "TCP", "ue.invalid", "to-port-c").as_bytes())
        .await
        .unwrap();
    assert_eq!(recv(&mut rx).await.call_id(), "to-port-c");
}

#[tokio::test]
async fn ipv6_loopback() {
    let (h, mut rx) = ims_sip_transport::channel(16);
    let t =
        ims_sip_transport::TransportLayer::new(TransportOptions::default(), std::sync::Arc::new(h));
    let v6: std::net::SocketAddr = "[::1]:0".parse().unwrap();
    let udp = match t.bind_udp(v6).await {
        Ok(a) => a,
        Err(e) => {
            println!("skipping: cannot bind [::1] here ({e})");
            return;
        }
    };
    let tcp = t.bind_tcp(v6).await.unwrap();
    let peer = UdpSocket::bind("[::1]:0").await.unwrap();
    peer.send_to(
        request(Method::Options, "UDP", "[::1]:9", "v6").as_bytes(),
        udp,
    )
    .await
    .unwrap();
    let inc = recv(&mut rx).await;
    assert!(inc.source.is_ipv6());
    let mut s = TcpStream::connect(tcp).await.unwrap();
    s.write_all(request(Method::Options, "TCP", "[::1]:9", "v6tcp").as_bytes())
        .await
        .unwrap();
    assert_eq!(recv(&mut rx).await.call_id(), "v6tcp");
    // An IPv4 destination has no socket of its family here.
    let err = t
        .send(
            &Target::udp("127.0.0.1:9".parse().unwrap()),
            &request(Method::Options, "UDP", "x", "x"),
        )
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        ims_sip_transport::TransportError::NoSocket { .. }
    ));
    let _ = Bytes::new();
}

#[tokio::test]
async fn connection_closed_is_reported_to_the_handler() {
    struct H(tokio::sync::mpsc::UnboundedSender<ims_sip_transport::Flow>);
    impl ims_sip_transport::IncomingHandler for H {
        fn handle(&self, _incoming: ims_sip_transport::Incoming) {}
        fn connection_closed(&self, flow: ims_sip_transport::Flow) {
            let _ = self.0.send(flow);
        }
    }
    let (tx, mut closed) = tokio::sync::mpsc::unbounded_channel();
    let t = ims_sip_transport::TransportLayer::new(
        TransportOptions::default(),
        std::sync::Arc::new(H(tx)),
    );
    let tcp = t.bind_tcp(local()).await.unwrap();
    let s = TcpStream::connect(tcp).await.unwrap();
    let ue = s.local_addr().unwrap();
    while t.connection_count() == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(s);
    let flow = tokio::time::timeout(Duration::from_secs(5), closed.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(flow.remote, ue);
    assert_eq!(flow.transport, Transport::Tcp);
    assert!(flow.connection.is_some());
}

#[tokio::test]
async fn close_releases_the_ports_for_an_in_process_restart() {
    let (t, _rx, udp, tcp) = transport_node(TransportOptions::default()).await;
    let mut c = TcpStream::connect(tcp).await.unwrap();
    t.close().await;
    // The connection is closed…
    let mut buf = [0u8; 4];
    let n = tokio::time::timeout(Duration::from_secs(5), c.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0);
    // …and the very same addresses can be bound again right away.
    let (h, mut rx) = ims_sip_transport::channel(16);
    let t2 =
        ims_sip_transport::TransportLayer::new(TransportOptions::default(), std::sync::Arc::new(h));
    assert_eq!(t2.bind_udp(udp).await.unwrap(), udp);
    assert_eq!(t2.bind_tcp(tcp).await.unwrap(), tcp);
    let peer = UdpSocket::bind(LOCAL).await.unwrap();
    peer.send_to(
        request(Method::Options, "UDP", "127.0.0.1:9", "restarted").as_bytes(),
        udp,
    )
    .await
    .unwrap();
    assert_eq!(recv(&mut rx).await.call_id(), "restarted");
    // Dropping the last handle releases the sockets too.
    drop(t2);
    tokio::time::sleep(Duration::from_millis(50)).await;
    UdpSocket::bind(udp)
        .await
        .expect("UDP port released on drop");
}
