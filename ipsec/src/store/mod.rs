//! Where planned SA sets go: the kernel ([`XfrmSaStore`], XFRM netlink) or memory
//! ([`MemorySaStore`], for tests of code that drives IPsec without root).
//!
//! Guarantees of every store:
//! - [`SaStore::install`] is all-or-nothing: if any SA or policy fails, what this call
//!   added is removed again and the error names the item that failed (role, direction,
//!   SPI, addresses) and why, with a hint (missing kernel module, SPI collision, …).
//! - Policies are upserted: a policy with the same selector and direction as an
//!   existing one (the same UE ports after a re-registration) is replaced, not refused,
//!   and is left in place on rollback.
//! - Ownership: every SA and policy template carries the plan's `reqid`; a store only
//!   lists and flushes items with its own `reqid`, so a P-CSCF restart can find (and
//!   keep or remove) exactly its own SAs without touching anyone else's.

mod memory;
mod xfrm;

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;

pub use memory::MemorySaStore;
pub use xfrm::{KernelProbe, XfrmSaStore};

use crate::plan::{Direction, PlannedPolicy, PlannedSa, PolicyKey, SaKey, SaPlan, SaSetId};

/// Boxed future returned by [`SaStore`] methods (keeps the trait object-safe, so the
/// P-CSCF can hold an `Arc<dyn SaStore>`).
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// A place SA sets can be installed in.
pub trait SaStore: Send + Sync {
    /// Installs the plan's SAs and policies, all or nothing.
    fn install<'a>(&'a self, plan: &'a SaPlan) -> StoreFuture<'a, ()>;
    /// Removes a set. Items already gone are not an error; other failures are
    /// reported after trying every item.
    fn remove<'a>(&'a self, id: &'a SaSetId) -> StoreFuture<'a, ()>;
    /// The SAs and policies carrying this store's `reqid`.
    fn list_owned(&self) -> StoreFuture<'_, OwnedState>;
    /// Removes everything carrying this store's `reqid`; returns what was removed.
    fn flush_owned(&self) -> StoreFuture<'_, OwnedState>;
}

/// An SA found in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledSa {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// SPI.
    pub spi: u32,
    /// Selector source port (0 = any).
    pub sport: u16,
    /// Selector destination port (0 = any).
    pub dport: u16,
    /// Ownership tag.
    pub reqid: u32,
    /// Integrity algorithm (XFRM name), if any.
    pub auth: Option<String>,
    /// Encryption algorithm (XFRM name), if any.
    pub enc: Option<String>,
    /// Packets processed by the SA.
    pub packets: u64,
    /// Bytes processed by the SA.
    pub bytes: u64,
    /// Packets dropped for a bad ICV (a wrong IK/CK: FIELD-LESSONS.md item 1).
    pub integrity_failed: u32,
    /// Packets dropped as replays.
    pub replay: u32,
}

impl InstalledSa {
    /// Kernel identifier.
    pub fn key(&self) -> SaKey {
        SaKey {
            src: self.src,
            dst: self.dst,
            spi: self.spi,
        }
    }
}

/// A policy found in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstalledPolicy {
    /// Selector, protocol and direction.
    pub key: PolicyKey,
    /// `reqid` of its template.
    pub reqid: u32,
}

/// What a store holds for one owner.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnedState {
    /// SAs.
    pub sas: Vec<InstalledSa>,
    /// Policies.
    pub policies: Vec<InstalledPolicy>,
}

impl OwnedState {
    /// SPIs of the SAs arriving at `local` (the P-CSCF's own SPIs, for
    /// [`crate::pool::ProtectedPool::with_in_use`]).
    pub fn inbound_spis(&self, local: IpAddr) -> Vec<u32> {
        self.sas
            .iter()
            .filter(|s| s.dst == local)
            .map(|s| s.spi)
            .collect()
    }

    /// Destination ports of the SAs arriving at `local` (its protected ports in use).
    pub fn inbound_ports(&self, local: IpAddr) -> Vec<u16> {
        self.sas
            .iter()
            .filter(|s| s.dst == local)
            .map(|s| s.dport)
            .collect()
    }
}

/// What failed, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// An SA of a plan.
    Sa(String),
    /// A policy of a plan.
    Policy(String),
    /// The whole store (connect, dump).
    Store,
}

impl fmt::Display for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Item::Sa(s) => write!(f, "SA {s}"),
            Item::Policy(p) => write!(f, "policy {p}"),
            Item::Store => f.write_str("XFRM"),
        }
    }
}

