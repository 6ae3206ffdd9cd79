//! Gm security at the P-CSCF (TS 33.203 §7, RFC 3329, TS 24.229 §5.2.2): `GmSecurity`
//! holds the configured policy, the SPI/port pool, the SA store and the sets installed
//! now. The work is split by what it is about:
//! - `policy`: the sec-agree decision on an unprotected REGISTER (offer chosen by the
//!   ordered (alg, ealg) list, or the policy for UEs without `Security-Client`) and the
//!   `Security-Verify` / `Security-Client` checks of the protected REGISTER (TS 33.203
//!   §7.2, §7.4; RFC 3329 §2.3.1);
//! - `saset`: one UE's SA set ([`SaSet`]) and its persisted form (TS 33.203 §7.1);
//! - `install`: a set built on the 401 from CK/IK (four SAs, TS 33.203 §7.1, §7.2)
//!   and its removal;
//! - `retire`: removal after a grace period, and a retiring set taken back (§7.4,
//!   FIELD-LESSONS item 4);
//! - `restart`: adoption of restored sets, stale SAs of a previous run, shutdown;
//! - `integrity`: ESP integrity-failure alarms (RFC 4303 §3.4.4, FIELD-LESSONS item 1);
//! - `diagnose`: why a UE never answered its 401 through the SAs, from their counters
//!   (FIELD-LESSONS item 1).
//!
//! The SA sets live in the per-UE entry ([`crate::registrar::UeEntry`]); this module owns
//! the pool and the store.

mod diagnose;
mod install;
mod integrity;
mod policy;
mod restart;
mod retire;
mod saset;

pub use diagnose::UnansweredChallenge;
pub use policy::Initial;
pub use saset::SaSet;

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ims_ipsec::{AlgPair, PoolConfig, PortConfig, ProtectedPool, SaStore, SecAgreePolicy};
use ims_sip_transport::TransportLayer;

use crate::protected::ProtectedPorts;

/// Errors of Gm security.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecError {
    /// No Gm address of the UE's IP family is configured.
    #[error("no Gm address configured for {0}")]
    NoGmAddress(IpAddr),
    /// The SPI/port pool is exhausted or misconfigured.
    #[error(transparent)]
    Pool(#[from] ims_ipsec::PoolError),
    /// The SAs cannot be planned.
    #[error(transparent)]
    Plan(#[from] ims_ipsec::PlanError),
    /// The kernel (or store) refused the SAs.
    #[error(transparent)]
    Store(#[from] ims_ipsec::StoreError),
    /// A protected port cannot be bound (in use by another process, or the Gm
    /// address is not on this host).
    #[error("protected port not bound: {0}")]
    Port(String),
    /// CK or IK are not 32 hex digits.
    #[error("bad CK/IK from the S-CSCF: {0}")]
    Keys(String),
}

/// Gm security settings, pool and store.
pub struct GmSecurity {
    policy: SecAgreePolicy,
    pool: Mutex<ProtectedPool>,
    pool_cfg: PoolConfig,
    store: Arc<dyn SaStore>,
    gm_v4: Option<std::net::Ipv4Addr>,
    gm_v6: Option<std::net::Ipv6Addr>,
    allow_unprotected: bool,
    /// Delay between the last protected message and SA removal on de-registration.
    pub grace: Duration,
    wireshark: Option<PathBuf>,
    /// Every set installed now, by the P-CSCF's spi-s (unique while installed): what a
    /// removal may take (a set is removed once) and which policies other sets share.
    installed: Mutex<HashMap<u32, SaSet>>,
    /// Serialises the stale-set check and the install (kernel SA keys of two sets
    /// toward one UE collide when the UE reuses its SPIs).
    install_lock: tokio::sync::Mutex<()>,
    /// The protected ports (bound per set at run time).
    ports: Option<(Arc<ProtectedPorts>, TransportLayer)>,
    /// Integrity-failure counters seen so far (FIELD-LESSONS item 1).
    watch: Mutex<ims_ipsec::IntegrityWatch>,
    /// Sets waiting out their grace period (by P-CSCF spi-s) with a token, so a set
    /// taken back into use ([`GmSecurity::reclaim`]) is not removed when it ends.
    retiring: Mutex<HashMap<u32, u64>>,
}

impl fmt::Debug for GmSecurity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GmSecurity")
            .field("policy", &self.policy)
            .field("allow_unprotected", &self.allow_unprotected)
            .finish_non_exhaustive()
    }
}

