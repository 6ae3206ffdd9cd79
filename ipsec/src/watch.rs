//! Watching the P-CSCF's inbound SAs for ESP that fails its integrity check.
//!
//! A handset that answered the 401 but whose protected REGISTER never reaches the P-CSCF
//! is the most common failure of IMS labs (FIELD-LESSONS.md item 1). When its ESP does
//! arrive but fails the ICV check (RFC 4303 §3.4.4.1), the UE and the P-CSCF hold
//! different keys: the CK/IK the UE computed from its SIM differ from the vector the HSS
//! produced, or the two sides derive the ESP keys differently for the chosen pair
//! (TS 33.203 Annex I; Kamailio's broken 3DES key is one such case). The kernel counts
//! those drops per SA (`struct xfrm_stats.integrity_failed`; in all, `XfrmInStateProtoError`
//! in `/proc/net/xfrm_stat`), and nothing reaches SIP.
//!
//! [`IntegrityWatch`] is sans-I/O: feed it successive [`OwnedState`] snapshots (from
//! [`crate::SaStore::list_owned`]) and it returns one [`IntegrityAlarm`] per inbound SA
//! whose counter grew since the previous snapshot, so the P-CSCF can log, per UE,
//! "ESP fails integrity: probable K/OPc mismatch" instead of silence.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;

use crate::store::OwnedState;

/// An inbound SA whose integrity-failure counter grew.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrityAlarm {
    /// The UE's address (the SA's source).
    pub ue: IpAddr,
    /// The SA's SPI (one the P-CSCF allocated).
    pub spi: u32,
    /// The UE's port the SA selects (its protected client or server port; 0 = any).
    pub ue_port: u16,
    /// The P-CSCF's port the SA selects (its protected server or client port).
    pub pcscf_port: u16,
    /// Drops since the previous snapshot.
    pub new_failures: u32,
    /// Drops since the SA was installed.
    pub total_failures: u32,
    /// Packets the SA accepted so far (0 means nothing from the UE ever verified).
    pub packets_ok: u64,
}

impl IntegrityAlarm {
    /// The operator's reading of the alarm.
    pub fn probable_cause(&self) -> &'static str {
        if self.packets_ok == 0 {
            "no ESP packet from this UE has verified, so its keys differ from the P-CSCF's: \
             check the SIM's K/OPc against the HSS entry, then the algorithm pair (restrict \
             [ipsec] algorithms to test one)"
        } else {
            "ESP packets failed the integrity check after others verified: corrupted or \
             spoofed packets, or a UE that changed keys without re-registering"
        }
    }
}

impl fmt::Display for IntegrityAlarm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ESP packet(s) from {}:{} to port {} (SPI {:#010x}) failed the integrity check \
             ({} in all, {} verified): {}",
            self.new_failures,
            self.ue,
            self.ue_port,
            self.pcscf_port,
            self.spi,
            self.total_failures,
            self.packets_ok,
            self.probable_cause()
        )
    }
}

/// Remembers each inbound SA's integrity-failure counter between snapshots.
#[derive(Debug, Default)]
pub struct IntegrityWatch {
    seen: HashMap<(IpAddr, u32), u32>,
}

impl IntegrityWatch {
    /// A watch with nothing seen yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Compares `state` with the previous snapshot. `local` tells inbound SAs (those
    /// arriving at one of the P-CSCF's addresses) from outbound ones. SAs that are gone
    /// are forgotten, so a new SA with a reused SPI starts from its own counter.
    pub fn observe(
        &mut self,
        state: &OwnedState,
        local: impl Fn(IpAddr) -> bool,
    ) -> Vec<IntegrityAlarm> {
        let mut alarms = Vec::new();
        let mut next = HashMap::with_capacity(self.seen.len());
        for sa in state.sas.iter().filter(|sa| local(sa.dst)) {
            let key = (sa.dst, sa.spi);
            let before = self.seen.get(&key).copied().unwrap_or(0);
            if sa.integrity_failed > before {
                alarms.push(IntegrityAlarm {
                    ue: sa.src,
                    spi: sa.spi,
                    ue_port: sa.sport,
                    pcscf_port: sa.dport,
                    new_failures: sa.integrity_failed - before,
                    total_failures: sa.integrity_failed,
                    packets_ok: sa.packets,
                });
            }
            next.insert(key, sa.integrity_failed);
        }
        self.seen = next;
        alarms
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::InstalledSa;

    const P: &str = "10.45.0.1";
    const UE: &str = "10.45.0.2";

    fn sa(src: &str, dst: &str, spi: u32, failed: u32, packets: u64) -> InstalledSa {
        InstalledSa {
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            spi,
            sport: 40000,
            dport: 6100,
            reqid: 7,
            auth: Some("hmac(sha1)".into()),
            enc: Some("cbc(aes)".into()),
            packets,
            bytes: packets * 100,
            integrity_failed: failed,
            replay: 0,
        }
    }

    fn state(sas: Vec<InstalledSa>) -> OwnedState {
        OwnedState {
            sas,
            policies: vec![],
        }
    }

    fn is_p(ip: IpAddr) -> bool {
        ip == P.parse::<IpAddr>().unwrap()
    }

    #[test]
    fn growing_counter_on_an_inbound_sa_raises_one_alarm() {
        let mut w = IntegrityWatch::new();
        assert!(w
            .observe(&state(vec![sa(UE, P, 100, 0, 0)]), is_p)
            .is_empty());
        let alarms = w.observe(&state(vec![sa(UE, P, 100, 3, 0)]), is_p);
        assert_eq!(alarms.len(), 1);
        let a = &alarms[0];
        assert_eq!((a.new_failures, a.total_failures, a.spi), (3, 3, 100));
        assert!(a.to_string().contains("K/OPc"), "{a}");
        // Unchanged counter: silent.
        assert!(w
            .observe(&state(vec![sa(UE, P, 100, 3, 0)]), is_p)
            .is_empty());
        // Grows again: only the increment.
        let alarms = w.observe(&state(vec![sa(UE, P, 100, 5, 0)]), is_p);
        assert_eq!(alarms[0].new_failures, 2);
    }

    #[test]
    fn first_sight_with_failures_counts_them_all() {
        let mut w = IntegrityWatch::new();
        let alarms = w.observe(&state(vec![sa(UE, P, 100, 2, 0)]), is_p);
        assert_eq!(alarms[0].new_failures, 2);
    }

    #[test]
    fn outbound_sas_are_not_watched() {
        let mut w = IntegrityWatch::new();
        assert!(w
            .observe(&state(vec![sa(P, UE, 0xb2d0_5e01, 9, 0)]), is_p)
            .is_empty());
    }

    #[test]
    fn verified_traffic_changes_the_probable_cause() {
        let mut w = IntegrityWatch::new();
        let alarms = w.observe(&state(vec![sa(UE, P, 100, 1, 40)]), is_p);
        assert!(!alarms[0].probable_cause().contains("K/OPc"));
    }

    #[test]
    fn removed_sa_is_forgotten_and_a_reused_spi_starts_afresh() {
        let mut w = IntegrityWatch::new();
        w.observe(&state(vec![sa(UE, P, 100, 4, 0)]), is_p);
        assert!(w.observe(&state(vec![]), is_p).is_empty());
        let alarms = w.observe(&state(vec![sa(UE, P, 100, 1, 0)]), is_p);
        assert_eq!(alarms[0].new_failures, 1);
    }
}
