//! Helpers for the socket tests: nodes on 127.0.0.1 with short timers, requests.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ims_sip_core::builder::{new_branch, RequestBuilder};
use ims_sip_core::{Message, Method};
use ims_sip_transport::transaction::{TimerConfig, TransactionLayer, TransactionOptions};
use ims_sip_transport::{channel, Incoming, Transport, TransportLayer, TransportOptions};
use tokio::sync::mpsc;

pub const LOCAL: &str = "127.0.0.1:0";

pub fn local() -> SocketAddr {
    LOCAL.parse().unwrap()
}

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
}

/// A transport on 127.0.0.1 (UDP + TCP on one port when possible) delivering to a channel.
pub async fn transport_node(
    opts: TransportOptions,
) -> (
    TransportLayer,
    mpsc::Receiver<Incoming>,
    SocketAddr,
    SocketAddr,
) {
    init_tracing();
    let (h, rx) = channel(1024);
    let t = TransportLayer::new(opts, Arc::new(h));
    let udp = t.bind(Transport::Udp, local()).await.unwrap();
    let tcp = t.bind(Transport::Tcp, local()).await.unwrap();
    (t, rx, udp, tcp)
}

/// A transaction layer on 127.0.0.1 whose upper layer is a channel.
pub async fn tsx_node(
    t1_ms: u64,
) -> (
    TransactionLayer,
    mpsc::Receiver<Incoming>,
    SocketAddr,
    SocketAddr,
) {
    tsx_node_with(t1_ms, TransactionOptions::default()).await
}

pub async fn tsx_node_with(
    t1_ms: u64,
    options: TransactionOptions,
) -> (
    TransactionLayer,
    mpsc::Receiver<Incoming>,
    SocketAddr,
    SocketAddr,
) {
    init_tracing();
    let (h, rx) = channel(1024);
    let t = TransportLayer::without_handler(TransportOptions::default());
    let udp = t.bind(Transport::Udp, local()).await.unwrap();
    let tcp = t.bind(Transport::Tcp, local()).await.unwrap();
    let timers = TimerConfig {
        t1: Duration::from_millis(t1_ms),
        t2: Duration::from_millis(t1_ms * 8),
        t4: Duration::from_millis(t1_ms * 10),
    };
    let l = TransactionLayer::new(t, timers, options, Arc::new(h));
    (l, rx, udp, tcp)
}

/// A request with a fresh branch; `sent_by` goes into the Via.
pub fn request(method: Method, transport: &str, sent_by: &str, call_id: &str) -> Message {
    request_with_body(method, transport, sent_by, call_id, "")
}

pub fn request_with_body(
    method: Method,
    transport: &str,
    sent_by: &str,
    call_id: &str,
    body: &str,
) -> Message {
    let mut b = RequestBuilder::new(method.clone(), "sip:pcscf.ims.test")
        .via(transport, sent_by, &new_branch())
        .max_forwards(70)
        .from("<sip:alice@ims.test>", "a1")
        .to("<sip:alice@ims.test>")
        .call_id(call_id)
        .cseq(1);
    if !body.is_empty() {
        b = b.body("text/plain", Bytes::copy_from_slice(body.as_bytes()));
    }
    b.build_message().unwrap()
}

pub async fn recv(rx: &mut mpsc::Receiver<Incoming>) -> Incoming {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("no message within 5 s")
        .expect("channel closed")
}

pub async fn no_message(rx: &mut mpsc::Receiver<Incoming>, ms: u64) {
    if let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(ms), rx.recv()).await {
        panic!("unexpected message: {}", m.message.start_line());
    }
}
