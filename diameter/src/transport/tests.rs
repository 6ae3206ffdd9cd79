//! Transport tests over real TCP on 127.0.0.1.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

use super::*;
use crate::codec::{self, Avp, AvpDef, AvpSet, AvpType, Frame, ResultCode};
use crate::dictionary as d;
use crate::peer::PeerTimers;

const CX: u32 = 16_777_216;
const TAG: AvpDef = AvpDef::vendor("Test-Tag", 9001, 10415, false, AvpType::Unsigned32);
const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn node(host: &str) -> LocalNode {
    LocalNode::cx(host, "ims.test", LOOPBACK)
}

/// Answers with Result-Code 2001 and the request's Test-Tag; command 999 is never
/// answered in time; command 998 waits a little, in reverse order of the tag.
struct Echo {
    seen: AtomicUsize,
}

#[async_trait::async_trait]
impl RequestHandler for Echo {
    async fn handle(&self, request: Message, peer: &PeerInfo) -> Message {
        self.seen.fetch_add(1, Ordering::SeqCst);
        let tag = request.get_u32(&TAG).ok().flatten().unwrap_or(0);
        match request.header.command_code {
            999 => tokio::time::sleep(Duration::from_secs(30)).await,
            998 => tokio::time::sleep(Duration::from_millis(u64::from(50 - tag % 50))).await,
            _ => {}
        }
        Message::answer_to(&request)
            .with(Avp::unsigned32(&d::RESULT_CODE, 2001))
            .with(Avp::utf8(&d::ORIGIN_HOST, "server.ims.test"))
            .with(Avp::utf8(&d::ORIGIN_REALM, "ims.test"))
            .with(Avp::unsigned32(&TAG, tag))
            .with(Avp::utf8(&d::USER_NAME, peer.origin_host()))
    }
}

struct Running {
    addr: SocketAddr,
    handle: ServerHandle,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    echo: Arc<Echo>,
}

impl Running {
    async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let _ = self.task.await;
    }
}

async fn start_server(config: ServerConfig) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let echo = Arc::new(Echo {
        seen: AtomicUsize::new(0),
    });
    let server = Server::from_listener(listener, node("server.ims.test"), echo.clone(), config);
    let addr = server.local_addr().unwrap();
    let handle = server.handle();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async move {
        let _ = rx.await;
    }));
    Running {
        addr,
        handle,
        stop: Some(tx),
        task,
        echo,
    }
}

fn client_config(addr: SocketAddr) -> ClientConfig {
    let mut c = ClientConfig::new(addr.to_string());
    c.request_timeout = Duration::from_secs(5);
    c.reconnect_min = Duration::from_millis(20);
    c.reconnect_max = Duration::from_millis(200);
    c
}

fn request(code: u32, tag: u32) -> Message {
    Message::request(code, CX)
        .with(Avp::utf8(&d::SESSION_ID, &format!("client;{tag}")))
        .with(Avp::utf8(&d::ORIGIN_HOST, "client.ims.test"))
        .with(Avp::utf8(&d::ORIGIN_REALM, "ims.test"))
        .with(Avp::unsigned32(&TAG, tag))
}

