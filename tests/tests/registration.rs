//! IMS registration end to end (issue 3): SIPp, a SIP implementation nobody here wrote,
//! registers with IMS-AKA (AKAv1-MD5, RFC 3310) through the real P-CSCF, I-CSCF and
//! S-CSCF processes against the real HSS, which SIPp checks independently (it verifies
//! the network's AUTN with its own Milenage before answering).
//!
//! SIPp 3.6.1 cuts RES at a zero byte, so about 3% of vectors make it answer wrongly
//! whatever the core does (DESIGN.md); those runs show up as a 403 and are retried
//! with fresh vectors, and counted apart.

use std::time::Duration;

use anyhow::{bail, Result};
use ims_tests::lab::Lab;
use ims_tests::sipp::{scenario, Sipp, Transport};
use ims_tests::subscribers::{sipp_csv, Subscriber, DOMAIN};
use ims_tests::ue::{Sim, TestUe};

/// Runs `scen` for one subscriber, retrying (fresh vectors) when SIPp's RES truncation
/// produced a 403. Returns the number of such retries.
fn run_one(lab: &mut Lab, scen: &str, sub: &Subscriber, transport: Transport) -> Result<u32> {
    let csv = lab.path().join(format!("{}.csv", sub.imsi));
    std::fs::write(&csv, sipp_csv(std::slice::from_ref(sub)))?;
    let mut truncation_retries = 0;
    for _ in 0..4 {
        let mut s = Sipp::new(
            scenario(scen),
            lab.pcscf_addr(),
            &lab.client_ip(),
            lab.path(),
        );
        s.inf = Some(csv.clone());
        s.transport = transport;
        let out = s.run()?;
        if out.successful == 1 && out.failed == 0 {
            return Ok(truncation_retries);
        }
        if out.error_codes.iter().all(|c| *c == 403) && !out.error_codes.is_empty() {
            truncation_retries += 1;
            continue;
        }
        bail!(
            "SIPp {scen} failed: {}\n{}\n--- SIPp messages ---\n{}\n{}",
            out.stdout_tail,
            out.errors_tail,
            out.messages_tail,
            lab.logs()
        );
    }
    bail!(
        "SIPp {scen}: four 403s in a row, more than RES truncation explains\n{}",
        lab.logs()
    )
}

#[test]
fn sipp_registers_reregisters_and_deregisters_with_aka_over_udp_and_tcp() -> Result<()> {
    let mut lab = Lab::start(31)?;
    let sub = Subscriber::nth(1);
    lab.provision(&sub)?;
    run_one(&mut lab, "reg_lifecycle.xml", &sub, Transport::Udp)?;
    let sub2 = Subscriber::nth(2);
    lab.provision(&sub2)?;
    run_one(&mut lab, "reg_lifecycle.xml", &sub2, Transport::Tcp)?;
    lab.assert_running()
}

fn sim_for(sub: &Subscriber) -> Sim {
    Sim {
        k: sub.k_raw.as_bytes().try_into().expect("16-byte K"),
        op: sub.op_raw.as_bytes().try_into().expect("16-byte OP"),
        sqn_ms: 0,
    }
}

