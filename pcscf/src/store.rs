//! Persistent registration store of the P-CSCF (TS 24.229 §5.2.2.3: the P-CSCF keeps the
//! public user identities, the Service-Route and the UE's flow of every registration).
//!
//! What must survive a P-CSCF restart lives here: after a restart a registered UE can still
//! be reached (its flow) and its requests still get `P-Asserted-Identity`. `sqlx` with the
//! `Any` driver: a SQLite file by default (created and migrated on start), PostgreSQL by URL.
//! Migrations are in `pcscf/migrations`, written in SQL both engines accept.
//!
//! The in-memory registry ([`crate::registrar`]) is the source of truth for routing; the
//! database is written behind it by one [`Writer`] task that gathers the changes of a
//! few milliseconds, coalesces them per contact and commits each batch in one
//! transaction of a few multi-row statements, so no SIP message waits for the disk (a
//! 1,000-UE run saw pool waits over 2 s when every 200 OK wrote synchronously).
//! A clean shutdown ([`Writer::shutdown`]) commits everything queued; on a crash the
//! last batch being collected (milliseconds) may be lost and those UEs re-register.

use std::net::SocketAddr;
use std::str::FromStr;

use std::collections::HashMap;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};
use tokio::sync::{mpsc, oneshot};

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
    /// AOR of the REGISTER's To (the UE's key); '' when unknown (older rows).
    pub aor: String,
}

