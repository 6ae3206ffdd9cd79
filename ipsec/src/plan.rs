//! Planning the four unidirectional ESP transport SAs of one UE and their XFRM
//! policies (TS 33.203 §7.1), for the P-CSCF side or, symmetrically, the UE side.
//!
//! | SA | from → to | SPI | at the P-CSCF | at the UE |
//! |---|---|---|---|---|
//! | SA1 | UE port-c → P port-s | P's spi-s | in | out |
//! | SA2 | P port-c → UE port-s | UE's spi-s | out | in |
//! | SA3 | P port-s → UE port-c | UE's spi-c | out | in |
//! | SA4 | UE port-s → P port-c | P's spi-c | in | out |
//!
//! Each SA's selector is (src addr/32 or /128, src port, dst addr, dst port, any
//! protocol). Each SA gets policies with the same addresses and ports and an ESP
//! transport template carrying the plan's `reqid` (the ownership tag, see
//! [`crate::store`]) and SPI 0: the kernel then binds a flow to the SA whose selector
//! (addresses + ports) matches, checks after decryption that the SA used matches the
//! packet's ports, and, when a re-registration has installed a newer SA for the same
//! ports, sends with the newest while still accepting the old one until it is removed
//! (TS 33.203 §7.4). Policies of an old and a new SA set with the same selector are
//! the same policy: see [`SaSetId::without_shared_policies`]. [`PolicyProtocols::Any`] (the default) installs one policy with
//! protocol 0, which the kernel matches against UDP and TCP alike
//! (`xfrm_selector_match` treats proto 0 as a wildcard while still comparing ports);
//! [`PolicyProtocols::UdpAndTcp`] installs one per protocol, as `ip xfrm policy`
//! users usually write them. Both were checked with real ESP in UML (ipsec/tests).
//! Planning is pure: nothing here touches the kernel.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use crate::alg::{AlgPair, EncryptionAlg, IntegrityAlg};
use crate::header::IpsecOffer;
use crate::keys::{derive_esp_keys, Ck, EspKeys, Ik};

/// Default ownership tag (`reqid`) of the P-CSCF's SAs and policies ("IMS").
pub const DEFAULT_PCSCF_REQID: u32 = 0x0049_4d53;
/// Default ownership tag of a UE simulator's SAs and policies ("UES").
pub const DEFAULT_UE_REQID: u32 = 0x0055_4553;

/// IP protocol numbers used in policy selectors.
pub mod ipproto {
    /// Any protocol.
    pub const ANY: u8 = 0;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// ESP.
    pub const ESP: u8 = 50;
}

/// One side's sec-agree parameters: its address and what it put in its
/// `Security-Client` (UE) or `Security-Server` (P-CSCF).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SecEndpoint {
    /// The address the SAs use (the UE's IP, the P-CSCF's Gm address).
    pub addr: IpAddr,
    /// SPI of the SA arriving at this side's protected client port.
    pub spi_c: u32,
    /// SPI of the SA arriving at this side's protected server port.
    pub spi_s: u32,
    /// Protected client port.
    pub port_c: u16,
    /// Protected server port.
    pub port_s: u16,
}

impl SecEndpoint {
    /// From an address and the SPIs/ports of a parsed offer.
    pub fn from_offer(addr: IpAddr, offer: &IpsecOffer) -> Self {
        SecEndpoint {
            addr,
            spi_c: offer.spi_c,
            spi_s: offer.spi_s,
            port_c: offer.port_c,
            port_s: offer.port_s,
        }
    }
}

/// Whose kernel the plan is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The P-CSCF.
    Pcscf,
    /// The UE.
    Ue,
}

/// XFRM policy direction as seen by the side the plan is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// `dir in`.
    In,
    /// `dir out`.
    Out,
}

impl Direction {
    /// XFRM_POLICY_IN (0) / XFRM_POLICY_OUT (1).
    pub fn xfrm(self) -> u8 {
        match self {
            Direction::In => 0,
            Direction::Out => 1,
        }
    }
}

/// The four SAs of TS 33.203 §7.1, named by their flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SaRole {
    /// SA1: UE port-c → P-CSCF port-s (requests from the UE, TCP connection UE→P).
    UeClientToPcscfServer,
    /// SA2: P-CSCF port-c → UE port-s (requests to the UE).
    PcscfClientToUeServer,
    /// SA3: P-CSCF port-s → UE port-c (responses to the UE's requests).
    PcscfServerToUeClient,
    /// SA4: UE port-s → P-CSCF port-c (responses to the P-CSCF's requests).
    UeServerToPcscfClient,
}

