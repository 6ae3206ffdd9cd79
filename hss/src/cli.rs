//! The `hss` command line: `serve` (default) and `subscriber add|show|list|delete`.
//!
//! ```text
//! hss [serve] [--config <file>] [--db <url>] [--diameter-listen <addr>] [--http-listen <addr>]
//!             [--origin-host <host>] [--origin-realm <realm>] [--scscf <uri>]...
//! hss subscriber add --imsi <digits> --impu <uri>[,<uri>…] --k <hex32> (--op <hex32> | --opc <hex32>)
//!                    [--amf <hex4>] [--sqn <hex12>] [--impi <id>] [--password <pw>] [--db <url>]
//! hss subscriber show <imsi|impi> [--db <url>]
//! hss subscriber list [--json] [--db <url>]
//! hss subscriber delete <imsi|impi> [--db <url>]
//! ```
//!
//! `--db` defaults to `./hss.db` (SQLite, created on first use) and also takes
//! `sqlite://path` and `postgres://…`. Exit codes: 0 success, 1 failure (e.g. database
//! unreachable), 2 invalid input (usage or a field that does not validate), 3 duplicate
//! IMSI/IMPI/IMPU, 4 no such subscriber.

// The argument doc comments are clap's --help text, written for a terminal: `<realm>`
// there is a placeholder, not HTML.
#![allow(rustdoc::invalid_html_tags)]

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::api::body::SubscriberView;
use crate::store::model::{aka_from_hex, parse_amf, parse_sqn, Impu, NewSubscriber, Password};
use crate::store::{Store, StoreError};

/// Default database when `--db` is not given.
pub const DEFAULT_DB: &str = "hss.db";

/// `hss` arguments.
#[derive(Debug, Parser)]
#[command(
    name = "hss",
    version,
    about = "IMS HSS: Diameter Cx server and subscriber provisioning"
)]
pub struct Cli {
    /// Database: a SQLite file path (default ./hss.db), sqlite://path or postgres://…
    #[arg(long, global = true, env = "HSS_DB")]
    pub db: Option<String>,
    /// Subcommand (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Options of `serve` when no subcommand is given.
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HSS (Diameter Cx server and REST API).
    Serve(ServeArgs),
    /// Provision subscribers.
    #[command(subcommand)]
    Subscriber(SubscriberCmd),
}

/// `hss serve` options; they override the configuration file.
#[derive(Debug, Args, Default, Clone)]
pub struct ServeArgs {
    /// TOML configuration file (ims-config `HssConfig`).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Diameter listen address (default 0.0.0.0:3868).
    #[arg(long)]
    pub diameter_listen: Option<SocketAddr>,
    /// REST API listen address (default 127.0.0.1:8080).
    #[arg(long)]
    pub http_listen: Option<SocketAddr>,
    /// Diameter Origin-Host (default hss.<realm>).
    #[arg(long)]
    pub origin_host: Option<String>,
    /// Diameter Origin-Realm (default: the configured domain).
    #[arg(long)]
    pub origin_realm: Option<String>,
    /// S-CSCF URI for the pool handed out on first registration (repeatable).
    #[arg(long = "scscf")]
    pub scscf: Vec<String>,
}

/// `hss subscriber …`.
#[derive(Debug, Subcommand)]
pub enum SubscriberCmd {
    /// Add a subscriber.
    Add(AddArgs),
    /// Show one subscriber (JSON, keys never shown).
    Show {
        /// IMSI or IMPI.
        id: String,
    },
    /// List subscribers (tab-separated: IMSI, IMPI, IMPUs, S-CSCF).
    List {
        /// Print a JSON array instead.
        #[arg(long)]
        json: bool,
    },
    /// Delete a subscriber.
    Delete {
        /// IMSI or IMPI.
        id: String,
    },
}

/// `hss subscriber add` flags.
#[derive(Debug, Args)]
pub struct AddArgs {
    /// IMSI (6 to 15 digits).
    #[arg(long)]
    pub imsi: String,
    /// Public identities, comma-separated (sip:, sips:, tel:).
    #[arg(long, value_delimiter = ',', required = true)]
    pub impu: Vec<String>,
    /// K, 32 hex digits.
    #[arg(long, required_unless_present = "password")]
    pub k: Option<String>,
    /// OP, 32 hex digits (OPc is computed and stored).
    #[arg(long, conflicts_with = "opc")]
    pub op: Option<String>,
    /// OPc, 32 hex digits.
    #[arg(long)]
    pub opc: Option<String>,
    /// AMF, 4 hex digits (default 8000).
    #[arg(long)]
    pub amf: Option<String>,
    /// Last SQN consumed, up to 12 hex digits (default 0).
    #[arg(long)]
    pub sqn: Option<String>,
    /// IMPI (default <imsi>@ims.mnc<MNC>.mcc<MCC>.3gppnetwork.org).
    #[arg(long)]
    pub impi: Option<String>,
    /// SIP Digest password (for clients without AKA).
    #[arg(long)]
    pub password: Option<String>,
}

