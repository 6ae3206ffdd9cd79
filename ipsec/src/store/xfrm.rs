//! The kernel [`SaStore`]: XFRM netlink through `xfrmnetlink` 0.4 (states, policies,
//! dumps) and `netlink-packet-xfrm` 0.5 (policy templates). Equivalent `ip xfrm`
//! commands for one SA and its policy:
//!
//! ```text
//! ip xfrm state add src UE dst P proto esp spi SPI reqid R mode transport replay-window 32 \
//!     auth-trunc 'hmac(sha1)' 0x… 96 enc 'cbc(aes)' 0x… sel src UE dst P sport UC dport PS
//! ip xfrm policy add src UE/32 dst P/32 sport UC dport PS dir in \
//!     tmpl src UE dst P proto esp reqid R mode transport
//! ```
//!
//! Needs CAP_NET_ADMIN. The netlink connection runs on its own thread: the kernel
//! handles an XFRM request inside the `sendmsg` call, and that can take seconds (the
//! first state with a new algorithm pair makes the crypto layer look for modules; another
//! IPsec daemon can hold the XFRM configuration lock). On a runtime worker that would
//! freeze every task sharing the worker, e.g. all SIP processing of a P-CSCF.
//! Note: `xfrmnetlink` copies key bytes into its request buffers, which are not
//! zeroized; the plan's own copies are.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use futures::TryStreamExt;
use netlink_packet_xfrm::constants::{
    IPPROTO_ESP, XFRM_MODE_TRANSPORT, XFRM_POLICY_ALLOW, XFRM_POLICY_IN, XFRM_POLICY_OUT,
};
use netlink_packet_xfrm::{Address, UserTemplate, XfrmAttrs};

use super::{
    describe_policy, describe_sa, explain_policy_errno, explain_sa_errno, host_prefix, install_all,
    remove_all, sock, InstalledPolicy, InstalledSa, Item, OwnedState, Primitive, SaStore,
    StoreError, StoreFuture,
};
use crate::alg::{AlgPair, EncryptionAlg, IntegrityAlg};
use crate::keys::{Ck, Ik};
use crate::negotiate::KernelSupport;
use crate::plan::{
    plan_sa_set, Direction, PlanOptions, PlannedPolicy, PlannedSa, PolicyKey, SaKey, SaPlan,
    SaSetId, SecEndpoint, Side,
};

