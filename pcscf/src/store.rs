//! Persistent registration store of the P-CSCF (TS 24.229 §5.2.2.3: the P-CSCF keeps the
//! public user identities, the Service-Route and the UE's flow of every registration).
//!
//! What must survive a P-CSCF restart lives here: after a restart a registered UE can still
//! be reached (its flow) and its requests still get `P-Asserted-Identity`. `sqlx` with the
//! `Any` driver: a SQLite file by default (created and migrated on start), PostgreSQL by URL.
//! Migrations are in `pcscf/migrations`, written in SQL both engines accept.

use std::net::SocketAddr;
use std::str::FromStr;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};

/// Errors of the registration store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database could not be opened or a statement failed.
    #[error("registration store {url}: {source}")]
    Database {
        /// The URL (without password) of the store.
        url: String,
        /// What went wrong.
        #[source]
        source: sqlx::Error,
    },
    /// Migrating the schema failed.
    #[error("registration store {url}: migration failed: {source}")]
    Migrate {
        /// The URL (without password) of the store.
        url: String,
        /// What went wrong.
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    /// A row holds a value this version cannot read.
    #[error("registration store: row for contact {contact}: bad {column}")]
    BadRow {
        /// The contact of the row.
        contact: String,
        /// The column that could not be read.
        column: &'static str,
    },
}

/// Transport of a UE's flow (RFC 3261 §18).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlowTransport {
    /// Datagrams.
    Udp,
    /// A TCP connection (opened by the UE).
    Tcp,
}

impl FlowTransport {
    /// Lower-case token as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            FlowTransport::Udp => "udp",
            FlowTransport::Tcp => "tcp",
        }
    }
}

impl FromStr for FlowTransport {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        if s.eq_ignore_ascii_case("udp") {
            Ok(FlowTransport::Udp)
        } else if s.eq_ignore_ascii_case("tcp") {
            Ok(FlowTransport::Tcp)
        } else {
            Err(())
        }
    }
}

/// One registered contact as the P-CSCF remembers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// Contact URI (without angle brackets) as in the REGISTER.
    pub contact: String,
    /// Private user identity from the Authorization header ('' if none was sent).
    pub impi: String,
    /// `P-Associated-URI` values of the 200 OK; the first is the default identity.
    pub public_identities: Vec<String>,
    /// `Service-Route` values of the 200 OK, in order (each a full name-addr).
    pub service_route: Vec<String>,
    /// Transport the UE registered over.
    pub transport: FlowTransport,
    /// Source address of the UE's REGISTER (where requests to the UE go).
    pub ue_addr: SocketAddr,
    /// UNIX time (seconds) when the binding expires.
    pub expires_at: i64,
    /// Negotiated Gm security association description; '' when unprotected.
    pub security: String,
}

/// The store: a pool on SQLite or PostgreSQL.
#[derive(Debug, Clone)]
pub struct RegistrationStore {
    pool: AnyPool,
    url: String,
}

fn redact(url: &str) -> String {
    // postgres://user:password@host/db → postgres://user:***@host/db
    if let Some((scheme, rest)) = url.split_once("://") {
        if let Some((cred, host)) = rest.split_once('@') {
            if let Some((user, _)) = cred.split_once(':') {
                return format!("{scheme}://{user}:***@{host}");
            }
        }
    }
    url.to_string()
}

