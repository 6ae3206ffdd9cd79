//! Interop: python-diameter 0.9.0 (PyPI `python-diameter`, import `diameter`), a
//! Diameter stack nobody here wrote, as the Cx client of our HSS: CER/CEA, UAR, MAR.
//! The script (tests/py/cx_client.py) checks the answers' structure; this test checks
//! each vector it printed with Milenage from the subscriber's keys.

use std::process::Command;

use ims_hss::milenage::check_autn;

use crate::harness::*;
use crate::util::temp_db;

fn hex16(s: &str) -> [u8; 16] {
    let mut out = [0u8; 16];
    hex::decode_to_slice(s, &mut out).expect("16 hex bytes");
    out
}

fn field<'a>(line: &'a str, name: &str) -> &'a str {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("{name}= missing in {line:?}"))
}

fn require_python_diameter() {
    let probe = Command::new("python3")
        .args([
            "-c",
            "import diameter, importlib.metadata as m; print(m.version('python-diameter'))",
        ])
        .current_dir(std::env::temp_dir())
        .output();
    match probe {
        Err(e) => panic!(
            "python3 is required for the interop test and could not be run ({e}); \
             install python3 and `pip install python-diameter==0.9.0`"
        ),
        Ok(o) if !o.status.success() => panic!(
            "the PyPI package python-diameter (import `diameter`) is required for the interop \
             test: `pip install python-diameter==0.9.0` ({})",
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Ok(o) => {
            let v = String::from_utf8_lossy(&o.stdout);
            assert_eq!(
                v.trim(),
                "0.9.0",
                "python-diameter 0.9.0 expected, found {v}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_diameter_client_gets_valid_uaa_and_maa() {
    require_python_diameter();
    let hss = start(&temp_db("interop")).await;
    let s = hss
        .store()
        .create(subscriber("001010000000401"))
        .await
        .expect("create");
    let (k, opc) = keys(&s);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/cx_client.py");
    let port = hss.diameter_addr().port().to_string();
    let (impi, impu) = (s.impi.clone(), s.impus[0].uri.clone());
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .args([script, "--port", &port, "--impi", &impi, "--impu", &impu])
            .current_dir(std::env::temp_dir())
            .output()
            .expect("run python3")
    })
    .await
    .expect("join");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        out.status.success() && stdout.lines().any(|l| l == "OK"),
        "python-diameter client failed (exit {:?})\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status.code()
    );
    assert!(stdout.contains("CEA received"), "{stdout}");
    assert!(
        stdout.contains("UAA 2001 server-name=sip:scscf.ims.test:6060"),
        "{stdout}"
    );
    let vectors: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("VECTOR "))
        .collect();
    assert_eq!(vectors.len(), 2, "{stdout}");
    let mut sqns = Vec::new();
    for v in vectors {
        let rand = hex16(field(v, "rand"));
        let autn = hex16(field(v, "autn"));
        let ue = check_autn(&k, &opc, &rand, &autn).expect("AUTN from the MAA verifies");
        assert_eq!(field(v, "xres"), hex::encode(ue.res));
        assert_eq!(field(v, "ck"), hex::encode(ue.ck.expose()));
        assert_eq!(field(v, "ik"), hex::encode(ue.ik.expose()));
        sqns.push(ue.sqn);
    }
    assert_ne!(sqns[0], sqns[1]);
    hss.shutdown().await;
}