/// Store errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The netlink socket could not be opened.
    #[error("cannot open XFRM netlink socket: {0}")]
    Connect(String),
    /// The kernel (or the memory store) refused an operation.
    #[error("{op} {item} failed: {reason}{}", errno.map(|e| format!(" (errno {e})")).unwrap_or_default())]
    Refused {
        /// `installing`, `removing`, `listing`.
        op: &'static str,
        /// What.
        item: Item,
        /// errno, when the kernel gave one.
        errno: Option<i32>,
        /// Why, with a hint where one is known.
        reason: String,
    },
    /// Removal failed for some items (all were tried).
    #[error("removing SA set: {}", .0.join("; "))]
    Partial(Vec<String>),
}

impl StoreError {
    /// The errno, if the kernel gave one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            StoreError::Refused { errno, .. } => *errno,
            _ => None,
        }
    }
}

pub(crate) fn describe_sa(sa: &PlannedSa) -> String {
    sa.to_string()
}

pub(crate) fn describe_policy(p: &PlannedPolicy) -> String {
    format!(
        "{} dir {} proto {} {} -> {}",
        p.role,
        match p.direction {
            Direction::In => "in",
            Direction::Out => "out",
        },
        p.proto,
        p.src,
        p.dst
    )
}

/// A kernel's answer to a failed request, explained for an operator.
pub(crate) fn explain_sa_errno(errno: i32, plan: &SaPlan, sa: &PlannedSa) -> String {
    let (auth, enc) = (plan.keys.auth.name, plan.keys.enc.name);
    let esp = if sa.dst.is_ipv4() { "esp4" } else { "esp6" };
    match errno {
        1 => "permission denied: XFRM needs CAP_NET_ADMIN (run as root)".into(),
        17 => format!(
            "an SA with SPI 0x{:08x} to {} already exists (SPI collision with another UE or a stale SA)",
            sa.spi,
            sa.dst.ip()
        ),
        38 => format!("kernel does not know algorithm {auth} or {enc}: load modules hmac, md5, sha1_generic, cbc, aes_generic, des_generic, crypto_null (whichever the kernel lacks)"),
        93 => format!("kernel lacks ESP for this address family: load module {esp}"),
        2 | 22 => format!(
            "kernel could not set up {auth} ({} bit key) + {enc} ({} bit key): kernel lacks {auth}/{enc}/{esp}; load modules {esp}, authenc, echainiv, hmac, cbc, des_generic, aes_generic, and for CBC sha512_generic, jitterentropy_rng, drbg",
            plan.keys.auth.bits(),
            plan.keys.enc.bits()
        ),
        _ => std::io::Error::from_raw_os_error(errno).to_string(),
    }
}

pub(crate) fn explain_policy_errno(errno: i32) -> String {
    match errno {
        1 => "permission denied: XFRM needs CAP_NET_ADMIN (run as root)".into(),
        17 => "a policy with this selector and direction already exists".into(),
        _ => std::io::Error::from_raw_os_error(errno).to_string(),
    }
}

