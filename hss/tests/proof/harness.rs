//! Starting an HSS on loopback and a CxClient towards it, with an RTR/PPR recorder.

use std::sync::Arc;
use std::time::Duration;

use ims_hss::milenage::{Opc, K};
use ims_hss::service::ServerPolicy;
use ims_hss::store::model::{aka_from_hex, Impu, NewSubscriber, Password, Subscriber};
use ims_hss::{HssSettings, RunningHss};
use ims_hss_client::messages::*;
use ims_hss_client::{CxClient, CxClientConfig, CxEventHandler};
use tokio::sync::mpsc;

use crate::util::{K as K_HEX, OP};

pub const REALM: &str = "ims.test";
pub const HSS_HOST: &str = "hss.ims.test";
pub const SCSCF_HOST: &str = "scscf.ims.test";
pub const SCSCF: &str = "sip:scscf.ims.test:6060";

pub fn settings(db: &str) -> HssSettings {
    let mut s = HssSettings::new(REALM);
    s.origin_host = HSS_HOST.into();
    s.diameter_listen = "127.0.0.1:0".parse().expect("addr");
    s.http_listen = Some("127.0.0.1:0".parse().expect("addr"));
    s.db_url = db.to_string();
    s.policy = ServerPolicy::single(SCSCF);
    s.change_poll = Duration::from_millis(100);
    s
}

pub async fn start(db: &str) -> RunningHss {
    ims_hss::start(settings(db)).await.expect("HSS starts")
}

pub fn subscriber(imsi: &str) -> NewSubscriber {
    NewSubscriber {
        imsi: imsi.to_string(),
        impi: None,
        impus: vec![
            Impu {
                uri: format!("sip:{imsi}@{REALM}"),
                irs: 0,
                barred: false,
            },
            Impu {
                uri: format!("tel:+1{}", &imsi[imsi.len() - 7..]),
                irs: 0,
                barred: false,
            },
        ],
        aka: Some(aka_from_hex(K_HEX, Some(OP), None).expect("keys")),
        amf: None,
        sqn: None,
        password: None,
        ifc_xml: None,
        scscf_name: None,
    }
}

pub fn digest_subscriber(imsi: &str, password: &str) -> NewSubscriber {
    let mut s = subscriber(imsi);
    s.aka = None;
    s.password = Some(Password::new(password));
    s
}

pub fn keys(s: &Subscriber) -> (K, Opc) {
    let a = s.aka.as_ref().expect("aka keys");
    (a.k.clone(), a.opc.clone())
}

/// What the S-CSCF side received from the HSS.
#[derive(Debug)]
pub enum Pushed {
    Rtr(Box<RegistrationTerminationRequest>),
    Ppr(Box<PushProfileRequest>),
}

pub struct Recorder(pub mpsc::UnboundedSender<Pushed>);

#[async_trait::async_trait]
impl CxEventHandler for Recorder {
    async fn on_registration_termination(
        &self,
        req: RegistrationTerminationRequest,
    ) -> RegistrationTerminationAnswer {
        let _ = self.0.send(Pushed::Rtr(Box::new(req)));
        RegistrationTerminationAnswer::new(CxOutcome::Success)
    }

    async fn on_push_profile(&self, req: PushProfileRequest) -> PushProfileAnswer {
        let _ = self.0.send(Pushed::Ppr(Box::new(req)));
        PushProfileAnswer::new(CxOutcome::Success)
    }
}

pub async fn client(
    hss: &RunningHss,
    origin_host: &str,
    watchdog: Duration,
) -> (CxClient, mpsc::UnboundedReceiver<Pushed>) {
    let mut cfg = CxClientConfig::new(
        vec![hss.diameter_addr().to_string()],
        origin_host,
        REALM,
        REALM,
    );
    cfg.watchdog = watchdog;
    cfg.request_timeout = Duration::from_secs(10);
    let (tx, rx) = mpsc::unbounded_channel();
    let c = CxClient::start(cfg, Some(Arc::new(Recorder(tx))));
    c.wait_ready(Duration::from_secs(5))
        .await
        .expect("CER/CEA with the HSS");
    (c, rx)
}