/// A CLI failure with its exit code.
#[derive(Debug)]
pub struct CliError {
    /// Process exit code.
    pub code: i32,
    /// Message for stderr.
    pub message: String,
}

impl From<StoreError> for CliError {
    fn from(e: StoreError) -> Self {
        let code = match &e {
            StoreError::Invalid(_) | StoreError::BadUrl(_) => 2,
            StoreError::Duplicate { .. } => 3,
            StoreError::NotFound(_) => 4,
            _ => 1,
        };
        Self {
            code,
            message: e.to_string(),
        }
    }
}

fn invalid(e: crate::store::model::FieldError) -> CliError {
    CliError {
        code: 2,
        message: format!("invalid --{}: {}", e.field, e.reason),
    }
}

/// The database URL to use.
pub fn db_url(cli_db: Option<&str>) -> String {
    cli_db.unwrap_or(DEFAULT_DB).to_string()
}

/// Runs a `subscriber` subcommand, printing to stdout. Never prints keys.
pub async fn run_subscriber(cmd: SubscriberCmd, db: &str) -> Result<(), CliError> {
    let new = match &cmd {
        SubscriberCmd::Add(a) => Some(add_to_new(a)?),
        _ => None,
    };
    let store = Store::open(db).await?;
    let res = match cmd {
        SubscriberCmd::Add(_) => {
            let Some(new) = new else {
                return Err(CliError {
                    code: 1,
                    message: "internal: no subscriber".into(),
                });
            };
            let s = store.create(new).await?;
            println!(
                "added {} ({}) with {} IMPU(s)",
                s.imsi,
                s.impi,
                s.impus.len()
            );
            Ok(())
        }
        SubscriberCmd::Show { id } => match store.get(&id).await? {
            Some(s) => {
                let v = SubscriberView::from(&s);
                println!(
                    "{}",
                    serde_json::to_string_pretty(&v).unwrap_or_else(|_| "{}".into())
                );
                Ok(())
            }
            None => Err(CliError {
                code: 4,
                message: format!("no subscriber {id:?}"),
            }),
        },
        SubscriberCmd::List { json } => {
            let all = store.list().await?;
            if json {
                let v: Vec<SubscriberView> = all.iter().map(SubscriberView::from).collect();
                println!(
                    "{}",
                    serde_json::to_string_pretty(&v).unwrap_or_else(|_| "[]".into())
                );
            } else {
                for s in &all {
                    let impus: Vec<&str> = s.impus.iter().map(|i| i.uri.as_str()).collect();
                    println!(
                        "{}\t{}\t{}\t{}",
                        s.imsi,
                        s.impi,
                        impus.join(","),
                        s.scscf_name.as_deref().unwrap_or("-")
                    );
                }
            }
            Ok(())
        }
        SubscriberCmd::Delete { id } => {
            if store.delete(&id).await? {
                println!("deleted {id}");
                Ok(())
            } else {
                Err(CliError {
                    code: 4,
                    message: format!("no subscriber {id:?}"),
                })
            }
        }
    };
    store.close().await;
    res
}

fn add_to_new(a: &AddArgs) -> Result<NewSubscriber, CliError> {
    let aka = match &a.k {
        Some(k) => Some(aka_from_hex(k, a.op.as_deref(), a.opc.as_deref()).map_err(invalid)?),
        None => None,
    };
    let new = NewSubscriber {
        imsi: a.imsi.clone(),
        impi: a.impi.clone(),
        impus: a
            .impu
            .iter()
            .filter(|u| !u.trim().is_empty())
            .map(|u| Impu {
                uri: u.trim().to_string(),
                irs: 0,
                barred: false,
            })
            .collect(),
        aka,
        amf: a
            .amf
            .as_deref()
            .map(parse_amf)
            .transpose()
            .map_err(invalid)?,
        sqn: a
            .sqn
            .as_deref()
            .map(parse_sqn)
            .transpose()
            .map_err(invalid)?,
        password: a.password.clone().map(Password::new),
        ifc_xml: None,
        scscf_name: None,
    };
    new.validate().map_err(invalid)
}