/// The primitive operations both stores implement; the transaction logic (order,
/// rollback) lives once in [`install_all`] / [`remove_all`].
pub(crate) trait Primitive: Sync {
    /// Adds one SA; fails if it exists.
    fn add_sa(
        &self,
        plan: &SaPlan,
        sa: &PlannedSa,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Adds one policy; `Ok(false)` if one with this selector existed and was replaced.
    fn upsert_policy(
        &self,
        plan: &SaPlan,
        p: &PlannedPolicy,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Deletes one SA; `Ok(false)` if it did not exist.
    fn del_sa(&self, key: &SaKey) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Deletes one policy; `Ok(false)` if it did not exist.
    fn del_policy(&self, key: &PolicyKey) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

pub(crate) async fn install_all<P: Primitive>(store: &P, plan: &SaPlan) -> Result<(), StoreError> {
    let mut added_sas: Vec<SaKey> = Vec::new();
    let mut added_policies: Vec<PolicyKey> = Vec::new();
    let mut failure = None;
    for sa in &plan.sas {
        match store.add_sa(plan, sa).await {
            Ok(()) => added_sas.push(SaKey {
                src: sa.src.ip(),
                dst: sa.dst.ip(),
                spi: sa.spi,
            }),
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    if failure.is_none() {
        for p in &plan.policies {
            match store.upsert_policy(plan, p).await {
                Ok(true) => added_policies.push(PolicyKey {
                    src: p.src,
                    dst: p.dst,
                    proto: p.proto,
                    direction: p.direction,
                }),
                Ok(false) => {}
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
    }
    let Some(err) = failure else {
        tracing::debug!(
            sas = plan.sas.len(),
            policies = plan.policies.len(),
            "installed SA set"
        );
        return Ok(());
    };
    for p in added_policies.iter().rev() {
        if let Err(e) = store.del_policy(p).await {
            tracing::warn!(error = %e, "rollback: could not remove policy");
        }
    }
    for s in added_sas.iter().rev() {
        if let Err(e) = store.del_sa(s).await {
            tracing::warn!(error = %e, "rollback: could not remove SA");
        }
    }
    tracing::warn!(error = %err, "SA set not installed; partial state rolled back");
    Err(err)
}

pub(crate) async fn remove_all<P: Primitive>(store: &P, id: &SaSetId) -> Result<(), StoreError> {
    let mut errors = Vec::new();
    for p in &id.policies {
        if let Err(e) = store.del_policy(p).await {
            errors.push(e.to_string());
        }
    }
    for s in &id.sas {
        if let Err(e) = store.del_sa(s).await {
            errors.push(e.to_string());
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(StoreError::Partial(errors))
    }
}

pub(crate) fn host_prefix(a: IpAddr) -> u8 {
    if a.is_ipv4() {
        32
    } else {
        128
    }
}

pub(crate) fn sock(a: IpAddr, port: u16) -> SocketAddr {
    SocketAddr::new(a, port)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alg::{AlgPair, EncryptionAlg, IntegrityAlg};
    use crate::keys::{Ck, Ik};
    use crate::plan::{plan_sa_set, PlanOptions, SecEndpoint, Side};

    fn plan(v6: bool) -> SaPlan {
        let (u, p) = if v6 {
            ("fd00::2", "fd00::1")
        } else {
            ("10.45.0.2", "10.45.0.1")
        };
        let ue = SecEndpoint {
            addr: u.parse().unwrap(),
            spi_c: 1000,
            spi_s: 1001,
            port_c: 50000,
            port_s: 50001,
        };
        let pc = SecEndpoint {
            addr: p.parse().unwrap(),
            spi_c: 4096,
            spi_s: 4097,
            port_c: 5100,
            port_s: 6100,
        };
        let pair = AlgPair::new(IntegrityAlg::HmacMd5_96, EncryptionAlg::DesEde3Cbc);
        plan_sa_set(
            Side::Pcscf,
            &ue,
            &pc,
            pair,
            &Ck::new([0; 16]),
            &Ik::new([0; 16]),
            &PlanOptions::default(),
        )
        .unwrap()
    }

    #[test]
    fn errno_explanations_name_the_missing_piece() {
        let p = plan(false);
        let sa = &p.sas[1];
        assert!(explain_sa_errno(1, &p, sa).contains("CAP_NET_ADMIN"));
        assert!(explain_sa_errno(17, &p, sa).contains("SPI 0x000003e9 to 10.45.0.2 already exists"));
        assert!(explain_sa_errno(38, &p, sa).contains("hmac(md5) or cbc(des3_ede)"));
        assert!(explain_sa_errno(93, &p, sa).contains("load module esp4"));
        assert!(explain_sa_errno(93, &plan(true), sa).contains("esp4"));
        let p6 = plan(true);
        assert!(explain_sa_errno(93, &p6, &p6.sas[0]).contains("load module esp6"));
        let m = explain_sa_errno(2, &p, sa);
        assert!(
            m.contains("hmac(md5) (128 bit key) + cbc(des3_ede) (192 bit key)"),
            "{m}"
        );
        assert!(m.contains("drbg"), "{m}");
        assert!(explain_sa_errno(12, &p, sa)
            .to_lowercase()
            .contains("memory"));
        assert!(explain_policy_errno(17).contains("already exists"));
    }

    #[test]
    fn error_display_names_item_and_errno() {
        let p = plan(false);
        let e = StoreError::Refused {
            op: "installing",
            item: Item::Sa(describe_sa(&p.sas[0])),
            errno: Some(93),
            reason: explain_sa_errno(93, &p, &p.sas[0]),
        };
        assert_eq!(
            e.to_string(),
            "installing SA SA1 UE port-c -> P-CSCF port-s (In, spi 0x00001001, 10.45.0.2:50000 -> 10.45.0.1:6100) failed: kernel lacks ESP for this address family: load module esp4 (errno 93)"
        );
        assert_eq!(e.errno(), Some(93));
        let d = describe_policy(&p.policies[0]);
        assert_eq!(
            d,
            "SA1 UE port-c -> P-CSCF port-s dir in proto 0 10.45.0.2:50000 -> 10.45.0.1:6100"
        );
    }
}
