//! Sections shared by several roles: `[log]`, `[sip]`, `[timers]` (RFC 3261 §17.1.1.1
//! T1/T2/T4), `[database]` and the Diameter Cx client side `[diameter]` (RFC 6733,
//! TS 29.229) of the I-CSCF and S-CSCF.

use crate::types::{HostPort, Listen, Transport};
use crate::validate::Issues;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// Default home network domain (TS 23.003 §13.2 for MCC 001 / MNC 01, the test PLMN).
pub const DEFAULT_DOMAIN: &str = "ims.mnc001.mcc001.3gppnetwork.org";

pub(crate) fn default_domain() -> String {
    DEFAULT_DOMAIN.to_owned()
}

/// `[log]`: what the process prints through `tracing`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// A `tracing` filter: a level (`error`, `warn`, `info`, `debug`, `trace`) or
    /// directives like `info,ims_pcscf=debug`. `RUST_LOG`, when set, wins.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
        }
    }
}

impl LogConfig {
    pub(crate) fn validate(&self, issues: &mut Issues) {
        const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
        for directive in self.level.split(',') {
            let d = directive.trim();
            let level = d.rsplit_once('=').map(|x| x.1).unwrap_or(d);
            if d.is_empty() || !LEVELS.contains(&level.to_ascii_lowercase().as_str()) {
                issues.add(
                    "log.level",
                    format!(
                        "{d:?} is not a log level (expected off, error, warn, info, debug, trace or target=level)"
                    ),
                );
            }
        }
    }
}

/// Largest accepted `[sip] max_pending_requests`.
pub const MAX_PENDING_REQUESTS_CEILING: usize = 1_000_000;

/// `[sip]`: SIP listeners, transport limits (RFC 3261 §18) and overload control
/// (RFC 3261 §21.5.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SipConfig {
    /// Sockets to listen on, each `"udp:<ip>:<port>"` or `"tcp:<ip>:<port>"`
    /// (IPv6 as `[::1]:5060`).
    pub listen: Vec<Listen>,
    /// Host (name or IP) this node writes in Via, Record-Route, Path and Contact.
    /// Empty: the IP of the first listener.
    pub advertised_host: String,
    /// Largest SIP message accepted, in bytes (larger ones are refused / the TCP
    /// connection is closed).
    pub max_message_size: usize,
    /// A request larger than this goes over TCP instead of UDP (RFC 3261 §18.1.1: 1300,
    /// 200 bytes under a 1500-byte MTU).
    pub udp_size_limit: usize,
    /// A TCP connection with no traffic for this long is closed, in seconds
    /// (RFC 5626 keep-alives count as traffic).
    pub tcp_idle_timeout_s: u64,
    /// Most TCP connections kept open at once (accepted + opened).
    pub tcp_max_connections: usize,
    /// Overload control (RFC 3261 §21.5.4): most *new* out-of-dialog requests
    /// processed at once (each until its final response is sent); more are answered
    /// `503 Service Unavailable` with `Retry-After`. Responses, ACK, CANCEL and
    /// in-dialog requests are never refused. 0: no limit. The default, 10 000, is
    /// far above what a healthy chain holds (rate × latency: 900 requests/s × 70 ms
    /// ≈ 60) and is reached only when processing has collapsed; see
    /// `docs/overload.md` for sizing it to a measured capacity.
    pub max_pending_requests: usize,
    /// `Retry-After` of those 503 answers, in seconds (RFC 3261 §20.33; a UE waits
    /// this long before trying again, TS 24.229 §5.1.1.2, §5.1.2.2).
    pub overload_retry_after_s: u32,
}

impl SipConfig {
    /// Listeners on `ip:port` for both UDP and TCP.
    pub fn udp_tcp(addr: SocketAddr) -> Self {
        SipConfig {
            listen: vec![
                Listen {
                    transport: Transport::Udp,
                    addr,
                },
                Listen {
                    transport: Transport::Tcp,
                    addr,
                },
            ],
            ..SipConfig::default()
        }
    }

