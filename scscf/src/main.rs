//! `scscf`: the S-CSCF as its own process. Args, tracing, config, run.

use clap::Parser;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    version,
    about = "IMS S-CSCF (registrar, IMS-AKA authenticator, reg-event notifier)"
)]
struct Args {
    /// Configuration file (TOML); defaults apply when absent.
    #[arg(long, env = "SCSCF_CONFIG")]
    config: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let cfg =
        ims_config::ScscfConfig::load_or_default(args.config.as_deref(), &ims_config::ProcessEnv)
            .unwrap_or_else(|e| ims_config::exit_on_error(e));
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&cfg.log.level));
    tracing_subscriber::fmt().with_env_filter(filter).init();
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(ims_scscf::node::run(&cfg, termination()))?;
    Ok(())
}

/// SIGINT or SIGTERM: stop, flushing the registration store first.
async fn termination() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
