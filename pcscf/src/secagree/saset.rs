//! One UE's SA set at the P-CSCF (TS 33.203 §7.1): the negotiated (alg, ealg) pair,
//! both sides' SPIs and protected ports, the `Security-Server` sent for it and the
//! `Security-Client` it answers; its kernel identifiers (SAs and policies, without
//! keys) and its persisted form in the registration store, from which a restarted
//! P-CSCF adopts the set (keys are never stored).

use std::fmt;
use std::str::FromStr;

use ims_ipsec::{
    plan_sa_set, AlgPair, Ck, Ik, Lease, PlanOptions, SaSetId, SecEndpoint, SecMechanism, Side,
};

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

    pub(super) fn lease(&self) -> Lease {
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

#[cfg(test)]
mod tests {
    use super::super::test_support::{keys, sec, SAMSUNG};
    use super::super::{GmSecurity, Initial};
    use super::*;

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
}
