//! Registration benchmark (not a timed test): the four role processes (release build)
//! on loopback, SIPp as the load generator with full two-step IMS-AKA registrations
//! (REGISTER, 401, REGISTER with the AKAv1-MD5 response, 200 OK; the P-CSCF's
//! reg-event SUBSCRIBE and the S-CSCF's NOTIFYs come with each new registration).
//!
//! Prints the machine and its load average, the memory of the roles per 10,000
//! registered UEs, then a rate sweep: each step is run several times; per run the
//! target and achieved rate, registrations ok, SIPp's own RES-truncation 403s (counted
//! apart, DESIGN.md), other failures, p50/p99 REGISTER→200 over both steps, and the CPU
//! time per registration of each role and of SIPp (load-independent, unlike the rate).
//! The sweep stops at the first step with a failure or below 90 % of its target; the
//! highest zero-failure rate is the median achieved rate of the last good step.
//!
//! Run: `cargo build --release --workspace --bins && cargo bench -p ims-tests --bench registration`
//! Options (env): BENCH_SUBSCRIBERS (10000), BENCH_RATES ("250,500,1000,2000,3000,5000"),
//! BENCH_SECONDS (10 per run), BENCH_REPEAT (3 runs per step), BENCH_SIPP (SIPp
//! instances, 2), BENCH_MEMORY_RATE (500), BENCH_SETTLE_SECONDS (35: Timer J is 32 s).
//! RUST_LOG of the roles: as set, else `info` (what a deployment runs with).
//! BENCH_WORKERS (1): tokio worker threads per role process (`TOKIO_WORKER_THREADS`;
//! `default` leaves tokio's one per core): four roles and SIPp share the cores, and one
//! worker each used less CPU per registration and halved latency at low rates.

#[path = "support/load.rs"]
mod load;
#[path = "support/procstat.rs"]
mod procstat;

use std::time::{Duration, Instant};

use anyhow::Result;
use ims_tests::lab::Lab;
use ims_tests::sipp::{require_sipp, scenario};
use ims_tests::subscribers::{sipp_csv, Subscriber};

use load::{pct, Instance, Outcome};
use procstat::{clk_tck, cpu_ticks, load1, loadavg, machine, rss_kib};

fn env_or<T: std::str::FromStr>(k: &str, d: T) -> T {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| !x.is_nan());
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v[v.len() / 2]
}

/// One run of a step with the CPU each role and SIPp used per registration.
struct Run {
    out: Outcome,
    /// µs of CPU per completed registration: P, I, S, HSS, SIPp.
    cpu_us: [f64; 5],
    load: f64,
}

fn row(target: u32, r: &Run) -> String {
    let o = &r.out;
    format!(
        "{target:>6} | {:>8.0} | {:>6} | {:>4} | {:>5} | {:>7.1} | {:>7.1} | {:>5.0} {:>5.0} {:>5.0} {:>5.0} {:>5.0} | {:>4.1}",
        o.achieved(),
        o.ok,
        o.sipp403,
        o.other,
        pct(&o.rtts, 0.5),
        pct(&o.rtts, 0.99),
        r.cpu_us[0],
        r.cpu_us[1],
        r.cpu_us[2],
        r.cpu_us[3],
        r.cpu_us[4],
        r.load
    )
}