impl RegistrationStore {
    /// Opens (creating a SQLite file if needed) and migrates the store.
    ///
    /// `url` is `sqlite://<path>` (the file is created), `sqlite::memory:`, or
    /// `postgres://…`. A bare path is taken as a SQLite file.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let full = if url.contains(':') && !url.starts_with('/') && !url.starts_with('.') {
            url.to_string()
        } else {
            format!("sqlite://{url}")
        };
        let full = if full.starts_with("sqlite://") && !full.contains("mode=") {
            let sep = if full.contains('?') { '&' } else { '?' };
            format!("{full}{sep}mode=rwc")
        } else {
            full
        };
        let shown = redact(&full);
        let is_memory = full.contains(":memory:");
        let pool = AnyPoolOptions::new()
            // One connection for an in-memory SQLite database (each connection is its own db).
            .max_connections(if is_memory { 1 } else { 4 })
            .connect(&full)
            .await
            .map_err(|source| StoreError::Database {
                url: shown.clone(),
                source,
            })?;
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .map_err(|source| StoreError::Migrate {
                url: shown.clone(),
                source,
            })?;
        Ok(Self { pool, url: shown })
    }

    fn db_err(&self, source: sqlx::Error) -> StoreError {
        StoreError::Database {
            url: self.url.clone(),
            source,
        }
    }

    /// Inserts or replaces the binding of `b.contact`.
    pub async fn upsert(&self, b: &Binding) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO pcscf_registration \
             (contact, impi, public_identities, service_route, transport, ue_addr, expires_at, security) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (contact) DO UPDATE SET impi = excluded.impi, \
             public_identities = excluded.public_identities, service_route = excluded.service_route, \
             transport = excluded.transport, ue_addr = excluded.ue_addr, \
             expires_at = excluded.expires_at, security = excluded.security",
        )
        .bind(b.contact.clone())
        .bind(b.impi.clone())
        .bind(b.public_identities.join("\n"))
        .bind(b.service_route.join("\n"))
        .bind(b.transport.as_str())
        .bind(b.ue_addr.to_string())
        .bind(b.expires_at)
        .bind(b.security.clone())
        .execute(&self.pool)
        .await
        .map_err(|e| self.db_err(e))?;
        Ok(())
    }

    /// Removes the binding of `contact` (no error if there is none).
    pub async fn remove(&self, contact: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM pcscf_registration WHERE contact = $1")
            .bind(contact.to_string())
            .execute(&self.pool)
            .await
            .map_err(|e| self.db_err(e))?;
        Ok(())
    }

    /// Removes every binding that expired at or before `now` (UNIX seconds); returns them.
    pub async fn purge_expired(&self, now: i64) -> Result<Vec<Binding>, StoreError> {
        let all = self.load_all().await?;
        let expired: Vec<Binding> = all.into_iter().filter(|b| b.expires_at <= now).collect();
        sqlx::query("DELETE FROM pcscf_registration WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(|e| self.db_err(e))?;
        Ok(expired)
    }

    /// All bindings (used at start-up to rebuild the in-memory view).
    pub async fn load_all(&self) -> Result<Vec<Binding>, StoreError> {
        let rows = sqlx::query(
            "SELECT contact, impi, public_identities, service_route, transport, ue_addr, expires_at, security \
             FROM pcscf_registration",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.db_err(e))?;
        rows.iter().map(|r| self.row(r)).collect()
    }

    fn row(&self, r: &AnyRow) -> Result<Binding, StoreError> {
        let get = |col: &'static str| -> Result<String, StoreError> {
            r.try_get::<String, _>(col).map_err(|e| self.db_err(e))
        };
        let contact = get("contact")?;
        let bad = |column| StoreError::BadRow {
            contact: contact.clone(),
            column,
        };
        let lines = |s: String| -> Vec<String> {
            s.split('\n')
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect()
        };
        Ok(Binding {
            impi: get("impi")?,
            public_identities: lines(get("public_identities")?),
            service_route: lines(get("service_route")?),
            transport: get("transport")?.parse().map_err(|_| bad("transport"))?,
            ue_addr: get("ue_addr")?.parse().map_err(|_| bad("ue_addr"))?,
            expires_at: r
                .try_get::<i64, _>("expires_at")
                .map_err(|e| self.db_err(e))?,
            security: get("security")?,
            contact,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(contact: &str, exp: i64) -> Binding {
        Binding {
            contact: contact.into(),
            impi: "001010000000001@ims.test".into(),
            public_identities: vec!["sip:alice@ims.test".into(), "tel:+15551234".into()],
            service_route: vec!["<sip:orig@scscf.ims.test:6060;lr>".into()],
            transport: FlowTransport::Udp,
            ue_addr: "127.0.0.1:40000".parse().unwrap(),
            expires_at: exp,
            security: String::new(),
        }
    }

    #[tokio::test]
    async fn survives_reopen_of_sqlite_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pcscf.sqlite");
        let url = format!("sqlite://{}", path.display());
        {
            let s = RegistrationStore::open(&url).await.unwrap();
            s.upsert(&binding("sip:alice@127.0.0.1:40000", 100))
                .await
                .unwrap();
            let mut b = binding("sip:alice@127.0.0.1:40000", 200);
            b.transport = FlowTransport::Tcp;
            s.upsert(&b).await.unwrap();
        }
        let s = RegistrationStore::open(&url).await.unwrap();
        let all = s.load_all().await.unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].expires_at, 200);
        assert_eq!(all[0].transport, FlowTransport::Tcp);
        assert_eq!(all[0].public_identities.len(), 2);
        s.upsert(&binding("sip:bob@127.0.0.1:40001", 50))
            .await
            .unwrap();
        let gone = s.purge_expired(100).await.unwrap();
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].contact, "sip:bob@127.0.0.1:40001");
        s.remove("sip:alice@127.0.0.1:40000").await.unwrap();
        assert!(s.load_all().await.unwrap().is_empty());
    }

    #[test]
    fn password_is_redacted() {
        assert_eq!(
            redact("postgres://ims:secret@db/ims"),
            "postgres://ims:***@db/ims"
        );
    }
}
