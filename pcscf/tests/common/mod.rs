//! Test support: a P-CSCF started in-process on loopback, a UE and a fake core (I-CSCF
//! and registrar in one UDP socket), all speaking real SIP over UDP/TCP on 127.0.0.1.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use ims_pcscf::store::RegistrationStore;
use ims_pcscf::{Pcscf, SipSockets};
use ims_sip_core::builder::ResponseBuilder;
use ims_sip_core::text::split_commas;
use ims_sip_core::StatusCode;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A received message with the accessors these tests use.
#[derive(Debug, Clone)]
pub struct Message(pub ims_sip_core::Message);

impl Message {
    pub fn parse(data: &[u8]) -> Result<Message, ims_sip_core::ParseError> {
        ims_sip_core::Message::parse(data.to_vec()).map(Message)
    }

    pub fn method(&self) -> Option<&str> {
        self.0.method().map(|m| m.as_str())
    }

    pub fn code(&self) -> Option<u16> {
        self.0.status().map(|s| s.as_u16())
    }

    pub fn uri(&self) -> Option<&str> {
        self.0.request_uri_str()
    }

    /// First line's value of a header (any name, compact forms too).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.header_str(name)
    }

    /// Every comma-separated element of every line.
    pub fn list(&self, name: &str) -> Vec<String> {
        self.0
            .header_values_str(name)
            .flat_map(split_commas)
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    }
}

