//! `pcscf.toml`: the P-CSCF — Gm listeners (TS 24.229 §5.2), next hop for REGISTER,
//! sec-agree / IPsec (TS 33.203 §7, RFC 3329), registration store, media relay.

use crate::common::{default_domain, DatabaseConfig, LogConfig, SipConfig, TimersConfig};
use crate::load::RoleConfig;
use crate::types::{AlgPair, EncryptionAlg, IntegrityAlg, PortRange, SipUri};
use crate::validate::Issues;
use serde::{Deserialize, Serialize};
use std::net::{Ipv4Addr, Ipv6Addr};

/// The P-CSCF.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PcscfConfig {
    /// Home network domain.
    pub domain: String,
    /// Next hop for REGISTER: the I-CSCF (a `sip:` URI; `;lr` is added when routing).
    pub icscf_uri: SipUri,
    /// Value of `P-Visited-Network-ID` (TS 24.229 §7.2A.7). Empty: the `domain`.
    pub visited_network_id: String,
    /// `[log]`.
    pub log: LogConfig,
    /// `[sip]`: the Gm (and Mw) listeners. The unprotected Gm port is the port UEs
    /// send their first REGISTER to.
    pub sip: SipConfig,
    /// `[timers]`.
    pub timers: TimersConfig,
    /// `[ipsec]`: sec-agree and ESP SAs on Gm.
    pub ipsec: IpsecConfig,
    /// `[registration]`.
    pub registration: PcscfRegistrationConfig,
    /// `[database]`: registrations that survive a restart.
    pub database: DatabaseConfig,
    /// `[media]`.
    pub media: MediaConfig,
}

/// `[ipsec]` of the P-CSCF (TS 33.203 §7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IpsecConfig {
    /// Offer `Security-Server` and install ESP SAs (needs CAP_NET_ADMIN and ESP in
    /// the kernel).
    pub enabled: bool,
    /// IPv4 address UEs reach the P-CSCF on (the SAs' P-CSCF side). Empty: none.
    pub gm_address_v4: Option<Ipv4Addr>,
    /// IPv6 address UEs reach the P-CSCF on. Empty: none.
    pub gm_address_v6: Option<Ipv6Addr>,
    /// Protected client ports (`port-c`) of the P-CSCF, one per SA set.
    pub port_c: PortRange,
    /// Protected server ports (`port-s`) of the P-CSCF, one per SA set.
    pub port_s: PortRange,
    /// First SPI handed out (SPIs 1–255 are reserved, RFC 4303 §2.1).
    pub spi_start: u32,
    /// Number of SPIs in the pool, from `spi_start`.
    pub spi_range: u32,
    /// Most UEs with SAs at once; more get 503 on REGISTER.
    pub max_ues: u32,
    /// Acceptable (alg, ealg) pairs, best first; the first the UE also offers wins.
    pub algorithms: Vec<AlgPair>,
    /// Policy for a REGISTER without `Security-Client`: true = register it without
    /// IPsec (labs, SIPp), false = refuse with 421 Extension Required.
    pub allow_unprotected: bool,
    /// After de-registration, keep the UE's SAs this long so the 200 OK and the
    /// reg-event NOTIFY still go out protected, in ms.
    pub dereg_grace_ms: u64,
    /// How long an SA set built for a 401 waits for the UE's protected REGISTER
    /// before it is removed, in s (TS 33.203 §7.2: the UE answers the challenge
    /// through the new SAs; its REGISTER transaction gives up after Timer F, 32 s
    /// with the default T1). Must be greater than 0.
    pub unanswered_challenge_s: u64,
    /// Write every SA (SPI, addresses, algorithms, keys) to this file in Wireshark's
    /// ESP SA table format (`esp_sa`), so captures can be decrypted. Contains keys:
    /// lab use only. Absent: off.
    pub wireshark_esp_sa_file: Option<String>,
    /// What SIGTERM/SIGINT does with the P-CSCF's SAs and policies: `"remove"` (the
    /// default: nothing is left in the kernel; IPsec UEs must register again after a
    /// restart) or `"keep"` (they stay for the next start to adopt, so a restart does
    /// not break registered UEs). Either way, at start the SAs of restored
    /// registrations are adopted and every other SA of ours is removed.
    pub sas_on_shutdown: SasOnShutdown,
}

