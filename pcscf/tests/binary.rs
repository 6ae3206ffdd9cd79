//! The `pcscf` binary stops cleanly on SIGTERM (what systemd and the test labs send) and
//! on SIGINT: it logs the signal, flushes its store and exits 0 within a few seconds.

#![cfg(unix)]

use std::io::Read;
use std::process::Command;
use std::time::{Duration, Instant};

/// A port free for UDP and TCP on 127.0.0.1 (the configuration refuses port 0).
fn free_port() -> u16 {
    loop {
        let t = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = t.local_addr().unwrap().port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

fn run_and_signal(signal: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = dir.path().join("pcscf.toml");
    std::fs::write(
        &cfg,
        format!(
            "domain = \"ims.test\"\nicscf_uri = \"sip:127.0.0.1:5070\"\n[sip]\nlisten = [\"udp:127.0.0.1:{port}\", \"tcp:127.0.0.1:{port}\"]\n[database]\nurl = \"sqlite://{}\"\n",
            dir.path().join("p.sqlite").display(),
        ),
    )
    .unwrap();
    let log = dir.path().join("pcscf.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_pcscf"))
        .arg("--config")
        .arg(&cfg)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::create(dir.path().join("stderr.log")).unwrap())
        .spawn()
        .unwrap();
    let read = || {
        let mut s = String::new();
        for f in [log.clone(), dir.path().join("stderr.log")] {
            if let Ok(mut f) = std::fs::File::open(f) {
                let _ = f.read_to_string(&mut s);
            }
        }
        s
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !read().contains("P-CSCF serving") {
        assert!(
            Instant::now() < deadline,
            "pcscf did not start:\n{}",
            read()
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "pcscf exited:\n{}",
            read()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(5);
    let exit = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("pcscf still running 5 s after {signal}:\n{}", read());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = read();
    assert!(exit.success(), "exit {exit:?}:\n{out}");
    assert!(out.contains("P-CSCF stopped"), "{out}");
    out
}

#[test]
fn sigterm_stops_the_binary() {
    let out = run_and_signal("-TERM");
    assert!(out.contains("SIGTERM: stopping"), "{out}");
}

#[test]
fn sigint_stops_the_binary() {
    let out = run_and_signal("-INT");
    assert!(out.contains("SIGINT: stopping"), "{out}");
}
