//! SA sets across a restart of the P-CSCF (TS 33.203 §7.1 SAs live in the kernel, not in
//! the process): sets of restored registrations adopted (ports bound again, known for
//! removal), every other SA and policy of ours removed at start, and at shutdown all
//! SAs removed or, with `sas_on_shutdown = "keep"`, left for the next start.

use ims_ipsec::{ProtectedPool, SaSetId};

use super::{GmSecurity, SaSet};

impl GmSecurity {
    /// Takes over a set restored from the store after a restart (its SAs are in the
    /// kernel): it is known for removal and its ports are bound. A port that cannot be
    /// bound is logged (the set stays known, so it is still removed in time).
    pub async fn adopt(&self, set: &SaSet) {
        if let Err(e) = self.take_over(set).await {
            tracing::warn!(ue = %set.ue.addr, error = %e, "protected port not bound");
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
    use super::super::test_support::{keys, sec, SAMSUNG};
    use super::super::Initial;
    use super::*;
    use ims_ipsec::SaStore;

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