/// The store: a pool on SQLite or PostgreSQL.
#[derive(Debug, Clone)]
pub struct RegistrationStore {
    pool: AnyPool,
    url: String,
    /// Bind parameters as `?` (SQLite) rather than `$N` (PostgreSQL).
    question_marks: bool,
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
        let is_sqlite_file = full.starts_with("sqlite:") && !is_memory;
        let mut opts = AnyPoolOptions::new()
            // One connection for an in-memory SQLite database (each connection is its own db).
            .max_connections(if is_memory { 1 } else { 4 });
        if is_sqlite_file {
            // As the S-CSCF's store: WAL with synchronous=NORMAL. In SQLite's default
            // rollback-journal mode every batch created, fsynced and unlinked a journal
            // file (perf: a sixth of the P-CSCF's CPU in that thread's kernel time). A
            // process crash loses nothing committed; a power loss may lose the last
            // batches, which the UEs' next re-registration restores.
            opts = opts.after_connect(|conn, _| {
                Box::pin(async move {
                    (&mut *conn).execute("PRAGMA busy_timeout = 5000").await?;
                    (&mut *conn).execute("PRAGMA synchronous = NORMAL").await?;
                    Ok(())
                })
            });
        }
        let pool = opts
            .connect(&full)
            .await
            .map_err(|source| StoreError::Database {
                url: shown.clone(),
                source,
            })?;
        if is_sqlite_file {
            // Persistent in the file: once for every connection.
            pool.execute("PRAGMA journal_mode = WAL")
                .await
                .map_err(|source| StoreError::Database {
                    url: shown.clone(),
                    source,
                })?;
        }
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .map_err(|source| StoreError::Migrate {
                url: shown.clone(),
                source,
            })?;
        // SQLite takes `$N` as a named parameter: preparing and binding a statement
        // with n of them costs O(n²) (a name lookup per parameter), which made the
        // multi-row statements of large batches the writer's main cost under load.
        // Anonymous `?` parameters bind by position.
        let question_marks = full.starts_with("sqlite:");
        Ok(Self {
            pool,
            url: shown,
            question_marks,
        })
    }

    fn db_err(&self, source: sqlx::Error) -> StoreError {
        StoreError::Database {
            url: self.url.clone(),
            source,
        }
    }

    /// Inserts or replaces the binding of `b.contact`.
    pub async fn upsert(&self, b: &Binding) -> Result<(), StoreError> {
        let sql = upsert_sql(self.question_marks, 1);
        bind_binding(sqlx::query(&sql), b)
            .execute(&self.pool)
            .await
            .map_err(|e| self.db_err(e))?;
        Ok(())
    }

    /// Applies a batch in one transaction; a later change of a contact wins. The batch is
    /// coalesced to the last change per contact, then written with a handful of
    /// multi-row statements whatever its size (chunks of `ROW_CHUNK` rows): each
    /// statement is a round trip to the SQLite worker thread, and one per binding made
    /// the store a large part of the P-CSCF's CPU per registration.
    pub async fn apply(&self, ops: Vec<StoreOp>) -> Result<(), StoreError> {
        let (upserts, removes) = coalesce(ops);
        if upserts.is_empty() && removes.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await.map_err(|e| self.db_err(e))?;
        // After coalescing a contact is either removed or upserted, never both: the
        // order of the two kinds of statement does not matter.
        for chunk in removes.chunks(ROW_CHUNK) {
            let sql = format!(
                "DELETE FROM pcscf_registration WHERE contact IN ({})",
                placeholders(self.question_marks, 1, chunk.len())
            );
            let mut q = sqlx::query(&sql);
            for c in chunk {
                q = q.bind(c.clone());
            }
            q.execute(&mut *tx).await.map_err(|e| self.db_err(e))?;
        }
        for chunk in upserts.chunks(ROW_CHUNK) {
            let sql = upsert_sql(self.question_marks, chunk.len());
            let mut q = sqlx::query(&sql);
            for b in chunk {
                q = bind_binding(q, b);
            }
            q.execute(&mut *tx).await.map_err(|e| self.db_err(e))?;
        }
        tx.commit().await.map_err(|e| self.db_err(e))?;
        Ok(())
    }

    /// Starts the batched writer task. The queue is unbounded (changes keep their
    /// order and the SIP path never waits); a batch gathers what arrives within
    /// `BATCH_WINDOW` of its first change, up to `batch` changes, and is cut short by
    /// a [`Writer::flush`].
    pub fn spawn_writer(&self, batch: usize) -> Writer {
        let max = batch.max(1);
        let (tx, mut rx) = mpsc::unbounded_channel::<Queued>();
        let store = self.clone();
        let task = tokio::spawn(async move {
            let mut batch = Vec::new();
            let mut waiters = Vec::new();
            while let Some(first) = rx.recv().await {
                let until = tokio::time::Instant::now() + BATCH_WINDOW;
                let mut next = Some(first);
                while let Some(q) = next.take() {
                    match q {
                        Queued::Op(op) => batch.push(op),
                        // Someone waits for the commit: no more gathering.
                        Queued::Barrier(w) => waiters.push(w),
                    }
                    if batch.len() >= max {
                        break;
                    }
                    next = match rx.try_recv() {
                        Ok(q) => Some(q),
                        Err(mpsc::error::TryRecvError::Disconnected) => None,
                        Err(mpsc::error::TryRecvError::Empty) if waiters.is_empty() => {
                            tokio::time::timeout_at(until, rx.recv())
                                .await
                                .ok()
                                .flatten()
                        }
                        Err(mpsc::error::TryRecvError::Empty) => None,
                    };
                }
                let n = batch.len();
                if n > 0 {
                    match store.apply(std::mem::take(&mut batch)).await {
                        Ok(()) => tracing::debug!(ops = n, "registration store batch committed"),
                        Err(e) => {
                            tracing::warn!(ops = n, error = %e, "registration store batch failed")
                        }
                    }
                }
                for w in waiters.drain(..) {
                    let _ = w.send(());
                }
            }
        });
        Writer { tx, task }
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
            "SELECT contact, impi, public_identities, service_route, transport, ue_addr, expires_at, security, aor \
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
            aor: get("aor")?,
            contact,
        })
    }
}

/// Rows per multi-row statement (9 parameters a row: 4,500 per statement, within
/// SQLite's 32,766 and PostgreSQL's 65,535).
const ROW_CHUNK: usize = 500;

/// How long the writer gathers changes after the first of a batch.
const BATCH_WINDOW: std::time::Duration = std::time::Duration::from_millis(3);

/// The columns of a binding, in the order [`bind_binding`] binds them.
const COLUMNS: usize = 9;

/// `$first, $first+1, …` (`n` placeholders), or `?, ?, …` with `question`.
fn placeholders(question: bool, first: usize, n: usize) -> String {
    let mut s = String::with_capacity(n * 6);
    for i in first..first + n {
        if i > first {
            s.push_str(", ");
        }
        if question {
            s.push('?');
        } else {
            s.push('$');
            s.push_str(&i.to_string());
        }
    }
    s
}

