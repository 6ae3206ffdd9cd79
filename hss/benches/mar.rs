//! MAR→MAA benchmark (not a test): round trips per second and latency over one and over
//! several Diameter connections against the SQLite store, HSS and load generator in
//! one process on loopback. Run: `cargo bench -p ims-hss --bench mar`.
//!
//! Environment: `MAR_BENCH_SECS` (default 5) per scenario, `MAR_BENCH_SUBSCRIBERS`
//! (default 100).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ims_hss::service::ServerPolicy;
use ims_hss::store::model::{aka_from_hex, Impu, NewSubscriber};
use ims_hss::HssSettings;
use ims_hss_client::dictionary::SipAuthScheme;
use ims_hss_client::messages::{CxOutcome, MultimediaAuthRequest};
use ims_hss_client::{CxClient, CxClientConfig};

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let n = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    format!("{n} CPU(s) available (nproc), {cpu}")
}

fn pct(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

async fn scenario(
    name: &str,
    addr: std::net::SocketAddr,
    connections: usize,
    in_flight: usize,
    subs: &[(String, String)],
    secs: u64,
) {
    let mut clients = Vec::new();
    for i in 0..connections {
        let mut cfg = CxClientConfig::new(
            vec![addr.to_string()],
            &format!("bench{i}.ims.test"),
            "ims.test",
            "ims.test",
        );
        cfg.request_timeout = Duration::from_secs(10);
        let c = CxClient::start(cfg, None);
        c.wait_ready(Duration::from_secs(5)).await.expect("CEA");
        clients.push(c);
    }
    let subs = Arc::new(subs.to_vec());
    // Warm-up (fills the auth cache, reserves SQN blocks).
    let stop = Arc::new(AtomicBool::new(false));
    let run = |measure: bool, stop: Arc<AtomicBool>| {
        let mut tasks = Vec::new();
        for (ci, c) in clients.iter().enumerate() {
            for t in 0..in_flight {
                let c = c.clone();
                let subs = subs.clone();
                let stop = stop.clone();
                tasks.push(tokio::spawn(async move {
                    let mut lat = Vec::with_capacity(if measure { 200_000 } else { 0 });
                    let mut i = ci * 7919 + t * 31;
                    let mut errors = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let (impi, impu) = &subs[i % subs.len()];
                        i += 1;
                        let req = MultimediaAuthRequest::new(
                            impi,
                            impu,
                            "sip:scscf.ims.test:6060",
                            SipAuthScheme::DigestAkaV1Md5,
                            1,
                        );
                        let t0 = Instant::now();
                        match c.mar(req).await {
                            Ok(a) if a.outcome == CxOutcome::Success => {
                                if measure {
                                    lat.push(t0.elapsed().as_micros().min(u32::MAX as u128) as u32)
                                }
                            }
                            _ => errors += 1,
                        }
                    }
                    (lat, errors)
                }));
            }
        }
        tasks
    };
    let warm = run(false, stop.clone());
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.store(true, Ordering::Relaxed);
    for t in warm {
        let _ = t.await;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let t0 = Instant::now();
    let tasks = run(true, stop.clone());
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.expect("task");
        all.extend(l);
        errors += e;
    }
    let elapsed = t0.elapsed().as_secs_f64();
    all.sort_unstable();
    println!(
        "{name:<34} {:>9.0} MAR/s  p50 {:>6.2} ms  p99 {:>6.2} ms  max {:>7.2} ms  ({} MAAs, {} errors, {:.1} s)",
        all.len() as f64 / elapsed,
        pct(&all, 0.50),
        pct(&all, 0.99),
        pct(&all, 1.0),
        all.len(),
        errors,
        elapsed
    );
    for c in &clients {
        c.close().await;
    }
}

fn main() {
    let secs: u64 = std::env::var("MAR_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let n_subs: usize = std::env::var("MAR_BENCH_SUBSCRIBERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let dir = std::env::temp_dir().join(format!("ims-hss-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let db = dir.join("hss.db").display().to_string();
        let mut settings = HssSettings::new("ims.test");
        settings.diameter_listen = "127.0.0.1:0".parse().expect("addr");
        settings.http_listen = None;
        settings.db_url = db.clone();
        settings.policy = ServerPolicy::single("sip:scscf.ims.test:6060");
        let hss = ims_hss::start(settings).await.expect("HSS");
        let mut subs = Vec::new();
        for i in 0..n_subs {
            let imsi = format!("00101{:010}", i);
            let s = hss
                .store()
                .create(NewSubscriber {
                    imsi: imsi.clone(),
                    impi: None,
                    impus: vec![Impu { uri: format!("sip:{imsi}@ims.test"), irs: 0, barred: false }],
                    aka: Some(
                        aka_from_hex(
                            "465b5ce8b199b49faa5f0a2ee238a6bc",
                            None,
                            Some("cd63cb71954a9f4e48a5994e37a02baf"),
                        )
                        .expect("keys"),
                    ),
                    amf: None,
                    sqn: None,
                    password: None,
                    ifc_xml: None,
                    scscf_name: None,
                })
                .await
                .expect("provision");
            subs.push((s.impi.clone(), s.impus[0].uri.clone()));
        }
        println!("machine: {}", machine());
        println!(
            "store: SQLite {db} (WAL), {n_subs} subscribers, 1 AKA vector per MAR, HSS and client in one process"
        );
        let addr = hss.diameter_addr();
        scenario("1 connection, 1 in flight", addr, 1, 1, &subs, secs).await;
        scenario("1 connection, 64 in flight", addr, 1, 64, &subs, secs).await;
        scenario("4 connections, 32 in flight each", addr, 4, 32, &subs, secs).await;
        scenario("1 subscriber, 4 conns x 32", addr, 4, 32, &subs[..1], secs).await;
        hss.shutdown().await;
        let _ = std::fs::remove_dir_all(&dir);
    });
}
