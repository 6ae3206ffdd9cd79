//! Configuration of every IMS role: one TOML file per role ([`HssConfig`],
//! [`PcscfConfig`], [`IcscfConfig`], [`ScscfConfig`]) and one for the all-in-one lab
//! ([`AllInOneConfig`], which embeds the four with loopback defaults).
//!
//! Plain data: no sockets, no other workspace crate. Loading parses, lays the file over
//! the defaults (every key has one), applies environment overrides (scheme in
//! [`env`](mod@env)), and validates, reporting **every** problem with the file (or variable),
//! the line, the dotted key and the reason ([`ConfigErrors`]). Binaries end with
//! [`exit_on_error`] (exit code 2) on failure.
//!
//! Examples with every key are in `config/examples/*.toml`.
//!
//! # Layout
//! - [`types`]: value types written as strings (`"udp:127.0.0.1:5060"`, SIP URIs,
//!   `host:port`, `"hmac-sha-1-96/aes-cbc"`).
//! - [`common`]: `[log]`, `[sip]`, `[timers]` (RFC 3261 §17), `[database]`, Cx client.
//! - one module per role, and [`all_in_one`].
//! - [`env`](mod@env): the `IMS_<ROLE>__<SECTION>__<KEY>` overrides.
//! - `load`: the pipeline; [`error`]: the error types.

#![deny(missing_docs)]

pub mod all_in_one;
pub mod common;
pub mod env;
pub mod error;
pub mod hss;
pub mod icscf;
mod load;
pub mod pcscf;
pub mod scscf;
pub mod types;
pub mod validate;

pub use all_in_one::{AllInOneConfig, DemoSubscriberConfig};
pub use common::{
    DatabaseConfig, DiameterClientConfig, LogConfig, SipConfig, TimersConfig, DEFAULT_DOMAIN,
};
pub use env::{EnvSource, NoEnv, ProcessEnv};
pub use error::{exit_on_error, ConfigError, ConfigErrors, EXIT_CODE_BAD_CONFIG};
pub use hss::{HssConfig, HssDiameterConfig, HttpConfig, ServerCapabilitiesConfig};
pub use icscf::{IcscfConfig, ScscfCapabilities};
pub use load::RoleConfig;
pub use pcscf::{IpsecConfig, MediaConfig, PcscfConfig, PcscfRegistrationConfig, SasOnShutdown};
pub use scscf::{AuthConfig, RegEventConfig, RegistrationConfig, ScscfConfig};
pub use types::{
    AlgPair, EncryptionAlg, HostPort, IntegrityAlg, Listen, PortRange, SipUri, Transport,
};

use std::path::Path;

macro_rules! loaders {
    ($t:ty) => {
        impl $t {
            /// Parse TOML text (no environment overrides), fill derived defaults and
            /// validate. Errors name the source `<string>`.
            pub fn from_toml_str(s: &str) -> Result<Self, ConfigErrors> {
                load::load_str(s, "<string>", &NoEnv)
            }

            /// Parse TOML text named `source` in errors, then apply overrides from `env`.
            pub fn from_toml_str_with_env(
                s: &str,
                source: &str,
                env: &dyn EnvSource,
            ) -> Result<Self, ConfigErrors> {
                load::load_str(s, source, env)
            }

            /// Read the file at `path` and apply overrides from the process environment.
            pub fn load(path: impl AsRef<Path>) -> Result<Self, ConfigErrors> {
                load::load_file(path.as_ref(), &ProcessEnv)
            }

            /// Read the file at `path` and apply overrides from `env`.
            pub fn load_with_env(
                path: impl AsRef<Path>,
                env: &dyn EnvSource,
            ) -> Result<Self, ConfigErrors> {
                load::load_file(path.as_ref(), env)
            }

            /// The file at `path` if given, else the defaults; then overrides from
            /// `env`. For binaries whose config file is optional.
            pub fn load_or_default(
                path: Option<&Path>,
                env: &dyn EnvSource,
            ) -> Result<Self, ConfigErrors> {
                match path {
                    Some(p) => load::load_file(p, env),
                    None => load::load_str("", "<defaults>", env),
                }
            }
        }
    };
}

loaders!(HssConfig);
loaders!(PcscfConfig);
loaders!(IcscfConfig);
loaders!(ScscfConfig);
loaders!(AllInOneConfig);
