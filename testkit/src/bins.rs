//! Finding the PostgreSQL server binaries (`initdb`, `pg_ctl`, `createdb`).
//!
//! Debian's `postgresql` package installs them outside `PATH`, in
//! `/usr/lib/postgresql/<major>/bin`; the highest major version found there wins.
//! `IMS_TEST_PG_BINDIR` names another directory; `PATH` is the last resort (other
//! distributions, a server built from source).

use std::path::{Path, PathBuf};

use crate::Error;

/// Environment variable naming a directory that holds `initdb` and `pg_ctl`.
pub const BINDIR_ENV: &str = "IMS_TEST_PG_BINDIR";

/// Where the Debian package `postgresql` puts the server binaries.
const DEBIAN_ROOT: &str = "/usr/lib/postgresql";

/// The directory holding the server binaries.
#[derive(Debug, Clone)]
pub struct Bins {
    dir: PathBuf,
}

impl Bins {
    /// `IMS_TEST_PG_BINDIR`, else the newest `/usr/lib/postgresql/<major>/bin`, else the
    /// first directory on `PATH` with both `initdb` and `pg_ctl`.
    pub fn find() -> Result<Bins, Error> {
        let mut searched = Vec::new();
        if let Some(dir) = std::env::var_os(BINDIR_ENV) {
            let dir = PathBuf::from(dir);
            if has_server(&dir) {
                return Ok(Bins { dir });
            }
            searched.push(format!("{BINDIR_ENV}={}", dir.display()));
        }
        let mut debian: Vec<(u32, PathBuf)> = std::fs::read_dir(DEBIAN_ROOT)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let major = e.file_name().to_str()?.parse::<u32>().ok()?;
                let bin = e.path().join("bin");
                has_server(&bin).then_some((major, bin))
            })
            .collect();
        debian.sort();
        if let Some((_, dir)) = debian.pop() {
            return Ok(Bins { dir });
        }
        searched.push(format!("{DEBIAN_ROOT}/*/bin"));
        if let Some(path) = std::env::var_os("PATH") {
            if let Some(dir) = std::env::split_paths(&path).find(|d| has_server(d)) {
                return Ok(Bins { dir });
            }
        }
        searched.push("PATH".to_string());
        Err(Error::BinariesNotFound {
            searched: searched.join(", "),
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of the program `name` in the directory.
    pub fn get(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

fn has_server(dir: &Path) -> bool {
    ["initdb", "pg_ctl"].iter().all(|b| dir.join(b).is_file())
}
