//! Subscriber store on `sqlx`: SQLite file by default, PostgreSQL by URL.
//!
//! - `./hss.db`, `sqlite://path` or `sqlite:path`: a SQLite file, created and migrated
//!   on first open, in WAL mode (readers do not block the writer, so `hss subscriber …`
//!   can provision while an HSS runs on the same file).
//! - `postgres://…` / `postgresql://…`: PostgreSQL, migrated on open.
//!
//! Both go through `sqlx::Any` with the same SQL (`$n` placeholders, `RETURNING`);
//! only the migrations differ (`migrations/sqlite`, `migrations/postgres`).
//!
//! The Cx hot path does not touch the DB per request: [`cache`] keeps K/OPc per IMPI
//! for MAR and the profiles UAR/SAR/LIR read, [`sqn`] hands out SQNs from blocks
//! reserved ahead, and SAR writes the S-CSCF assignment only when it changes. See those
//! modules for how they stay correct when another process changes the DB.

pub mod cache;
pub mod model;
pub mod sqn;

use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};

use crate::milenage::{Op, Opc, K};
pub use cache::AuthEntry;
use model::{AkaKeys, FieldError, Impu, NewSubscriber, Password, Subscriber, SubscriberUpdate};

/// Store errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed or is unreachable.
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// Applying migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The URL names no supported database.
    #[error("unsupported database URL {0:?} (use a file path, sqlite://… or postgres://…)")]
    BadUrl(String),
    /// Input failed validation.
    #[error("invalid {0}")]
    Invalid(#[from] FieldError),
    /// A subscriber with this IMSI, IMPI or IMPU exists already.
    #[error("{field} {value:?} already exists")]
    Duplicate {
        /// `imsi`, `impi` or `impu`.
        field: &'static str,
        /// The clashing value.
        value: String,
    },
    /// No such subscriber.
    #[error("no subscriber {0:?}")]
    NotFound(String),
    /// A stored row does not parse (e.g. a key that is not 32 hex digits).
    #[error("corrupt row for subscriber {imsi:?}: {what}")]
    Corrupt {
        /// Which subscriber.
        imsi: String,
        /// What is wrong (never a secret value).
        what: &'static str,
    },
}

/// Result alias of this module.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Which database is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite file.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Turns what the user typed (`./hss.db`, `sqlite://x`, `postgres://…`) into a sqlx URL.
pub fn normalize_db_url(url: &str) -> Result<(Backend, String)> {
    let u = url.trim();
    if u.starts_with("postgres://") || u.starts_with("postgresql://") {
        return Ok((Backend::Postgres, u.to_string()));
    }
    let path = if let Some(p) = u.strip_prefix("sqlite://") {
        p
    } else if let Some(p) = u.strip_prefix("sqlite:") {
        p
    } else if u.contains("://") || u.is_empty() {
        return Err(StoreError::BadUrl(u.to_string()));
    } else {
        u
    };
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let mut params: Vec<&str> = query.split('&').filter(|s| !s.is_empty()).collect();
    if !params.iter().any(|p| p.starts_with("mode=")) {
        params.push("mode=rwc");
    }
    Ok((
        Backend::Sqlite,
        format!("sqlite://{path}?{}", params.join("&")),
    ))
}

/// The subscriber store: a pool plus the auth cache and SQN blocks.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    cache: Arc<cache::AuthCache>,
    profiles: Arc<cache::ProfileCache>,
    /// Serialise assignment writes per subscriber (striped by IMSI), so the DB and
    /// [`cache::ProfileCache`] end with the same value.
    assign_locks: Arc<Vec<tokio::sync::Mutex<()>>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

