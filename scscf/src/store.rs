//! Persistence of the S-CSCF registration state with `sqlx` (SQLite file by default,
//! created and migrated on open, WAL; PostgreSQL by URL). Writes go through a bounded
//! queue to one background writer that coalesces them per key and commits them in one
//! transaction per batch, so the SIP hot path never waits for the disk unless the queue
//! is full.
//!
//! Durability: a response is sent after its change is queued. A clean shutdown
//! ([`WriterHandle::flush`]) commits everything queued before it returns. On a crash the
//! changes of the batch being collected (3 ms after its first change) or committed are lost;
//! those UEs re-register on their next refresh (or after the P-CSCF reports failure).

use crate::model::{Contact, ContactEvent, Registration, Subscription};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};
use std::collections::HashMap;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error};

/// Store failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Database error.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// Migration error.
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// One queued change.
#[derive(Debug)]
pub enum StoreOp {
    /// Insert or replace a registration with all its contacts.
    PutRegistration(Registration),
    /// Delete a registration (by id) and its contacts.
    DeleteRegistration(String),
    /// Insert or replace a subscription.
    PutSubscription(Subscription),
    /// Delete a subscription.
    DeleteSubscription(String),
    /// Answered once everything queued before it is committed.
    Barrier(oneshot::Sender<()>),
}

/// The database.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    /// How this backend numbers bind parameters.
    marks: Marks,
}

/// Bind parameter style. SQLite takes `$N` as a *named* parameter: preparing a
/// statement looks each name up in a list (`strncmp` per earlier name) and binding
/// asks for every parameter's name, both quadratic in the number of parameters, so
/// a multi-row statement of a large batch cost the S-CSCF more CPU than its SIP work
/// once the rate rose (callgrind/perf: `sqlite3_bind_parameter_name`, `strncmp`).
/// Anonymous `?` parameters are bound by position. PostgreSQL needs `$N`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Marks {
    /// `?, ?, …` (SQLite).
    Question,
    /// `$1, $2, …` (PostgreSQL).
    Dollar,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

fn join(v: &[String]) -> String {
    v.join("\n")
}

