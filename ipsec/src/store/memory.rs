//! An in-memory [`SaStore`] with the kernel's uniqueness rules (one SA per
//! destination + SPI, one policy per selector + direction), for tests of code that
//! drives IPsec (the P-CSCF) without root. Failures can be injected per SPI.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use super::{
    describe_policy, describe_sa, install_all, remove_all, InstalledPolicy, InstalledSa, Item,
    OwnedState, Primitive, SaStore, StoreError, StoreFuture,
};
use crate::plan::{PlannedPolicy, PlannedSa, PolicyKey, SaKey, SaPlan, SaSetId};

#[derive(Default)]
struct Inner {
    sas: BTreeMap<(std::net::IpAddr, u32), InstalledSa>,
    policies: HashMap<PolicyKey, InstalledPolicy>,
    fail_spis: HashSet<u32>,
}

/// In-memory store. `reqid` is the owner tag it lists and flushes; it holds items
/// of any owner (install with another plan's `reqid` to simulate a neighbour).
pub struct MemorySaStore {
    reqid: u32,
    inner: Mutex<Inner>,
}

impl MemorySaStore {
    /// An empty store owning `reqid`.
    pub fn new(reqid: u32) -> Self {
        MemorySaStore {
            reqid,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps half-updated in a way
        // that matters for tests; keep going.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes installing an SA with this SPI fail with EINVAL, as a kernel without
    /// the algorithm would.
    pub fn fail_on_spi(&self, spi: u32) {
        self.lock().fail_spis.insert(spi);
    }

    /// Number of SAs held (any owner).
    pub fn sa_count(&self) -> usize {
        self.lock().sas.len()
    }

    /// Number of policies held (any owner).
    pub fn policy_count(&self) -> usize {
        self.lock().policies.len()
    }
}

impl Primitive for MemorySaStore {
    async fn add_sa(&self, plan: &SaPlan, sa: &PlannedSa) -> Result<(), StoreError> {
        let mut g = self.lock();
        let refuse = |errno: i32| StoreError::Refused {
            op: "installing",
            item: Item::Sa(describe_sa(sa)),
            errno: Some(errno),
            reason: super::explain_sa_errno(errno, plan, sa),
        };
        if g.fail_spis.contains(&sa.spi) {
            return Err(refuse(22));
        }
        let k = (sa.dst.ip(), sa.spi);
        if g.sas.contains_key(&k) {
            return Err(refuse(17));
        }
        g.sas.insert(
            k,
            InstalledSa {
                src: sa.src.ip(),
                dst: sa.dst.ip(),
                spi: sa.spi,
                sport: sa.src.port(),
                dport: sa.dst.port(),
                reqid: plan.reqid,
                auth: Some(plan.keys.auth.name.to_owned()),
                enc: Some(plan.keys.enc.name.to_owned()),
                packets: 0,
                bytes: 0,
                integrity_failed: 0,
                replay: 0,
            },
        );
        Ok(())
    }

    async fn upsert_policy(&self, plan: &SaPlan, p: &PlannedPolicy) -> Result<bool, StoreError> {
        let _ = describe_policy(p);
        let key = PolicyKey {
            src: p.src,
            dst: p.dst,
            proto: p.proto,
            direction: p.direction,
        };
        let fresh = self
            .lock()
            .policies
            .insert(
                key,
                InstalledPolicy {
                    key,
                    reqid: plan.reqid,
                },
            )
            .is_none();
        Ok(fresh)
    }

    async fn del_sa(&self, key: &SaKey) -> Result<bool, StoreError> {
        Ok(self.lock().sas.remove(&(key.dst, key.spi)).is_some())
    }

    async fn del_policy(&self, key: &PolicyKey) -> Result<bool, StoreError> {
        Ok(self.lock().policies.remove(key).is_some())
    }
}

impl SaStore for MemorySaStore {
    fn install<'a>(&'a self, plan: &'a SaPlan) -> StoreFuture<'a, ()> {
        Box::pin(install_all(self, plan))
    }

    fn remove<'a>(&'a self, id: &'a SaSetId) -> StoreFuture<'a, ()> {
        Box::pin(remove_all(self, id))
    }

    fn list_owned(&self) -> StoreFuture<'_, OwnedState> {
        Box::pin(async move {
            let g = self.lock();
            Ok(OwnedState {
                sas: g
                    .sas
                    .values()
                    .filter(|s| s.reqid == self.reqid)
                    .cloned()
                    .collect(),
                policies: g
                    .policies
                    .values()
                    .filter(|p| p.reqid == self.reqid)
                    .copied()
                    .collect(),
            })
        })
    }

    fn flush_owned(&self) -> StoreFuture<'_, OwnedState> {
        Box::pin(async move {
            let mut g = self.lock();
            let reqid = self.reqid;
            let sas: Vec<_> = g
                .sas
                .values()
                .filter(|s| s.reqid == reqid)
                .cloned()
                .collect();
            let policies: Vec<_> = g
                .policies
                .values()
                .filter(|p| p.reqid == reqid)
                .copied()
                .collect();
            g.sas.retain(|_, s| s.reqid != reqid);
            g.policies.retain(|_, p| p.reqid != reqid);
            Ok(OwnedState { sas, policies })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alg::{AlgPair, EncryptionAlg, IntegrityAlg};
    use crate::keys::{Ck, Ik};
    use crate::plan::{plan_sa_set, PlanOptions, SecEndpoint, Side, DEFAULT_PCSCF_REQID};

    fn plan(ue_last: u8, spi_base: u32, reqid: u32) -> SaPlan {
        let ue = SecEndpoint {
            addr: format!("10.45.0.{ue_last}").parse().unwrap(),
            spi_c: 7000 + u32::from(ue_last),
            spi_s: 8000 + u32::from(ue_last),
            port_c: 50000,
            port_s: 50001,
        };
        let p = SecEndpoint {
            addr: "10.45.0.1".parse().unwrap(),
            spi_c: spi_base,
            spi_s: spi_base + 1,
            port_c: 5100,
            port_s: 6100,
        };
        let o = PlanOptions {
            reqid,
            ..PlanOptions::default()
        };
        plan_sa_set(
            Side::Pcscf,
            &ue,
            &p,
            AlgPair::new(IntegrityAlg::HmacSha1_96, EncryptionAlg::AesCbc),
            &Ck::new([1; 16]),
            &Ik::new([2; 16]),
            &o,
        )
        .unwrap()
    }

    fn run<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn install_list_remove() {
        run(async {
            let s = MemorySaStore::new(DEFAULT_PCSCF_REQID);
            let p = plan(2, 0x1000, DEFAULT_PCSCF_REQID);
            s.install(&p).await.unwrap();
            let owned = s.list_owned().await.unwrap();
            assert_eq!(owned.sas.len(), 4);
            assert_eq!(owned.policies.len(), 4);
            let local = "10.45.0.1".parse().unwrap();
            let mut spis = owned.inbound_spis(local);
            spis.sort();
            assert_eq!(spis, vec![0x1000, 0x1001]);
            let mut ports = owned.inbound_ports(local);
            ports.sort();
            assert_eq!(ports, vec![5100, 6100]);
            s.remove(&p.id()).await.unwrap();
            assert_eq!((s.sa_count(), s.policy_count()), (0, 0));
            // Removing again is not an error.
            s.remove(&p.id()).await.unwrap();
        });
    }

    #[test]
    fn failure_on_third_sa_rolls_back_the_first_two() {
        run(async {
            let s = MemorySaStore::new(DEFAULT_PCSCF_REQID);
            let p = plan(2, 0x1000, DEFAULT_PCSCF_REQID);
            s.fail_on_spi(p.sas[2].spi);
            let e = s.install(&p).await.unwrap_err();
            let msg = e.to_string();
            assert!(msg.contains("SA3 P-CSCF port-s -> UE port-c"), "{msg}");
            assert!(msg.contains("10.45.0.1:6100 -> 10.45.0.2:50000"), "{msg}");
            assert!(
                msg.contains("kernel lacks hmac(sha1)/cbc(aes)/esp4"),
                "{msg}"
            );
            assert_eq!(e.errno(), Some(22));
            assert_eq!((s.sa_count(), s.policy_count()), (0, 0));
        });
    }

    #[test]
    fn spi_collision_is_refused_and_leaves_the_first_set_intact() {
        run(async {
            let s = MemorySaStore::new(DEFAULT_PCSCF_REQID);
            s.install(&plan(2, 0x1000, DEFAULT_PCSCF_REQID))
                .await
                .unwrap();
            let e = s
                .install(&plan(3, 0x1000, DEFAULT_PCSCF_REQID))
                .await
                .unwrap_err();
            assert!(e.to_string().contains("already exists"), "{e}");
            assert_eq!((s.sa_count(), s.policy_count()), (4, 4));
        });
    }

    #[test]
    fn flush_owned_leaves_other_owners_alone() {
        run(async {
            let s = MemorySaStore::new(DEFAULT_PCSCF_REQID);
            s.install(&plan(2, 0x1000, DEFAULT_PCSCF_REQID))
                .await
                .unwrap();
            s.install(&plan(3, 0x2000, 42)).await.unwrap();
            let flushed = s.flush_owned().await.unwrap();
            assert_eq!((flushed.sas.len(), flushed.policies.len()), (4, 4));
            assert_eq!((s.sa_count(), s.policy_count()), (4, 4));
            assert!(s.list_owned().await.unwrap().sas.is_empty());
        });
    }

    #[test]
    fn reregistration_overlap_then_retire_old() {
        run(async {
            let s = MemorySaStore::new(DEFAULT_PCSCF_REQID);
            let old = plan(2, 0x1000, DEFAULT_PCSCF_REQID);
            s.install(&old).await.unwrap();
            // Same UE, same ports, new SPIs everywhere.
            let mut new = plan(2, 0x3000, DEFAULT_PCSCF_REQID);
            for sa in new.sas.iter_mut() {
                if (7000..9000).contains(&sa.spi) {
                    sa.spi += 100_000;
                }
            }
            s.install(&new).await.unwrap();
            assert_eq!((s.sa_count(), s.policy_count()), (8, 4));
            s.remove(&old.id().without_shared_policies(&new.id()))
                .await
                .unwrap();
            assert_eq!((s.sa_count(), s.policy_count()), (4, 4));
        });
    }
}