/// `INSERT … VALUES (…), (…) ON CONFLICT (contact) DO UPDATE …` for `rows` bindings.
fn upsert_sql(question: bool, rows: usize) -> String {
    let values: Vec<String> = (0..rows)
        .map(|r| format!("({})", placeholders(question, r * COLUMNS + 1, COLUMNS)))
        .collect();
    format!(
        "INSERT INTO pcscf_registration \
         (contact, impi, public_identities, service_route, transport, ue_addr, expires_at, security, aor) \
         VALUES {} \
         ON CONFLICT (contact) DO UPDATE SET impi = excluded.impi, \
         public_identities = excluded.public_identities, service_route = excluded.service_route, \
         transport = excluded.transport, ue_addr = excluded.ue_addr, \
         expires_at = excluded.expires_at, security = excluded.security, aor = excluded.aor",
        values.join(", ")
    )
}

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

/// Binds the [`COLUMNS`] values of `b` (the order of [`upsert_sql`]).
fn bind_binding<'q>(q: AnyQuery<'q>, b: &Binding) -> AnyQuery<'q> {
    q.bind(b.contact.clone())
        .bind(b.impi.clone())
        .bind(b.public_identities.join("\n"))
        .bind(b.service_route.join("\n"))
        .bind(b.transport.as_str())
        .bind(b.ue_addr.to_string())
        .bind(b.expires_at)
        .bind(b.security.clone())
        .bind(b.aor.clone())
}

/// The last change per contact, in the order contacts first appear: (bindings to
/// upsert, contacts to remove).
fn coalesce(ops: Vec<StoreOp>) -> (Vec<Binding>, Vec<String>) {
    let mut last: HashMap<String, Option<Binding>> = HashMap::with_capacity(ops.len());
    let mut order = Vec::with_capacity(ops.len());
    for op in ops {
        let (contact, b) = match op {
            StoreOp::Upsert(b) => (b.contact.clone(), Some(b)),
            StoreOp::Remove(c) => (c, None),
        };
        if last.insert(contact.clone(), b).is_none() {
            order.push(contact);
        }
    }
    let mut upserts = Vec::new();
    let mut removes = Vec::new();
    for contact in order {
        match last.remove(&contact).flatten() {
            Some(b) => upserts.push(b),
            None => removes.push(contact),
        }
    }
    (upserts, removes)
}

/// One change for the writer.
#[derive(Debug, Clone)]
pub enum StoreOp {
    /// Insert or replace the binding of its contact.
    Upsert(Binding),
    /// Remove the binding of this contact.
    Remove(String),
}

enum Queued {
    Op(StoreOp),
    Barrier(oneshot::Sender<()>),
}

/// Handle of the batched writer task ([`RegistrationStore::spawn_writer`]).
#[derive(Debug)]
pub struct Writer {
    tx: mpsc::UnboundedSender<Queued>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Queued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Queued::Op(op) => op.fmt(f),
            Queued::Barrier(_) => f.write_str("Barrier"),
        }
    }
}

impl Writer {
    /// Queues a change without waiting.
    pub fn send(&self, op: StoreOp) {
        if self.tx.send(Queued::Op(op)).is_err() {
            tracing::warn!("registration store writer stopped: change not persisted");
        }
    }

    /// Waits until everything queued before this call is committed (or failed).
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Queued::Barrier(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// Commits everything queued, then stops the task.
    pub async fn shutdown(self) {
        let Writer { tx, task } = self;
        drop(tx);
        let _ = task.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ims_testkit::{Error as PgError, TestPostgres};

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
            aor: "sip:alice@ims.test".into(),
        }
    }

    /// The bindings whose contact starts with `sip:{p}` (all of them on a database of
    /// the test's own, where `p` is empty; a shared PostgreSQL database keeps other
    /// runs' rows).
    async fn load_ours(s: &RegistrationStore, p: &str) -> Vec<Binding> {
        let mut all: Vec<Binding> = s
            .load_all()
            .await
            .unwrap()
            .into_iter()
            .filter(|b| b.contact.starts_with(&format!("sip:{p}")))
            .collect();
        all.sort_by(|a, b| a.contact.cmp(&b.contact));
        all
    }

