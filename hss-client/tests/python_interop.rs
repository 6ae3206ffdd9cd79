//! Interop with an independent Diameter stack: the PyPI package python-diameter
//! 0.9.0 runs a Cx server (`tests/py/cx_server.py`) and our CxClient talks to
//! it over TCP on 127.0.0.1: CER/CEA, UAR/UAA, MAR/MAA (AKA, resync, SIP
//! Digest), SAR/SAA, LIR/LIA, DWR/DWA, DPR/DPA.
//!
//! Needs `python3` with `python-diameter==0.9.0` (scripts/install-test-deps.sh
//! installs it). Without them this test FAILS with a message saying so.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use ims_diameter::transport::PeerStatus;
use ims_hss_client::*;

struct PyServer {
    child: Child,
    port: u16,
}

impl Drop for PyServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

fn require_python_diameter() {
    let out = Command::new("python3")
        .args([
            "-c",
            "import diameter.node, importlib.metadata as m; print(m.version('python-diameter'))",
        ])
        .output();
    match out {
        Err(e) => panic!(
            "python3 is not available ({e}); this interop test needs python3 and the PyPI package \
             python-diameter==0.9.0 (run scripts/install-test-deps.sh)"
        ),
        Ok(o) if !o.status.success() => panic!(
            "python3 cannot import the `diameter` module: install python-diameter==0.9.0 \
             (pip install python-diameter==0.9.0, or scripts/install-test-deps.sh): {}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Ok(o) => {
            let v = String::from_utf8_lossy(&o.stdout).trim().to_owned();
            if v != "0.9.0" {
                eprintln!("note: python-diameter {v} installed, tests were written against 0.9.0");
            }
        }
    }
}

fn start_py_server(peer_host: &str) -> PyServer {
    require_python_diameter();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/cx_server.py");
    let port = free_port();
    let mut child = Command::new("python3")
        .arg(script)
        .args([
            "--port",
            &port.to_string(),
            "--origin-host",
            "hss.py.ims.test",
            "--realm",
            "ims.test",
            "--peer",
            peer_host,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start python3 cx_server.py");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.starts_with("READY") {
                let _ = tx.send(());
            }
        }
    });
    let server = PyServer { child, port };
    rx.recv_timeout(Duration::from_secs(30))
        .expect("python-diameter Cx server did not print READY within 30 s");
    server
}

