//! Running SIPp (Debian `sip-tester`), the independent SIP client of the end-to-end tests.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};

/// Path of a scenario file shipped in `tests/scenarios/`.
pub fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(name)
}

/// Fails with a clear message when `sipp` is not installed.
pub fn require_sipp() -> Result<()> {
    match Command::new("sipp").arg("-v").output() {
        Ok(_) => Ok(()),
        Err(e) => bail!(
            "sipp is not installed ({e}): install Debian's sip-tester (scripts/install-test-deps.sh does)"
        ),
    }
}

/// Transport SIPp uses towards the P-CSCF.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// `-t u1`: one UDP socket.
    Udp,
    /// `-t t1`: one TCP connection.
    Tcp,
    /// `-t tn`: one TCP connection per call.
    TcpPerCall,
}

/// One SIPp run.
pub struct Sipp {
    pub scenario: PathBuf,
    pub target: SocketAddr,
    pub local_ip: String,
    pub transport: Transport,
    pub calls: u32,
    pub rate: u32,
    pub limit: u32,
    pub inf: Option<PathBuf>,
    pub timeout: Duration,
    pub work_dir: PathBuf,
    pub extra: Vec<String>,
}

/// What a SIPp run did.
#[derive(Debug, Default, Clone)]
pub struct SippOutcome {
    pub exit_code: i32,
    pub successful: u64,
    pub failed: u64,
    /// Failures where SIPp received an unexpected message (e.g. a 403 instead of 200).
    pub failed_unexpected_msg: u64,
    pub elapsed_s: f64,
    pub stdout_tail: String,
    pub errors_tail: String,
    /// The last messages SIPp sent and received (`-trace_msg`).
    pub messages_tail: String,
    /// Response codes of the unexpected messages (`-trace_error_codes`).
    pub error_codes: Vec<u16>,
}

impl Sipp {
    /// A run of `scenario` against `target` with defaults: UDP, one call.
    pub fn new(scenario: PathBuf, target: SocketAddr, local_ip: &str, work_dir: &Path) -> Sipp {
        Sipp {
            scenario,
            target,
            local_ip: local_ip.to_string(),
            transport: Transport::Udp,
            calls: 1,
            rate: 10,
            limit: 100,
            inf: None,
            timeout: Duration::from_secs(60),
            work_dir: work_dir.to_path_buf(),
            extra: Vec::new(),
        }
    }

