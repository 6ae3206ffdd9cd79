//! Gm IPsec end to end in a real kernel with ESP (issue 4): user-mode Linux with two
//! network namespaces joined by a veth pair — `pcscf` (10.45.0.1) runs the whole core
//! (`hss`, `scscf`, `icscf`, `pcscf` processes, started by `uml-scripts/gm-core.sh`),
//! `ue` (10.45.0.2) runs the UEs.
//!
//! - [`independent_ue_registers_through_esp_in_uml`]: a test UE that is not the
//!   project's code — REGISTERs written as text, AKA with the `milenage` crate directly,
//!   its four SAs installed with iproute2 (`ip xfrm state/policy add`) from keys derived
//!   here (TS 33.203 Annex I: IK‖0³² for hmac-sha-1-96, CK for aes-cbc) — registers over
//!   UDP and over TCP: the protected REGISTER and its 200 OK cross ESP (the
//!   `ip -s xfrm state` packet counters of all four SAs grow on both sides), and the
//!   reg-event NOTIFY reaches the UE's protected server port through ESP; a protected
//!   REGISTER with a wrong `Security-Verify` is not registered and leaves no SA behind
//!   at the P-CSCF. Two UEs fail the way handsets do (FIELD-LESSONS item 1), and the
//!   P-CSCF must say why from the kernel's SA counters: one never answers its 401 ("no
//!   ESP arrived"), one sends its protected REGISTER through SAs keyed with a wrong IK
//!   ("failed the integrity check").
//! - [`independent_ue_registers_over_ipv6_through_esp_in_uml`]: the same UE over IPv6
//!   (fd00::2 → the P-CSCF's `gm_address_v6` fd00::1), UDP and TCP: protected REGISTER,
//!   200 OK and reg-event NOTIFY cross the four IPv6 SAs (counters on both sides).
//! - [`ue_sim_in_uml`]: `ue-sim` registers and de-registers 100 UEs with IPsec (then no
//!   SA and no policy is left at the P-CSCF), re-registers with a new SA set, registers
//!   through every (alg, ealg) pair (each seen in the P-CSCF's kernel with growing
//!   counters), and one run per handset behaviour of `shared/reference/SEC-AGREE.md` /
//!   `FIELD-LESSONS.md` (six offers in Huawei order with large SPIs, Qualcomm-style
//!   spaces without prot/mod, Samsung port-c > port-s with two integrity-only offers,
//!   iPhone single alphabetical offer, a UE without Security-Client under both
//!   policies, de-registration whose 200 OK must arrive protected).
//! - [`pcscf_restart_keeps_live_sas_in_uml`]: a UE registered through ESP, over UDP and
//!   then over TCP, keeps working across P-CSCF restarts — SIGTERM with `[ipsec]
//!   sas_on_shutdown = "keep"` and SIGKILL: the SAs stay, the restarted P-CSCF adopts
//!   them (an MT NOTIFY reaches the UE through ESP, a protected re-REGISTER over the old
//!   set succeeds; over TCP the UE first reconnects from its port-c to the adopted
//!   port-s), de-registration then leaves no SA or policy; with the default `"remove"`
//!   SIGTERM leaves none.
//!
//! All fail with a clear message when not root, when UML is missing, or when the
//! binaries were not built (`cargo build --workspace --bins`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use base64::Engine;
use md5::{Digest, Md5};
use milenage::Milenage;

const ROLE_ENV: &str = "UML_TEST_GM_ROLE";
const DIR_ENV: &str = "UML_TEST_GM_DIR";
const BIN_ENV: &str = "UML_TEST_GM_BIN";
const DOMAIN: &str = "ims.mnc001.mcc001.3gppnetwork.org";
const P_IP: &str = "10.45.0.1";
const UE_IP: &str = "10.45.0.2";
/// IPv6 addresses of the veth pair (uml/netns.sh adds them without DAD).
const P_IP6: &str = "fd00::1";
const UE_IP6: &str = "fd00::2";
/// OP of every test subscriber (TS 35.208 set 1's OP); K is 17 zeros ‖ the IMSI digits.
const OP_HEX: &str = "cdc202d5123e20f62b6d676ac72cb318";
const K_PATTERN: &str = "00000000000000000{imsi}";

fn k_hex(imsi: &str) -> String {
    K_PATTERN.replace("{imsi}", imsi)
}

fn repo_root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// Where the core binaries and ue-sim are taken from: next to the test executable, or
/// `GM_BIN_DIR` when set (to try other builds of the roles).
fn bin_dir() -> PathBuf {
    std::env::var_os("GM_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(ims_tests::procs::bin_dir)
}

// ---------------------------------------------------------------------------------
// Host side: preconditions, configuration, provisioning, booting UML.
// ---------------------------------------------------------------------------------

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

/// Fails (never skips) when this machine cannot run the test.
fn preflight() -> Result<()> {
    if !is_root() {
        bail!(
            "Gm IPsec tests run user-mode Linux and program XFRM: they need root (CI runs as root)"
        );
    }
    let kernel = std::env::var("UML_KERNEL").unwrap_or_else(|_| "/usr/bin/linux.uml".into());
    if !Path::new(&kernel).exists() {
        bail!("user-mode Linux kernel {kernel} not found: install the Debian packages user-mode-linux, kmod, iproute2 (scripts/install-test-deps.sh)");
    }
    for tool in ["ip", "modprobe"] {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).exists()))
            .unwrap_or(false)
            || Path::new("/sbin").join(tool).exists()
            || Path::new("/usr/sbin").join(tool).exists();
        if !found {
            bail!("`{tool}` not found: install iproute2 and kmod (scripts/install-test-deps.sh)");
        }
    }
    for b in ["hss", "scscf", "icscf", "pcscf", "ue-sim"] {
        let p = bin_dir().join(b);
        if !p.exists() {
            bail!("binary {} not found: run `cargo build --workspace --bins` first (scripts/test.sh does)", p.display());
        }
    }
    Ok(())
}

/// P-CSCF settings varied by the tests.
struct CoreOpts {
    allow_unprotected: bool,
    dereg_grace_ms: u64,
    /// The P-CSCF also listens on [`P_IP6`] with `[ipsec] gm_address_v6` set.
    gm_v6: bool,
    /// `[ipsec] unanswered_challenge_s` (0: the default).
    unanswered_challenge_s: u64,
}

fn write_configs(dir: &Path, o: &CoreOpts) -> Result<()> {
    // Databases live in UML's private tmpfs (/run): SQLite's locking and WAL
    // shared memory are not trusted on hostfs. gm-core.sh copies the provisioned
    // hss.db there before starting the HSS.
    let db = |n: &str| format!("sqlite:///run/gm/{n}");
    let w = |name: &str, text: String| std::fs::write(dir.join(name), text);
    w(
        "hss.toml",
        format!(
            "domain = \"{DOMAIN}\"\n[log]\nlevel = \"info\"\n[diameter]\nlisten = \"{P_IP}:3868\"\n[http]\nenabled = false\nlisten = \"{P_IP}:8080\"\n[database]\nurl = \"{}\"\n[server_capabilities]\nserver_names = [\"sip:{P_IP}:5080\"]\n",
            db("hss.db")
        ),
    )?;
    w(
        "scscf.toml",
        format!(
            "domain = \"{DOMAIN}\"\nuri = \"sip:{P_IP}:5080\"\n[sip]\nlisten = [\"udp:{P_IP}:5080\", \"tcp:{P_IP}:5080\"]\n[diameter]\npeers = [\"{P_IP}:3868\"]\norigin_host = \"scscf.{DOMAIN}\"\n[database]\nurl = \"{}\"\n",
            db("scscf.db")
        ),
    )?;
    w(
        "icscf.toml",
        format!(
            "domain = \"{DOMAIN}\"\nscscf_fallback = [\"sip:{P_IP}:5080\"]\n[sip]\nlisten = [\"udp:{P_IP}:5070\", \"tcp:{P_IP}:5070\"]\n[diameter]\npeers = [\"{P_IP}:3868\"]\norigin_host = \"icscf.{DOMAIN}\"\n"
        ),
    )?;
    w(
        "pcscf.toml",
        format!(
            "domain = \"{DOMAIN}\"\nicscf_uri = \"sip:{P_IP}:5070\"\n[log]\nlevel = \"debug\"\n[sip]\nlisten = [\"udp:{P_IP}:5060\", \"tcp:{P_IP}:5060\"{v6_listen}]\n[ipsec]\nenabled = true\ngm_address_v4 = \"{P_IP}\"\n{v6_gm}allow_unprotected = {}\ndereg_grace_ms = {}\n{unanswered}algorithms = [\"hmac-sha-1-96/aes-cbc\", \"hmac-md5-96/aes-cbc\", \"hmac-sha-1-96/des-ede3-cbc\", \"hmac-md5-96/des-ede3-cbc\", \"hmac-sha-1-96/null\", \"hmac-md5-96/null\"]\n[registration]\nsubscribe_reg_event = true\n[database]\nurl = \"{}\"\n",
            o.allow_unprotected,
            o.dereg_grace_ms,
            db("pcscf.db"),
            v6_listen = if o.gm_v6 {
                format!(", \"udp:[{P_IP6}]:5060\", \"tcp:[{P_IP6}]:5060\"")
            } else {
                String::new()
            },
            unanswered = if o.unanswered_challenge_s > 0 {
                format!("unanswered_challenge_s = {}\n", o.unanswered_challenge_s)
            } else {
                String::new()
            },
            v6_gm = if o.gm_v6 {
                format!("gm_address_v6 = \"{P_IP6}\"\n")
            } else {
                String::new()
            },
        ),
    )?;
    Ok(())
}

