//! Probes of registration state in a running lab, shared by the restart tests: is each
//! subscriber still reachable through the P-CSCF (a terminating OPTIONS to its contact is
//! forwarded on its flow, where a [`Responder`] stands in for the UEs, instead of 480),
//! and still active at the S-CSCF (a reg-event SUBSCRIBE, sent as the P-CSCF would, gets
//! a NOTIFY whose reginfo shows it active; RFC 3680).

use std::collections::BTreeSet;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Result};

use crate::lab::Lab;
use crate::subscribers::{Subscriber, DOMAIN};
use crate::ue::TestUe;

/// Counts per status code, for failure messages.
pub fn summarize(codes: &[u16]) -> Vec<(u16, usize)> {
    let set: BTreeSet<u16> = codes.iter().copied().collect();
    set.into_iter()
        .map(|c| (c, codes.iter().filter(|x| **x == c).count()))
        .collect()
}

/// (IMPUs reachable through the P-CSCF, IMPUs active at the S-CSCF).
pub fn registered_sets(
    lab: &Lab,
    subs: &[Subscriber],
    ue_port: u16,
) -> Result<(BTreeSet<String>, BTreeSet<String>)> {
    let pcscf = lab.pcscf_addr();
    let scscf: SocketAddr = format!("{}:5060", lab.ip(3)).parse()?;
    let mut via_p = BTreeSet::new();
    let mut at_s = BTreeSet::new();
    let mut probe = TestUe::new(&lab.ip(11), pcscf, "sip:probe@x", "probe", DOMAIN)?;
    for (i, s) in subs.iter().enumerate() {
        let contact = format!(
            "sip:{}@{}:{ue_port};transport=UDP",
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
pub struct Responder {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Responder {
    /// Binds `addr` and answers until dropped.
    pub fn start(addr: SocketAddr) -> Result<Responder> {
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
                let resp = crate::ue::ok_for(&raw);
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
