//! CxClient against a Cx server built from the same typed messages, over real TCP
//! on 127.0.0.1: UAR/MAR/SAR/LIR, RTR/PPR from the server, failover, timeouts,
//! validation errors.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use ims_diameter::codec::{Avp, AvpSet, CommandFlags, Message, ResultCode};
use ims_diameter::dictionary as base;
use ims_diameter::transport::{
    LocalNode, PeerInfo, RequestHandler, Server, ServerConfig, ServerHandle,
};
use ims_hss_client::dictionary::*;
use ims_hss_client::*;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// A small Cx server: alice is known, everyone else is 5001.
struct FakeHss {
    name: &'static str,
    delay: Duration,
    seen: AtomicUsize,
    last_flags: Mutex<Vec<(u8, u32)>>,
}

impl FakeHss {
    fn new(name: &'static str, delay: Duration) -> Arc<FakeHss> {
        Arc::new(FakeHss {
            name,
            delay,
            seen: AtomicUsize::new(0),
            last_flags: Mutex::new(Vec::new()),
        })
    }

    fn routing(&self) -> AnswerRouting {
        AnswerRouting {
            origin_host: self.name.into(),
            origin_realm: "ims.test".into(),
            ..Default::default()
        }
    }
}

#[async_trait::async_trait]
impl RequestHandler for FakeHss {
    async fn handle(&self, req: Message, _peer: &PeerInfo) -> Message {
        self.seen.fetch_add(1, Ordering::SeqCst);
        self.last_flags
            .lock()
            .unwrap()
            .push((req.header.flags.0, req.header.end_to_end));
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        match req.header.command_code {
            CMD_USER_AUTHORIZATION => match UserAuthorizationRequest::from_message(&req) {
                Err(e) => e.to_answer(&req, self.name, "ims.test"),
                Ok(uar) if uar.user_name != "alice@ims.test" => UserAuthorizationAnswer {
                    routing: self.routing(),
                    ..UserAuthorizationAnswer::new(ExperimentalResultCode::UserUnknown.into())
                }
                .to_message(&req),
                Ok(_) => UserAuthorizationAnswer {
                    routing: self.routing(),
                    outcome: ExperimentalResultCode::FirstRegistration.into(),
                    server_name: None,
                    server_capabilities: Some(ServerCapabilities {
                        mandatory: vec![1],
                        optional: vec![2, 3],
                        server_names: vec![format!("sip:scscf.{}", self.name)],
                    }),
                }
                .to_message(&req),
            },
            CMD_MULTIMEDIA_AUTH => match MultimediaAuthRequest::from_message(&req) {
                Err(e) => e.to_answer(&req, self.name, "ims.test"),
                Ok(mar) => {
                    let resync = mar.sip_auth_data_item.resync_rand_auts().is_some();
                    MultimediaAuthAnswer {
                        routing: self.routing(),
                        outcome: CxOutcome::Success,
                        user_name: Some(mar.user_name.clone()),
                        public_identity: Some(mar.public_identity.clone()),
                        sip_number_auth_items: Some(1),
                        sip_auth_data_items: vec![SipAuthDataItem {
                            item_number: Some(1),
                            scheme: Some(SipAuthScheme::DigestAkaV1Md5),
                            authenticate: Some(Bytes::from(vec![
                                if resync { 0xaa } else { 0x11 };
                                32
                            ])),
                            authorization: Some(Bytes::from(vec![0x22; 8])),
                            confidentiality_key: Some(Bytes::from(vec![0x33; 16])),
                            integrity_key: Some(Bytes::from(vec![0x44; 16])),
                            ..Default::default()
                        }],
                    }
                    .to_message(&req)
                }
            },
            CMD_SERVER_ASSIGNMENT => match ServerAssignmentRequest::from_message(&req) {
                Err(e) => e.to_answer(&req, self.name, "ims.test"),
                Ok(sar) => ServerAssignmentAnswer {
                    routing: self.routing(),
                    user_name: sar.user_name.clone(),
                    user_data: (!sar.user_data_already_available)
                        .then(|| "<IMSSubscription/>".to_owned()),
                    ..ServerAssignmentAnswer::new(CxOutcome::Success)
                }
                .to_message(&req),
            },
            CMD_LOCATION_INFO => match LocationInfoRequest::from_message(&req) {
                Err(e) => e.to_answer(&req, self.name, "ims.test"),
                Ok(_) => LocationInfoAnswer {
                    routing: self.routing(),
                    server_name: Some("sip:scscf.ims.test:6060".into()),
                    ..LocationInfoAnswer::new(CxOutcome::Success)
                }
                .to_message(&req),
            },
            _ => Message::error_answer(
                &req,
                ResultCode::CommandUnsupported,
                self.name,
                "ims.test",
                None,
                None,
            ),
        }
    }
}

