//! Why a UE never answered its 401 through the SAs built for it: the most common
//! reason a handset does not register (FIELD-LESSONS item 1: "UE answers the 401 but
//! no ESP or second REGISTER arrives"). When the P-CSCF gives up on a challenge
//! (`[ipsec] unanswered_challenge_s`), the kernel's counters of the set's two inbound
//! SAs (TS 33.203 §7.1: UE port-c → P-CSCF port-s, UE port-s → P-CSCF port-c) tell the
//! cases apart: nothing arrived (the UE rejected the challenge or never started
//! IPsec), ESP arrived but failed its integrity check (RFC 4303 §3.4.4: the UE derived
//! another IK, i.e. K/OPc differ), or ESP arrived intact but no protected REGISTER was
//! accepted. The classification is pure; [`GmSecurity::diagnose_unanswered`] reads the
//! counters.

use std::fmt;

use ims_ipsec::OwnedState;

use super::{GmSecurity, SaSet};

/// What the inbound SAs of an unanswered challenge's set saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnansweredChallenge {
    /// No ESP packet arrived through either inbound SA.
    NoEsp,
    /// ESP arrived and failed the integrity check (the UE's IK differs).
    IntegrityFailed {
        /// Packets dropped for a bad ICV.
        failed: u64,
    },
    /// ESP arrived intact, but no protected REGISTER reached the P-CSCF through it.
    EspWithoutRegister {
        /// Packets that passed the SAs.
        packets: u64,
    },
    /// The counters could not be read (the SAs are gone, or the store failed).
    Unknown(String),
}

impl UnansweredChallenge {
    /// Classifies from the store's state: the SAs arriving at the P-CSCF with the
    /// set's own SPIs (spi-c, spi-s of the `Security-Server`).
    pub fn classify(set: &SaSet, state: &OwnedState) -> Self {
        let inbound: Vec<_> = state
            .sas
            .iter()
            .filter(|s| {
                s.dst == set.pcscf.addr
                    && s.src == set.ue.addr
                    && (s.spi == set.pcscf.spi_c || s.spi == set.pcscf.spi_s)
            })
            .collect();
        if inbound.is_empty() {
            return UnansweredChallenge::Unknown("the set's inbound SAs are not installed".into());
        }
        let failed: u64 = inbound.iter().map(|s| u64::from(s.integrity_failed)).sum();
        let packets: u64 = inbound.iter().map(|s| s.packets).sum();
        if failed > 0 {
            UnansweredChallenge::IntegrityFailed { failed }
        } else if packets > 0 {
            UnansweredChallenge::EspWithoutRegister { packets }
        } else {
            UnansweredChallenge::NoEsp
        }
    }
}

impl fmt::Display for UnansweredChallenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnansweredChallenge::NoEsp => f.write_str(
                "no ESP arrived from the UE: it rejected the challenge (its AUTN check failed: \
                 K/OPc or SQN differ from the HSS; a UE then sends an unprotected REGISTER \
                 with AUTS or an empty response, see the S-CSCF log) or it never started IPsec \
                 (NAT between UE and P-CSCF, a firewall dropping ESP, IMS IPsec off in the handset)",
            ),
            UnansweredChallenge::IntegrityFailed { failed } => write!(
                f,
                "{failed} ESP packets from the UE failed the integrity check: the UE derived \
                 another IK, so its K or OPc differ from the HSS's"
            ),
            UnansweredChallenge::EspWithoutRegister { packets } => write!(
                f,
                "{packets} ESP packets from the UE passed the SAs but no protected REGISTER was \
                 accepted: look for a refused REGISTER from this UE (Security-Verify mismatch, \
                 a request to another port) in this log"
            ),
            UnansweredChallenge::Unknown(why) => write!(f, "SA counters not read: {why}"),
        }
    }
}

impl GmSecurity {
    /// Reads the counters of `set`'s inbound SAs and classifies (before the set is
    /// removed).
    pub async fn diagnose_unanswered(&self, set: &SaSet) -> UnansweredChallenge {
        match self.store.list_owned().await {
            Ok(state) => UnansweredChallenge::classify(set, &state),
            Err(e) => UnansweredChallenge::Unknown(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use ims_ipsec::{AlgPair, InstalledSa, SecEndpoint};

    use super::*;

    const UE: &str = "10.45.0.2";
    const P: &str = "10.45.0.1";

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    fn set() -> SaSet {
        SaSet {
            pair: "hmac-sha-1-96/aes-cbc"
                .parse::<AlgPair>()
                .expect("test pair"),
            ue: SecEndpoint {
                addr: ip(UE),
                spi_c: 1000,
                spi_s: 1001,
                port_c: 20000,
                port_s: 20001,
            },
            pcscf: SecEndpoint {
                addr: ip(P),
                spi_c: 5000,
                spi_s: 5001,
                port_c: 5100,
                port_s: 6100,
            },
            server: Vec::new(),
            client: Vec::new(),
        }
    }

    fn sa(src: &str, dst: &str, spi: u32, packets: u64, failed: u32) -> InstalledSa {
        InstalledSa {
            src: ip(src),
            dst: ip(dst),
            spi,
            sport: 0,
            dport: 0,
            reqid: 1,
            auth: None,
            enc: None,
            packets,
            bytes: packets * 100,
            integrity_failed: failed,
            replay: 0,
        }
    }

    fn state(sas: Vec<InstalledSa>) -> OwnedState {
        OwnedState {
            sas,
            policies: Vec::new(),
        }
    }

    #[test]
    fn nothing_inbound_is_no_esp_even_if_outbound_sas_carried_packets() {
        let s = state(vec![
            sa(UE, P, 5001, 0, 0),
            sa(UE, P, 5000, 0, 0),
            // Outbound SAs (to the UE's SPIs) do not count: the 401 went out unprotected,
            // but a NOTIFY could have left through them.
            sa(P, UE, 1000, 3, 0),
            sa(P, UE, 1001, 2, 0),
        ]);
        assert_eq!(
            UnansweredChallenge::classify(&set(), &s),
            UnansweredChallenge::NoEsp
        );
    }

    #[test]
    fn integrity_failures_name_the_key_mismatch() {
        let s = state(vec![sa(UE, P, 5001, 0, 3), sa(UE, P, 5000, 0, 0)]);
        let c = UnansweredChallenge::classify(&set(), &s);
        assert_eq!(c, UnansweredChallenge::IntegrityFailed { failed: 3 });
        assert!(c.to_string().contains("K or OPc differ"));
    }

    #[test]
    fn intact_esp_without_register_is_told_apart() {
        let s = state(vec![sa(UE, P, 5001, 2, 0), sa(UE, P, 5000, 0, 0)]);
        assert_eq!(
            UnansweredChallenge::classify(&set(), &s),
            UnansweredChallenge::EspWithoutRegister { packets: 2 }
        );
    }

    #[test]
    fn other_ues_and_other_sets_are_ignored() {
        let s = state(vec![
            // Another UE with failures, and another set of this UE with packets.
            sa("10.45.0.3", P, 5001, 0, 9),
            sa(UE, P, 7001, 40, 0),
            sa(UE, P, 5001, 0, 0),
            sa(UE, P, 5000, 0, 0),
        ]);
        assert_eq!(
            UnansweredChallenge::classify(&set(), &s),
            UnansweredChallenge::NoEsp
        );
    }

    #[test]
    fn missing_sas_are_unknown_not_no_esp() {
        let c = UnansweredChallenge::classify(&set(), &state(Vec::new()));
        assert!(matches!(c, UnansweredChallenge::Unknown(_)), "{c:?}");
    }
}
