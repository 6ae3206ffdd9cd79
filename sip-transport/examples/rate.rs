//! Rough throughput of the transport + transaction layers on loopback: a client node
//! sends REGISTER-sized requests (UDP or TCP) to a server node that answers 200 OK in
//! its server transaction. Not a timed test; prints requests/s.
//!
//! `cargo run --release -p ims-sip-transport --example rate -- [udp|tcp] [requests] [concurrency]`

use std::sync::Arc;
use std::time::{Duration, Instant};

use ims_sip_core::builder::{new_branch, RequestBuilder, ResponseBuilder};
use ims_sip_core::{Method, StatusCode};
use ims_sip_transport::transaction::{TimerConfig, TransactionLayer, TransactionOptions};
use ims_sip_transport::{channel, Target, Transport, TransportLayer, TransportOptions};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let transport = match args.get(1).map(String::as_str) {
        Some("tcp") => Transport::Tcp,
        _ => Transport::Udp,
    };
    let total: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(50_000);
    let conc: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(200);
    let timers = TimerConfig::default();
    let local = "127.0.0.1:0".parse()?;

    let (h, mut srx) = channel(65_536);
    let st = TransportLayer::without_handler(TransportOptions::default());
    let server_addr = st.bind(transport, local).await?;
    let server = TransactionLayer::new(st, timers, TransactionOptions::default(), Arc::new(h));
    tokio::spawn({
        let server = server.clone();
        async move {
            while let Some(inc) = srx.recv().await {
                let server = server.clone();
                let resp = ResponseBuilder::new(&inc.message, StatusCode::OK)
                    .to_tag("s")
                    .build_message();
                if let Ok(resp) = resp {
                    tokio::spawn(async move {
                        let _ = server.respond(&inc, &resp).await;
                    });
                }
            }
        }
    });

    let (h, _crx) = channel(1024);
    let ct = TransportLayer::without_handler(TransportOptions::default());
    let client_addr = ct.bind(transport, local).await?;
    let client = TransactionLayer::new(ct, timers, TransactionOptions::default(), Arc::new(h));
    let target = Target::new(transport, server_addr);
    let via_t = if transport == Transport::Tcp {
        "TCP"
    } else {
        "UDP"
    };

    let started = Instant::now();
    let sem = Arc::new(tokio::sync::Semaphore::new(conc));
    let mut tasks = Vec::with_capacity(total);
    for i in 0..total {
        let permit = sem.clone().acquire_owned().await?;
        let client = client.clone();
        let req = RequestBuilder::new(Method::Register, "sip:ims.mnc001.mcc001.3gppnetwork.org")
            .via(via_t, &client_addr.to_string(), &new_branch())
            .max_forwards(70)
            .from("<sip:001010000000001@ims.mnc001.mcc001.3gppnetwork.org>", "t1")
            .to("<sip:001010000000001@ims.mnc001.mcc001.3gppnetwork.org>")
            .call_id(&format!("rate-{i}"))
            .cseq(1)
            .header("Contact", format!("<sip:ue@{client_addr}>;expires=600000"))
            .header("Authorization", "Digest username=\"001010000000001@ims.mnc001.mcc001.3gppnetwork.org\", realm=\"ims.mnc001.mcc001.3gppnetwork.org\", uri=\"sip:ims.mnc001.mcc001.3gppnetwork.org\", nonce=\"\", response=\"\"")
            .header("Supported", "path")
            .build_message()?;
        tasks.push(tokio::spawn(async move {
            let r = client.request(req, target).await;
            drop(permit);
            r.map(|m| m.status() == Some(StatusCode::OK))
                .unwrap_or(false)
        }));
    }
    let mut ok = 0;
    for t in tasks {
        if t.await.unwrap_or(false) {
            ok += 1;
        }
    }
    let el = started.elapsed();
    println!(
        "{transport}: {ok}/{total} transactions OK in {:.2} s = {:.0} transactions/s (concurrency {conc})",
        el.as_secs_f64(),
        ok as f64 / el.as_secs_f64()
    );
    tokio::time::sleep(Duration::from_millis(10)).await;
    Ok(())
}