/// Provisions IMSIs into the HSS database with the `hss` command line (on the host,
/// before UML boots; the HSS inside UML opens the same file through hostfs).
fn provision(dir: &Path, imsis: &[String]) -> Result<()> {
    let hss = bin_dir().join("hss");
    let db = format!("sqlite://{}", dir.join("hss.db").display());
    for imsi in imsis {
        let out = Command::new(&hss)
            .args([
                "--db",
                &db,
                "subscriber",
                "add",
                "--imsi",
                imsi,
                "--impi",
                &format!("{imsi}@{DOMAIN}"),
                "--impu",
                &format!("sip:{imsi}@{DOMAIN}"),
                "--k",
                &k_hex(imsi),
                "--op",
                OP_HEX,
            ])
            .output()
            .context("running hss subscriber add")?;
        if !out.status.success() {
            bail!(
                "hss subscriber add {imsi} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    Ok(())
}

fn imsi(n: u32) -> String {
    format!("00101{n:010}")
}

/// Boots UML and runs this test binary's `test` inside as the orchestrator.
fn boot(test: &str, dir: &Path, timeout_s: u32) -> Result<(bool, String)> {
    let exe = std::env::current_exe()?;
    let started = Instant::now();
    let host0 = host_cpu();
    let out = Command::new(repo_root().join("uml/run.sh"))
        .args(["--timeout", &timeout_s.to_string(), "--"])
        .arg(&exe)
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(ROLE_ENV, "orchestrate")
        .env(DIR_ENV, dir)
        .env(BIN_ENV, bin_dir())
        .current_dir(repo_root())
        .output()
        .context("starting uml/run.sh")?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    println!("{stdout}");
    eprintln!("{stderr}");
    let host1 = host_cpu();
    let d = |i: usize| host1[i].saturating_sub(host0[i]) as f64;
    let total: f64 = (0..host1.len().min(host0.len()))
        .map(d)
        .sum::<f64>()
        .max(1.0);
    // A slow UML run on a shared machine is usually a busy or stolen host: say which.
    eprintln!(
        "UML run of {test}: {} after {:.1} s (host CPUs meanwhile: {:.0} % busy, {:.0} % stolen by the hypervisor)",
        out.status,
        started.elapsed().as_secs_f64(),
        100.0 * (d(0) + d(1) + d(2) + d(5) + d(6)) / total,
        100.0 * d(7) / total
    );
    if !out.status.success() {
        for role in ["pcscf", "scscf", "icscf", "hss"] {
            let log = std::fs::read_to_string(dir.join(format!("{role}.log"))).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            eprintln!(
                "--- {role}.log (last 60 lines) ---\n{}",
                lines[lines.len().saturating_sub(60)..].join("\n")
            );
        }
    }
    Ok((out.status.success(), stdout))
}

/// The host's aggregate CPU jiffies from /proc/stat: user nice system idle iowait irq
/// softirq steal.
fn host_cpu() -> Vec<u64> {
    std::fs::read_to_string("/proc/stat")
        .unwrap_or_default()
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|x| x.parse().ok())
        .chain(std::iter::repeat(0))
        .take(8)
        .collect()
}

fn host_side(test: &str, opts: CoreOpts, imsis: &[String], marker: &str) {
    if let Err(e) = preflight() {
        panic!("{test} cannot run here: {e:#}");
    }
    let dir = tempfile::Builder::new()
        .prefix("gm-ipsec-")
        .tempdir()
        .expect("tempdir");
    write_configs(dir.path(), &opts).expect("configs");
    provision(dir.path(), imsis).expect("provisioning");
    let (ok, stdout) = boot(test, dir.path(), 420).expect("boot");
    if !ok {
        // The whole role logs are worth more than their tails when a run fails.
        let kept = dir.keep();
        panic!(
            "{test} failed inside user-mode Linux (output above; logs kept in {})",
            kept.display()
        );
    }
    assert!(
        ok,
        "{test} failed inside user-mode Linux (output above; logs in {})",
        dir.path().display()
    );
    assert!(
        stdout.contains(marker),
        "{test}: the inner run did not reach its end marker `{marker}`"
    );
    if std::env::var_os("GM_KEEP").is_some() {
        let kept = dir.keep();
        eprintln!("kept {}", kept.display());
    }
}

// ---------------------------------------------------------------------------------
// Inside UML: helpers.
// ---------------------------------------------------------------------------------

fn role() -> Option<String> {
    std::env::var(ROLE_ENV).ok()
}

fn sh(args: &[&str]) -> Result<String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .with_context(|| format!("running {args:?}"))?;
    if !out.status.success() {
        bail!(
            "{args:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn ip_batch(ns: Option<&str>, cmds: &[String]) -> Result<()> {
    let mut c = Command::new("ip");
    if let Some(ns) = ns {
        c.args(["-n", ns]);
    }
    let mut child = c
        .args(["-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .ok_or_else(|| anyhow!("no stdin"))?
        .write_all(cmds.join("\n").as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "ip -batch failed: {}\ncommands:\n{}",
            String::from_utf8_lossy(&out.stderr),
            cmds.join("\n")
        );
    }
    Ok(())
}

/// One SA from `ip -s xfrm state`.
#[derive(Debug, Clone)]
struct SaInfo {
    src: String,
    dst: String,
    spi: u32,
    auth: String,
    enc: String,
    packets: u64,
    sel: String,
}

fn xfrm_states(ns: &str) -> Result<Vec<SaInfo>> {
    let text = sh(&["ip", "-n", ns, "-s", "xfrm", "state"])?;
    let mut out: Vec<SaInfo> = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(l) = lines.next() {
        let t = l.trim();
        if let Some(rest) = l.strip_prefix("src ") {
            let mut it = rest.split_whitespace();
            let src = it.next().unwrap_or("").to_string();
            let dst = it.nth(1).unwrap_or("").to_string();
            out.push(SaInfo {
                src,
                dst,
                spi: 0,
                auth: String::new(),
                enc: String::new(),
                packets: 0,
                sel: String::new(),
            });
            continue;
        }
        let Some(cur) = out.last_mut() else { continue };
        if let Some(rest) = t.strip_prefix("proto esp spi 0x") {
            cur.spi = u32::from_str_radix(rest.get(..8).unwrap_or("0"), 16).unwrap_or(0);
        } else if let Some(rest) = t.strip_prefix("auth-trunc ") {
            cur.auth = rest.split_whitespace().next().unwrap_or("").to_string();
        } else if let Some(rest) = t.strip_prefix("enc ") {
            cur.enc = rest.split_whitespace().next().unwrap_or("").to_string();
        } else if let Some(rest) = t.strip_prefix("sel ") {
            cur.sel = rest.to_string();
        } else if t == "lifetime current:" {
            if let Some(n) = lines.next() {
                // "1234(bytes), 3(packets)"
                cur.packets = n
                    .split(',')
                    .nth(1)
                    .and_then(|p| p.trim().strip_suffix("(packets)"))
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(0);
            }
        }
    }
    Ok(out)
}

fn xfrm_policy_count(ns: &str) -> Result<usize> {
    Ok(sh(&["ip", "-n", ns, "xfrm", "policy"])?
        .lines()
        .filter(|l| l.starts_with("src "))
        .count())
}

fn show_states(ns: &str) -> String {
    match xfrm_states(ns) {
        Ok(v) => v
            .iter()
            .map(|s| {
                format!(
                    "  {} -> {} spi {:#010x} {} {} packets {} sel {}",
                    s.src, s.dst, s.spi, s.auth, s.enc, s.packets, s.sel
                )
            })
            .collect::<Vec<_>>()
            .join("\n"),
        Err(e) => format!("  ({e})"),
    }
}

/// Starts the core (inside UML, in netns `pcscf`).
fn core_up(dir: &str, bin: &str) -> Result<()> {
    let script = repo_root().join("tests/uml-scripts/gm-core.sh");
    let out = Command::new("sh")
        .arg(&script)
        .args([dir, bin])
        .output()
        .context("running gm-core.sh")?;
    print!("{}", String::from_utf8_lossy(&out.stdout));
    if !out.status.success() {
        bail!(
            "gm-core.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

fn env_or(name: &str) -> Result<String> {
    std::env::var(name).with_context(|| format!("{name} not set inside UML"))
}

/// Runs this test binary again inside netns `ue` with `role`.
fn run_child_in_ue(test: &str, role: &str) -> Result<String> {
    let exe = std::env::current_exe()?;
    let out = Command::new("ip")
        .args(["netns", "exec", "ue"])
        .arg(&exe)
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(ROLE_ENV, role)
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    print!("{stdout}");
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        bail!("UE run `{role}` failed ({})", out.status);
    }
    Ok(stdout)
}

// ---------------------------------------------------------------------------------
// The independent UE (runs in netns `ue`; uses no project code).
// ---------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq)]
enum Tp {
    Udp,
    Tcp,
}

/// A TCP socket bound to a chosen local port before connecting (std has no such
/// call; these are the C library's socket functions, Linux only), IPv4 or IPv6.
mod rawtcp {
    use std::net::{SocketAddr, TcpStream};
    use std::os::fd::FromRawFd;

    #[repr(C)]
    #[derive(Clone, Copy)]
    struct SockaddrIn {
        family: u16,
        port: u16,
        addr: [u8; 4],
        zero: [u8; 8],
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct SockaddrIn6 {
        family: u16,
        port: u16,
        flowinfo: u32,
        addr: [u8; 16],
        scope_id: u32,
    }
    /// Room for either address family (`struct sockaddr_storage` is larger still).
    #[repr(C)]
    union Sockaddr {
        v4: SockaddrIn,
        v6: SockaddrIn6,
    }
    extern "C" {
        fn socket(domain: i32, ty: i32, proto: i32) -> i32;
        fn bind(fd: i32, addr: *const Sockaddr, len: u32) -> i32;
        fn connect(fd: i32, addr: *const Sockaddr, len: u32) -> i32;
        fn setsockopt(fd: i32, level: i32, name: i32, val: *const u8, len: u32) -> i32;
        fn close(fd: i32) -> i32;
    }
    const AF_INET: u16 = 2;
    const AF_INET6: u16 = 10;

    /// The C form of `a` and its length.
    fn sa(a: SocketAddr) -> (Sockaddr, u32) {
        match a {
            SocketAddr::V4(a) => (
                Sockaddr {
                    v4: SockaddrIn {
                        family: AF_INET,
                        port: a.port().to_be(),
                        addr: a.ip().octets(),
                        zero: [0; 8],
                    },
                },
                std::mem::size_of::<SockaddrIn>() as u32,
            ),
            SocketAddr::V6(a) => (
                Sockaddr {
                    v6: SockaddrIn6 {
                        family: AF_INET6,
                        port: a.port().to_be(),
                        flowinfo: 0,
                        addr: a.ip().octets(),
                        scope_id: a.scope_id(),
                    },
                },
                std::mem::size_of::<SockaddrIn6>() as u32,
            ),
        }
    }

    pub fn connect_from(local: SocketAddr, remote: SocketAddr) -> std::io::Result<TcpStream> {
        let (l, llen) = sa(local);
        let (r, rlen) = sa(remote);
        let domain = if local.is_ipv4() { AF_INET } else { AF_INET6 };
        // SAFETY: plain socket syscalls on a descriptor owned here; the sockaddr
        // structures live across each call and their lengths match the family
        // written; on error the descriptor is closed.
        unsafe {
            let fd = socket(i32::from(domain), 1, 0);
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let one: i32 = 1;
            // SO_SNDTIMEO bounds connect() too: 10 s, not the kernel's ~2 min of SYNs.
            let timeout: [i64; 2] = [10, 0];
            if setsockopt(fd, 1, 2, (&one as *const i32).cast(), 4) != 0
                || setsockopt(fd, 1, 21, timeout.as_ptr().cast(), 16) != 0
                || bind(fd, &l, llen) != 0
                || connect(fd, &r, rlen) != 0
            {
                let e = std::io::Error::last_os_error();
                close(fd);
                return Err(e);
            }
            Ok(TcpStream::from_raw_fd(fd))
        }
    }
}

/// Reads one SIP message from a TCP stream (Content-Length framing).
fn read_tcp_message(s: &mut BufReader<TcpStream>) -> Result<String> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if s.read_line(&mut line)? == 0 {
            bail!("connection closed");
        }
        if line == "\r\n" && head.is_empty() {
            continue; // keep-alive
        }
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let cl: usize = head
        .lines()
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            let n = n.trim();
            (n.eq_ignore_ascii_case("Content-Length") || n == "l").then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0u8; cl];
    s.read_exact(&mut body)?;
    head.push_str(&String::from_utf8_lossy(&body));
    Ok(head)
}

fn header<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
    msg.split("\r\n\r\n").next()?.lines().skip(1).find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn headers<'a>(msg: &'a str, name: &str) -> Vec<&'a str> {
    msg.split("\r\n\r\n")
        .next()
        .unwrap_or("")
        .lines()
        .skip(1)
        .filter_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
        .collect()
}

fn status_of(msg: &str) -> u16 {
    msg.strip_prefix("SIP/2.0 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

fn param<'a>(list: &'a str, name: &str, sep: char) -> Option<&'a str> {
    list.split(sep).find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"'))
    })
}

/// 200 OK to a request, built from its text (RFC 3261 §8.2.6).
fn ok_for(req: &str) -> String {
    let mut r = String::from("SIP/2.0 200 OK\r\n");
    for v in headers(req, "Via") {
        r.push_str(&format!("Via: {v}\r\n"));
    }
    for n in ["From", "Call-ID", "CSeq"] {
        if let Some(v) = header(req, n) {
            r.push_str(&format!("{n}: {v}\r\n"));
        }
    }
    if let Some(to) = header(req, "To") {
        if to.contains(";tag=") {
            r.push_str(&format!("To: {to}\r\n"));
        } else {
            r.push_str(&format!("To: {to};tag=indep{}\r\n", rand::random::<u32>()));
        }
    }
    r.push_str("Content-Length: 0\r\n\r\n");
    r
}

struct IndepUe {
    tp: Tp,
    imsi: String,
    uc: u16,
    us: u16,
    spi_uc: u32,
    spi_us: u32,
    call_id: String,
    cseq: u32,
    /// Client flow (unprotected first, then protected).
    udp: Option<UdpSocket>,
    tcp: Option<BufReader<TcpStream>>,
    dest: SocketAddr,
    /// The UE's and the P-CSCF's Gm addresses (IPv4 or IPv6).
    ue_ip: IpAddr,
    p_ip: IpAddr,
}

impl IndepUe {
    fn impu(&self) -> String {
        format!("sip:{}@{DOMAIN}", self.imsi)
    }
    fn impi(&self) -> String {
        format!("{}@{DOMAIN}", self.imsi)
    }
    fn tp_token(&self) -> &'static str {
        match self.tp {
            Tp::Udp => "UDP",
            Tp::Tcp => "TCP",
        }
    }
    fn local(&self) -> Result<SocketAddr> {
        Ok(match (&self.udp, &self.tcp) {
            (Some(u), _) => u.local_addr()?,
            (_, Some(t)) => t.get_ref().local_addr()?,
            _ => bail!("no flow"),
        })
    }
    fn security_client(&self) -> String {
        format!(
            "ipsec-3gpp;alg=hmac-sha-1-96;ealg=aes-cbc;prot=esp;mod=trans;spi-c={};spi-s={};port-c={};port-s={}",
            self.spi_uc, self.spi_us, self.uc, self.us
        )
    }

    fn open_unprotected(&mut self) -> Result<()> {
        let p = SocketAddr::new(self.p_ip, 5060);
        self.dest = p;
        match self.tp {
            Tp::Udp => {
                let s = UdpSocket::bind(SocketAddr::new(self.ue_ip, 0))?;
                s.set_read_timeout(Some(Duration::from_millis(500)))?;
                self.udp = Some(s);
            }
            Tp::Tcp => {
                let s = TcpStream::connect_timeout(&p, Duration::from_secs(5))?;
                s.set_read_timeout(Some(Duration::from_secs(10)))?;
                self.tcp = Some(BufReader::new(s));
            }
        }
        Ok(())
    }

    fn open_protected(&mut self, p_ps: u16) -> Result<()> {
        self.dest = SocketAddr::new(self.p_ip, p_ps);
        self.udp = None;
        self.tcp = None;
        match self.tp {
            Tp::Udp => {
                let s = UdpSocket::bind(SocketAddr::new(self.ue_ip, self.uc))?;
                s.set_read_timeout(Some(Duration::from_millis(500)))?;
                self.udp = Some(s);
            }
            Tp::Tcp => {
                let (from, to) = (
                    SocketAddr::new(self.ue_ip, self.uc),
                    SocketAddr::new(self.p_ip, p_ps),
                );
                let s = rawtcp::connect_from(from, to)
                    .with_context(|| format!("TCP connect from {from} to {to} (through ESP)"))?;
                s.set_read_timeout(Some(Duration::from_secs(10)))?;
                self.tcp = Some(BufReader::new(s));
            }
        }
        Ok(())
    }

    /// Sends `msg` and returns the first final response to `cseq` (UDP: retransmits).
    fn transact(&mut self, msg: &str, cseq: u32, timeout: Duration) -> Result<Option<String>> {
        let deadline = Instant::now() + timeout;
        let mut next_retx = Instant::now();
        let mut interval = Duration::from_millis(500);
        if let Some(t) = self.tcp.as_mut() {
            t.get_mut().write_all(msg.as_bytes())?;
        }
        loop {
            if Instant::now() >= deadline {
                return Ok(None);
            }
            let resp = match (&self.udp, &mut self.tcp) {
                (Some(u), _) => {
                    if Instant::now() >= next_retx {
                        u.send_to(msg.as_bytes(), self.dest)?;
                        next_retx = Instant::now() + interval;
                        interval = (interval * 2).min(Duration::from_secs(4));
                    }
                    let mut buf = vec![0u8; 65535];
                    match u.recv_from(&mut buf) {
                        Ok((n, _)) => String::from_utf8_lossy(&buf[..n]).into_owned(),
                        Err(_) => continue,
                    }
                }
                (_, Some(t)) => match read_tcp_message(t) {
                    Ok(m) => m,
                    Err(e) => {
                        if Instant::now() >= deadline {
                            return Ok(None);
                        }
                        bail!("reading from TCP: {e}");
                    }
                },
                _ => bail!("no flow"),
            };
            if !resp.starts_with("SIP/2.0 ") {
                continue;
            }
            let cs = header(&resp, "CSeq").unwrap_or("");
            if !cs.starts_with(&format!("{cseq} "))
                || header(&resp, "Call-ID") != Some(self.call_id.as_str())
            {
                continue;
            }
            if status_of(&resp) >= 200 {
                return Ok(Some(resp));
            }
            next_retx = deadline; // provisional: stop retransmitting
        }
    }

    fn register(&mut self, auth: &str, sv: Option<&str>) -> String {
        self.cseq += 1;
        let local = self.local().map(|a| a.to_string()).unwrap_or_default();
        let mut m = format!(
            "REGISTER sip:{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/{tp} {local};branch=z9hG4bKindep{r};rport\r\nMax-Forwards: 70\r\nFrom: <{impu}>;tag=indep{cseqtag}\r\nTo: <{impu}>\r\nCall-ID: {cid}\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:{us}{tpp}>;expires=600000\r\nExpires: 600000\r\nSupported: path,sec-agree\r\nRequire: sec-agree\r\nProxy-Require: sec-agree\r\nSecurity-Client: {sc}\r\nAuthorization: {auth}\r\n",
            tp = self.tp_token(),
            r = rand::random::<u64>(),
            impu = self.impu(),
            cseqtag = 1,
            cid = self.call_id,
            cseq = self.cseq,
            us = SocketAddr::new(self.ue_ip, self.us),
            tpp = if self.tp == Tp::Tcp { ";transport=tcp" } else { "" },
            sc = self.security_client(),
        );
        if let Some(sv) = sv {
            m.push_str(&format!("Security-Verify: {sv}\r\n"));
        }
        m.push_str("Content-Length: 0\r\n\r\n");
        m
    }
}