/// XFRM netlink store owning `reqid`.
pub struct XfrmSaStore {
    handle: xfrmnetlink::Handle,
    reqid: u32,
    /// Ends the connection thread when the store goes.
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for XfrmSaStore {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn errno_of(e: &xfrmnetlink::Error) -> Option<i32> {
    match e {
        xfrmnetlink::Error::NetlinkError(m) => m.code.map(|c| -c.get()),
        _ => None,
    }
}

fn to_ip(a: &Address, family: u16) -> IpAddr {
    if family == 10 {
        IpAddr::V6(a.to_ipv6())
    } else {
        IpAddr::V4(a.to_ipv4())
    }
}

fn alg_name(name: &[u8]) -> String {
    let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    String::from_utf8_lossy(&name[..end]).into_owned()
}

impl XfrmSaStore {
    /// Opens the XFRM netlink socket in the calling thread's network namespace (the
    /// connection thread inherits it) and runs the connection on a thread of its own
    /// with a single-threaded runtime; requests and answers cross over channels, so the
    /// store is used from any runtime.
    pub fn connect(reqid: u32) -> Result<Self, StoreError> {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("xfrm-netlink".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_io()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("runtime for the XFRM socket: {e}")));
                        return;
                    }
                };
                rt.block_on(async move {
                    match xfrmnetlink::new_connection() {
                        Ok((conn, handle, _messages)) => {
                            let _ = ready_tx.send(Ok(handle));
                            tokio::select! {
                                _ = conn => {}
                                _ = stopped => {}
                            }
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(format!(
                                "{e} (needs CAP_NET_ADMIN and XFRM in the kernel)"
                            )));
                        }
                    }
                });
            })
            .map_err(|e| StoreError::Connect(format!("XFRM netlink thread: {e}")))?;
        let handle = ready_rx
            .recv()
            .map_err(|_| StoreError::Connect("XFRM netlink thread ended at start".into()))?
            .map_err(StoreError::Connect)?;
        Ok(XfrmSaStore {
            handle,
            reqid,
            stop: Some(stop),
        })
    }

    /// The owner tag.
    pub fn reqid(&self) -> u32 {
        self.reqid
    }

    async fn dump_sas(&self) -> Result<Vec<InstalledSa>, StoreError> {
        let msgs: Vec<_> = self
            .handle
            .state()
            .get_dump()
            .execute()
            .try_collect()
            .await
            .map_err(|e| StoreError::Refused {
                op: "listing",
                item: Item::Store,
                errno: errno_of(&e),
                reason: format!("state dump: {e}"),
            })?;
        Ok(msgs
            .into_iter()
            .map(|m| {
                let i = &m.user_sa_info;
                let (mut auth, mut enc) = (None, None);
                for nla in &m.nlas {
                    match nla {
                        XfrmAttrs::AuthenticationAlgTrunc(a) => auth = Some(alg_name(&a.alg_name)),
                        XfrmAttrs::AuthenticationAlg(a) if auth.is_none() => {
                            auth = Some(alg_name(&a.alg_name))
                        }
                        XfrmAttrs::EncryptionAlg(a) => enc = Some(alg_name(&a.alg_name)),
                        _ => {}
                    }
                }
                InstalledSa {
                    src: to_ip(&i.saddr, i.family),
                    dst: to_ip(&i.id.daddr, i.family),
                    spi: i.id.spi,
                    sport: i.selector.sport,
                    dport: i.selector.dport,
                    reqid: i.reqid,
                    auth,
                    enc,
                    packets: i.lifetime_cur.packets,
                    bytes: i.lifetime_cur.bytes,
                    integrity_failed: i.stats.integrity_failed,
                    replay: i.stats.replay,
                }
            })
            .collect())
    }

    async fn dump_policies(&self) -> Result<Vec<InstalledPolicy>, StoreError> {
        let msgs: Vec<_> = self
            .handle
            .policy()
            .get_dump()
            .execute()
            .try_collect()
            .await
            .map_err(|e| StoreError::Refused {
                op: "listing",
                item: Item::Store,
                errno: errno_of(&e),
                reason: format!("policy dump: {e}"),
            })?;
        let mut out = Vec::new();
        for m in msgs {
            let i = &m.user_policy_info;
            let direction = match i.direction {
                XFRM_POLICY_IN => Direction::In,
                XFRM_POLICY_OUT => Direction::Out,
                _ => continue, // fwd: never ours
            };
            let reqid = m.nlas.iter().find_map(|n| match n {
                XfrmAttrs::Template(t) => t.first().map(|t| t.reqid),
                _ => None,
            });
            let Some(reqid) = reqid else { continue };
            let sel = &i.selector;
            out.push(InstalledPolicy {
                key: PolicyKey {
                    src: sock(to_ip(&sel.saddr, sel.family), sel.sport),
                    dst: sock(to_ip(&sel.daddr, sel.family), sel.dport),
                    proto: sel.proto,
                    direction,
                },
                reqid,
            });
        }
        Ok(out)
    }
}

/// What [`XfrmSaStore::probe`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelProbe {
    /// Algorithms an SA could be installed with (for [`crate::negotiate::choose_offer`]).
    pub support: KernelSupport,
    /// Whether an IPv6 ESP SA could be installed (esp6).
    pub ipv6: bool,
    /// Each failure, explained (which algorithm or family, and the module hint).
    pub problems: Vec<String>,
}

