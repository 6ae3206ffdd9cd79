//! Gm security at the P-CSCF (TS 33.203 §7, RFC 3329, TS 24.229 §5.2.2): the decision on
//! an unprotected REGISTER (offer chosen by the configured ordered (alg, ealg) list, or
//! the policy for UEs without `Security-Client`), the SA set built on the 401 from CK/IK
//! (SPIs and ports from the pool, four SAs through the [`SaStore`]), the
//! `Security-Verify` check on the protected REGISTER, and removal.
//!
//! The SA sets live in the per-UE entry ([`crate::registrar::UeEntry`]); this module owns
//! the pool and the store.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ims_ipsec::{
    check_security_client_unchanged, check_security_verify, choose_offer, format_security_header,
    parse_offers, parse_security_header, plan_sa_set, AlgPair, Ck, Ik, KernelSupport, Lease,
    PlanOptions, PoolConfig, PortConfig, ProtectedPool, SaSetId, SaStore, SecAgreePolicy,
    SecEndpoint, SecMechanism, Side, VerifyError,
};

use crate::registrar::AkaKeys;

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
    /// CK or IK are not 32 hex digits.
    #[error("bad CK/IK from the S-CSCF: {0}")]
    Keys(String),
}

/// One installed SA set of a UE (what the P-CSCF needs to route through it and to
/// remove it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaSet {
    /// Negotiated pair.
    pub pair: AlgPair,
    /// UE side (its address and Security-Client SPIs/ports).
    pub ue: SecEndpoint,
    /// P-CSCF side (Gm address and the leased SPIs/ports).
    pub pcscf: SecEndpoint,
    /// The `Security-Server` sent in the 401.
    pub server: Vec<SecMechanism>,
    /// The UE's `Security-Client` of the unprotected REGISTER.
    pub client: Vec<SecMechanism>,
}

impl SaSet {
    /// Kernel identifiers of the set (independent of keys).
    pub fn id(&self) -> Option<SaSetId> {
        let zero = Ck::new([0; 16]);
        let zero_ik = Ik::new([0; 16]);
        plan_sa_set(
            Side::Pcscf,
            &self.ue,
            &self.pcscf,
            self.pair,
            &zero,
            &zero_ik,
            &PlanOptions::default(),
        )
        .ok()
        .map(|p| p.id())
    }

    fn lease(&self) -> Lease {
        Lease {
            spi_c: self.pcscf.spi_c,
            spi_s: self.pcscf.spi_s,
            port_c: self.pcscf.port_c,
            port_s: self.pcscf.port_s,
        }
    }
}

/// Persisted form (in the registration store's `security` column):
/// `<alg>/<ealg> ue=<ip>,<spi-c>,<spi-s>,<port-c>,<port-s> p=<ip>,<spi-c>,<spi-s>,<port-c>,<port-s>`.
impl fmt::Display for SaSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = |x: &SecEndpoint| {
            format!(
                "{},{},{},{},{}",
                x.addr, x.spi_c, x.spi_s, x.port_c, x.port_s
            )
        };
        write!(f, "{} ue={} p={}", self.pair, e(&self.ue), e(&self.pcscf))
    }
}

impl FromStr for SaSet {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        let mut it = s.split_whitespace();
        let pair: AlgPair = it.next().ok_or(())?.parse().map_err(|_| ())?;
        let ep = |t: Option<&str>, prefix: &str| -> Result<SecEndpoint, ()> {
            let v: Vec<&str> = t
                .ok_or(())?
                .strip_prefix(prefix)
                .ok_or(())?
                .split(',')
                .collect();
            if v.len() != 5 {
                return Err(());
            }
            Ok(SecEndpoint {
                addr: v[0].parse().map_err(|_| ())?,
                spi_c: v[1].parse().map_err(|_| ())?,
                spi_s: v[2].parse().map_err(|_| ())?,
                port_c: v[3].parse().map_err(|_| ())?,
                port_s: v[4].parse().map_err(|_| ())?,
            })
        };
        let ue = ep(it.next(), "ue=")?;
        let pcscf = ep(it.next(), "p=")?;
        Ok(SaSet {
            pair,
            ue,
            pcscf,
            server: Vec::new(),
            client: Vec::new(),
        })
    }
}

/// What an unprotected REGISTER gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Initial {
    /// No sec-agree (UE sent no Security-Client and the policy allows it).
    Unprotected,
    /// Go on; build SAs on the 401 for this offer.
    Offer {
        /// Chosen offer.
        offer: ims_ipsec::IpsecOffer,
        /// The whole Security-Client, kept for the downgrade check.
        client: Vec<SecMechanism>,
    },
    /// Refuse with this status and reason.
    Refuse(u16, String),
}

