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

use std::collections::HashMap;

use ims_sip_transport::TransportLayer;

use crate::headers::AkaKeys;
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
        // The Security-Server sent for the set follows from the lease and the pair, so
        // a set restored after a restart still checks the UE's Security-Verify.
        let lease = Lease {
            spi_c: pcscf.spi_c,
            spi_s: pcscf.spi_s,
            port_c: pcscf.port_c,
            port_s: pcscf.port_s,
        };
        Ok(SaSet {
            pair,
            ue,
            pcscf,
            server: vec![SecMechanism::Ipsec3gpp(lease.security_server(pair))],
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

    /// Takes over a set restored from the store after a restart (its SAs are in the
    /// kernel): it is known for removal and its ports are bound. A port that cannot be
    /// bound is logged (the set stays known, so it is still removed in time).
    pub async fn adopt(&self, set: &SaSet) {
        if let Err(e) = self.take_over(set).await {
            tracing::warn!(ue = %set.ue.addr, error = %e, "protected port not bound");
        }
    }

    /// Records `set` as installed and binds its ports.
    async fn take_over(&self, set: &SaSet) -> Result<(), SecError> {
        self.installed().insert(set.pcscf.spi_s, set.clone());
        match &self.ports {
            Some((ports, t)) => ports.acquire(t, set).await.map_err(SecError::Port),
            None => Ok(()),
        }
    }

    /// Rebuilds the pool from the installed sets (at start, the kernel's SAs counted
    /// as taken until the restored ones are known).
    fn reset_pool(&self) {
        let (spis, ports): (Vec<u32>, Vec<u16>) = {
            let installed = self.installed();
            (
                installed
                    .values()
                    .flat_map(|s| [s.pcscf.spi_c, s.pcscf.spi_s])
                    .collect(),
                installed
                    .values()
                    .flat_map(|s| [s.pcscf.port_c, s.pcscf.port_s])
                    .collect(),
            )
        };
        match ProtectedPool::with_in_use(self.pool_cfg, spis, ports) {
            Ok(p) => *self.pool.lock().unwrap_or_else(|e| e.into_inner()) = p,
            Err(e) => tracing::warn!(error = %e, "SPI/port pool not rebuilt"),
        }
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
        let guard = self.install_lock.lock().await;
        // A UE that offers SPIs one of our sets toward it still uses has dropped that
        // set (it reuses SPIs only then: a reboot, a challenge it gave up on, a set in
        // its grace period): that set goes now, or the kernel refuses the new outbound
        // SAs (same destination and SPI).
        let stale: Vec<SaSet> = self
            .installed()
            .values()
            .filter(|s| {
                s.ue.addr == ue_ip
                    && [s.ue.spi_c, s.ue.spi_s]
                        .iter()
                        .any(|x| *x == ue.spi_c || *x == ue.spi_s)
            })
            .cloned()
            .collect();
        for old in &stale {
            tracing::info!(ue = %ue_ip, old_spi_s = old.pcscf.spi_s, ue_spi_c = ue.spi_c, ue_spi_s = ue.spi_s, "stale SA set replaced (the UE reuses its SPIs)");
            self.remove(old).await;
        }
        let installed = self.store.install(&plan).await;
        drop(guard);
        installed.map_err(|e| release(e.into()))?;
        if let Some(path) = &self.wireshark {
            if let Err(e) = ims_ipsec::wireshark::append_esp_sa_file(path, &plan) {
                tracing::warn!(path = %path.display(), error = %e, "Wireshark ESP SA file not written");
            }
        }
        let server = vec![SecMechanism::Ipsec3gpp(lease.security_server(pair))];
        tracing::debug!(ue = %ue_ip, %pair, spi_c = pcscf.spi_c, spi_s = pcscf.spi_s, port_c = pcscf.port_c, port_s = pcscf.port_s, "SA set installed");
        let set = SaSet {
            pair,
            ue,
            pcscf,
            server,
            client,
        };
        // A protected port we cannot receive on must not be named in Security-Server:
        // the UE's protected REGISTER would be lost. The set goes again, the 401 does
        // not leave (the caller answers 500 and logs why).
        if let Err(e) = self.take_over(&set).await {
            self.remove(&set).await;
            return Err(e);
        }
        Ok(set)
    }

    /// `Security-Server` value for a set.
    pub fn security_server(set: &SaSet) -> String {
        format_security_header(&set.server)
    }

    /// The check of a protected REGISTER that arrived through `set` (TS 33.203 §7.2,
    /// §7.4, RFC 3329 §2.3.1): `Security-Verify` echoes the `Security-Server` sent for
    /// that set. When the REGISTER answers the challenge that created the set
    /// (`answers_challenge`), its `Security-Client` must also be the one of the
    /// REGISTER that set was built for; a REGISTER over the set in use may carry a new
    /// `Security-Client` (new SPIs: the UE starts a new set, §7.4).
    pub fn verify(
        set: &SaSet,
        verify: Option<&str>,
        client: Option<&str>,
        answers_challenge: bool,
    ) -> Result<(), String> {
        let v = verify.ok_or("Security-Verify missing")?;
        let v = parse_security_header(v).map_err(|e| format!("Security-Verify: {e}"))?;
        check_security_verify(&set.server, &v).map_err(|e: VerifyError| e.to_string())?;
        if let (Some(c), false, true) = (client, set.client.is_empty(), answers_challenge) {
            let c = parse_security_header(c).map_err(|e| format!("Security-Client: {e}"))?;
            check_security_client_unchanged(&set.client, &c).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Whether `client` (a Security-Client value) is the one `set` was built for.
    pub fn same_client(set: &SaSet, client: &str) -> bool {
        match parse_security_header(client) {
            Ok(c) => check_security_client_unchanged(&set.client, &c).is_ok(),
            Err(_) => false,
        }
    }

    /// Removes a set's SAs, unbinds its ports unless other sets use them and returns
    /// its SPIs/ports to the pool; false when the set was already removed (a set is
    /// removed once, so a late grace-period removal cannot touch a newer set that
    /// reuses the UE's SPIs). Policies another installed set has the same selectors
    /// for (shared protected ports and a UE that kept its ports, TS 33.203 §7.4) stay:
    /// the store replaced them for that set.
    pub async fn remove(&self, set: &SaSet) -> bool {
        let keep: Vec<ims_ipsec::plan::PolicyKey> = {
            let mut installed = self.installed();
            if installed.remove(&set.pcscf.spi_s).is_none() {
                return false;
            }
            installed
                .values()
                .filter_map(SaSet::id)
                .flat_map(|l| l.policies)
                .collect()
        };
        if let Some(mut id) = set.id() {
            id.policies.retain(|p| !keep.contains(p));
            if let Err(e) = self.store.remove(&id).await {
                tracing::warn!(ue = %set.ue.addr, error = %e, "SA removal failed");
            } else {
                tracing::info!(ue = %set.ue.addr, spi_c = set.pcscf.spi_c, spi_s = set.pcscf.spi_s, "SA set removed");
            }
        }
        if let Some((ports, t)) = &self.ports {
            ports.release(t, set);
        }
        self.pool
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .release(&set.lease());
        true
    }

    /// Removes `set` after the grace period (the last protected messages — the 200 OK
    /// of a de-registration, the reg-event NOTIFY — still cross it first,
    /// FIELD-LESSONS item 4), unless it is reclaimed before.
    pub fn retire(self: &Arc<Self>, set: SaSet) {
        let token = rand::random::<u64>();
        self.retiring
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(set.pcscf.spi_s, token);
        let me = Arc::clone(self);
        tokio::spawn(async move {
            tokio::time::sleep(me.grace).await;
            let still = {
                let mut r = me.retiring.lock().unwrap_or_else(|e| e.into_inner());
                if r.get(&set.pcscf.spi_s) == Some(&token) {
                    r.remove(&set.pcscf.spi_s);
                    true
                } else {
                    false
                }
            };
            if still {
                me.remove(&set).await;
            }
        });
    }

    /// A protected message to a de-registered UE (the reg-event NOTIFY `terminated`)
    /// just crossed `set`: if it is retiring, its grace period starts again.
    pub fn extend(self: &Arc<Self>, set: &SaSet) {
        let retiring = self
            .retiring
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&set.pcscf.spi_s);
        if retiring {
            self.retire(set.clone());
        }
    }

    /// Takes a retiring set back into use (a REGISTER that came through it got its
    /// 200 after a de-registration retired it); false if it is already gone.
    pub fn reclaim(&self, set: &SaSet) -> bool {
        self.retiring
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&set.pcscf.spi_s);
        self.installed().contains_key(&set.pcscf.spi_s)
    }

    /// Logs at WARN every inbound SA whose integrity failures grew since the last call,
    /// with the probable cause (a wrong IK at the UE: K/OPc mismatch, FIELD-LESSONS
    /// item 1). Called periodically while sets are installed.
    pub async fn check_integrity(&self) {
        if self.installed_count() == 0 {
            return;
        }
        let state = match self.store.list_owned().await {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(error = %e, "SA counters not read");
                return;
            }
        };
        let (v4, v6) = (self.gm_v4, self.gm_v6);
        let alarms = self
            .watch
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .observe(&state, |ip| match ip {
                IpAddr::V4(a) => Some(a) == v4,
                IpAddr::V6(a) => Some(a) == v6,
            });
        for a in alarms {
            tracing::warn!(ue = %a.ue, spi = a.spi, alarm = %a, "ESP integrity check failures");
        }
    }

    /// `sas_on_shutdown = "keep"`: leaves every SA and policy in the kernel for the
    /// next start to adopt (sets no restored registration uses are removed then) and
    /// says how many.
    pub async fn keep_at_shutdown(&self) {
        let sets = self.installed_count();
        match self.store.list_owned().await {
            Ok(o) => tracing::info!(
                sets,
                sas = o.sas.len(),
                policies = o.policies.len(),
                "Gm SAs kept in the kernel at shutdown (sas_on_shutdown = keep): the next start adopts those of restored registrations"
            ),
            Err(e) => tracing::info!(sets, error = %e, "Gm SAs kept in the kernel at shutdown (sas_on_shutdown = keep); they could not be counted"),
        }
    }

    /// Removes every SA this P-CSCF owns (shutdown).
    pub async fn flush(&self) {
        match self.store.flush_owned().await {
            Ok(gone) => tracing::info!(
                sas = gone.sas.len(),
                policies = gone.policies.len(),
                "Gm SAs removed at shutdown"
            ),
            Err(e) => tracing::warn!(error = %e, "SA flush at shutdown failed"),
        }
    }

    /// The SAs this P-CSCF owns in the store now (None if they cannot be listed).
    pub async fn owned_sa_keys(&self) -> Option<Vec<ims_ipsec::plan::SaKey>> {
        match self.store.list_owned().await {
            Ok(o) => Some(o.sas.iter().map(|s| s.key()).collect()),
            Err(e) => {
                tracing::warn!(error = %e, "listing SAs at start-up failed");
                None
            }
        }
    }

    /// After a restart: removes every owned SA and policy that no restored set uses
    /// (left by a P-CSCF that crashed or kept its SAs at shutdown: sets of unanswered
    /// 401s, sets in their grace period, registrations lost or expired), so nothing
    /// leaks; the pool then holds only the SPIs and ports of the installed sets.
    pub async fn remove_unused(&self, live: &[SaSet]) {
        let owned = match self.store.list_owned().await {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(error = %e, "listing SAs at start-up failed");
                return;
            }
        };
        let ids: Vec<SaSetId> = live.iter().filter_map(SaSet::id).collect();
        let stale = SaSetId {
            sas: owned
                .sas
                .iter()
                .map(|s| s.key())
                .filter(|k| !ids.iter().any(|i| i.sas.contains(k)))
                .collect(),
            policies: owned
                .policies
                .iter()
                .map(|p| p.key)
                .filter(|k| !ids.iter().any(|i| i.policies.contains(k)))
                .collect(),
        };
        if stale.sas.is_empty() && stale.policies.is_empty() {
            tracing::info!("no stale Gm SA of a previous run");
            self.reset_pool();
            return;
        }
        // Until they are gone, their SPIs and ports stay taken in the pool (a new set
        // must not collide with them in the kernel).
        match self.store.remove(&stale).await {
            Ok(()) => {
                tracing::info!(
                    sas = stale.sas.len(),
                    policies = stale.policies.len(),
                    "stale Gm SAs of a previous run removed"
                );
                self.reset_pool();
            }
            Err(e) => tracing::warn!(error = %e, "stale Gm SAs not removed"),
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
        assert!(GmSecurity::verify(&set, Some(&server), Some(SAMSUNG), true).is_ok());
        let bad = server.replace("port-s=6100", "port-s=6101");
        assert!(GmSecurity::verify(&set, Some(&bad), Some(SAMSUNG), true).is_err());
        assert!(GmSecurity::verify(&set, None, None, true).is_err());
        // Re-registration over the set in use (TS 33.203 §7.4): new SPIs are fine
        // there, not on the REGISTER answering the set's own challenge.
        let renewed = SAMSUNG.replace("spi-c=74618", "spi-c=84618");
        assert!(GmSecurity::verify(&set, Some(&server), Some(&renewed), false).is_ok());
        assert!(GmSecurity::verify(&set, Some(&server), Some(&renewed), true).is_err());
        assert!(!GmSecurity::same_client(&set, &renewed));
        assert!(GmSecurity::same_client(&set, SAMSUNG));
        let persisted: SaSet = set.to_string().parse().unwrap();
        assert_eq!(persisted.id(), set.id());
        s.adopt(&persisted).await;
        assert!(s.remove(&persisted).await);
        assert!(!s.remove(&set).await, "removed once");
        assert_eq!(store.sa_count(), 0);
        assert_eq!(store.policy_count(), 0);
    }

    #[tokio::test]
    async fn retiring_a_set_keeps_policies_a_live_set_shares() {
        // Shared protected ports and a UE keeping its ports: the new set's policies
        // have the old set's selectors; removing the old set must not take them.
        let (s, store) = sec(false);
        let Initial::Offer { offer, client } = s.initial(Some(SAMSUNG), "ue") else {
            panic!("no offer")
        };
        let ip = "127.0.0.2".parse().unwrap();
        let old = s.create(ip, &offer, client, &keys()).await.unwrap();
        // TS 33.203 §7.4: the UE's new Security-Client has new SPIs, same ports.
        let renewed = SAMSUNG
            .replace("spi-c=74618", "spi-c=84618")
            .replace("spi-s=74619", "spi-s=84619");
        let Initial::Offer { offer, client } = s.initial(Some(&renewed), "ue") else {
            panic!("no offer")
        };
        let new = s.create(ip, &offer, client, &keys()).await.unwrap();
        assert_ne!(old.pcscf.spi_s, new.pcscf.spi_s);
        let policies = store.policy_count();
        s.remove(&old).await;
        assert_eq!(store.sa_count(), 4, "the new set's SAs stay");
        assert_eq!(store.policy_count(), policies, "shared policies stay");
        s.remove(&new).await;
        assert_eq!((store.sa_count(), store.policy_count()), (0, 0));
    }

    #[tokio::test]
    async fn a_ue_reusing_its_spis_replaces_the_stale_set() {
        // A set for a 401 the UE never answered (or one in its grace period): the UE
        // comes back with the same SPIs; the new set replaces it instead of failing
        // with EEXIST on the outbound SAs, and the old set's late removal is a no-op.
        let (s, store) = sec(false);
        let Initial::Offer { offer, client } = s.initial(Some(SAMSUNG), "ue") else {
            panic!("no offer")
        };
        let ip = "127.0.0.2".parse().unwrap();
        let old = s.create(ip, &offer, client.clone(), &keys()).await.unwrap();
        let new = s.create(ip, &offer, client, &keys()).await.unwrap();
        assert_eq!(store.sa_count(), 4, "only the new set is installed");
        assert_eq!(s.installed_count(), 1);
        assert!(!s.remove(&old).await, "stale set already gone");
        assert_eq!(store.sa_count(), 4, "the new set survives the late removal");
        assert!(s.remove(&new).await);
        assert_eq!((store.sa_count(), store.policy_count()), (0, 0));
    }

    #[tokio::test]
    async fn concurrent_creates_for_many_ues_all_succeed() {
        let (s, store) = sec(false);
        let s = Arc::new(s);
        let mut tasks = Vec::new();
        for i in 0..100u32 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                let client = SAMSUNG
                    .replace("spi-c=74618", &format!("spi-c={}", 100_000 + 2 * i))
                    .replace("spi-s=74619", &format!("spi-s={}", 100_001 + 2 * i));
                let Initial::Offer { offer, client } = s.initial(Some(&client), "ue") else {
                    panic!("no offer")
                };
                let ip: IpAddr = format!("127.0.1.{}", i + 1).parse().unwrap();
                s.create(ip, &offer, client, &keys()).await.unwrap()
            }));
        }
        let mut sets = Vec::new();
        for t in tasks {
            sets.push(t.await.unwrap());
        }
        assert_eq!(store.sa_count(), 400);
        let mut spis: Vec<u32> = sets
            .iter()
            .flat_map(|x| [x.pcscf.spi_c, x.pcscf.spi_s])
            .collect();
        spis.sort_unstable();
        spis.dedup();
        assert_eq!(spis.len(), 200, "no SPI handed out twice");
        for set in &sets {
            assert!(s.remove(set).await);
        }
        assert_eq!((store.sa_count(), store.policy_count()), (0, 0));
    }

    #[test]
    fn a_restored_set_still_checks_security_verify() {
        // After a restart the set comes from the store: the Security-Server it was
        // announced with is rebuilt, so the UE's re-REGISTER over it passes the check
        // and a forged Security-Verify does not.
        let (s, _) = sec(false);
        let Initial::Offer { offer, client } = s.initial(Some(SAMSUNG), "ue") else {
            panic!("no offer")
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let set = rt
            .block_on(s.create("127.0.0.2".parse().unwrap(), &offer, client, &keys()))
            .unwrap();
        let restored: SaSet = set.to_string().parse().unwrap();
        assert_eq!(restored.server, set.server);
        let sent = GmSecurity::security_server(&set);
        assert!(GmSecurity::verify(&restored, Some(&sent), Some(SAMSUNG), false).is_ok());
        let forged = sent.replace("spi-c=", "spi-c=9");
        assert!(GmSecurity::verify(&restored, Some(&forged), None, false).is_err());
        assert!(
            !set.to_string().contains("ffeedd"),
            "no key in the stored form"
        );
    }

    #[tokio::test]
    async fn restart_adopts_live_sets_removes_the_rest_and_frees_their_spis() {
        // A run with two sets stops without removing them (sas_on_shutdown = keep, or
        // a crash); the next run adopts the one a restored registration uses.
        let (before, store) = sec(false);
        let Initial::Offer { offer, client } = before.initial(Some(SAMSUNG), "ue") else {
            panic!("no offer")
        };
        let live = before
            .create(
                "127.0.0.2".parse().unwrap(),
                &offer,
                client.clone(),
                &keys(),
            )
            .await
            .unwrap();
        before
            .create("127.0.0.3".parse().unwrap(), &offer, client, &keys())
            .await
            .unwrap();
        before.keep_at_shutdown().await;
        assert_eq!(store.sa_count(), 8, "keep: nothing removed at shutdown");
        drop(before);
        // The next start, as `Pcscf::run` does it.
        let owned = store.list_owned().await.unwrap();
        let cfg = ims_config::IpsecConfig {
            enabled: true,
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
        let after = GmSecurity::new(
            &cfg,
            store.clone(),
            owned.sas.iter().map(|s| s.spi).collect(),
            owned.sas.iter().flat_map(|s| [s.sport, s.dport]).collect(),
        )
        .unwrap();
        let restored: SaSet = live.to_string().parse().unwrap();
        after.adopt(&restored).await;
        after.remove_unused(std::slice::from_ref(&restored)).await;
        assert_eq!(store.sa_count(), 4, "the live set stays, the other goes");
        assert_eq!(after.installed_count(), 1);
        assert_eq!(
            after.pool.lock().unwrap().spis_in_use(),
            2,
            "only the adopted set's SPIs stay taken"
        );
        assert!(
            after.remove(&restored).await,
            "the adopted set is removable"
        );
        assert_eq!((store.sa_count(), store.policy_count()), (0, 0));
    }

    #[tokio::test]
    async fn stale_sets_of_a_previous_run_are_removed() {
        let (s, store) = sec(false);
        let Initial::Offer { offer, client } = s.initial(Some(SAMSUNG), "ue") else {
            panic!("no offer")
        };
        let keep = s
            .create(
                "127.0.0.2".parse().unwrap(),
                &offer,
                client.clone(),
                &keys(),
            )
            .await
            .unwrap();
        let _lost = s
            .create("127.0.0.3".parse().unwrap(), &offer, client, &keys())
            .await
            .unwrap();
        assert_eq!(store.sa_count(), 8);
        s.remove_unused(std::slice::from_ref(&keep)).await;
        assert_eq!(store.sa_count(), 4);
        s.remove(&keep).await;
        assert_eq!((store.sa_count(), store.policy_count()), (0, 0));
    }
}