impl XfrmSaStore {
    /// Finds out which algorithms the kernel can run by installing and at once
    /// removing a throw-away SA per algorithm (TEST-NET addresses 192.0.2.1/.2 and
    /// 2001:db8::1/2, SPIs 0xfffffff0 and up, this store's reqid). Run it at start-up
    /// and pass `support` to the negotiation, so a UE is never offered a choice the
    /// kernel would refuse.
    pub async fn probe(&self) -> KernelProbe {
        let mut support = KernelSupport {
            integrity: Vec::new(),
            encryption: Vec::new(),
        };
        let mut problems = Vec::new();
        let mut spi = 0xffff_fff0u32;
        let mut try_pair = async |pair: AlgPair, v6: bool| -> Result<(), StoreError> {
            spi += 2;
            let (ue, p): (IpAddr, IpAddr) = if v6 {
                (
                    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2)),
                    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
                )
            } else {
                (
                    IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)),
                    IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
                )
            };
            let ue = SecEndpoint {
                addr: ue,
                spi_c: spi,
                spi_s: spi + 1,
                port_c: 9,
                port_s: 10,
            };
            let pc = SecEndpoint {
                addr: p,
                spi_c: spi,
                spi_s: spi + 1,
                port_c: 9,
                port_s: 10,
            };
            let opts = PlanOptions {
                reqid: self.reqid,
                ..PlanOptions::default()
            };
            let plan = plan_sa_set(
                Side::Pcscf,
                &ue,
                &pc,
                pair,
                &Ck::new([0x5a; 16]),
                &Ik::new([0xa5; 16]),
                &opts,
            )
            .map_err(|e| StoreError::Refused {
                op: "probing",
                item: Item::Store,
                errno: None,
                reason: e.to_string(),
            })?;
            let sa = plan.sas[0];
            self.add_sa(&plan, &sa).await?;
            self.del_sa(&SaKey {
                src: sa.src.ip(),
                dst: sa.dst.ip(),
                spi: sa.spi,
            })
            .await?;
            Ok(())
        };
        for alg in IntegrityAlg::ALL {
            match try_pair(AlgPair::new(alg, EncryptionAlg::Null), false).await {
                Ok(()) => support.integrity.push(alg),
                Err(e) => problems.push(format!("{alg}: {e}")),
            }
        }
        let alg = support
            .integrity
            .first()
            .copied()
            .unwrap_or(IntegrityAlg::HmacSha1_96);
        for ealg in EncryptionAlg::ALL {
            match try_pair(AlgPair::new(alg, ealg), false).await {
                Ok(()) => support.encryption.push(ealg),
                Err(e) => problems.push(format!("{ealg}: {e}")),
            }
        }
        let ipv6 = match try_pair(AlgPair::new(alg, EncryptionAlg::Null), true).await {
            Ok(()) => true,
            Err(e) => {
                problems.push(format!("IPv6: {e}"));
                false
            }
        };
        KernelProbe {
            support,
            ipv6,
            problems,
        }
    }
}

impl Primitive for XfrmSaStore {
    async fn add_sa(&self, plan: &SaPlan, sa: &PlannedSa) -> Result<(), StoreError> {
        let refuse = |errno: Option<i32>, reason: String| StoreError::Refused {
            op: "installing",
            item: Item::Sa(describe_sa(sa)),
            errno,
            reason,
        };
        let (src, dst) = (sa.src.ip(), sa.dst.ip());
        let req = self
            .handle
            .state()
            .add(src, dst)
            .protocol(IPPROTO_ESP)
            .spi(sa.spi)
            .mode(XFRM_MODE_TRANSPORT)
            .reqid(plan.reqid)
            .replay_window(u32::from(plan.replay_window), 0, 0, 0, 0)
            .selector_addresses(src, host_prefix(src), dst, host_prefix(dst))
            .selector_protocol_src_port(sa.src.port())
            .selector_protocol_dst_port(sa.dst.port())
            .authentication_trunc(
                plan.keys.auth.name,
                &plan.keys.auth.key,
                plan.keys.auth_trunc_bits,
            )
            .map_err(|e| refuse(None, e.to_string()))?
            .encryption(plan.keys.enc.name, &plan.keys.enc.key)
            .map_err(|e| refuse(None, e.to_string()))?;
        req.execute().await.map_err(|e| match errno_of(&e) {
            Some(n) => refuse(Some(n), explain_sa_errno(n, plan, sa)),
            None => refuse(None, e.to_string()),
        })?;
        tracing::debug!(sa = %sa, "XFRM SA added");
        Ok(())
    }