#[tokio::test]
async fn cer_request_answer_and_server_initiated_request() {
    let srv = start_server(ServerConfig::default()).await;
    let client_echo: Arc<dyn RequestHandler> = Arc::new(Echo {
        seen: AtomicUsize::new(0),
    });
    let peer = connect(
        client_config(srv.addr),
        node("client.ims.test"),
        Some(client_echo),
    );
    peer.wait_open(Duration::from_secs(5)).await.unwrap();
    assert_eq!(peer.status(), PeerStatus::Open);
    let info = peer.info().unwrap();
    assert_eq!(info.origin_host(), "server.ims.test");
    assert_eq!(info.capabilities.product_name, "ims-core");

    let ans = peer.request(request(300, 7)).await.unwrap();
    assert!(!ans.is_request());
    assert_eq!(ans.result_code(), Some(ResultCode::Success));
    assert_eq!(ans.require_u32(&TAG).unwrap(), 7);
    // The server handler saw the client's Origin-Host from CER.
    assert_eq!(ans.require_utf8(&d::USER_NAME).unwrap(), "client.ims.test");

    // Server → client request over the same connection (as RTR/PPR would go).
    let back = srv
        .handle
        .peer_by_host("CLIENT.ims.test")
        .expect("peer by host");
    let ans = back.request(request(304, 11)).await.unwrap();
    assert_eq!(ans.require_u32(&TAG).unwrap(), 11);
    assert_eq!(ans.require_utf8(&d::USER_NAME).unwrap(), "server.ims.test");
    assert_eq!(srv.handle.peers().len(), 1);

    // DPR from the client: server forgets the peer.
    peer.close().await;
    assert_eq!(peer.status(), PeerStatus::Closed);
    for _ in 0..100 {
        if srv.handle.peer_by_host("client.ims.test").is_none()
            && srv.handle.connection_count() == 0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(srv.handle.peer_by_host("client.ims.test").is_none());
    assert_eq!(srv.handle.connection_count(), 0);
    assert!(matches!(
        peer.request(request(300, 1)).await,
        Err(Error::NotConnected)
    ));
    srv.stop().await;
}

#[tokio::test]
async fn many_requests_in_flight_are_matched_by_hop_by_hop() {
    let srv = start_server(ServerConfig::default()).await;
    let peer = connect(client_config(srv.addr), node("client.ims.test"), None);
    peer.wait_open(Duration::from_secs(5)).await.unwrap();
    let mut tasks = Vec::new();
    for tag in 0..2000u32 {
        let p = peer.clone();
        // Command 998 answers out of order.
        tasks.push(tokio::spawn(async move {
            (tag, p.request(request(998, tag)).await)
        }));
    }
    for t in tasks {
        let (tag, r) = t.await.unwrap();
        let ans = r.unwrap();
        assert_eq!(ans.require_u32(&TAG).unwrap(), tag);
    }
    assert_eq!(srv.echo.seen.load(Ordering::SeqCst), 2000);
    peer.close().await;
    srv.stop().await;
}

#[tokio::test]
async fn request_timeout_leaves_connection_usable() {
    let srv = start_server(ServerConfig::default()).await;
    let peer = connect(client_config(srv.addr), node("client.ims.test"), None);
    peer.wait_open(Duration::from_secs(5)).await.unwrap();
    let r = peer
        .request_with_timeout(request(999, 1), Duration::from_millis(100))
        .await;
    assert!(matches!(r, Err(Error::Timeout(_))), "{r:?}");
    let ans = peer.request(request(300, 2)).await.unwrap();
    assert_eq!(ans.require_u32(&TAG).unwrap(), 2);
    peer.close().await;
    srv.stop().await;
}

#[tokio::test]
async fn watchdog_exchanges_dwr_and_keeps_connection_open() {
    let mut cfg = ServerConfig::default();
    cfg.timers.watchdog = Duration::from_millis(250);
    cfg.timers.watchdog_jitter = Duration::ZERO;
    let srv = start_server(cfg).await;
    let mut cc = client_config(srv.addr);
    cc.timers.watchdog = Duration::from_millis(250);
    cc.timers.watchdog_jitter = Duration::ZERO;
    let peer = connect(cc, node("client.ims.test"), None);
    peer.wait_open(Duration::from_secs(5)).await.unwrap();
    // Six watchdog periods of silence: DWR/DWA keep both sides OKAY.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(peer.status(), PeerStatus::Open);
    assert!(srv.handle.peer_by_host("client.ims.test").is_some());
    assert!(peer.request(request(300, 3)).await.is_ok());
    peer.close().await;
    srv.stop().await;
}

/// A hand-written peer: answers CER with CEA 2001, then ignores everything.
async fn silent_peer(
    listener: TcpListener,
    accepted: Arc<AtomicUsize>,
    dwr_seen: Arc<AtomicUsize>,
) {
    loop {
        let Ok((mut s, _)) = listener.accept().await else {
            return;
        };
        accepted.fetch_add(1, Ordering::SeqCst);
        let dwr_seen = dwr_seen.clone();
        tokio::spawn(async move {
            let mut buf = BytesMut::new();
            loop {
                while let Frame::Complete(n) = codec::check(&buf) {
                    let m = Message::decode(&buf.split_to(n)).unwrap();
                    match m.header.command_code {
                        257 => {
                            let cea = node("silent.ims.test").cea(&m, ResultCode::Success);
                            s.write_all(&cea.to_bytes().unwrap()).await.unwrap();
                        }
                        280 => {
                            dwr_seen.fetch_add(1, Ordering::SeqCst);
                        }
                        _ => {}
                    }
                }
                if s.read_buf(&mut buf).await.unwrap_or(0) == 0 {
                    return;
                }
            }
        });
    }
}

#[tokio::test]
async fn unanswered_watchdog_goes_suspect_then_down_then_reconnects() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let dwr = Arc::new(AtomicUsize::new(0));
    tokio::spawn(silent_peer(listener, accepted.clone(), dwr.clone()));
    let mut cc = client_config(addr);
    cc.timers.watchdog = Duration::from_millis(100);
    cc.timers.watchdog_jitter = Duration::ZERO;
    let peer = connect(cc, node("client.ims.test"), None);
    peer.wait_open(Duration::from_secs(5)).await.unwrap();
    let s = peer
        .wait_status(Duration::from_secs(10), |s| s == PeerStatus::Suspect)
        .await
        .unwrap();
    assert_eq!(s, PeerStatus::Suspect);
    assert!(matches!(
        peer.request(request(300, 1)).await,
        Err(Error::NotConnected)
    ));
    // DOWN, then a new connection (REOPEN: the silent peer never answers DWR). Takes
    // about 0.5 s; the generous deadline is for a CI machine busy with other tests.
    // On the new connection the client probes with DWR again (REOPEN, RFC 3539 §3.4.1):
    // that DWR follows the reconnect by a watchdog period, so wait for both.
    for _ in 0..1000 {
        if accepted.load(Ordering::SeqCst) >= 2 && dwr.load(Ordering::SeqCst) >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(accepted.load(Ordering::SeqCst) >= 2, "client reconnected");
    assert!(
        dwr.load(Ordering::SeqCst) >= 2,
        "DWR on the first and on the new connection"
    );
    peer.close().await;
}

#[tokio::test]
async fn server_shutdown_sends_dpr_and_client_reconnects_to_new_server() {
    let srv = start_server(ServerConfig::default()).await;
    let addr = srv.addr;
    let peer = connect(client_config(addr), node("client.ims.test"), None);
    peer.wait_open(Duration::from_secs(5)).await.unwrap();
    srv.stop().await;
    let s = peer
        .wait_status(Duration::from_secs(3), |s| {
            !matches!(s, PeerStatus::Open | PeerStatus::Reopen)
        })
        .await
        .unwrap();
    assert_ne!(s, PeerStatus::Open);
    // A new server on the same port: the client comes back by itself.
    let listener = TcpListener::bind(addr).await.unwrap();
    let echo = Arc::new(Echo {
        seen: AtomicUsize::new(0),
    });
    let server = Server::from_listener(
        listener,
        node("server.ims.test"),
        echo,
        ServerConfig::default(),
    );
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async move {
        let _ = rx.await;
    }));
    peer.wait_open(Duration::from_secs(5)).await.unwrap();
    let ans = peer.request(request(300, 5)).await.unwrap();
    assert_eq!(ans.require_u32(&TAG).unwrap(), 5);
    peer.close().await;
    let _ = tx.send(());
    let _ = task.await;
}

