//! `pcscf`: the P-CSCF as its own process (TS 24.229 §5.2).
//!
//! `pcscf [--config pcscf.toml]`; environment overrides `IMS_PCSCF__<SECTION>__<KEY>`.
//! A bad configuration exits with code 2 naming the file, key and reason.
//! SIGTERM or SIGINT stops it: the store is flushed and its Gm SAs are removed, or left
//! for the next start to adopt with `[ipsec] sas_on_shutdown = "keep"`.

use std::path::PathBuf;

use clap::Parser;
use ims_pcscf::{store::RegistrationStore, Pcscf, SipSockets};

/// P-CSCF of the IMS core.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Configuration file (TOML, see config/examples/pcscf.toml); defaults without it.
    #[arg(short, long, env = "IMS_PCSCF_CONFIG")]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let cfg =
        ims_config::PcscfConfig::load_or_default(args.config.as_deref(), &ims_config::ProcessEnv)
            .unwrap_or_else(|e| ims_config::exit_on_error(e));
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&cfg.log.level));
    tracing_subscriber::fmt().with_env_filter(filter).init();
    let store = RegistrationStore::open(&cfg.database.url).await?;
    let sockets = SipSockets::bind(&cfg.sip.listen).await?;
    let mut pcscf = Pcscf::new(&cfg, store);
    if cfg.ipsec.enabled {
        // Gm IPsec (TS 33.203 §7): SAs go into the kernel through XFRM netlink.
        let sa_store = ims_ipsec::XfrmSaStore::connect(ims_ipsec::plan::DEFAULT_PCSCF_REQID)?;
        pcscf = pcscf.with_sa_store(std::sync::Arc::new(sa_store));
    }
    pcscf.run(sockets, stop_signal()).await?;
    Ok(())
}

/// Completes on SIGTERM (systemd, tests) or SIGINT (ctrl-c).
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM: stopping"),
                    _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: stopping"),
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "SIGTERM handler not installed; stopping on SIGINT only");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