fn config(port: u16) -> CxClientConfig {
    let mut c = CxClientConfig::new(
        vec![format!("127.0.0.1:{port}")],
        "scscf.ims.test",
        "ims.test",
        "ims.test",
    );
    c.request_timeout = Duration::from_secs(5);
    c.watchdog = Duration::from_secs(1);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cx_client_against_python_diameter_server() {
    let py = start_py_server("scscf.ims.test");
    let client = CxClient::start(config(py.port), None);
    client
        .wait_ready(Duration::from_secs(15))
        .await
        .expect("CER/CEA with python-diameter");
    let info = client.peers()[0].info().expect("peer info");
    assert_eq!(info.origin_host(), "hss.py.ims.test");
    assert_eq!(info.capabilities.product_name, "python-diameter");
    assert!(info.capabilities.supports(16_777_216));

    // UAR → Experimental-Result 2001 with Server-Capabilities.
    let uaa = client
        .uar(UserAuthorizationRequest {
            user_name: "alice@ims.test".into(),
            public_identity: "sip:alice@ims.test".into(),
            visited_network_identifier: "ims.test".into(),
            user_authorization_type: Some(UserAuthorizationType::Registration),
            ..Default::default()
        })
        .await
        .expect("UAA");
    assert_eq!(
        uaa.outcome,
        CxOutcome::Experimental(ExperimentalResultCode::FirstRegistration)
    );
    assert_eq!(uaa.routing.origin_host, "hss.py.ims.test");
    let caps = uaa.server_capabilities.expect("Server-Capabilities");
    assert_eq!(caps.mandatory, vec![1]);
    assert_eq!(caps.optional, vec![2, 3]);
    assert_eq!(
        caps.server_names,
        vec!["sip:scscf.ims.test:6060".to_owned()]
    );

    // Unknown user → 5001 ERROR_USER_UNKNOWN as a typed outcome.
    let uaa = client
        .uar(UserAuthorizationRequest {
            user_name: "mallory@ims.test".into(),
            public_identity: "sip:mallory@ims.test".into(),
            visited_network_identifier: "ims.test".into(),
            ..Default::default()
        })
        .await
        .expect("UAA");
    assert_eq!(
        uaa.outcome,
        CxOutcome::Experimental(ExperimentalResultCode::UserUnknown)
    );

    // MAR (AKA) → one vector.
    let mar = MultimediaAuthRequest::new(
        "alice@ims.test",
        "sip:alice@ims.test",
        "sip:scscf.ims.test",
        SipAuthScheme::DigestAkaV1Md5,
        1,
    );
    let maa = client.mar(mar.clone()).await.expect("MAA");
    assert_eq!(maa.outcome, CxOutcome::Success);
    assert_eq!(maa.user_name.as_deref(), Some("alice@ims.test"));
    assert_eq!(maa.sip_number_auth_items, Some(1));
    let item = maa.sip_auth_data_items.first().expect("SIP-Auth-Data-Item");
    assert_eq!(item.item_number, Some(1));
    assert_eq!(item.scheme, Some(SipAuthScheme::DigestAkaV1Md5));
    let hex = |b: &Option<bytes::Bytes>| b.as_ref().map(hex::encode).unwrap_or_default();
    assert_eq!(
        hex(&item.authenticate),
        "23553cbe9637a89d218ae64dae47bf3555f328b43577b9b94a9ffac354dfafb3"
    );
    assert_eq!(hex(&item.authorization), "a54211d5e3ba50bf");
    assert_eq!(
        hex(&item.confidentiality_key),
        "b40ba9a3c58b2a05bbf0d987b21bf8cb"
    );
    assert_eq!(hex(&item.integrity_key), "f769bcd751044604127672711c6d3441");

    // Resync MAR: RAND‖AUTS in SIP-Authorization is seen by the server.
    let maa = client
        .mar(mar.with_resync(&[0x23; 16], &[0x45; 14]))
        .await
        .expect("MAA resync");
    assert_eq!(maa.outcome, CxOutcome::Success, "{maa:?}");
    assert!(
        hex(&maa.sip_auth_data_items.first().expect("item").authenticate)
            .starts_with("00112233445566778899aabbccddeeff")
    );

    // SIP Digest.
    let maa = client
        .mar(MultimediaAuthRequest::new(
            "alice@ims.test",
            "sip:alice@ims.test",
            "sip:scscf.ims.test",
            SipAuthScheme::SipDigest,
            1,
        ))
        .await
        .expect("MAA digest");
    assert_eq!(maa.outcome, CxOutcome::Success, "{maa:?}");
    let d = maa
        .sip_auth_data_items
        .first()
        .and_then(|i| i.digest.as_ref())
        .expect("SIP-Digest-Authenticate");
    assert_eq!(d.realm, "ims.test");
    assert_eq!(d.qop.as_deref(), Some("auth"));
    assert_eq!(d.algorithm.as_deref(), Some("MD5"));
    assert_eq!(d.ha1, "0123456789abcdef0123456789abcdef");

    // SAR → SAA with User-Data.
    let saa = client
        .sar(ServerAssignmentRequest::new(
            Some("alice@ims.test"),
            "sip:alice@ims.test",
            "sip:scscf.ims.test",
            ServerAssignmentType::Registration,
        ))
        .await
        .expect("SAA");
    assert_eq!(saa.outcome, CxOutcome::Success);
    assert!(saa
        .user_data
        .as_deref()
        .unwrap_or("")
        .contains("<PrivateID>alice@ims.test</PrivateID>"));
    let saa = client
        .sar(ServerAssignmentRequest::new(
            Some("alice@ims.test"),
            "sip:alice@ims.test",
            "sip:scscf.ims.test",
            ServerAssignmentType::UserDeregistration,
        ))
        .await
        .expect("SAA dereg");
    assert_eq!(saa.outcome, CxOutcome::Success);
    assert_eq!(saa.user_data, None);

    // LIR → Server-Name.
    let lia = client
        .lir(LocationInfoRequest {
            public_identity: "sip:alice@ims.test".into(),
            ..Default::default()
        })
        .await
        .expect("LIA");
    assert_eq!(lia.outcome, CxOutcome::Success);
    assert_eq!(lia.server_name.as_deref(), Some("sip:scscf.ims.test:6060"));

    // Watchdog: Tw = 1 s, three periods of silence; python-diameter answers DWR.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(client.peers()[0].status(), PeerStatus::Open);
    let lia = client
        .lir(LocationInfoRequest {
            public_identity: "sip:alice@ims.test".into(),
            ..Default::default()
        })
        .await;
    assert!(lia.is_ok(), "still usable after watchdog periods: {lia:?}");

    // Concurrency: 200 MARs in flight on the one connection.
    let mut tasks = Vec::new();
    for i in 0..200 {
        let c = client.clone();
        tasks.push(tokio::spawn(async move {
            let user = format!("user{i}@ims.test");
            c.mar(MultimediaAuthRequest::new(
                &user,
                "sip:x@ims.test",
                "sip:s",
                SipAuthScheme::DigestAkaV1Md5,
                1,
            ))
            .await
            .map(|a| (user, a))
        }));
    }
    for t in tasks {
        let (user, maa) = t.await.expect("join").expect("MAA");
        assert_eq!(
            maa.user_name.as_deref(),
            Some(user.as_str()),
            "answers matched to their requests"
        );
    }

    // DPR/DPA.
    client.close().await;
    assert_eq!(client.peers()[0].status(), PeerStatus::Closed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_diameter_refuses_unknown_peer_and_client_reports_it() {
    // The python node only accepts known peers: our CER from another Origin-Host
    // gets CEA 3010 DIAMETER_UNKNOWN_PEER; the client must not consider the peer open.
    let py = start_py_server("someone-else.ims.test");
    let client = CxClient::start(config(py.port), None);
    let r = client.wait_ready(Duration::from_secs(3)).await;
    assert!(r.is_err(), "peer must not be usable after a rejected CER");
    let lir = client
        .lir(LocationInfoRequest {
            public_identity: "sip:a".into(),
            ..Default::default()
        })
        .await;
    assert!(matches!(&lir, Err(e) if e.is_unavailable()), "{lir:?}");
    client.close().await;
}
