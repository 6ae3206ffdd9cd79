//! RFC 4475 torture messages (exact bytes in `testdata/rfc4475`, what a proxy must do in
//! its INDEX.tsv) sent to the P-CSCF over UDP and over TCP: valid requests are never
//! answered 400, invalid ones get 400/505 or the code the RFC names, nothing gets a 2xx,
//! responses get no answer, and the P-CSCF keeps answering afterwards.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// What the P-CSCF must answer.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// One of these codes.
    Codes(&'static [u16]),
    /// Any answer but 400 and 2xx (valid request: 403 for an unregistered UE, or the
    /// core's 401 for a REGISTER).
    NotBadRequest,
    /// No answer (a response, or a stream that cannot be framed).
    Nothing,
}

fn expectation(name: &str, tcp: bool) -> Expect {
    use Expect::*;
    match name {
        // §3.1.1 valid
        "wsinv" | "intmeth" | "esc01" | "esc02" | "lwsdisp" | "longreq" | "semiuri"
        | "transports" | "mpart01" | "escnull" | "dblreq" => NotBadRequest,
        "unreason" | "noreason" => Nothing,
        // §3.1.2 invalid
        "clerr" if tcp => Nothing, // the receiver waits for 9999 octets
        "ncl" if tcp => Nothing,   // unframeable: connection closed
        "badinv01" | "clerr" | "ncl" | "scalar02" | "quotbal" | "ltgtruri" | "lwsruri"
        | "lwsstart" | "trws" | "escruri" | "baddate" | "regbadct" | "badaspec" | "baddn"
        | "mismatch01" => Codes(&[400]),
        "badvers" => Codes(&[505]),
        "mismatch02" => Codes(&[400, 501]),
        "scalarlg" | "bigcode" => Nothing,
        // §3.2 / §3.3 semantics
        "badbranch" => Codes(&[400, 403]),
        "insuf" | "multi01" | "unksm2" => Codes(&[400]),
        "mcl01" if tcp => Nothing, // conflicting lengths on a stream: connection closed
        "mcl01" => Codes(&[400]),
        "unkscm" | "novelsc" => Codes(&[416]),
        "bext01" => Codes(&[420]),
        "zeromf" => Codes(&[483]),
        "invut" | "sdp01" | "regaut01" | "cparam01" | "cparam02" | "regescrt" => NotBadRequest,
        "bcast" => Nothing,
        "inv2543" => Codes(&[400, 403]),
        other => panic!("no expectation for {other}"),
    }
}

fn vectors() -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/rfc4475");
    let index = std::fs::read_to_string(dir.join("INDEX.tsv")).unwrap();
    index
        .lines()
        .skip(1)
        .filter_map(|l| l.split('\t').next())
        .filter(|n| !n.is_empty())
        .map(|n| {
            let bytes = std::fs::read(dir.join(format!("{n}.dat"))).unwrap();
            (n.to_string(), bytes)
        })
        .collect()
}

fn status_of(data: &[u8]) -> Option<u16> {
    let s = std::str::from_utf8(data.get(..12)?).ok()?;
    s.strip_prefix("SIP/2.0 ")?.get(..3)?.parse().ok()
}

/// A fake I-CSCF that challenges every REGISTER and refuses anything else with 404.
async fn fake_core() -> SocketAddr {
    let core = Peer::new().await;
    let addr = core.addr;
    tokio::spawn(async move {
        loop {
            let Some((m, from)) = core.recv_within(60_000).await else {
                break;
            };
            if m.code().is_some() {
                continue;
            }
            if m.method() == Some("REGISTER") {
                let www = "Digest realm=\"ims.test\", nonce=\"bm9uY2U=\", algorithm=AKAv1-MD5, ck=\"00112233445566778899aabbccddeeff\", ik=\"ffeeddccbbaa99887766554433221100\"".to_string();
                core.answer(&m, from, 401, "Unauthorized", &[("WWW-Authenticate", www)])
                    .await;
            } else if m.method() != Some("ACK") {
                core.answer(&m, from, 404, "Not Found", &[]).await;
            }
        }
    });
    addr
}

fn check(
    name: &str,
    transport: &str,
    got: Option<u16>,
    expect: Expect,
    failures: &mut Vec<String>,
) {
    let ok = match (expect, got) {
        (_, Some(c)) if (200..300).contains(&c) => false,
        (Expect::Nothing, None) => true,
        (Expect::Nothing, Some(_)) => false,
        (Expect::Codes(cs), Some(c)) => cs.contains(&c),
        (Expect::NotBadRequest, Some(c)) => c != 400,
        (_, None) => false,
    };
    if !ok {
        failures.push(format!(
            "{name} over {transport}: expected {expect:?}, got {got:?}"
        ));
    }
}