impl SaRole {
    /// `SA1` … `SA4`.
    pub fn label(self) -> &'static str {
        match self {
            SaRole::UeClientToPcscfServer => "SA1 UE port-c -> P-CSCF port-s",
            SaRole::PcscfClientToUeServer => "SA2 P-CSCF port-c -> UE port-s",
            SaRole::PcscfServerToUeClient => "SA3 P-CSCF port-s -> UE port-c",
            SaRole::UeServerToPcscfClient => "SA4 UE port-s -> P-CSCF port-c",
        }
    }
}

impl fmt::Display for SaRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// Which protocols the policies name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PolicyProtocols {
    /// One policy per SA with protocol 0 (matches UDP and TCP). 4 policies per UE.
    #[default]
    Any,
    /// One UDP and one TCP policy per SA. 8 policies per UE.
    UdpAndTcp,
}

/// Planning options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanOptions {
    /// Ownership tag written as `reqid` into every SA and policy template.
    pub reqid: u32,
    /// Policy protocol layout.
    pub policy_protocols: PolicyProtocols,
    /// Anti-replay window in packets (Kamailio and handsets use 32).
    pub replay_window: u8,
    /// Policy priority (lower wins in the kernel).
    pub priority: u32,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            reqid: DEFAULT_PCSCF_REQID,
            policy_protocols: PolicyProtocols::Any,
            replay_window: 32,
            priority: 0,
        }
    }
}

/// One ESP transport SA to install.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PlannedSa {
    /// Which of the four.
    pub role: SaRole,
    /// In or out, for the side of the plan.
    pub direction: Direction,
    /// Sender address and port (the selector's source).
    pub src: SocketAddr,
    /// Receiver address and port (the selector's destination).
    pub dst: SocketAddr,
    /// SPI, chosen by the receiver.
    pub spi: u32,
}

impl fmt::Display for PlannedSa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({:?}, spi 0x{:08x}, {} -> {})",
            self.role, self.direction, self.spi, self.src, self.dst
        )
    }
}

/// One XFRM policy to install: selector, direction, and a template for its SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PlannedPolicy {
    /// The SA the template points at.
    pub role: SaRole,
    /// Direction.
    pub direction: Direction,
    /// Selector source (address/host prefix and port).
    pub src: SocketAddr,
    /// Selector destination.
    pub dst: SocketAddr,
    /// Selector protocol ([`ipproto`]).
    pub proto: u8,
}

/// What identifies an installed SA in the kernel: (destination, SPI, ESP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SaKey {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// SPI.
    pub spi: u32,
}

/// What identifies an installed policy: its selector and direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PolicyKey {
    /// Selector source.
    pub src: SocketAddr,
    /// Selector destination.
    pub dst: SocketAddr,
    /// Selector protocol.
    pub proto: u8,
    /// Direction.
    pub direction: Direction,
}

/// The kernel identifiers of one installed SA set, without keys: what the P-CSCF
/// keeps to remove the set later.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SaSetId {
    /// The four SAs.
    pub sas: Vec<SaKey>,
    /// The policies.
    pub policies: Vec<PolicyKey>,
}

/// Everything needed to install one UE's SA set on one side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaPlan {
    /// Whose kernel.
    pub side: Side,
    /// Integrity algorithm.
    pub alg: IntegrityAlg,
    /// Encryption algorithm.
    pub ealg: EncryptionAlg,
    /// Keys (same for all four SAs).
    pub keys: EspKeys,
    /// SA1, SA2, SA3, SA4 in this order.
    pub sas: [PlannedSa; 4],
    /// Policies, in SA order.
    pub policies: Vec<PlannedPolicy>,
    /// Ownership tag.
    pub reqid: u32,
    /// Anti-replay window.
    pub replay_window: u8,
    /// Policy priority.
    pub priority: u32,
}

