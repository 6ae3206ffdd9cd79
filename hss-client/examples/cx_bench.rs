//! MAR→MAA round trips per second through CxClient and the ims-diameter server,
//! with a handler that answers from memory (measures the Diameter stack alone,
//! not an HSS store).
//!
//! `cargo run --release -p ims-hss-client --example cx_bench -- [seconds] [concurrency] [connections]`
//! With `--remote host:port` it benchmarks an external Cx server instead;
//! `--serve host:port` only runs the in-memory answerer (to measure the server
//! process alone, e.g. with `/usr/bin/time`), for `--serve-secs` seconds.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ims_diameter::codec::Message;
use ims_diameter::transport::{LocalNode, PeerInfo, RequestHandler, Server, ServerConfig};
use ims_hss_client::*;

struct Answerer;

#[async_trait::async_trait]
impl RequestHandler for Answerer {
    async fn handle(&self, req: Message, _peer: &PeerInfo) -> Message {
        match MultimediaAuthRequest::from_message(&req) {
            Err(e) => e.to_answer(&req, "bench-hss", "ims.test"),
            Ok(mar) => MultimediaAuthAnswer {
                routing: AnswerRouting {
                    origin_host: "bench-hss".into(),
                    origin_realm: "ims.test".into(),
                    ..Default::default()
                },
                outcome: CxOutcome::Success,
                user_name: Some(mar.user_name),
                public_identity: Some(mar.public_identity),
                sip_number_auth_items: Some(1),
                sip_auth_data_items: vec![SipAuthDataItem {
                    item_number: Some(1),
                    scheme: Some(SipAuthScheme::DigestAkaV1Md5),
                    authenticate: Some(Bytes::from_static(&[1; 32])),
                    authorization: Some(Bytes::from_static(&[2; 8])),
                    confidentiality_key: Some(Bytes::from_static(&[3; 16])),
                    integrity_key: Some(Bytes::from_static(&[4; 16])),
                    ..Default::default()
                }],
            }
            .to_message(&req),
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let all: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| {
        all.iter()
            .position(|a| a == name)
            .and_then(|i| all.get(i + 1))
            .cloned()
    };
    let remote = flag("--remote");
    if let Some(addr) = flag("--serve") {
        let secs: u64 = flag("--serve-secs")
            .and_then(|s| s.parse().ok())
            .unwrap_or(30);
        let server = Server::bind(
            addr.parse()?,
            LocalNode::cx("bench-hss", "ims.test", "127.0.0.1".parse()?),
            Arc::new(Answerer),
        )
        .await?;
        println!("serving on {}", server.local_addr()?);
        server
            .run(tokio::time::sleep(Duration::from_secs(secs)))
            .await?;
        return Ok(());
    }
    // Positional numbers: seconds, concurrency, connections.
    let nums: Vec<u64> = all.iter().filter_map(|a| a.parse().ok()).collect();
    let secs = nums.first().copied().unwrap_or(5);
    let conc = nums.get(1).copied().unwrap_or(64) as usize;
    let conns = nums.get(2).copied().unwrap_or(1) as usize;

    let addr = match remote {
        Some(r) => r,
        None => {
            let server = Server::bind(
                "127.0.0.1:0".parse()?,
                LocalNode::cx("bench-hss", "ims.test", "127.0.0.1".parse()?),
                Arc::new(Answerer),
            )
            .await?
            .with_config(ServerConfig::default());
            let a = server.local_addr()?.to_string();
            tokio::spawn(server.run(std::future::pending()));
            a
        }
    };
    let mut cfg = CxClientConfig::new(vec![addr; conns], "bench-scscf", "ims.test", "ims.test");
    cfg.selection = PeerSelection::RoundRobin;
    cfg.request_timeout = Duration::from_secs(5);
    let client = CxClient::start(cfg, None);
    client.wait_ready(Duration::from_secs(5)).await?;
    for p in client.peers() {
        p.wait_open(Duration::from_secs(5)).await?;
    }
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for w in 0..conc {
        let c = client.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(100_000);
            let mut errors = 0u64;
            let user = format!("user{w}@ims.test");
            let impu = format!("sip:user{w}@ims.test");
            while Instant::now() < deadline {
                let t = Instant::now();
                let r = c
                    .mar(MultimediaAuthRequest::new(
                        &user,
                        &impu,
                        "sip:scscf",
                        SipAuthScheme::DigestAkaV1Md5,
                        1,
                    ))
                    .await;
                match r {
                    Ok(a) if a.outcome.is_success() => lat.push(t.elapsed()),
                    _ => errors += 1,
                }
            }
            (lat, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await?;
        all.extend(l);
        errors += e;
    }
    all.sort_unstable();
    let n = all.len();
    let pct = |p: f64| {
        all.get(((n as f64 * p) as usize).min(n.saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    println!(
        "MAR->MAA: {} ok, {} errors in {} s = {:.0}/s over {} connection(s), concurrency {}; p50 {:?} p99 {:?} max {:?}",
        n,
        errors,
        secs,
        n as f64 / secs as f64,
        conns,
        conc,
        pct(0.5),
        pct(0.99),
        all.last().copied().unwrap_or_default()
    );
    client.close().await;
    Ok(())
}