const SUBSCRIBER_COLUMNS: &str = "id, imsi, impi, k, op, opc, op_given, amf, sqn, password, \
                                  scscf_name, scscf_host, ifc_xml";

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Store {
    /// Opens (creating and migrating if needed) the store at `url`.
    pub async fn open(url: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let (backend, url) = normalize_db_url(url)?;
        let mut opts = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 4 } else { 8 })
            .acquire_timeout(Duration::from_secs(10));
        if backend == Backend::Sqlite {
            opts = opts.after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA synchronous = NORMAL").await?;
                    conn.execute("PRAGMA busy_timeout = 5000").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    Ok(())
                })
            });
        }
        let pool = opts.connect(&url).await?;
        match backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&pool).await?,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&pool).await?,
        }
        let last_change: Option<i64> = sqlx::query("SELECT MAX(seq) AS m FROM changes")
            .fetch_one(&pool)
            .await?
            .try_get("m")?;
        let cache = Arc::new(cache::AuthCache::new(last_change.unwrap_or(0)));
        Ok(Self {
            pool,
            backend,
            cache,
            profiles: Arc::new(cache::ProfileCache::default()),
            assign_locks: Arc::new((0..64).map(|_| tokio::sync::Mutex::new(())).collect()),
        })
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The underlying pool.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Closes the pool (waits for connections to return).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    // === provisioning ===

    /// Creates a subscriber.
    pub async fn create(&self, new: NewSubscriber) -> Result<Subscriber> {
        let new = new.validate()?;
        let impi = new.impi.clone().unwrap_or_default();
        let mut tx = self.pool.begin().await?;
        if exists(
            &mut tx,
            "SELECT 1 FROM subscribers WHERE imsi = $1",
            &new.imsi,
        )
        .await?
        {
            return Err(StoreError::Duplicate {
                field: "imsi",
                value: new.imsi,
            });
        }
        if exists(&mut tx, "SELECT 1 FROM subscribers WHERE impi = $1", &impi).await? {
            return Err(StoreError::Duplicate {
                field: "impi",
                value: impi,
            });
        }
        for i in &new.impus {
            if exists(&mut tx, "SELECT 1 FROM impus WHERE impu = $1", &i.uri).await? {
                return Err(StoreError::Duplicate {
                    field: "impu",
                    value: i.uri.clone(),
                });
            }
        }
        let (k, op, opc, op_given) = aka_columns(new.aka.as_ref());
        let row = sqlx::query(
            "INSERT INTO subscribers (imsi, impi, k, op, opc, op_given, amf, sqn, password, \
             scscf_name, ifc_xml, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id",
        )
        .bind(&new.imsi)
        .bind(&impi)
        .bind(k)
        .bind(op)
        .bind(opc)
        .bind(op_given)
        .bind(hex::encode(new.amf.unwrap_or([0x80, 0x00])))
        .bind(new.sqn.unwrap_or(0) as i64)
        .bind(new.password.as_ref().map(|p| p.expose().to_string()))
        .bind(new.scscf_name.clone())
        .bind(new.ifc_xml.clone())
        .bind(now_secs())
        .bind(now_secs())
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| unique_to_duplicate(e, &new.imsi))?;
        let id: i64 = row.try_get("id")?;
        insert_impus(&mut tx, id, &new.impus).await?;
        log_change(&mut tx, &new.imsi).await?;
        tx.commit().await?;
        self.evict(&new.imsi);
        self.get(&new.imsi)
            .await?
            .ok_or_else(|| StoreError::NotFound(new.imsi.clone()))
    }

    /// One subscriber by IMSI or IMPI.
    pub async fn get(&self, imsi_or_impi: &str) -> Result<Option<Subscriber>> {
        let row = sqlx::query(&format!(
            "SELECT {SUBSCRIBER_COLUMNS} FROM subscribers WHERE imsi = $1 OR impi = $2"
        ))
        .bind(imsi_or_impi)
        .bind(imsi_or_impi)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(r) => Ok(Some(self.load(&r).await?)),
            None => Ok(None),
        }
    }

    /// The subscriber owning public identity `impu` (exact, then without URI parameters).
    pub async fn get_by_impu(&self, impu: &str) -> Result<Option<Subscriber>> {
        let mut candidates = vec![impu.trim().to_string()];
        if let Some((base, _)) = impu.split_once(';') {
            candidates.push(base.to_string());
        }
        for c in candidates {
            let row = sqlx::query(&format!(
                "SELECT {SUBSCRIBER_COLUMNS} FROM subscribers WHERE id = \
                 (SELECT subscriber_id FROM impus WHERE impu = $1)"
            ))
            .bind(&c)
            .fetch_optional(&self.pool)
            .await?;
            if let Some(r) = row {
                return Ok(Some(self.load(&r).await?));
            }
        }
        Ok(None)
    }

    /// The subscriber owning `impu` as the Cx procedures see it: from
    /// [`cache::ProfileCache`], read with [`Self::get_by_impu`] on a miss. Its S-CSCF
    /// assignment is current; its `sqn` is not (see the cache).
    pub async fn profile_by_impu(&self, impu: &str) -> Result<Option<Arc<Subscriber>>> {
        let key = impu.trim();
        if let Some(s) = self.profiles.get(key) {
            return Ok(Some(s));
        }
        let epoch = self.profiles.epoch();
        match self.get_by_impu(key).await? {
            Some(s) => Ok(Some(self.profiles.insert(key, s, epoch))),
            None => Ok(None),
        }
    }

    /// Drops a subscriber from both caches (after a provisioning change).
    fn evict(&self, imsi: &str) {
        self.cache.evict_imsi(imsi);
        self.profiles.evict_imsi(imsi);
    }

    /// Every subscriber, ordered by IMSI.
    pub async fn list(&self) -> Result<Vec<Subscriber>> {
        let rows = sqlx::query(&format!(
            "SELECT {SUBSCRIBER_COLUMNS} FROM subscribers ORDER BY imsi"
        ))
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push(self.load(r).await?);
        }
        Ok(out)
    }

    /// Applies an update to the subscriber with this IMSI or IMPI.
    pub async fn update(&self, imsi_or_impi: &str, up: SubscriberUpdate) -> Result<Subscriber> {
        let cur = self
            .get(imsi_or_impi)
            .await?
            .ok_or_else(|| StoreError::NotFound(imsi_or_impi.to_string()))?;
        // Validate the result as a whole.
        let aka = match up.aka.clone() {
            Some(a) => a,
            None => cur.aka.clone(),
        };
        let password = match up.password.clone() {
            Some(p) => p,
            None => cur.password.clone(),
        };
        let merged = NewSubscriber {
            imsi: cur.imsi.clone(),
            impi: Some(up.impi.clone().unwrap_or_else(|| cur.impi.clone())),
            impus: up.impus.clone().unwrap_or_else(|| cur.impus.clone()),
            aka,
            amf: Some(up.amf.unwrap_or(cur.amf)),
            sqn: Some(up.sqn.unwrap_or(cur.sqn)),
            password,
            ifc_xml: match up.ifc_xml.clone() {
                Some(x) => x,
                None => cur.ifc_xml.clone(),
            },
            scscf_name: match up.scscf_name.clone() {
                Some(x) => x,
                None => cur.scscf_name.clone(),
            },
        }
        .validate()?;
        let impi = merged.impi.clone().unwrap_or_default();
        let mut tx = self.pool.begin().await?;
        let id: i64 = sqlx::query("SELECT id FROM subscribers WHERE imsi = $1")
            .bind(&cur.imsi)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound(cur.imsi.clone()))?
            .try_get("id")?;
        if impi != cur.impi
            && exists(&mut tx, "SELECT 1 FROM subscribers WHERE impi = $1", &impi).await?
        {
            return Err(StoreError::Duplicate {
                field: "impi",
                value: impi,
            });
        }
        if up.impus.is_some() {
            for i in &merged.impus {
                let other = sqlx::query("SELECT subscriber_id FROM impus WHERE impu = $1")
                    .bind(&i.uri)
                    .fetch_optional(&mut *tx)
                    .await?;
                if let Some(o) = other {
                    if o.try_get::<i64, _>("subscriber_id")? != id {
                        return Err(StoreError::Duplicate {
                            field: "impu",
                            value: i.uri.clone(),
                        });
                    }
                }
            }
        }
        let (k, op, opc, op_given) = aka_columns(merged.aka.as_ref());
        let sqn_clause = if up.sqn.is_some() { ", sqn = $11" } else { "" };
        let sql = format!(
            "UPDATE subscribers SET impi = $1, k = $2, op = $3, opc = $4, op_given = $5, \
             amf = $6, password = $7, ifc_xml = $8, scscf_name = $9, updated_at = $10{sqn_clause} \
             WHERE id = ${}",
            if up.sqn.is_some() { 12 } else { 11 }
        );
        let mut q = sqlx::query(&sql)
            .bind(&impi)
            .bind(k)
            .bind(op)
            .bind(opc)
            .bind(op_given)
            .bind(hex::encode(merged.amf.unwrap_or([0x80, 0])))
            .bind(merged.password.as_ref().map(|p| p.expose().to_string()))
            .bind(merged.ifc_xml.clone())
            .bind(merged.scscf_name.clone())
            .bind(now_secs());
        if let Some(sqn) = up.sqn {
            q = q.bind(sqn as i64);
        }
        q.bind(id)
            .execute(&mut *tx)
            .await
            .map_err(|e| unique_to_duplicate(e, &impi))?;
        if up.impus.is_some() {
            sqlx::query("DELETE FROM impus WHERE subscriber_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            insert_impus(&mut tx, id, &merged.impus).await?;
        }
        log_change(&mut tx, &cur.imsi).await?;
        tx.commit().await?;
        self.evict(&cur.imsi);
        self.get(&cur.imsi)
            .await?
            .ok_or_else(|| StoreError::NotFound(cur.imsi.clone()))
    }

    /// Deletes the subscriber with this IMSI or IMPI; `false` if there was none.
    pub async fn delete(&self, imsi_or_impi: &str) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query("SELECT id, imsi FROM subscribers WHERE imsi = $1 OR impi = $2")
            .bind(imsi_or_impi)
            .bind(imsi_or_impi)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            return Ok(false);
        };
        let id: i64 = row.try_get("id")?;
        let imsi: String = row.try_get("imsi")?;
        sqlx::query("DELETE FROM impus WHERE subscriber_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM subscribers WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        log_change(&mut tx, &imsi).await?;
        tx.commit().await?;
        self.evict(&imsi);
        Ok(true)
    }

    // === Cx side ===

    /// Stores (or clears, with `None`) the assigned S-CSCF for the subscriber `imsi`.
    /// Not a provisioning change: the auth cache is unaffected. Writes only when the
    /// value differs from the cached profile's (re-registrations repeat it); the cached
    /// profile is updated once the DB has the new value.
    pub async fn set_assignment(
        &self,
        imsi: &str,
        server_name: Option<&str>,
        origin_host: Option<&str>,
    ) -> Result<()> {
        let stripe = imsi.bytes().fold(0usize, |h, b| {
            h.wrapping_mul(31).wrapping_add(usize::from(b))
        });
        let _serial = self.assign_locks[stripe % self.assign_locks.len()]
            .lock()
            .await;
        if let Some(cur) = self.profiles.by_imsi(imsi) {
            if cur.scscf_name.as_deref() == server_name && cur.scscf_host.as_deref() == origin_host
            {
                return Ok(());
            }
        }
        // A profile read from the DB before this write must not be cached after it.
        self.profiles.bump(imsi);
        sqlx::query("UPDATE subscribers SET scscf_name = $1, scscf_host = $2 WHERE imsi = $3")
            .bind(server_name.map(str::to_string))
            .bind(origin_host.map(str::to_string))
            .bind(imsi)
            .execute(&self.pool)
            .await?;
        self.profiles.set_assignment(imsi, server_name, origin_host);
        Ok(())
    }

    /// Number of profiles in the Cx profile cache (tests, metrics).
    pub fn cached_profiles(&self) -> usize {
        self.profiles.len()
    }

    /// The cached auth data for an IMPI (K/OPc, AMF, password, IMPUs), loading it on a miss.
    pub async fn auth_entry(&self, impi: &str) -> Result<Option<Arc<AuthEntry>>> {
        if let Some(e) = self.cache.get(impi) {
            return Ok(Some(e));
        }
        let epoch = self.cache.epoch();
        let Some(s) = self.get(impi).await? else {
            return Ok(None);
        };
        if s.impi != impi {
            // `get` also matches an IMSI; Cx User-Name must be the IMPI.
            return Ok(None);
        }
        let id: i64 = sqlx::query("SELECT id FROM subscribers WHERE imsi = $1")
            .bind(&s.imsi)
            .fetch_one(&self.pool)
            .await?
            .try_get("id")?;
        Ok(Some(self.cache.insert(AuthEntry::new(id, &s), epoch)))
    }

    /// Allocates `n` fresh SQNs for the subscriber (see [`sqn`]).
    pub async fn allocate_sqns(&self, entry: &AuthEntry, n: usize) -> Result<Vec<u64>> {
        let mut out = Vec::with_capacity(n);
        let mut block = entry.block.lock().await;
        let mut left = n - block.take(n, &mut out);
        while left > 0 {
            let add = sqn::reservation_size(left);
            let new_ceiling = self.reserve(entry.id, add).await?;
            block.refill(new_ceiling - add, new_ceiling);
            left -= block.take(left, &mut out);
        }
        Ok(out)
    }

    async fn reserve(&self, id: i64, add: u64) -> Result<u64> {
        let row = sqlx::query("UPDATE subscribers SET sqn = sqn + $1 WHERE id = $2 RETURNING sqn")
            .bind(add as i64)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("subscriber id {id}")))?;
        let v: i64 = row.try_get("sqn")?;
        Ok(v as u64)
    }

    /// Re-synchronisation with SQN_MS recovered from AUTS (TS 33.102 §6.3.5): moves the
    /// SQN to SQN_MS unless the next SQN would be accepted anyway. Returns whether it moved.
    pub async fn resync(&self, entry: &AuthEntry, sqn_ms: u64) -> Result<bool> {
        let mut block = entry.block.lock().await;
        let next = if block.limit == 0 {
            // No block in memory: the next SQN is above the DB ceiling.
            let row = sqlx::query("SELECT sqn FROM subscribers WHERE id = $1")
                .bind(entry.id)
                .fetch_one(&self.pool)
                .await?;
            row.try_get::<i64, _>("sqn")? as u64 + sqn::SQN_STEP
        } else {
            block.last + sqn::SQN_STEP
        };
        match sqn::resync_ceiling(next, sqn_ms) {
            None => Ok(false),
            Some(ceiling) => {
                sqlx::query("UPDATE subscribers SET sqn = $1 WHERE id = $2")
                    .bind(ceiling as i64)
                    .bind(entry.id)
                    .execute(&self.pool)
                    .await?;
                *block = sqn::SqnBlock::empty();
                Ok(true)
            }
        }
    }

    /// Reads provisioning changes made by any process since the last poll and evicts
    /// those subscribers from the cache. Returns how many changes were seen.
    pub async fn poll_changes(&self) -> Result<usize> {
        let since = self.cache.last_change();
        let rows = sqlx::query("SELECT seq, imsi FROM changes WHERE seq > $1 ORDER BY seq")
            .bind(since)
            .fetch_all(&self.pool)
            .await?;
        let mut last = since;
        let mut imsis = Vec::with_capacity(rows.len());
        for r in &rows {
            let seq: i64 = r.try_get("seq")?;
            imsis.push(r.try_get::<String, _>("imsi")?);
            last = last.max(seq);
        }
        self.cache.set_last_change(last);
        for imsi in &imsis {
            self.evict(imsi);
        }
        Ok(rows.len())
    }

    /// Spawns the task that calls [`Store::poll_changes`] every `every` until `stop`.
    pub fn spawn_change_poller(
        &self,
        every: Duration,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let store = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        if let Err(e) = store.poll_changes().await {
                            tracing::warn!(error = %e, "polling subscriber changes failed");
                        }
                    }
                    _ = stop.changed() => break,
                }
                if *stop.borrow() {
                    break;
                }
            }
        })
    }

    async fn load(&self, r: &AnyRow) -> Result<Subscriber> {
        let id: i64 = r.try_get("id")?;
        let imsi: String = r.try_get("imsi")?;
        let corrupt = |what| StoreError::Corrupt {
            imsi: imsi.clone(),
            what,
        };
        let k: Option<String> = r.try_get("k")?;
        let op: Option<String> = r.try_get("op")?;
        let opc: Option<String> = r.try_get("opc")?;
        let op_given: i64 = r.try_get("op_given")?;
        let aka = match (k, opc) {
            (Some(k), Some(opc)) => {
                let k = K::from_hex(&k).map_err(|_| corrupt("k"))?;
                let opc = Opc::from_hex(&opc).map_err(|_| corrupt("opc"))?;
                let op = match (op_given, op) {
                    (1, Some(op)) => Some(Op::from_hex(&op).map_err(|_| corrupt("op"))?),
                    _ => None,
                };
                Some(AkaKeys { k, opc, op })
            }
            _ => None,
        };
        let amf_s: String = r.try_get("amf")?;
        let amf = model::parse_amf(&amf_s).map_err(|_| corrupt("amf"))?;
        let sqn: i64 = r.try_get("sqn")?;
        let impu_rows = sqlx::query(
            "SELECT impu, irs, barred FROM impus WHERE subscriber_id = $1 ORDER BY position",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        let mut impus = Vec::with_capacity(impu_rows.len());
        for ir in &impu_rows {
            impus.push(Impu {
                uri: ir.try_get("impu")?,
                irs: ir.try_get::<i64, _>("irs")? as u32,
                barred: ir.try_get::<i64, _>("barred")? != 0,
            });
        }
        Ok(Subscriber {
            impi: r.try_get("impi")?,
            impus,
            aka,
            amf,
            sqn: sqn as u64,
            password: r
                .try_get::<Option<String>, _>("password")?
                .map(Password::new),
            scscf_name: r.try_get("scscf_name")?,
            scscf_host: r.try_get("scscf_host")?,
            ifc_xml: r.try_get("ifc_xml")?,
            imsi,
        })
    }
}

