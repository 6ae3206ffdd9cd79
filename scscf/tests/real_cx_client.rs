//! The S-CSCF with the real Diameter `CxClient` (ims-hss-client over TCP on 127.0.0.1)
//! against a small Cx server built from the typed messages: AKA registration with the
//! TS 35.208 set 1 vector, implicit registration set from SAA User-Data, reg-event
//! NOTIFY after an HSS-initiated RTR, and 504 + Retry-After when no HSS is reachable.

use bytes::Bytes;
use ims_diameter::codec::Message as DMessage;
use ims_diameter::transport::{LocalNode, PeerInfo, RequestHandler, Server, ServerConfig};
use ims_hss_client::dictionary::*;
use ims_hss_client::*;
use ims_scscf::hss::{HssAdapter, ScscfCxEvents};
use ims_scscf::testutil::*;
use ims_scscf::{Scscf, Settings};
use ims_sip_core::{Message, Method};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, UdpSocket};

/// Answers MAR with the TS 35.208 set 1 vector and SAR with a two-IMPU set; counts MARs.
#[derive(Default)]
struct CxServer {
    mars: AtomicUsize,
}

fn hexb(s: &str) -> Bytes {
    Bytes::from(hex::decode(s).unwrap())
}

#[async_trait::async_trait]
impl RequestHandler for CxServer {
    async fn handle(&self, req: DMessage, _peer: &PeerInfo) -> DMessage {
        let routing = AnswerRouting {
            origin_host: "hss.ims.test".into(),
            origin_realm: "ims.test".into(),
            ..Default::default()
        };
        if req.header.command_code == CMD_MULTIMEDIA_AUTH {
            self.mars.fetch_add(1, Ordering::SeqCst);
        }
        match req.header.command_code {
            CMD_MULTIMEDIA_AUTH => match MultimediaAuthRequest::from_message(&req) {
                Err(e) => e.to_answer(&req, "hss.ims.test", "ims.test"),
                Ok(mar) => {
                    let mut ra = hex::decode(SET1_RAND).unwrap();
                    ra.extend(hex::decode(SET1_AUTN).unwrap());
                    MultimediaAuthAnswer {
                        routing,
                        outcome: CxOutcome::Success,
                        user_name: Some(mar.user_name.clone()),
                        public_identity: Some(mar.public_identity.clone()),
                        sip_number_auth_items: Some(1),
                        sip_auth_data_items: vec![SipAuthDataItem {
                            item_number: Some(1),
                            scheme: Some(SipAuthScheme::DigestAkaV1Md5),
                            authenticate: Some(Bytes::from(ra)),
                            authorization: Some(hexb(SET1_RES)),
                            confidentiality_key: Some(hexb(SET1_CK)),
                            integrity_key: Some(hexb(SET1_IK)),
                            ..Default::default()
                        }],
                    }
                    .to_message(&req)
                }
            },
            CMD_SERVER_ASSIGNMENT => match ServerAssignmentRequest::from_message(&req) {
                Err(e) => e.to_answer(&req, "hss.ims.test", "ims.test"),
                Ok(sar) => ServerAssignmentAnswer {
                    routing,
                    user_name: sar.user_name.clone(),
                    user_data: Some(
                        FakeHss::new(&["sip:alice@ims.test", "tel:+15551234"]).user_data(),
                    ),
                    ..ServerAssignmentAnswer::new(CxOutcome::Success)
                }
                .to_message(&req),
            },
            _ => DMessage::error_answer(
                &req,
                ims_diameter::codec::ResultCode::CommandUnsupported,
                "hss.ims.test",
                "ims.test",
                None,
                None,
            ),
        }
    }
}

async fn recv(sock: &UdpSocket) -> Message {
    let mut buf = vec![0u8; 65535];
    let (n, _) = tokio::time::timeout(Duration::from_secs(5), sock.recv_from(&mut buf))
        .await
        .expect("an answer within 5 s")
        .unwrap();
    parse(&buf[..n]).unwrap()
}

fn client_config(peer: String) -> CxClientConfig {
    let mut c = CxClientConfig::new(vec![peer], "scscf.ims.test", "ims.test", "ims.test");
    c.request_timeout = Duration::from_millis(500);
    c
}

