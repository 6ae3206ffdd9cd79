//! A whole IMS core as four real processes (`hss`, `scscf`, `icscf`, `pcscf`) on
//! loopback addresses of its own (`127.0.<net>.1` P-CSCF, `.2` I-CSCF, `.3` S-CSCF,
//! `.4` HSS), so tests running in parallel never share a port.
//!
//! Each role keeps its state in a SQLite file in the lab's directory unless
//! [`Lab::start_with`] gives it a database URL (e.g. PostgreSQL).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tempfile::TempDir;

use crate::procs::{bin, wait_tcp, Proc};
use crate::subscribers::{Subscriber, DOMAIN};

/// The running core (four processes).
pub struct Lab {
    pub dir: TempDir,
    pub net: u8,
    pub hss: Proc,
    pub scscf: Proc,
    pub icscf: Proc,
    pub pcscf: Proc,
    /// The database URLs given to [`Lab::start_with`].
    databases: Databases,
}

/// Database URLs of the roles that keep state; `None`: a SQLite file in the lab's
/// directory (`hss.db`, `scscf.db`, `pcscf.db`).
#[derive(Debug, Clone, Default)]
pub struct Databases {
    /// The HSS subscriber store.
    pub hss: Option<String>,
    /// The S-CSCF registration store.
    pub scscf: Option<String>,
    /// The P-CSCF registration store.
    pub pcscf: Option<String>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        if std::env::var_os("IMS_TEST_KEEP").is_some() {
            let d = self.dir.path().to_path_buf();
            eprintln!("IMS_TEST_KEEP: keeping {}", d.display());
            let _ = std::fs::create_dir_all(d.with_extension("kept"));
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let _ = std::fs::copy(e.path(), d.with_extension("kept").join(e.file_name()));
            }
        }
    }
}

impl Lab {
    /// Address of role `host` (1 P, 2 I, 3 S, 4 HSS) in this core's net.
    pub fn ip(&self, host: u8) -> String {
        format!("127.0.{}.{host}", self.net)
    }
    /// The P-CSCF's Gm address (UDP and TCP).
    pub fn pcscf_addr(&self) -> SocketAddr {
        format!("{}:5060", self.ip(1)).parse().expect("addr")
    }
    /// The HSS REST API address.
    pub fn hss_http(&self) -> SocketAddr {
        format!("{}:8080", self.ip(4)).parse().expect("addr")
    }
    /// The HSS database URL.
    pub fn hss_db(&self) -> String {
        self.databases
            .hss
            .clone()
            .unwrap_or_else(|| sqlite_url(self.dir.path(), "hss.db"))
    }
    /// A local address for test clients (SIPp, test UEs) in this core's net.
    pub fn client_ip(&self) -> String {
        self.ip(10)
    }
    /// Work directory (configs, logs, databases).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes the four configuration files and starts the four processes, each role's
    /// state in a SQLite file.
    pub fn start(net: u8) -> Result<Lab> {
        Self::start_with(net, Databases::default())
    }

