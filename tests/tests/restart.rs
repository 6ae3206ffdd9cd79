//! Registration state survives restarts (issue 3): 1,000 distinct subscribers register
//! with IMS-AKA through SIPp (`reg_aka_retry.xml`: a UE whose RES SIPp truncated starts
//! over with a fresh challenge, so all 1,000 register); the S-CSCF and the P-CSCF are
//! restarted; every UE is still registered:
//! - at the P-CSCF: a terminating request to the UE's contact is forwarded on its flow
//!   (a responder on the UE's address answers it) instead of 480;
//! - at the S-CSCF: a reg-event SUBSCRIBE for the IMPU (sent as the P-CSCF would) gets a
//!   NOTIFY whose reginfo shows the registration active.

use std::time::Duration;

use anyhow::Result;
use ims_tests::lab::Lab;
use ims_tests::probe::{registered_sets, summarize, Responder};
use ims_tests::sipp::{scenario, Sipp};
use ims_tests::subscribers::{sipp_csv, Subscriber};

const UES: u32 = 1000;
const UE_PORT: u16 = 5090;

#[test]
fn thousand_registrations_survive_scscf_and_pcscf_restart() -> Result<()> {
    let mut lab = Lab::start(34)?;
    let subs: Vec<Subscriber> = (1000..1000 + UES).map(Subscriber::nth).collect();
    for s in &subs {
        lab.provision(s)?;
    }
    let csv = lab.path().join("thousand.csv");
    std::fs::write(&csv, sipp_csv(&subs))?;
    let mut sipp = Sipp::new(
        scenario("reg_aka_retry.xml"),
        lab.pcscf_addr(),
        &lab.client_ip(),
        lab.path(),
    );
    sipp.inf = Some(csv);
    sipp.calls = UES;
    sipp.rate = 200;
    sipp.limit = 200;
    sipp.timeout = Duration::from_secs(120);
    sipp.extra = vec!["-p".into(), UE_PORT.to_string()];
    let out = sipp.run()?;
    println!(
        "SIPp: {} registered, {} failed (error codes {:?}) in {:.1} s",
        out.successful,
        out.failed,
        summarize(&out.error_codes),
        out.elapsed_s
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
    println!(
        "before restart: {} reachable through the P-CSCF, {} active at the S-CSCF",
        before.0.len(),
        before.1.len()
    );
    // Every subscriber is registered, and both roles agree.
    assert_eq!(
        before.0.len(),
        UES as usize,
        "reachable through the P-CSCF\n{}",
        lab.logs()
    );
    assert_eq!(before.0, before.1, "P-CSCF and S-CSCF disagree");

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
        before.0,
        "P-CSCF lost registrations in the restart\n{}",
        lab.logs()
    );
    assert_eq!(
        after.1,
        before.1,
        "S-CSCF lost registrations in the restart\n{}",
        lab.logs()
    );
    drop(responder);
    Ok(())
}
