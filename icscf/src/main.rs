//! `icscf`: the I-CSCF as its own process (TS 24.229 §5.3).
//!
//! `icscf [--config icscf.toml]`; environment overrides `IMS_ICSCF__<SECTION>__<KEY>`.
//! A bad configuration exits with code 2 naming the file, key and reason.
//! SIGINT or SIGTERM stops it cleanly: the SIP sockets are closed before exit.

use std::path::PathBuf;
use std::sync::Arc;

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
    let stop = termination();
    let cx = CxClientConfig::from_settings(&cfg.diameter);
    let hss = Arc::new(CxClient::start(cx, None));
    let sockets = SipSockets::bind(&cfg.sip.listen).await?;
    Icscf::new(&cfg, hss.clone()).run(sockets, stop).await?;
    // DPR to the HSS peers (RFC 6733 §5.4) before the process ends.
    hss.close().await;
    Ok(())
}

/// Completes on SIGINT (Ctrl-C) or, on Unix, SIGTERM (what `kill` and service
/// managers send). The handlers are installed when this is called, not when the
/// future is first polled, so a signal arriving during start-up is not lost.
fn termination() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let int = signal(SignalKind::interrupt());
        let term = signal(SignalKind::terminate());
        async move {
            match (int, term) {
                (Ok(mut int), Ok(mut term)) => {
                    tokio::select! {
                        _ = int.recv() => {}
                        _ = term.recv() => {}
                    }
                }
                (int, term) => {
                    let e = int.err().or(term.err());
                    tracing::warn!(error = ?e, "cannot install signal handlers; Ctrl-C only");
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
