//! `all-in-one.toml`: HSS, P-CSCF, I-CSCF and S-CSCF in one process on loopback
//! (the `ims-core` binary). Each role keeps its own section with the same keys as its
//! own file; the top-level `domain` is copied into every role section that does not
//! set one.

use crate::common::{default_domain, LogConfig};
use crate::hss::HssConfig;
use crate::icscf::IcscfConfig;
use crate::load::RoleConfig;
use crate::pcscf::PcscfConfig;
use crate::scscf::ScscfConfig;
use crate::validate::Issues;
use serde::{Deserialize, Serialize};
use std::fmt;

const ROLES: [&str; 4] = ["hss", "pcscf", "icscf", "scscf"];

/// The all-in-one lab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AllInOneConfig {
    /// Home network domain, copied into each role section that has no `domain`.
    pub domain: String,
    /// `[log]`: the process-wide filter (the roles' own `[log]` sections are not used
    /// in the all-in-one process).
    pub log: LogConfig,
    /// `[demo]`: a subscriber provisioned at start.
    pub demo: DemoSubscriberConfig,
    /// `[hss]`: as `hss.toml`, Diameter on 127.0.0.1:3868.
    pub hss: HssConfig,
    /// `[pcscf]`: as `pcscf.toml`, UEs on 127.0.0.1:5060 UDP and TCP.
    pub pcscf: PcscfConfig,
    /// `[icscf]`: as `icscf.toml`, on 127.0.0.1:5070.
    pub icscf: IcscfConfig,
    /// `[scscf]`: as `scscf.toml`, on 127.0.0.1:5080.
    pub scscf: ScscfConfig,
}

/// `[demo]`: a subscriber added to the HSS at start (if not there yet), so a SIP
/// client can register right away. K and OP default to printable ASCII bytes so
/// SIPp (which takes `aka_K`/`aka_OP` as raw strings) can use them.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DemoSubscriberConfig {
    /// Provision it at all.
    pub enabled: bool,
    /// IMSI; the IMPI is `<imsi>@<domain>`.
    pub imsi: String,
    /// Public identity. Empty: `sip:<imsi>@<domain>`.
    pub impu: String,
    /// K, 32 hex digits.
    pub k: String,
    /// OP, 32 hex digits.
    pub op: String,
    /// AMF, 4 hex digits (default "4141", the bytes of "AA", so SIPp's aka_AMF can take it).
    pub amf: String,
}

impl fmt::Debug for DemoSubscriberConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DemoSubscriberConfig")
            .field("enabled", &self.enabled)
            .field("imsi", &self.imsi)
            .field("impu", &self.impu)
            .field("k", &"<redacted>")
            .field("op", &"<redacted>")
            .field("amf", &self.amf)
            .finish()
    }
}

impl Default for DemoSubscriberConfig {
    fn default() -> Self {
        DemoSubscriberConfig {
            enabled: true,
            imsi: "001010000000001".into(),
            impu: String::new(),
            // "0123456789abcdef" and "fedcba9876543210" as bytes.
            k: "30313233343536373839616263646566".into(),
            op: "66656463626139383736353433323130".into(),
            amf: "4141".into(),
        }
    }
}

impl Default for AllInOneConfig {
    fn default() -> Self {
        AllInOneConfig {
            domain: default_domain(),
            log: LogConfig::default(),
            demo: DemoSubscriberConfig::default(),
            hss: HssConfig::loopback(),
            pcscf: PcscfConfig::default(),
            icscf: IcscfConfig::default(),
            scscf: ScscfConfig::default(),
        }
    }
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.chars().all(|c| c.is_ascii_hexdigit())
}

impl RoleConfig for AllInOneConfig {
    fn env_path(role: &str, path: &[String]) -> Option<Vec<String>> {
        if role == "core" {
            return Some(path.to_vec());
        }
        ROLES.contains(&role).then(|| {
            let mut p = vec![role.to_owned()];
            p.extend_from_slice(path);
            p
        })
    }

    fn prepare(table: &mut toml::Table) {
        let Some(domain) = table.get("domain").cloned() else {
            return;
        };
        for role in ROLES {
            let section = table
                .entry(role)
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let toml::Value::Table(t) = section {
                t.entry("domain").or_insert_with(|| domain.clone());
            }
        }
    }

    fn resolve(&mut self) {
        self.hss.resolve();
        self.pcscf.resolve();
        self.icscf.resolve();
        self.scscf.resolve();
        if self.demo.impu.is_empty() {
            self.demo.impu = format!("sip:{}@{}", self.demo.imsi, self.domain);
        }
    }

    fn validate(&self, issues: &mut Issues) {
        issues.diameter_identity("domain", &self.domain);
        self.log.validate(issues);
        let mut sub = Issues::with_prefix("hss.");
        self.hss.validate(&mut sub);
        issues.extend(sub);
        let mut sub = Issues::with_prefix("pcscf.");
        self.pcscf.validate(&mut sub);
        issues.extend(sub);
        let mut sub = Issues::with_prefix("icscf.");
        self.icscf.validate(&mut sub);
        issues.extend(sub);
        let mut sub = Issues::with_prefix("scscf.");
        self.scscf.validate(&mut sub);
        issues.extend(sub);
        self.validate_across_roles(issues);
        let d = &self.demo;
        if d.enabled {
            if d.imsi.len() < 6 || d.imsi.len() > 15 || !d.imsi.chars().all(|c| c.is_ascii_digit())
            {
                issues.add("demo.imsi", format!("{:?} is not 6-15 digits", d.imsi));
            }
            issues.optional_sip_uri("demo.impu", &d.impu);
            if !is_hex(&d.k, 32) {
                issues.add("demo.k", "must be 32 hex digits");
            }
            if !is_hex(&d.op, 32) {
                issues.add("demo.op", "must be 32 hex digits");
            }
            if !is_hex(&d.amf, 4) {
                issues.add("demo.amf", "must be 4 hex digits");
            }
        }
    }
}

impl AllInOneConfig {
    fn validate_across_roles(&self, issues: &mut Issues) {
        let roles = [
            ("pcscf", &self.pcscf.sip),
            ("icscf", &self.icscf.sip),
            ("scscf", &self.scscf.sip),
        ];
        for (i, (name, sip)) in roles.iter().enumerate() {
            for (j, l) in sip.listen.iter().enumerate() {
                for (other, osip) in &roles[..i] {
                    if osip.listen.contains(l) {
                        issues.add(
                            format!("{name}.sip.listen[{j}]"),
                            format!("{l} is also a listener of {other}"),
                        );
                    }
                }
            }
        }
        let hss = self.hss.diameter.listen;
        for (name, peers) in [
            ("icscf", &self.icscf.diameter.peers),
            ("scscf", &self.scscf.diameter.peers),
        ] {
            let reaches = peers.iter().any(|p| match p.socket_addr() {
                Some(a) => a == hss || (hss.ip().is_unspecified() && a.port() == hss.port()),
                None => p.port == hss.port(),
            });
            if !reaches {
                issues.add(
                    format!("{name}.diameter.peers"),
                    format!("no peer is the HSS of this process (hss.diameter.listen = {hss})"),
                );
            }
        }
    }
}