/// Gm security settings, pool and store.
pub struct GmSecurity {
    policy: SecAgreePolicy,
    pool: Mutex<ProtectedPool>,
    store: Arc<dyn SaStore>,
    gm_v4: Option<std::net::Ipv4Addr>,
    gm_v6: Option<std::net::Ipv6Addr>,
    allow_unprotected: bool,
    /// Delay between the last protected message and SA removal on de-registration.
    pub grace: Duration,
    wireshark: Option<PathBuf>,
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
        let pool = ProtectedPool::with_in_use(
            PoolConfig {
                spi_start: cfg.spi_start,
                spi_count: cfg.spi_range,
                ports,
            },
            in_use_spis,
            in_use_ports,
        )?;
        let preference = cfg
            .algorithms
            .iter()
            .filter_map(|p| p.to_string().parse::<AlgPair>().ok())
            .collect();
        Ok(GmSecurity {
            policy: SecAgreePolicy { preference },
            pool: Mutex::new(pool),
            store,
            gm_v4: cfg.gm_address_v4,
            gm_v6: cfg.gm_address_v6,
            allow_unprotected: cfg.allow_unprotected,
            grace: Duration::from_millis(cfg.dereg_grace_ms),
            wireshark: cfg.wireshark_esp_sa_file.as_ref().map(PathBuf::from),
        })
    }

    /// The decision on an unprotected REGISTER (TS 33.203 §7.2, RFC 3329 §2.3.1).
    pub fn initial(&self, security_client: Option<&str>, ue: &str) -> Initial {
        let Some(value) = security_client.filter(|v| !v.trim().is_empty()) else {
            return if self.allow_unprotected {
                tracing::info!(%ue, "no Security-Client: registering without IPsec (allowed by policy)");
                Initial::Unprotected
            } else {
                Initial::Refuse(
                    421,
                    "Extension Required (sec-agree: Security-Client missing)".into(),
                )
            };
        };
        let offers = match parse_offers(value) {
            Ok(o) => o,
            Err(e) => return Initial::Refuse(400, format!("Bad Request (Security-Client: {e})")),
        };
        match choose_offer(&offers, &self.policy, &KernelSupport::all()) {
            Ok(choice) => {
                tracing::info!(%ue, choice = %choice, "sec-agree offer chosen");
                Initial::Offer {
                    offer: choice.offer,
                    client: offers.into_iter().filter_map(Result::ok).collect(),
                }
            }
            Err(e) => {
                tracing::info!(%ue, error = %e, "no acceptable sec-agree offer");
                Initial::Refuse(
                    494,
                    "Security Agreement Required (no acceptable offer)".into(),
                )
            }
        }
    }

    fn gm_address(&self, ue: IpAddr) -> Result<IpAddr, SecError> {
        match ue {
            IpAddr::V4(_) => self.gm_v4.map(IpAddr::V4),
            IpAddr::V6(_) => self.gm_v6.map(IpAddr::V6),
        }
        .ok_or(SecError::NoGmAddress(ue))
    }

    /// On the 401: allocate SPIs/ports, install the four SAs, return the set.
    pub async fn create(
        &self,
        ue_ip: IpAddr,
        offer: &ims_ipsec::IpsecOffer,
        client: Vec<SecMechanism>,
        keys: &AkaKeys,
    ) -> Result<SaSet, SecError> {
        let gm = self.gm_address(ue_ip)?;
        let ck = Ck::from_hex(&keys.ck).map_err(|e| SecError::Keys(e.to_string()))?;
        let ik = Ik::from_hex(&keys.ik).map_err(|e| SecError::Keys(e.to_string()))?;
        let lease = self
            .pool
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .allocate()?;
        let pair = offer.pair();
        let ue = SecEndpoint::from_offer(ue_ip, offer);
        let pcscf = lease.endpoint(gm);
        let release = |e: SecError| {
            self.pool
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .release(&lease);
            e
        };
        let plan = plan_sa_set(
            Side::Pcscf,
            &ue,
            &pcscf,
            pair,
            &ck,
            &ik,
            &PlanOptions::default(),
        )
        .map_err(|e| release(e.into()))?;
        self.store
            .install(&plan)
            .await
            .map_err(|e| release(e.into()))?;
        if let Some(path) = &self.wireshark {
            if let Err(e) = ims_ipsec::wireshark::append_esp_sa_file(path, &plan) {
                tracing::warn!(path = %path.display(), error = %e, "Wireshark ESP SA file not written");
            }
        }
        let server = vec![SecMechanism::Ipsec3gpp(lease.security_server(pair))];
        tracing::info!(ue = %ue_ip, %pair, spi_c = pcscf.spi_c, spi_s = pcscf.spi_s, port_c = pcscf.port_c, port_s = pcscf.port_s, "SA set installed");
        Ok(SaSet {
            pair,
            ue,
            pcscf,
            server,
            client,
        })
    }

    /// `Security-Server` value for a set.
    pub fn security_server(set: &SaSet) -> String {
        format_security_header(&set.server)
    }

    /// The protected REGISTER's check (TS 33.203 §7.4): Security-Verify echoes what was
    /// sent, Security-Client is unchanged.
    pub fn verify(set: &SaSet, verify: Option<&str>, client: Option<&str>) -> Result<(), String> {
        let v = verify.ok_or("Security-Verify missing")?;
        let v = parse_security_header(v).map_err(|e| format!("Security-Verify: {e}"))?;
        check_security_verify(&set.server, &v).map_err(|e: VerifyError| e.to_string())?;
        if let (Some(c), false) = (client, set.client.is_empty()) {
            let c = parse_security_header(c).map_err(|e| format!("Security-Client: {e}"))?;
            check_security_client_unchanged(&set.client, &c).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Removes a set's SAs and returns its SPIs/ports to the pool.
    pub async fn remove(&self, set: &SaSet) {
        if let Some(id) = set.id() {
            if let Err(e) = self.store.remove(&id).await {
                tracing::warn!(ue = %set.ue.addr, error = %e, "SA removal failed");
            } else {
                tracing::info!(ue = %set.ue.addr, spi_c = set.pcscf.spi_c, spi_s = set.pcscf.spi_s, "SA set removed");
            }
        }
        self.pool
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .release(&set.lease());
    }

    /// Removes every SA this P-CSCF owns (shutdown).
    pub async fn flush(&self) {
        if let Err(e) = self.store.flush_owned().await {
            tracing::warn!(error = %e, "SA flush at shutdown failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ims_ipsec::MemorySaStore;
    use zeroize::Zeroizing;

    fn sec(allow: bool) -> (GmSecurity, Arc<MemorySaStore>) {
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

    const SAMSUNG: &str = "ipsec-3gpp;prot=esp;mod=trans;spi-c=74618;spi-s=74619;port-c=8001;port-s=8000;alg=hmac-md5-96;ealg=des-ede3-cbc, ipsec-3gpp;prot=esp;mod=trans;spi-c=74618;spi-s=74619;port-c=8001;port-s=8000;alg=hmac-md5-96;ealg=aes-cbc, ipsec-3gpp;prot=esp;mod=trans;spi-c=74618;spi-s=74619;port-c=8001;port-s=8000;alg=hmac-md5-96;ealg=null";

    fn keys() -> AkaKeys {
        AkaKeys {
            ck: Zeroizing::new("00112233445566778899aabbccddeeff".into()),
            ik: Zeroizing::new("ffeeddccbbaa99887766554433221100".into()),
        }
    }

    #[test]
    fn policy_for_missing_security_client() {
        assert_eq!(sec(true).0.initial(None, "ue"), Initial::Unprotected);
        match sec(false).0.initial(None, "ue") {
            Initial::Refuse(421, r) => assert!(r.contains("Security-Client missing")),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn offer_by_policy_then_sas_verify_and_remove() {
        let (s, store) = sec(false);
        let Initial::Offer { offer, client } = s.initial(Some(SAMSUNG), "ue") else {
            panic!("no offer")
        };
        // Default policy: aes-cbc before des-ede3-cbc, so the UE's second offer wins.
        assert_eq!(offer.pair().to_string(), "hmac-md5-96/aes-cbc");
        let set = s
            .create("127.0.0.2".parse().unwrap(), &offer, client, &keys())
            .await
            .unwrap();
        assert_eq!(store.sa_count(), 4);
        let server = GmSecurity::security_server(&set);
        assert!(
            server.contains("port-s=6100") && server.contains("alg=hmac-md5-96"),
            "{server}"
        );
        assert!(GmSecurity::verify(&set, Some(&server), Some(SAMSUNG)).is_ok());
        let bad = server.replace("port-s=6100", "port-s=6101");
        assert!(GmSecurity::verify(&set, Some(&bad), Some(SAMSUNG)).is_err());
        assert!(GmSecurity::verify(&set, None, None).is_err());
        let persisted: SaSet = set.to_string().parse().unwrap();
        assert_eq!(persisted.id(), set.id());
        s.remove(&persisted).await;
        assert_eq!(store.sa_count(), 0);
        assert_eq!(store.policy_count(), 0);
    }
}