fn md5hex(s: &[u8]) -> String {
    hex::encode(Md5::digest(s))
}

/// Digest response with RES as password (RFC 3310 §3.3), qop=auth when offered.
fn digest(impi: &str, realm: &str, res: &[u8], nonce: &str, qop: bool, cnonce: &str) -> String {
    let mut a1 = format!("{impi}:{realm}:").into_bytes();
    a1.extend_from_slice(res);
    let ha1 = md5hex(&a1);
    let ha2 = md5hex(format!("REGISTER:sip:{DOMAIN}").as_bytes());
    if qop {
        md5hex(format!("{ha1}:{nonce}:00000001:{cnonce}:auth:{ha2}").as_bytes())
    } else {
        md5hex(format!("{ha1}:{nonce}:{ha2}").as_bytes())
    }
}

/// Listens on the protected server port (UDP and TCP), answers every request 200 and
/// reports its text.
fn serve_port_s(ue_ip: IpAddr, us: u16, tx: mpsc::Sender<String>) -> Result<()> {
    let udp = UdpSocket::bind(SocketAddr::new(ue_ip, us))?;
    let tcp = TcpListener::bind(SocketAddr::new(ue_ip, us))?;
    let txu = tx.clone();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 65535];
        while let Ok((n, from)) = udp.recv_from(&mut buf) {
            let m = String::from_utf8_lossy(&buf[..n]).into_owned();
            if m.starts_with("SIP/2.0") {
                continue;
            }
            let _ = udp.send_to(ok_for(&m).as_bytes(), from);
            let _ = txu.send(format!("UDP {from} {m}"));
        }
    });
    std::thread::spawn(move || {
        while let Ok((s, from)) = tcp.accept() {
            let tx = tx.clone();
            std::thread::spawn(move || {
                let Ok(w) = s.try_clone() else { return };
                let mut w = w;
                let mut r = BufReader::new(s);
                while let Ok(m) = read_tcp_message(&mut r) {
                    if m.starts_with("SIP/2.0") {
                        continue;
                    }
                    let _ = w.write_all(ok_for(&m).as_bytes());
                    let _ = tx.send(format!("TCP {from} {m}"));
                }
            });
        }
    });
    Ok(())
}

/// How the independent UE behaves after the 401.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Variant {
    /// Registers, subscribes, gets its NOTIFY.
    Good,
    /// Protected REGISTER with a Security-Verify that differs from the Security-Server.
    WrongVerify,
    /// Never answers the 401 (a handset whose AUTN check failed, or that never starts
    /// IPsec).
    Silent,
    /// Installs its SAs with a wrong IK (a SIM whose K/OPc differ) and sends the
    /// protected REGISTER through them.
    BadKey,
}