/// Reads one framed message from a raw stream.
async fn read_msg(s: &mut TcpStream, buf: &mut BytesMut) -> Message {
    loop {
        if let Frame::Complete(n) = codec::check(buf) {
            return Message::decode(&buf.split_to(n)).unwrap();
        }
        let n = tokio::time::timeout(Duration::from_secs(5), s.read_buf(buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "connection closed");
    }
}

#[tokio::test]
async fn malformed_requests_get_rfc_errors_and_connection_survives() {
    let srv = start_server(ServerConfig::default()).await;
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    let mut buf = BytesMut::new();
    let mut cer = node("raw.ims.test").cer();
    cer.header.hop_by_hop = 1;
    s.write_all(&cer.to_bytes().unwrap()).await.unwrap();
    let cea = read_msg(&mut s, &mut buf).await;
    assert_eq!(cea.result_code(), Some(ResultCode::Success));

    // 1. AVP length past the end → 5014 with Failed-AVP, same hop-by-hop.
    let mut req = request(300, 1);
    req.header.hop_by_hop = 0x1234;
    let mut raw = req.to_bytes().unwrap().to_vec();
    let tag_off = raw.len() - 16; // Test-Tag is last: 12-byte header + 4 data
    raw[tag_off + 7] = 200;
    s.write_all(&raw).await.unwrap();
    let ans = read_msg(&mut s, &mut buf).await;
    assert_eq!(ans.header.hop_by_hop, 0x1234);
    assert_eq!(ans.result_code(), Some(ResultCode::InvalidAvpLength));
    assert_eq!(ans.require_grouped(&d::FAILED_AVP).unwrap()[0].code, 9001);
    assert_eq!(ans.session_id(), Some("client;1"));

    // 2. R and E bits together → 3008, E bit in the answer.
    let mut raw = request(300, 2).to_bytes().unwrap().to_vec();
    raw[4] |= 0x20;
    raw[12..16].copy_from_slice(&[0, 0, 0, 2]);
    s.write_all(&raw).await.unwrap();
    let ans = read_msg(&mut s, &mut buf).await;
    assert_eq!(ans.result_code(), Some(ResultCode::InvalidHdrBits));
    assert!(ans.header.flags.is_error());

    // 3. Message length not a multiple of 4 (but framable) → 5015.
    let mut raw = request(300, 3).to_bytes().unwrap().to_vec();
    raw.push(0);
    let len = raw.len();
    raw[1..4].copy_from_slice(&[(len >> 16) as u8, (len >> 8) as u8, len as u8]);
    raw[12..16].copy_from_slice(&[0, 0, 0, 3]);
    s.write_all(&raw).await.unwrap();
    let ans = read_msg(&mut s, &mut buf).await;
    assert_eq!(ans.header.hop_by_hop, 3);
    assert_eq!(ans.result_code(), Some(ResultCode::InvalidMessageLength));

    // 4. Application not advertised → 3007.
    let mut req = Message::request(316, 16_777_251).with(Avp::utf8(&d::SESSION_ID, "x"));
    req.header.hop_by_hop = 4;
    s.write_all(&req.to_bytes().unwrap()).await.unwrap();
    let ans = read_msg(&mut s, &mut buf).await;
    assert_eq!(ans.result_code(), Some(ResultCode::ApplicationUnsupported));
    assert!(ans.header.flags.is_error());

    // 5. The connection still works: a valid request is answered.
    let mut req = request(300, 5);
    req.header.hop_by_hop = 5;
    s.write_all(&req.to_bytes().unwrap()).await.unwrap();
    let ans = read_msg(&mut s, &mut buf).await;
    assert_eq!(ans.header.hop_by_hop, 5);
    assert_eq!(ans.result_code(), Some(ResultCode::Success));

    // 6. DWR from a raw peer is answered by the transport.
    let mut dwr = node("raw.ims.test").dwr();
    dwr.header.hop_by_hop = 6;
    s.write_all(&dwr.to_bytes().unwrap()).await.unwrap();
    let dwa = read_msg(&mut s, &mut buf).await;
    assert_eq!((dwa.header.command_code, dwa.header.hop_by_hop), (280, 6));
    assert_eq!(dwa.result_code(), Some(ResultCode::Success));

    // 7. An unframeable stream (version 7) closes the connection.
    s.write_all(&[7, 0, 0, 20]).await.unwrap();
    let mut rest = Vec::new();
    let n = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut rest))
        .await
        .unwrap();
    assert!(n.is_ok());
    srv.stop().await;
}