pub struct RunningPcscf {
    pub udp: SocketAddr,
    pub tcp: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl RunningPcscf {
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

/// Starts a P-CSCF whose I-CSCF is `core`, storing into `db_url`, on `udp_port`
/// (0: any).
pub async fn start_pcscf(core: SocketAddr, db_url: &str, udp_port: u16) -> RunningPcscf {
    start_pcscf_with(core, db_url, udp_port, |_| {}, None).await
}

/// Like [`start_pcscf`], with a configuration tweak and an SA store (Gm IPsec).
pub async fn start_pcscf_with(
    core: SocketAddr,
    db_url: &str,
    udp_port: u16,
    tweak: impl FnOnce(&mut ims_config::PcscfConfig),
    sa_store: Option<std::sync::Arc<dyn ims_ipsec::SaStore>>,
) -> RunningPcscf {
    // Logs of the node under test with RUST_LOG=ims_pcscf=debug (shown on failure).
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let mut cfg = ims_config::PcscfConfig {
        domain: "ims.test".into(),
        icscf_uri: format!("sip:{core}").parse().unwrap(),
        visited_network_id: "visited.test".into(),
        ..Default::default()
    };
    tweak(&mut cfg);
    let store = RegistrationStore::open(db_url).await.unwrap();
    let udp = UdpSocket::bind(("127.0.0.1", udp_port)).await.unwrap();
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (udp_addr, tcp_addr) = (udp.local_addr().unwrap(), tcp.local_addr().unwrap());
    let sockets = SipSockets {
        udp: vec![udp],
        tcp: vec![tcp],
    };
    let (tx, rx) = oneshot::channel();
    let task = tokio::spawn(async move {
        let mut node = Pcscf::new(&cfg, store);
        if let Some(sa) = sa_store {
            node = node.with_sa_store(sa);
        }
        node.run(sockets, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    RunningPcscf {
        udp: udp_addr,
        tcp: tcp_addr,
        stop: Some(tx),
        task: Some(task),
    }
}

/// A UDP endpoint (UE or fake core).
pub struct Peer {
    pub sock: UdpSocket,
    pub addr: SocketAddr,
}

impl Peer {
    pub async fn new() -> Peer {
        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = sock.local_addr().unwrap();
        Peer { sock, addr }
    }

    pub async fn send(&self, to: SocketAddr, text: &str) {
        self.sock.send_to(text.as_bytes(), to).await.unwrap();
    }

    pub async fn send_bytes(&self, to: SocketAddr, data: &[u8]) {
        self.sock.send_to(data, to).await.unwrap();
    }

    /// Next message within `ms`, with its source.
    pub async fn recv_within(&self, ms: u64) -> Option<(Message, SocketAddr)> {
        let mut buf = vec![0u8; 65536];
        let (n, from) =
            tokio::time::timeout(Duration::from_millis(ms), self.sock.recv_from(&mut buf))
                .await
                .ok()?
                .ok()?;
        Some((
            Message::parse(&buf[..n]).expect("peer got unparsable SIP"),
            from,
        ))
    }

    pub async fn recv(&self) -> (Message, SocketAddr) {
        self.recv_within(3000)
            .await
            .expect("timed out waiting for SIP")
    }

    /// Answers `req` (sent from `to`) with `code` and extra header lines.
    pub async fn answer(
        &self,
        req: &Message,
        to: SocketAddr,
        code: u16,
        reason: &str,
        extra: &[(&str, String)],
    ) {
        let mut b = ResponseBuilder::new(&req.0, StatusCode::new(code).unwrap())
            .reason(reason)
            .to_tag("coretag");
        for (n, v) in extra {
            b = b.header(n, v);
        }
        self.sock.send_to(&b.build(), to).await.unwrap();
    }
}

pub fn register(ue: SocketAddr, pcscf: SocketAddr, cseq: u32, expires: u32, auth: &str) -> String {
    format!(
        "REGISTER sip:ims.test SIP/2.0\r\n\
Via: SIP/2.0/UDP {ue};branch=z9hG4bKreg{cseq};rport\r\n\
Max-Forwards: 70\r\n\
From: <sip:alice@ims.test>;tag=ue1\r\n\
To: <sip:alice@ims.test>\r\n\
Call-ID: reg-alice@{ue}\r\n\
CSeq: {cseq} REGISTER\r\n\
Contact: <sip:alice@{ue}>;expires={expires}\r\n\
Route: <sip:{pcscf};lr>\r\n\
P-Asserted-Identity: <sip:mallory@ims.test>\r\n\
Supported: path\r\n\
{auth}\
Content-Length: 0\r\n\r\n"
    )
}

pub fn message_from_ue(ue: SocketAddr, pcscf: SocketAddr, n: u32) -> String {
    format!(
        "MESSAGE sip:bob@ims.test SIP/2.0\r\n\
Via: SIP/2.0/UDP {ue};branch=z9hG4bKmsg{n};rport\r\n\
Max-Forwards: 70\r\n\
From: <sip:alice@ims.test>;tag=m{n}\r\n\
To: <sip:bob@ims.test>\r\n\
Call-ID: msg{n}@{ue}\r\n\
CSeq: 1 MESSAGE\r\n\
Route: <sip:{pcscf};lr>\r\n\
P-Asserted-Identity: <sip:mallory@ims.test>\r\n\
Content-Type: text/plain\r\n\
Content-Length: 2\r\n\r\nhi"
    )
}

/// A free protected port pair (port-c, port-s) on 127.0.0.1 for one test: below the
/// kernel's ephemeral range (so no `Peer` socket takes it), free on UDP and TCP when
/// chosen, and never handed out twice within this test process.
pub fn protected_port_pair() -> (u16, u16) {
    use std::collections::HashSet;
    use std::sync::Mutex;
    static GIVEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    let free = |p: u16| {
        std::net::UdpSocket::bind(("127.0.0.1", p)).is_ok()
            && std::net::TcpListener::bind(("127.0.0.1", p)).is_ok()
    };
    let mut given = GIVEN.lock().unwrap();
    let given = given.get_or_insert_with(HashSet::new);
    for _ in 0..1000 {
        let base = 20_000 + 2 * (rand::random::<u16>() % 6_000);
        let pair = (base, base + 1);
        if !given.contains(&pair.0) && free(pair.0) && free(pair.1) {
            given.insert(pair.0);
            return pair;
        }
    }
    panic!("no free protected port pair in 20000..32000 on 127.0.0.1");
}

/// IPsec on with the protected ports `(port-c, port-s)` and no unprotected
/// registration: the setting every sec-agree test starts from.
pub fn ipsec_only(cfg: &mut ims_config::PcscfConfig, (pc, ps): (u16, u16)) {
    cfg.ipsec.enabled = true;
    cfg.ipsec.allow_unprotected = false;
    cfg.ipsec.port_c = ims_config::PortRange {
        first: pc,
        last: pc,
    };
    cfg.ipsec.port_s = ims_config::PortRange {
        first: ps,
        last: ps,
    };
}
