//! An SA set built on the 401 (TS 33.203 §7.1, §7.2): SPIs and protected ports leased
//! from the pool, the four SAs and their policies planned from CK/IK (Annex I key
//! schedules, `ims_ipsec::plan_sa_set`) and installed through the [`SaStore`] before the
//! 401 leaves, the protected ports bound; a stale set the UE abandoned (it reuses its
//! SPIs) replaced; and removal of a set, once, keeping policies a live set shares
//! (§7.4: a UE keeping its ports across re-registration).
//!
//! [`SaStore`]: ims_ipsec::SaStore

use std::net::IpAddr;

use ims_ipsec::{plan_sa_set, Ck, Ik, PlanOptions, SecEndpoint, SecMechanism, Side};

use super::{GmSecurity, SaSet, SecError};
use crate::headers::AkaKeys;

impl GmSecurity {
    /// Records `set` as installed and binds its ports.
    pub(super) async fn take_over(&self, set: &SaSet) -> Result<(), SecError> {
        self.installed().insert(set.pcscf.spi_s, set.clone());
        match &self.ports {
            Some((ports, t)) => ports.acquire(t, set).await.map_err(SecError::Port),
            None => Ok(()),
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
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{keys, sec, SAMSUNG};
    use super::super::Initial;
    use super::*;
    use std::sync::Arc;

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
}
