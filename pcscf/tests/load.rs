//! 1,000 UEs register through the P-CSCF at once (real UDP on loopback, a fake core
//! answering 200): every UE gets its 200, and every registration is in the SQLite store
//! after the P-CSCF stops — the batched writer keeps up and loses nothing. Prints the
//! rate as a figure (not asserted: machines differ).

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::*;
use ims_pcscf::store::RegistrationStore;
use tokio::net::UdpSocket;

const UES: usize = 1_000;
const SOCKETS: usize = 10;

fn register_of(ue: std::net::SocketAddr, n: usize) -> String {
    format!(
        "REGISTER sip:ims.test SIP/2.0\r\n\
Via: SIP/2.0/UDP {ue};branch=z9hG4bKload{n};rport\r\n\
Max-Forwards: 70\r\n\
From: <sip:user{n}@ims.test>;tag=l{n}\r\n\
To: <sip:user{n}@ims.test>\r\n\
Call-ID: load{n}@{ue}\r\n\
CSeq: 1 REGISTER\r\n\
Contact: <sip:user{n}@{ue}>;expires=600\r\n\
Content-Length: 0\r\n\r\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_concurrent_registrations_are_all_persisted() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("p.sqlite").display());
    // Fake core: 200 to every REGISTER, with the UE's identity.
    let core = Peer::new().await;
    let core_addr = core.addr;
    tokio::spawn(async move {
        while let Some((m, from)) = core.recv_within(30_000).await {
            if m.method() != Some("REGISTER") {
                continue;
            }
            let to = m.get("to").unwrap_or("").to_string();
            core.answer(
                &m,
                from,
                200,
                "OK",
                &[
                    ("P-Associated-URI", to),
                    ("Service-Route", format!("<sip:orig@{core_addr};lr>")),
                ],
            )
            .await;
        }
    });
    let p = start_pcscf_with(
        core_addr,
        &db,
        0,
        |cfg| cfg.registration.subscribe_reg_event = false,
        None,
    )
    .await;
    let mut socks = Vec::new();
    for _ in 0..SOCKETS {
        socks.push(std::sync::Arc::new(
            UdpSocket::bind("127.0.0.1:0").await.unwrap(),
        ));
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (s, sock) in socks.iter().enumerate() {
        let sock = sock.clone();
        let pcscf = p.udp;
        tasks.push(tokio::spawn(async move {
            let me = sock.local_addr().unwrap();
            let mine: Vec<usize> = (0..UES).filter(|n| n % SOCKETS == s).collect();
            let mut done = HashSet::new();
            let mut buf = vec![0u8; 65536];
            // Send, then retransmit what is unanswered every 500 ms (RFC 3261 Timer E).
            for _round in 0..20 {
                for n in mine.iter().filter(|n| !done.contains(*n)) {
                    sock.send_to(register_of(me, *n).as_bytes(), pcscf)
                        .await
                        .unwrap();
                }
                let until = tokio::time::Instant::now() + Duration::from_millis(500);
                while let Ok(Ok((len, _))) =
                    tokio::time::timeout_at(until, sock.recv_from(&mut buf)).await
                {
                    let m = Message::parse(&buf[..len]).unwrap();
                    if m.code() == Some(200) {
                        let cid = m.get("call-id").unwrap_or("");
                        let n: usize = cid
                            .trim_start_matches("load")
                            .split('@')
                            .next()
                            .unwrap()
                            .parse()
                            .unwrap();
                        done.insert(n);
                    }
                }
                if done.len() == mine.len() {
                    break;
                }
            }
            done.len()
        }));
    }
    let mut registered = 0;
    for t in tasks {
        registered += t.await.unwrap();
    }
    let elapsed = started.elapsed();
    assert_eq!(registered, UES, "every UE got its 200");
    println!(
        "{UES} REGISTERs through the P-CSCF (with SQLite persistence) in {:.2} s: {:.0}/s",
        elapsed.as_secs_f64(),
        UES as f64 / elapsed.as_secs_f64()
    );
    p.stop().await;
    let store = RegistrationStore::open(&db).await.unwrap();
    let rows = store.load_all().await.unwrap();
    assert_eq!(rows.len(), UES, "every registration persisted");
    assert!(rows.iter().all(|b| b.aor.starts_with("sip:user")));
}
