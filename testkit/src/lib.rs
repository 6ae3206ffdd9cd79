//! Test support shared by the store tests and the end-to-end tests (a dev-dependency
//! only): a throwaway PostgreSQL server, so the PostgreSQL backends of the HSS, S-CSCF
//! and P-CSCF stores are exercised on every `cargo test`, not only where a developer has
//! a server running.
//!
//! - [`TempPostgres`]: `initdb` into a temporary directory, the server started with
//!   `pg_ctl` on 127.0.0.1 (a free port, its unix socket in that directory, trust
//!   authentication, no fsync), stopped (`pg_ctl stop -m immediate`) and the directory
//!   removed on drop. [`TempPostgres::create_database`] gives each test a fresh database.
//! - [`TestPostgres`]: the database URL a developer put in an environment variable when
//!   set, else a [`TempPostgres`].
//!
//! The binaries come from the Debian package `postgresql` (see [`bins`]). PostgreSQL
//! refuses to run as root; as root (CI) the cluster is created and run as the `postgres`
//! system user (`runuser -u postgres --`), the temporary directory chowned to it.
//!
//! ```no_run
//! let pg = ims_testkit::TempPostgres::start().expect("PostgreSQL");
//! let url = pg.create_database("hss_crud").expect("database");
//! assert!(url.starts_with("postgres://postgres@127.0.0.1:"));
//! ```

pub mod bins;
mod env;
mod server;

pub use env::TestPostgres;
pub use server::TempPostgres;

/// Why a throwaway PostgreSQL could not be had.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No `initdb`/`pg_ctl` on this machine.
    #[error(
        "PostgreSQL server binaries (initdb, pg_ctl) not found in {searched}: install the \
         Debian package `postgresql` (apt-get install postgresql)"
    )]
    BinariesNotFound {
        /// Where they were looked for.
        searched: String,
    },
    /// Running as root (PostgreSQL refuses root) and the `postgres` user is missing.
    #[error(
        "running as root and there is no `postgres` system user to run the server as \
         (the Debian package `postgresql` creates it): {0}"
    )]
    NoServerUser(String),
    /// A file system operation or starting a program failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A PostgreSQL program exited with failure.
    #[error("`{command}` failed ({status}):\n{output}")]
    Command {
        /// The command line.
        command: String,
        /// Its exit status.
        status: String,
        /// Its output (and the server log's tail when starting the server failed).
        output: String,
    },
    /// A database name other than `[a-z0-9_]{1,63}` starting with a letter.
    #[error("invalid database name {0:?} (use a-z, 0-9 and _, starting with a letter)")]
    BadName(String),
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
