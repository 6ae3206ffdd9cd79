//! A `TempPostgres` is a real server: `psql` (the PostgreSQL client from the same
//! package) reaches it over TCP and its unix socket, each database is separate, and
//! dropping it stops the server and removes its directory.

use std::net::TcpStream;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::Command;

use ims_testkit::bins::Bins;
use ims_testkit::{Error, TempPostgres, TestPostgres};

/// `psql -c sql` against `target` (a URL, or `-h <socket dir>` arguments); its output.
fn psql(target: &[&str], sql: &str) -> Result<String, String> {
    let bins = Bins::find().map_err(|e| e.to_string())?;
    let out = Command::new(bins.get("psql"))
        .args(target)
        .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

fn start() -> Option<TempPostgres> {
    match TempPostgres::start() {
        Ok(pg) => Some(pg),
        Err(e @ Error::BinariesNotFound { .. }) => {
            println!("not run: {e}");
            None
        }
        Err(e) => panic!("TempPostgres::start: {e}"),
    }
}

#[test]
fn server_runs_databases_are_separate_and_drop_cleans_up() {
    let Some(pg) = start() else { return };
    let port = pg.port();
    let dir: PathBuf = pg.socket_dir().to_path_buf();
    assert!(pg.url().starts_with("postgres://postgres@127.0.0.1:"));

    let a = pg.create_database("first_db").expect("create first_db");
    let b = pg.create_database("second_db").expect("create second_db");
    assert_eq!(a, format!("postgres://postgres@127.0.0.1:{port}/first_db"));
    psql(&[&a], "CREATE TABLE t (v int); INSERT INTO t VALUES (42)").expect("write in a");
    assert_eq!(psql(&[&a], "SELECT v FROM t").expect("read a"), "42");
    assert!(
        psql(&[&b], "SELECT v FROM t").is_err(),
        "second_db must not see first_db's table"
    );
    assert!(
        pg.create_database("first_db").is_err(),
        "a database name is taken once"
    );
    assert!(matches!(
        pg.create_database("bad-name"),
        Err(Error::BadName(_))
    ));

    // The unix socket is in the directory too.
    assert!(dir.join(format!(".s.PGSQL.{port}")).exists());
    let sock = dir.display().to_string();
    let via_socket = psql(
        &[
            "-h",
            &sock,
            "-p",
            &port.to_string(),
            "-U",
            "postgres",
            "-d",
            "first_db",
        ],
        "SELECT count(*) FROM t",
    )
    .expect("psql over the unix socket");
    assert_eq!(via_socket, "1");

    // PostgreSQL refuses root: as root the cluster belongs to the `postgres` user.
    let owner = std::fs::metadata(dir.join("data")).expect("data dir").uid();
    let self_uid = std::fs::metadata("/proc/self").expect("/proc/self").uid();
    if self_uid == 0 {
        assert_ne!(owner, 0, "the data directory must not belong to root");
    } else {
        assert_eq!(owner, self_uid);
    }

    drop(pg);
    assert!(!dir.exists(), "{} removed on drop", dir.display());
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "server on port {port} stopped on drop"
    );
}

#[test]
fn two_servers_run_side_by_side() {
    let (Some(one), Some(two)) = (start(), start()) else {
        return;
    };
    assert_ne!(one.port(), two.port());
    psql(&[&one.url()], "CREATE DATABASE only_on_one").expect("create on one");
    let list = "SELECT count(*) FROM pg_database WHERE datname = 'only_on_one'";
    assert_eq!(psql(&[&one.url()], list).expect("one"), "1");
    assert_eq!(psql(&[&two.url()], list).expect("two"), "0");
}

#[test]
fn env_url_wins_over_a_throwaway_server() {
    let var = "IMS_TESTKIT_SELFTEST_URL";
    // Only this test touches this variable.
    std::env::set_var(var, "postgres://u:pw@db.example:5432/x");
    let tp = TestPostgres::from_env_or_start(var).expect("from env");
    assert!(!tp.is_fresh());
    assert_eq!(
        tp.database("anything").expect("url"),
        "postgres://u:pw@db.example:5432/x"
    );
    assert!(!tp.describe().contains("pw"), "{}", tp.describe());
    std::env::remove_var(var);
    let tp = match TestPostgres::from_env_or_start(var) {
        Ok(tp) => tp,
        Err(e @ Error::BinariesNotFound { .. }) => {
            println!("not run: {e}");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    assert!(tp.is_fresh());
    let url = tp.database("fresh_one").expect("database");
    assert_eq!(
        psql(&[&url], "SELECT current_database()").expect("psql"),
        "fresh_one"
    );
}
