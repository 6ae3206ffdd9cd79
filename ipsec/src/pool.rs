//! Allocation of the P-CSCF's own SPIs (spi-c, spi-s) and protected ports
//! (port-c, port-s) for each UE (TS 33.203 §7.1: the P-CSCF chooses the SPIs of its
//! inbound SAs and its protected ports and announces them in `Security-Server`).
//!
//! SPIs come from a configured range and are never handed to two UEs at once.
//! Ports are either shared by all UEs (one protected client port and one server port,
//! the common deployment: the SAs still differ by UE address/ports and SPI) or one
//! pair per UE from two ranges (Kamailio's `ipsec_client_port`/`ipsec_server_port` +
//! `ipsec_max_connections`). Allocation scans forward from the last grant so a
//! released SPI is reused only after the rest of the range (stale packets for an old
//! SA then hit no SA), and fails with [`PoolError::Exhausted`] naming the range.
//! After a restart, [`ProtectedPool::with_in_use`] takes what the kernel still holds
//! (from [`crate::store::SaStore::list_owned`]).

use std::collections::BTreeSet;
use std::net::IpAddr;

use crate::alg::AlgPair;
use crate::header::{IpsecOffer, QValue};
use crate::plan::SecEndpoint;

/// Protected port layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortConfig {
    /// The same port-c and port-s for every UE.
    Shared {
        /// The P-CSCF's protected client port.
        port_c: u16,
        /// The P-CSCF's protected server port.
        port_s: u16,
    },
    /// UE number i gets `port_c_start + i` and `port_s_start + i`, i < `count`.
    PerUe {
        /// First client port.
        port_c_start: u16,
        /// First server port.
        port_s_start: u16,
        /// Number of pairs.
        count: u16,
    },
}

/// Pool configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolConfig {
    /// First SPI (must be ≥ 256: 1–255 are reserved by RFC 4303).
    pub spi_start: u32,
    /// Number of SPIs (two per UE).
    pub spi_count: u32,
    /// Ports.
    pub ports: PortConfig,
}

impl Default for PoolConfig {
    /// SPIs 0x1000 … 0x1000+65535, shared ports 5100 (client) and 6100 (server).
    fn default() -> Self {
        PoolConfig {
            spi_start: 0x1000,
            spi_count: 65536,
            ports: PortConfig::Shared {
                port_c: 5100,
                port_s: 6100,
            },
        }
    }
}

/// What one UE got: the P-CSCF's values for `Security-Server`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Lease {
    /// P-CSCF spi-c.
    pub spi_c: u32,
    /// P-CSCF spi-s.
    pub spi_s: u32,
    /// P-CSCF port-c.
    pub port_c: u16,
    /// P-CSCF port-s.
    pub port_s: u16,
}

impl Lease {
    /// The P-CSCF's `Security-Server` offer for the chosen pair (`q=0.1`, as Kamailio
    /// sends it), to be echoed by the UE in `Security-Verify`.
    pub fn security_server(&self, pair: AlgPair) -> IpsecOffer {
        let mut o = IpsecOffer::new(pair, self.spi_c, self.spi_s, self.port_c, self.port_s);
        o.q = Some(QValue::from_thousandths(100));
        o
    }

    /// The P-CSCF's side for [`crate::plan::plan_sa_set`].
    pub fn endpoint(&self, addr: IpAddr) -> SecEndpoint {
        SecEndpoint {
            addr,
            spi_c: self.spi_c,
            spi_s: self.spi_s,
            port_c: self.port_c,
            port_s: self.port_s,
        }
    }
}

/// Pool errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// Nothing left.
    #[error("{what} pool exhausted: all {size} in {first}..={last} are in use; raise the range or wait for UEs to de-register")]
    Exhausted {
        /// `SPI` or `protected port pair`.
        what: &'static str,
        /// Range size.
        size: u64,
        /// First value.
        first: u64,
        /// Last value.
        last: u64,
    },
    /// Bad configuration.
    #[error("invalid IPsec pool configuration: {0}")]
    Config(&'static str),
}