/// The independent UE's whole run, as `variant` says. `v6`: over IPv6 ([`UE_IP6`] to
/// [`P_IP6`]) instead of IPv4.
fn independent_ue(tp: Tp, variant: Variant, n: u32, v6: bool) -> Result<()> {
    let wrong_verify = variant == Variant::WrongVerify;
    let tag = format!(
        "{tp:?}{}{}",
        if v6 { "6" } else { "" },
        if wrong_verify { "-wrong-verify" } else { "" }
    );
    let (ue_ip, p_ip): (IpAddr, IpAddr) = if v6 {
        (UE_IP6.parse()?, P_IP6.parse()?)
    } else {
        (UE_IP.parse()?, P_IP.parse()?)
    };
    let base = 40000 + 10 * n as u16;
    let mut ue = IndepUe {
        tp,
        imsi: imsi(n),
        uc: base,
        us: base + 1,
        spi_uc: 0xa000_0000 + 16 * n,
        spi_us: 0xa000_0001 + 16 * n,
        call_id: format!("indep-{}-{}", n, rand::random::<u32>()),
        cseq: 0,
        udp: None,
        tcp: None,
        dest: SocketAddr::new(p_ip, 5060),
        ue_ip,
        p_ip,
    };
    let (tx, rx) = mpsc::channel();
    serve_port_s(ue.ue_ip, ue.us, tx)?;
    ue.open_unprotected()?;
    let init_auth = format!(
        "Digest username=\"{}\", realm=\"{DOMAIN}\", uri=\"sip:{DOMAIN}\", nonce=\"\", response=\"\"",
        ue.impi()
    );
    let r1 = ue.register(&init_auth, None);
    let resp = ue
        .transact(&r1, ue.cseq, Duration::from_secs(10))?
        .ok_or_else(|| anyhow!("[{tag}] no response to the initial REGISTER within 10 s"))?;
    if status_of(&resp) != 401 {
        bail!(
            "[{tag}] initial REGISTER got {} instead of 401:\n{resp}",
            status_of(&resp)
        );
    }
    let www = header(&resp, "WWW-Authenticate")
        .ok_or_else(|| anyhow!("[{tag}] 401 without WWW-Authenticate"))?;
    // Parameters, not substrings: a base64 nonce may end in "ik=".
    let params = www.trim_start_matches("Digest");
    if param(params, "ck", ',').is_some() || param(params, "ik", ',').is_some() {
        bail!("[{tag}] the 401 still carries ck/ik: {www}");
    }
    let ss = header(&resp, "Security-Server")
        .ok_or_else(|| anyhow!("[{tag}] 401 without Security-Server:\n{resp}"))?
        .to_string();
    let nonce = param(www.trim_start_matches("Digest"), "nonce", ',')
        .ok_or_else(|| anyhow!("no nonce"))?
        .to_string();
    let realm = param(www.trim_start_matches("Digest"), "realm", ',')
        .unwrap_or(DOMAIN)
        .to_string();
    let qop =
        param(www.trim_start_matches("Digest"), "qop", ',').is_some_and(|q| q.contains("auth"));
    // AKA with milenage directly (TS 33.102 §6.3.3).
    let raw = base64::engine::general_purpose::STANDARD.decode(&nonce)?;
    if raw.len() < 32 {
        bail!("[{tag}] nonce too short");
    }
    let rand_: [u8; 16] = raw[..16].try_into()?;
    let autn = &raw[16..32];
    let k: [u8; 16] = hex::decode(k_hex(&ue.imsi))?
        .try_into()
        .map_err(|_| anyhow!("K"))?;
    let op: [u8; 16] = hex::decode(OP_HEX)?.try_into().map_err(|_| anyhow!("OP"))?;
    let mut m = Milenage::new_with_op(k, op);
    let (res, ck, ik, ak) = m.f2345(&rand_);
    let mut sqn = [0u8; 6];
    for i in 0..6 {
        sqn[i] = autn[i] ^ ak[i];
    }
    let mac = m.f1(&rand_, &sqn, &[autn[6], autn[7]]);
    if mac[..] != autn[8..16] {
        bail!("[{tag}] AUTN MAC-A does not verify with K/OP: the HSS has other keys");
    }
    // Security-Server (first ipsec-3gpp offer).
    let offer = ss.split(',').next().unwrap_or("");
    let num = |n: &str| -> Result<u32> {
        param(offer, n, ';')
            .ok_or_else(|| anyhow!("[{tag}] Security-Server without {n}: {ss}"))?
            .parse::<u32>()
            .map_err(|e| anyhow!("[{tag}] {n}: {e}"))
    };
    let (p_spi_c, p_spi_s, p_pc, p_ps) = (
        num("spi-c")?,
        num("spi-s")?,
        num("port-c")? as u16,
        num("port-s")? as u16,
    );
    let alg = param(offer, "alg", ';').unwrap_or("");
    let ealg = param(offer, "ealg", ';').unwrap_or("null");
    if alg != "hmac-sha-1-96" || ealg != "aes-cbc" {
        bail!("[{tag}] Security-Server chose {alg}/{ealg}; this UE offered only hmac-sha-1-96/aes-cbc");
    }
    println!("INDEP-UE [{tag}] 401 ok: P-CSCF spi-c {p_spi_c} spi-s {p_spi_s} port-c {p_pc} port-s {p_ps}");
    if variant == Variant::Silent {
        println!("INDEP-UE [{tag}] silent: the 401 stays unanswered");
        return Ok(());
    }
    let mut ik = ik;
    if variant == Variant::BadKey {
        ik[0] ^= 0xff;
    }
    // Keys (TS 33.203 Annex I): hmac-sha-1-96 = IK ‖ 32 zero bits, aes-cbc = CK.
    let auth_key = format!("0x{}00000000", hex::encode(ik));
    let enc_key = format!("0x{}", hex::encode(ck));
    let (u_c, u_s) = (SocketAddr::new(ue_ip, ue.uc), SocketAddr::new(ue_ip, ue.us));
    let (p_c, p_s) = (SocketAddr::new(p_ip, p_pc), SocketAddr::new(p_ip, p_ps));
    let host_prefix = if v6 { 128 } else { 32 };
    // (src, dst, spi, dir at the UE)
    let sas = [
        (u_c, p_s, p_spi_s, "out"),
        (u_s, p_c, p_spi_c, "out"),
        (p_s, u_c, ue.spi_uc, "in"),
        (p_c, u_s, ue.spi_us, "in"),
    ];
    let mut cmds = Vec::new();
    for (src, dst, spi, dir) in &sas {
        let (sip, sport) = (src.ip(), src.port());
        let (dip, dport) = (dst.ip(), dst.port());
        cmds.push(format!(
            "xfrm state add src {sip} dst {dip} proto esp spi {spi} mode transport replay-window 32 \
             auth-trunc hmac(sha1) {auth_key} 96 enc cbc(aes) {enc_key} sel src {sip} dst {dip} sport {sport} dport {dport}"
        ));
        for proto in ["udp", "tcp"] {
            cmds.push(format!(
                "xfrm policy add src {sip}/{host_prefix} dst {dip}/{host_prefix} proto {proto} sport {sport} dport {dport} dir {dir} \
                 tmpl src {sip} dst {dip} proto esp mode transport"
            ));
        }
    }
    ip_batch(None, &cmds)?;
    // Protected REGISTER from port-c to the P-CSCF's port-s.
    ue.open_protected(p_ps)?;
    let cnonce = format!("{:016x}", rand::random::<u64>());
    let response = digest(&ue.impi(), &realm, &res, &nonce, qop, &cnonce);
    let mut auth = format!(
        "Digest username=\"{}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"sip:{DOMAIN}\", response=\"{response}\", algorithm=AKAv1-MD5",
        ue.impi()
    );
    if qop {
        auth.push_str(&format!(", qop=auth, nc=00000001, cnonce=\"{cnonce}\""));
    }
    let sv = if wrong_verify {
        ss.replacen(
            &format!("spi-s={p_spi_s}"),
            &format!("spi-s={}", p_spi_s.wrapping_add(1)),
            1,
        )
    } else {
        ss.clone()
    };
    let r2 = ue.register(&auth, Some(&sv));
    let resp = ue.transact(&r2, ue.cseq, Duration::from_secs(6))?;
    if variant == Variant::BadKey {
        if let Some(r) = resp {
            bail!("[{tag}] a protected REGISTER sent with a wrong IK got an answer:\n{r}");
        }
        ip_batch(
            None,
            &["xfrm state flush".into(), "xfrm policy flush".into()],
        )?;
        println!(
            "INDEP-UE [{tag}] wrong IK: the protected REGISTER got no answer (dropped by ESP)"
        );
        return Ok(());
    }
    if wrong_verify {
        if let Some(r) = &resp {
            if (200..300).contains(&status_of(r)) {
                bail!(
                    "[{tag}] a protected REGISTER with a wrong Security-Verify was accepted:\n{r}"
                );
            }
        }
        println!(
            "INDEP-UE [{tag}] protected REGISTER with wrong Security-Verify refused: {}",
            resp.as_deref()
                .map(|r| r.lines().next().unwrap_or("").to_string())
                .unwrap_or_else(|| "no response".into())
        );
        // No SA with the P-CSCF's SPIs of this attempt may stay behind.
        let deadline = Instant::now() + Duration::from_secs(8);
        loop {
            let left: Vec<SaInfo> = xfrm_states("pcscf")?
                .into_iter()
                .filter(|s| [p_spi_c, p_spi_s, ue.spi_uc, ue.spi_us].contains(&s.spi))
                .collect();
            if left.is_empty() {
                break;
            }
            if Instant::now() > deadline {
                bail!("[{tag}] SAs left at the P-CSCF 8 s after the refused REGISTER:\n{left:?}");
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        let pol = sh(&["ip", "-n", "pcscf", "xfrm", "policy"])?;
        if pol.contains(&format!("sport {} ", ue.uc)) || pol.contains(&format!("dport {} ", ue.us))
        {
            bail!("[{tag}] policies for this UE's ports left at the P-CSCF:\n{pol}");
        }
        ip_batch(
            None,
            &["xfrm state flush".into(), "xfrm policy flush".into()],
        )?;
        println!("INDEP-UE [{tag}] OK: refused, no SA and no policy left at the P-CSCF");
        return Ok(());
    }
    let resp = resp.ok_or_else(|| {
        anyhow!(
            "[{tag}] no response within 6 s on protected port {u_c} to the protected REGISTER (sent through ESP to {p_s})\nUE SAs:\n{}\nP-CSCF SAs:\n{}",
            show_states("ue"),
            show_states("pcscf")
        )
    })?;
    if status_of(&resp) != 200 {
        bail!(
            "[{tag}] protected REGISTER got {}:\n{resp}",
            status_of(&resp)
        );
    }
    println!("INDEP-UE [{tag}] registered: 200 OK on protected port {u_c}");
    // MT request: SUBSCRIBE to the reg event; the NOTIFY must arrive at port-s.
    let mut routes = vec![format!("<sip:{p_s};lr>")];
    routes.extend(
        headers(&resp, "Service-Route")
            .iter()
            .flat_map(|v| v.split(','))
            .map(|s| s.trim().to_string()),
    );
    ue.cseq += 1;
    let local = ue.local()?;
    let sub_cid = format!("indep-sub-{}", rand::random::<u32>());
    let mut sub = format!(
        "SUBSCRIBE {impu} SIP/2.0\r\nVia: SIP/2.0/{tp} {local};branch=z9hG4bKsub{r};rport\r\n",
        impu = ue.impu(),
        tp = ue.tp_token(),
        r = rand::random::<u64>()
    );
    for r in &routes {
        sub.push_str(&format!("Route: {r}\r\n"));
    }
    sub.push_str(&format!(
        "Max-Forwards: 70\r\nFrom: <{impu}>;tag=s1\r\nTo: <{impu}>\r\nCall-ID: {sub_cid}\r\nCSeq: 1 SUBSCRIBE\r\nContact: <sip:{u_s}>\r\nEvent: reg\r\nAccept: application/reginfo+xml\r\nExpires: 600000\r\nP-Preferred-Identity: <{impu}>\r\nSecurity-Verify: {ss}\r\nProxy-Require: sec-agree\r\nRequire: sec-agree\r\nContent-Length: 0\r\n\r\n",
        impu = ue.impu(),
    ));
    let saved_cid = std::mem::replace(&mut ue.call_id, sub_cid);
    let sresp = ue.transact(&sub, 1, Duration::from_secs(6))?;
    ue.call_id = saved_cid;
    let sresp = sresp
        .ok_or_else(|| anyhow!("[{tag}] no response to the reg-event SUBSCRIBE within 6 s"))?;
    if !(200..300).contains(&status_of(&sresp)) {
        bail!(
            "[{tag}] reg-event SUBSCRIBE got {}:\n{sresp}",
            status_of(&sresp)
        );
    }
    let notify = rx.recv_timeout(Duration::from_secs(6)).map_err(|_| {
        anyhow!("[{tag}] no request (NOTIFY) reached protected server port {u_s} within 6 s")
    })?;
    let first = notify.lines().next().unwrap_or("").to_string();
    if !first.contains("NOTIFY") {
        bail!("[{tag}] expected a NOTIFY at port-s, got: {first}");
    }
    // "UDP <from> <text>" / "TCP <from> <text>": sent from the P-CSCF's port-c.
    let from = notify.split(' ').nth(1).unwrap_or("");
    if from != p_c.to_string() {
        bail!("[{tag}] the NOTIFY at port-s came from {from}, not from the P-CSCF's port-c {p_c}");
    }
    println!("INDEP-UE [{tag}] MT request at protected server port {u_s} from {from}: {first}");
    std::thread::sleep(Duration::from_millis(300));
    // Every one of the four SAs carried packets, on both sides.
    let spis = [p_spi_s, p_spi_c, ue.spi_uc, ue.spi_us];
    for ns in ["ue", "pcscf"] {
        let states = xfrm_states(ns)?;
        for spi in spis {
            let sa = states.iter().find(|s| s.spi == spi).ok_or_else(|| {
                anyhow!(
                    "[{tag}] no SA with spi {spi:#x} in netns {ns}:\n{}",
                    show_states(ns)
                )
            })?;
            if sa.packets == 0 {
                bail!(
                    "[{tag}] SA spi {spi:#x} in netns {ns} carried no packet:\n{}",
                    show_states(ns)
                );
            }
            let ends = [ue_ip.to_string(), p_ip.to_string()];
            if !ends.contains(&sa.src) || !ends.contains(&sa.dst) {
                bail!(
                    "[{tag}] SA spi {spi:#x} in netns {ns} is {} -> {}, not between {ue_ip} and {p_ip}",
                    sa.src,
                    sa.dst
                );
            }
        }
        println!(
            "INDEP-UE [{tag}] netns {ns} ESP counters:\n{}",
            show_states(ns)
        );
    }
    println!("INDEP-UE [{tag}] OK");
    Ok(())
}

// ---------------------------------------------------------------------------------
// Test 1: the independent UE.
// ---------------------------------------------------------------------------------

const INDEP: &str = "independent_ue_registers_through_esp_in_uml";

#[test]
fn independent_ue_registers_through_esp_in_uml() {
    match role().as_deref() {
        None => host_side(
            INDEP,
            CoreOpts {
                allow_unprotected: true,
                dereg_grace_ms: 500,
                gm_v6: false,
                // UEs 4 and 5 never complete their challenge: the P-CSCF gives up
                // after 3 s and says why.
                unanswered_challenge_s: 3,
            },
            &[imsi(1), imsi(2), imsi(3), imsi(4), imsi(5)],
            "GM-IPSEC independent: DONE",
        ),
        Some("orchestrate") => {
            let r = (|| -> Result<()> {
                core_up(&env_or(DIR_ENV)?, &env_or(BIN_ENV)?)?;
                let mut failures = Vec::new();
                for role in [
                    "ue:udp:good:1",
                    "ue:tcp:good:2",
                    "ue:udp:wrong:3",
                    "ue:udp:silent:4",
                    "ue:udp:badkey:5",
                ] {
                    if let Err(e) = run_child_in_ue(INDEP, role) {
                        failures.push(format!("{e:#}"));
                    }
                }
                // Why UEs 4 and 5 never registered, as the P-CSCF tells it from the
                // kernel's counters of their SAs (FIELD-LESSONS item 1).
                let dir = env_or(DIR_ENV)?;
                for (n, cause) in [(4, "no ESP arrived"), (5, "failed the integrity check")] {
                    if let Err(e) = wait_unanswered_diagnosis(Path::new(&dir), n, cause) {
                        failures.push(format!("{e:#}"));
                    }
                }
                println!("P-CSCF SAs at the end:\n{}", show_states("pcscf"));
                if !failures.is_empty() {
                    bail!("independent UE failures:\n{}", failures.join("\n"));
                }
                Ok(())
            })();
            if let Err(e) = r {
                panic!("{e:#}");
            }
            println!("GM-IPSEC independent: DONE");
        }
        Some(role) => {
            let parts: Vec<&str> = role.split(':').collect();
            let tp = if parts.get(1) == Some(&"tcp") {
                Tp::Tcp
            } else {
                Tp::Udp
            };
            let variant = match parts.get(2) {
                Some(&"wrong") => Variant::WrongVerify,
                Some(&"silent") => Variant::Silent,
                Some(&"badkey") => Variant::BadKey,
                _ => Variant::Good,
            };
            let n: u32 = parts.get(3).and_then(|x| x.parse().ok()).unwrap_or(1);
            let v6 = parts.first() == Some(&"ue6");
            if let Err(e) = independent_ue(tp, variant, n, v6) {
                panic!("{e:#}");
            }
        }
    }
}

/// Waits (20 s) for the P-CSCF's WARN that UE `n` never answered its 401 through the
/// SAs, with `cause` in it.
fn wait_unanswered_diagnosis(dir: &Path, n: u32, cause: &str) -> Result<()> {
    let who = format!("{}@", imsi(n));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let log = std::fs::read_to_string(dir.join("pcscf.log")).unwrap_or_default();
        let lines: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("UE never answered its 401") && l.contains(&who))
            .collect();
        if let Some(l) = lines.iter().find(|l| l.contains(cause)) {
            println!("INDEP-UE UE {n}: the P-CSCF said why: {l}");
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "UE {n}: no P-CSCF WARN `UE never answered its 401` with `{cause}` within 20 s; lines for it: {lines:?}"
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

// ---------------------------------------------------------------------------------
// Test 1b: the independent UE over IPv6.
// ---------------------------------------------------------------------------------

const INDEP6: &str = "independent_ue_registers_over_ipv6_through_esp_in_uml";

/// The P-CSCF's Gm address is configuration for IPv6 too (`[ipsec] gm_address_v6`,
/// listening on `[fd00::1]:5060` as well as 10.45.0.1): the independent UE at fd00::2
/// registers over UDP and over TCP with its SAs installed by iproute2 between the
/// IPv6 addresses; the protected REGISTER and its 200 OK cross ESP (counters of all
/// four IPv6 SAs grow on both sides) and the reg-event NOTIFY reaches the UE's
/// protected server port from the P-CSCF's port-c through ESP.
#[test]
fn independent_ue_registers_over_ipv6_through_esp_in_uml() {
    match role().as_deref() {
        None => host_side(
            INDEP6,
            CoreOpts {
                allow_unprotected: true,
                dereg_grace_ms: 500,
                gm_v6: true,
                unanswered_challenge_s: 0,
            },
            &[imsi(4), imsi(5)],
            "GM-IPSEC independent IPv6: DONE",
        ),
        Some("orchestrate") => {
            let r = (|| -> Result<()> {
                if !Path::new("/proc/sys/net/ipv6").exists() {
                    bail!("IPv6 is not available inside UML (module ipv6 not loaded)");
                }
                core_up(&env_or(DIR_ENV)?, &env_or(BIN_ENV)?)?;
                let listening = sh(&["ip", "netns", "exec", "pcscf", "ss", "-Hlnut"])?;
                if !listening.contains(&format!("[{P_IP6}]:5060")) {
                    bail!("the P-CSCF does not listen on [{P_IP6}]:5060:\n{listening}");
                }
                let mut failures = Vec::new();
                for role in ["ue6:udp:good:4", "ue6:tcp:good:5"] {
                    if let Err(e) = run_child_in_ue(INDEP6, role) {
                        failures.push(format!("{e:#}"));
                    }
                }
                println!("P-CSCF SAs at the end:\n{}", show_states("pcscf"));
                if !failures.is_empty() {
                    bail!("independent IPv6 UE failures:\n{}", failures.join("\n"));
                }
                Ok(())
            })();
            if let Err(e) = r {
                panic!("{e:#}");
            }
            println!("GM-IPSEC independent IPv6: DONE");
        }
        Some(role) => {
            let parts: Vec<&str> = role.split(':').collect();
            let tp = if parts.get(1) == Some(&"tcp") {
                Tp::Tcp
            } else {
                Tp::Udp
            };
            let n: u32 = parts.get(3).and_then(|x| x.parse().ok()).unwrap_or(4);
            if let Err(e) = independent_ue(tp, Variant::Good, n, true) {
                panic!("{e:#}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------
// Test 2: ue-sim.
// ---------------------------------------------------------------------------------

const UESIM: &str = "ue_sim_in_uml";

/// A ue-sim process in netns `ue`, its output in a file.
struct UeSim {
    name: String,
    child: Child,
    out: PathBuf,
}

fn ue_sim(name: &str, dir: &Path, bin: &str, args: &[String]) -> Result<UeSim> {
    let out = dir.join(format!("ue-sim-{name}.out"));
    let f = std::fs::File::create(&out)?;
    let child = Command::new("ip")
        .args(["netns", "exec", "ue", &format!("{bin}/ue-sim")])
        .args([
            "--pcscf",
            &format!("{P_IP}:5060"),
            "--local",
            UE_IP,
            "--k",
            K_PATTERN,
            "--op",
            OP_HEX,
            // debug builds of four roles inside UML answer slowly
            "--timeout-ms",
            "8000",
        ])
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(f.try_clone()?)
        .stderr(f)
        .spawn()?;
    Ok(UeSim {
        name: name.to_string(),
        child,
        out,
    })
}

impl UeSim {
    fn output(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }
    fn wait_for(&mut self, marker: &str, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.output().contains(marker) {
                return Ok(());
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                bail!(
                    "ue-sim {} exited ({st}) before `{marker}`:\n{}",
                    self.name,
                    self.output()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!(
            "ue-sim {}: no `{marker}` within {timeout:?}:\n{}",
            self.name,
            self.output()
        )
    }
    fn finish(mut self, expect_success: bool) -> Result<String> {
        let deadline = Instant::now() + Duration::from_secs(120);
        let st = loop {
            if let Some(st) = self.child.try_wait()? {
                break st;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                bail!(
                    "ue-sim {} did not finish in 120 s:\n{}",
                    self.name,
                    self.output()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let out = self.output();
        println!("--- ue-sim {} ({st}) ---\n{}", self.name, out.trim_end());
        if st.success() != expect_success {
            bail!(
                "ue-sim {} exited with {st}, expected {}",
                self.name,
                if expect_success { "success" } else { "failure" }
            );
        }
        Ok(out)
    }
}

fn args(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

/// CPU seconds (user + system) each role has used so far, from /proc/<pid>/stat inside
/// UML: printed around the 100-UE case so a slow run shows whether UML's one CPU was
/// saturated, and by whom.
fn role_cpu(dir: &Path) -> Vec<(&'static str, f64)> {
    let tick = 100.0; // USER_HZ on Linux
    ["pcscf", "icscf", "scscf", "hss"]
        .into_iter()
        .filter_map(|role| {
            let pid = std::fs::read_to_string(dir.join(format!("{role}.pid"))).ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).ok()?;
            // Fields after the ")" that ends the command name: state is field 3, utime 14, stime 15.
            let rest = stat.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            let ut: f64 = f.get(11)?.parse().ok()?;
            let st: f64 = f.get(12)?.parse().ok()?;
            Some((role, (ut + st) / tick))
        })
        .collect()
}

/// (busy, idle) jiffies of UML's CPU from /proc/stat.
fn uml_cpu() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (v.iter().sum::<u64>().saturating_sub(idle), idle)
}

fn cpu_delta(before: &[(&str, f64)], after: &[(&str, f64)]) -> String {
    after
        .iter()
        .map(|(r, a)| {
            let b = before.iter().find(|(x, _)| x == r).map_or(0.0, |(_, v)| *v);
            format!("{r} {:.1} s", a - b)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn wait_pcscf_clean(what: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let states = xfrm_states("pcscf")?;
        let policies = xfrm_policy_count("pcscf")?;
        if states.is_empty() && policies == 0 {
            println!("{what}: P-CSCF has no SA and no policy left");
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "{what}: 20 s later the P-CSCF still has {} SAs and {policies} policies:\n{}\n{}",
                states.len(),
                show_states("pcscf"),
                sh(&["ip", "-n", "pcscf", "xfrm", "policy"]).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn ue_sim_cases(dir: &Path, bin: &str) -> Result<Vec<String>> {
    let mut failures: Vec<String> = Vec::new();
    let mut check = |name: &str, r: Result<()>| match &r {
        Ok(()) => println!("CASE {name}: ok"),
        Err(e) => {
            println!("CASE {name}: FAILED: {e:#}");
            failures.push(format!("{name}: {e:#}"));
        }
    };

    // (b) 100 UEs with IPsec register and de-register; nothing left at the P-CSCF.
    // UML has one CPU for ue-sim, the four debug-built roles and the kernel's ESP; a
    // registration with reg-event costs it about 170 ms of CPU (measured: P-CSCF 64,
    // S-CSCF 32, HSS 24, I-CSCF 11 ms per UE, plus ue-sim and the kernel), and the host's
    // steal time can halve that CPU. A fixed 10/s overloaded it in some runs, and the
    // backlog of retransmitting UEs then never drained. At most 4 UEs in flight keeps
    // the load at what UML serves, whatever the host's speed.
    check(
        "100 UEs register + de-register over UDP with IPsec",
        (|| {
            let cpu0 = role_cpu(dir);
            let uml0 = uml_cpu();
            let t0 = Instant::now();
            let s = ue_sim(
                "hundred",
                dir,
                bin,
                &args(&format!(
                    "--imsi-start {} --count 100 --rate 10 --max-in-flight 4 --ipsec --dereg --port-base 20000",
                    imsi(100)
                )),
            )?;
            let out = s.finish(true);
            let uml1 = uml_cpu();
            let (busy, idle) = (uml1.0 - uml0.0, uml1.1 - uml0.1);
            println!(
                "100 UEs: {:.1} s inside UML, its CPU {:.0} % busy; CPU used by the roles: {}",
                t0.elapsed().as_secs_f64(),
                100.0 * busy as f64 / (busy + idle).max(1) as f64,
                cpu_delta(&cpu0, &role_cpu(dir))
            );
            let out = out?;
            if !out.contains("registered=100/100 failed=0") || !out.contains("deregistered=100") {
                bail!("summary does not show 100 registered and de-registered");
            }
            if !out.contains("notified=100") {
                bail!("not every UE got its reg-event NOTIFY on the protected server port");
            }
            wait_pcscf_clean("after 100 de-registrations")
        })(),
    );

    // Re-registration (new SA set) over TCP, then de-registration.
    check(
        "re-registration with a new SA set over TCP",
        (|| {
            let s = ue_sim(
            "rereg-tcp",
            dir,
            bin,
            &args(&format!("--imsi-start {} --count 3 --rate 10 --ipsec --transport tcp --rereg --dereg --port-base 22000", imsi(300))),
        )?;
            let out = s.finish(true)?;
            if !out.contains("registered=3/3 failed=0")
                || !out.contains("reregistered=3")
                || !out.contains("deregistered=3")
            {
                bail!("summary does not show 3 registered, re-registered and de-registered");
            }
            wait_pcscf_clean("after re-registration and de-registration")
        })(),
    );

    // (c) every (alg, ealg) pair, each through real ESP: six UEs at once, each offering one pair.
    check(
        "every alg/ealg pair through ESP",
        (|| {
            let pairs = [
                ("hmac-md5-96", "null", "hmac(md5)", "ecb(cipher_null)"),
                ("hmac-md5-96", "aes-cbc", "hmac(md5)", "cbc(aes)"),
                ("hmac-md5-96", "des-ede3-cbc", "hmac(md5)", "cbc(des3_ede)"),
                ("hmac-sha-1-96", "null", "hmac(sha1)", "ecb(cipher_null)"),
                ("hmac-sha-1-96", "aes-cbc", "hmac(sha1)", "cbc(aes)"),
                (
                    "hmac-sha-1-96",
                    "des-ede3-cbc",
                    "hmac(sha1)",
                    "cbc(des3_ede)",
                ),
            ];
            let mut sims = Vec::new();
            for (i, (a, e, _, _)) in pairs.iter().enumerate() {
                sims.push(ue_sim(
                &format!("{a}-{e}"),
                dir,
                bin,
                &args(&format!(
                    "--imsi-start {} --count 1 --ipsec --offers {a}/{e} --dereg --hold-ms 4000 --port-base {} --spi-base {}",
                    imsi(400 + i as u32),
                    23000 + 10 * i,
                    // The UEs share one address (one kernel): their SPIs must differ.
                    3_100_000_000u32 + 1000 * i as u32
                )),
            )?);
            }
            for s in sims.iter_mut() {
                s.wait_for("registration phase done: 1/1", Duration::from_secs(60))?;
            }
            let states = xfrm_states("pcscf")?;
            println!(
                "P-CSCF SAs with six UEs, one per pair:\n{}",
                show_states("pcscf")
            );
            let mut missing = Vec::new();
            for (a, e, xa, xe) in pairs {
                let n = states
                    .iter()
                    .filter(|s| s.auth == xa && s.enc == xe && s.packets > 0)
                    .count();
                if n < 2 {
                    missing.push(format!(
                        "{a}/{e}: {n} SAs with {xa}/{xe} carried packets (want at least 2)"
                    ));
                }
            }
            for s in sims {
                s.finish(true)?;
            }
            if !missing.is_empty() {
                bail!("{}", missing.join("; "));
            }
            wait_pcscf_clean("after the six pairs")
        })(),
    );

    // (d) handset behaviours.
    check("handset styles (Huawei 6 offers large SPIs, Qualcomm spaces, Samsung port-c > port-s, iPhone single alphabetical)", (|| {
        let cases = [
            ("huawei", "--style huawei --spi-base 4000000000", 24000),
            ("qualcomm", "--style qualcomm --spi-base 3200000000 --offers hmac-md5-96/aes-cbc,hmac-md5-96/des-ede3-cbc,hmac-md5-96/null,hmac-sha-1-96/aes-cbc,hmac-sha-1-96/des-ede3-cbc,hmac-sha-1-96/null", 24100),
            ("samsung", "--port-c-above-port-s --spi-base 3300000000 --offers hmac-md5-96/null,hmac-sha-1-96/null", 24200),
            ("iphone", "--style alphabetical --spi-base 3400000000 --offers hmac-sha-1-96/aes-cbc --transport tcp", 24300),
        ];
        let mut sims = Vec::new();
        for (i, (name, extra, port)) in cases.iter().enumerate() {
            sims.push(ue_sim(
                name,
                dir,
                bin,
                &args(&format!(
                    "--imsi-start {} --count 2 --rate 5 --ipsec --dereg --port-base {port} {extra}",
                    imsi(500 + 10 * i as u32)
                )),
            )?);
        }
        let mut errs = Vec::new();
        for s in sims {
            let name = s.name.clone();
            match s.finish(true) {
                Ok(out) if out.contains("registered=2/2 failed=0") && out.contains("deregistered=2") => {}
                Ok(_) => errs.push(format!("{name}: summary not 2 registered + de-registered")),
                Err(e) => errs.push(format!("{e:#}")),
            }
        }
        if !errs.is_empty() {
            bail!("{}", errs.join("\n"));
        }
        wait_pcscf_clean("after the handset styles")
    })());

    // A UE without Security-Client under allow_unprotected = true: registers, no SA.
    check(
        "UE without Security-Client, policy allow",
        (|| {
            // SAs left by an earlier failed case must not count against this one.
            let before = xfrm_states("pcscf")?.len();
            let mut s = ue_sim(
                "no-sec-agree-allowed",
                dir,
                bin,
                &args(&format!(
                    "--imsi-start {} --count 1 --dereg --hold-ms 2000",
                    imsi(600)
                )),
            )?;
            s.wait_for("registration phase done: 1/1", Duration::from_secs(30))?;
            let n = xfrm_states("pcscf")?.len().saturating_sub(before);
            s.finish(true)?;
            if n != 0 {
                bail!("the P-CSCF installed {n} SAs for a UE without Security-Client");
            }
            Ok(())
        })(),
    );

    // De-registration: the 200 OK must come back protected (the UE kernel drops an
    // unprotected one, ue-sim would then report "no 200 … on protected port"), and the
    // SAs go only after it: right after ue-sim's de-registration the P-CSCF must still
    // have had them while sending (checked by ue-sim's success), and none after the grace.
    check(
        "de-registration 200 OK arrives protected, SAs removed after it",
        (|| {
            let s = ue_sim(
                "dereg-protected",
                dir,
                bin,
                &args(&format!(
                    "--imsi-start {} --count 1 --ipsec --dereg --no-reg-event --port-base 25000",
                    imsi(610)
                )),
            )?;
            let out = s.finish(true)?;
            if !out.contains("deregistered=1") {
                bail!("de-registration did not complete");
            }
            wait_pcscf_clean("after the protected de-registration")
        })(),
    );

    // The other policy: restart the P-CSCF with allow_unprotected = false; the UE
    // without Security-Client is refused with a clear answer.
    check(
        "UE without Security-Client, policy refuse",
        (|| {
            let pid = std::fs::read_to_string(dir.join("pcscf.pid"))?;
            let _ = sh(&["kill", pid.trim()]);
            std::thread::sleep(Duration::from_millis(1500));
            let log = std::fs::File::options()
                .append(true)
                .open(dir.join("pcscf.log"))?;
            let mut p = Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    "pcscf",
                    &format!("{bin}/pcscf"),
                    "--config",
                ])
                .arg(dir.join("pcscf.toml"))
                .env("IMS_PCSCF__IPSEC__ALLOW_UNPROTECTED", "false")
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()?;
            std::fs::write(dir.join("pcscf.pid"), p.id().to_string())?;
            let deadline = Instant::now() + Duration::from_secs(20);
            while !sh(&[
                "ip",
                "netns",
                "exec",
                "pcscf",
                "ss",
                "-Hlun",
                "sport = :5060",
            ])?
            .contains("5060")
            {
                if Instant::now() > deadline || p.try_wait()?.is_some() {
                    bail!("restarted P-CSCF does not listen");
                }
                std::thread::sleep(Duration::from_millis(300));
            }
            let s = ue_sim(
                "no-sec-agree-refused",
                dir,
                bin,
                &args(&format!("--imsi-start {} --count 1", imsi(620))),
            )?;
            let out = s.finish(false)?;
            if !out.contains("failed to register") {
                bail!("ue-sim did not report the refusal");
            }
            if !xfrm_states("pcscf")?.is_empty() {
                bail!("SAs exist after a refused unprotected registration");
            }
            Ok(())
        })(),
    );

    Ok(failures)
}

/// Issue 4's `ue-sim` proof: 100 UEs register and de-register with IPsec (no SA or policy
/// left at the P-CSCF), re-registration with a new SA set over TCP, every alg/ealg pair,
/// the handset styles, and the unprotected-UE policies.
#[test]
fn ue_sim_in_uml() {
    match role().as_deref() {
        None => {
            let mut imsis: Vec<String> = (100..200).map(imsi).collect();
            imsis.extend((300..303).map(imsi));
            imsis.extend((400..406).map(imsi));
            for i in 0..4 {
                imsis.extend((0..2).map(|k| imsi(500 + 10 * i + k)));
            }
            imsis.extend([imsi(600), imsi(610), imsi(620)]);
            host_side(
                UESIM,
                CoreOpts {
                    allow_unprotected: true,
                    dereg_grace_ms: 500,
                    gm_v6: false,
                    unanswered_challenge_s: 0,
                },
                &imsis,
                "GM-IPSEC ue-sim: DONE",
            )
        }
        Some("orchestrate") => {
            let r = (|| -> Result<()> {
                let dir = env_or(DIR_ENV)?;
                let bin = env_or(BIN_ENV)?;
                core_up(&dir, &bin)?;
                let failures = ue_sim_cases(Path::new(&dir), &bin)?;
                if !failures.is_empty() {
                    bail!(
                        "{} ue-sim case(s) failed:\n{}",
                        failures.len(),
                        failures.join("\n")
                    );
                }
                Ok(())
            })();
            if let Err(e) = r {
                panic!("{e:#}");
            }
            println!("GM-IPSEC ue-sim: DONE");
        }
        Some(other) => panic!("unknown role {other}"),
    }
}

// ---------------------------------------------------------------------------------
// Test 3: P-CSCF restarts with live SAs (issue 4: "a P-CSCF restart neither leaks nor
// breaks live SAs").
// ---------------------------------------------------------------------------------

const RESTART: &str = "pcscf_restart_keeps_live_sas_in_uml";

/// The P-CSCF's side of one SA set as the 401's Security-Server announced it, and the
/// UE's SPIs it was built for.
#[derive(Debug, Clone)]
struct RestartSet {
    p_spi_c: u32,
    p_spi_s: u32,
    p_pc: u16,
    p_ps: u16,
    spi_uc: u32,
    spi_us: u32,
    ss: String,
}

/// What the UE answers later challenges and re-REGISTERs with (RFC 3310 §3.3).
#[derive(Debug, Clone)]
struct RestartCreds {
    nonce: String,
    realm: String,
    qop: bool,
    res: Vec<u8>,
    nc: u32,
}

fn restart_authorization(ue: &IndepUe, c: &RestartCreds) -> String {
    let cnonce = format!("{:016x}", rand::random::<u64>());
    let mut a1 = format!("{}:{}:", ue.impi(), c.realm).into_bytes();
    a1.extend_from_slice(&c.res);
    let ha1 = md5hex(&a1);
    let ha2 = md5hex(format!("REGISTER:sip:{DOMAIN}").as_bytes());
    let nc = format!("{:08x}", c.nc);
    let response = if c.qop {
        md5hex(format!("{ha1}:{}:{nc}:{cnonce}:auth:{ha2}", c.nonce).as_bytes())
    } else {
        md5hex(format!("{ha1}:{}:{ha2}", c.nonce).as_bytes())
    };
    let mut auth = format!(
        "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"sip:{DOMAIN}\", response=\"{response}\", algorithm=AKAv1-MD5",
        ue.impi(),
        c.realm,
        c.nonce
    );
    if c.qop {
        auth.push_str(&format!(", qop=auth, nc={nc}, cnonce=\"{cnonce}\""));
    }
    auth
}

/// AKA on a 401 (milenage directly) and its Security-Server; installs the UE's four
/// SAs for the new set with iproute2 (keys per TS 33.203 Annex I, derived here).
fn restart_on_401(ue: &IndepUe, resp: &str) -> Result<(RestartSet, RestartCreds)> {
    let www = header(resp, "WWW-Authenticate")
        .ok_or_else(|| anyhow!("401 without WWW-Authenticate:\n{resp}"))?
        .trim_start_matches("Digest");
    // Parameters, not substrings: a base64 nonce may end in "ik=".
    if param(www, "ck", ',').is_some() || param(www, "ik", ',').is_some() {
        bail!("the 401 still carries ck/ik: {www}");
    }
    let ss = header(resp, "Security-Server")
        .ok_or_else(|| anyhow!("401 without Security-Server:\n{resp}"))?
        .to_string();
    let nonce = param(www, "nonce", ',')
        .ok_or_else(|| anyhow!("no nonce"))?
        .to_string();
    let realm = param(www, "realm", ',').unwrap_or(DOMAIN).to_string();
    let qop = param(www, "qop", ',').is_some_and(|q| q.contains("auth"));
    let raw = base64::engine::general_purpose::STANDARD.decode(&nonce)?;
    if raw.len() < 32 {
        bail!("nonce too short");
    }
    let rand_: [u8; 16] = raw[..16].try_into()?;
    let autn = &raw[16..32];
    let k: [u8; 16] = hex::decode(k_hex(&ue.imsi))?
        .try_into()
        .map_err(|_| anyhow!("K"))?;
    let op: [u8; 16] = hex::decode(OP_HEX)?.try_into().map_err(|_| anyhow!("OP"))?;
    let mut m = Milenage::new_with_op(k, op);
    let (res, ck, ik, ak) = m.f2345(&rand_);
    let mut sqn = [0u8; 6];
    for i in 0..6 {
        sqn[i] = autn[i] ^ ak[i];
    }
    if m.f1(&rand_, &sqn, &[autn[6], autn[7]])[..] != autn[8..16] {
        bail!("AUTN MAC-A does not verify with K/OP");
    }
    let offer = ss.split(',').next().unwrap_or("");
    let num = |n: &str| -> Result<u32> {
        param(offer, n, ';')
            .ok_or_else(|| anyhow!("Security-Server without {n}: {ss}"))?
            .parse::<u32>()
            .map_err(|e| anyhow!("{n}: {e}"))
    };
    let set = RestartSet {
        p_spi_c: num("spi-c")?,
        p_spi_s: num("spi-s")?,
        p_pc: num("port-c")? as u16,
        p_ps: num("port-s")? as u16,
        spi_uc: ue.spi_uc,
        spi_us: ue.spi_us,
        ss: ss.clone(),
    };
    if param(offer, "alg", ';') != Some("hmac-sha-1-96")
        || param(offer, "ealg", ';') != Some("aes-cbc")
    {
        bail!("Security-Server is not hmac-sha-1-96/aes-cbc: {ss}");
    }
    let auth_key = format!("0x{}00000000", hex::encode(ik));
    let enc_key = format!("0x{}", hex::encode(ck));
    let (u_c, u_s) = ((UE_IP, ue.uc), (UE_IP, ue.us));
    let (p_c, p_s) = ((P_IP, set.p_pc), (P_IP, set.p_ps));
    let sas = [
        (u_c, p_s, set.p_spi_s, "out"),
        (u_s, p_c, set.p_spi_c, "out"),
        (p_s, u_c, set.spi_uc, "in"),
        (p_c, u_s, set.spi_us, "in"),
    ];
    // Policies for the UE's transport only (the P-CSCF installs both).
    let proto = match ue.tp {
        Tp::Udp => "udp",
        Tp::Tcp => "tcp",
    };
    let mut cmds = Vec::new();
    for ((sip, sport), (dip, dport), spi, dir) in sas {
        cmds.push(format!(
            "xfrm state add src {sip} dst {dip} proto esp spi {spi} mode transport replay-window 32 \
             auth-trunc hmac(sha1) {auth_key} 96 enc cbc(aes) {enc_key} sel src {sip} dst {dip} sport {sport} dport {dport}"
        ));
        // `update`: a set toward the same P-CSCF ports replaces the policy of the last.
        cmds.push(format!(
            "xfrm policy update src {sip}/32 dst {dip}/32 proto {proto} sport {sport} dport {dport} dir {dir} \
             tmpl src {sip} dst {dip} proto esp mode transport"
        ));
    }
    ip_batch(None, &cmds)?;
    let creds = RestartCreds {
        nonce,
        realm,
        qop,
        res: res.to_vec(),
        nc: 1,
    };
    Ok((set, creds))
}

/// A REGISTER (`expires`) over the set in use, with new UE SPIs in its Security-Client
/// (TS 33.203 §7.4); a 401 builds the new set (UE SAs installed) and the REGISTER
/// answering it goes through that set. `fresh`: the REGISTER carries no credentials,
/// so the S-CSCF must challenge it (a new set is required). Returns the set in use
/// afterwards and the 200 OK.
fn restart_register_over(
    ue: &mut IndepUe,
    cur: &RestartSet,
    creds: &mut RestartCreds,
    expires: u32,
    fresh: bool,
    what: &str,
) -> Result<(RestartSet, String)> {
    let set_expires = |m: String| {
        m.replace("expires=600000", &format!("expires={expires}"))
            .replace("Expires: 600000", &format!("Expires: {expires}"))
    };
    ue.spi_uc = cur.spi_uc.wrapping_add(2);
    ue.spi_us = cur.spi_us.wrapping_add(2);
    ue.dest = format!("{P_IP}:{}", cur.p_ps).parse()?;
    creds.nc += 1;
    let auth = if fresh {
        format!(
            "Digest username=\"{}\", realm=\"{DOMAIN}\", uri=\"sip:{DOMAIN}\", nonce=\"\", response=\"\"",
            ue.impi()
        )
    } else {
        restart_authorization(ue, creds)
    };
    let msg = set_expires(ue.register(&auth, Some(&cur.ss)));
    let resp = ue.transact(&msg, ue.cseq, Duration::from_secs(10))?.ok_or_else(|| {
        anyhow!(
            "{what}: no response within 10 s through the SA set with P-CSCF port-s {}\nUE SAs:\n{}\nP-CSCF SAs:\n{}",
            cur.p_ps,
            show_states("ue"),
            show_states("pcscf")
        )
    })?;
    match status_of(&resp) {
        200 if fresh => bail!("{what}: a REGISTER without credentials was not challenged:\n{resp}"),
        200 => {
            // Not challenged: the set in use stays (the new SPIs were not taken up).
            ue.spi_uc = cur.spi_uc;
            ue.spi_us = cur.spi_us;
            println!(
                "RESTART-UE {what}: 200 OK over the set with port-s {}",
                cur.p_ps
            );
            Ok((cur.clone(), resp))
        }
        401 => {
            let (new, c) = restart_on_401(ue, &resp)?;
            *creds = c;
            println!(
                "RESTART-UE {what}: 401 over the set with port-s {}; new set port-c {} port-s {}",
                cur.p_ps, new.p_pc, new.p_ps
            );
            match ue.tp {
                Tp::Udp => ue.dest = format!("{P_IP}:{}", new.p_ps).parse()?,
                // A new connection from port-c to the new port-s, through the new SAs
                // (the one to the old port-s is closed).
                Tp::Tcp => ue.open_protected(new.p_ps)?,
            }
            let auth = restart_authorization(ue, creds);
            let msg = set_expires(ue.register(&auth, Some(&new.ss)));
            let resp = ue
                .transact(&msg, ue.cseq, Duration::from_secs(10))?
                .ok_or_else(|| anyhow!("{what}: no response through the new set within 10 s"))?;
            if status_of(&resp) != 200 {
                bail!("{what}: REGISTER through the new set got:\n{resp}");
            }
            println!("RESTART-UE {what}: 200 OK through the new set");
            Ok((new, resp))
        }
        other => bail!("{what}: got {other}:\n{resp}"),
    }
}

/// An initial registration with IPsec (unprotected REGISTER, 401, UE SAs, protected
/// REGISTER, 200).
fn restart_register_initial(ue: &mut IndepUe) -> Result<(RestartSet, RestartCreds, String)> {
    ue.open_unprotected()?;
    let init_auth = format!(
        "Digest username=\"{}\", realm=\"{DOMAIN}\", uri=\"sip:{DOMAIN}\", nonce=\"\", response=\"\"",
        ue.impi()
    );
    let r1 = ue.register(&init_auth, None);
    let resp = ue
        .transact(&r1, ue.cseq, Duration::from_secs(10))?
        .ok_or_else(|| anyhow!("no response to the initial REGISTER within 10 s"))?;
    if status_of(&resp) != 401 {
        bail!("initial REGISTER got:\n{resp}");
    }
    let (set, creds) = restart_on_401(ue, &resp)?;
    ue.open_protected(set.p_ps)?;
    let auth = restart_authorization(ue, &creds);
    let r2 = ue.register(&auth, Some(&set.ss));
    let resp = ue
        .transact(&r2, ue.cseq, Duration::from_secs(10))?
        .ok_or_else(|| {
            anyhow!(
                "no response to the protected REGISTER within 10 s\nUE SAs:\n{}\nP-CSCF SAs:\n{}",
                show_states("ue"),
                show_states("pcscf")
            )
        })?;
    if status_of(&resp) != 200 {
        bail!("protected REGISTER got:\n{resp}");
    }
    Ok((set, creds, resp))
}

/// A reg-event SUBSCRIBE through `cur` (an originating request through the protected
/// server port; the UE's outbound SA toward port-s counts it); its NOTIFY (a request
/// toward the UE) must reach the UE's protected server port from the P-CSCF's port-c
/// of `cur`, over the UE's transport (TCP: a connection the P-CSCF opened from port-c
/// to the UE's port-s), through ESP (the UE's inbound SA counts it).
fn restart_subscribe_and_notify(
    ue: &mut IndepUe,
    cur: &RestartSet,
    service_route: &[String],
    rx: &mpsc::Receiver<String>,
    what: &str,
) -> Result<()> {
    while rx.try_recv().is_ok() {}
    let packets = |spi: u32, which: &str| -> Result<u64> {
        xfrm_states("ue")?
            .iter()
            .find(|s| s.spi == spi)
            .map(|s| s.packets)
            .ok_or_else(|| anyhow!("{what}: the UE has no {which} SA {spi:#x}"))
    };
    let before = packets(cur.spi_us, "inbound")?;
    let out_before = packets(cur.p_spi_s, "outbound")?;
    ue.dest = format!("{P_IP}:{}", cur.p_ps).parse()?;
    let local = ue.local()?;
    if ue.tp == Tp::Tcp
        && ue.tcp.as_ref().map(|t| t.get_ref().peer_addr().ok()) != Some(Some(ue.dest))
    {
        bail!(
            "{what}: the UE's TCP connection does not lead to port-s {}",
            ue.dest
        );
    }
    let tpp = if ue.tp == Tp::Tcp {
        ";transport=tcp"
    } else {
        ""
    };
    let cid = format!("restart-sub-{}", rand::random::<u32>());
    let mut sub = format!(
        "SUBSCRIBE {impu} SIP/2.0\r\nVia: SIP/2.0/{tp} {local};branch=z9hG4bKrs{r};rport\r\nRoute: <sip:{P_IP}:{ps}{tpp};lr>\r\n",
        impu = ue.impu(),
        tp = ue.tp_token(),
        r = rand::random::<u64>(),
        ps = cur.p_ps
    );
    for r in service_route {
        sub.push_str(&format!("Route: {r}\r\n"));
    }
    sub.push_str(&format!(
        "Max-Forwards: 70\r\nFrom: <{impu}>;tag=rs1\r\nTo: <{impu}>\r\nCall-ID: {cid}\r\nCSeq: 1 SUBSCRIBE\r\nContact: <sip:{UE_IP}:{us}{tpp}>\r\nEvent: reg\r\nAccept: application/reginfo+xml\r\nExpires: 600\r\nP-Preferred-Identity: <{impu}>\r\nSecurity-Verify: {ss}\r\nProxy-Require: sec-agree\r\nRequire: sec-agree\r\nContent-Length: 0\r\n\r\n",
        impu = ue.impu(),
        us = ue.us,
        ss = cur.ss
    ));
    let saved = std::mem::replace(&mut ue.call_id, cid);
    let resp = ue.transact(&sub, 1, Duration::from_secs(10));
    ue.call_id = saved;
    let resp = resp?.ok_or_else(|| {
        anyhow!(
            "{what}: no response to the SUBSCRIBE through the SA set with port-s {} within 10 s",
            cur.p_ps
        )
    })?;
    if !(200..300).contains(&status_of(&resp)) {
        bail!("{what}: SUBSCRIBE got:\n{resp}");
    }
    let want_from = format!("{} {P_IP}:{} ", ue.tp_token(), cur.p_pc);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let m = rx.recv_timeout(left).map_err(|_| {
            anyhow!(
                "{what}: no NOTIFY from {P_IP}:{} at the protected server port {} within 10 s",
                cur.p_pc,
                ue.us
            )
        })?;
        if m.starts_with(&want_from) && m.contains("NOTIFY ") {
            break;
        }
        println!(
            "RESTART-UE {what}: also got {}",
            m.lines().next().unwrap_or("")
        );
    }
    let after = packets(cur.spi_us, "inbound")?;
    if after <= before {
        bail!(
            "{what}: the NOTIFY arrived but the UE's inbound SA {:#x} counted no packet ({before} -> {after})",
            cur.spi_us
        );
    }
    let out_after = packets(cur.p_spi_s, "outbound")?;
    if out_after <= out_before {
        bail!(
            "{what}: the SUBSCRIBE was answered but the UE's outbound SA {:#x} counted no packet ({out_before} -> {out_after})",
            cur.p_spi_s
        );
    }
    println!(
        "RESTART-UE {what}: SUBSCRIBE 2xx through ESP (outbound SA packets {out_before} -> {out_after}); {} NOTIFY from {P_IP}:{} at port-s {} through ESP (inbound SA packets {before} -> {after})",
        ue.tp_token(),
        cur.p_pc,
        ue.us
    );
    Ok(())
}

fn restart_count(path: &Path, needle: &str) -> usize {
    std::fs::read_to_string(path)
        .map(|t| t.matches(needle).count())
        .unwrap_or(0)
}

/// Starts a P-CSCF in netns `pcscf` (log appended to `<dir>/pcscf.log`, pid to
/// `<dir>/pcscf.pid`) and waits until it serves (restore done).
fn restart_start_pcscf(dir: &Path, bin: &str, env: &[(&str, &str)]) -> Result<Child> {
    let log_path = dir.join("pcscf.log");
    let before = restart_count(&log_path, "P-CSCF serving");
    let log = std::fs::File::options().append(true).open(&log_path)?;
    let mut c = Command::new("ip");
    c.args([
        "netns",
        "exec",
        "pcscf",
        &format!("{bin}/pcscf"),
        "--config",
    ])
    .arg(dir.join("pcscf.toml"))
    .stdout(log.try_clone()?)
    .stderr(log);
    for (k, v) in env {
        c.env(k, v);
    }
    let mut p = c.spawn()?;
    std::fs::write(dir.join("pcscf.pid"), p.id().to_string())?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while restart_count(&log_path, "P-CSCF serving") <= before {
        if let Some(st) = p.try_wait()? {
            bail!("restarted P-CSCF exited ({st}); see pcscf.log");
        }
        if Instant::now() > deadline {
            bail!("restarted P-CSCF does not serve after 30 s");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(p)
}

/// Sends `signal` to the running P-CSCF and waits until it is gone (its own child, or
/// the one gm-core.sh started: then gone or a zombie).
fn restart_stop_pcscf(dir: &Path, child: Option<&mut Child>, signal: &str) -> Result<()> {
    let pid = std::fs::read_to_string(dir.join("pcscf.pid"))?
        .trim()
        .to_string();
    sh(&["kill", "-s", signal, &pid])?;
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut child = child;
    loop {
        let gone = match child.as_mut() {
            Some(c) => c.try_wait()?.is_some(),
            None => match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
                Ok(s) => s
                    .rsplit(')')
                    .next()
                    .and_then(|r| r.split_whitespace().next())
                    .is_some_and(|st| st == "Z" || st == "X"),
                Err(_) => true,
            },
        };
        if gone {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("P-CSCF {pid} still running 20 s after SIG{signal}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn restart_pcscf_counts() -> Result<(usize, usize)> {
    Ok((xfrm_states("pcscf")?.len(), xfrm_policy_count("pcscf")?))
}

/// After the P-CSCF process ended, the UE's TCP connection to its port-s is dead: the
/// kernel closed the P-CSCF's end (a FIN or RST through the SAs, which stay), so the
/// UE reads the end of the stream (or a reset) within 5 s. The UE then closes its end,
/// as a handset does when its connection drops.
fn restart_tcp_connection_closed(ue: &mut IndepUe, what: &str) -> Result<&'static str> {
    let mut t = ue
        .tcp
        .take()
        .ok_or_else(|| anyhow!("{what}: the UE has no TCP connection"))?;
    let peer = t.get_ref().peer_addr()?;
    t.get_ref()
        .set_read_timeout(Some(Duration::from_millis(500)))?;
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut buf = [0u8; 4096];
    loop {
        match t.read(&mut buf) {
            Ok(0) => return Ok("closed by the P-CSCF's kernel (FIN)"),
            Ok(_) => {} // anything still in flight before the end
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Ok("reset by the P-CSCF's kernel (RST)")
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => bail!("{what}: reading the UE's TCP connection to {peer}: {e}"),
        }
        if Instant::now() > deadline {
            bail!(
                "{what}: the UE's TCP connection to {peer} was still open 5 s after the P-CSCF stopped"
            );
        }
    }
}

/// A new TCP connection from the UE's port-c to the P-CSCF's port-s `p_ps` (only the
/// SAs' policies let it through, so it runs inside ESP). Tries again for up to 5 s while
/// the UE's end of the previous connection on the same ports may still be closing.
fn restart_tcp_reconnect(ue: &mut IndepUe, p_ps: u16, what: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match ue.open_protected(p_ps) {
            Ok(()) => break,
            Err(e) if Instant::now() < deadline => {
                println!("RESTART-UE {what}: reconnecting: {e:#}; again in 300 ms");
                std::thread::sleep(Duration::from_millis(300));
            }
            Err(e) => return Err(e.context(format!("{what}: reconnecting for 5 s"))),
        }
    }
    println!(
        "RESTART-UE {what}: new TCP connection {} -> {P_IP}:{p_ps}",
        ue.local()?
    );
    Ok(())
}

/// One UE (IMSI number `n`, port-c `base`, port-s `base + 1`, SPIs from `spi`) over
/// `tp` through both restarts, (a) SIGTERM with `sas_on_shutdown = "keep"` and (b)
/// SIGKILL, then de-registered: nothing left at the P-CSCF. `child` is the running
/// P-CSCF when this test started it (None: the one gm-core.sh started).
fn restart_pass(
    dir: &Path,
    bin: &str,
    child: &mut Option<Child>,
    tp: Tp,
    n: u32,
    base: u16,
    spi: u32,
) -> Result<()> {
    let log = dir.join("pcscf.log");
    let mut ue = IndepUe {
        tp,
        imsi: imsi(n),
        uc: base,
        us: base + 1,
        spi_uc: spi,
        spi_us: spi + 1,
        call_id: format!("restart-{n}-{}", rand::random::<u32>()),
        cseq: 0,
        udp: None,
        tcp: None,
        dest: format!("{P_IP}:5060").parse()?,
        ue_ip: UE_IP.parse()?,
        p_ip: P_IP.parse()?,
    };
    let t = ue.tp_token();
    // Every request toward the UE must reach it: the P-CSCF logs each it could not send.
    // (The log has colour codes between a field's name and value.)
    let port_s = format!("{UE_IP}:{}", ue.us);
    let unreachable = || -> Vec<String> {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("next hop unreachable") && l.contains(&port_s))
            .map(str::to_string)
            .collect()
    };
    let unreachable_before = unreachable().len();
    let (tx, rx) = mpsc::channel();
    serve_port_s(ue.ue_ip, ue.us, tx)?;
    let (mut cur, mut creds, ok) = restart_register_initial(&mut ue)?;
    let routes: Vec<String> = headers(&ok, "Service-Route")
        .iter()
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_string())
        .collect();
    println!(
        "RESTART-UE registered over {t} with IPsec: P-CSCF port-c {} port-s {}",
        cur.p_pc, cur.p_ps
    );
    restart_subscribe_and_notify(
        &mut ue,
        &cur,
        &routes,
        &rx,
        &format!("{t}, before any restart"),
    )?;
    let live = restart_pcscf_counts()?;
    if live.0 != 4 {
        bail!(
            "{t}: expected 4 SAs at the P-CSCF, found {}:\n{}",
            live.0,
            show_states("pcscf")
        );
    }
    println!(
        "RESTART-UE {t}: P-CSCF holds {} SAs and {} policies",
        live.0, live.1
    );

    // (a) sas_on_shutdown = "keep", SIGTERM; (b) SIGKILL (a crash).
    // The re-REGISTER after (a) reuses the credentials (the S-CSCF may answer 200 at
    // once); after (b) it carries none, so it is challenged and a new set is built from
    // the adopted one, which is then retired.
    for (what, signal, fresh) in [
        ("keep + SIGTERM", "TERM", false),
        ("crash (SIGKILL)", "KILL", true),
    ] {
        let what = format!("{t} {what}");
        let kept_logs = restart_count(&log, "Gm SAs kept in the kernel at shutdown");
        restart_stop_pcscf(dir, child.as_mut(), signal)?;
        let down = restart_pcscf_counts()?;
        if down != live {
            bail!(
                "{what}: with the P-CSCF stopped it has {down:?} SAs/policies, before {live:?}:\n{}",
                show_states("pcscf")
            );
        }
        if signal == "TERM"
            && restart_count(&log, "Gm SAs kept in the kernel at shutdown") <= kept_logs
        {
            bail!("{what}: the P-CSCF did not log the SAs it kept");
        }
        println!(
            "RESTART-UE {what}: P-CSCF stopped; its {} SAs and {} policies stay",
            down.0, down.1
        );
        if tp == Tp::Tcp {
            let how = restart_tcp_connection_closed(&mut ue, &what)?;
            println!("RESTART-UE {what}: the UE's TCP connection to port-s {} was {how}; the UE closed its end", cur.p_ps);
        }
        *child = Some(restart_start_pcscf(dir, bin, &[])?);
        let up = restart_pcscf_counts()?;
        if up != live {
            bail!(
                "{what}: after the restart the P-CSCF has {up:?} SAs/policies, before {live:?}:\n{}",
                show_states("pcscf")
            );
        }
        println!(
            "RESTART-UE {what}: restarted; the live set was adopted ({} SAs, {} policies)",
            up.0, up.1
        );
        if tp == Tp::Tcp {
            // As a handset does: a new connection from port-c to the adopted port-s.
            restart_tcp_reconnect(&mut ue, cur.p_ps, &what)?;
        }
        // A request toward the UE leaves from the adopted set's port-c, through ESP.
        restart_subscribe_and_notify(&mut ue, &cur, &routes, &rx, &what)?;
        // The UE keeps working: a protected re-REGISTER over the old SAs.
        let (next, _) = restart_register_over(&mut ue, &cur, &mut creds, 600000, fresh, &what)?;
        if fresh && next.p_spi_s == cur.p_spi_s {
            bail!("{what}: the challenged re-REGISTER did not get a new SA set");
        }
        cur = next;
        // The set it replaced goes after the grace period; one set stays.
        let deadline = Instant::now() + Duration::from_secs(10);
        while restart_pcscf_counts()? != live {
            if Instant::now() > deadline {
                bail!(
                    "{what}: 10 s after the re-registration the P-CSCF has {:?} SAs/policies, want {live:?}:\n{}",
                    restart_pcscf_counts()?,
                    show_states("pcscf")
                );
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        restart_subscribe_and_notify(
            &mut ue,
            &cur,
            &routes,
            &rx,
            &format!("{what}, after re-registration"),
        )?;
    }
    // De-registration over the set in use: nothing left at the P-CSCF.
    restart_register_over(
        &mut ue,
        &cur,
        &mut creds,
        0,
        false,
        &format!("{t} de-registration"),
    )?;
    wait_pcscf_clean(&format!(
        "{t}: after the de-registration following two restarts"
    ))?;
    let lines = unreachable();
    if lines.len() > unreachable_before {
        bail!(
            "{t}: the P-CSCF could not send requests to the UE's port-s:\n{}",
            lines[unreachable_before..].join("\n")
        );
    }
    Ok(())
}

/// Runs in netns `ue` (it drives the P-CSCF's restarts too: `ip netns exec pcscf`,
/// `kill`, `ip -n pcscf xfrm`): a UDP UE, then a TCP UE, through both restarts; then
/// the `"remove"` mode.
fn restart_ue_run() -> Result<()> {
    let dir = PathBuf::from(env_or(DIR_ENV)?);
    let bin = env_or(BIN_ENV)?;
    let log = dir.join("pcscf.log");
    let mut child: Option<Child> = None;
    restart_pass(&dir, &bin, &mut child, Tp::Udp, 700, 41000, 0xb000_0000)?;
    // The UDP UE's SAs and policies at the UE side go; the TCP UE has its own.
    ip_batch(
        None,
        &["xfrm state flush".into(), "xfrm policy flush".into()],
    )?;
    // The TCP UE does not use TCP timestamps (netns `ue` only; some handset stacks
    // do not): the P-CSCF's connections from port-c that its stopped run left in
    // TIME_WAIT could then not be reused by the next run, which must still reach the
    // UE's port-s from the same port-c (see `ims_sip_transport`'s SO_LINGER 0).
    let ts = "/proc/sys/net/ipv4/tcp_timestamps";
    std::fs::write(ts, "0").with_context(|| format!("writing {ts}"))?;
    println!("RESTART-UE TCP: the UE's netns does not use TCP timestamps");
    restart_pass(&dir, &bin, &mut child, Tp::Tcp, 702, 41020, 0xb200_0000)?;
    std::fs::write(ts, "1").with_context(|| format!("writing {ts}"))?;
    // (c) the default, sas_on_shutdown = "remove": SIGTERM leaves no SA and no policy.
    restart_stop_pcscf(&dir, child.as_mut(), "TERM")?;
    let mut child = restart_start_pcscf(
        &dir,
        &bin,
        &[("IMS_PCSCF__IPSEC__SAS_ON_SHUTDOWN", "remove")],
    )?;
    ip_batch(
        None,
        &["xfrm state flush".into(), "xfrm policy flush".into()],
    )?;
    let mut ue2 = IndepUe {
        tp: Tp::Udp,
        imsi: imsi(701),
        uc: 41010,
        us: 41011,
        spi_uc: 0xb100_0000,
        spi_us: 0xb100_0001,
        call_id: format!("restart2-{}", rand::random::<u32>()),
        cseq: 0,
        udp: None,
        tcp: None,
        dest: format!("{P_IP}:5060").parse()?,
        ue_ip: UE_IP.parse()?,
        p_ip: P_IP.parse()?,
    };
    restart_register_initial(&mut ue2)?;
    let held = restart_pcscf_counts()?;
    if held.0 != 4 {
        bail!("remove mode: expected 4 SAs after registering, found {held:?}");
    }
    let removed_logs = restart_count(&log, "Gm SAs removed at shutdown");
    restart_stop_pcscf(&dir, Some(&mut child), "TERM")?;
    let after = restart_pcscf_counts()?;
    if after != (0, 0) {
        bail!(
            "remove mode: after SIGTERM the P-CSCF side still has {after:?} SAs/policies:\n{}",
            show_states("pcscf")
        );
    }
    if restart_count(&log, "Gm SAs removed at shutdown") <= removed_logs {
        bail!("remove mode: the P-CSCF did not log the removal at shutdown");
    }
    println!("RESTART-UE remove mode: SIGTERM left no SA and no policy ({held:?} before)");
    Ok(())
}

/// Issue 4: "a P-CSCF restart neither leaks nor breaks live SAs". One UE registers over
/// UDP with IPsec (SAs installed with iproute2, keys derived here). The P-CSCF is
/// restarted (a) with `sas_on_shutdown = "keep"` by SIGTERM and (b) by SIGKILL; after
/// each restart its SAs and policies are still there (adopted, not removed), a
/// reg-event SUBSCRIBE through the old set is served (the UE's outbound SA counts it)
/// and its NOTIFY reaches the UE's protected server port from the adopted port-c
/// through ESP, and a protected re-REGISTER over the old SAs gets its 401 and a 200
/// through the new set. A de-registration then leaves no SA and no policy at the
/// P-CSCF. Then a second UE does the same over TCP (TS 33.203 §7.1), without TCP
/// timestamps: its connection from port-c to the P-CSCF's port-s dies with the P-CSCF
/// process (the UE reads its end), the UE opens a new one from port-c to the adopted
/// port-s through the SAs, and the NOTIFY comes over a connection the P-CSCF opens
/// from its port-c to the UE's port-s. For both UEs the P-CSCF never logs a request to
/// the UE's port-s it could not send. (c) With the default `remove`, SIGTERM leaves no
/// SA and no policy.
#[test]
fn pcscf_restart_keeps_live_sas_in_uml() {
    match role().as_deref() {
        None => host_side(
            RESTART,
            CoreOpts {
                allow_unprotected: true,
                dereg_grace_ms: 500,
                gm_v6: false,
                unanswered_challenge_s: 0,
            },
            &[imsi(700), imsi(701), imsi(702)],
            "GM-IPSEC restart: DONE",
        ),
        Some("orchestrate") => {
            let r = (|| -> Result<()> {
                let dir = env_or(DIR_ENV)?;
                // The P-CSCF gm-core.sh starts keeps its SAs on SIGTERM.
                let cfg = Path::new(&dir).join("pcscf.toml");
                let text = std::fs::read_to_string(&cfg)?;
                if !text.contains("[ipsec]\n") {
                    bail!("pcscf.toml has no [ipsec] section");
                }
                std::fs::write(
                    &cfg,
                    text.replacen("[ipsec]\n", "[ipsec]\nsas_on_shutdown = \"keep\"\n", 1),
                )?;
                core_up(&dir, &env_or(BIN_ENV)?)?;
                run_child_in_ue(RESTART, "restart-ue")?;
                Ok(())
            })();
            if let Err(e) = r {
                panic!("{e:#}");
            }
            println!("GM-IPSEC restart: DONE");
        }
        Some("restart-ue") => {
            if let Err(e) = restart_ue_run() {
                panic!("{e:#}");
            }
        }
        Some(other) => panic!("unknown role {other}"),
    }
}