/// A UE whose SQN is ahead of the HSS's answers the challenge with `auts`
/// (TS 33.102 §6.3.5); the S-CSCF re-synchronises through the HSS and the UE
/// registers with the fresh vector. A UE with the wrong K gets 403 and no binding.
#[test]
fn auts_resynchronisation_and_wrong_k() -> Result<()> {
    let lab = Lab::start(32)?;
    let sub = Subscriber::nth(3);
    lab.provision(&sub)?;

    // SQN far ahead of the HSS's: the first challenge is a synchronisation failure.
    let mut sim = sim_for(&sub);
    sim.sqn_ms = 1 << 40;
    let mut ue = TestUe::new(
        &lab.client_ip(),
        lab.pcscf_addr(),
        &sub.impu(),
        &sub.impi,
        DOMAIN,
    )?;
    let (r, resynced) = ue.register_aka(&mut sim, 600)?;
    assert!(
        resynced,
        "the SQN mismatch must have been signalled with auts"
    );
    assert_eq!(
        r.status,
        200,
        "after re-synchronisation: {}\n{}",
        r.raw,
        lab.logs()
    );
    assert!(
        sim.sqn_ms > 1 << 40,
        "the fresh vector carries an SQN above SQN_MS"
    );

    // Wrong K: the UE cannot verify AUTN (MAC failure) and answers with an empty
    // password (RFC 3310 §3.2): 403, never 200.
    let other = Subscriber::nth(4);
    lab.provision(&other)?;
    let mut wrong = sim_for(&other);
    wrong.k[0] ^= 0x01;
    let mut ue2 = TestUe::new(
        &lab.client_ip(),
        lab.pcscf_addr(),
        &other.impu(),
        &other.impi,
        DOMAIN,
    )?;
    let (r, _) = ue2.register_aka(&mut wrong, 600)?;
    assert_eq!(r.status, 403, "wrong K: {}", r.raw);

    // A wrong RES computed from a valid challenge: 403 as well.
    let r1 = ue2.register(None, 600)?;
    assert_eq!(r1.status, 401, "{}", r1.raw);
    let a = ue2.authorization(&r1, b"not-the-RES", None)?;
    let r2 = ue2.register(Some(&a), 600)?;
    assert_eq!(r2.status, 403, "wrong RES: {}", r2.raw);
    Ok(())
}

