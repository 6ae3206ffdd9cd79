//! Starting the S-CSCF from its configuration file (what `main.rs` and the all-in-one
//! binary call): open the store, bind the UDP listener, run.

use crate::cx::Cx;
use crate::service::{Scscf, ServiceError};
use crate::settings::Settings;
use crate::store::Store;
use std::future::Future;
use std::sync::Arc;
use tokio::net::UdpSocket;

/// Opens the configured database, binds the first UDP and TCP listeners of `[sip] listen`, and
/// serves until `shutdown` resolves.
pub async fn run_from_config(
    cfg: &ims_config::ScscfConfig,
    hss: Arc<dyn Cx>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServiceError> {
    let store = Store::open(&cfg.database.url).await?;
    let listen = cfg
        .sip
        .listen
        .iter()
        .find(|l| l.transport == ims_config::Transport::Udp)
        .map(|l| l.addr)
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "no UDP listener in [sip] listen",
            )
        })?;
    let socket = UdpSocket::bind(listen).await?;
    let tcp = match cfg
        .sip
        .listen
        .iter()
        .find(|l| l.transport == ims_config::Transport::Tcp)
    {
        Some(l) => Some(tokio::net::TcpListener::bind(l.addr).await?),
        None => None,
    };
    let scscf = Scscf::new(Settings::from_config(cfg), hss, Some(store)).await?;
    scscf.run_with_tcp(socket, tcp, shutdown).await
}
