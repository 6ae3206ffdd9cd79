//! One throwaway PostgreSQL cluster: `initdb`, `pg_ctl start`, `createdb`, and
//! `pg_ctl stop -m immediate` on drop.

use std::ffi::OsString;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::bins::Bins;
use crate::{Error, Result};

/// The system user PostgreSQL runs as when the tests run as root.
const SERVER_USER: &str = "postgres";
/// The cluster's superuser (trust authentication: no password).
const SUPERUSER: &str = "postgres";
/// Attempts at starting the server on a free port (another process may take the port
/// between our probe and the server's bind).
const START_ATTEMPTS: usize = 4;

/// A PostgreSQL server of its own in a temporary directory, listening on
/// `127.0.0.1:<port>` and on a unix socket in that directory; stopped and removed on
/// drop.
#[derive(Debug)]
pub struct TempPostgres {
    bins: Bins,
    /// Removed on drop (after the server is stopped).
    dir: tempfile::TempDir,
    data: PathBuf,
    port: u16,
    /// Run the server programs as [`SERVER_USER`] (we are root).
    as_server_user: bool,
}

impl TempPostgres {
    /// Creates a cluster with `initdb` in a new temporary directory and starts it (a few
    /// seconds). Fails with [`Error::BinariesNotFound`] when PostgreSQL is not installed.
    pub fn start() -> Result<TempPostgres> {
        let bins = Bins::find()?;
        let dir = tempfile::Builder::new()
            .prefix("ims-testkit-pg-")
            .tempdir_in(base_dir())
            .map_err(|e| io("creating a temporary directory", e))?;
        // The directory is ours: its owner is our effective uid.
        let euid = std::fs::metadata(dir.path())
            .map_err(|e| io("reading the temporary directory", e))?
            .uid();
        let as_server_user = euid == 0;
        if as_server_user {
            let (uid, gid) = server_user_ids()?;
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).map_err(|e| {
                io(
                    format!("chown {} to {SERVER_USER}", dir.path().display()),
                    e,
                )
            })?;
        }
        let data = dir.path().join("data");
        let mut pg = TempPostgres {
            bins,
            dir,
            data,
            port: 0,
            as_server_user,
        };
        pg.initdb()?;
        let mut last = None;
        for _ in 0..START_ATTEMPTS {
            pg.port = free_port()?;
            match pg.start_server() {
                Ok(()) => return Ok(pg),
                Err(e) if pg.log().contains("could not bind") => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| io("starting the server", std::io::ErrorKind::Other.into())))
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory holding the unix socket (`.s.PGSQL.<port>`) and the data directory.
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    /// URL of the `postgres` database (as the superuser `postgres`, no password).
    pub fn url(&self) -> String {
        self.url_for("postgres")
    }

    /// URL of database `db` on this server.
    pub fn url_for(&self, db: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{db}", self.port)
    }

    /// Creates the empty database `name` (`[a-z][a-z0-9_]*`, at most 63 bytes) and
    /// returns its URL.
    pub fn create_database(&self, name: &str) -> Result<String> {
        let valid = !name.is_empty()
            && name.len() <= 63
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid {
            return Err(Error::BadName(name.to_string()));
        }
        let port = self.port.to_string();
        // A client over TCP (trust authentication): no need to be the server user.
        run(Command::new(self.bins.get("createdb"))
            .args(["-h", "127.0.0.1", "-p", &port, "-U", SUPERUSER, name])
            .env("PGCONNECT_TIMEOUT", "10")
            .env_remove("PGPASSWORD")
            .current_dir(self.dir.path()))?;
        Ok(self.url_for(name))
    }

