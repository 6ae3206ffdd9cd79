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