/// `[ipsec] sas_on_shutdown`: the P-CSCF's SAs on a clean stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SasOnShutdown {
    /// Remove every SA and policy of the P-CSCF (`"remove"`).
    #[default]
    Remove,
    /// Leave them in the kernel for the next start to adopt (`"keep"`).
    Keep,
}

impl SasOnShutdown {
    /// The value as written in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            SasOnShutdown::Remove => "remove",
            SasOnShutdown::Keep => "keep",
        }
    }
}

impl std::fmt::Display for SasOnShutdown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for SasOnShutdown {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "remove" => Ok(SasOnShutdown::Remove),
            "keep" => Ok(SasOnShutdown::Keep),
            _ => Err(format!("{s:?} is not \"remove\" or \"keep\"")),
        }
    }
}

impl Serialize for SasOnShutdown {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for SasOnShutdown {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = SasOnShutdown;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("\"remove\" or \"keep\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<SasOnShutdown, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

/// `[registration]` of the P-CSCF.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PcscfRegistrationConfig {
    /// Subscribe to the reg event package of each registered IMPU (TS 24.229 §5.2.3)
    /// to learn network-initiated de-registrations.
    pub subscribe_reg_event: bool,
}

/// `[media]` of the P-CSCF.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct MediaConfig {
    /// UDP address of an rtpengine-compatible `ng` control socket (e.g.
    /// `"127.0.0.1:2223"`). Absent: SDP is not rewritten, media flows end to end.
    pub relay_ng: Option<std::net::SocketAddr>,
}

impl Default for IpsecConfig {
    fn default() -> Self {
        let pairs = [
            "hmac-sha-1-96/aes-cbc",
            "hmac-md5-96/aes-cbc",
            "hmac-sha-1-96/des-ede3-cbc",
            "hmac-md5-96/des-ede3-cbc",
            "hmac-sha-1-96/null",
            "hmac-md5-96/null",
        ];
        IpsecConfig {
            enabled: false,
            gm_address_v4: Some(Ipv4Addr::LOCALHOST),
            gm_address_v6: None,
            port_c: PortRange {
                first: 5100,
                last: 5599,
            },
            port_s: PortRange {
                first: 6100,
                last: 6599,
            },
            spi_start: 10_000,
            spi_range: 1_000_000,
            max_ues: 10_000,
            algorithms: pairs.iter().filter_map(|p| p.parse().ok()).collect(),
            allow_unprotected: true,
            dereg_grace_ms: 2000,
            unanswered_challenge_s: 60,
            wireshark_esp_sa_file: None,
            sas_on_shutdown: SasOnShutdown::Remove,
        }
    }
}

impl Default for PcscfRegistrationConfig {
    fn default() -> Self {
        PcscfRegistrationConfig {
            subscribe_reg_event: true,
        }
    }
}

impl Default for PcscfConfig {
    fn default() -> Self {
        PcscfConfig {
            domain: default_domain(),
            icscf_uri: "sip:127.0.0.1:5070"
                .parse()
                .unwrap_or_else(|e: String| unreachable!("{e}")),
            visited_network_id: String::new(),
            log: LogConfig::default(),
            sip: SipConfig::udp_tcp(([127, 0, 0, 1], 5060).into()),
            timers: TimersConfig::default(),
            ipsec: IpsecConfig::default(),
            registration: PcscfRegistrationConfig::default(),
            database: DatabaseConfig::sqlite("pcscf.db"),
            media: MediaConfig::default(),
        }
    }
}

impl RoleConfig for PcscfConfig {
    fn env_path(role: &str, path: &[String]) -> Option<Vec<String>> {
        (role == "pcscf").then(|| path.to_vec())
    }

