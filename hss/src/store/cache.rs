//! In-memory cache of what MAR needs (K/OPc, AMF, password, IMPUs) plus the SQN block,
//! keyed by IMPI.
//!
//! # Staying correct when another process changes the DB
//!
//! Every provisioning change (create/update/delete, by REST or by `hss subscriber …`
//! in another process) appends the subscriber's IMSI to the `changes` table in the same
//! transaction. The running HSS
//!
//! - evicts immediately on its own changes, and
//! - polls `changes` for rows newer than the last one it saw (one indexed query every
//!   250 ms by default, [`crate::store::Store::spawn_change_poller`]) and evicts those
//!   IMSIs.
//!
//! So a change made by another process is visible to Cx within one poll interval, at
//! the cost of one tiny query per interval rather than one per request. A miss reads the
//! DB. UAR, SAR and LIR read whole profiles from [`ProfileCache`], evicted the same way;
//! the S-CSCF assignment in it is updated by this process's SARs as they write it (an
//! unchanged assignment, as on every re-registration, writes nothing).

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use super::model::{AkaKeys, Password, Subscriber};
use super::sqn::SqnBlock;

/// What MAR needs about one subscriber.
#[derive(Debug)]
pub struct AuthEntry {
    /// Row id.
    pub id: i64,
    /// IMSI.
    pub imsi: String,
    /// IMPI.
    pub impi: String,
    /// Public identities (URIs).
    pub impus: Vec<String>,
    /// AKA keys.
    pub aka: Option<AkaKeys>,
    /// AMF for new vectors.
    pub amf: [u8; 2],
    /// SIP Digest password.
    pub password: Option<Password>,
    /// The SQN block reserved for this subscriber.
    pub block: tokio::sync::Mutex<SqnBlock>,
}

impl AuthEntry {
    /// An entry with an empty SQN block.
    pub fn new(id: i64, s: &Subscriber) -> Self {
        Self {
            id,
            imsi: s.imsi.clone(),
            impi: s.impi.clone(),
            impus: s.impus.iter().map(|i| i.uri.clone()).collect(),
            aka: s.aka.clone(),
            amf: s.amf,
            password: s.password.clone(),
            block: tokio::sync::Mutex::new(SqnBlock::empty()),
        }
    }

    /// Whether `impu` belongs to this subscriber.
    pub fn has_impu(&self, impu: &str) -> bool {
        self.impus.iter().any(|i| super::model::uri_eq(i, impu))
    }
}

/// The cache.
#[derive(Debug)]
pub struct AuthCache {
    by_impi: RwLock<HashMap<String, Arc<AuthEntry>>>,
    last_change: AtomicI64,
    /// Bumped before every eviction; a miss only caches what it read if no eviction
    /// happened since it started reading (else it could cache a stale row).
    epoch: AtomicU64,
}

impl AuthCache {
    /// Empty cache that has seen changes up to `last_change`.
    pub fn new(last_change: i64) -> Self {
        Self {
            by_impi: RwLock::new(HashMap::new()),
            last_change: AtomicI64::new(last_change),
            epoch: AtomicU64::new(0),
        }
    }

    /// Cached entry for an IMPI.
    pub fn get(&self, impi: &str) -> Option<Arc<AuthEntry>> {
        self.by_impi
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(impi)
            .cloned()
    }

    /// The eviction epoch; take it before reading the DB on a miss.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Inserts an entry read while the epoch was `epoch`, unless one is there already
    /// (then that one wins, so concurrent misses share one SQN block). If an eviction
    /// happened meanwhile, the entry is returned uncached.
    pub fn insert(&self, e: AuthEntry, epoch: u64) -> Arc<AuthEntry> {
        let mut map = self.by_impi.write().unwrap_or_else(|p| p.into_inner());
        if self.epoch.load(Ordering::Acquire) != epoch {
            return Arc::new(e);
        }
        map.entry(e.impi.clone())
            .or_insert_with(|| Arc::new(e))
            .clone()
    }

