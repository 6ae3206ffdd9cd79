//! Benchmark (not a test): full two-step AKA registrations per second through the
//! in-process S-CSCF over UDP on 127.0.0.1, with an in-memory HSS and the SQLite store.
//!
//! `cargo run --release -p ims-scscf --example register_bench -- [UEs] [concurrency] [nostore]`

use ims_scscf::testutil::{answer, code, nonce_of, parse, FakeHss, RegisterSpec, SET1_RES};
use ims_scscf::{Scscf, Settings, Store};
use ims_sip_core::Message;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

async fn rt(
    sock: &UdpSocket,
    to: std::net::SocketAddr,
    text: &str,
    buf: &mut [u8],
) -> anyhow::Result<Message> {
    sock.send_to(text.as_bytes(), to).await?;
    let (n, _) = tokio::time::timeout(Duration::from_secs(5), sock.recv_from(buf)).await??;
    Ok(parse(&buf[..n])?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let ues: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let conc: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(64);
    let with_store = args.next().as_deref() != Some("nostore");
    let dir = tempfile::tempdir()?;
    let db = format!("sqlite://{}", dir.path().join("bench.db").display());
    let sock = UdpSocket::bind("127.0.0.1:0").await?;
    let addr = sock.local_addr()?;
    let mut s = Settings::new(format!("sip:{addr}"));
    s.realm = Some("ims.test".into());
    let hss = Arc::new(FakeHss::new(&[]));
    let rss0 = rss_kib();
    let store = if with_store {
        Some(Store::open(&db).await?)
    } else {
        None
    };
    let scscf = Scscf::new(s, hss, store).await?;
    let handle = scscf.handle();
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let node = tokio::spawn(scscf.run(sock, async move {
        let _ = rx.await;
    }));
    let res = hex::decode(SET1_RES)?;
    let t0 = Instant::now();
    let mut workers = Vec::new();
    for w in 0..conc {
        let res = res.clone();
        workers.push(tokio::spawn(async move {
            let ue = UdpSocket::bind("127.0.0.1:0").await?;
            let mut buf = vec![0u8; 65535];
            let mut lat = Vec::new();
            let mut fails = 0usize;
            for i in (w..ues).step_by(conc) {
                let mut spec = RegisterSpec::alice();
                spec.impu = format!("sip:ue{i}@ims.test");
                spec.impi = format!("ue{i}@ims.test");
                spec.call_id = format!("bench-{i}");
                spec.via = ue.local_addr()?.to_string();
                spec.contacts = vec![format!("<sip:ue{i}@10.1.{}.{}:5060>", i / 250, i % 250)];
                let t = Instant::now();
                let r1 = rt(&ue, addr, &spec.to_text(), &mut buf).await?;
                let nonce = r1
                    .header_str("WWW-Authenticate")
                    .and_then(nonce_of)
                    .unwrap_or_default();
                spec.cseq = 2;
                spec.authorization = Some(answer(&spec.impi, "ims.test", &nonce, &res, true, 1));
                let r2 = rt(&ue, addr, &spec.to_text(), &mut buf).await?;
                if code(&r2) == 200 {
                    lat.push(t.elapsed());
                } else {
                    fails += 1;
                }
            }
            anyhow::Ok((lat, fails))
        }));
    }
    let mut lat = Vec::new();
    let mut fails = 0;
    for w in workers {
        let (l, f) = w.await??;
        lat.extend(l);
        fails += f;
    }
    let el = t0.elapsed();
    lat.sort();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    println!(
        "{} registrations ({} failed) in {:.2?}: {:.0}/s, p50 {:.2?}, p99 {:.2?}; registered {}; RSS +{} KiB (whole process)",
        lat.len(),
        fails,
        el,
        lat.len() as f64 / el.as_secs_f64(),
        pct(0.5),
        pct(0.99),
        handle.core().registration_count(),
        rss_kib().saturating_sub(rss0)
    );
    let _ = stop.send(());
    node.await??;
    if with_store {
        let (regs, _) = Store::open(&db).await?.load().await?;
        println!("persisted after clean shutdown: {}", regs.len());
    }
    Ok(())
}
