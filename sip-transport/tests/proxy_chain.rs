//! The pattern the CSCFs use: a transaction-stateful proxy (RFC 3261 §16) built on
//! the driver — server transaction for the incoming request, client transaction for
//! the forwarded one, the response relayed back with the proxy's Via removed. A UE
//! sends REGISTERs through two such proxies to a registrar, over UDP and TCP.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use common::*;
use ims_sip_core::builder::{new_branch, ResponseBuilder};
use ims_sip_core::{Method, StatusCode};
use ims_sip_transport::transaction::{TransactionLayer, TransactionOptions};
use ims_sip_transport::{channel, Target, Transport, TransportLayer, TransportOptions};

/// A proxy on 127.0.0.1 that forwards every request to `next` over `transport`.
async fn proxy(next: SocketAddr, transport: Transport) -> SocketAddr {
    let (h, mut rx) = channel(1024);
    let t = TransportLayer::without_handler(TransportOptions::default());
    let me = t.bind(transport, local()).await.unwrap();
    let layer = TransactionLayer::new(
        t,
        ims_sip_transport::transaction::TimerConfig::default(),
        TransactionOptions::default(),
        Arc::new(h),
    );
    let via_t = if transport == Transport::Tcp {
        "TCP"
    } else {
        "UDP"
    };
    tokio::spawn(async move {
        while let Some(inc) = rx.recv().await {
            let layer = layer.clone();
            tokio::spawn(async move {
                let mut e = inc.message.edit();
                e.prepend(
                    "Via",
                    format!("SIP/2.0/{via_t} {me};branch={}", new_branch()),
                );
                e.prepend("Path", format!("<sip:{me};lr>"));
                if e.decrement_max_forwards().is_err() {
                    let r = ResponseBuilder::new(&inc.message, StatusCode::TOO_MANY_HOPS)
                        .build_message()
                        .unwrap();
                    let _ = layer.respond(&inc, &r).await;
                    return;
                }
                let fwd = e.finish_message().unwrap();
                let resp = match layer.request(fwd, Target::new(transport, next)).await {
                    Ok(resp) => {
                        let mut e = resp.edit();
                        e.remove_top_via();
                        e.finish_message().unwrap()
                    }
                    Err(_) => ResponseBuilder::new(&inc.message, StatusCode::REQUEST_TIMEOUT)
                        .build_message()
                        .unwrap(),
                };
                let _ = layer.respond(&inc, &resp).await;
            });
        }
    });
    me
}

/// A registrar answering 200 OK with the Path it saw echoed.
async fn registrar(transport: Transport) -> SocketAddr {
    let (h, mut rx) = channel(1024);
    let t = TransportLayer::without_handler(TransportOptions::default());
    let me = t.bind(transport, local()).await.unwrap();
    let layer = TransactionLayer::new(
        t,
        ims_sip_transport::transaction::TimerConfig::default(),
        TransactionOptions::default(),
        Arc::new(h),
    );
    tokio::spawn(async move {
        while let Some(inc) = rx.recv().await {
            let r = ResponseBuilder::new(&inc.message, StatusCode::OK)
                .to_tag("reg")
                .copy_header("Path")
                .build_message()
                .unwrap();
            let _ = layer.respond(&inc, &r).await;
        }
    });
    me
}

async fn register_through_chain(transport: Transport) {
    let s = registrar(transport).await;
    let i = proxy(s, transport).await;
    let p = proxy(i, transport).await;
    let (ue, _rx, ue_udp, ue_tcp) = tsx_node(500).await;
    let (via_t, ue_addr) = match transport {
        Transport::Udp => ("UDP", ue_udp),
        Transport::Tcp => ("TCP", ue_tcp),
    };
    for n in 0..20 {
        let req = request(
            Method::Register,
            via_t,
            &ue_addr.to_string(),
            &format!("chain-{via_t}-{n}"),
        );
        let resp = ue.request(req, Target::new(transport, p)).await.unwrap();
        assert_eq!(resp.status(), Some(StatusCode::OK));
        assert_eq!(resp.call_id().unwrap(), format!("chain-{via_t}-{n}"));
        assert_eq!(resp.vias().count(), 1, "proxies removed their Vias");
        let paths: Vec<&str> = resp.header_values_str("Path").collect();
        assert_eq!(
            paths,
            vec![format!("<sip:{i};lr>"), format!("<sip:{p};lr>")]
        );
    }
}

#[tokio::test]
async fn register_through_two_proxies_over_udp() {
    register_through_chain(Transport::Udp).await;
}

#[tokio::test]
async fn register_through_two_proxies_over_tcp() {
    register_through_chain(Transport::Tcp).await;
}