/// reg-event (RFC 3680): after registering, the UE subscribes to its own reg event
/// along the Service-Route and gets 200 plus a NOTIFY with a full reginfo document
/// naming its IMPU and contact as active; de-registering brings a NOTIFY with the
/// registration terminated.
#[test]
fn reg_event_subscribe_and_notify() -> Result<()> {
    let lab = Lab::start(33)?;
    let sub = Subscriber::nth(5);
    lab.provision(&sub)?;
    let mut sim = sim_for(&sub);
    let mut ue = TestUe::new(
        &lab.client_ip(),
        lab.pcscf_addr(),
        &sub.impu(),
        &sub.impi,
        DOMAIN,
    )?;
    let (r, _) = ue.register_aka(&mut sim, 600)?;
    assert_eq!(r.status, 200, "{}\n{}", r.raw, lab.logs());
    let route = r
        .header("Service-Route")
        .ok_or_else(|| anyhow::anyhow!("200 without Service-Route: {}", r.raw))?;
    let local = ue.sock.local_addr()?;

    let s = ue.subscribe_reg(&route, 600)?;
    assert_eq!(s.status, 200, "SUBSCRIBE: {}\n{}", s.raw, lab.logs());
    let notify = ue.wait_request("NOTIFY", Duration::from_secs(10))?;
    let body = reginfo_body(&notify)?;
    ims_tests::reginfo::validate(&body)?;
    assert!(body.contains("urn:ietf:params:xml:ns:reginfo"), "{body}");
    assert!(body.contains(r#"state="full""#), "{body}");
    let reg = registration_element(&body, &sub.impu())
        .ok_or_else(|| anyhow::anyhow!("no <registration aor=\"{}\">: {body}", sub.impu()))?;
    assert!(reg.contains(r#"state="active""#), "{reg}");
    assert!(
        reg.contains(&format!("sip:ue@{local}")),
        "contact missing: {reg}"
    );
    assert!(header_of(&notify, "Subscription-State")
        .unwrap_or_default()
        .starts_with("active"));

    // De-register: the NOTIFY says terminated.
    let (r, _) = ue.register_aka(&mut sim, 0)?;
    assert_eq!(r.status, 200, "de-register: {}", r.raw);
    let notify = ue.wait_request("NOTIFY", Duration::from_secs(10))?;
    let body = reginfo_body(&notify)?;
    ims_tests::reginfo::validate(&body)?;
    let reg = registration_element(&body, &sub.impu())
        .ok_or_else(|| anyhow::anyhow!("no registration element: {body}"))?;
    assert!(reg.contains(r#"state="terminated""#), "{reg}");
    Ok(())
}

fn header_of(raw: &str, name: &str) -> Option<String> {
    raw.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}

fn reginfo_body(raw: &str) -> Result<String> {
    let ct = header_of(raw, "Content-Type")
        .or_else(|| header_of(raw, "c"))
        .unwrap_or_default();
    if !ct.contains("application/reginfo+xml") {
        bail!("NOTIFY without reginfo body: {raw}");
    }
    Ok(raw
        .split_once("\r\n\r\n")
        .map(|x| x.1.to_string())
        .unwrap_or_default())
}

/// The `<registration …>…</registration>` element for `aor`.
fn registration_element(body: &str, aor: &str) -> Option<String> {
    let mut rest = body;
    while let Some(i) = rest.find("<registration") {
        let el = &rest[i..];
        let end = el
            .find("</registration>")
            .map(|e| e + 15)
            .unwrap_or(el.len());
        let el = &el[..end];
        if el.contains(&format!(r#"aor="{aor}""#)) {
            return Some(el.to_string());
        }
        rest = &rest[i + end..];
    }
    None
}

/// The HSS goes away (issue 3, bad input): a REGISTER gets a 5xx with `Retry-After`
/// within the transaction timer instead of hanging, no role exits, and registration works
/// again by itself once the HSS is back (the Cx clients reconnect).
#[test]
fn hss_outage_gives_5xx_with_retry_after_and_service_resumes() -> Result<()> {
    let mut lab = Lab::start(36)?;
    let (a, b) = (Subscriber::nth(7), Subscriber::nth(8));
    lab.provision(&a)?;
    lab.provision(&b)?;
    let ue = |lab: &Lab, s: &Subscriber| {
        TestUe::new(
            &lab.client_ip(),
            lab.pcscf_addr(),
            &s.impu(),
            &s.impi,
            DOMAIN,
        )
    };
    let mut ue_a = ue(&lab, &a)?;
    let (r, _) = ue_a.register_aka(&mut sim_for(&a), 600)?;
    assert_eq!(
        r.status,
        200,
        "before the outage: {}\n{}",
        r.raw,
        lab.logs()
    );

    lab.stop_hss();
    let mut ue_b = ue(&lab, &b)?;
    // The answer must come within the P-CSCF's Timer F (64*T1 = 32 s).
    ue_b.sock.set_read_timeout(Some(Duration::from_secs(32)))?;
    let t0 = std::time::Instant::now();
    let r = ue_b.register(None, 600)?;
    let took = t0.elapsed();
    println!(
        "REGISTER during the HSS outage: {} after {took:?}",
        r.status
    );
    assert!(
        (500..600).contains(&r.status),
        "want a 5xx while the HSS is down, got: {}\n{}",
        r.raw,
        lab.logs()
    );
    assert!(
        r.header("Retry-After").is_some(),
        "5xx without Retry-After: {}",
        r.raw
    );
    // No CSCF went down with the HSS.
    lab.pcscf.assert_running()?;
    lab.icscf.assert_running()?;
    lab.scscf.assert_running()?;

    lab.start_hss()?;
    // Service resumes by itself: the Cx clients reconnect with backoff (≤ 10 s).
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    let mut sim_b = sim_for(&b);
    loop {
        let (r, _) = ue_b.register_aka(&mut sim_b, 600)?;
        if r.status == 200 {
            break;
        }
        if std::time::Instant::now() > deadline {
            bail!(
                "registration did not resume after the HSS came back: {}\n{}",
                r.raw,
                lab.logs()
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    // The UE registered before the outage re-registers without trouble.
    let (r, _) = ue_a.register_aka(&mut sim_for(&a), 600)?;
    assert_eq!(r.status, 200, "after the outage: {}", r.raw);
    Ok(())
}