    /// As [`Lab::start`], with the database URLs in `databases` (written into the TOML
    /// files as basic strings: no quote or backslash in them).
    pub fn start_with(net: u8, databases: Databases) -> Result<Lab> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("ims-core-{net}-"))
            .tempdir()?;
        let ip = |h: u8| format!("127.0.{net}.{h}");
        let d = dir.path();
        let db = |url: &Option<String>, file: &str| -> Result<String> {
            let url = url.clone().unwrap_or_else(|| sqlite_url(d, file));
            if url.contains(['"', '\\']) {
                bail!("database URL {url:?} cannot go into a TOML basic string");
            }
            Ok(url)
        };
        let (hss_db, scscf_db, pcscf_db) = (
            db(&databases.hss, "hss.db")?,
            db(&databases.scscf, "scscf.db")?,
            db(&databases.pcscf, "pcscf.db")?,
        );
        let write = |name: &str, text: String| -> Result<PathBuf> {
            let p = d.join(name);
            std::fs::write(&p, text)?;
            Ok(p)
        };
        write(
            "hss.toml",
            format!(
                r#"domain = "{DOMAIN}"
[diameter]
listen = "{hss}:3868"
[http]
listen = "{hss}:8080"
[database]
url = "{hss_db}"
[server_capabilities]
server_names = ["sip:{s}:5060"]
"#,
                hss = ip(4),
                s = ip(3),
            ),
        )?;
        write(
            "scscf.toml",
            format!(
                r#"domain = "{DOMAIN}"
uri = "sip:{s}:5060"
[sip]
listen = ["udp:{s}:5060", "tcp:{s}:5060"]
[diameter]
peers = ["{hss}:3868"]
origin_host = "scscf.{net}.{DOMAIN}"
[database]
url = "{scscf_db}"
"#,
                s = ip(3),
                hss = ip(4),
            ),
        )?;
        write(
            "icscf.toml",
            format!(
                r#"domain = "{DOMAIN}"
scscf_fallback = ["sip:{s}:5060"]
[sip]
listen = ["udp:{i}:5060", "tcp:{i}:5060"]
[diameter]
peers = ["{hss}:3868"]
origin_host = "icscf.{net}.{DOMAIN}"
"#,
                s = ip(3),
                i = ip(2),
                hss = ip(4)
            ),
        )?;
        write(
            "pcscf.toml",
            format!(
                r#"domain = "{DOMAIN}"
icscf_uri = "sip:{i}:5060"
[sip]
listen = ["udp:{p}:5060", "tcp:{p}:5060"]
[ipsec]
enabled = false
allow_unprotected = true
[database]
url = "{pcscf_db}"
"#,
                p = ip(1),
                i = ip(2),
            ),
        )?;
        let hss = Self::spawn_hss(d, &ip(4))?;
        let scscf = Self::spawn_role("scscf", d)?;
        let icscf = Self::spawn_role("icscf", d)?;
        let pcscf = Self::spawn_role("pcscf", d)?;
        let mut core = Lab {
            dir,
            net,
            hss,
            scscf,
            icscf,
            pcscf,
            databases,
        };
        for (h, name) in [(3u8, "scscf"), (2, "icscf"), (1, "pcscf")] {
            let a: SocketAddr = format!("{}:5060", core.ip(h)).parse()?;
            wait_tcp(a, Duration::from_secs(30)).with_context(|| format!("{name} SIP port"))?;
        }
        core.assert_running()?;
        Ok(core)
    }

    /// Starts the HSS on `hss.toml` and waits for its Diameter and HTTP ports.
    fn spawn_hss(d: &Path, ip: &str) -> Result<Proc> {
        let cfg = d.join("hss.toml").to_string_lossy().to_string();
        let hss = Proc::spawn("hss", &bin("hss")?, &["serve", "--config", &cfg], d)?;
        let hss_diam: SocketAddr = format!("{ip}:3868").parse()?;
        let hss_http: SocketAddr = format!("{ip}:8080").parse()?;
        wait_tcp(hss_diam, Duration::from_secs(30)).context("HSS Diameter port")?;
        wait_tcp(hss_http, Duration::from_secs(30)).context("HSS HTTP port")?;
        Ok(hss)
    }

    /// Stops the HSS (an outage: the CSCFs lose their Diameter peer).
    pub fn stop_hss(&mut self) {
        self.hss.stop();
    }

    /// Starts the HSS again on the same configuration and database.
    pub fn start_hss(&mut self) -> Result<()> {
        self.hss = Self::spawn_hss(self.dir.path(), &self.ip(4))?;
        Ok(())
    }

    fn spawn_role(name: &str, d: &Path) -> Result<Proc> {
        let cfg = d.join(format!("{name}.toml")).to_string_lossy().to_string();
        Proc::spawn(name, &bin(name)?, &["--config", &cfg], d)
    }

    /// Stops and starts the S-CSCF on the same configuration and database.
    pub fn restart_scscf(&mut self) -> Result<()> {
        self.scscf.stop();
        self.scscf = Self::spawn_role("scscf", self.dir.path())?;
        let a: SocketAddr = format!("{}:5060", self.ip(3)).parse()?;
        wait_tcp(a, Duration::from_secs(30))
    }

    /// Stops and starts the P-CSCF on the same configuration and database.
    pub fn restart_pcscf(&mut self) -> Result<()> {
        self.pcscf.stop();
        self.pcscf = Self::spawn_role("pcscf", self.dir.path())?;
        wait_tcp(self.pcscf_addr(), Duration::from_secs(30))
    }

    /// Fails, with log tails, if any process has exited.
    pub fn assert_running(&mut self) -> Result<()> {
        self.hss.assert_running()?;
        self.scscf.assert_running()?;
        self.icscf.assert_running()?;
        self.pcscf.assert_running()
    }

    /// Log tails of every role, for failure messages.
    pub fn logs(&self) -> String {
        [&self.pcscf, &self.icscf, &self.scscf, &self.hss]
            .iter()
            .map(|p| format!("--- {} ---\n{}", p.name, p.log_tail(25)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Provisions `sub` through the HSS REST API (POST /api/v1/subscribers).
    pub fn provision(&self, sub: &Subscriber) -> Result<()> {
        let body = format!(
            r#"{{"imsi":"{}","impi":"{}","impus":["{}","tel:{}"],"k":"{}","op":"{}","amf":"{}"}}"#,
            sub.imsi,
            sub.impi,
            sub.impu(),
            sub.impu_user,
            sub.k_hex(),
            sub.op_hex(),
            sub.amf_hex()
        );
        let (status, text) = http(self.hss_http(), "POST", "/api/v1/subscribers", Some(&body))?;
        if status != 201 && status != 200 {
            bail!("provisioning {} failed: HTTP {status}: {text}", sub.imsi);
        }
        Ok(())
    }
}

/// `sqlite://<dir>/<file>`.
fn sqlite_url(dir: &Path, file: &str) -> String {
    format!("sqlite://{}", dir.join(file).display())
}

/// A minimal HTTP/1.1 client (one request per connection) for the HSS REST API.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let body = body.unwrap_or("");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)?;
    let status = resp
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let text = resp
        .split_once("\r\n\r\n")
        .map(|x| x.1)
        .unwrap_or("")
        .to_string();
    Ok((status, text))
}
