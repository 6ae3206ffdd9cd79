//! `ims-core`: the whole IMS core in one process on loopback (HSS, S-CSCF, I-CSCF,
//! P-CSCF), with the HSS on a SQLite file and a demo subscriber. Args, tracing, config,
//! run; the wiring is in the role crates.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use ims_config::AllInOneConfig;
use tokio::sync::watch;

/// All-in-one IMS core for a lab on loopback.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Configuration file (TOML, see config/examples/all-in-one.toml); defaults without it.
    #[arg(short, long, env = "IMS_CORE_CONFIG")]
    config: Option<PathBuf>,
}

fn main() {
    let args = Args::parse();
    let cfg = AllInOneConfig::load_or_default(args.config.as_deref(), &ims_config::ProcessEnv)
        .unwrap_or_else(|e| ims_config::exit_on_error(e));
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&cfg.log.level));
    tracing_subscriber::fmt().with_env_filter(filter).init();
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("Error: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = rt.block_on(run(cfg)) {
        eprintln!("Error: {e:#}");
        std::process::exit(1);
    }
}

/// Resolves when SIGINT or SIGTERM arrives.
async fn termination() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

async fn run(cfg: AllInOneConfig) -> anyhow::Result<()> {
    let mut hss_settings = ims_hss::HssSettings::from_config(&cfg.hss);
    if cfg.hss.server_capabilities.server_names.is_empty() {
        // One lab, one S-CSCF: the HSS assigns the S-CSCF that runs in this process.
        hss_settings.policy = ims_hss::service::ServerPolicy::single(cfg.scscf.uri.to_string());
    }
    let hss = ims_hss::node::start(hss_settings)
        .await
        .context("starting the HSS")?;
    if ims_core::demo::provision(&cfg, hss.store()).await? {
        tracing::info!(imsi = %cfg.demo.imsi, "demo subscriber provisioned");
    }

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        while !*rx.borrow() {
            if rx.changed().await.is_err() {
                return;
            }
        }
    };

    let scscf_cfg = cfg.scscf.clone();
    let scscf = tokio::spawn({
        let s = stopped(stop_rx.clone());
        async move { ims_scscf::node::run(&scscf_cfg, s).await }
    });

    let icscf_sockets = ims_icscf::SipSockets::bind(&cfg.icscf.sip.listen)
        .await
        .context("binding the I-CSCF")?;
    let icscf_hss = Arc::new(ims_hss_client::CxClient::start(
        ims_hss_client::CxClientConfig::from_settings(&cfg.icscf.diameter),
        None,
    ));
    let icscf = tokio::spawn({
        let s = stopped(stop_rx.clone());
        let node = ims_icscf::Icscf::new(&cfg.icscf, icscf_hss.clone());
        async move { node.run(icscf_sockets, s).await }
    });

    let pcscf_store = ims_pcscf::store::RegistrationStore::open(&cfg.pcscf.database.url)
        .await
        .context("opening the P-CSCF registration store")?;
    let pcscf_sockets = ims_pcscf::SipSockets::bind(&cfg.pcscf.sip.listen)
        .await
        .context("binding the P-CSCF")?;
    let pcscf_sa_store: Option<Arc<dyn ims_ipsec::SaStore>> = if cfg.pcscf.ipsec.enabled {
        let store = ims_ipsec::XfrmSaStore::connect(ims_ipsec::plan::DEFAULT_PCSCF_REQID)
            .context("opening XFRM netlink for Gm IPsec ([pcscf.ipsec] enabled)")?;
        Some(Arc::new(store))
    } else {
        None
    };
    let pcscf = tokio::spawn({
        let s = stopped(stop_rx.clone());
        let mut node = ims_pcscf::Pcscf::new(&cfg.pcscf, pcscf_store);
        if let Some(sa) = pcscf_sa_store {
            node = node.with_sa_store(sa);
        }
        async move { node.run(pcscf_sockets, s).await }
    });

    let pcscf_addr = cfg
        .pcscf
        .sip
        .listen
        .first()
        .map(|l| l.addr.to_string())
        .unwrap_or_default();
    let db_path = db_display(hss.db_url());
    println!(
        "{}",
        ims_core::demo::instructions(&cfg, &pcscf_addr, &db_path)
    );
    if let Some(http) = hss.http_addr() {
        println!("HSS REST API: http://{http}/api/v1/subscribers (OpenAPI: /api/v1/openapi.json)");
    }
    println!("HSS Diameter (Cx): {}", hss.diameter_addr());

    termination().await;
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    let deadline = Duration::from_secs(5);
    let _ = tokio::time::timeout(deadline, async {
        let _ = scscf.await;
        let _ = icscf.await;
        let _ = pcscf.await;
    })
    .await;
    icscf_hss.close().await;
    hss.shutdown().await;
    Ok(())
}

/// The absolute path of a `sqlite://` URL, for printing.
fn db_display(url: &str) -> String {
    let path = url.strip_prefix("sqlite://").unwrap_or(url);
    let path = path.split('?').next().unwrap_or(path);
    std::path::absolute(path)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| path.to_string())
}
