//! Store tests: every scenario runs on a temporary SQLite file and on PostgreSQL (a
//! throwaway server from `ims-testkit`, one fresh database per scenario, or the database
//! named by `HSS_TEST_POSTGRES_URL`).

use std::collections::HashSet;
use std::sync::Arc;

use ims_testkit::{Error as PgError, TestPostgres};

use super::model::*;
use super::*;

pub(crate) fn temp_db(name: &str) -> String {
    let dir = std::env::temp_dir().join(format!(
        "ims-hss-store-{}-{}-{}",
        name,
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join("hss.db").display().to_string()
}

pub(crate) fn alice(imsi: &str) -> NewSubscriber {
    NewSubscriber {
        imsi: imsi.to_string(),
        impi: None,
        impus: vec![
            Impu {
                uri: format!("sip:{imsi}@ims.mnc001.mcc001.3gppnetwork.org"),
                irs: 0,
                barred: false,
            },
            Impu {
                uri: format!("tel:+1{}", &imsi[imsi.len() - 6..]),
                irs: 0,
                barred: false,
            },
        ],
        aka: Some(
            aka_from_hex(
                "465b5ce8b199b49faa5f0a2ee238a6bc",
                Some("cdc202d5123e20f62b6d676ac72cb318"),
                None,
            )
            .expect("keys"),
        ),
        amf: None,
        sqn: Some(0x1000),
        password: None,
        ifc_xml: None,
        scscf_name: None,
    }
}

/// The IMSIs a scenario uses: `base + n`, 15 digits. Fixed on a database of the test's
/// own; random on a shared PostgreSQL database (`HSS_TEST_POSTGRES_URL`), which keeps
/// the rows of earlier runs.
#[derive(Debug, Clone, Copy)]
struct Imsis(u64);

impl Imsis {
    /// `001010000000000 + n`.
    const FIXED: Imsis = Imsis(1_010_000_000_000);

    /// `00102xxxxxxxxxx`: fresh on every run.
    fn random() -> Imsis {
        Imsis(1_020_000_000_000 + rand::random::<u64>() % 9_000_000_000)
    }

    fn nth(self, n: u64) -> String {
        format!("{:015}", self.0 + n)
    }
}

#[tokio::test]
async fn create_get_update_delete() {
    crud(&temp_db("crud"), Imsis::FIXED).await;
}

async fn crud(url: &str, ids: Imsis) {
    let store = Store::open(url).await.expect("open");
    let before = store.list().await.expect("list").len();
    let s = store.create(alice(&ids.nth(1))).await.expect("create");
    assert_eq!(
        s.impi,
        format!("{}@ims.mnc001.mcc001.3gppnetwork.org", ids.nth(1))
    );
    assert_eq!(s.impus.len(), 2);
    assert!(s.aka.as_ref().expect("aka").op.is_some());
    assert_eq!(
        s.aka.as_ref().expect("aka").opc.expose_hex(),
        "cd63cb71954a9f4e48a5994e37a02baf"
    );
    assert_eq!(s.sqn, 0x1000);

    // Duplicate IMSI, IMPI, IMPU.
    let e = store.create(alice(&ids.nth(1))).await.unwrap_err();
    assert!(
        matches!(e, StoreError::Duplicate { field: "imsi", .. }),
        "{e}"
    );
    let mut dup_impi = alice(&ids.nth(2));
    dup_impi.impi = Some(s.impi.clone());
    let e = store.create(dup_impi).await.unwrap_err();
    assert!(
        matches!(e, StoreError::Duplicate { field: "impi", .. }),
        "{e}"
    );
    let mut dup_impu = alice(&ids.nth(3));
    dup_impu.impus = vec![s.impus[0].clone()];
    let e = store.create(dup_impu).await.unwrap_err();
    assert!(
        matches!(e, StoreError::Duplicate { field: "impu", .. }),
        "{e}"
    );

    // Lookups by IMSI, IMPI, IMPU (with parameters).
    assert!(store.get(&s.impi).await.expect("get").is_some());
    let by_impu = store
        .get_by_impu(&format!("{};user=phone", s.impus[0].uri))
        .await
        .expect("get_by_impu")
        .expect("found");
    assert_eq!(by_impu.imsi, s.imsi);

    let up = store
        .update(
            &s.imsi,
            SubscriberUpdate {
                amf: Some([0x90, 0x01]),
                password: Some(Some(Password::new("secret"))),
                ..Default::default()
            },
        )
        .await
        .expect("update");
    assert_eq!(up.amf, [0x90, 0x01]);
    assert_eq!(up.password.as_ref().map(|p| p.expose()), Some("secret"));
    assert_eq!(up.sqn, 0x1000, "sqn untouched when not given");
    assert_eq!(store.list().await.expect("list").len(), before + 1);
    assert!(store.delete(&s.impi).await.expect("delete"));
    assert!(!store.delete(&s.imsi).await.expect("delete again"));
    assert!(store.get(&s.imsi).await.expect("get").is_none());
    assert_eq!(store.list().await.expect("list").len(), before);
}

#[tokio::test]
async fn sqns_unique_under_concurrency_and_across_reopen() {
    sqns_unique(&temp_db("sqn"), Imsis::FIXED).await;
}

async fn sqns_unique(path: &str, ids: Imsis) {
    let store = Store::open(path).await.expect("open");
    let s = store.create(alice(&ids.nth(10))).await.expect("create");
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let st = store.clone();
        let impi = s.impi.clone();
        tasks.push(tokio::spawn(async move {
            let e = st.auth_entry(&impi).await.expect("entry").expect("some");
            st.allocate_sqns(&e, 3).await.expect("alloc")
        }));
    }
    let mut seen = HashSet::new();
    let mut max = 0;
    for t in tasks {
        for sqn in t.await.expect("join") {
            assert!(seen.insert(sqn), "SQN {sqn} handed out twice");
            assert_eq!(sqn % 32, 0);
            assert!(sqn > 0x1000);
            max = max.max(sqn);
        }
    }
    assert_eq!(seen.len(), 600);
    store.close().await;
    drop(store);

    let store = Store::open(path).await.expect("reopen");
    let e = store
        .auth_entry(&s.impi)
        .await
        .expect("entry")
        .expect("some");
    let next = store.allocate_sqns(&e, 1).await.expect("alloc");
    assert!(next[0] > max, "{} must be above {}", next[0], max);
}

#[tokio::test]
async fn other_process_changes_become_visible() {
    changes_visible(&temp_db("visible"), Imsis::FIXED).await;
}

async fn changes_visible(path: &str, ids: Imsis) {
    let hss = Store::open(path).await.expect("open");
    let cli = Store::open(path).await.expect("open second");
    let s = cli.create(alice(&ids.nth(20))).await.expect("create");
    assert_eq!(hss.poll_changes().await.expect("poll"), 1, "the creation");
    let e1 = hss.auth_entry(&s.impi).await.expect("entry").expect("some");
    assert_eq!(e1.amf, [0x80, 0]);
    cli.update(
        &s.imsi,
        SubscriberUpdate {
            amf: Some([0x12, 0x34]),
            ..Default::default()
        },
    )
    .await
    .expect("update");
    // Still cached until the poll.
    assert_eq!(
        hss.auth_entry(&s.impi).await.expect("e").expect("s").amf,
        [0x80, 0]
    );
    assert_eq!(hss.poll_changes().await.expect("poll"), 1);
    assert_eq!(
        hss.auth_entry(&s.impi).await.expect("e").expect("s").amf,
        [0x12, 0x34]
    );
    cli.delete(&s.imsi).await.expect("delete");
    hss.poll_changes().await.expect("poll");
    assert!(hss.auth_entry(&s.impi).await.expect("e").is_none());
}

#[tokio::test]
async fn resync_moves_sqn_forward_only_when_needed() {
    resync(&temp_db("resync"), Imsis::FIXED).await;
}

async fn resync(url: &str, ids: Imsis) {
    let store = Store::open(url).await.expect("open");
    let s = store.create(alice(&ids.nth(30))).await.expect("create");
    let e: Arc<AuthEntry> = store.auth_entry(&s.impi).await.expect("e").expect("s");
    let first = store.allocate_sqns(&e, 1).await.expect("alloc")[0];
    assert_eq!(first, 0x1000 + 32);
    // USIM far ahead: SQN jumps to SQN_MS, next vector carries SQN_MS + 32.
    assert!(store.resync(&e, 0x50_0000).await.expect("resync"));
    assert_eq!(
        store.allocate_sqns(&e, 1).await.expect("alloc")[0],
        0x50_0000 + 32
    );
    // USIM behind our next SQN: nothing to change.
    assert!(!store.resync(&e, 0x40_0000).await.expect("resync"));
    assert_eq!(
        store.allocate_sqns(&e, 1).await.expect("alloc")[0],
        0x50_0000 + 64
    );
}

#[tokio::test]
async fn assignment_does_not_touch_cache() {
    assignment(&temp_db("assign"), Imsis::FIXED).await;
}

async fn assignment(url: &str, ids: Imsis) {
    let store = Store::open(url).await.expect("open");
    let s = store.create(alice(&ids.nth(40))).await.expect("create");
    store
        .set_assignment(
            &s.imsi,
            Some("sip:scscf.ims.test:6060"),
            Some("scscf.ims.test"),
        )
        .await
        .expect("assign");
    let got = store.get(&s.imsi).await.expect("get").expect("some");
    assert_eq!(got.scscf_name.as_deref(), Some("sip:scscf.ims.test:6060"));
    assert_eq!(got.scscf_host.as_deref(), Some("scscf.ims.test"));
    store
        .set_assignment(&s.imsi, None, None)
        .await
        .expect("clear");
    assert!(store
        .get(&s.imsi)
        .await
        .expect("get")
        .expect("s")
        .scscf_name
        .is_none());
}

#[test]
fn db_urls() {
    assert_eq!(
        normalize_db_url("./hss.db").expect("ok"),
        (Backend::Sqlite, "sqlite://./hss.db?mode=rwc".to_string())
    );
    assert_eq!(
        normalize_db_url("sqlite:///tmp/x.db").expect("ok").1,
        "sqlite:///tmp/x.db?mode=rwc"
    );
    assert_eq!(
        normalize_db_url("postgres://u:p@localhost/hss")
            .expect("ok")
            .0,
        Backend::Postgres
    );
    assert!(normalize_db_url("mysql://x").is_err());
}

#[tokio::test]
async fn profiles_are_cached_with_current_assignment() {
    profiles_cached(&temp_db("profiles"), Imsis::FIXED).await;
}

async fn profiles_cached(url: &str, ids: Imsis) {
    let store = Store::open(url).await.expect("open");
    let s = store.create(alice(&ids.nth(50))).await.expect("create");
    let impu = s.impus[0].uri.clone();
    assert!(store
        .profile_by_impu("sip:nobody@x")
        .await
        .expect("miss")
        .is_none());
    assert_eq!(store.cached_profiles(), 0, "unknown users are not cached");
    let p = store
        .profile_by_impu(&impu)
        .await
        .expect("read")
        .expect("some");
    assert_eq!(
        (p.imsi.as_str(), store.cached_profiles()),
        (s.imsi.as_str(), 1)
    );
    assert!(p.scscf_name.is_none());

    // SAR: DB and cache get the new assignment.
    store
        .set_assignment(&s.imsi, Some("sip:s1"), Some("s1.host"))
        .await
        .expect("assign");
    let p = store
        .profile_by_impu(&impu)
        .await
        .expect("read")
        .expect("some");
    assert_eq!(p.scscf_name.as_deref(), Some("sip:s1"));
    let db = store.get(&s.imsi).await.expect("get").expect("some");
    assert_eq!(db.scscf_name.as_deref(), Some("sip:s1"));

    // The same assignment again (a re-registration's SAR) writes nothing: a value put
    // in the DB behind the store's back survives it.
    sqlx::query("UPDATE subscribers SET scscf_name = 'sip:behind' WHERE imsi = $1")
        .bind(&s.imsi)
        .execute(store.pool())
        .await
        .expect("raw update");
    store
        .set_assignment(&s.imsi, Some("sip:s1"), Some("s1.host"))
        .await
        .expect("same");
    let db = store.get(&s.imsi).await.expect("get").expect("some");
    assert_eq!(db.scscf_name.as_deref(), Some("sip:behind"));
    // A different one is written.
    store
        .set_assignment(&s.imsi, None, None)
        .await
        .expect("clear");
    let db = store.get(&s.imsi).await.expect("get").expect("some");
    assert!(db.scscf_name.is_none());
    assert!(store
        .profile_by_impu(&impu)
        .await
        .expect("read")
        .expect("some")
        .scscf_name
        .is_none());
}

#[tokio::test]
async fn profile_cache_follows_provisioning_changes() {
    profile_cache_follows(&temp_db("profiles-evict"), Imsis::FIXED).await;
}

async fn profile_cache_follows(url: &str, ids: Imsis) {
    let store = Store::open(url).await.expect("open");
    let s = store.create(alice(&ids.nth(51))).await.expect("create");
    let tel = s.impus[1].uri.clone();
    assert!(
        !store
            .profile_by_impu(&tel)
            .await
            .expect("r")
            .expect("s")
            .impus[1]
            .barred
    );
    // This process's own update evicts at once.
    let mut impus = s.impus.clone();
    impus[1].barred = true;
    store
        .update(
            &s.imsi,
            SubscriberUpdate {
                impus: Some(impus),
                ..Default::default()
            },
        )
        .await
        .expect("update");
    assert!(
        store
            .profile_by_impu(&tel)
            .await
            .expect("r")
            .expect("s")
            .impus[1]
            .barred
    );
    // Another process's change (row + change log) is seen after a poll.
    sqlx::query("UPDATE subscribers SET scscf_name = 'sip:other' WHERE imsi = $1")
        .bind(&s.imsi)
        .execute(store.pool())
        .await
        .expect("raw update");
    sqlx::query("INSERT INTO changes (imsi) VALUES ($1)")
        .bind(&s.imsi)
        .execute(store.pool())
        .await
        .expect("change row");
    assert!(
        store
            .profile_by_impu(&tel)
            .await
            .expect("r")
            .expect("s")
            .scscf_name
            .is_none(),
        "cached until the poll"
    );
    assert!(store.poll_changes().await.expect("poll") >= 1);
    assert_eq!(
        store
            .profile_by_impu(&tel)
            .await
            .expect("r")
            .expect("s")
            .scscf_name
            .as_deref(),
        Some("sip:other")
    );
    // Deleted: gone from the cache too.
    assert!(store.delete(&s.imsi).await.expect("delete"));
    assert!(store.profile_by_impu(&tel).await.expect("r").is_none());
}

/// Every scenario above on PostgreSQL: a throwaway server started for this test (one
/// fresh database per scenario), or the database `HSS_TEST_POSTGRES_URL` names (fresh
/// IMSIs on every run).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store() {
    let pg = match tokio::task::spawn_blocking(|| {
        TestPostgres::from_env_or_start("HSS_TEST_POSTGRES_URL")
    })
    .await
    .expect("join")
    {
        Ok(pg) => pg,
        Err(e @ PgError::BinariesNotFound { .. }) => {
            println!("postgres_store: not run: {e}");
            return;
        }
        Err(e) => panic!("PostgreSQL for the test: {e}"),
    };
    println!("postgres_store on {}", pg.describe());
    let ids = || {
        if pg.is_fresh() {
            Imsis::FIXED
        } else {
            Imsis::random()
        }
    };
    let db = |name: &str| pg.database(name).expect("database");
    {
        let store = Store::open(&db("hss_backend")).await.expect("open");
        assert_eq!(store.backend(), Backend::Postgres);
    }
    crud(&db("hss_crud"), ids()).await;
    sqns_unique(&db("hss_sqn"), ids()).await;
    changes_visible(&db("hss_visible"), ids()).await;
    resync(&db("hss_resync"), ids()).await;
    assignment(&db("hss_assign"), ids()).await;
    profiles_cached(&db("hss_profiles"), ids()).await;
    profile_cache_follows(&db("hss_profiles_evict"), ids()).await;
    tokio::task::spawn_blocking(move || drop(pg))
        .await
        .expect("stop");
}
