//! Test support (feature `uml`): run a `#[test]` inside user-mode Linux, where the
//! kernel has ESP, and build the two-host topology there. Used by this crate's
//! `tests/uml_esp.rs` and meant for the P-CSCF and UE-simulator end-to-end tests
//! (see `uml/README.md` at the repository root).
//!
//! Pattern: the test calls [`rerun_test_in_uml`] with its own name; that boots UML
//! through `uml/run.sh`, which runs the same test binary
//! (`std::env::current_exe()`) with `--exact <name>` and [`INNER_ENV`] set. The test
//! checks [`is_inside_uml`] first and, when true, does the real work: [`netns_up`],
//! then [`in_netns`] to create sockets or netlink connections in `ue` / `pcscf`.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

/// Environment variable set for the test binary re-run inside UML.
pub const INNER_ENV: &str = "IMS_UML_INNER";

/// Namespace of the UE host made by [`netns_up`].
pub const NS_UE: &str = "ue";
/// Namespace of the P-CSCF host made by [`netns_up`].
pub const NS_PCSCF: &str = "pcscf";
/// UE IPv4 address on the veth (`10.45.0.2/24`).
pub const UE_V4: &str = "10.45.0.2";
/// P-CSCF IPv4 address on the veth (`10.45.0.1/24`).
pub const PCSCF_V4: &str = "10.45.0.1";
/// UE IPv6 address (`fd00::2/64`).
pub const UE_V6: &str = "fd00::2";
/// P-CSCF IPv6 address (`fd00::1/64`).
pub const PCSCF_V6: &str = "fd00::1";

/// The repository's `uml/` directory (scripts `run.sh`, `init.sh`, `netns.sh`).
pub fn uml_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../uml"))
}

/// True in the copy of the test running inside UML.
pub fn is_inside_uml() -> bool {
    std::env::var_os(INNER_ENV).is_some()
}

/// How to boot UML.
#[derive(Debug, Clone)]
pub struct UmlOptions {
    /// Kill UML after this long (run.sh exits 124).
    pub timeout: Duration,
    /// Kernel modules added to run.sh's default list.
    pub extra_modules: Vec<String>,
    /// Replace run.sh's default module list (to test behaviour without some modules).
    pub only_modules: Option<Vec<String>>,
    /// Extra environment for the inner run (names are passed through by run.sh).
    pub env: Vec<(String, String)>,
}

impl Default for UmlOptions {
    fn default() -> Self {
        UmlOptions {
            timeout: Duration::from_secs(240),
            extra_modules: Vec::new(),
            only_modules: None,
            env: Vec::new(),
        }
    }
}

/// Output of a UML run.
#[derive(Debug)]
pub struct UmlRun {
    /// Exit status of run.sh: the inner test's, or 124 (timeout) / 125 (UML failed).
    pub status: ExitStatus,
    /// The inner test's stdout.
    pub stdout: String,
    /// The inner test's stderr plus run.sh's messages.
    pub stderr: String,
    /// Wall time including boot.
    pub elapsed: Duration,
}

/// Why UML could not be started.
#[derive(Debug, thiserror::Error)]
pub enum UmlError {
    /// Not root.
    #[error("tests in user-mode Linux need root (CI runs as root); run `sudo -E cargo test`")]
    NotRoot,
    /// No kernel.
    #[error("user-mode Linux kernel {0} not found: install the Debian package user-mode-linux (scripts/install-test-deps.sh)")]
    KernelMissing(String),
    /// run.sh could not be spawned.
    #[error("cannot start {0}: {1}")]
    Spawn(String, io::Error),
}

/// Boots UML and runs the calling test binary's test `test_name` inside it (see the
/// module docs). The caller asserts on the result.
pub fn rerun_test_in_uml(test_name: &str, opts: &UmlOptions) -> Result<UmlRun, UmlError> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(UmlError::NotRoot);
    }
    let kernel = std::env::var("UML_KERNEL").unwrap_or_else(|_| "/usr/bin/linux.uml".into());
    if !std::path::Path::new(&kernel).exists() {
        return Err(UmlError::KernelMissing(kernel));
    }
    let run_sh = uml_dir().join("run.sh");
    let exe = std::env::current_exe().map_err(|e| UmlError::Spawn("current_exe".into(), e))?;
    let mut cmd = Command::new(&run_sh);
    cmd.arg("--timeout").arg(opts.timeout.as_secs().to_string());
    if !opts.extra_modules.is_empty() {
        cmd.arg("--modules").arg(opts.extra_modules.join(" "));
    }
    if let Some(only) = &opts.only_modules {
        cmd.arg("--only-modules").arg(only.join(" "));
    }
    cmd.arg("--")
        .arg(&exe)
        .args(["--exact", test_name, "--nocapture", "--test-threads=1"])
        .env(INNER_ENV, test_name);
    let mut pass = Vec::new();
    for (k, v) in &opts.env {
        cmd.env(k, v);
        pass.push(k.clone());
    }
    if !pass.is_empty() {
        cmd.env("UML_PASS_ENV", pass.join(" "));
    }
    let started = Instant::now();
    let out = cmd
        .output()
        .map_err(|e| UmlError::Spawn(run_sh.display().to_string(), e))?;
    Ok(UmlRun {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed: started.elapsed(),
    })
}

/// Runs a command, returning stdout, or an error with its stderr.
pub fn sh(args: &[&str]) -> Result<String, String> {
    let (prog, rest) = args.split_first().ok_or("empty command")?;
    let out = Command::new(prog)
        .args(rest)
        .output()
        .map_err(|e| format!("cannot run {args:?}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{args:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Creates namespaces `ue` and `pcscf` joined by a veth pair (`uml/netns.sh up`).
pub fn netns_up() -> Result<(), String> {
    sh(&[&uml_dir().join("netns.sh").to_string_lossy(), "up"]).map(drop)
}

/// Removes them (`uml/netns.sh down`).
pub fn netns_down() -> Result<(), String> {
    sh(&[&uml_dir().join("netns.sh").to_string_lossy(), "down"]).map(drop)
}

/// Runs `f` on a thread that entered network namespace `ns` (`/run/netns/<ns>`).
/// Sockets and netlink connections made there stay in `ns` when handed back.
pub fn in_netns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> io::Result<T> {
    std::thread::scope(|s| {
        s.spawn(|| {
            let fd = File::open(format!("/run/netns/{ns}"))?;
            // SAFETY: setns on a valid namespace fd affects only the calling thread.
            if unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(f())
        })
        .join()
        .map_err(|_| io::Error::other(format!("thread in netns {ns} panicked")))?
    })
}