    /// Drops the entries of a subscriber.
    pub fn evict_imsi(&self, imsi: &str) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.by_impi
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, e| e.imsi != imsi);
    }

    /// Last change sequence number seen.
    pub fn last_change(&self) -> i64 {
        self.last_change.load(Ordering::Acquire)
    }

    /// Records the last change seen.
    pub fn set_last_change(&self, seq: i64) {
        self.last_change.store(seq, Ordering::Release);
    }
}

/// In-memory subscriber profiles for UAR, SAR and LIR, keyed by the IMPU asked for,
/// with the S-CSCF assignment kept current by [`crate::store::Store::set_assignment`].
///
/// Without it every UAR, SAR and LIR read two rows from the DB and every SAR wrote
/// one: the registration benchmark's HSS spent most of its CPU handing queries to
/// the SQLite worker threads. Provisioning changes evict entries exactly as for
/// [`AuthCache`] (own changes at once, other processes' within one poll). The
/// profile's `sqn` is the value when it was read, not the current one: MAR takes
/// SQNs from the [`AuthEntry`] block, never from here.
///
/// A read that saw the epoch move while it was out is still cached unless the IMSI
/// it read is among those bumped meanwhile (`Profiles::bumped`): with one global
/// epoch, every SAR writing an assignment (each first registration) made concurrent
/// misses of *other* subscribers uncacheable, their SARs then found no cached profile
/// and wrote (and bumped) again, and under load the HSS kept reading profiles from the
/// DB (perf at 350 registrations/s: a fifth of the HSS's CPU under `get_by_impu`).
#[derive(Debug, Default)]
pub struct ProfileCache {
    inner: RwLock<Profiles>,
    /// As [`AuthCache`]'s epoch: bumped before evictions and assignment writes.
    epoch: AtomicU64,
}

/// How many recent bumps [`ProfileCache`] remembers by IMSI; a read that started
/// before the oldest remembered one is not cached (the old, safe behaviour).
const BUMP_LOG: usize = 4096;

#[derive(Debug, Default)]
struct Profiles {
    /// IMSI → profile and the IMPU keys it is cached under.
    by_imsi: HashMap<String, (Arc<Subscriber>, Vec<String>)>,
    /// IMPU as asked for → IMSI.
    by_impu: HashMap<String, String>,
    /// The last [`BUMP_LOG`] bumps: epoch after the bump, IMSI bumped.
    bumped: std::collections::VecDeque<(u64, String)>,
}

impl Profiles {
    /// Whether a read of `imsi` that started at `epoch` may be cached now that the
    /// epoch is `now`: nothing bumped that IMSI since, and the log reaches back that far.
    fn unchanged_since(&self, imsi: &str, epoch: u64, now: u64) -> bool {
        if now == epoch {
            return true;
        }
        match self.bumped.front() {
            // The log must hold every bump after `epoch` (epochs epoch+1 ..= now).
            Some((oldest, _)) if *oldest <= epoch + 1 => {}
            _ => return false,
        }
        !self
            .bumped
            .iter()
            .any(|(e, i)| *e > epoch && i.as_str() == imsi)
    }
}

impl ProfileCache {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Profiles> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Profiles> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The cached profile owning `impu` (as asked for before).
    pub fn get(&self, impu: &str) -> Option<Arc<Subscriber>> {
        let p = self.read();
        let imsi = p.by_impu.get(impu)?;
        p.by_imsi.get(imsi).map(|e| e.0.clone())
    }

    /// The cached profile of `imsi`.
    pub fn by_imsi(&self, imsi: &str) -> Option<Arc<Subscriber>> {
        self.read().by_imsi.get(imsi).map(|e| e.0.clone())
    }

    /// The epoch; take it before reading the DB on a miss.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Makes reads of `imsi` that started before uncacheable (see [`Self::insert`]).
    pub fn bump(&self, imsi: &str) {
        let mut p = self.write();
        let now = self.epoch.fetch_add(1, Ordering::AcqRel) + 1;
        if p.bumped.len() == BUMP_LOG {
            p.bumped.pop_front();
        }
        p.bumped.push_back((now, imsi.to_string()));
    }