/// The allocator. Not thread-safe by itself: the P-CSCF keeps it behind its own lock
/// or in the task that owns registrations.
#[derive(Debug, Clone)]
pub struct ProtectedPool {
    cfg: PoolConfig,
    spis: BTreeSet<u32>,
    next_spi: u32,
    slots: BTreeSet<u16>,
    next_slot: u16,
}

impl ProtectedPool {
    /// An empty pool.
    pub fn new(cfg: PoolConfig) -> Result<Self, PoolError> {
        Self::with_in_use(cfg, [], [])
    }

    /// A pool where `spis` and `ports` (either port-c or port-s values) are taken,
    /// e.g. read back from the kernel after a restart. Values outside the configured
    /// ranges are ignored.
    pub fn with_in_use(
        cfg: PoolConfig,
        spis: impl IntoIterator<Item = u32>,
        ports: impl IntoIterator<Item = u16>,
    ) -> Result<Self, PoolError> {
        if cfg.spi_start < 256 {
            return Err(PoolError::Config(
                "spi_start must be at least 256 (RFC 4303 reserves 1-255)",
            ));
        }
        if cfg.spi_count < 2 {
            return Err(PoolError::Config(
                "spi_count must be at least 2 (two SPIs per UE)",
            ));
        }
        if u64::from(cfg.spi_start) + u64::from(cfg.spi_count) - 1 > u64::from(u32::MAX) {
            return Err(PoolError::Config("spi_start + spi_count exceeds 2^32"));
        }
        match cfg.ports {
            PortConfig::Shared { port_c, port_s } => {
                if port_c == 0 || port_s == 0 || port_c == port_s {
                    return Err(PoolError::Config(
                        "port_c and port_s must be non-zero and distinct",
                    ));
                }
            }
            PortConfig::PerUe {
                port_c_start,
                port_s_start,
                count,
            } => {
                let (c, s, n) = (
                    u32::from(port_c_start),
                    u32::from(port_s_start),
                    u32::from(count),
                );
                if n == 0 || c == 0 || s == 0 || c + n - 1 > 65535 || s + n - 1 > 65535 {
                    return Err(PoolError::Config(
                        "port ranges must be non-empty and within 1..65535",
                    ));
                }
                if c < s + n && s < c + n {
                    return Err(PoolError::Config("client and server port ranges overlap"));
                }
            }
        }
        let mut pool = ProtectedPool {
            cfg,
            spis: BTreeSet::new(),
            next_spi: cfg.spi_start,
            slots: BTreeSet::new(),
            next_slot: 0,
        };
        for spi in spis {
            if pool.spi_in_range(spi) {
                pool.spis.insert(spi);
            }
        }
        for port in ports {
            if let Some(slot) = pool.slot_of(port) {
                pool.slots.insert(slot);
            }
        }
        Ok(pool)
    }

    fn spi_in_range(&self, spi: u32) -> bool {
        spi >= self.cfg.spi_start
            && u64::from(spi) < u64::from(self.cfg.spi_start) + u64::from(self.cfg.spi_count)
    }

    fn slot_of(&self, port: u16) -> Option<u16> {
        match self.cfg.ports {
            PortConfig::Shared { .. } => None,
            PortConfig::PerUe {
                port_c_start,
                port_s_start,
                count,
            } => [port_c_start, port_s_start]
                .into_iter()
                .find(|&start| port >= start && port - start < count)
                .map(|start| port - start),
        }
    }

    fn take_spi(&mut self) -> Option<u32> {
        let n = u64::from(self.cfg.spi_count);
        if self.spis.len() as u64 >= n {
            return None;
        }
        let start = u64::from(self.cfg.spi_start);
        let mut off = u64::from(self.next_spi) - start;
        for _ in 0..n {
            // In range by construction: start + off < start + count <= 2^32.
            let spi = (start + off) as u32;
            off = (off + 1) % n;
            if self.spis.insert(spi) {
                self.next_spi = (start + off) as u32;
                return Some(spi);
            }
        }
        None
    }

    fn exhausted_spi(&self) -> PoolError {
        PoolError::Exhausted {
            what: "SPI",
            size: u64::from(self.cfg.spi_count),
            first: u64::from(self.cfg.spi_start),
            last: u64::from(self.cfg.spi_start) + u64::from(self.cfg.spi_count) - 1,
        }
    }

