//! `hss.toml`: the HSS — Cx server (TS 29.228/29.229 over RFC 6733), subscriber
//! store, REST provisioning.

use crate::common::{default_domain, DatabaseConfig, LogConfig};
use crate::load::RoleConfig;
use crate::types::SipUri;
use crate::validate::Issues;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// The HSS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HssConfig {
    /// Home network domain; the default Origin-Realm.
    pub domain: String,
    /// `[log]`.
    pub log: LogConfig,
    /// `[diameter]`: the Cx server.
    pub diameter: HssDiameterConfig,
    /// `[http]`: the REST provisioning API.
    pub http: HttpConfig,
    /// `[database]`: the subscriber store.
    pub database: DatabaseConfig,
    /// `[server_capabilities]`: what UAA returns on first registration when no
    /// S-CSCF is assigned yet (TS 29.228 §6.3.4, Server-Capabilities AVP).
    pub server_capabilities: ServerCapabilitiesConfig,
}

/// `[diameter]` of the HSS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HssDiameterConfig {
    /// TCP address the Cx server listens on.
    pub listen: SocketAddr,
    /// Origin-Host of the HSS. Empty: `hss.<origin_realm>`.
    pub origin_host: String,
    /// Origin-Realm of the HSS. Empty: the `domain`.
    pub origin_realm: String,
    /// Tw, the device watchdog interval (RFC 3539 §3.4.1), in seconds.
    pub watchdog_s: u64,
}

/// `[http]` of the HSS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Serve the REST API at all.
    pub enabled: bool,
    /// TCP address of the REST API (`/api/v1/subscribers`). Keep it on loopback unless
    /// it sits behind an authenticating proxy: it has no authentication of its own.
    pub listen: SocketAddr,
}

/// `[server_capabilities]`: the Server-Capabilities AVP (TS 29.229 §6.3.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct ServerCapabilitiesConfig {
    /// Mandatory-Capability values.
    pub mandatory: Vec<u32>,
    /// Optional-Capability values.
    pub optional: Vec<u32>,
    /// Server-Name values: the S-CSCF pool the I-CSCF may choose from.
    pub server_names: Vec<SipUri>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            enabled: true,
            listen: ([127, 0, 0, 1], 8080).into(),
        }
    }
}

impl Default for HssDiameterConfig {
    fn default() -> Self {
        HssDiameterConfig {
            listen: ([0, 0, 0, 0], 3868).into(),
            origin_host: String::new(),
            origin_realm: String::new(),
            watchdog_s: 30,
        }
    }
}

impl Default for HssConfig {
    fn default() -> Self {
        HssConfig {
            domain: default_domain(),
            log: LogConfig::default(),
            diameter: HssDiameterConfig::default(),
            http: HttpConfig::default(),
            database: DatabaseConfig::sqlite("hss.db"),
            server_capabilities: ServerCapabilitiesConfig::default(),
        }
    }
}

impl HssConfig {
    /// The all-in-one defaults: everything on loopback.
    pub fn loopback() -> Self {
        let mut c = HssConfig::default();
        c.diameter.listen = ([127, 0, 0, 1], 3868).into();
        c
    }
}

impl RoleConfig for HssConfig {
    fn env_path(role: &str, path: &[String]) -> Option<Vec<String>> {
        (role == "hss").then(|| path.to_vec())
    }

    fn resolve(&mut self) {
        if self.diameter.origin_realm.is_empty() {
            self.diameter.origin_realm = self.domain.clone();
        }
        if self.diameter.origin_host.is_empty() {
            self.diameter.origin_host = format!("hss.{}", self.diameter.origin_realm);
        }
    }

    fn validate(&self, issues: &mut Issues) {
        issues.diameter_identity("domain", &self.domain);
        self.log.validate(issues);
        issues.diameter_identity("diameter.origin_host", &self.diameter.origin_host);
        issues.diameter_identity("diameter.origin_realm", &self.diameter.origin_realm);
        if self.diameter.listen.port() == 0 {
            issues.add("diameter.listen", "port 0 is not allowed");
        }
        if self.diameter.watchdog_s < 6 {
            issues.add(
                "diameter.watchdog_s",
                "Tw must be at least 6 seconds (RFC 3539 §3.4.1)",
            );
        }
        if self.http.enabled && self.http.listen == self.diameter.listen {
            issues.add(
                "http.listen",
                format!("{} is also diameter.listen", self.http.listen),
            );
        }
        self.database.validate(issues);
        let sc = &self.server_capabilities;
        for (i, n) in sc.server_names.iter().enumerate() {
            if sc.server_names[..i].contains(n) {
                issues.add(
                    format!("server_capabilities.server_names[{i}]"),
                    format!("{n} is listed twice"),
                );
            }
        }
    }
}