impl GmSecurity {
    /// From the `[ipsec]` configuration and a store; `in_use` SPIs/ports (from the
    /// store after a restart) are not handed out again.
    pub fn new(
        cfg: &ims_config::IpsecConfig,
        store: Arc<dyn SaStore>,
        in_use_spis: Vec<u32>,
        in_use_ports: Vec<u16>,
    ) -> Result<Self, SecError> {
        let ports = if cfg.port_c.len() <= 1 || cfg.port_s.len() <= 1 {
            PortConfig::Shared {
                port_c: cfg.port_c.first,
                port_s: cfg.port_s.first,
            }
        } else {
            PortConfig::PerUe {
                port_c_start: cfg.port_c.first,
                port_s_start: cfg.port_s.first,
                count: cfg
                    .port_c
                    .len()
                    .min(cfg.port_s.len())
                    .min(u32::from(u16::MAX)) as u16,
            }
        };
        let pool_cfg = PoolConfig {
            spi_start: cfg.spi_start,
            spi_count: cfg.spi_range,
            ports,
        };
        let pool = ProtectedPool::with_in_use(pool_cfg, in_use_spis, in_use_ports)?;
        let preference = cfg
            .algorithms
            .iter()
            .filter_map(|p| p.to_string().parse::<AlgPair>().ok())
            .collect();
        Ok(GmSecurity {
            policy: SecAgreePolicy { preference },
            pool: Mutex::new(pool),
            pool_cfg,
            store,
            gm_v4: cfg.gm_address_v4,
            gm_v6: cfg.gm_address_v6,
            allow_unprotected: cfg.allow_unprotected,
            grace: Duration::from_millis(cfg.dereg_grace_ms),
            wireshark: cfg.wireshark_esp_sa_file.as_ref().map(PathBuf::from),
            installed: Mutex::new(HashMap::new()),
            install_lock: tokio::sync::Mutex::new(()),
            ports: None,
            watch: Mutex::new(ims_ipsec::IntegrityWatch::new()),
            retiring: Mutex::new(HashMap::new()),
        })
    }

    /// Binds each set's protected ports on `transport` while the set is installed.
    pub fn with_ports(mut self, ports: Arc<ProtectedPorts>, transport: TransportLayer) -> Self {
        self.ports = Some((ports, transport));
        self
    }

    fn installed(&self) -> std::sync::MutexGuard<'_, HashMap<u32, SaSet>> {
        self.installed.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The installed set whose P-CSCF spi-s is `spi_s`.
    pub fn installed_set(&self, spi_s: u32) -> Option<SaSet> {
        self.installed().get(&spi_s).cloned()
    }

    /// Number of SA sets installed now.
    pub fn installed_count(&self) -> usize {
        self.installed().len()
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    //! A `GmSecurity` on a `MemorySaStore`, a handset's `Security-Client` and keys.
    use super::*;
    use crate::headers::AkaKeys;
    use ims_ipsec::MemorySaStore;
    use zeroize::Zeroizing;

    pub(crate) fn sec(allow: bool) -> (GmSecurity, Arc<MemorySaStore>) {
        let cfg = ims_config::IpsecConfig {
            enabled: true,
            allow_unprotected: allow,
            port_c: ims_config::PortRange {
                first: 5100,
                last: 5100,
            },
            port_s: ims_config::PortRange {
                first: 6100,
                last: 6100,
            },
            ..Default::default()
        };
        let store = Arc::new(MemorySaStore::new(ims_ipsec::plan::DEFAULT_PCSCF_REQID));
        (
            GmSecurity::new(&cfg, store.clone(), vec![], vec![]).unwrap(),
            store,
        )
    }

    pub(crate) const SAMSUNG: &str = "ipsec-3gpp;prot=esp;mod=trans;spi-c=74618;spi-s=74619;port-c=8001;port-s=8000;alg=hmac-md5-96;ealg=des-ede3-cbc, ipsec-3gpp;prot=esp;mod=trans;spi-c=74618;spi-s=74619;port-c=8001;port-s=8000;alg=hmac-md5-96;ealg=aes-cbc, ipsec-3gpp;prot=esp;mod=trans;spi-c=74618;spi-s=74619;port-c=8001;port-s=8000;alg=hmac-md5-96;ealg=null";

    pub(crate) fn keys() -> AkaKeys {
        AkaKeys {
            ck: Zeroizing::new("00112233445566778899aabbccddeeff".into()),
            ik: Zeroizing::new("ffeeddccbbaa99887766554433221100".into()),
        }
    }
}
