//! `hss`: the HSS binary. Arguments, logging, configuration, runtime; the rest is in the
//! library (`ims_hss::cli`, `ims_hss::start`).

use std::process::ExitCode;

use clap::Parser;
use ims_hss::cli::{db_url, run_subscriber, Cli, Command, ServeArgs};
use ims_hss::HssSettings;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let db = cli.db.clone();
    let result = rt.block_on(async move {
        match cli.command {
            Some(Command::Subscriber(cmd)) => run_subscriber(cmd, &db_url(db.as_deref()))
                .await
                .map_err(|e| (e.code, e.message)),
            Some(Command::Serve(args)) => serve(args, db).await,
            None => serve(cli.serve, db).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, msg)) => {
            eprintln!("error: {msg}");
            ExitCode::from(u8::try_from(code).unwrap_or(1))
        }
    }
}

async fn serve(args: ServeArgs, db: Option<String>) -> Result<(), (i32, String)> {
    let cfg =
        ims_config::HssConfig::load_or_default(args.config.as_deref(), &ims_config::ProcessEnv)
            .unwrap_or_else(|e| ims_config::exit_on_error(e));
    let mut settings = HssSettings::from_config(&cfg);
    if let Some(db) = db {
        settings.db_url = db;
    }
    if let Some(a) = args.diameter_listen {
        settings.diameter_listen = a;
    }
    if let Some(a) = args.http_listen {
        settings.http_listen = Some(a);
    }
    if let Some(h) = args.origin_host {
        settings.origin_host = h;
    }
    if let Some(r) = args.origin_realm {
        settings.origin_realm = r;
    }
    if !args.scscf.is_empty() {
        settings.policy.scscf_pool = args.scscf;
        settings.policy.capabilities = None;
    }
    let hss = ims_hss::start(settings)
        .await
        .map_err(|e| (1, e.to_string()))?;
    eprintln!(
        "hss: Diameter Cx on {}, REST API on {}, database {}",
        hss.diameter_addr(),
        hss.http_addr()
            .map(|a| a.to_string())
            .unwrap_or_else(|| "(disabled)".into()),
        hss.db_url()
    );
    let _ = tokio::signal::ctrl_c().await;
    hss.shutdown().await;
    Ok(())
}