    /// Allocates two SPIs and a port pair for one UE.
    pub fn allocate(&mut self) -> Result<Lease, PoolError> {
        let (port_c, port_s, slot) = match self.cfg.ports {
            PortConfig::Shared { port_c, port_s } => (port_c, port_s, None),
            PortConfig::PerUe {
                port_c_start,
                port_s_start,
                count,
            } => {
                let slot = (0..count)
                    .map(|i| ((u32::from(self.next_slot) + u32::from(i)) % u32::from(count)) as u16)
                    .find(|s| !self.slots.contains(s))
                    .ok_or(PoolError::Exhausted {
                        what: "protected port pair",
                        size: u64::from(count),
                        first: u64::from(port_c_start),
                        last: u64::from(port_c_start) + u64::from(count) - 1,
                    })?;
                (port_c_start + slot, port_s_start + slot, Some(slot))
            }
        };
        if (self.spis.len() as u64) + 2 > u64::from(self.cfg.spi_count) {
            return Err(self.exhausted_spi());
        }
        let spi_c = self.take_spi().ok_or_else(|| self.exhausted_spi())?;
        let Some(spi_s) = self.take_spi() else {
            self.spis.remove(&spi_c);
            return Err(self.exhausted_spi());
        };
        if let (Some(slot), PortConfig::PerUe { count, .. }) = (slot, self.cfg.ports) {
            self.slots.insert(slot);
            self.next_slot = ((u32::from(slot) + 1) % u32::from(count)) as u16;
        }
        Ok(Lease {
            spi_c,
            spi_s,
            port_c,
            port_s,
        })
    }

    /// Returns a lease's SPIs and ports to the pool. Releasing twice is harmless.
    pub fn release(&mut self, lease: &Lease) {
        self.spis.remove(&lease.spi_c);
        self.spis.remove(&lease.spi_s);
        if let Some(slot) = self.slot_of(lease.port_c) {
            self.slots.remove(&slot);
        }
    }

    /// Number of SPIs in use.
    pub fn spis_in_use(&self) -> usize {
        self.spis.len()
    }

