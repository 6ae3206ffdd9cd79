//! Parse benchmark (not a timed test): a realistic IMS REGISTER (compact forms, six
//! Security-Client offers, AKA Authorization) parsed with validation plus typed
//! Via/Contact/Authorization, and a P-CSCF forwarding hop (parse + edits + print).
//! Plain `std::time` loop; prints the median of several runs and the machine.
//!
//! Run: `CARGO_TARGET_DIR=… cargo bench -p ims-sip-core --bench parse`
#![allow(clippy::disallowed_methods)] // a benchmark reads the clock

use std::hint::black_box;
use std::time::Instant;

use bytes::Bytes;
use ims_sip_core::header::{Authorization, Contact, TypedHeader};
use ims_sip_core::Message;

const REGISTER: &[u8] = include_bytes!("../testdata/handsets/qualcomm-initial-register.sip");
const PROTECTED: &[u8] = include_bytes!("../testdata/handsets/huawei-protected-register.sip");

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    format!(
        "{cpu}, {cores} cores available, {} {}",
        std::env::consts::OS,
        std::env::consts::ARCH
    )
}

fn parse_typed(buf: &Bytes) -> usize {
    let m = Message::parse(buf.clone()).expect("parses");
    let via = m.top_via().expect("via").expect("via parses");
    let contact = m.typed::<Contact>().expect("contact").expect("contact parses");
    let auth = m.typed::<Authorization>().expect("auth").expect("auth parses");
    via.branch().map_or(0, str::len) + contact.addrs().len() + auth.params.0.len()
}

fn proxy_hop(buf: &Bytes) -> usize {
    let m = Message::parse(buf.clone()).expect("parses");
    let mut e = m.edit();
    e.prepend("Via", "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKbenchmark0001");
    e.prepend("Path", "<sip:term@pcscf.ims.test;lr>");
    e.decrement_max_forwards().expect("mf");
    e.append("P-Charging-Vector", "icid-value=\"bench\"");
    e.finish().len()
}

fn measure(name: &str, runs: usize, iters: usize, f: impl Fn() -> usize) -> f64 {
    let mut rates = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        let mut acc = 0usize;
        for _ in 0..iters {
            acc = acc.wrapping_add(black_box(f()));
        }
        black_box(acc);
        rates.push(iters as f64 / start.elapsed().as_secs_f64());
    }
    rates.sort_by(|a, b| a.total_cmp(b));
    let median = rates[rates.len() / 2];
    println!(
        "{name:<48} median {:>10.0} msg/s  (min {:.0}, max {:.0}; {runs} runs × {iters})",
        median,
        rates[0],
        rates[rates.len() - 1]
    );
    median
}

fn main() {
    println!("machine: {}", machine());
    let reg = Bytes::from_static(REGISTER);
    let prot = Bytes::from_static(PROTECTED);
    assert!(parse_typed(&reg) > 0 && parse_typed(&prot) > 0);
    let iters: usize = std::env::var("BENCH_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    measure("index only (Message::index), REGISTER 1.7 kB", 7, iters, || {
        Message::index(reg.clone()).map(|m| m.header_count()).unwrap_or(0)
    });
    measure("parse+validate, REGISTER 1.7 kB", 7, iters, || {
        Message::parse(reg.clone()).map(|m| m.header_count()).unwrap_or(0)
    });
    measure(
        "parse+validate + typed Via/Contact/Authorization",
        7,
        iters,
        || parse_typed(&reg),
    );
    measure("same, protected REGISTER (AKA response)", 7, iters, || {
        parse_typed(&prot)
    });
    measure("P-CSCF hop: parse + 4 edits + print", 7, iters, || {
        proxy_hop(&reg)
    });
    let auth = Message::parse(prot.clone()).expect("parses");
    let value = auth
        .header(ims_sip_core::HeaderName::Authorization)
        .unwrap_or("")
        .to_string();
    measure("Authorization header alone (typed parse)", 7, iters, || {
        Authorization::parse(&value)
            .map(|a| a.params.0.len())
            .unwrap_or(0)
    });
}