fn split(s: &str) -> Vec<String> {
    s.split('\n')
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

/// How long the writer gathers changes after the first one of a batch (the changes a
/// crash can lose are those of the batch being gathered or committed).
const BATCH_WINDOW: std::time::Duration = std::time::Duration::from_millis(3);

/// Rows per multi-row INSERT (≤ 12 columns: well under SQLite's 32,766 and
/// PostgreSQL's 65,535 bind parameters).
const ROW_CHUNK: usize = 500;
/// Keys per `IN (…)` list.
const IN_CHUNK: usize = 1000;

/// `$first, $first+1, …` (`n` placeholders), or `?, ?, …` for SQLite ([`Marks`]).
fn placeholders(marks: Marks, first: usize, n: usize) -> String {
    let mut s = String::with_capacity(n * 5);
    for i in first..first + n {
        if i > first {
            s.push_str(", ");
        }
        match marks {
            Marks::Question => s.push('?'),
            Marks::Dollar => {
                s.push('$');
                s.push_str(&i.to_string());
            }
        }
    }
    s
}

/// `($1, …, $cols), ($cols+1, …)` for `n` rows.
/// `DELETE FROM {table} WHERE {column} IN (…)` for `ids`, in chunks of [`IN_CHUNK`].
async fn delete_where_in(
    marks: Marks,
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    table: &str,
    column: &str,
    ids: &[&str],
) -> Result<(), sqlx::Error> {
    for chunk in ids.chunks(IN_CHUNK) {
        let sql = format!(
            "DELETE FROM {table} WHERE {column} IN ({})",
            placeholders(marks, 1, chunk.len())
        );
        let mut q = sqlx::query(&sql);
        for id in chunk {
            q = q.bind(id.to_string());
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

fn rows(marks: Marks, n: usize, cols: usize) -> String {
    (0..n)
        .map(|r| format!("({})", placeholders(marks, r * cols + 1, cols)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One writer batch after coalescing.
#[derive(Default)]
struct Batch {
    put_regs: Vec<Registration>,
    del_regs: Vec<String>,
    put_subs: Vec<Subscription>,
    del_subs: Vec<String>,
}

impl Batch {
    fn is_empty(&self) -> bool {
        self.put_regs.is_empty()
            && self.del_regs.is_empty()
            && self.put_subs.is_empty()
            && self.del_subs.is_empty()
    }
}

impl Store {
    /// Opens (creating and migrating) the database at `url`: `sqlite://path`,
    /// `sqlite::memory:` or `postgres://…`.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let is_sqlite = url.starts_with("sqlite:");
        let memory = url.contains(":memory:");
        let url = if is_sqlite && !memory && !url.contains("mode=") {
            if url.contains('?') {
                format!("{url}&mode=rwc")
            } else {
                format!("{url}?mode=rwc")
            }
        } else {
            url.to_string()
        };
        let mut opts = AnyPoolOptions::new().max_connections(if memory { 1 } else { 4 });
        if is_sqlite {
            opts = opts.after_connect(|conn, _| {
                Box::pin(async move {
                    (&mut *conn).execute("PRAGMA busy_timeout = 5000").await?;
                    (&mut *conn).execute("PRAGMA synchronous = NORMAL").await?;
                    Ok(())
                })
            });
        }
        let pool = opts.connect(&url).await?;
        if is_sqlite && !memory {
            pool.execute("PRAGMA journal_mode = WAL").await?;
        }
        // Tolerate migrations of other roles in a shared database (all-in-one labs).
        let migrator = sqlx::migrate::Migrator {
            migrations: MIGRATOR.migrations.clone(),
            ignore_missing: true,
            locking: MIGRATOR.locking,
            no_tx: MIGRATOR.no_tx,
        };
        migrator.run(&pool).await?;
        let marks = if is_sqlite {
            Marks::Question
        } else {
            Marks::Dollar
        };
        Ok(Store { pool, marks })
    }

    /// Loads every registration (with contacts) and subscription.
    pub async fn load(&self) -> Result<(Vec<Registration>, Vec<Subscription>), StoreError> {
        let mut regs: HashMap<String, Registration> = HashMap::new();
        for row in sqlx::query("SELECT id, impi, impus FROM scscf_registration")
            .fetch_all(&self.pool)
            .await?
        {
            let id: String = row.try_get(0)?;
            let impus: String = row.try_get(2)?;
            regs.insert(
                id.clone(),
                Registration {
                    id,
                    impi: row.try_get(1)?,
                    impus: split(&impus),
                    contacts: Vec::new(),
                },
            );
        }
        for row in sqlx::query(
            "SELECT registration_id, contact_key, uri, params, instance, reg_id, expires_at, path, call_id, cseq, event FROM scscf_contact",
        )
        .fetch_all(&self.pool)
        .await?
        {
            let rid: String = row.try_get(0)?;
            let c = contact_from_row(&row)?;
            if let Some(r) = regs.get_mut(&rid) {
                r.contacts.push(c);
            }
        }
        let mut subs = Vec::new();
        for row in sqlx::query(
            "SELECT id, aor, call_id, local_tag, remote_tag, local_uri, remote_uri, remote_target, route_set, local_cseq, version, expires_at FROM scscf_subscription",
        )
        .fetch_all(&self.pool)
        .await?
        {
            let route: String = row.try_get(8)?;
            subs.push(Subscription {
                id: row.try_get(0)?,
                aor: row.try_get(1)?,
                call_id: row.try_get(2)?,
                local_tag: row.try_get(3)?,
                remote_tag: row.try_get(4)?,
                local_uri: row.try_get(5)?,
                remote_uri: row.try_get(6)?,
                remote_target: row.try_get(7)?,
                route_set: split(&route),
                local_cseq: u32::try_from(row.try_get::<i64, _>(9)?).unwrap_or(0),
                version: u32::try_from(row.try_get::<i64, _>(10)?).unwrap_or(0),
                expires_at: u64::try_from(row.try_get::<i64, _>(11)?).unwrap_or(0),
            });
        }
        let mut regs: Vec<Registration> = regs
            .into_values()
            .filter(|r| !r.contacts.is_empty())
            .collect();
        regs.sort_by(|a, b| a.id.cmp(&b.id));
        Ok((regs, subs))
    }

    /// Commits `ops` in one transaction, coalesced to the last op per registration /
    /// subscription, with a handful of multi-row statements per batch whatever its size
    /// (each statement is a round trip to the SQLite worker thread: one per row made
    /// the store the S-CSCF's largest cost in the registration benchmark).
    pub async fn apply(&self, ops: Vec<StoreOp>) -> Result<(), StoreError> {
        // Coalesce: keep the last op per key, in first-seen order.
        let mut order: Vec<String> = Vec::new();
        let mut last: HashMap<String, StoreOp> = HashMap::new();
        for op in ops {
            let key = match &op {
                StoreOp::PutRegistration(r) => format!("r:{}", r.id),
                StoreOp::DeleteRegistration(id) => format!("r:{id}"),
                StoreOp::PutSubscription(s) => format!("s:{}", s.id),
                StoreOp::DeleteSubscription(id) => format!("s:{id}"),
                StoreOp::Barrier(_) => continue,
            };
            if last.insert(key.clone(), op).is_none() {
                order.push(key);
            }
        }
        let mut batch = Batch::default();
        for key in order {
            match last.remove(&key) {
                Some(StoreOp::PutRegistration(r)) => batch.put_regs.push(r),
                Some(StoreOp::DeleteRegistration(id)) => batch.del_regs.push(id),
                Some(StoreOp::PutSubscription(s)) => batch.put_subs.push(s),
                Some(StoreOp::DeleteSubscription(id)) => batch.del_subs.push(id),
                Some(StoreOp::Barrier(_)) | None => {}
            }
        }
        if batch.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        // Every touched registration's contacts are rewritten.
        let touched: Vec<&str> = batch
            .put_regs
            .iter()
            .map(|r| r.id.as_str())
            .chain(batch.del_regs.iter().map(String::as_str))
            .collect();
        delete_where_in(
            self.marks,
            &mut tx,
            "scscf_contact",
            "registration_id",
            &touched,
        )
        .await?;
        let del_regs: Vec<&str> = batch.del_regs.iter().map(String::as_str).collect();
        delete_where_in(self.marks, &mut tx, "scscf_registration", "id", &del_regs).await?;
        for chunk in batch.put_regs.chunks(ROW_CHUNK) {
            let sql = format!(
                "INSERT INTO scscf_registration (id, impi, impus) VALUES {} ON CONFLICT (id) DO UPDATE SET impi = excluded.impi, impus = excluded.impus",
                rows(self.marks, chunk.len(), 3)
            );
            let mut q = sqlx::query(&sql);
            for r in chunk {
                q = q
                    .bind(r.id.clone())
                    .bind(r.impi.clone())
                    .bind(join(&r.impus));
            }
            q.execute(&mut *tx).await?;
        }
        let contacts: Vec<(&str, &Contact)> = batch
            .put_regs
            .iter()
            .flat_map(|r| r.contacts.iter().map(move |c| (r.id.as_str(), c)))
            .collect();
        for chunk in contacts.chunks(ROW_CHUNK) {
            let sql = format!(
                "INSERT INTO scscf_contact (registration_id, contact_key, uri, params, instance, reg_id, expires_at, path, call_id, cseq, event) VALUES {}",
                rows(self.marks, chunk.len(), 11)
            );
            let mut q = sqlx::query(&sql);
            for (rid, c) in chunk {
                q = q
                    .bind(rid.to_string())
                    .bind(c.key.clone())
                    .bind(c.uri.clone())
                    .bind(c.params.clone())
                    .bind(c.instance.clone())
                    .bind(c.reg_id.map(i64::from))
                    .bind(i64::try_from(c.expires_at).unwrap_or(i64::MAX))
                    .bind(join(&c.path))
                    .bind(c.call_id.clone())
                    .bind(i64::from(c.cseq))
                    .bind(c.event.as_str());
            }
            q.execute(&mut *tx).await?;
        }
        let del_subs: Vec<&str> = batch.del_subs.iter().map(String::as_str).collect();
        delete_where_in(self.marks, &mut tx, "scscf_subscription", "id", &del_subs).await?;
        for chunk in batch.put_subs.chunks(ROW_CHUNK) {
            let sql = format!(
                "INSERT INTO scscf_subscription (id, aor, call_id, local_tag, remote_tag, local_uri, remote_uri, remote_target, route_set, local_cseq, version, expires_at) VALUES {} ON CONFLICT (id) DO UPDATE SET aor = excluded.aor, remote_target = excluded.remote_target, route_set = excluded.route_set, local_cseq = excluded.local_cseq, version = excluded.version, expires_at = excluded.expires_at",
                rows(self.marks, chunk.len(), 12)
            );
            let mut q = sqlx::query(&sql);
            for s in chunk {
                q = q
                    .bind(s.id.clone())
                    .bind(s.aor.clone())
                    .bind(s.call_id.clone())
                    .bind(s.local_tag.clone())
                    .bind(s.remote_tag.clone())
                    .bind(s.local_uri.clone())
                    .bind(s.remote_uri.clone())
                    .bind(s.remote_target.clone())
                    .bind(join(&s.route_set))
                    .bind(i64::from(s.local_cseq))
                    .bind(i64::from(s.version))
                    .bind(i64::try_from(s.expires_at).unwrap_or(i64::MAX));
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Starts the background writer with a queue of `capacity` ops.
    pub fn spawn_writer(&self, capacity: usize) -> (mpsc::Sender<StoreOp>, WriterHandle) {
        let (tx, mut rx) = mpsc::channel::<StoreOp>(capacity.max(1));
        let store = self.clone();
        let task = tokio::spawn(async move {
            let mut batch = Vec::new();
            while let Some(op) = rx.recv().await {
                batch.push(op);
                // Gather what arrives within BATCH_WINDOW: one commit for many changes.
                let until = tokio::time::Instant::now() + BATCH_WINDOW;
                while batch.len() < 4096 {
                    match rx.try_recv() {
                        Ok(op) => batch.push(op),
                        Err(mpsc::error::TryRecvError::Disconnected) => break,
                        Err(mpsc::error::TryRecvError::Empty) => {
                            match tokio::time::timeout_at(until, rx.recv()).await {
                                Ok(Some(op)) => batch.push(op),
                                Ok(None) | Err(_) => break,
                            }
                        }
                    }
                }
                let mut barriers = Vec::new();
                let mut ops = Vec::with_capacity(batch.len());
                for op in batch.drain(..) {
                    match op {
                        StoreOp::Barrier(b) => barriers.push(b),
                        other => ops.push(other),
                    }
                }
                let n = ops.len();
                if let Err(e) = store.apply(ops).await {
                    error!(error = %e, ops = n, "registration store write failed");
                } else {
                    debug!(ops = n, "registration store batch committed");
                }
                for b in barriers {
                    let _ = b.send(());
                }
            }
        });
        (tx.clone(), WriterHandle { tx, task })
    }
}

fn contact_from_row(row: &AnyRow) -> Result<Contact, sqlx::Error> {
    let path: String = row.try_get(7)?;
    let event: String = row.try_get(10)?;
    Ok(Contact {
        key: row.try_get(1)?,
        uri: row.try_get(2)?,
        params: row.try_get(3)?,
        instance: row.try_get(4)?,
        reg_id: row
            .try_get::<Option<i64>, _>(5)?
            .and_then(|v| u32::try_from(v).ok()),
        expires_at: u64::try_from(row.try_get::<i64, _>(6)?).unwrap_or(0),
        path: split(&path),
        call_id: row.try_get(8)?,
        cseq: u32::try_from(row.try_get::<i64, _>(9)?).unwrap_or(0),
        event: ContactEvent::parse(&event),
    })
}

/// Owner handle of the writer task.
#[derive(Debug)]
pub struct WriterHandle {
    tx: mpsc::Sender<StoreOp>,
    task: tokio::task::JoinHandle<()>,
}

impl WriterHandle {
    /// Waits until everything queued so far is committed.
    pub async fn flush(&self) {
        let (b, r) = oneshot::channel();
        if self.tx.send(StoreOp::Barrier(b)).await.is_ok() {
            let _ = r.await;
        }
    }

    /// Flushes and stops the writer (the task ends when all senders are gone).
    pub async fn shutdown(self) {
        self.flush().await;
        drop(self.tx);
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ims_testkit::{Error as PgError, TestPostgres};

    /// Registration `sip:{name}@ims.test` with one contact.
    fn reg_named(name: &str) -> Registration {
        Registration {
            id: format!("sip:{name}@ims.test"),
            impi: format!("{name}@ims.test"),
            impus: vec![format!("sip:{name}@ims.test"), "tel:+1555".into()],
            contacts: vec![Contact {
                key: "sip:alice@10.0.0.1:5060".into(),
                uri: "sip:alice@10.0.0.1:5060".into(),
                params: ";+g.3gpp.icsi-ref=\"x\"".into(),
                instance: Some("<urn:gsma:imei:1>".into()),
                reg_id: Some(1),
                expires_at: 1_700_000_600,
                path: vec!["<sip:term@pcscf.ims.test;lr>".into()],
                call_id: "c1".into(),
                cseq: 2,
                event: ContactEvent::Refreshed,
            }],
        }
    }

    fn sub(id: &str, version: u32) -> Subscription {
        Subscription {
            id: id.into(),
            aor: "sip:alice@ims.test".into(),
            call_id: id.into(),
            local_tag: "l".into(),
            remote_tag: "r".into(),
            local_uri: "<sip:alice@ims.test>".into(),
            remote_uri: "<sip:alice@ims.test>".into(),
            remote_target: "sip:alice@10.0.0.1".into(),
            route_set: vec!["<sip:p;lr>".into()],
            local_cseq: version + 1,
            version,
            expires_at: 1_800_000_000,
        }
    }

    /// What `st` holds of the keys starting with `p` (all on a database of the test's
    /// own, where `p` is empty; a shared PostgreSQL database keeps other runs' rows).
    async fn load_ours(st: &Store, p: &str) -> (Vec<Registration>, Vec<Subscription>) {
        let (regs, subs) = st.load().await.unwrap();
        (
            regs.into_iter()
                .filter(|r| r.id.starts_with(&format!("sip:{p}")))
                .collect(),
            subs.into_iter().filter(|s| s.id.starts_with(p)).collect(),
        )
    }

    /// Through the writer: registrations and subscriptions are stored, restored after a
    /// reopen (the later put of a key wins, a delete removes), then deleted for good.
    async fn roundtrip(url: &str, p: &str) {
        let alice = reg_named(&format!("{p}alice"));
        let bob = reg_named(&format!("{p}bob"));
        let sub_id = format!("{p}c;l;r");
        {
            let st = Store::open(url).await.unwrap();
            let (tx, h) = st.spawn_writer(16);
            tx.send(StoreOp::PutRegistration(alice.clone()))
                .await
                .unwrap();
            tx.send(StoreOp::PutRegistration(bob.clone()))
                .await
                .unwrap();
            tx.send(StoreOp::DeleteRegistration(bob.id.clone()))
                .await
                .unwrap();
            tx.send(StoreOp::PutSubscription(sub(&sub_id, 2)))
                .await
                .unwrap();
            tx.send(StoreOp::PutSubscription(sub(&sub_id, 3)))
                .await
                .unwrap();
            h.shutdown().await;
            drop(tx);
            st.pool.close().await;
        }
        let st = Store::open(url).await.unwrap();
        let (regs, subs) = load_ours(&st, p).await;
        assert_eq!(regs, vec![alice.clone()]);
        assert_eq!(subs, vec![sub(&sub_id, 3)]);

        // A refresh with a second contact replaces the contacts, then everything goes.
        let mut refreshed = alice.clone();
        let mut c2 = refreshed.contacts[0].clone();
        c2.key = "sip:alice@10.0.0.2:5060".into();
        c2.event = ContactEvent::Registered;
        refreshed.contacts.push(c2);
        let (tx, h) = st.spawn_writer(16);
        tx.send(StoreOp::PutRegistration(refreshed.clone()))
            .await
            .unwrap();
        h.flush().await;
        let (mut regs, _) = load_ours(&Store::open(url).await.unwrap(), p).await;
        regs.iter_mut()
            .for_each(|r| r.contacts.sort_by(|a, b| a.key.cmp(&b.key)));
        assert_eq!(regs, vec![refreshed]);
        tx.send(StoreOp::DeleteRegistration(alice.id.clone()))
            .await
            .unwrap();
        tx.send(StoreOp::DeleteSubscription(sub_id.clone()))
            .await
            .unwrap();
        h.shutdown().await;
        drop(tx);
        let (regs, subs) = load_ours(&Store::open(url).await.unwrap(), p).await;
        assert!(regs.is_empty() && subs.is_empty(), "{regs:?} {subs:?}");
    }

    #[tokio::test]
    async fn roundtrip_file_db() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("s.db").display());
        roundtrip(&url, "").await;
    }

    /// A large mixed batch (more rows than one multi-row statement takes) lands as the
    /// last op per key says: puts replace contacts, deletes remove, order kept per key.
    async fn large_mixed(url: &str, p: &str) {
        let st = Store::open(url).await.unwrap();
        let n = ROW_CHUNK * 2 + 7;
        let mut want = Vec::new();
        let mut ops = Vec::new();
        for i in 0..n {
            let r = {
                let mut r = reg_named(&format!("{p}u{i}"));
                if i % 3 == 0 {
                    let mut c2 = r.contacts[0].clone();
                    c2.key = format!("k2-{i}");
                    r.contacts.push(c2);
                }
                r
            };
            ops.push(StoreOp::PutRegistration(r.clone()));
            ops.push(StoreOp::PutSubscription(sub(&format!("{p}s{i}"), 1)));
            if i % 5 == 0 {
                ops.push(StoreOp::DeleteRegistration(r.id.clone()));
                ops.push(StoreOp::DeleteSubscription(format!("{p}s{i}")));
            } else {
                want.push(r);
            }
        }
        st.apply(ops).await.unwrap();
        // A second batch: one registration loses a contact, one subscription moves on.
        let mut changed = want[1].clone();
        changed.contacts.truncate(1);
        st.apply(vec![
            StoreOp::PutRegistration(changed.clone()),
            StoreOp::PutSubscription(sub(&format!("{p}s1"), 7)),
        ])
        .await
        .unwrap();
        want[1] = changed;
        let (mut regs, subs) = load_ours(&st, p).await;
        regs.iter_mut()
            .for_each(|r| r.contacts.sort_by(|a, b| a.key.cmp(&b.key)));
        want.iter_mut()
            .for_each(|r| r.contacts.sort_by(|a, b| a.key.cmp(&b.key)));
        want.sort_by(|a, b| a.id.cmp(&b.id));
        assert_eq!(regs.len(), want.len());
        assert_eq!(regs, want);
        assert_eq!(subs.len(), n - n.div_ceil(5));
        assert_eq!(
            subs.iter().find(|s| s.id == format!("{p}s1")),
            Some(&sub(&format!("{p}s1"), 7))
        );
        assert!(!subs
            .iter()
            .any(|s| s.id == format!("{p}s0") || s.id == format!("{p}s5")));
        // Clean up (a shared PostgreSQL database outlives the test).
        st.apply(
            regs.into_iter()
                .map(|r| StoreOp::DeleteRegistration(r.id))
                .chain(subs.into_iter().map(|s| StoreOp::DeleteSubscription(s.id)))
                .collect(),
        )
        .await
        .unwrap();
        let (regs, subs) = load_ours(&st, p).await;
        assert!(regs.is_empty() && subs.is_empty());
    }

    #[tokio::test]
    async fn large_mixed_batches() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("b.db").display());
        large_mixed(&url, "").await;
    }

    /// The same scenarios on PostgreSQL: a throwaway server started for this test (a
    /// fresh database per scenario), or the database `SCSCF_TEST_POSTGRES_URL` names (e.g.
    /// `postgres://postgres@127.0.0.1:55432/scscf_test`; keys of this run only).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn roundtrip_postgres() {
        let pg = match tokio::task::spawn_blocking(|| {
            TestPostgres::from_env_or_start("SCSCF_TEST_POSTGRES_URL")
        })
        .await
        .unwrap()
        {
            Ok(pg) => pg,
            Err(e @ PgError::BinariesNotFound { .. }) => {
                println!("roundtrip_postgres: not run: {e}");
                return;
            }
            Err(e) => panic!("PostgreSQL for the test: {e}"),
        };
        println!("roundtrip_postgres on {}", pg.describe());
        let p = if pg.is_fresh() {
            String::new()
        } else {
            format!("t{}-", rand::random::<u32>())
        };
        roundtrip(&pg.database("scscf_roundtrip").unwrap(), &p).await;
        large_mixed(&pg.database("scscf_large").unwrap(), &p).await;
        tokio::task::spawn_blocking(move || drop(pg)).await.unwrap();
    }
}
