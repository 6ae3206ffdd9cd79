//! `ue-sim`: register N simulated UEs through a P-CSCF, with IMS-AKA and optionally
//! sec-agree/IPsec, and print a summary. Exit status: 0 all succeeded, 1 some UE
//! failed, 2 bad arguments or setup.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Parser;
use ims_ipsec::{SaStore, XfrmSaStore};
use ims_ue_sim::runner::{run, RunConfig, RunIpsec};
use ims_ue_sim::secagree::{default_pairs, parse_pairs, HeaderStyle};
use ims_ue_sim::subscribers::{generate, parse_csv, OpKind};
use ims_ue_sim::ue::{UeConfig, UE_REQID};
use ims_ue_sim::Transport;

/// Simulated IMS UEs: IMS-AKA (Milenage), sec-agree + ESP SAs, REGISTER, reg-event,
/// re-/de-registration.
#[derive(Parser, Debug)]
#[command(name = "ue-sim", version)]
struct Args {
    /// The P-CSCF's SIP address (unprotected port), e.g. 10.45.0.1:5060.
    #[arg(long)]
    pcscf: SocketAddr,
    /// The UEs' own IP address.
    #[arg(long)]
    local: IpAddr,
    /// Home network domain (Request-URI, realm, IMPI/IMPU).
    #[arg(long, default_value = "ims.mnc001.mcc001.3gppnetwork.org")]
    domain: String,
    /// First IMSI of a generated range.
    #[arg(long, required_unless_present = "subscribers")]
    imsi_start: Option<String>,
    /// Number of UEs in the generated range.
    #[arg(long, default_value_t = 1)]
    count: usize,
    /// K as 32 hex digits; `{imsi}` is replaced by the IMSI's digits.
    #[arg(long, env = "UE_SIM_K")]
    k: Option<String>,
    /// OP as 32 hex digits (pattern as for --k).
    #[arg(long, env = "UE_SIM_OP", conflicts_with = "opc")]
    op: Option<String>,
    /// OPc as 32 hex digits (pattern as for --k).
    #[arg(long, env = "UE_SIM_OPC")]
    opc: Option<String>,
    /// CSV of subscribers (imsi,k,op,opc and optionally impu) instead of a generated range.
    #[arg(long)]
    subscribers: Option<PathBuf>,
    /// UEs started per second in each phase (0: all at once).
    #[arg(long, default_value_t = 10.0)]
    rate: f64,
    /// At most this many UEs registering (or re-/de-registering) at once; 0: no limit.
    #[arg(long, default_value_t = 0)]
    max_in_flight: usize,
    /// Use sec-agree and install the UE's own ESP SAs.
    #[arg(long)]
    ipsec: bool,
    /// With --ipsec: send Security-Client but install no SAs on the UE side.
    #[arg(long)]
    no_ue_sas: bool,
    /// udp or tcp.
    #[arg(long, default_value = "udp")]
    transport: Transport,
    /// Re-register every UE once after all registered (new SA set).
    #[arg(long)]
    rereg: bool,
    /// De-register every UE at the end.
    #[arg(long)]
    dereg: bool,
    /// Do not SUBSCRIBE to the reg event after registering.
    #[arg(long)]
    no_reg_event: bool,
    /// Offered alg/ealg pairs in order, e.g. hmac-sha-1-96/aes-cbc,hmac-md5-96/null.
    #[arg(long)]
    offers: Option<String>,
    /// Security-Client style: standard, qualcomm, huawei, alphabetical.
    #[arg(long, default_value = "standard")]
    style: HeaderStyle,
    /// First protected port: UE i uses port-base+2i and +1.
    #[arg(long, default_value_t = 31800)]
    port_base: u16,
    /// Samsung-style ports: port-c above port-s.
    #[arg(long)]
    port_c_above_port_s: bool,
    /// First SPI: UE i uses spi-base+8i and +1.
    #[arg(long, default_value_t = 3_000_000_000)]
    spi_base: u32,
    /// Without --ipsec: first local port (UE i uses plain-port+i); 0 = any.
    #[arg(long, default_value_t = 0)]
    plain_port: u16,
    /// Registration expiry requested, seconds.
    #[arg(long, default_value_t = 600_000)]
    expires: u32,
    /// Time to wait for each final response, milliseconds.
    #[arg(long, default_value_t = 5000)]
    timeout_ms: u64,
    /// Pause between registration and de-registration, milliseconds.
    #[arg(long, default_value_t = 0)]
    hold_ms: u64,
    /// Log filter (tracing), e.g. info or ims_ue_sim=debug.
    #[arg(long, default_value = "warn", env = "RUST_LOG")]
    log: String,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&args.log))
        .with_writer(std::io::stderr)
        .init();
    match real_main(args).await {
        Ok(true) => std::process::exit(0),
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("ue-sim: {e:#}");
            std::process::exit(2);
        }
    }
}

async fn real_main(args: Args) -> Result<bool> {
    let subs = match (&args.subscribers, &args.imsi_start) {
        (Some(p), _) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            parse_csv(&text, &args.domain).with_context(|| format!("in {}", p.display()))?
        }
        (None, Some(start)) => {
            let k = args
                .k
                .as_deref()
                .context("--k is needed with --imsi-start")?;
            let (op, kind) = match (&args.op, &args.opc) {
                (Some(op), None) => (op.as_str(), OpKind::Op),
                (None, Some(opc)) => (opc.as_str(), OpKind::Opc),
                _ => bail!("give exactly one of --op and --opc"),
            };
            generate(start, args.count, k, op, kind, &args.domain)?
        }
        (None, None) => bail!("give --imsi-start (with --k and --op/--opc) or --subscribers"),
    };
    if args.pcscf.is_ipv4() != args.local.is_ipv4() {
        bail!(
            "--pcscf {} and --local {} are of different IP families",
            args.pcscf,
            args.local
        );
    }
    let pairs = match &args.offers {
        Some(s) => parse_pairs(s).map_err(anyhow::Error::msg)?,
        None => default_pairs(),
    };
    let ipsec = if args.ipsec {
        let store: Option<Arc<dyn SaStore>> = if args.no_ue_sas {
            None
        } else {
            Some(Arc::new(XfrmSaStore::connect(UE_REQID).context(
                "opening XFRM netlink (needs root / CAP_NET_ADMIN)",
            )?))
        };
        let last = args.port_base as usize + 2 * subs.len();
        if last > u16::MAX as usize {
            bail!(
                "--port-base {} leaves no room for {} port pairs",
                args.port_base,
                subs.len()
            );
        }
        Some(RunIpsec {
            pairs,
            style: args.style,
            port_base: args.port_base,
            port_c_above_port_s: args.port_c_above_port_s,
            spi_base: args.spi_base.max(256),
            store,
        })
    } else {
        None
    };
    let mut base = UeConfig::new(args.pcscf, args.local, &args.domain);
    base.transport = args.transport;
    base.expires = args.expires;
    base.timeout = Duration::from_millis(args.timeout_ms);
    base.subscribe_reg = !args.no_reg_event;
    base.plain_port = args.plain_port;
    let cfg = RunConfig {
        base,
        ipsec,
        rate: args.rate,
        max_in_flight: args.max_in_flight,
        reregister: args.rereg,
        deregister: args.dereg,
        hold: Duration::from_millis(args.hold_ms),
    };
    let summary = run(&cfg, subs).await;
    for (imsi, phase, reason) in &summary.failures {
        println!("ue-sim: UE {imsi} failed to {phase}: {reason}");
    }
    print!("{summary}");
    Ok(summary.all_ok())
}
