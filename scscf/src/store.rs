//! Persistence of the S-CSCF registration state with `sqlx` (SQLite file by default,
//! created and migrated on open, WAL; PostgreSQL by URL). Writes go through a bounded
//! queue to one background writer that coalesces them per key and commits them in one
//! transaction per batch, so the SIP hot path never waits for the disk unless the queue
//! is full.
//!
//! Durability: a response is sent after its change is queued. A clean shutdown
//! ([`WriterHandle::flush`]) commits everything queued before it returns. On a crash the
//! changes of the batch being collected (normally the last few milliseconds) are lost;
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
        Ok(Store { pool })
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

    /// Applies a batch in one transaction; later ops on the same key win.
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
        if order.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        for key in order {
            let Some(op) = last.remove(&key) else {
                continue;
            };
            match op {
                StoreOp::PutRegistration(r) => {
                    sqlx::query("INSERT INTO scscf_registration (id, impi, impus) VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET impi = excluded.impi, impus = excluded.impus")
                        .bind(r.id.clone())
                        .bind(r.impi.clone())
                        .bind(join(&r.impus))
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("DELETE FROM scscf_contact WHERE registration_id = $1")
                        .bind(r.id.clone())
                        .execute(&mut *tx)
                        .await?;
                    for c in &r.contacts {
                        sqlx::query("INSERT INTO scscf_contact (registration_id, contact_key, uri, params, instance, reg_id, expires_at, path, call_id, cseq, event) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)")
                            .bind(r.id.clone())
                            .bind(c.key.clone())
                            .bind(c.uri.clone())
                            .bind(c.params.clone())
                            .bind(c.instance.clone())
                            .bind(c.reg_id.map(i64::from))
                            .bind(i64::try_from(c.expires_at).unwrap_or(i64::MAX))
                            .bind(join(&c.path))
                            .bind(c.call_id.clone())
                            .bind(i64::from(c.cseq))
                            .bind(c.event.as_str())
                            .execute(&mut *tx)
                            .await?;
                    }
                }
                StoreOp::DeleteRegistration(id) => {
                    sqlx::query("DELETE FROM scscf_contact WHERE registration_id = $1")
                        .bind(id.clone())
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("DELETE FROM scscf_registration WHERE id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
                StoreOp::PutSubscription(s) => {
                    sqlx::query("INSERT INTO scscf_subscription (id, aor, call_id, local_tag, remote_tag, local_uri, remote_uri, remote_target, route_set, local_cseq, version, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (id) DO UPDATE SET aor = excluded.aor, remote_target = excluded.remote_target, route_set = excluded.route_set, local_cseq = excluded.local_cseq, version = excluded.version, expires_at = excluded.expires_at")
                        .bind(s.id)
                        .bind(s.aor)
                        .bind(s.call_id)
                        .bind(s.local_tag)
                        .bind(s.remote_tag)
                        .bind(s.local_uri)
                        .bind(s.remote_uri)
                        .bind(s.remote_target)
                        .bind(join(&s.route_set))
                        .bind(i64::from(s.local_cseq))
                        .bind(i64::from(s.version))
                        .bind(i64::try_from(s.expires_at).unwrap_or(i64::MAX))
                        .execute(&mut *tx)
                        .await?;
                }
                StoreOp::DeleteSubscription(id) => {
                    sqlx::query("DELETE FROM scscf_subscription WHERE id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
                StoreOp::Barrier(_) => {}
            }
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
                while batch.len() < 4096 {
                    match rx.try_recv() {
                        Ok(op) => batch.push(op),
                        Err(_) => break,
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

    fn reg() -> Registration {
        Registration {
            id: "sip:alice@ims.test".into(),
            impi: "alice@ims.test".into(),
            impus: vec!["sip:alice@ims.test".into(), "tel:+1555".into()],
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

    #[tokio::test]
    async fn roundtrip_file_db() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("s.db").display());
        let st = Store::open(&url).await.unwrap();
        let (tx, h) = st.spawn_writer(16);
        tx.send(StoreOp::PutRegistration(reg())).await.unwrap();
        let mut r2 = reg();
        r2.id = "sip:bob@ims.test".into();
        tx.send(StoreOp::PutRegistration(r2)).await.unwrap();
        tx.send(StoreOp::DeleteRegistration("sip:bob@ims.test".into()))
            .await
            .unwrap();
        h.shutdown().await;
        drop(tx);
        let st2 = Store::open(&url).await.unwrap();
        let (regs, subs) = st2.load().await.unwrap();
        assert_eq!(regs, vec![reg()]);
        assert!(subs.is_empty());
    }

    /// The same round trip on PostgreSQL when `SCSCF_TEST_POSTGRES_URL` names a database
    /// (e.g. `postgres://postgres@127.0.0.1:55432/scscf_test`); skipped otherwise.
    #[tokio::test]
    async fn roundtrip_postgres() {
        let Ok(url) = std::env::var("SCSCF_TEST_POSTGRES_URL") else {
            println!("skipped: SCSCF_TEST_POSTGRES_URL not set (no PostgreSQL server to use)");
            return;
        };
        let st = Store::open(&url).await.unwrap();
        st.apply(vec![StoreOp::DeleteRegistration(reg().id)])
            .await
            .unwrap();
        let (tx, h) = st.spawn_writer(16);
        tx.send(StoreOp::PutRegistration(reg())).await.unwrap();
        let mut sub = Subscription {
            id: "c;l;r".into(),
            aor: "sip:alice@ims.test".into(),
            call_id: "c".into(),
            local_tag: "l".into(),
            remote_tag: "r".into(),
            local_uri: "<sip:alice@ims.test>".into(),
            remote_uri: "<sip:alice@ims.test>".into(),
            remote_target: "sip:alice@10.0.0.1".into(),
            route_set: vec!["<sip:p;lr>".into()],
            local_cseq: 3,
            version: 2,
            expires_at: 1_800_000_000,
        };
        tx.send(StoreOp::PutSubscription(sub.clone()))
            .await
            .unwrap();
        sub.version = 3;
        tx.send(StoreOp::PutSubscription(sub.clone()))
            .await
            .unwrap();
        h.shutdown().await;
        drop(tx);
        let (regs, subs) = Store::open(&url).await.unwrap().load().await.unwrap();
        assert!(regs.contains(&reg()));
        assert!(subs.contains(&sub));
        st.apply(vec![
            StoreOp::DeleteRegistration(reg().id),
            StoreOp::DeleteSubscription(sub.id.clone()),
        ])
        .await
        .unwrap();
    }
}