    fn resolve(&mut self) {
        if self.visited_network_id.is_empty() {
            self.visited_network_id = self.domain.clone();
        }
    }

    fn validate(&self, issues: &mut Issues) {
        issues.diameter_identity("domain", &self.domain);
        issues.non_empty("visited_network_id", &self.visited_network_id);
        self.log.validate(issues);
        self.sip.validate(issues);
        self.timers.validate(issues);
        self.database.validate(issues);
        self.validate_ipsec(issues);
    }
}

impl PcscfConfig {
    fn validate_ipsec(&self, issues: &mut Issues) {
        let ip = &self.ipsec;
        issues.port_range("ipsec.port_c", &ip.port_c);
        issues.port_range("ipsec.port_s", &ip.port_s);
        if ip.port_c.overlaps(&ip.port_s) {
            issues.add(
                "ipsec.port_s",
                format!("range {} overlaps ipsec.port_c {}", ip.port_s, ip.port_c),
            );
        }
        for (i, l) in self.sip.listen.iter().enumerate() {
            let port = l.addr.port();
            for (key, range) in [("ipsec.port_c", &ip.port_c), ("ipsec.port_s", &ip.port_s)] {
                if range.contains(port) {
                    issues.add(
                        key,
                        format!("range {range} contains the Gm port {port} (sip.listen[{i}])"),
                    );
                }
            }
        }
        if ip.spi_start < 256 {
            issues.add(
                "ipsec.spi_start",
                "SPIs 0-255 are reserved (RFC 4303 §2.1); start at 256 or above",
            );
        }
        if ip.spi_range == 0 {
            issues.add("ipsec.spi_range", "must be greater than 0");
        } else if u64::from(ip.spi_start) + u64::from(ip.spi_range) - 1 > u64::from(u32::MAX) {
            issues.add(
                "ipsec.spi_range",
                format!(
                    "spi_start + spi_range exceeds the 32-bit SPI space ({})",
                    u32::MAX
                ),
            );
        }
        if ip.max_ues == 0 {
            issues.add("ipsec.max_ues", "must be greater than 0");
        }
        if ip.unanswered_challenge_s == 0 {
            issues.add(
                "ipsec.unanswered_challenge_s",
                "must be greater than 0 (an SA set needs time for the UE's protected REGISTER)",
            );
        }
        if ip.enabled {
            if ip.gm_address_v4.is_none() && ip.gm_address_v6.is_none() {
                issues.add(
                    "ipsec.gm_address_v4",
                    "IPsec is enabled but neither gm_address_v4 nor gm_address_v6 is set",
                );
            }
            if ip.algorithms.is_empty() {
                issues.add(
                    "ipsec.algorithms",
                    "IPsec is enabled but no algorithm is allowed",
                );
            }
            // Each SA set needs 2 SPIs (spi-c, spi-s); during re-registration a UE
            // holds two sets.
            if u64::from(ip.spi_range) < 4 * u64::from(ip.max_ues) {
                issues.add(
                    "ipsec.spi_range",
                    format!(
                        "{} SPIs cannot serve max_ues = {} (4 per UE during re-registration)",
                        ip.spi_range, ip.max_ues
                    ),
                );
            }
        }
        for (i, p) in ip.algorithms.iter().enumerate() {
            if ip.algorithms[..i].contains(p) {
                issues.add(
                    format!("ipsec.algorithms[{i}]"),
                    format!("{p} is listed twice"),
                );
            }
        }
        if let Some(f) = &ip.wireshark_esp_sa_file {
            if f.trim().is_empty() {
                issues.add(
                    "ipsec.wireshark_esp_sa_file",
                    "is empty (remove the key to turn it off)",
                );
            }
        }
    }

    /// The sec-agree choices as (alg, ealg) tuples, best first.
    pub fn ipsec_preferences(&self) -> Vec<(IntegrityAlg, EncryptionAlg)> {
        self.ipsec
            .algorithms
            .iter()
            .map(|p| (p.alg, p.ealg))
            .collect()
    }
}
