//! The `scscf` binary: a bad configuration file stops start-up with exit code 2 and
//! names the file, the key and the reason.

use std::process::Command;

#[test]
fn bad_config_exits_2_with_file_key_reason() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scscf.toml");
    std::fs::write(
        &path,
        "domain = \"ims.test\"\n[registration]\nmin_expires = \"soon\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_scscf"))
        .arg("--config")
        .arg(&path)
        .output()
        .expect("scscf runs");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("scscf.toml"), "{err}");
    assert!(err.contains("registration.min_expires"), "{err}");
}

/// The binary starts, serves REGISTER (504 + Retry-After: no HSS is listening), and
/// stops cleanly on SIGTERM after flushing its store.
#[test]
fn starts_answers_and_stops_on_sigterm() {
    use std::net::UdpSocket;
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let port = {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap().port()
    };
    let hss_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let path = dir.path().join("scscf.toml");
    std::fs::write(
        &path,
        format!(
            "domain = \"ims.test\"\nuri = \"sip:127.0.0.1:{port}\"\n[sip]\nlisten = [\"udp:127.0.0.1:{port}\"]\n[diameter]\npeers = [\"127.0.0.1:{hss_port}\"]\nrequest_timeout_ms = 500\n[database]\nurl = \"sqlite://{}\"\n",
            dir.path().join("scscf.db").display()
        ),
    )
    .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_scscf"))
        .arg("--config")
        .arg(&path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let ue = UdpSocket::bind("127.0.0.1:0").unwrap();
    ue.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut spec = ims_scscf::testutil::RegisterSpec::alice();
    spec.via = ue.local_addr().unwrap().to_string();
    let mut answer = None;
    let t0 = Instant::now();
    let mut buf = [0u8; 4096];
    while answer.is_none() && t0.elapsed() < Duration::from_secs(20) {
        let _ = ue.send_to(spec.to_text().as_bytes(), ("127.0.0.1", port));
        if let Ok((n, _)) = ue.recv_from(&mut buf) {
            answer = Some(String::from_utf8_lossy(&buf[..n]).to_string());
        }
    }
    let answer = answer.expect("the S-CSCF answers");
    assert!(answer.starts_with("SIP/2.0 504 "), "{answer}");
    assert!(answer.contains("Retry-After:"), "{answer}");
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let t0 = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            assert!(st.success(), "clean exit on SIGTERM: {st:?}");
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        dir.path().join("scscf.db").exists(),
        "store created on start"
    );
}
