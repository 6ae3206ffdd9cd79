//! `scscf.toml`: the S-CSCF — registrar (RFC 3261 §10, TS 24.229 §5.4.1), AKA/Digest
//! authentication (RFC 3310), Cx client (MAR/SAR, TS 29.228), reg event (RFC 3680).

use crate::common::{
    default_domain, DatabaseConfig, DiameterClientConfig, LogConfig, SipConfig, TimersConfig,
};
use crate::load::RoleConfig;
use crate::types::SipUri;
use crate::validate::Issues;
use serde::{Deserialize, Serialize};

/// The S-CSCF.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScscfConfig {
    /// Home network domain (the digest realm).
    pub domain: String,
    /// This S-CSCF's SIP URI; also its Server-Name towards the HSS (SAR), so it must
    /// be a URI the I-CSCF can route to.
    pub uri: SipUri,
    /// `Service-Route` returned in the 200 OK to REGISTER. Empty: `uri` with `;lr;orig`.
    pub service_route: String,
    /// `[log]`.
    pub log: LogConfig,
    /// `[sip]`.
    pub sip: SipConfig,
    /// `[timers]`.
    pub timers: TimersConfig,
    /// `[diameter]`: Cx towards the HSS.
    pub diameter: DiameterClientConfig,
    /// `[registration]`.
    pub registration: RegistrationConfig,
    /// `[auth]`.
    pub auth: AuthConfig,
    /// `[database]`: bindings that survive a restart.
    pub database: DatabaseConfig,
    /// `[reg_event]`: the reg event package notifier (RFC 3680).
    pub reg_event: RegEventConfig,
}

/// `[registration]` of the S-CSCF: Expires handling (RFC 3261 §10.3 steps 7–8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistrationConfig {
    /// Shorter non-zero expiry requests get 423 Interval Too Brief with `Min-Expires`.
    pub min_expires: u32,
    /// Longer expiry requests are shortened to this, in seconds.
    pub max_expires: u32,
    /// Expiry used when the REGISTER asks for none, in seconds.
    pub default_expires: u32,
    /// Most contacts one IMPU may register at once; more get 403.
    pub max_contacts: u32,
}

/// `[auth]` of the S-CSCF.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// How long a challenge (nonce) stays valid, in seconds; later answers get a new
    /// 401 with `stale=true`.
    pub nonce_ttl_s: u64,
    /// Vectors asked for per MAR (SIP-Number-Auth-Items).
    pub vectors_per_mar: u32,
}

/// `[reg_event]` of the S-CSCF.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegEventConfig {
    /// Accept SUBSCRIBE to the `reg` event and send NOTIFYs.
    pub enabled: bool,
    /// Longest subscription granted, in seconds.
    pub max_expires: u32,
}

impl Default for RegistrationConfig {
    fn default() -> Self {
        RegistrationConfig {
            min_expires: 60,
            max_expires: 600_000,
            default_expires: 3600,
            max_contacts: 10,
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            nonce_ttl_s: 60,
            vectors_per_mar: 1,
        }
    }
}

impl Default for RegEventConfig {
    fn default() -> Self {
        RegEventConfig {
            enabled: true,
            max_expires: 600_000,
        }
    }
}

impl Default for ScscfConfig {
    fn default() -> Self {
        ScscfConfig {
            domain: default_domain(),
            uri: "sip:127.0.0.1:5080"
                .parse()
                .unwrap_or_else(|e: String| unreachable!("{e}")),
            service_route: String::new(),
            log: LogConfig::default(),
            sip: SipConfig::udp_tcp(([127, 0, 0, 1], 5080).into()),
            timers: TimersConfig::default(),
            diameter: DiameterClientConfig::default(),
            registration: RegistrationConfig::default(),
            auth: AuthConfig::default(),
            database: DatabaseConfig::sqlite("scscf.db"),
            reg_event: RegEventConfig::default(),
        }
    }
}

impl RoleConfig for ScscfConfig {
    fn env_path(role: &str, path: &[String]) -> Option<Vec<String>> {
        (role == "scscf").then(|| path.to_vec())
    }

    fn resolve(&mut self) {
        self.diameter.resolve("scscf", &self.domain);
        if self.service_route.is_empty() {
            self.service_route = format!("{};lr;orig", self.uri);
        }
    }

    fn validate(&self, issues: &mut Issues) {
        issues.diameter_identity("domain", &self.domain);
        issues.optional_sip_uri("service_route", &self.service_route);
        self.log.validate(issues);
        self.sip.validate(issues);
        self.timers.validate(issues);
        self.diameter.validate(issues, &self.timers);
        self.database.validate(issues);
        let r = &self.registration;
        if r.min_expires > r.default_expires {
            issues.add(
                "registration.min_expires",
                format!(
                    "min_expires ({}) is greater than default_expires ({})",
                    r.min_expires, r.default_expires
                ),
            );
        }
        if r.default_expires > r.max_expires {
            issues.add(
                "registration.default_expires",
                format!(
                    "default_expires ({}) is greater than max_expires ({})",
                    r.default_expires, r.max_expires
                ),
            );
        }
        if r.max_contacts == 0 {
            issues.add("registration.max_contacts", "must be greater than 0");
        }
        if self.auth.nonce_ttl_s == 0 {
            issues.add("auth.nonce_ttl_s", "must be greater than 0");
        }
        if self.auth.vectors_per_mar == 0 {
            issues.add("auth.vectors_per_mar", "must be greater than 0");
        }
        if self.reg_event.enabled && self.reg_event.max_expires == 0 {
            issues.add("reg_event.max_expires", "must be greater than 0");
        }
    }
}