fn main() -> Result<()> {
    require_sipp()?;
    let n: u32 = env_or("BENCH_SUBSCRIBERS", 10_000);
    let secs: u32 = env_or("BENCH_SECONDS", 10);
    let repeat: usize = env_or("BENCH_REPEAT", 3usize).max(1);
    let sipps: usize = env_or("BENCH_SIPP", 2usize).clamp(1, 8);
    let memory_rate: u32 = env_or("BENCH_MEMORY_RATE", 500);
    let settle: u64 = env_or("BENCH_SETTLE_SECONDS", 35);
    let rates: Vec<u32> = std::env::var("BENCH_RATES")
        .unwrap_or_else(|_| "250,500,1000,2000,3000,5000".into())
        .split(',')
        .filter_map(|r| r.trim().parse().ok())
        .collect();
    let workers = std::env::var("BENCH_WORKERS").unwrap_or_else(|_| "1".into());
    if workers != "default" {
        // Inherited by the role processes the lab spawns.
        std::env::set_var("TOKIO_WORKER_THREADS", &workers);
    }
    println!("machine: {}", machine());
    println!("load average at start: {}", loadavg());
    println!(
        "subscribers {n}, {secs} s per run, {repeat} runs per step, {sipps} SIPp instance(s), roles' RUST_LOG={}, TOKIO_WORKER_THREADS={}",
        std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
        std::env::var("TOKIO_WORKER_THREADS").unwrap_or_else(|_| "(tokio default)".into())
    );
    let mut lab = Lab::start(40)?;
    let subs: Vec<Subscriber> = (100_000..100_000 + n).map(Subscriber::nth).collect();
    let t = Instant::now();
    for s in &subs {
        lab.provision(s)?;
    }
    println!(
        "provisioned {n} subscribers over the HSS REST API in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    // Each SIPp instance registers its own share of the subscribers from its own address.
    let instances: Vec<Instance> = (0..sipps)
        .map(|i| {
            let share: Vec<Subscriber> = subs.iter().skip(i).step_by(sipps).cloned().collect();
            let csv = lab.path().join(format!("bench-{i}.csv"));
            std::fs::write(&csv, sipp_csv(&share))?;
            Ok(Instance {
                local_ip: lab.ip(10 + i as u8),
                csv,
            })
        })
        .collect::<Result<_>>()?;
    let timed = scenario("reg_aka_timed.xml");
    let roles =
        [&lab.pcscf, &lab.icscf, &lab.scscf, &lab.hss].map(|p| (p.name.clone(), p.child.id()));
    let tck = clk_tck() as f64;

    // Memory: every subscriber registered once; RSS at once and after Timer J.
    let before: Vec<u64> = roles.iter().map(|(_, p)| rss_kib(*p)).collect();
    let out = load::run(
        lab.pcscf_addr(),
        &timed,
        lab.path(),
        &instances,
        memory_rate,
        n,
    )?;
    let at_once: Vec<u64> = roles.iter().map(|(_, p)| rss_kib(*p)).collect();
    std::thread::sleep(Duration::from_secs(settle));
    let settled: Vec<u64> = roles.iter().map(|(_, p)| rss_kib(*p)).collect();
    let registered = out.ok;
    println!(
        "registered {registered} of {n} at {memory_rate}/s ({} SIPp-403s, {} other failures)",
        out.sipp403, out.other
    );
    let per10k =
        |b: u64, a: u64| a.saturating_sub(b) as f64 / 1024.0 * 10_000.0 / registered.max(1) as f64;
    for (i, (name, _)) in roles.iter().enumerate() {
        println!(
            "memory {name}: {:.1} MiB idle, {:.1} MiB right after, {:.1} MiB {settle} s later; +{:.1} MiB per 10,000 UEs (+{:.1} right after)",
            before[i] as f64 / 1024.0,
            at_once[i] as f64 / 1024.0,
            settled[i] as f64 / 1024.0,
            per10k(before[i], settled[i]),
            per10k(before[i], at_once[i]),
        );
    }
    let sum = |v: &[u64]| v.iter().sum::<u64>();
    println!(
        "memory all roles: +{:.1} MiB per 10,000 registered UEs after {settle} s (+{:.1} right after)",
        per10k(sum(&before), sum(&settled)),
        per10k(sum(&before), sum(&at_once)),
    );

    println!(
        "rate sweep ({secs} s per run, {repeat} runs per step; CPU µs per registration of P, I, S, HSS, SIPp)"
    );
    println!("target | achieved |     ok | S403 | other | p50 ms  | p99 ms  |     P     I     S   HSS  SIPp | load");
    let mut best: Option<(u32, f64)> = None;
    'steps: for &rate in &rates {
        let mut runs = Vec::new();
        for _ in 0..repeat {
            let cpu0: Vec<u64> = roles.iter().map(|(_, p)| cpu_ticks(*p)).collect();
            let out = load::run(
                lab.pcscf_addr(),
                &timed,
                lab.path(),
                &instances,
                rate,
                rate * secs,
            )?;
            let done = (out.ok + out.sipp403).max(1) as f64;
            let mut cpu_us = [0.0; 5];
            for (i, (_, p)) in roles.iter().enumerate() {
                cpu_us[i] = (cpu_ticks(*p) - cpu0[i]) as f64 / tck * 1e6 / done;
            }
            cpu_us[4] = out.sipp_cpu_s * 1e6 / done;
            let r = Run {
                out,
                cpu_us,
                load: load1(),
            };
            println!("{}", row(rate, &r));
            for e in &r.out.other_examples {
                println!("    failure: {e}");
            }
            let bad = r.out.other > 0 || r.out.achieved() < f64::from(rate) * 0.9;
            runs.push(r);
            if bad {
                break;
            }
        }
        let med = |f: &dyn Fn(&Run) -> f64| median(runs.iter().map(f).collect());
        let achieved = med(&|r| r.out.achieved());
        println!(
            "{rate:>6} | {achieved:>8.0} | median of {}: p50 {:.1} ms, p99 {:.1} ms, CPU µs/reg P {:.0} I {:.0} S {:.0} HSS {:.0} SIPp {:.0}",
            runs.len(),
            med(&|r| pct(&r.out.rtts, 0.5)),
            med(&|r| pct(&r.out.rtts, 0.99)),
            med(&|r| r.cpu_us[0]),
            med(&|r| r.cpu_us[1]),
            med(&|r| r.cpu_us[2]),
            med(&|r| r.cpu_us[3]),
            med(&|r| r.cpu_us[4]),
        );
        let failed = runs.iter().any(|r| r.out.other > 0);
        if failed || achieved < f64::from(rate) * 0.9 {
            println!(
                "step {rate}/s: {}; sweep stopped",
                if failed {
                    "failures"
                } else {
                    "below 90 % of the target"
                }
            );
            break 'steps;
        }
        best = Some((rate, achieved));
        lab.assert_running()?;
    }
    match best {
        Some((rate, achieved)) => println!(
            "highest sustained rate with zero failures: {achieved:.0} registrations/s (step {rate}/s)"
        ),
        None => println!("highest sustained rate with zero failures: none (the first step failed)"),
    }
    println!("load average at end: {}", loadavg());
    lab.assert_running()?;
    Ok(())
}