/// Reads from a UDP socket until a final response (provisional ones such as the
/// 100 Trying of an INVITE server transaction are skipped) or the wait ends.
async fn final_udp(sock: &UdpSocket, wait: u64) -> Option<u16> {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(wait);
    let mut buf = vec![0u8; 65536];
    loop {
        match tokio::time::timeout_at(deadline, sock.recv_from(&mut buf)).await {
            Ok(Ok((n, _))) => match status_of(&buf[..n]) {
                Some(c) if c < 200 => continue,
                other => return other,
            },
            _ => return None,
        }
    }
}

/// Whether a response head names a Call-ID (the 400 for bytes that could not be
/// framed as a request names none: it answers no request of the vector).
fn has_call_id(head: &[u8]) -> bool {
    let h = String::from_utf8_lossy(head).to_ascii_lowercase();
    h.contains("\r\ncall-id:") || h.contains("\r\ni:")
}

/// Like [`final_udp`] on a TCP stream (`dblreq` over a stream is a REGISTER, an
/// INVITE and junk: the junk's 400 is skipped).
async fn final_tcp(s: &mut TcpStream, wait: u64) -> Option<u16> {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(wait);
    let mut got = Vec::new();
    let mut anonymous = None;
    loop {
        // Drop complete provisional responses at the front; keep an anonymous 400 as
        // the answer only if nothing else comes.
        while let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            match status_of(&got) {
                Some(c) if c < 200 => {}
                Some(c) if !has_call_id(&got[..end]) => anonymous = Some(c),
                other => return other,
            }
            got.drain(..end + 4);
        }
        let mut chunk = [0u8; 4096];
        match tokio::time::timeout_at(deadline, s.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return anonymous,
            Ok(Ok(n)) => got.extend_from_slice(&chunk[..n]),
        }
    }
}

#[tokio::test]
async fn torture_messages_over_udp_and_tcp() {
    let dir = tempfile::tempdir().unwrap();
    let core = fake_core().await;
    let mut failures = Vec::new();
    // Each message, over each transport, goes to a fresh P-CSCF: the vectors reuse
    // Via branches (and UDP and TCP carry the same bytes), which RFC 3261 §17.2.3
    // makes retransmissions of one server transaction on a single node.
    let mut n = 0;
    for (name, bytes) in vectors() {
        for tcp in [false, true] {
            n += 1;
            let db = format!(
                "sqlite://{}",
                dir.path().join(format!("p{n}.sqlite")).display()
            );
            let p = start_pcscf(core, &db, 0).await;
            let expect = expectation(&name, tcp);
            let wait = if matches!(expect, Expect::Nothing) {
                300
            } else {
                2000
            };
            let got = if tcp {
                let mut s = TcpStream::connect(p.tcp).await.unwrap();
                s.write_all(&bytes).await.unwrap();
                final_tcp(&mut s, wait).await
            } else {
                let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
                sock.send_to(&bytes, p.udp).await.unwrap();
                final_udp(&sock, wait).await
            };
            check(
                &name,
                if tcp { "TCP" } else { "UDP" },
                got,
                expect,
                &mut failures,
            );
            p.stop().await;
        }
    }
    assert!(
        failures.is_empty(),
        "RFC 4475 failures:\n{}",
        failures.join("\n")
    );

    // A P-CSCF that took every message in turn keeps answering.
    let db = format!("sqlite://{}", dir.path().join("all.sqlite").display());
    let p = start_pcscf(core, &db, 0).await;
    for (_, bytes) in vectors() {
        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        sock.send_to(&bytes, p.udp).await.unwrap();
        let mut s = TcpStream::connect(p.tcp).await.unwrap();
        let _ = s.write_all(&bytes).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Still alive: OPTIONS to the P-CSCF itself gets 200 over UDP and TCP.
    let ue = Peer::new().await;
    let options = |via: &str| {
        format!(
            "OPTIONS sip:{pcscf} SIP/2.0\r\nVia: SIP/2.0/{via};branch=z9hG4bKalive\r\nMax-Forwards: 70\r\n\
From: <sip:probe@ims.test>;tag=1\r\nTo: <sip:{pcscf}>\r\nCall-ID: alive\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
            pcscf = p.udp
        )
    };
    ue.send(p.udp, &options(&format!("UDP {}", ue.addr))).await;
    assert_eq!(ue.recv().await.0.code(), Some(200));
    let mut s = TcpStream::connect(p.tcp).await.unwrap();
    s.write_all(options("TCP 127.0.0.1:1").as_bytes())
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status_of(&buf[..n]), Some(200));
    p.stop().await;
}
