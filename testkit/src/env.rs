//! The PostgreSQL a test uses: a developer's server named by an environment variable,
//! else a [`TempPostgres`] of the test's own.

use crate::{Result, TempPostgres};

/// Where a test's PostgreSQL databases come from.
#[derive(Debug)]
pub enum TestPostgres {
    /// The URL from the environment variable: every [`TestPostgres::database`] call
    /// returns it (the database is shared with earlier runs, so tests using it must use
    /// fresh keys and clean up).
    Url(String),
    /// A throwaway server: every [`TestPostgres::database`] call creates a fresh database.
    Temp(TempPostgres),
}

impl TestPostgres {
    /// The URL in `var` when it is set and not empty, else a started [`TempPostgres`].
    pub fn from_env_or_start(var: &str) -> Result<TestPostgres> {
        match std::env::var(var) {
            Ok(url) if !url.trim().is_empty() => Ok(TestPostgres::Url(url.trim().to_string())),
            _ => TempPostgres::start().map(TestPostgres::Temp),
        }
    }

    /// A database for `name` (see [`TempPostgres::create_database`] for valid names):
    /// a new empty one on a throwaway server, the configured URL otherwise.
    pub fn database(&self, name: &str) -> Result<String> {
        match self {
            TestPostgres::Url(url) => Ok(url.clone()),
            TestPostgres::Temp(pg) => pg.create_database(name),
        }
    }

    /// Whether databases are fresh (a throwaway server) rather than shared.
    pub fn is_fresh(&self) -> bool {
        matches!(self, TestPostgres::Temp(_))
    }

    /// Says where the databases are, for test output (no password).
    pub fn describe(&self) -> String {
        match self {
            TestPostgres::Url(url) => format!("PostgreSQL at {}", redact(url)),
            TestPostgres::Temp(pg) => format!(
                "throwaway PostgreSQL on 127.0.0.1:{} ({})",
                pg.port(),
                pg.socket_dir().display()
            ),
        }
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(
            redact("postgres://u:pw@h:5432/d"),
            "postgres://u:***@h:5432/d"
        );
        assert_eq!(redact("postgres://u@h/d"), "postgres://u@h/d");
        assert_eq!(redact("not a url"), "not a url");
    }
}