#[tokio::test]
async fn cer_with_no_common_application_is_refused() {
    let srv = start_server(ServerConfig::default()).await;
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    let mut buf = BytesMut::new();
    let mut sh = node("sh.ims.test");
    sh.applications = vec![ApplicationId::VendorAuth {
        vendor_id: 10415,
        application_id: 16_777_217,
    }];
    s.write_all(&sh.cer().to_bytes().unwrap()).await.unwrap();
    let cea = read_msg(&mut s, &mut buf).await;
    assert_eq!(cea.result_code().map(ResultCode::code), Some(5010));
    let mut rest = Vec::new();
    let r = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut rest))
        .await
        .unwrap();
    assert!(r.is_ok(), "server closed the connection");
    srv.stop().await;
}

#[tokio::test]
async fn split_and_coalesced_writes_are_framed() {
    let srv = start_server(ServerConfig::default()).await;
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    let mut buf = BytesMut::new();
    let cer = node("raw.ims.test").cer().to_bytes().unwrap();
    // CER one byte at a time.
    for b in cer.iter() {
        s.write_all(&[*b]).await.unwrap();
    }
    assert_eq!(
        read_msg(&mut s, &mut buf).await.result_code(),
        Some(ResultCode::Success)
    );
    // Three requests in one write.
    let mut all = Vec::new();
    for i in 1..=3u32 {
        let mut r = request(300, i);
        r.header.hop_by_hop = i;
        all.extend_from_slice(&r.to_bytes().unwrap());
    }
    s.write_all(&Bytes::from(all)).await.unwrap();
    let mut tags: Vec<u32> = Vec::new();
    for _ in 0..3 {
        tags.push(read_msg(&mut s, &mut buf).await.require_u32(&TAG).unwrap());
    }
    tags.sort_unstable();
    assert_eq!(tags, vec![1, 2, 3]);
    srv.stop().await;
}

#[test]
fn timers_default_to_rfc3539() {
    let t = PeerTimers::default();
    assert_eq!(t.watchdog, Duration::from_secs(30));
    assert_eq!(t.reopen_dwa_required, 3);
}

#[tokio::test]
async fn dropping_the_last_client_handle_disconnects() {
    let srv = start_server(ServerConfig::default()).await;
    let peer = connect(client_config(srv.addr), node("client.ims.test"), None);
    peer.wait_open(Duration::from_secs(5)).await.unwrap();
    let clone = peer.clone();
    drop(peer);
    assert_eq!(clone.status(), PeerStatus::Open, "a clone keeps it alive");
    drop(clone);
    for _ in 0..200 {
        if srv.handle.connection_count() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        srv.handle.connection_count(),
        0,
        "DPR sent and connection closed"
    );
    srv.stop().await;
}