    /// Bindings written directly are restored after a reopen with every column (IPv6
    /// flow, sec-agree description), replaced by a later upsert, purged when expired and
    /// removed.
    async fn survives_reopen(url: &str, p: &str) {
        let alice = format!("sip:{p}alice@127.0.0.1:40000");
        let carol = format!("sip:{p}carol@[::1]:5062");
        let mut c = binding(&carol, 400);
        c.transport = FlowTransport::Tcp;
        c.ue_addr = "[::1]:5062".parse().unwrap();
        c.security = "ipsec-3gpp;alg=hmac-sha-1-96;spi-c=1111;spi-s=2222".into();
        c.impi = String::new();
        c.aor = String::new();
        {
            let s = RegistrationStore::open(url).await.unwrap();
            s.upsert(&binding(&alice, 100)).await.unwrap();
            let mut b = binding(&alice, 200);
            b.transport = FlowTransport::Tcp;
            s.upsert(&b).await.unwrap();
            s.upsert(&c).await.unwrap();
            s.pool.close().await;
        }
        let s = RegistrationStore::open(url).await.unwrap();
        let all = load_ours(&s, p).await;
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].expires_at, 200);
        assert_eq!(all[0].transport, FlowTransport::Tcp);
        assert_eq!(all[0].public_identities.len(), 2);
        assert_eq!(all[1], c, "every column restored");
        let bob = format!("sip:{p}bob@127.0.0.1:40001");
        s.upsert(&binding(&bob, 50)).await.unwrap();
        let gone: Vec<Binding> = s
            .purge_expired(100)
            .await
            .unwrap()
            .into_iter()
            .filter(|b| b.contact.starts_with(&format!("sip:{p}")))
            .collect();
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].contact, bob);
        s.remove(&alice).await.unwrap();
        s.remove(&carol).await.unwrap();
        assert!(load_ours(&s, p).await.is_empty());
    }

    #[tokio::test]
    async fn survives_reopen_of_sqlite_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pcscf.sqlite");
        survives_reopen(&format!("sqlite://{}", path.display()), "").await;
    }

    /// Through the writer: 500 registrations stored, the later change of a contact
    /// wins, removals queued before a shutdown are committed, all restored on reopen.
    async fn writer_batches(url: &str, p: &str) {
        let contact = |i: usize| format!("sip:{p}u{i}@127.0.0.1:{i}");
        {
            let s = RegistrationStore::open(url).await.unwrap();
            let w = s.spawn_writer(16);
            for i in 0..500 {
                w.send(StoreOp::Upsert(binding(&contact(i), 100)));
            }
            w.send(StoreOp::Upsert(binding(&contact(1), 300)));
            w.send(StoreOp::Remove(contact(2)));
            w.flush().await;
            assert_eq!(load_ours(&s, p).await.len(), 499);
            w.send(StoreOp::Remove(contact(3)));
            w.shutdown().await;
        }
        let s = RegistrationStore::open(url).await.unwrap();
        let all = load_ours(&s, p).await;
        assert_eq!(all.len(), 498, "queued removal committed at shutdown");
        let u1 = all.iter().find(|b| b.contact == contact(1)).unwrap();
        assert_eq!(u1.expires_at, 300, "the later change of a contact wins");
        // Deleted through the writer: gone after another reopen.
        let w = s.spawn_writer(16);
        for b in all {
            w.send(StoreOp::Remove(b.contact));
        }
        w.shutdown().await;
        let s = RegistrationStore::open(url).await.unwrap();
        assert!(load_ours(&s, p).await.is_empty());
    }

    #[tokio::test]
    async fn writer_batches_coalesce_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("w.sqlite").display());
        writer_batches(&url, "").await;
    }

    /// A batch larger than one multi-row statement, where the same contacts are
    /// upserted, removed and upserted again: the last change of each contact wins.
    async fn large_mixed_batch_on(url: &str, p: &str) {
        let s = RegistrationStore::open(url).await.unwrap();
        let n = ROW_CHUNK * 2 + 37;
        let contact = |i: usize| format!("sip:{p}m{i}@127.0.0.1:{}", 20_000 + i);
        // Rows from an earlier batch: some are removed by the next one.
        s.apply(
            (0..n)
                .map(|i| StoreOp::Upsert(binding(&contact(i), 1)))
                .collect(),
        )
        .await
        .unwrap();
        let mut ops = Vec::new();
        for i in 0..n {
            let c = contact(i);
            match i % 4 {
                // upsert, then remove: gone
                0 => {
                    ops.push(StoreOp::Upsert(binding(&c, 10)));
                    ops.push(StoreOp::Remove(c));
                }
                // remove, then upsert: present with the new expiry
                1 => {
                    ops.push(StoreOp::Remove(c.clone()));
                    ops.push(StoreOp::Upsert(binding(&c, 20)));
                }
                // upsert twice: the second wins
                2 => {
                    ops.push(StoreOp::Upsert(binding(&c, 30)));
                    let mut b = binding(&c, 31);
                    b.transport = FlowTransport::Tcp;
                    ops.push(StoreOp::Upsert(b));
                }
                // only removed
                _ => ops.push(StoreOp::Remove(c)),
            }
        }
        // Brand-new contacts too, one of them removed and re-added several times.
        for i in n..n + 50 {
            ops.push(StoreOp::Upsert(binding(&contact(i), 40)));
        }
        for k in 0..3 {
            ops.push(StoreOp::Remove(contact(n)));
            ops.push(StoreOp::Upsert(binding(&contact(n), 41 + k)));
        }
        s.apply(ops).await.unwrap();
        let all: HashMap<String, Binding> = load_ours(&s, p)
            .await
            .into_iter()
            .map(|b| (b.contact.clone(), b))
            .collect();
        for i in 0..n {
            let got = all.get(&contact(i));
            match i % 4 {
                0 | 3 => assert!(got.is_none(), "contact {i} removed"),
                1 => assert_eq!(got.map(|b| b.expires_at), Some(20), "contact {i}"),
                _ => {
                    let b = got.unwrap();
                    assert_eq!((b.expires_at, b.transport), (31, FlowTransport::Tcp));
                }
            }
        }
        assert_eq!(all.get(&contact(n)).map(|b| b.expires_at), Some(43));
        for i in n + 1..n + 50 {
            assert_eq!(all.get(&contact(i)), Some(&binding(&contact(i), 40)));
        }
        assert_eq!(all.len(), n / 2 + 50);
        // Clean up (a shared PostgreSQL database outlives the test).
        s.apply(all.into_keys().map(StoreOp::Remove).collect())
            .await
            .unwrap();
        assert!(load_ours(&s, p).await.is_empty());
    }

    #[tokio::test]
    async fn large_mixed_batch_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("m.sqlite").display());
        large_mixed_batch_on(&url, "").await;
    }

    /// The writer gathers changes sent a little apart into one batch and a flush
    /// commits at once (it does not wait for the gathering window).
    async fn writer_gathers(url: &str, p: &str) {
        let s = RegistrationStore::open(url).await.unwrap();
        let w = s.spawn_writer(2_048);
        let contact = |i: usize| format!("sip:{p}g{i}@127.0.0.1:{i}");
        for i in 0..100 {
            w.send(StoreOp::Upsert(binding(&contact(i), 5)));
        }
        w.send(StoreOp::Remove(contact(7)));
        w.flush().await;
        assert_eq!(load_ours(&s, p).await.len(), 99);
        for i in 0..100 {
            w.send(StoreOp::Remove(contact(i)));
        }
        w.shutdown().await;
        assert!(load_ours(&s, p).await.is_empty());
    }

    #[tokio::test]
    async fn writer_gathers_and_flush_cuts_the_window() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("g.sqlite").display());
        writer_gathers(&url, "").await;
    }

    /// Every scenario above on PostgreSQL: a throwaway server started for this test (a
    /// fresh database per scenario), or the database `PCSCF_TEST_POSTGRES_URL` names
    /// (e.g. `postgres://postgres@127.0.0.1:55432/pcscf_test`; contacts of this run
    /// only, cleaned up).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn all_scenarios_on_postgres() {
        let pg = match tokio::task::spawn_blocking(|| {
            TestPostgres::from_env_or_start("PCSCF_TEST_POSTGRES_URL")
        })
        .await
        .unwrap()
        {
            Ok(pg) => pg,
            Err(e @ PgError::BinariesNotFound { .. }) => {
                println!("all_scenarios_on_postgres: not run: {e}");
                return;
            }
            Err(e) => panic!("PostgreSQL for the test: {e}"),
        };
        println!("all_scenarios_on_postgres on {}", pg.describe());
        let p = if pg.is_fresh() {
            String::new()
        } else {
            format!("t{}-", rand::random::<u32>())
        };
        survives_reopen(&pg.database("pcscf_reopen").unwrap(), &p).await;
        writer_batches(&pg.database("pcscf_writer").unwrap(), &p).await;
        large_mixed_batch_on(&pg.database("pcscf_large").unwrap(), &p).await;
        writer_gathers(&pg.database("pcscf_gathers").unwrap(), &p).await;
        tokio::task::spawn_blocking(move || drop(pg)).await.unwrap();
    }

    #[test]
    fn password_is_redacted() {
        assert_eq!(
            redact("postgres://ims:secret@db/ims"),
            "postgres://ims:***@db/ims"
        );
    }
}