#[tokio::test]
async fn aka_registration_and_rtr_over_real_diameter() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hss_addr = listener.local_addr().unwrap();
    let cx = Arc::new(CxServer::default());
    let server = Server::from_listener(
        listener,
        LocalNode::cx("hss.ims.test", "ims.test", "127.0.0.1".parse().unwrap()),
        cx.clone(),
        ServerConfig::default(),
    );
    let server_handle = server.handle();
    let (hss_stop, hss_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.run(async move {
        let _ = hss_rx.await;
    }));

    let events = ScscfCxEvents::new();
    let client = CxClient::start(client_config(hss_addr.to_string()), Some(events.clone()));
    client.wait_ready(Duration::from_secs(5)).await.unwrap();

    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    let mut settings = Settings::new(format!("sip:{addr}"));
    settings.realm = Some("ims.test".into());
    let scscf = Scscf::new(
        settings,
        Arc::new(HssAdapter::new(Arc::new(client.clone()))),
        None,
    )
    .await
    .unwrap();
    events.attach(scscf.handle());
    let handle = scscf.handle();
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(scscf.run(sock, async move {
        let _ = rx.await;
    }));

    // REGISTER → 401 with the HSS's vector → REGISTER with RES → 200
    let ue = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut spec = RegisterSpec::alice();
    spec.via = ue.local_addr().unwrap().to_string();
    spec.contacts = vec![format!("<sip:alice@{}>", ue.local_addr().unwrap())];
    ue.send_to(spec.to_text().as_bytes(), addr).await.unwrap();
    let r1 = recv(&ue).await;
    assert_eq!(code(&r1), 401);
    // the same REGISTER again (a UDP retransmission): the same 401, no second MAR
    ue.send_to(spec.to_text().as_bytes(), addr).await.unwrap();
    let r1b = recv(&ue).await;
    assert_eq!(r1b.as_bytes(), r1.as_bytes());
    assert_eq!(cx.mars.load(Ordering::SeqCst), 1, "one MAR at the HSS");
    let www = r1.header_str("WWW-Authenticate").unwrap();
    assert!(www.contains(&format!("ck=\"{SET1_CK}\"")), "{www}");
    let nonce = nonce_of(www).unwrap();
    let raw = ims_scscf::auth::decode_nonce(&nonce).unwrap();
    assert_eq!(hex::encode(&raw[..16]), SET1_RAND);
    let mut s2 = spec.clone();
    s2.cseq = 2;
    s2.authorization = Some(answer(
        &spec.impi,
        "ims.test",
        &nonce,
        &hex::decode(SET1_RES).unwrap(),
        true,
        1,
    ));
    ue.send_to(s2.to_text().as_bytes(), addr).await.unwrap();
    let r2 = recv(&ue).await;
    assert_eq!(code(&r2), 200, "{r2:?}");
    assert_eq!(
        r2.header_str("P-Associated-URI"),
        Some("<sip:alice@ims.test>, <tel:+15551234>")
    );

    // SUBSCRIBE reg, then RTR from the HSS → NOTIFY terminated;reason=rejected
    let sub = format!(
        "SUBSCRIBE sip:alice@ims.test SIP/2.0\r\nVia: SIP/2.0/UDP {ua};branch=z9hG4bKs1;rport\r\nMax-Forwards: 70\r\n\
From: <sip:alice@ims.test>;tag=ue-sub\r\nTo: <sip:alice@ims.test>\r\nCall-ID: sub-rtr\r\nCSeq: 1 SUBSCRIBE\r\n\
Event: reg\r\nContact: <sip:alice@{ua}>\r\nExpires: 3600\r\nContent-Length: 0\r\n\r\n",
        ua = ue.local_addr().unwrap()
    );
    ue.send_to(sub.as_bytes(), addr).await.unwrap();
    assert_eq!(code(&recv(&ue).await), 200);
    let n1 = recv(&ue).await;
    ue.send_to(&ok_to(&n1), addr).await.unwrap();

    let peer = server_handle
        .peer_by_host("scscf.ims.test")
        .expect("S-CSCF connected to the HSS");
    let rtr = RegistrationTerminationRequest {
        routing: RequestRouting {
            session_id: "hss.ims.test;1;1".into(),
            origin_host: "hss.ims.test".into(),
            origin_realm: "ims.test".into(),
            destination_host: Some("scscf.ims.test".into()),
            destination_realm: "ims.test".into(),
        },
        user_name: "alice@ims.test".into(),
        associated_identities: vec![],
        public_identities: vec!["sip:alice@ims.test".into()],
        deregistration_reason: DeregistrationReason {
            reason_code: ReasonCode::PermanentTermination,
            reason_info: Some("Administrative Deregistration".into()),
        },
    };
    let rta =
        RegistrationTerminationAnswer::from_message(&peer.request(rtr.to_message()).await.unwrap())
            .unwrap();
    assert_eq!(rta.outcome, CxOutcome::Success);
    let n2 = recv(&ue).await;
    assert_eq!(n2.method(), Some(&Method::Notify));
    assert_eq!(
        n2.header_str("Subscription-State"),
        Some("terminated;reason=rejected")
    );
    assert!(String::from_utf8_lossy(n2.body()).contains("event=\"rejected\""));
    ue.send_to(&ok_to(&n2), addr).await.unwrap();
    assert!(handle.core().registration("tel:+15551234").is_none());

    let _ = stop.send(());
    task.await.unwrap().unwrap();
    client.close().await;
    let _ = hss_stop.send(());
}

#[tokio::test]
async fn hss_unreachable_gives_504_with_retry_after() {
    // a port with nobody listening
    let dead = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_addr = dead.local_addr().unwrap();
    drop(dead);
    let client = CxClient::start(client_config(dead_addr.to_string()), None);
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    let mut settings = Settings::new(format!("sip:{addr}"));
    settings.hss_timeout = Duration::from_secs(2);
    let scscf = Scscf::new(
        settings,
        Arc::new(HssAdapter::new(Arc::new(client.clone()))),
        None,
    )
    .await
    .unwrap();
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(scscf.run(sock, async move {
        let _ = rx.await;
    }));
    let ue = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut spec = RegisterSpec::alice();
    spec.via = ue.local_addr().unwrap().to_string();
    let t0 = std::time::Instant::now();
    ue.send_to(spec.to_text().as_bytes(), addr).await.unwrap();
    let r = recv(&ue).await;
    assert_eq!(code(&r), 504, "{r:?}");
    assert!(r.header_str("Retry-After").is_some());
    assert!(
        t0.elapsed() < Duration::from_secs(4),
        "answered within the transaction timer"
    );
    let _ = stop.send(());
    task.await.unwrap().unwrap();
    client.close().await;
}
