//! `icscf`: the I-CSCF as its own process (TS 24.229 §5.3).
//!
//! `icscf [--config icscf.toml]`; environment overrides `IMS_ICSCF__<SECTION>__<KEY>`.
//! A bad configuration exits with code 2 naming the file, key and reason.
//! SIGINT or SIGTERM stops it cleanly: the SIP sockets are closed before exit.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use ims_hss_client::{CxClient, CxClientConfig};
use ims_icscf::{Icscf, SipSockets};

/// I-CSCF of the IMS core.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Configuration file (TOML, see config/examples/icscf.toml); defaults without it.
    #[arg(short, long, env = "IMS_ICSCF_CONFIG")]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let cfg =
        ims_config::IcscfConfig::load_or_default(args.config.as_deref(), &ims_config::ProcessEnv)
            .unwrap_or_else(|e| ims_config::exit_on_error(e));
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&cfg.log.level));
    tracing_subscriber::fmt().with_env_filter(filter).init();
    let d = &cfg.diameter;
    let mut cx = CxClientConfig::new(
        d.peers.iter().map(|p| p.to_string()).collect(),
        &d.origin_host,
        &d.origin_realm,
        &d.destination_realm,
    );
    if !d.destination_host.is_empty() {
        cx.destination_host = Some(d.destination_host.clone());
    }
    cx.request_timeout = Duration::from_millis(d.request_timeout_ms);
    cx.watchdog = Duration::from_secs(d.watchdog_s);
    cx.reconnect_min = Duration::from_millis(d.reconnect_ms);
    let hss = CxClient::start(cx, None);
    let sockets = SipSockets::bind(&cfg.sip.listen).await?;
    Icscf::new(&cfg, Arc::new(hss))
        .run(sockets, termination())
        .await?;
    Ok(())
}

/// Completes on SIGINT (Ctrl-C) or, on Unix, SIGTERM (what `kill` and service
/// managers send).
async fn termination() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; SIGINT only");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