impl SaSetId {
    /// This set without the policies that `newer` also uses: what to remove when
    /// retiring an old set after a re-registration installed `newer` with some of the
    /// same selectors (same ports on both sides).
    pub fn without_shared_policies(&self, newer: &SaSetId) -> SaSetId {
        SaSetId {
            sas: self.sas.clone(),
            policies: self
                .policies
                .iter()
                .filter(|p| !newer.policies.contains(p))
                .copied()
                .collect(),
        }
    }
}

impl SaPlan {
    /// Kernel identifiers of this plan (for removal).
    pub fn id(&self) -> SaSetId {
        SaSetId {
            sas: self
                .sas
                .iter()
                .map(|s| SaKey {
                    src: s.src.ip(),
                    dst: s.dst.ip(),
                    spi: s.spi,
                })
                .collect(),
            policies: self
                .policies
                .iter()
                .map(|p| PolicyKey {
                    src: p.src,
                    dst: p.dst,
                    proto: p.proto,
                    direction: p.direction,
                })
                .collect(),
        }
    }

    /// The SA with this role.
    pub fn sa(&self, role: SaRole) -> &PlannedSa {
        // The array always holds the four roles in order.
        &self.sas[match role {
            SaRole::UeClientToPcscfServer => 0,
            SaRole::PcscfClientToUeServer => 1,
            SaRole::PcscfServerToUeClient => 2,
            SaRole::UeServerToPcscfClient => 3,
        }]
    }
}

/// Why a plan cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// One side is IPv4, the other IPv6.
    #[error("UE address {ue} and P-CSCF address {pcscf} are of different IP families")]
    MixedFamilies {
        /// UE address.
        ue: IpAddr,
        /// P-CSCF address.
        pcscf: IpAddr,
    },
    /// SPI 0 is reserved (RFC 4303 §2.1).
    #[error("{side:?} {param} is 0, which RFC 4303 reserves")]
    ZeroSpi {
        /// Whose.
        side: Side,
        /// `spi-c` or `spi-s`.
        param: &'static str,
    },
    /// A side's two inbound SAs would share one SPI.
    #[error("{side:?} spi-c and spi-s are both {spi}; its two inbound SAs need distinct SPIs")]
    SpiClash {
        /// Whose.
        side: Side,
        /// The SPI.
        spi: u32,
    },
    /// Port 0, or port-c equal to port-s.
    #[error("{side:?} protected ports invalid (port-c {port_c}, port-s {port_s}): must be non-zero and distinct")]
    BadPorts {
        /// Whose.
        side: Side,
        /// port-c.
        port_c: u16,
        /// port-s.
        port_s: u16,
    },
}

fn check(side: Side, e: &SecEndpoint) -> Result<(), PlanError> {
    if e.spi_c == 0 {
        return Err(PlanError::ZeroSpi {
            side,
            param: "spi-c",
        });
    }
    if e.spi_s == 0 {
        return Err(PlanError::ZeroSpi {
            side,
            param: "spi-s",
        });
    }
    if e.spi_c == e.spi_s {
        return Err(PlanError::SpiClash { side, spi: e.spi_c });
    }
    if e.port_c == 0 || e.port_s == 0 || e.port_c == e.port_s {
        return Err(PlanError::BadPorts {
            side,
            port_c: e.port_c,
            port_s: e.port_s,
        });
    }
    Ok(())
}

