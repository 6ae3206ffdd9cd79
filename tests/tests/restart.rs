//! Registration state survives restarts (issue 3): 1,000 distinct subscribers register
//! with IMS-AKA through SIPp (`reg_aka_retry.xml`: a UE whose RES SIPp truncated starts
//! over with a fresh challenge, so all 1,000 register); the S-CSCF and the P-CSCF are
//! restarted; every UE is still registered:
//! - at the P-CSCF: a terminating request to the UE's contact is forwarded on its flow
//!   (a responder on the UE's address answers it) instead of 480;
//! - at the S-CSCF: a reg-event SUBSCRIBE for the IMPU (sent as the P-CSCF would) gets a
//!   NOTIFY whose reginfo shows the registration active.

use std::collections::BTreeSet;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Result};
use ims_tests::lab::Lab;
use ims_tests::sipp::{scenario, Sipp};
use ims_tests::subscribers::{sipp_csv, Subscriber, DOMAIN};
use ims_tests::ue::TestUe;

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
    let before = registered_sets(&lab, &subs)?;
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
    let after = registered_sets(&lab, &subs)?;
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

fn summarize(codes: &[u16]) -> Vec<(u16, usize)> {
    let set: BTreeSet<u16> = codes.iter().copied().collect();
    set.into_iter()
        .map(|c| (c, codes.iter().filter(|x| **x == c).count()))
        .collect()
}

/// (IMPUs reachable through the P-CSCF, IMPUs active at the S-CSCF).
fn registered_sets(lab: &Lab, subs: &[Subscriber]) -> Result<(BTreeSet<String>, BTreeSet<String>)> {
    let pcscf = lab.pcscf_addr();
    let scscf: SocketAddr = format!("{}:5060", lab.ip(3)).parse()?;
    let mut via_p = BTreeSet::new();
    let mut at_s = BTreeSet::new();
    let mut probe = TestUe::new(&lab.ip(11), pcscf, "sip:probe@x", "probe", DOMAIN)?;
    for (i, s) in subs.iter().enumerate() {
        let contact = format!(
            "sip:{}@{}:{UE_PORT};transport=UDP",
            s.impu_user,
            lab.client_ip()
        );
        let opt = options(&probe, &contact, &format!("p{i}"), &pcscf);
        let status = send(&mut probe, pcscf, &opt)?;
        if status == 200 {
            via_p.insert(s.impu());
        } else if status != 480 && status != 404 {
            bail!("terminating OPTIONS to {contact}: unexpected {status}");
        }
        let sub = subscribe(&probe, &s.impu(), &format!("s{i}"));
        let status = send(&mut probe, scscf, &sub)?;
        if status == 200 {
            let notify = probe.wait_request("NOTIFY", Duration::from_secs(5))?;
            if notify.contains(&format!(r#"aor="{}""#, s.impu()))
                && notify.contains(r#"state="active""#)
            {
                at_s.insert(s.impu());
            }
        }
    }
    Ok((via_p, at_s))
}

fn send(ue: &mut TestUe, to: SocketAddr, msg: &str) -> Result<u16> {
    ue.sock.send_to(msg.as_bytes(), to)?;
    Ok(ue.final_response("probe")?.status)
}

fn options(ue: &TestUe, ruri: &str, id: &str, pcscf: &SocketAddr) -> String {
    let local = ue.sock.local_addr().expect("local addr");
    format!(
        "OPTIONS {ruri} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch=z9hG4bK{id}x{r}\r\n\
         Max-Forwards: 70\r\n\
         Route: <sip:term@{pcscf};lr>\r\n\
         From: <sip:probe@{DOMAIN}>;tag={id}\r\n\
         To: <{ruri}>\r\n\
         Call-ID: opt-{id}-{r}\r\n\
         CSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n",
        r = rand::random::<u32>()
    )
}

fn subscribe(ue: &TestUe, impu: &str, id: &str) -> String {
    let local = ue.sock.local_addr().expect("local addr");
    format!(
        "SUBSCRIBE {impu} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch=z9hG4bK{id}y{r}\r\n\
         Max-Forwards: 70\r\n\
         From: <{impu}>;tag={id}\r\n\
         To: <{impu}>\r\n\
         Call-ID: sub-{id}-{r}\r\n\
         CSeq: 1 SUBSCRIBE\r\n\
         P-Asserted-Identity: <{impu}>\r\n\
         Contact: <sip:probe@{local}>\r\n\
         Event: reg\r\n\
         Accept: application/reginfo+xml\r\n\
         Expires: 0\r\n\
         Content-Length: 0\r\n\r\n",
        r = rand::random::<u32>()
    )
}

/// Answers every request on the UEs' address with 200 OK, standing in for the UEs.
struct Responder {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Responder {
    fn start(addr: SocketAddr) -> Result<Responder> {
        let sock = UdpSocket::bind(addr)?;
        sock.set_read_timeout(Some(Duration::from_millis(100)))?;
        let stop = Arc::new(AtomicBool::new(false));
        let s2 = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut buf = vec![0u8; 65535];
            while !s2.load(Ordering::Relaxed) {
                let Ok((n, from)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                let raw = String::from_utf8_lossy(&buf[..n]).to_string();
                if raw.starts_with("SIP/2.0") {
                    continue;
                }
                let mut resp = String::from("SIP/2.0 200 OK\r\n");
                for line in raw.split("\r\n").take_while(|l| !l.is_empty()) {
                    let name = line
                        .split(':')
                        .next()
                        .unwrap_or("")
                        .trim()
                        .to_ascii_lowercase();
                    if ["via", "v", "from", "f", "to", "t", "call-id", "i", "cseq"]
                        .contains(&name.as_str())
                    {
                        resp.push_str(line);
                        resp.push_str("\r\n");
                    }
                }
                resp.push_str("Content-Length: 0\r\n\r\n");
                let _ = sock.send_to(resp.as_bytes(), from);
            }
        });
        Ok(Responder {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
