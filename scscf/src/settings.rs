//! Plain-data settings of the S-CSCF core, filled from `ims_config::ScscfConfig` by
//! the service (or directly by tests).

use std::time::Duration;

/// What the registrar and notifier need to know about themselves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Own SIP URI, sent as Server-Name in MAR/SAR (e.g. `sip:scscf.ims.test:6060`).
    pub server_name: String,
    /// Digest realm; `None` takes the host part of the registered IMPU.
    pub realm: Option<String>,
    /// Smallest accepted registration expiry (423 below it).
    pub min_expires: u32,
    /// Largest granted registration expiry (longer requests are cut to it).
    pub max_expires: u32,
    /// Expiry when the REGISTER gives none.
    pub default_expires: u32,
    /// Lifetime of an issued nonce.
    pub nonce_ttl: Duration,
    /// reg-event subscription expiry when SUBSCRIBE gives none.
    pub subscribe_default_expires: u32,
    /// Largest granted reg-event subscription expiry.
    pub subscribe_max_expires: u32,
    /// Deadline for one Cx request (kept well under Timer F = 64·T1 = 32 s).
    pub hss_timeout: Duration,
    /// `Retry-After` seconds on transient HSS failures.
    pub retry_after: u32,
    /// Explicit `Service-Route` URI; `None`: `sip:orig@<host:port>;lr`.
    pub service_route: Option<String>,
    /// Most contacts one registration may hold (more: 403).
    pub max_contacts: u32,
    /// Accept SUBSCRIBE to the reg event.
    pub reg_event: bool,
}

impl Settings {
    /// Defaults for a server name.
    pub fn new(server_name: impl Into<String>) -> Settings {
        Settings {
            server_name: server_name.into(),
            realm: None,
            min_expires: 60,
            max_expires: 600_000,
            default_expires: 3600,
            nonce_ttl: Duration::from_secs(30),
            subscribe_default_expires: 600_000,
            subscribe_max_expires: 600_000,
            hss_timeout: Duration::from_secs(5),
            retry_after: 30,
            service_route: None,
            max_contacts: 10,
            reg_event: true,
        }
    }

    /// From the role's configuration file.
    pub fn from_config(cfg: &ims_config::ScscfConfig) -> Settings {
        let mut s = Settings::new(cfg.uri.to_string());
        s.realm = Some(cfg.domain.clone());
        s.min_expires = cfg.registration.min_expires;
        s.max_expires = cfg.registration.max_expires;
        s.default_expires = cfg.registration.default_expires;
        s.max_contacts = cfg.registration.max_contacts;
        s.nonce_ttl = Duration::from_secs(cfg.auth.nonce_ttl_s);
        s.subscribe_max_expires = cfg.reg_event.max_expires;
        s.subscribe_default_expires = s.subscribe_default_expires.min(cfg.reg_event.max_expires);
        s.reg_event = cfg.reg_event.enabled;
        s.hss_timeout = Duration::from_millis(cfg.diameter.request_timeout_ms);
        if !cfg.service_route.is_empty() {
            s.service_route = Some(cfg.service_route.clone());
        }
        s
    }

    /// `host[:port]` of the server name.
    pub fn host_port(&self) -> String {
        host_port_of(&self.server_name)
    }

    /// The `Service-Route` value: `<sip:orig@host:port;lr>` (TS 24.229 §5.4.1.2.2).
    pub fn service_route(&self) -> String {
        match &self.service_route {
            Some(r) if r.starts_with('<') => r.clone(),
            Some(r) => format!("<{r}>"),
            None => format!("<sip:orig@{};lr>", self.host_port()),
        }
    }
}

/// `host[:port]` of a SIP URI (`sip:user@host:port;params` → `host:port`).
pub fn host_port_of(uri: &str) -> String {
    let u = uri.trim().trim_start_matches('<');
    let u = u.split('>').next().unwrap_or(u);
    let u = u
        .strip_prefix("sips:")
        .or_else(|| u.strip_prefix("sip:"))
        .unwrap_or(u);
    let u = u.rsplit_once('@').map(|(_, h)| h).unwrap_or(u);
    let end = u.find([';', '?']).unwrap_or(u.len());
    u[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_example_config() {
        let text = include_str!("../../config/examples/scscf.toml");
        let cfg = ims_config::ScscfConfig::from_toml_str(text).expect("example loads");
        let s = Settings::from_config(&cfg);
        assert_eq!(s.server_name, "sip:127.0.0.1:5080");
        assert_eq!(
            s.realm.as_deref(),
            Some("ims.mnc001.mcc001.3gppnetwork.org")
        );
        assert_eq!(s.service_route(), "<sip:127.0.0.1:5080;lr;orig>");
        assert_eq!(
            (s.min_expires, s.max_expires, s.default_expires),
            (60, 600_000, 3600)
        );
        assert_eq!(s.hss_timeout, Duration::from_millis(2000));
        assert_eq!(s.nonce_ttl, Duration::from_secs(60));
    }

    #[test]
    fn service_route_from_server_name() {
        let s = Settings::new("sip:scscf.ims.test:6060");
        assert_eq!(s.service_route(), "<sip:orig@scscf.ims.test:6060;lr>");
        assert_eq!(
            host_port_of("<sip:a@[::1]:5060;transport=tcp>"),
            "[::1]:5060"
        );
        assert_eq!(host_port_of("sip:pcscf.ims.test;lr"), "pcscf.ims.test");
    }
}
