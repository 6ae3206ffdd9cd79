//! The load generator: one or more SIPp processes (Debian `sip-tester`) running the
//! timed registration scenario at a shared target rate, each from its own loopback
//! address with its own injection file, and what they report: calls completed, the
//! failures by kind, the response times of `-trace_rtt`, and their CPU time.
//!
//! Only the cheap SIPp traces are on (`-trace_stat`, `-trace_err`, `-trace_rtt`):
//! `-trace_msg` (every message to a file) costs SIPp more CPU than the registrations.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use ims_tests::sipp::{aborting_codes, parse_stats};

use super::procstat::waited_children_ticks;

/// One SIPp instance: where it sends from and whom it registers.
#[derive(Clone, Debug)]
pub struct Instance {
    /// Local address (`-i`).
    pub local_ip: String,
    /// Injection file (`-inf`), read sequentially.
    pub csv: PathBuf,
}

/// What one load step produced (all instances together).
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// Registrations that got their 200 OK.
    pub ok: u64,
    /// Calls SIPp failed itself with a 403: its RES truncation (DESIGN.md).
    pub sipp403: u64,
    /// Every other failed call (timeouts, other responses, failed checks).
    pub other: u64,
    /// Wall clock of the step, SIPp start to the last SIPp exit.
    pub elapsed_s: f64,
    /// REGISTER → 200 OK over both steps, ms, sorted.
    pub rtts: Vec<f64>,
    /// CPU seconds used by the SIPp processes.
    pub sipp_cpu_s: f64,
    /// The first lines of the error logs describing other failures.
    pub other_examples: Vec<String>,
}

impl Outcome {
    /// Registrations completed per second (including SIPp's own 403s: those are
    /// complete round trips through the core too).
    pub fn achieved(&self) -> f64 {
        (self.ok + self.sipp403) as f64 / self.elapsed_s.max(0.001)
    }
}

/// `p` (0..=1) percentile of sorted `v`; NaN when empty.
pub fn pct(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// Response times in ms from SIPp's `-trace_rtt` files (`<scenario>_<pid>_rtt.csv`,
/// header `Date_ms;response_time_ms;rtd_no`): the `response_time_ms` column (the
/// second when there is no header).
pub fn parse_rtt_csv(text: &str) -> Vec<f64> {
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

/// Runs `calls` registrations at `rate`/s split over `instances` and waits for all.
pub fn run(
    target: SocketAddr,
    scenario: &Path,
    work: &Path,
    instances: &[Instance],
    rate: u32,
    calls: u32,
) -> Result<Outcome> {
    let dir = work.join(format!("step-{rate}-{}", rand::random::<u32>()));
    std::fs::create_dir_all(&dir)?;
    let n = instances.len().max(1) as u32;
    let ticks_before = waited_children_ticks();
    let started = Instant::now();
    let mut children = Vec::new();
    for (i, inst) in instances.iter().enumerate() {
        let share = |x: u32| x / n + u32::from((i as u32) < x % n);
        let (r, c) = (share(rate).max(1), share(calls));
        if c == 0 {
            continue;
        }
        let stat = dir.join(format!("stat-{i}.csv"));
        let errors = dir.join(format!("errors-{i}.log"));
        let stderr = std::fs::File::create(dir.join(format!("stderr-{i}.log")))?;
        // Queue for up to ~3 s of calls; beyond that the step fails on its rate.
        let limit = (r * 3).max(100);
        let timeout = Duration::from_secs(u64::from(c / r.max(1)) * 4 + 30);
        let child = Command::new("sipp")
            .arg(target.to_string())
            .args(["-sf", &scenario.to_string_lossy()])
            .args(["-i", &inst.local_ip, "-p", "0", "-t", "u1"])
            .args(["-m", &c.to_string(), "-r", &r.to_string()])
            .args(["-l", &limit.to_string()])
            .args(["-timeout", &format!("{}s", timeout.as_secs())])
            .arg("-timeout_error")
            .args(["-recv_timeout", "10000"])
            .args(["-trace_stat", "-stf", &stat.to_string_lossy(), "-fd", "1"])
            .args(["-trace_err", "-error_file", &errors.to_string_lossy()])
            .args(["-trace_rtt", "-rtt_freq", "200"])
            .args(["-inf", &inst.csv.to_string_lossy()])
            .arg("-nostdin")
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .context("running sipp (install Debian's sip-tester)")?;
        children.push((child, stat, errors, dir.join(format!("stderr-{i}.log"))));
    }
    let mut out = Outcome::default();
    for (mut child, stat, errors, stderr) in children {
        let status = child.wait().context("waiting for sipp")?;
        if !status.success() && status.code() != Some(1) {
            // 0: all calls successful, 1: some failed (counted below); else SIPp broke.
            let e = std::fs::read_to_string(&stderr).unwrap_or_default();
            let e: String = e.chars().take(500).collect();
            out.other_examples
                .push(format!("sipp exited with {status}: {}", e.trim()));
        }
        let stats = std::fs::read_to_string(&stat).unwrap_or_default();
        let (ok, failed, _) = parse_stats(&stats).unwrap_or_default();
        let errs = std::fs::read_to_string(&errors).unwrap_or_default();
        let c403 = aborting_codes(&errs).iter().filter(|c| **c == 403).count() as u64;
        let c403 = c403.min(failed);
        out.ok += ok;
        out.sipp403 += c403;
        out.other += failed - c403;
        if failed > c403 {
            out.other_examples.extend(
                errs.split('\n')
                    // Entries start with a tab-separated timestamp; the lines after
                    // one are the message it quotes.
                    .filter(|l| {
                        l.contains('\t')
                            && l.contains(": ")
                            && !l.contains("Dead call")
                            && !l.contains("403 Forbidden")
                    })
                    .take(3)
                    .map(|l| l.chars().take(300).collect::<String>()),
            );
        }
    }
    out.elapsed_s = started.elapsed().as_secs_f64();
    out.sipp_cpu_s =
        (waited_children_ticks() - ticks_before) as f64 / super::procstat::clk_tck() as f64;
    for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        if e.file_name().to_string_lossy().ends_with("_rtt.csv") {
            out.rtts.extend(parse_rtt_csv(
                &std::fs::read_to_string(e.path()).unwrap_or_default(),
            ));
        }
    }
    out.rtts
        .sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    Ok(out)
}