    /// The host to advertise: `advertised_host`, else the first listener's IP.
    pub fn advertised_host(&self) -> String {
        if !self.advertised_host.is_empty() {
            return self.advertised_host.clone();
        }
        match self.listen.first() {
            Some(l) if l.addr.is_ipv6() => format!("[{}]", l.addr.ip()),
            Some(l) => l.addr.ip().to_string(),
            None => String::new(),
        }
    }

    /// The port of the first listener (0 when none).
    pub fn port(&self) -> u16 {
        self.listen.first().map(|l| l.addr.port()).unwrap_or(0)
    }

    pub(crate) fn validate(&self, issues: &mut Issues) {
        if self.listen.is_empty() {
            issues.add("sip.listen", "at least one listener is needed");
        }
        for (i, a) in self.listen.iter().enumerate() {
            if self.listen[..i].contains(a) {
                issues.add(format!("sip.listen[{i}]"), format!("{a} is listed twice"));
            }
            if a.addr.port() == 0 {
                issues.add(
                    format!("sip.listen[{i}]"),
                    "port 0 is not allowed (other nodes must know the port)",
                );
            }
        }
        if self.advertised_host.contains(char::is_whitespace) {
            issues.add("sip.advertised_host", "must not contain whitespace");
        }
        if self.max_message_size < 1500 {
            issues.add("sip.max_message_size", "must be at least 1500 bytes");
        }
        if self.udp_size_limit == 0 || self.udp_size_limit > 65_507 {
            issues.add("sip.udp_size_limit", "must be between 1 and 65507 bytes");
        }
        if self.tcp_idle_timeout_s == 0 {
            issues.add("sip.tcp_idle_timeout_s", "must be greater than 0");
        }
        if self.tcp_max_connections == 0 {
            issues.add("sip.tcp_max_connections", "must be greater than 0");
        }
        if self.max_pending_requests > MAX_PENDING_REQUESTS_CEILING {
            issues.add(
                "sip.max_pending_requests",
                format!(
                    "{} is more than {MAX_PENDING_REQUESTS_CEILING}: that many requests in progress would take gigabytes and seconds of queueing before any is refused (0 means no limit)",
                    self.max_pending_requests
                ),
            );
        }
        if self.overload_retry_after_s == 0 || self.overload_retry_after_s > 3600 {
            issues.add(
                "sip.overload_retry_after_s",
                format!(
                    "{} is not between 1 and 3600 seconds (0 would ask refused UEs to retry at once; over an hour looks like an outage)",
                    self.overload_retry_after_s
                ),
            );
        }
    }
}

impl Default for SipConfig {
    fn default() -> Self {
        SipConfig {
            listen: Vec::new(),
            advertised_host: String::new(),
            max_message_size: 65_535,
            udp_size_limit: 1300,
            tcp_idle_timeout_s: 3600,
            tcp_max_connections: 10_000,
            max_pending_requests: 1_000,
            overload_retry_after_s: 5,
        }
    }
}

/// `[timers]`: RFC 3261 §17.1.1.1 / Table 4 timer values in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TimersConfig {
    /// T1, RTT estimate (500 ms). Timer B/F/H/J = 64·T1.
    pub t1_ms: u64,
    /// T2, longest retransmit interval of non-INVITE requests and INVITE responses (4 s).
    pub t2_ms: u64,
    /// T4, longest time a message stays in the network (5 s): Timer I/K.
    pub t4_ms: u64,
}

impl Default for TimersConfig {
    fn default() -> Self {
        TimersConfig {
            t1_ms: 500,
            t2_ms: 4000,
            t4_ms: 5000,
        }
    }
}

impl TimersConfig {
    /// Timer B / F: 64·T1, the time a client transaction waits for a final response.
    pub fn timer_b_ms(&self) -> u64 {
        self.t1_ms.saturating_mul(64)
    }