    /// Caches `s`, read for `impu` while the epoch was `epoch`, unless an eviction or
    /// assignment write of the same subscriber happened meanwhile; a profile already
    /// cached for the same IMSI wins (it may carry a newer assignment). Returns the
    /// profile to use.
    pub fn insert(&self, impu: &str, s: Subscriber, epoch: u64) -> Arc<Subscriber> {
        let mut p = self.write();
        let now = self.epoch.load(Ordering::Acquire);
        if !p.unchanged_since(&s.imsi, epoch, now) {
            return Arc::new(s);
        }
        let imsi = s.imsi.clone();
        let entry = p
            .by_imsi
            .entry(imsi.clone())
            .or_insert_with(|| (Arc::new(s), Vec::new()));
        if !entry.1.iter().any(|k| k == impu) {
            entry.1.push(impu.to_string());
        }
        let out = entry.0.clone();
        p.by_impu.insert(impu.to_string(), imsi);
        out
    }

    /// Records a new assignment of a cached profile (after the DB has it).
    pub fn set_assignment(&self, imsi: &str, name: Option<&str>, host: Option<&str>) {
        let mut p = self.write();
        if let Some(e) = p.by_imsi.get_mut(imsi) {
            let mut s = (*e.0).clone();
            s.scscf_name = name.map(str::to_string);
            s.scscf_host = host.map(str::to_string);
            e.0 = Arc::new(s);
        }
    }

    /// Drops the profile of a subscriber.
    pub fn evict_imsi(&self, imsi: &str) {
        self.bump(imsi);
        let mut p = self.write();
        if let Some((_, keys)) = p.by_imsi.remove(imsi) {
            for k in keys {
                p.by_impu.remove(&k);
            }
        }
    }

    /// Number of cached profiles.
    pub fn len(&self) -> usize {
        self.read().by_imsi.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(imsi: &str) -> Subscriber {
        Subscriber {
            imsi: imsi.into(),
            impi: format!("{imsi}@ims.test"),
            impus: Vec::new(),
            aka: None,
            amf: [0x80, 0],
            sqn: 0,
            password: None,
            scscf_name: None,
            scscf_host: None,
            ifc_xml: None,
        }
    }

    #[test]
    fn a_bump_of_another_subscriber_does_not_block_caching() {
        let c = ProfileCache::default();
        let epoch = c.epoch();
        // While the read of 001 is out, another subscriber's assignment is written.
        c.bump("002");
        c.insert("sip:001@ims.test", sub("001"), epoch);
        assert!(c.get("sip:001@ims.test").is_some(), "001 was not changed");
    }

    #[test]
    fn a_bump_of_the_same_subscriber_blocks_caching() {
        let c = ProfileCache::default();
        let epoch = c.epoch();
        c.bump("002");
        c.bump("001");
        c.bump("003");
        c.insert("sip:001@ims.test", sub("001"), epoch);
        assert!(c.get("sip:001@ims.test").is_none(), "001 changed meanwhile");
        // A read that started after the bump is cached.
        let later = c.epoch();
        c.insert("sip:001@ims.test", sub("001"), later);
        assert!(c.get("sip:001@ims.test").is_some());
    }

    #[test]
    fn a_read_older_than_the_bump_log_is_not_cached() {
        let c = ProfileCache::default();
        let epoch = c.epoch();
        for i in 0..=BUMP_LOG {
            c.bump(&format!("x{i}"));
        }
        c.insert("sip:001@ims.test", sub("001"), epoch);
        assert!(
            c.get("sip:001@ims.test").is_none(),
            "bumps before the log's oldest entry are unknown"
        );
        let epoch = c.epoch();
        c.bump("x1");
        c.insert("sip:001@ims.test", sub("001"), epoch);
        assert!(c.get("sip:001@ims.test").is_some());
    }
}
