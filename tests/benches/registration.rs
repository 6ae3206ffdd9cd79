//! Registration benchmark (not a timed test): the four role processes (release build)
//! on loopback, SIPp as the load generator with full two-step IMS-AKA registrations.
//! Prints the highest sustained rate with zero failures (SIPp's own RES-truncation
//! 403s counted apart, DESIGN.md), p50/p99 REGISTER→200 latency (both steps), and the
//! memory of the roles per 10,000 registered UEs, with the machine.
//!
//! Run: `cargo build --release --workspace --bins && cargo bench -p ims-tests --bench registration`
//! Options (env): BENCH_SUBSCRIBERS (10000), BENCH_RATES ("250,500,1000,2000,3000,5000"),
//! BENCH_SECONDS (10).

use std::time::Duration;

use anyhow::Result;
use ims_tests::lab::Lab;
use ims_tests::sipp::{scenario, Sipp};
use ims_tests::subscribers::{sipp_csv, Subscriber};

fn env_or<T: std::str::FromStr>(k: &str, d: T) -> T {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_default();
    let n = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    format!("{n} cores, {cpu}")
}

/// Response times in ms from SIPp's `-trace_rtt` files in `dir`. SIPp 3.6 writes
/// `<scenario>_<pid>_rtt.csv` with the header `Date_ms;response_time_ms;rtd_no` and rows
/// like `1732312345678.123;4.201000;reg;`: the response time is the column named
/// `response_time_ms` (the second when there is no header).
fn rtts(dir: &std::path::Path) -> Vec<f64> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if name.ends_with("_rtt.csv") {
            let text = std::fs::read_to_string(e.path()).unwrap_or_default();
            v.extend(parse_rtt_csv(&text));
            let _ = std::fs::remove_file(e.path());
        }
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v
}

fn parse_rtt_csv(text: &str) -> Vec<f64> {
    let mut col = 1;
    let mut out = Vec::new();
    for line in text.lines() {
        let cells: Vec<&str> = line.split(';').map(str::trim).collect();
        if let Some(i) = cells.iter().position(|c| c.contains("response_time")) {
            col = i;
            continue;
        }
        if let Some(x) = cells.get(col).and_then(|c| c.parse::<f64>().ok()) {
            out.push(x);
        }
    }
    out
}

fn pct(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn main() -> Result<()> {
    let n: u32 = env_or("BENCH_SUBSCRIBERS", 10_000);
    let secs: u32 = env_or("BENCH_SECONDS", 10);
    let rates: Vec<u32> = std::env::var("BENCH_RATES")
        .unwrap_or_else(|_| "250,500,1000,2000,3000,5000".into())
        .split(',')
        .filter_map(|r| r.trim().parse().ok())
        .collect();
    println!("machine: {}", machine());
    let mut lab = Lab::start(40)?;
    let subs: Vec<Subscriber> = (100_000..100_000 + n).map(Subscriber::nth).collect();
    for s in &subs {
        lab.provision(s)?;
    }
    let csv = lab.path().join("bench.csv");
    std::fs::write(&csv, sipp_csv(&subs))?;
    let pids =
        [&lab.hss, &lab.scscf, &lab.icscf, &lab.pcscf].map(|p| (p.name.clone(), p.child.id()));
    let before: Vec<u64> = pids.iter().map(|(_, p)| rss_kib(*p)).collect();

    // Register every subscriber once at a moderate rate, for the memory figure.
    let mut s = Sipp::new(
        scenario("reg_aka.xml"),
        lab.pcscf_addr(),
        &lab.client_ip(),
        lab.path(),
    );
    s.inf = Some(csv.clone());
    s.calls = n;
    s.rate = 500;
    s.limit = 1000;
    s.timeout = Duration::from_secs(u64::from(n) / 100 + 60);
    let out = s.run()?;
    let after: Vec<u64> = pids.iter().map(|(_, p)| rss_kib(*p)).collect();
    println!(
        "registered {} of {n} (403s from SIPp RES truncation: {})",
        out.successful,
        out.error_codes.iter().filter(|c| **c == 403).count()
    );
    let per10k = |b: u64, a: u64| {
        (a.saturating_sub(b)) as f64 / 1024.0 * 10_000.0 / out.successful.max(1) as f64
    };
    for (i, (name, _)) in pids.iter().enumerate() {
        println!(
            "memory {name}: {:.1} MiB idle, {:.1} MiB with {} UEs registered, +{:.1} MiB per 10,000 UEs",
            before[i] as f64 / 1024.0,
            after[i] as f64 / 1024.0,
            out.successful,
            per10k(before[i], after[i])
        );
    }
    let total_b: u64 = before.iter().sum();
    let total_a: u64 = after.iter().sum();
    println!(
        "memory all roles: +{:.1} MiB per 10,000 registered UEs",
        per10k(total_b, total_a)
    );

    println!("rate sweep ({secs} s per step): target/s | achieved/s | ok | SIPp-403 | other failures | p50 ms | p99 ms");
    let mut best = 0.0f64;
    for rate in rates {
        let _ = rtts(lab.path());
        let mut s = Sipp::new(
            scenario("reg_aka_timed.xml"),
            lab.pcscf_addr(),
            &lab.client_ip(),
            lab.path(),
        );
        s.inf = Some(csv.clone());
        s.calls = rate * secs;
        s.rate = rate;
        s.limit = rate * 2;
        s.timeout = Duration::from_secs(u64::from(secs) * 4 + 30);
        s.extra = vec!["-trace_rtt".into(), "-rtt_freq".into(), "100".into()];
        let out = s.run()?;
        let r = rtts(lab.path());
        let sipp403 = out.error_codes.iter().filter(|c| **c == 403).count() as u64;
        let other = out.failed.saturating_sub(sipp403);
        let achieved = out.successful as f64 / out.elapsed_s.max(0.001);
        println!(
            "{rate} | {achieved:.0} | {} | {sipp403} | {other} | {:.2} | {:.2}",
            out.successful,
            pct(&r, 0.5),
            pct(&r, 0.99)
        );
        if other > 0 || achieved < f64::from(rate) * 0.9 {
            break;
        }
        best = best.max(achieved);
    }
    println!("highest sustained rate with zero failures: {best:.0} registrations/s");
    lab.assert_running()?;
    Ok(())
}