    pub(crate) fn validate(&self, issues: &mut Issues) {
        if self.t1_ms == 0 {
            issues.add("timers.t1_ms", "must be greater than 0");
        }
        if self.t4_ms == 0 {
            issues.add("timers.t4_ms", "must be greater than 0");
        }
        if self.t1_ms > self.t2_ms {
            issues.add(
                "timers.t1_ms",
                format!(
                    "T1 ({} ms) must not be greater than T2 ({} ms)",
                    self.t1_ms, self.t2_ms
                ),
            );
        }
    }
}

/// `[database]`: where state that must survive a restart is kept (sqlx).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://<file>` (created and migrated on first start) or
    /// `postgres://user:pass@host/db`.
    pub url: String,
    /// Largest number of pooled connections.
    pub max_connections: u32,
}

impl DatabaseConfig {
    /// A SQLite file database.
    pub fn sqlite(file: &str) -> Self {
        DatabaseConfig {
            url: format!("sqlite://{file}"),
            max_connections: 8,
        }
    }

    pub(crate) fn validate(&self, issues: &mut Issues) {
        issues.database_url("database.url", &self.url);
        if self.max_connections == 0 {
            issues.add("database.max_connections", "must be greater than 0");
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig::sqlite("ims.db")
    }
}

/// `[diameter]` of a Cx client (I-CSCF, S-CSCF): how to reach the HSS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DiameterClientConfig {
    /// HSS peers as `host:port`, tried in order (the first reachable is used, the
    /// others are failover).
    pub peers: Vec<HostPort>,
    /// Our Origin-Host (RFC 6733 §6.3). Empty: `<role>.<domain>`.
    pub origin_host: String,
    /// Our Origin-Realm. Empty: the `domain`.
    pub origin_realm: String,
    /// Destination-Realm of Cx requests. Empty: the `domain`.
    pub destination_realm: String,
    /// Destination-Host of Cx requests; empty: none (routed by realm).
    pub destination_host: String,
    /// How long one Cx request may take before the SIP side answers 5xx, in ms.
    /// Must be shorter than Timer B (64·T1).
    pub request_timeout_ms: u64,
    /// Tw, the device watchdog interval (RFC 3539 §3.4.1), in seconds.
    pub watchdog_s: u64,
    /// First reconnect delay after a peer is lost, doubled up to 30 s, in ms.
    pub reconnect_ms: u64,
}

impl Default for DiameterClientConfig {
    fn default() -> Self {
        DiameterClientConfig {
            peers: vec![HostPort {
                host: "127.0.0.1".into(),
                port: 3868,
            }],
            origin_host: String::new(),
            origin_realm: String::new(),
            destination_realm: String::new(),
            destination_host: String::new(),
            request_timeout_ms: 2000,
            watchdog_s: 30,
            reconnect_ms: 500,
        }
    }
}

impl DiameterClientConfig {
    /// Fill the derived defaults (origin host/realm, destination realm).
    pub(crate) fn resolve(&mut self, role: &str, domain: &str) {
        if self.origin_realm.is_empty() {
            self.origin_realm = domain.to_owned();
        }
        if self.origin_host.is_empty() {
            self.origin_host = format!("{role}.{}", self.origin_realm);
        }
        if self.destination_realm.is_empty() {
            self.destination_realm = domain.to_owned();
        }
    }

