//! `ue-sim` against the real core on loopback, without IPsec (a lab without ESP, the
//! P-CSCF allowing unprotected registration): the UE side of IMS-AKA, reg-event,
//! re- and de-registration, and the per-UE failure reasons for a wrong K and an
//! unknown subscriber. The IPsec runs are in `gm_ipsec.rs` (user-mode Linux).

use std::process::Command;

use anyhow::{bail, Context, Result};
use ims_tests::lab::Lab;
use ims_tests::procs::bin;
use ims_tests::subscribers::Subscriber;

fn ue_sim(lab: &Lab, csv: &str, extra: &[&str]) -> Result<(bool, String)> {
    let path = lab
        .path()
        .join(format!("ue-sim-{}.csv", rand::random::<u32>()));
    std::fs::write(&path, csv)?;
    let out = Command::new(bin("ue-sim")?)
        .args([
            "--pcscf",
            &lab.pcscf_addr().to_string(),
            "--local",
            &lab.client_ip(),
            "--subscribers",
        ])
        .arg(&path)
        .args(["--timeout-ms", "4000"])
        .args(extra)
        .output()
        .context("running ue-sim")?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("--- ue-sim {extra:?} ---\n{text}");
    Ok((out.status.success(), text))
}

fn csv_line(s: &Subscriber, k_hex: &str) -> String {
    format!("{},{},{},,{}\n", s.imsi, k_hex, s.op_hex(), s.impu())
}

#[test]
fn ue_sim_registers_without_ipsec_on_loopback() -> Result<()> {
    let mut lab = Lab::start(47)?;
    let subs: Vec<Subscriber> = (701..711).map(Subscriber::nth).collect();
    for s in &subs {
        lab.provision(s)?;
    }
    let csv: String = subs.iter().map(|s| csv_line(s, &s.k_hex())).collect();

    // Ten UEs over UDP: register, reg-event NOTIFY, re-register, de-register.
    let (ok, out) = ue_sim(&lab, &csv, &["--rate", "0", "--rereg", "--dereg"])?;
    if !ok
        || !out.contains("registered=10/10 failed=0")
        || !out.contains("reregistered=10")
        || !out.contains("deregistered=10")
        || !out.contains("notified=10")
    {
        bail!("UDP run did not fully succeed:\n{out}\n{}", lab.logs());
    }

    // The same over TCP.
    let (ok, out) = ue_sim(
        &lab,
        &csv,
        &["--rate", "0", "--transport", "tcp", "--dereg"],
    )?;
    if !ok || !out.contains("registered=10/10 failed=0") || !out.contains("deregistered=10") {
        bail!("TCP run did not fully succeed:\n{out}\n{}", lab.logs());
    }

    // A K that differs from the HSS's: the UE refuses the network (MAC-A), says why.
    let wrong = csv_line(&subs[0], &"11".repeat(16));
    let (ok, out) = ue_sim(&lab, &wrong, &[])?;
    assert!(!ok, "a UE with a wrong K must fail");
    assert!(
        out.contains("AUTN MAC mismatch: K/OP differ from the HSS"),
        "reason missing:\n{out}"
    );

    // A subscriber the HSS does not know: the network refuses it, with the status.
    let unknown = Subscriber::nth(799);
    let (ok, out) = ue_sim(&lab, &csv_line(&unknown, &unknown.k_hex()), &[])?;
    assert!(!ok, "an unknown subscriber must fail");
    assert!(
        out.contains("to the REGISTER") && (out.contains("403") || out.contains("404")),
        "reason missing:\n{out}"
    );
    lab.assert_running()
}
