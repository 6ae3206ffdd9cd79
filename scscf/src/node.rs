//! Starting the S-CSCF from its configuration file (what `main.rs` and the all-in-one
//! binary call): connect the Cx client, open the store, bind the listeners, run.

use crate::cx::Cx;
use crate::hss::{HssAdapter, ScscfCxEvents};
use crate::service::{Scscf, ServiceError};
use crate::settings::Settings;
use crate::store::Store;
use ims_config::ScscfConfig;
use ims_hss_client as hc;
use ims_sip_transport::transaction::timer_config;
use ims_sip_transport::{TransportLayer, TransportOptions};
use std::future::Future;
use std::sync::Arc;

/// The Cx client settings of `[diameter]` (`hc::CxClientConfig::from_settings`).
pub fn cx_client_config(cfg: &ScscfConfig) -> hc::CxClientConfig {
    hc::CxClientConfig::from_settings(&cfg.diameter)
}

/// Runs with an injected HSS (tests, or a client the caller manages): opens the
/// configured database, binds every `[sip] listen` socket, attaches `events` (RTR) if given, and
/// serves until `shutdown` resolves.
pub async fn run_from_config(
    cfg: &ScscfConfig,
    hss: Arc<dyn Cx>,
    events: Option<Arc<ScscfCxEvents>>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServiceError> {
    let store = Store::open(&cfg.database.url).await?;
    let transport = TransportLayer::without_handler(TransportOptions::from_config(&cfg.sip));
    transport.bind_all(&cfg.sip.listen).await?;
    let scscf = Scscf::new(Settings::from_config(cfg), hss, Some(store))
        .await?
        .with_timers(timer_config(&cfg.timers))
        .with_overload(cfg.sip.max_pending_requests, cfg.sip.overload_retry_after_s);
    if let Some(e) = events {
        e.attach(scscf.handle());
    }
    scscf.serve(transport, shutdown).await
}

/// The whole node as `main.rs` runs it: starts a `CxClient` towards `[diameter] peers`
/// with the RTR/PPR handler, then [`run_from_config`]; closes the Diameter peers (DPR)
/// on shutdown.
pub async fn run(
    cfg: &ScscfConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServiceError> {
    let events = ScscfCxEvents::new();
    let client = hc::CxClient::start(cx_client_config(cfg), Some(events.clone()));
    let hss: Arc<dyn Cx> = Arc::new(HssAdapter::new(Arc::new(client.clone())));
    let r = run_from_config(cfg, hss, Some(events), shutdown).await;
    client.close().await;
    r
}
