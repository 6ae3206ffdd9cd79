//! RFC 4475 torture messages (the copy in `sip-core/testdata/rfc4475`) through the
//! transport over UDP and TCP: valid requests are delivered and never answered with
//! 400 by the transport, unparsable ones get 400/505 (or are dropped), stream
//! framing errors close only their connection, and the node keeps working.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use common::*;
use ims_sip_core::Method;
use ims_sip_transport::TransportOptions;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

struct Case {
    name: String,
    class: String,
    bytes: Vec<u8>,
}

fn cases() -> Vec<Case> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../sip-core/testdata/rfc4475");
    let index = std::fs::read_to_string(dir.join("INDEX.tsv")).expect("INDEX.tsv");
    index
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let bytes = std::fs::read(dir.join(format!("{}.dat", f[0]))).ok()?;
            Some(Case {
                name: f[0].to_owned(),
                class: f[2].to_owned(),
                bytes,
            })
        })
        .collect()
}

fn status_of(reply: &[u8]) -> Option<u16> {
    let s = std::str::from_utf8(reply.get(8..12)?).ok()?;
    s.trim().parse().ok()
}

#[tokio::test]
async fn torture_over_udp() {
    let (_t, mut rx, udp, _) = transport_node(TransportOptions::default()).await;
    let cases = cases();
    assert!(
        cases.len() >= 45,
        "only {} torture messages found",
        cases.len()
    );
    let mut outcome: HashMap<String, (usize, Option<u16>)> = HashMap::new();
    for c in &cases {
        let peer = UdpSocket::bind(LOCAL).await.unwrap();
        peer.send_to(&c.bytes, udp).await.unwrap();
        let mut buf = vec![0u8; 65536];
        let mut delivered = Vec::new();
        let mut reply = None;
        // Wait for the first outcome (an answer or a delivery; nothing for dropped
        // messages), then a short grace for anything else.
        let first = Duration::from_millis(1500);
        let grace = Duration::from_millis(50);
        let mut wait = first;
        loop {
            tokio::select! {
                r = peer.recv_from(&mut buf) => {
                    let (n, _) = r.unwrap();
                    reply = status_of(&buf[..n]);
                    wait = grace;
                }
                m = rx.recv() => {
                    delivered.push(m.unwrap());
                    wait = grace;
                }
                _ = tokio::time::sleep(wait) => break,
            }
        }
        if c.name == "dblreq" {
            for m in &delivered {
                assert_eq!(
                    m.message.method(),
                    Some(&Method::Register),
                    "dblreq: only the REGISTER"
                );
            }
        }
        outcome.insert(c.name.clone(), (delivered.len(), reply));
    }
    for c in &cases {
        let (delivered, reply) = outcome[&c.name];
        match c.class.as_str() {
            "valid" => {
                assert_eq!(
                    delivered, 1,
                    "{}: valid message not delivered (reply {reply:?})",
                    c.name
                );
                assert_eq!(
                    reply, None,
                    "{}: transport answered a valid message",
                    c.name
                );
            }
            _ => {
                // Either the transport refused it (400/505) or handed it up for the
                // role's semantic checks; never both, never another answer.
                match reply {
                    Some(400) | Some(505) => assert_eq!(delivered, 0, "{}", c.name),
                    None => {}
                    Some(other) => panic!("{}: transport answered {other}", c.name),
                }
            }
        }
    }
    assert_eq!(outcome["badvers"].1, Some(505));
    assert_eq!(outcome["ncl"].1, Some(400));
    assert_eq!(outcome["clerr"].1, Some(400));
    assert_eq!(
        outcome["bigcode"],
        (0, None),
        "a bad response is dropped silently"
    );
    // Still alive.
    let peer = UdpSocket::bind(LOCAL).await.unwrap();
    peer.send_to(
        request(Method::Options, "UDP", "127.0.0.1:9", "alive").as_bytes(),
        udp,
    )
    .await
    .unwrap();
    assert_eq!(recv(&mut rx).await.call_id(), "alive");
}

#[tokio::test]
async fn torture_over_tcp() {
    let (_t, mut rx, _, tcp) = transport_node(TransportOptions::default()).await;
    for c in cases() {
        let mut s = TcpStream::connect(tcp).await.unwrap();
        // UDP-only trailing octets would be a second (partial) message on a stream.
        let bytes = if c.name == "dblreq" {
            let n = ims_sip_core::framing::check(&c.bytes).unwrap().unwrap();
            c.bytes[..n].to_vec()
        } else {
            c.bytes.clone()
        };
        s.write_all(&bytes).await.unwrap();
        let mut buf = vec![0u8; 65536];
        let mut delivered = 0;
        // Ok(n): read n octets (0 = closed); Err: nothing read before the wait ended.
        let mut read: Result<std::io::Result<usize>, ()> = Err(());
        let mut wait = Duration::from_millis(1500);
        loop {
            tokio::select! {
                r = s.read(&mut buf), if read.is_err() => {
                    read = Ok(r);
                    wait = Duration::from_millis(50);
                }
                m = rx.recv() => {
                    m.unwrap();
                    delivered += 1;
                    wait = Duration::from_millis(50);
                }
                _ = tokio::time::sleep(wait) => break,
            }
        }
        match c.name.as_str() {
            // Negative / conflicting Content-Length: unrecoverable framing, closed.
            "ncl" | "mcl01" => {
                assert!(
                    matches!(read, Ok(Ok(0)) | Ok(Err(_))),
                    "{}: connection not closed",
                    c.name
                );
                assert_eq!(delivered, 0);
            }
            // Content-Length larger than what was sent: the receiver waits.
            "clerr" => {
                assert!(
                    read.is_err(),
                    "{}: expected to wait for more octets",
                    c.name
                );
                assert_eq!(delivered, 0);
            }
            _ if c.class == "valid" => {
                assert_eq!(
                    delivered, 1,
                    "{}: valid message not delivered over TCP",
                    c.name
                );
                assert!(
                    read.is_err(),
                    "{}: transport answered a valid message",
                    c.name
                );
            }
            _ => {
                if let Ok(Ok(n)) = read {
                    if n > 0 {
                        let code = status_of(&buf[..n]);
                        assert!(
                            matches!(code, Some(400) | Some(505)),
                            "{}: answered {code:?}",
                            c.name
                        );
                        assert_eq!(delivered, 0, "{}", c.name);
                    }
                }
            }
        }
    }
    let mut s = TcpStream::connect(tcp).await.unwrap();
    s.write_all(request(Method::Options, "TCP", "127.0.0.1:9", "alive-tcp").as_bytes())
        .await
        .unwrap();
    assert_eq!(recv(&mut rx).await.call_id(), "alive-tcp");
}