    /// Whether this SPI is currently allocated.
    pub fn is_spi_in_use(&self, spi: u32) -> bool {
        self.spis.contains(&spi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn cfg(spi_count: u32, ports: PortConfig) -> PoolConfig {
        PoolConfig {
            spi_start: 0x1000,
            spi_count,
            ports,
        }
    }

    #[test]
    fn no_collisions_across_many_ues() {
        let mut p = ProtectedPool::new(PoolConfig::default()).unwrap();
        let mut seen = HashSet::new();
        for _ in 0..10_000 {
            let l = p.allocate().unwrap();
            assert!(seen.insert(l.spi_c));
            assert!(seen.insert(l.spi_s));
            assert_ne!(l.spi_c, l.spi_s);
            assert_eq!((l.port_c, l.port_s), (5100, 6100));
        }
        assert_eq!(p.spis_in_use(), 20_000);
    }

    #[test]
    fn exhaustion_is_clear_and_release_allows_reuse() {
        let shared = PortConfig::Shared {
            port_c: 5100,
            port_s: 6100,
        };
        let mut p = ProtectedPool::new(cfg(5, shared)).unwrap();
        let a = p.allocate().unwrap();
        let _b = p.allocate().unwrap();
        let e = p.allocate().unwrap_err();
        assert_eq!(e.to_string(), "SPI pool exhausted: all 5 in 4096..=4100 are in use; raise the range or wait for UEs to de-register");
        p.release(&a);
        let c = p.allocate().unwrap();
        let got: HashSet<u32> = [c.spi_c, c.spi_s].into();
        let freed: HashSet<u32> = [a.spi_c, a.spi_s, 0x1004].into();
        assert!(got.is_subset(&freed), "{got:?}");
    }

    #[test]
    fn released_spis_are_not_reused_immediately() {
        let mut p = ProtectedPool::new(cfg(
            100,
            PortConfig::Shared {
                port_c: 1,
                port_s: 2,
            },
        ))
        .unwrap();
        let a = p.allocate().unwrap();
        p.release(&a);
        let b = p.allocate().unwrap();
        assert_ne!(a.spi_c, b.spi_c);
        assert_ne!(a.spi_s, b.spi_s);
    }

    #[test]
    fn per_ue_ports() {
        let ports = PortConfig::PerUe {
            port_c_start: 5100,
            port_s_start: 6100,
            count: 2,
        };
        let mut p = ProtectedPool::new(cfg(100, ports)).unwrap();
        let a = p.allocate().unwrap();
        let b = p.allocate().unwrap();
        assert_eq!(
            (a.port_c, a.port_s, b.port_c, b.port_s),
            (5100, 6100, 5101, 6101)
        );
        let e = p.allocate().unwrap_err();
        assert!(
            e.to_string()
                .starts_with("protected port pair pool exhausted"),
            "{e}"
        );
        assert_eq!(p.spis_in_use(), 4, "a failed allocation takes nothing");
        p.release(&a);
        assert_eq!(p.allocate().unwrap().port_c, 5100);
    }

    #[test]
    fn survives_restart_with_kernel_state() {
        let ports = PortConfig::PerUe {
            port_c_start: 5100,
            port_s_start: 6100,
            count: 3,
        };
        let mut p =
            ProtectedPool::with_in_use(cfg(6, ports), [0x1000, 0x1001, 0x1003, 99], [5100, 6102])
                .unwrap();
        let l = p.allocate().unwrap();
        assert_eq!((l.spi_c, l.spi_s), (0x1002, 0x1004));
        assert_eq!(l.port_c, 5101);
        assert!(p.is_spi_in_use(0x1003));
        assert!(!p.is_spi_in_use(99));
        assert!(matches!(
            p.allocate(),
            Err(PoolError::Exhausted {
                what: "protected port pair",
                ..
            })
        ));
    }

    #[test]
    fn top_of_u32_range() {
        let mut p = ProtectedPool::new(PoolConfig {
            spi_start: u32::MAX - 1,
            spi_count: 2,
            ports: PortConfig::Shared {
                port_c: 1,
                port_s: 2,
            },
        })
        .unwrap();
        let l = p.allocate().unwrap();
        assert_eq!((l.spi_c, l.spi_s), (u32::MAX - 1, u32::MAX));
        assert!(p.allocate().is_err());
    }

    #[test]
    fn lease_gives_security_server_and_endpoint() {
        use crate::alg::{EncryptionAlg, IntegrityAlg};
        let l = Lease {
            spi_c: 4096,
            spi_s: 4097,
            port_c: 5100,
            port_s: 6100,
        };
        let o = l.security_server(AlgPair::new(IntegrityAlg::HmacSha1_96, EncryptionAlg::Null));
        assert_eq!(
            o.to_string(),
            "ipsec-3gpp;q=0.1;prot=esp;mod=trans;spi-c=4096;spi-s=4097;port-c=5100;port-s=6100;alg=hmac-sha-1-96;ealg=null"
        );
        let e = l.endpoint("10.45.0.1".parse().unwrap());
        assert_eq!(
            (e.spi_c, e.spi_s, e.port_c, e.port_s),
            (4096, 4097, 5100, 6100)
        );
    }

    #[test]
    fn bad_configs() {
        let shared = PortConfig::Shared {
            port_c: 5100,
            port_s: 6100,
        };
        assert!(ProtectedPool::new(PoolConfig {
            spi_start: 1,
            spi_count: 10,
            ports: shared
        })
        .is_err());
        assert!(ProtectedPool::new(PoolConfig {
            spi_start: u32::MAX,
            spi_count: 2,
            ports: shared
        })
        .is_err());
        assert!(ProtectedPool::new(cfg(
            10,
            PortConfig::Shared {
                port_c: 5,
                port_s: 5
            }
        ))
        .is_err());
        let overlap = PortConfig::PerUe {
            port_c_start: 5100,
            port_s_start: 5105,
            count: 10,
        };
        assert!(ProtectedPool::new(cfg(10, overlap)).is_err());
        let overflow = PortConfig::PerUe {
            port_c_start: 65530,
            port_s_start: 6100,
            count: 10,
        };
        assert!(ProtectedPool::new(cfg(10, overflow)).is_err());
    }
}
