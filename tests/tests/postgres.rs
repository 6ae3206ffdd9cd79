//! The whole core on PostgreSQL: the HSS, the S-CSCF and the P-CSCF each keep their
//! state in a database of their own on one throwaway PostgreSQL server (`ims-testkit`).
//! SIPp registers 50 subscribers with IMS-AKA through the P-, I- and S-CSCF
//! (`reg_aka_retry.xml`: a UE whose RES SIPp truncated starts over with a fresh
//! challenge); the S-CSCF and the P-CSCF are restarted; every subscriber is still
//! registered, checked as `restart.rs` does:
//! - at the P-CSCF: a terminating request to the UE's contact is forwarded on its flow
//!   (a responder on the UE's address answers it) instead of 480;
//! - at the S-CSCF: a reg-event SUBSCRIBE for the IMPU (sent as the P-CSCF would) gets a
//!   NOTIFY whose reginfo shows the registration active.
//!
//! The rows are read back from PostgreSQL with `psql` too, so the test fails if a role
//! quietly kept its state elsewhere.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use ims_testkit::bins::Bins;
use ims_testkit::{Error as PgError, TempPostgres};
use ims_tests::lab::{Databases, Lab};
use ims_tests::probe::{registered_sets, Responder};
use ims_tests::sipp::{scenario, Sipp};
use ims_tests::subscribers::{sipp_csv, Subscriber};

/// This test's loopback net (`127.0.37.x`).
const NET: u8 = 37;
const UES: u32 = 50;
const UE_PORT: u16 = 5090;

#[test]
fn registrations_on_postgres_survive_scscf_and_pcscf_restart() -> Result<()> {
    let pg = match TempPostgres::start() {
        Ok(pg) => pg,
        Err(e @ PgError::BinariesNotFound { .. }) => {
            println!("not run: {e}");
            return Ok(());
        }
        Err(e) => return Err(e).context("starting a throwaway PostgreSQL"),
    };
    let databases = Databases {
        hss: Some(pg.create_database("hss")?),
        scscf: Some(pg.create_database("scscf")?),
        pcscf: Some(pg.create_database("pcscf")?),
    };
    // Declared after `pg`: the roles stop before the server does.
    let mut lab = Lab::start_with(NET, databases.clone())?;
    assert_eq!(Some(lab.hss_db()), databases.hss);
    let subs: Vec<Subscriber> = (3000..3000 + UES).map(Subscriber::nth).collect();
    for s in &subs {
        lab.provision(s)?;
    }
    let csv = lab.path().join("postgres.csv");
    std::fs::write(&csv, sipp_csv(&subs))?;
    let mut sipp = Sipp::new(
        scenario("reg_aka_retry.xml"),
        lab.pcscf_addr(),
        &lab.client_ip(),
        lab.path(),
    );
    sipp.inf = Some(csv);
    sipp.calls = UES;
    sipp.rate = 50;
    sipp.limit = 50;
    sipp.timeout = Duration::from_secs(60);
    sipp.extra = vec!["-p".into(), UE_PORT.to_string()];
    let out = sipp.run()?;
    println!(
        "SIPp: {} registered, {} failed in {:.1} s",
        out.successful, out.failed, out.elapsed_s
    );
    assert_eq!(
        (out.successful, out.failed),
        (u64::from(UES), 0),
        "every subscriber must register: {out:?}\n{}",
        lab.logs()
    );

    // The UE address is free again now that SIPp has exited: answer for the UEs.
    let responder = Responder::start(format!("{}:{UE_PORT}", lab.client_ip()).parse()?)?;
    let before = registered_sets(&lab, &subs, UE_PORT)?;
    let all: BTreeSet<String> = subs.iter().map(Subscriber::impu).collect();
    assert_eq!(
        before.0,
        all,
        "reachable through the P-CSCF\n{}",
        lab.logs()
    );
    assert_eq!(before.1, all, "active at the S-CSCF\n{}", lab.logs());

    lab.restart_scscf()?;
    lab.restart_pcscf()?;
    lab.assert_running()?;
    let after = registered_sets(&lab, &subs, UE_PORT)?;
    println!(
        "after restart: {} reachable through the P-CSCF, {} active at the S-CSCF",
        after.0.len(),
        after.1.len()
    );
    assert_eq!(
        after.0,
        all,
        "P-CSCF lost registrations in the restart\n{}",
        lab.logs()
    );
    assert_eq!(
        after.1,
        all,
        "S-CSCF lost registrations in the restart\n{}",
        lab.logs()
    );
    drop(responder);

    // The state is in PostgreSQL, not in SQLite files next to the configs.
    let n = UES.to_string();
    let count = |db: &str, sql: &str| psql(&pg.url_for(db), sql);
    assert_eq!(count("hss", "SELECT count(*) FROM subscribers")?, n);
    assert_eq!(
        count(
            "hss",
            "SELECT count(*) FROM subscribers WHERE scscf_name IS NOT NULL"
        )?,
        n,
        "the S-CSCF assignment of every subscriber is stored"
    );
    assert_eq!(
        count(
            "scscf",
            "SELECT count(DISTINCT registration_id) FROM scscf_contact"
        )?,
        n
    );
    assert_eq!(
        count("pcscf", "SELECT count(*) FROM pcscf_registration")?,
        n
    );
    for file in ["hss.db", "scscf.db", "pcscf.db"] {
        assert!(
            !lab.path().join(file).exists(),
            "{file} created although the role was given PostgreSQL"
        );
    }
    lab.assert_running()?;
    drop(lab);
    drop(pg);
    Ok(())
}

/// `psql -c sql` on `url`: the single value it prints.
fn psql(url: &str, sql: &str) -> Result<String> {
    let bins = Bins::find()?;
    let out = Command::new(bins.get("psql"))
        .args([url, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .output()
        .context("running psql")?;
    if !out.status.success() {
        bail!(
            "psql {sql:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}