struct Hss {
    addr: String,
    handle: ServerHandle,
    fake: Arc<FakeHss>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Hss {
    async fn start(name: &'static str, delay: Duration) -> Hss {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let fake = FakeHss::new(name, delay);
        let local = LocalNode::cx(name, "ims.test", "127.0.0.1".parse().unwrap());
        let server = Server::from_listener(listener, local, fake.clone(), ServerConfig::default());
        let handle = server.handle();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async move {
            let _ = rx.await;
        }));
        Hss {
            addr,
            handle,
            fake,
            stop: Some(tx),
            task,
        }
    }

    async fn stop(mut self) {
        let _ = self.stop.take().map(|s| s.send(()));
        let _ = self.task.await;
    }
}

fn config(peers: Vec<String>) -> CxClientConfig {
    let mut c = CxClientConfig::new(peers, "scscf.ims.test", "ims.test", "ims.test");
    c.request_timeout = Duration::from_millis(500);
    c.reconnect_min = Duration::from_millis(20);
    c
}

/// A port with nothing listening.
async fn dead_port() -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = l.local_addr().unwrap().to_string();
    drop(l);
    a
}

#[tokio::test]
async fn uar_mar_sar_lir_typed_answers() {
    let hss = Hss::start("hss1.ims.test", Duration::ZERO).await;
    let client = CxClient::start(config(vec![hss.addr.clone()]), None);
    client.wait_ready(Duration::from_secs(5)).await.unwrap();

    let uaa = client
        .uar(UserAuthorizationRequest {
            user_name: "alice@ims.test".into(),
            public_identity: "sip:alice@ims.test".into(),
            visited_network_identifier: "ims.test".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        uaa.outcome,
        CxOutcome::Experimental(ExperimentalResultCode::FirstRegistration)
    );
    assert!(uaa.outcome.is_success());
    let caps = uaa.server_capabilities.unwrap();
    assert_eq!((caps.mandatory, caps.optional), (vec![1], vec![2, 3]));
    assert_eq!(uaa.routing.origin_host, "hss1.ims.test");

    let unknown = client
        .uar(UserAuthorizationRequest {
            user_name: "eve@ims.test".into(),
            public_identity: "sip:eve@ims.test".into(),
            visited_network_identifier: "x".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        unknown.outcome,
        CxOutcome::Experimental(ExperimentalResultCode::UserUnknown)
    );
    assert!(!unknown.outcome.is_success());

    let mar = MultimediaAuthRequest::new(
        "alice@ims.test",
        "sip:alice@ims.test",
        "sip:scscf.ims.test",
        SipAuthScheme::DigestAkaV1Md5,
        1,
    );
    let maa = client.mar(mar.clone()).await.unwrap();
    assert_eq!(maa.outcome, CxOutcome::Success);
    let item = &maa.sip_auth_data_items[0];
    assert_eq!(item.authenticate.as_deref(), Some(&[0x11u8; 32][..]));
    assert_eq!(item.integrity_key.as_deref(), Some(&[0x44u8; 16][..]));
    let maa = client
        .mar(mar.with_resync(&[1; 16], &[2; 14]))
        .await
        .unwrap();
    assert_eq!(
        maa.sip_auth_data_items[0].authenticate.as_deref(),
        Some(&[0xaau8; 32][..])
    );

    let saa = client
        .sar(ServerAssignmentRequest::new(
            Some("alice@ims.test"),
            "sip:alice@ims.test",
            "sip:scscf.ims.test",
            ServerAssignmentType::Registration,
        ))
        .await
        .unwrap();
    assert_eq!(saa.outcome, CxOutcome::Success);
    assert_eq!(saa.user_data.as_deref(), Some("<IMSSubscription/>"));
    let mut re = ServerAssignmentRequest::new(
        Some("alice@ims.test"),
        "sip:alice@ims.test",
        "sip:scscf.ims.test",
        ServerAssignmentType::ReRegistration,
    );
    re.user_data_already_available = true;
    assert_eq!(client.sar(re).await.unwrap().user_data, None);

    let lia = client
        .lir(LocationInfoRequest {
            public_identity: "sip:alice@ims.test".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(lia.server_name.as_deref(), Some("sip:scscf.ims.test:6060"));

    // As a trait object, the way CSCFs hold it.
    let dyn_client: Arc<dyn HssClient> = Arc::new(client.clone());
    let lia = dyn_client
        .lir(LocationInfoRequest {
            public_identity: "sip:alice@ims.test".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(lia.outcome.is_success());

    client.close().await;
    hss.stop().await;
}

struct Events {
    rtr: Mutex<Vec<RegistrationTerminationRequest>>,
    ppr: Mutex<Vec<PushProfileRequest>>,
}

#[async_trait::async_trait]
impl CxEventHandler for Events {
    async fn on_registration_termination(
        &self,
        req: RegistrationTerminationRequest,
    ) -> RegistrationTerminationAnswer {
        self.rtr.lock().unwrap().push(req);
        RegistrationTerminationAnswer::new(CxOutcome::Success)
    }
    async fn on_push_profile(&self, req: PushProfileRequest) -> PushProfileAnswer {
        self.ppr.lock().unwrap().push(req);
        PushProfileAnswer::new(CxOutcome::Success)
    }
}

#[tokio::test]
async fn rtr_and_ppr_from_hss_reach_the_event_handler() {
    let hss = Hss::start("hss1.ims.test", Duration::ZERO).await;
    let events = Arc::new(Events {
        rtr: Mutex::new(Vec::new()),
        ppr: Mutex::new(Vec::new()),
    });
    let client = CxClient::start(config(vec![hss.addr.clone()]), Some(events.clone()));
    client.wait_ready(Duration::from_secs(5)).await.unwrap();
    let peer = hss
        .handle
        .peer_by_host("scscf.ims.test")
        .expect("S-CSCF connected");

    let rtr = RegistrationTerminationRequest {
        routing: RequestRouting {
            session_id: "hss1.ims.test;1;1".into(),
            origin_host: "hss1.ims.test".into(),
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
    let ans = peer.request(rtr.to_message()).await.unwrap();
    let rta = RegistrationTerminationAnswer::from_message(&ans).unwrap();
    assert_eq!(rta.outcome, CxOutcome::Success);
    assert_eq!(rta.routing.origin_host, "scscf.ims.test");
    assert_eq!(
        events.rtr.lock().unwrap().as_slice(),
        std::slice::from_ref(&rtr)
    );

    let ppr = PushProfileRequest {
        routing: rtr.routing.clone(),
        user_name: "alice@ims.test".into(),
        user_data: Some("<IMSSubscription/>".into()),
        charging_information: None,
        sip_auth_data_item: None,
    };
    let ans = peer.request(ppr.to_message()).await.unwrap();
    assert_eq!(
        PushProfileAnswer::from_message(&ans).unwrap().outcome,
        CxOutcome::Success
    );
    assert_eq!(
        events.ppr.lock().unwrap()[0].user_data.as_deref(),
        Some("<IMSSubscription/>")
    );

    // A malformed RTR (no Deregistration-Reason) is answered 5005 by the client.
    let mut bad = rtr.to_message();
    bad.avps.retain(|a| !DEREGISTRATION_REASON.matches(a));
    let ans = peer.request(bad).await.unwrap();
    assert_eq!(ans.result_code(), Some(ResultCode::MissingAvp));
    assert_eq!(ans.require_grouped(&base::FAILED_AVP).unwrap()[0].code, 615);
    assert_eq!(events.rtr.lock().unwrap().len(), 1);

    client.close().await;
    hss.stop().await;
}

#[tokio::test]
async fn failover_to_second_hss_when_first_is_down() {
    let dead = dead_port().await;
    let hss2 = Hss::start("hss2.ims.test", Duration::ZERO).await;
    let client = CxClient::start(config(vec![dead, hss2.addr.clone()]), None);
    client.wait_ready(Duration::from_secs(5)).await.unwrap();
    for _ in 0..5 {
        let uaa = client
            .uar(UserAuthorizationRequest {
                user_name: "alice@ims.test".into(),
                public_identity: "sip:alice@ims.test".into(),
                visited_network_identifier: "ims.test".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(uaa.routing.origin_host, "hss2.ims.test");
    }
    client.close().await;
    hss2.stop().await;
}

#[tokio::test]
async fn failover_after_timeout_retransmits_with_t_bit_and_same_end_to_end() {
    let slow = Hss::start("slow.ims.test", Duration::from_secs(5)).await;
    let fast = Hss::start("fast.ims.test", Duration::ZERO).await;
    let client = CxClient::start(config(vec![slow.addr.clone(), fast.addr.clone()]), None);
    // Both open, so the slow one (first in order) is tried first.
    for _ in 0..500 {
        if client.peers().iter().all(|p| p.is_usable()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let lia = client
        .lir(LocationInfoRequest {
            public_identity: "sip:alice@ims.test".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(lia.routing.origin_host, "fast.ims.test");
    let (slow_flags, slow_e2e) = slow.fake.last_flags.lock().unwrap()[0];
    let (fast_flags, fast_e2e) = fast.fake.last_flags.lock().unwrap()[0];
    assert_eq!(slow_flags & CommandFlags::RETRANSMIT, 0);
    assert_ne!(
        fast_flags & CommandFlags::RETRANSMIT,
        0,
        "T bit on the retransmission"
    );
    assert_eq!(slow_e2e, fast_e2e, "same End-to-End identifier");
    client.close().await;
    slow.stop().await;
    fast.stop().await;
}

#[tokio::test]
async fn failover_when_primary_goes_away_and_back() {
    let hss1 = Hss::start("hss1.ims.test", Duration::ZERO).await;
    let hss2 = Hss::start("hss2.ims.test", Duration::ZERO).await;
    let addr1 = hss1.addr.clone();
    let client = CxClient::start(config(vec![addr1.clone(), hss2.addr.clone()]), None);
    for _ in 0..500 {
        if client.peers().iter().all(|p| p.is_usable()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let lir = || LocationInfoRequest {
        public_identity: "sip:alice@ims.test".into(),
        ..Default::default()
    };
    assert_eq!(
        client.lir(lir()).await.unwrap().routing.origin_host,
        "hss1.ims.test"
    );
    hss1.stop().await; // DPR to the client
    assert_eq!(
        client.lir(lir()).await.unwrap().routing.origin_host,
        "hss2.ims.test"
    );
    // Primary comes back on the same address: the client returns to it.
    let listener = TcpListener::bind(&addr1).await.unwrap();
    let fake = FakeHss::new("hss1b.ims.test", Duration::ZERO);
    let server = Server::from_listener(
        listener,
        LocalNode::cx("hss1b.ims.test", "ims.test", "127.0.0.1".parse().unwrap()),
        fake,
        ServerConfig::default(),
    );
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async move {
        let _ = rx.await;
    }));
    client.peers()[0]
        .wait_open(Duration::from_secs(5))
        .await
        .unwrap();
    // REOPEN (RFC 3539) needs three DWAs; they are exchanged back to back.
    client.peers()[0]
        .wait_status(Duration::from_secs(5), |s| {
            s == ims_diameter::transport::PeerStatus::Open
        })
        .await
        .unwrap();
    assert_eq!(
        client.lir(lir()).await.unwrap().routing.origin_host,
        "hss1b.ims.test"
    );
    client.close().await;
    let _ = tx.send(());
    let _ = task.await;
    hss2.stop().await;
}

#[tokio::test]
async fn all_peers_down_is_unavailable_quickly() {
    let client = CxClient::start(config(vec![dead_port().await, dead_port().await]), None);
    let t = std::time::Instant::now();
    let r = client
        .lir(LocationInfoRequest {
            public_identity: "sip:a".into(),
            ..Default::default()
        })
        .await;
    assert!(matches!(&r, Err(e) if e.is_unavailable()), "{r:?}");
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "fails fast, no timeout wait"
    );
    client.close().await;
}

#[tokio::test]
async fn server_side_validation_answers_missing_avp() {
    let hss = Hss::start("hss1.ims.test", Duration::ZERO).await;
    let client = CxClient::start(config(vec![hss.addr.clone()]), None);
    client.wait_ready(Duration::from_secs(5)).await.unwrap();
    let mut m = MultimediaAuthRequest::new(
        "alice@ims.test",
        "sip:alice@ims.test",
        "sip:s",
        SipAuthScheme::DigestAkaV1Md5,
        1,
    );
    m.routing = RequestRouting {
        session_id: "s;1;1".into(),
        origin_host: "scscf.ims.test".into(),
        origin_realm: "ims.test".into(),
        destination_host: None,
        destination_realm: "ims.test".into(),
    };
    let mut raw = m.to_message();
    raw.avps.retain(|a| !SERVER_NAME.matches(a));
    raw.push(Avp::raw(
        7777,
        ims_diameter::AvpFlags::V,
        Some(10415),
        Bytes::from_static(b"ignored"),
    ));
    let ans = client.send(raw).await.unwrap();
    assert_eq!(ans.result_code(), Some(ResultCode::MissingAvp));
    assert_eq!(ans.require_grouped(&base::FAILED_AVP).unwrap()[0].code, 602);
    // A typed decode of that answer yields the Base outcome.
    let maa = MultimediaAuthAnswer::from_message(&ans).unwrap();
    assert_eq!(maa.outcome, CxOutcome::Base(ResultCode::MissingAvp));
    client.close().await;
    hss.stop().await;
}
