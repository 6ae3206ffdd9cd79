//! `icscf.toml`: the I-CSCF — Mw listeners, Cx client towards the HSS (UAR/LIR,
//! TS 29.228 §6.1.1/§6.1.5) and S-CSCF selection by capabilities (TS 29.228 §6.3.4,
//! TS 24.229 §5.3.1.2).

use crate::common::{default_domain, DiameterClientConfig, LogConfig, SipConfig, TimersConfig};
use crate::load::RoleConfig;
use crate::types::SipUri;
use crate::validate::Issues;
use serde::{Deserialize, Serialize};

/// The I-CSCF.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IcscfConfig {
    /// Home network domain.
    pub domain: String,
    /// S-CSCFs to use, in order, when the HSS names no Server-Name and the
    /// capability list below has no match (or the HSS returned no capabilities).
    pub scscf_fallback: Vec<SipUri>,
    /// `[log]`.
    pub log: LogConfig,
    /// `[sip]`.
    pub sip: SipConfig,
    /// `[timers]`.
    pub timers: TimersConfig,
    /// `[diameter]`: Cx towards the HSS.
    pub diameter: DiameterClientConfig,
    /// `[[scscf]]`: S-CSCFs and the capabilities each one has, for selection from
    /// the UAA's Server-Capabilities (all mandatory ones required, most optional
    /// ones preferred).
    pub scscf: Vec<ScscfCapabilities>,
}

/// One `[[scscf]]` entry of the I-CSCF.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScscfCapabilities {
    /// The S-CSCF's SIP URI (as the HSS knows it, Server-Name).
    pub uri: SipUri,
    /// Capability values this S-CSCF has.
    #[serde(default)]
    pub capabilities: Vec<u32>,
}

impl Default for IcscfConfig {
    fn default() -> Self {
        IcscfConfig {
            domain: default_domain(),
            scscf_fallback: vec!["sip:127.0.0.1:5080"
                .parse()
                .unwrap_or_else(|e: String| unreachable!("{e}"))],
            log: LogConfig::default(),
            sip: SipConfig::udp_tcp(([127, 0, 0, 1], 5070).into()),
            timers: TimersConfig::default(),
            diameter: DiameterClientConfig::default(),
            scscf: Vec::new(),
        }
    }
}

impl RoleConfig for IcscfConfig {
    fn env_path(role: &str, path: &[String]) -> Option<Vec<String>> {
        (role == "icscf").then(|| path.to_vec())
    }

    fn resolve(&mut self) {
        self.diameter.resolve("icscf", &self.domain);
    }

    fn validate(&self, issues: &mut Issues) {
        issues.diameter_identity("domain", &self.domain);
        self.log.validate(issues);
        self.sip.validate(issues);
        self.timers.validate(issues);
        self.diameter.validate(issues, &self.timers);
        if self.scscf_fallback.is_empty() && self.scscf.is_empty() {
            issues.add(
                "scscf_fallback",
                "no S-CSCF is configured (neither scscf_fallback nor [[scscf]]): first registrations could not be served",
            );
        }
        for (i, u) in self.scscf_fallback.iter().enumerate() {
            if self.scscf_fallback[..i].contains(u) {
                issues.add(
                    format!("scscf_fallback[{i}]"),
                    format!("{u} is listed twice"),
                );
            }
        }
        for (i, s) in self.scscf.iter().enumerate() {
            if self.scscf[..i].iter().any(|o| o.uri == s.uri) {
                issues.add(
                    format!("scscf[{i}].uri"),
                    format!("{} is listed twice", s.uri),
                );
            }
        }
    }
}