    /// The server log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    /// A command running server program `name`, as [`SERVER_USER`] when we are root.
    fn server_command(&self, name: &str) -> Command {
        let program = self.bins.get(name);
        let mut cmd = if self.as_server_user {
            let mut c = Command::new(runuser());
            c.args(["-u", SERVER_USER, "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        // The server user may not be allowed into our working directory.
        cmd.current_dir(self.dir.path());
        cmd
    }

    fn initdb(&self) -> Result<()> {
        run(self
            .server_command("initdb")
            .arg("-D")
            .arg(&self.data)
            .args([
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ]))
        .map(drop)
    }

    fn start_server(&self) -> Result<()> {
        // `pg_ctl -o` goes through /bin/sh: quote the socket directory.
        let opts = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k '{}' -c fsync=off \
             -c synchronous_commit=off -c full_page_writes=off -c shared_buffers=16MB",
            self.port,
            self.dir.path().display()
        );
        let started = run(self
            .server_command("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(self.log_path())
            .args(["-w", "-t", "60", "-o"])
            .arg(opts)
            .arg("start"));
        match started {
            Ok(_) => Ok(()),
            Err(Error::Command {
                command,
                status,
                output,
            }) => {
                // Leave no half-started server behind before a retry.
                self.stop();
                Err(Error::Command {
                    command,
                    status,
                    output: format!("{output}\n--- server log ---\n{}", self.log()),
                })
            }
            Err(e) => Err(e),
        }
    }

    /// `pg_ctl stop -m immediate` (no checkpoint: the data is thrown away anyway).
    fn stop(&self) {
        if !self.data.join("postmaster.pid").exists() {
            return;
        }
        let _ = self
            .server_command("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "-t", "30", "stop"])
            .output();
    }
}

impl Drop for TempPostgres {
    fn drop(&mut self) {
        self.stop();
        // `dir` (a TempDir) removes the directory when dropped after this.
    }
}

/// Where the cluster's directory goes: the temporary directory, unless its path is too
/// long for the unix socket in it (`sun_path` holds 107 bytes) or others may not search
/// it (the server user must, when we are root); `/tmp` then.
fn base_dir() -> PathBuf {
    let tmp = std::env::temp_dir();
    let short = tmp.as_os_str().len() <= 64;
    // Every ancestor searchable by others (`o+x`), as the server user will need.
    let open = tmp.ancestors().all(|a| {
        std::fs::metadata(a)
            .map(|m| m.mode() & 0o001 != 0)
            .unwrap_or(false)
    });
    if short && open {
        tmp
    } else {
        PathBuf::from("/tmp")
    }
}

/// `runuser` from util-linux (Debian: essential), by absolute path when found.
fn runuser() -> OsString {
    ["/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser"]
        .iter()
        .find(|p| Path::new(p).is_file())
        .map_or_else(|| OsString::from("runuser"), OsString::from)
}

/// uid and gid of [`SERVER_USER`].
fn server_user_ids() -> Result<(u32, u32)> {
    let id = |flag: &str| -> Result<u32> {
        let out = Command::new("id")
            .args([flag, SERVER_USER])
            .output()
            .map_err(|e| io("running `id`", e))?;
        let text = String::from_utf8_lossy(&out.stdout);
        match text.trim().parse() {
            Ok(v) if out.status.success() => Ok(v),
            _ => Err(Error::NoServerUser(
                String::from_utf8_lossy(&out.stderr).trim().to_string(),
            )),
        }
    };
    Ok((id("-u")?, id("-g")?))
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
fn free_port() -> Result<u16> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| io("probing for a free port", e))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| io("probing for a free port", e))
}

/// Runs `cmd`; its stdout on success, [`Error::Command`] with the output otherwise.
fn run(cmd: &mut Command) -> Result<String> {
    let line = format!("{cmd:?}");
    let out = cmd.output().map_err(|e| io(format!("running {line}"), e))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(Error::Command {
            command: line,
            status: out.status.to_string(),
            output: text,
        })
    }
}

fn io(what: impl Into<String>, source: std::io::Error) -> Error {
    Error::Io {
        what: what.into(),
        source,
    }
}