    pub(crate) fn validate(&self, issues: &mut Issues, timers: &TimersConfig) {
        if self.peers.is_empty() {
            issues.add("diameter.peers", "at least one HSS peer is needed");
        }
        for (i, p) in self.peers.iter().enumerate() {
            if self.peers[..i].contains(p) {
                issues.add(
                    format!("diameter.peers[{i}]"),
                    format!("{p} is listed twice"),
                );
            }
        }
        issues.diameter_identity("diameter.origin_host", &self.origin_host);
        issues.diameter_identity("diameter.origin_realm", &self.origin_realm);
        issues.diameter_identity("diameter.destination_realm", &self.destination_realm);
        if !self.destination_host.is_empty() {
            issues.diameter_identity("diameter.destination_host", &self.destination_host);
        }
        if self.request_timeout_ms == 0 {
            issues.add("diameter.request_timeout_ms", "must be greater than 0");
        } else if self.request_timeout_ms >= timers.timer_b_ms() {
            issues.add(
                "diameter.request_timeout_ms",
                format!(
                    "{} ms is not shorter than Timer B (64·T1 = {} ms): the SIP transaction would time out before the HSS answer",
                    self.request_timeout_ms,
                    timers.timer_b_ms()
                ),
            );
        }
        if self.watchdog_s < 6 {
            issues.add(
                "diameter.watchdog_s",
                "Tw must be at least 6 seconds (RFC 3539 §3.4.1)",
            );
        }
        if self.reconnect_ms == 0 {
            issues.add("diameter.reconnect_ms", "must be greater than 0");
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{IcscfConfig, NoEnv, PcscfConfig, ScscfConfig};

    #[test]
    fn overload_defaults() {
        let c = PcscfConfig::from_toml_str("").expect("defaults load");
        assert_eq!(c.sip.max_pending_requests, 1_000);
        assert_eq!(c.sip.overload_retry_after_s, 5);
    }

    #[test]
    fn overload_keys_from_the_file() {
        let text = "[sip]\nmax_pending_requests = 5\noverload_retry_after_s = 9\n";
        let c = IcscfConfig::from_toml_str(text).expect("loads");
        assert_eq!(
            (c.sip.max_pending_requests, c.sip.overload_retry_after_s),
            (5, 9)
        );
        let c = PcscfConfig::from_toml_str("[sip]\nmax_pending_requests = 0\n")
            .expect("0 (no limit) loads");
        assert_eq!(c.sip.max_pending_requests, 0);
    }

    #[test]
    fn overload_nonsense_is_reported_with_file_line_and_key() {
        let text = "[sip]\nmax_pending_requests = 2000000\noverload_retry_after_s = 0\n";
        let e =
            PcscfConfig::from_toml_str_with_env(text, "pcscf.toml", &NoEnv).expect_err("refused");
        let m = e
            .for_key("sip.max_pending_requests")
            .expect("limit reported");
        assert_eq!(m.line, Some(2));
        assert!(
            m.to_string()
                .starts_with("pcscf.toml:2: sip.max_pending_requests: 2000000 is more than"),
            "{m}"
        );
        let r = e
            .for_key("sip.overload_retry_after_s")
            .expect("retry reported");
        assert_eq!(r.line, Some(3));
        assert!(r.reason.contains("between 1 and 3600"), "{r}");
        assert_eq!(e.len(), 2, "{e}");

        let e = ScscfConfig::from_toml_str_with_env(
            "[sip]\nmax_pending_requests = -1\noverload_retry_after_s = 3601\n",
            "scscf.toml",
            &NoEnv,
        )
        .expect_err("refused");
        let m = e
            .for_key("sip.max_pending_requests")
            .expect("negative reported");
        assert!(m.to_string().starts_with("scscf.toml:2:"), "{m}");
        assert!(e.for_key("sip.overload_retry_after_s").is_some(), "{e}");
    }

    #[test]
    fn overload_keys_from_the_environment() {
        let env = [
            ("IMS_PCSCF__SIP__MAX_PENDING_REQUESTS", "5"),
            ("IMS_PCSCF__SIP__OVERLOAD_RETRY_AFTER_S", "12"),
        ];
        let c = PcscfConfig::from_toml_str_with_env(
            "[sip]\nmax_pending_requests = 100\n",
            "pcscf.toml",
            &env,
        )
        .expect("loads");
        assert_eq!(c.sip.max_pending_requests, 5, "env wins over the file");
        assert_eq!(c.sip.overload_retry_after_s, 12);

        let env = [("IMS_ICSCF__SIP__OVERLOAD_RETRY_AFTER_S", "0")];
        let e = IcscfConfig::from_toml_str_with_env("", "icscf.toml", &env).expect_err("0");
        let r = e.for_key("sip.overload_retry_after_s").expect("reported");
        assert_eq!(
            r.source,
            "environment variable IMS_ICSCF__SIP__OVERLOAD_RETRY_AFTER_S"
        );
    }
}