type Tx<'a> = sqlx::Transaction<'a, sqlx::Any>;

async fn exists(tx: &mut Tx<'_>, sql: &str, v: &str) -> Result<bool> {
    Ok(sqlx::query(sql)
        .bind(v)
        .fetch_optional(&mut **tx)
        .await?
        .is_some())
}

async fn insert_impus(tx: &mut Tx<'_>, id: i64, impus: &[Impu]) -> Result<()> {
    for (pos, i) in impus.iter().enumerate() {
        sqlx::query(
            "INSERT INTO impus (impu, subscriber_id, position, irs, barred) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&i.uri)
        .bind(id)
        .bind(pos as i64)
        .bind(i64::from(i.irs))
        .bind(i64::from(i.barred))
        .execute(&mut **tx)
        .await
        .map_err(|e| unique_to_duplicate_field(e, "impu", &i.uri))?;
    }
    Ok(())
}

async fn log_change(tx: &mut Tx<'_>, imsi: &str) -> Result<()> {
    sqlx::query("INSERT INTO changes (imsi) VALUES ($1)")
        .bind(imsi)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

fn aka_columns(aka: Option<&AkaKeys>) -> (Option<String>, Option<String>, Option<String>, i64) {
    match aka {
        Some(a) => (
            Some(a.k.expose_hex()),
            a.op.as_ref().map(|o| o.expose_hex()),
            Some(a.opc.expose_hex()),
            i64::from(a.op.is_some()),
        ),
        None => (None, None, None, 0),
    }
}

fn unique_to_duplicate(e: sqlx::Error, value: &str) -> StoreError {
    unique_to_duplicate_field(e, "imsi", value)
}

fn unique_to_duplicate_field(e: sqlx::Error, field: &'static str, value: &str) -> StoreError {
    if let sqlx::Error::Database(d) = &e {
        let msg = d.message().to_ascii_lowercase();
        if d.is_unique_violation() || msg.contains("unique") || msg.contains("duplicate key") {
            return StoreError::Duplicate {
                field,
                value: value.to_string(),
            };
        }
    }
    StoreError::Db(e)
}

#[cfg(test)]
pub(crate) mod tests;
