//! The `hss subscriber …` CLI against a temp SQLite file, run as the built binary.

use std::process::Command;

use crate::util::{temp_db, K, OP, OPC};

fn hss(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hss"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run hss");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn cli_add_show_list_delete() {
    let db = temp_db("cli");
    let (code, out, err) = hss(&[
        "subscriber",
        "add",
        "--imsi",
        "001010000000009",
        "--impu",
        "sip:carol@ims.test,tel:+15550009",
        "--k",
        K,
        "--op",
        OP,
        "--amf",
        "8000",
        "--sqn",
        "000000000040",
        "--db",
        &db,
    ]);
    assert_eq!(code, 0, "stdout {out} stderr {err}");
    assert!(out.contains("001010000000009"), "{out}");

    let (code, out, _) = hss(&["subscriber", "show", "001010000000009", "--db", &db]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).expect("show prints JSON");
    assert_eq!(
        v["impi"],
        "001010000000009@ims.mnc001.mcc001.3gppnetwork.org"
    );
    assert_eq!(v["impus"][1]["uri"], "tel:+15550009");
    assert_eq!(v["has_k"], true);
    for secret in [K, OP, OPC] {
        assert!(
            !out.to_ascii_lowercase().contains(secret),
            "secret in show output"
        );
    }

    // Global --db before the subcommand works too; list is tab-separated.
    let (code, out, _) = hss(&["--db", &db, "subscriber", "list"]);
    assert_eq!(code, 0);
    let cols: Vec<&str> = out.lines().next().expect("one line").split('\t').collect();
    assert_eq!(cols[0], "001010000000009");
    assert_eq!(cols[2], "sip:carol@ims.test,tel:+15550009");

    // Duplicate → 3, bad K → 2 naming --k, missing OP/OPc → 2, unknown → 4.
    let dup = hss(&[
        "subscriber",
        "add",
        "--imsi",
        "001010000000009",
        "--impu",
        "sip:x@ims.test",
        "--k",
        K,
        "--opc",
        OPC,
        "--db",
        &db,
    ]);
    assert_eq!(dup.0, 3, "{dup:?}");
    let bad_k = hss(&[
        "subscriber",
        "add",
        "--imsi",
        "001010000000010",
        "--impu",
        "sip:y@ims.test",
        "--k",
        "1234",
        "--opc",
        OPC,
        "--db",
        &db,
    ]);
    assert_eq!(bad_k.0, 2, "{bad_k:?}");
    assert!(bad_k.2.contains("--k"), "{}", bad_k.2);
    let no_op = hss(&[
        "subscriber",
        "add",
        "--imsi",
        "001010000000010",
        "--impu",
        "sip:y@ims.test",
        "--k",
        K,
        "--db",
        &db,
    ]);
    assert_eq!(no_op.0, 2, "{no_op:?}");
    let both = hss(&[
        "subscriber",
        "add",
        "--imsi",
        "001010000000010",
        "--impu",
        "sip:y@ims.test",
        "--k",
        K,
        "--op",
        OP,
        "--opc",
        OPC,
        "--db",
        &db,
    ]);
    assert_eq!(both.0, 2, "{both:?}");
    let bad_impu = hss(&[
        "subscriber",
        "add",
        "--imsi",
        "001010000000010",
        "--impu",
        "alice",
        "--k",
        K,
        "--op",
        OP,
        "--db",
        &db,
    ]);
    assert_eq!(bad_impu.0, 2, "{bad_impu:?}");
    assert!(bad_impu.2.contains("impu"), "{}", bad_impu.2);
    assert_eq!(
        hss(&["subscriber", "show", "001019999999999", "--db", &db]).0,
        4
    );

    let (code, out, _) = hss(&["subscriber", "delete", "001010000000009", "--db", &db]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        hss(&["subscriber", "delete", "001010000000009", "--db", &db]).0,
        4
    );
    let (_, out, _) = hss(&["subscriber", "list", "--db", &db]);
    assert!(out.trim().is_empty(), "{out}");
}
