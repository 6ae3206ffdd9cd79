//! The I-CSCF over TCP on both sides (RFC 3261 §18): a REGISTER arrives on a TCP
//! connection from the P-CSCF, goes to an S-CSCF whose URI says `transport=tcp`,
//! and the S-CSCF's answer comes back on the P-CSCF's connection. 127.0.47.80–82.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ims_icscf::cx::{Assignment, Cx, CxFuture, Uar};
use ims_icscf::{Icscf, SipSockets};
use ims_sip_core::builder::ResponseBuilder;
use ims_sip_core::framing::check;
use ims_sip_core::{Message, Method, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

struct NamedScscf(String);

impl Cx for NamedScscf {
    fn uar(&self, _req: Uar) -> CxFuture<'_, Assignment> {
        Box::pin(async move { Ok(Assignment::ServerName(self.0.clone())) })
    }
    fn lir(&self, _impu: String) -> CxFuture<'_, Assignment> {
        Box::pin(async move { Ok(Assignment::ServerName(self.0.clone())) })
    }
}

/// Reads one SIP message from a TCP stream.
async fn read_message(s: &mut TcpStream, buf: &mut Vec<u8>) -> Message {
    loop {
        if let Ok(Some(len)) = check(buf) {
            let m = Message::parse(buf[..len].to_vec()).unwrap();
            buf.drain(..len);
            return m;
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut chunk))
            .await
            .expect("nothing read in 5 s")
            .unwrap();
        assert!(n > 0, "connection closed");
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[tokio::test]
async fn register_over_tcp_both_ways() {
    let scscf = TcpListener::bind("127.0.47.82:0").await.unwrap();
    let scscf_addr: SocketAddr = scscf.local_addr().unwrap();
    let cfg = ims_config::IcscfConfig {
        domain: "ims.test".into(),
        ..Default::default()
    };
    let cx = Arc::new(NamedScscf(format!("sip:{scscf_addr};transport=tcp")));
    let listener = TcpListener::bind("127.0.47.80:0").await.unwrap();
    let icscf = listener.local_addr().unwrap();
    let (_stop, rx) = tokio::sync::oneshot::channel::<()>();
    let node = Icscf::with_cx(&cfg, cx);
    tokio::spawn(async move {
        node.run(
            SipSockets {
                udp: vec![],
                tcp: vec![listener],
            },
            async {
                let _ = rx.await;
            },
        )
        .await
        .unwrap();
    });

    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind("127.0.47.81:0".parse().unwrap()).unwrap();
    let mut p = sock.connect(icscf).await.unwrap();
    let me = p.local_addr().unwrap();
    let register = format!(
        "REGISTER sip:ims.test SIP/2.0\r\nVia: SIP/2.0/TCP {me};branch=z9hG4bKtcp1\r\n\
Max-Forwards: 69\r\nFrom: <sip:alice@ims.test>;tag=1\r\nTo: <sip:alice@ims.test>\r\n\
Call-ID: tcp1\r\nCSeq: 1 REGISTER\r\nContact: <sip:alice@10.0.0.9;transport=tcp>\r\n\
Expires: 600\r\nContent-Length: 0\r\n\r\n"
    );
    p.write_all(register.as_bytes()).await.unwrap();

    let (mut s, _) = tokio::time::timeout(Duration::from_secs(5), scscf.accept())
        .await
        .expect("the I-CSCF never connected to the S-CSCF")
        .unwrap();
    let mut sbuf = Vec::new();
    let fwd = read_message(&mut s, &mut sbuf).await;
    assert_eq!(fwd.method(), Some(&Method::Register));
    let via = fwd.top_via().unwrap().unwrap();
    assert!(via.transport.eq_ignore_ascii_case("TCP"), "Via says TCP");
    assert_eq!(
        fwd.header_values_str("Route").collect::<Vec<_>>(),
        vec![format!("<sip:{scscf_addr};transport=tcp;lr>")]
    );
    let r = ResponseBuilder::new(&fwd, StatusCode::UNAUTHORIZED)
        .to_tag("s")
        .build();
    s.write_all(&r).await.unwrap();

    let mut pbuf = Vec::new();
    let resp = read_message(&mut p, &mut pbuf).await;
    assert_eq!(resp.status(), Some(StatusCode::UNAUTHORIZED));
    assert_eq!(resp.vias().count(), 1, "only the P-CSCF's Via is left");
    assert_eq!(resp.call_id(), Some("tcp1"));
}
