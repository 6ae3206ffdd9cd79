//! What an HSS instance needs to start: identities, listen addresses, database, and
//! the S-CSCF selection policy. Built from `ims_config::HssConfig` or by hand (the
//! all-in-one binary and tests).

use std::net::SocketAddr;
use std::time::Duration;

use crate::service::{Capabilities, ServerPolicy};

/// Settings of one HSS instance.
#[derive(Debug, Clone)]
pub struct HssSettings {
    /// Diameter Origin-Host.
    pub origin_host: String,
    /// Diameter Origin-Realm.
    pub origin_realm: String,
    /// Cx listen address (default `0.0.0.0:3868`; tests use `127.0.0.1:0`).
    pub diameter_listen: SocketAddr,
    /// REST API listen address; `None` disables the API.
    pub http_listen: Option<SocketAddr>,
    /// Database URL or SQLite path (see [`crate::store::normalize_db_url`]).
    pub db_url: String,
    /// S-CSCF selection for users without an assigned S-CSCF.
    pub policy: ServerPolicy,
    /// How often to poll the DB for provisioning changes made by other processes.
    pub change_poll: Duration,
    /// Device watchdog interval Tw (RFC 3539 §3.4.1).
    pub watchdog: Duration,
}

impl HssSettings {
    /// Defaults for `realm`: Origin-Host `hss.<realm>`, Diameter on 0.0.0.0:3868, REST on
    /// 127.0.0.1:8080, `./hss.db`, S-CSCF pool `sip:scscf.<realm>:6060`.
    pub fn new(realm: &str) -> Self {
        Self {
            origin_host: format!("hss.{realm}"),
            origin_realm: realm.to_string(),
            diameter_listen: ([0, 0, 0, 0], 3868).into(),
            http_listen: Some(([127, 0, 0, 1], 8080).into()),
            db_url: crate::cli::DEFAULT_DB.to_string(),
            policy: ServerPolicy::single(format!("sip:scscf.{realm}:6060")),
            change_poll: Duration::from_millis(250),
            watchdog: Duration::from_secs(30),
        }
    }

    /// From the `ims-config` HSS configuration. `server_capabilities.server_names` is the
    /// S-CSCF pool; when mandatory/optional capabilities are configured, UAA/LIA carry
    /// Server-Capabilities instead of a Server-Name.
    pub fn from_config(c: &ims_config::HssConfig) -> Self {
        let mut s = Self::new(&c.diameter.origin_realm_or(&c.domain));
        if !c.diameter.origin_host.is_empty() {
            s.origin_host = c.diameter.origin_host.clone();
        }
        s.diameter_listen = c.diameter.listen;
        s.http_listen = c.http.enabled.then_some(c.http.listen);
        s.db_url = c.database.url.clone();
        s.watchdog = Duration::from_secs(c.diameter.watchdog_s.max(6));
        let sc = &c.server_capabilities;
        let names: Vec<String> = sc.server_names.iter().map(|n| n.to_string()).collect();
        if !sc.mandatory.is_empty() || !sc.optional.is_empty() {
            s.policy = ServerPolicy {
                scscf_pool: names.clone(),
                capabilities: Some(Capabilities {
                    mandatory: sc.mandatory.clone(),
                    optional: sc.optional.clone(),
                    server_names: names,
                }),
            };
        } else if !names.is_empty() {
            s.policy = ServerPolicy {
                scscf_pool: names,
                capabilities: None,
            };
        }
        s
    }
}

trait RealmOr {
    fn origin_realm_or(&self, domain: &str) -> String;
}

impl RealmOr for ims_config::HssDiameterConfig {
    fn origin_realm_or(&self, domain: &str) -> String {
        if self.origin_realm.is_empty() {
            domain.to_string()
        } else {
            self.origin_realm.clone()
        }
    }
}