/// Plans the four SAs and their policies for `side` (see the module table).
pub fn plan_sa_set(
    side: Side,
    ue: &SecEndpoint,
    pcscf: &SecEndpoint,
    pair: AlgPair,
    ck: &Ck,
    ik: &Ik,
    opts: &PlanOptions,
) -> Result<SaPlan, PlanError> {
    if ue.addr.is_ipv4() != pcscf.addr.is_ipv4() {
        return Err(PlanError::MixedFamilies {
            ue: ue.addr,
            pcscf: pcscf.addr,
        });
    }
    check(Side::Ue, ue)?;
    check(Side::Pcscf, pcscf)?;
    let at = |addr: IpAddr, port: u16| SocketAddr::new(addr, port);
    // Direction at the P-CSCF; the UE side is the mirror image.
    let dir = |toward_pcscf: bool| match (side, toward_pcscf) {
        (Side::Pcscf, true) | (Side::Ue, false) => Direction::In,
        _ => Direction::Out,
    };
    let sas = [
        PlannedSa {
            role: SaRole::UeClientToPcscfServer,
            direction: dir(true),
            src: at(ue.addr, ue.port_c),
            dst: at(pcscf.addr, pcscf.port_s),
            spi: pcscf.spi_s,
        },
        PlannedSa {
            role: SaRole::PcscfClientToUeServer,
            direction: dir(false),
            src: at(pcscf.addr, pcscf.port_c),
            dst: at(ue.addr, ue.port_s),
            spi: ue.spi_s,
        },
        PlannedSa {
            role: SaRole::PcscfServerToUeClient,
            direction: dir(false),
            src: at(pcscf.addr, pcscf.port_s),
            dst: at(ue.addr, ue.port_c),
            spi: ue.spi_c,
        },
        PlannedSa {
            role: SaRole::UeServerToPcscfClient,
            direction: dir(true),
            src: at(ue.addr, ue.port_s),
            dst: at(pcscf.addr, pcscf.port_c),
            spi: pcscf.spi_c,
        },
    ];
    let protos: &[u8] = match opts.policy_protocols {
        PolicyProtocols::Any => &[ipproto::ANY],
        PolicyProtocols::UdpAndTcp => &[ipproto::UDP, ipproto::TCP],
    };
    let policies = sas
        .iter()
        .flat_map(|sa| {
            protos.iter().map(move |&proto| PlannedPolicy {
                role: sa.role,
                direction: sa.direction,
                src: sa.src,
                dst: sa.dst,
                proto,
            })
        })
        .collect();
    Ok(SaPlan {
        side,
        alg: pair.alg,
        ealg: pair.ealg,
        keys: derive_esp_keys(pair.alg, pair.ealg, ck, ik),
        sas,
        policies,
        reqid: opts.reqid,
        replay_window: opts.replay_window,
        priority: opts.priority,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ue() -> SecEndpoint {
        SecEndpoint {
            addr: "10.45.0.2".parse().unwrap(),
            spi_c: 3_000_000_001,
            spi_s: 3_000_000_002,
            port_c: 50000,
            port_s: 50001,
        }
    }
    fn pcscf() -> SecEndpoint {
        SecEndpoint {
            addr: "10.45.0.1".parse().unwrap(),
            spi_c: 4096,
            spi_s: 4097,
            port_c: 5100,
            port_s: 6100,
        }
    }
    fn keys() -> (Ck, Ik) {
        (Ck::new([0x11; 16]), Ik::new([0x22; 16]))
    }
    fn pair() -> AlgPair {
        AlgPair::new(IntegrityAlg::HmacSha1_96, EncryptionAlg::DesEde3Cbc)
    }
    fn sock(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn pcscf_side_four_sas() {
        let (ck, ik) = keys();
        let p = plan_sa_set(
            Side::Pcscf,
            &ue(),
            &pcscf(),
            pair(),
            &ck,
            &ik,
            &PlanOptions::default(),
        )
        .unwrap();
        let got: Vec<_> = p
            .sas
            .iter()
            .map(|s| (s.role, s.direction, s.src, s.dst, s.spi))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    SaRole::UeClientToPcscfServer,
                    Direction::In,
                    sock("10.45.0.2:50000"),
                    sock("10.45.0.1:6100"),
                    4097
                ),
                (
                    SaRole::PcscfClientToUeServer,
                    Direction::Out,
                    sock("10.45.0.1:5100"),
                    sock("10.45.0.2:50001"),
                    3_000_000_002
                ),
                (
                    SaRole::PcscfServerToUeClient,
                    Direction::Out,
                    sock("10.45.0.1:6100"),
                    sock("10.45.0.2:50000"),
                    3_000_000_001
                ),
                (
                    SaRole::UeServerToPcscfClient,
                    Direction::In,
                    sock("10.45.0.2:50001"),
                    sock("10.45.0.1:5100"),
                    4096
                ),
            ]
        );
        assert_eq!(p.policies.len(), 4);
        assert!(p.policies.iter().all(|x| x.proto == ipproto::ANY));
        assert_eq!(p.keys.auth.name, "hmac(sha1)");
        assert_eq!(p.keys.enc.bits(), 192);
        assert_eq!(p.reqid, DEFAULT_PCSCF_REQID);
        assert_eq!(p.sa(SaRole::UeServerToPcscfClient).spi, 4096);
    }

    #[test]
    fn ue_side_is_the_mirror() {
        let (ck, ik) = keys();
        let o = PlanOptions::default();
        let p = plan_sa_set(Side::Pcscf, &ue(), &pcscf(), pair(), &ck, &ik, &o).unwrap();
        let u = plan_sa_set(Side::Ue, &ue(), &pcscf(), pair(), &ck, &ik, &o).unwrap();
        for (a, b) in p.sas.iter().zip(u.sas.iter()) {
            assert_eq!((a.src, a.dst, a.spi, a.role), (b.src, b.dst, b.spi, b.role));
            assert_ne!(a.direction, b.direction);
        }
        assert_eq!(p.keys, u.keys);
    }

    #[test]
    fn udp_and_tcp_policies() {
        let (ck, ik) = keys();
        let o = PlanOptions {
            policy_protocols: PolicyProtocols::UdpAndTcp,
            ..PlanOptions::default()
        };
        let p = plan_sa_set(Side::Pcscf, &ue(), &pcscf(), pair(), &ck, &ik, &o).unwrap();
        assert_eq!(p.policies.len(), 8);
        assert_eq!(
            p.policies
                .iter()
                .filter(|x| x.proto == ipproto::TCP)
                .count(),
            4
        );
        assert_eq!(p.id().policies.len(), 8);
        assert_eq!(p.id().sas.len(), 4);
    }

    #[test]
    fn reregistration_shares_policies_with_same_ports() {
        let (ck, ik) = keys();
        let o = PlanOptions::default();
        let old = plan_sa_set(Side::Pcscf, &ue(), &pcscf(), pair(), &ck, &ik, &o).unwrap();
        // New SPIs on both sides and a new UE port-c; port-s unchanged.
        let mut u = ue();
        u.spi_c += 10;
        u.spi_s += 10;
        u.port_c += 2;
        let mut pc = pcscf();
        pc.spi_c += 10;
        pc.spi_s += 10;
        let new = plan_sa_set(Side::Pcscf, &u, &pc, pair(), &ck, &ik, &o).unwrap();
        let retire = old.id().without_shared_policies(&new.id());
        assert_eq!(retire.sas, old.id().sas);
        // SA2 (P port-c -> UE port-s) and SA4 (UE port-s -> P port-c) keep their selectors.
        assert_eq!(retire.policies.len(), 2);
        assert!(retire
            .policies
            .iter()
            .all(|p| p.src.port() == 50000 || p.dst.port() == 50000));
    }

    #[test]
    fn ipv6_plan() {
        let (ck, ik) = keys();
        let mut u = ue();
        let mut pc = pcscf();
        u.addr = "fd00::2".parse().unwrap();
        pc.addr = "fd00::1".parse().unwrap();
        let p = plan_sa_set(
            Side::Pcscf,
            &u,
            &pc,
            pair(),
            &ck,
            &ik,
            &PlanOptions::default(),
        )
        .unwrap();
        assert_eq!(p.sas[0].src, sock("[fd00::2]:50000"));
        assert_eq!(p.sas[0].dst, sock("[fd00::1]:6100"));
    }

    #[test]
    fn invalid_inputs() {
        let (ck, ik) = keys();
        let o = PlanOptions::default();
        let mut u = ue();
        u.addr = "fd00::2".parse().unwrap();
        assert!(matches!(
            plan_sa_set(Side::Pcscf, &u, &pcscf(), pair(), &ck, &ik, &o),
            Err(PlanError::MixedFamilies { .. })
        ));
        let mut u = ue();
        u.spi_s = u.spi_c;
        assert_eq!(
            plan_sa_set(Side::Pcscf, &u, &pcscf(), pair(), &ck, &ik, &o).unwrap_err(),
            PlanError::SpiClash {
                side: Side::Ue,
                spi: 3_000_000_001
            }
        );
        let mut pc = pcscf();
        pc.spi_c = 0;
        assert_eq!(
            plan_sa_set(Side::Pcscf, &ue(), &pc, pair(), &ck, &ik, &o).unwrap_err(),
            PlanError::ZeroSpi {
                side: Side::Pcscf,
                param: "spi-c"
            }
        );
        let mut pc = pcscf();
        pc.port_c = pc.port_s;
        let e = plan_sa_set(Side::Pcscf, &ue(), &pc, pair(), &ck, &ik, &o).unwrap_err();
        assert!(e.to_string().contains("port-c 6100"), "{e}");
    }
}