    async fn upsert_policy(&self, plan: &SaPlan, p: &PlannedPolicy) -> Result<bool, StoreError> {
        let build = |update: bool| {
            let (src, dst) = (p.src.ip(), p.dst.ip());
            let mut tmpl = UserTemplate::default();
            tmpl.source(&src);
            tmpl.destination(&dst);
            tmpl.protocol(IPPROTO_ESP);
            tmpl.mode(XFRM_MODE_TRANSPORT);
            tmpl.reqid(plan.reqid);
            let h = self.handle.policy();
            let r = if update {
                h.update(src, host_prefix(src), dst, host_prefix(dst))
            } else {
                h.add(src, host_prefix(src), dst, host_prefix(dst))
            };
            r.direction(p.direction.xfrm())
                .action(XFRM_POLICY_ALLOW)
                .priority(plan.priority)
                .selector_protocol(p.proto)
                .selector_protocol_src_port(p.src.port())
                .selector_protocol_dst_port(p.dst.port())
                .add_template(tmpl)
        };
        let refuse = |e: xfrmnetlink::Error| StoreError::Refused {
            op: "installing",
            item: Item::Policy(describe_policy(p)),
            errno: errno_of(&e),
            reason: errno_of(&e)
                .map(explain_policy_errno)
                .unwrap_or_else(|| e.to_string()),
        };
        match build(false).execute().await {
            Ok(()) => Ok(true),
            Err(e) if errno_of(&e) == Some(17) => {
                build(true).execute().await.map_err(refuse)?;
                tracing::debug!(policy = %describe_policy(p), "XFRM policy existed; replaced");
                Ok(false)
            }
            Err(e) => Err(refuse(e)),
        }
    }

    async fn del_sa(&self, key: &SaKey) -> Result<bool, StoreError> {
        let r = self
            .handle
            .state()
            .delete(key.src, key.dst)
            .protocol(IPPROTO_ESP)
            .spi(key.spi)
            .execute()
            .await;
        match r {
            Ok(()) => Ok(true),
            Err(e) if errno_of(&e) == Some(3) || errno_of(&e) == Some(2) => Ok(false),
            Err(e) => Err(StoreError::Refused {
                op: "removing",
                item: Item::Sa(format!("spi 0x{:08x} {} -> {}", key.spi, key.src, key.dst)),
                errno: errno_of(&e),
                reason: e.to_string(),
            }),
        }
    }

    async fn del_policy(&self, key: &PolicyKey) -> Result<bool, StoreError> {
        let (src, dst) = (key.src.ip(), key.dst.ip());
        let r = self
            .handle
            .policy()
            .delete(src, host_prefix(src), dst, host_prefix(dst))
            .direction(key.direction.xfrm())
            .selector_protocol(key.proto)
            .selector_protocol_src_port(key.src.port())
            .selector_protocol_dst_port(key.dst.port())
            .execute()
            .await;
        match r {
            Ok(()) => Ok(true),
            Err(e) if errno_of(&e) == Some(2) => Ok(false),
            Err(e) => Err(StoreError::Refused {
                op: "removing",
                item: Item::Policy(format!(
                    "dir {:?} proto {} {} -> {}",
                    key.direction, key.proto, key.src, key.dst
                )),
                errno: errno_of(&e),
                reason: e.to_string(),
            }),
        }
    }
}

impl SaStore for XfrmSaStore {
    fn install<'a>(&'a self, plan: &'a SaPlan) -> StoreFuture<'a, ()> {
        Box::pin(install_all(self, plan))
    }

    fn remove<'a>(&'a self, id: &'a SaSetId) -> StoreFuture<'a, ()> {
        Box::pin(remove_all(self, id))
    }

    fn list_owned(&self) -> StoreFuture<'_, OwnedState> {
        Box::pin(async move {
            let sas = self
                .dump_sas()
                .await?
                .into_iter()
                .filter(|s| s.reqid == self.reqid)
                .collect();
            let policies = self
                .dump_policies()
                .await?
                .into_iter()
                .filter(|p| p.reqid == self.reqid)
                .collect();
            Ok(OwnedState { sas, policies })
        })
    }

    fn flush_owned(&self) -> StoreFuture<'_, OwnedState> {
        Box::pin(async move {
            let owned = self.list_owned().await?;
            let id = SaSetId {
                sas: owned.sas.iter().map(InstalledSa::key).collect(),
                policies: owned.policies.iter().map(|p| p.key).collect(),
            };
            remove_all(self, &id).await?;
            Ok(owned)
        })
    }
}