    /// Runs SIPp to completion and reads its statistics file.
    pub fn run(&self) -> Result<SippOutcome> {
        require_sipp()?;
        let stem = self
            .scenario
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        let tag = format!("{stem}-{}", rand::random::<u32>());
        let stat = self.work_dir.join(format!("{tag}.csv"));
        let errors = self.work_dir.join(format!("{tag}-errors.log"));
        let messages = self.work_dir.join(format!("{tag}-messages.log"));
        let t = match self.transport {
            Transport::Udp => "u1",
            Transport::Tcp => "t1",
            Transport::TcpPerCall => "tn",
        };
        let mut cmd = Command::new("sipp");
        cmd.arg(self.target.to_string())
            .args(["-sf", &self.scenario.to_string_lossy()])
            .args(["-i", &self.local_ip, "-p", "0"])
            .args(["-t", t])
            .args(["-m", &self.calls.to_string()])
            .args(["-r", &self.rate.to_string()])
            .args(["-l", &self.limit.to_string()])
            .args(["-timeout", &format!("{}s", self.timeout.as_secs())])
            .arg("-timeout_error")
            .args(["-recv_timeout", "10000"])
            .args(["-trace_stat", "-stf", &stat.to_string_lossy()])
            .args(["-fd", "1"])
            .args(["-trace_err", "-error_file", &errors.to_string_lossy()])
            .arg("-trace_error_codes")
            .args(["-trace_msg", "-message_file", &messages.to_string_lossy()])
            .arg("-nostdin")
            .current_dir(&self.work_dir);
        if let Some(inf) = &self.inf {
            cmd.args(["-inf", &inf.to_string_lossy()]);
        }
        cmd.args(&self.extra);
        let started = std::time::Instant::now();
        cmd.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let child = cmd.spawn().context("running sipp")?;
        let pid = child.id();
        let out = child.wait_with_output().context("waiting for sipp")?;
        let codes = self.work_dir.join(format!("{stem}_{pid}_error_codes.log"));
        let elapsed_s = started.elapsed().as_secs_f64();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        let mut outcome = SippOutcome {
            exit_code: out.status.code().unwrap_or(-1),
            elapsed_s,
            stdout_tail: tail(&stdout, 30),
            errors_tail: tail(&std::fs::read_to_string(&errors).unwrap_or_default(), 60),
            messages_tail: tail(&std::fs::read_to_string(&messages).unwrap_or_default(), 80),
            ..Default::default()
        };
        outcome.error_codes = std::fs::read_to_string(&codes)
            .unwrap_or_default()
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|s| s.parse::<u16>().ok())
            .filter(|c| (100..700).contains(c))
            .collect();
        if outcome.error_codes.is_empty() {
            // SIPp names the unexpected message that aborted a call in its error log:
            // "Aborting call on unexpected message … received 'SIP/2.0 403 Forbidden …".
            // ("Dead call … received" lines are late retransmissions, not failures.)
            let errs = std::fs::read_to_string(&errors).unwrap_or_default();
            outcome.error_codes = aborting_codes(&errs);
        }
        let stats = std::fs::read_to_string(&stat).unwrap_or_default();
        if let Some((succ, failed, unexpected)) = parse_stats(&stats) {
            outcome.successful = succ;
            outcome.failed = failed;
            outcome.failed_unexpected_msg = unexpected;
        }
        Ok(outcome)
    }
}

/// Reads the cumulative `SuccessfulCall(C)`, `FailedCall(C)` and
/// `FailedUnexpectedMessage(C)` columns of the last line of SIPp's `-trace_stat` file.
pub fn parse_stats(csv: &str) -> Option<(u64, u64, u64)> {
    let mut lines = csv.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines.next()?.split(';').collect();
    let last: Vec<&str> = lines.next_back()?.split(';').collect();
    let col = |name: &str| -> u64 {
        header
            .iter()
            .position(|h| *h == name)
            .and_then(|i| last.get(i))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    Some((
        col("SuccessfulCall(C)"),
        col("FailedCall(C)"),
        col("FailedUnexpectedMessage(C)"),
    ))
}

/// Status codes of the responses that aborted calls, from SIPp's error log.
pub fn aborting_codes(errors_log: &str) -> Vec<u16> {
    const ABORT: &str = "Aborting call on unexpected message";
    const RECEIVED: &str = "received 'SIP/2.0 ";
    errors_log
        .match_indices(ABORT)
        .filter_map(|(i, _)| {
            let rest = &errors_log[i..];
            let r = rest.find(RECEIVED)? + RECEIVED.len();
            rest.get(r..r + 3)?.parse().ok()
        })
        .collect()
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cumulative_columns() {
        let csv = "StartTime;SuccessfulCall(P);SuccessfulCall(C);FailedCall(C);FailedUnexpectedMessage(C);\n\
                   x;1;5;2;1;\n";
        assert_eq!(parse_stats(csv), Some((5, 2, 1)));
        assert_eq!(parse_stats(""), None);
    }

    #[test]
    fn only_aborting_messages_count_as_failures() {
        let log = "x: Dead call 1-2@h (successful), received 'SIP/2.0 200 OK\n'\n\
                   y: Aborting call on unexpected message for Call-Id '3': while expecting '200' (index 4), received 'SIP/2.0 403 Forbidden\n";
        assert_eq!(aborting_codes(log), vec![403]);
    }
}
