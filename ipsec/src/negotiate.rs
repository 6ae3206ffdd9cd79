//! Choosing one of the UE's `Security-Client` offers (RFC 3329 §2.3, TS 33.203 §7.2)
//! and checking `Security-Verify` / the repeated `Security-Client` on the protected
//! REGISTER (RFC 3329 §2.3.1 downgrade protection, TS 33.203 §7.4). Sans-I/O: pure
//! functions over parsed headers.
//!
//! The choice follows the P-CSCF's ordered policy of (alg, ealg) pairs, not the UE's
//! order or `q`: the first policy pair that the UE offers (as `ipsec-3gpp`, `esp`,
//! `trans`) and the kernel supports wins. The result records every offer passed
//! over and why, for the per-UE log line (FIELD-LESSONS.md item 5).

use std::fmt;

use crate::alg::{AlgPair, EncryptionAlg, IntegrityAlg};
use crate::header::{HeaderError, IpsecOffer, Mode, Prot, SecMechanism};

/// The P-CSCF's ordered list of acceptable (alg, ealg) pairs, most preferred first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecAgreePolicy {
    /// Most preferred first. Pairs not listed are never chosen.
    pub preference: Vec<AlgPair>,
}

impl Default for SecAgreePolicy {
    /// Encryption before integrity-only, AES before 3DES, SHA-1 before MD5.
    fn default() -> Self {
        use EncryptionAlg::*;
        use IntegrityAlg::*;
        SecAgreePolicy {
            preference: vec![
                AlgPair::new(HmacSha1_96, AesCbc),
                AlgPair::new(HmacMd5_96, AesCbc),
                AlgPair::new(HmacSha1_96, DesEde3Cbc),
                AlgPair::new(HmacMd5_96, DesEde3Cbc),
                AlgPair::new(HmacSha1_96, Null),
                AlgPair::new(HmacMd5_96, Null),
            ],
        }
    }
}

/// The algorithms the kernel can run (from a probe or configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelSupport {
    /// Usable integrity algorithms.
    pub integrity: Vec<IntegrityAlg>,
    /// Usable encryption algorithms.
    pub encryption: Vec<EncryptionAlg>,
}

impl KernelSupport {
    /// Everything (a kernel with all modules of uml/README.md loaded).
    pub fn all() -> Self {
        KernelSupport {
            integrity: IntegrityAlg::ALL.to_vec(),
            encryption: EncryptionAlg::ALL.to_vec(),
        }
    }

    fn lacks(&self, pair: AlgPair) -> Option<&'static str> {
        if !self.integrity.contains(&pair.alg) {
            Some(pair.alg.xfrm_name())
        } else if !self.encryption.contains(&pair.ealg) {
            Some(pair.ealg.xfrm_name())
        } else {
            None
        }
    }
}

/// Why an offer was not chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Passed {
    /// Not `ipsec-3gpp` (the mechanism name is given).
    OtherMechanism(String),
    /// The offer could not be parsed.
    Unparsable(HeaderError),
    /// `prot=ah`: IMS uses ESP only.
    NotEsp,
    /// `mod=` other than `trans`: IMS uses transport mode only.
    NotTransport,
    /// The pair is not in the P-CSCF's policy.
    NotInPolicy(AlgPair),
    /// The kernel cannot run this pair; names the missing XFRM algorithm.
    KernelLacks(AlgPair, &'static str),
    /// Acceptable, but a pair earlier in the policy was also offered.
    LowerPreference(AlgPair),
}

impl fmt::Display for Passed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Passed::OtherMechanism(m) => write!(f, "mechanism {m} is not ipsec-3gpp"),
            Passed::Unparsable(e) => write!(f, "unparsable: {e}"),
            Passed::NotEsp => f.write_str("prot is not esp"),
            Passed::NotTransport => f.write_str("mod is not trans"),
            Passed::NotInPolicy(p) => write!(f, "{p} not in policy"),
            Passed::KernelLacks(p, a) => write!(f, "{p}: kernel lacks {a}"),
            Passed::LowerPreference(p) => write!(f, "{p} ranks lower in policy"),
        }
    }
}

/// The outcome of [`choose_offer`]: the offer and why it won.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// The chosen offer (the UE's SPIs and ports).
    pub offer: IpsecOffer,
    /// 1-based position of the offer in the UE's header.
    pub offer_index: usize,
    /// 1-based rank of its pair in the policy.
    pub policy_rank: usize,
    /// Every other offer with the reason it was passed over (1-based index, reason).
    pub passed: Vec<(usize, Passed)>,
}

impl fmt::Display for Choice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "chose offer {} ({}), policy rank {}",
            self.offer_index,
            self.offer.pair(),
            self.policy_rank
        )?;
        for (i, why) in &self.passed {
            write!(f, "; offer {i}: {why}")?;
        }
        Ok(())
    }
}

/// No offer could be used; lists each offer's reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no acceptable Security-Client offer: {}", describe(.passed))]
pub struct NoAcceptableOffer {
    /// (1-based index, reason) for every offer; empty when there was none.
    pub passed: Vec<(usize, Passed)>,
}

fn describe(passed: &[(usize, Passed)]) -> String {
    if passed.is_empty() {
        return "no offers".into();
    }
    passed
        .iter()
        .map(|(i, p)| format!("offer {i}: {p}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Chooses the offer to answer with `Security-Server` (see the module docs).
/// `offers` is the per-offer parse of `Security-Client` ([`crate::header::parse_offers`]);
/// already-parsed lists can be passed as `iter().cloned().map(Ok)`.
pub fn choose_offer(
    offers: &[Result<SecMechanism, HeaderError>],
    policy: &SecAgreePolicy,
    kernel: &KernelSupport,
) -> Result<Choice, NoAcceptableOffer> {
    let mut passed = Vec::new();
    let mut best: Option<(usize, usize, &IpsecOffer)> = None; // (rank, index, offer)
    for (i, o) in offers.iter().enumerate() {
        let idx = i + 1;
        let offer = match o {
            Err(e) => {
                passed.push((idx, Passed::Unparsable(e.clone())));
                continue;
            }
            Ok(SecMechanism::Other(m)) => {
                passed.push((idx, Passed::OtherMechanism(m.name.clone())));
                continue;
            }
            Ok(SecMechanism::Ipsec3gpp(o)) => o,
        };
        if offer.prot != Prot::Esp {
            passed.push((idx, Passed::NotEsp));
            continue;
        }
        if offer.mode != Mode::Trans {
            passed.push((idx, Passed::NotTransport));
            continue;
        }
        let pair = offer.pair();
        let Some(rank) = policy.preference.iter().position(|p| *p == pair) else {
            passed.push((idx, Passed::NotInPolicy(pair)));
            continue;
        };
        if let Some(missing) = kernel.lacks(pair) {
            passed.push((idx, Passed::KernelLacks(pair, missing)));
            continue;
        }
        match best {
            Some((r, _, _)) if r <= rank => passed.push((idx, Passed::LowerPreference(pair))),
            _ => {
                if let Some((_, bi, bo)) = best.replace((rank, idx, offer)) {
                    passed.push((bi, Passed::LowerPreference(bo.pair())));
                }
            }
        }
    }
    passed.sort_by_key(|(i, _)| *i);
    match best {
        Some((rank, idx, offer)) => Ok(Choice {
            offer: offer.clone(),
            offer_index: idx,
            policy_rank: rank + 1,
            passed,
        }),
        None => Err(NoAcceptableOffer { passed }),
    }
}

/// Why a protected REGISTER's security headers were refused (TS 33.203 §7.4).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// `Security-Verify` is not what the P-CSCF sent in `Security-Server`.
    #[error("Security-Verify does not match the Security-Server sent: {0}")]
    VerifyMismatch(String),
    /// The repeated `Security-Client` differs from the one of the unprotected REGISTER.
    #[error("Security-Client changed between the unprotected and the protected REGISTER: {0}")]
    ClientChanged(String),
}

/// RFC 3329 §2.3.1: the `Security-Verify` list must equal the `Security-Server` list
/// sent (same mechanisms, same parameters, same order). Spelling differences
/// (parameter order, spaces, defaults written out or not) do not matter, and a `q`
/// left out of the echo is accepted (it carries no security); a different `q`,
/// algorithm, SPI or port is a mismatch.
pub fn check_security_verify(
    sent_server: &[SecMechanism],
    received_verify: &[SecMechanism],
) -> Result<(), VerifyError> {
    let echoed: Vec<SecMechanism> = received_verify
        .iter()
        .zip(sent_server)
        .map(|(r, s)| match (r, s) {
            (SecMechanism::Ipsec3gpp(r), SecMechanism::Ipsec3gpp(s)) if r.q.is_none() => {
                let mut r = r.clone();
                r.q = s.q;
                SecMechanism::Ipsec3gpp(r)
            }
            _ => r.clone(),
        })
        .chain(received_verify.iter().skip(sent_server.len()).cloned())
        .collect();
    compare(sent_server, &echoed).map_err(VerifyError::VerifyMismatch)
}

/// TS 33.203 §7.4: the `Security-Client` of the protected REGISTER must be the one of
/// the first REGISTER.
pub fn check_security_client_unchanged(
    first: &[SecMechanism],
    protected: &[SecMechanism],
) -> Result<(), VerifyError> {
    compare(first, protected).map_err(VerifyError::ClientChanged)
}

fn compare(a: &[SecMechanism], b: &[SecMechanism]) -> Result<(), String> {
    if a.len() != b.len() {
        return Err(format!("{} offers expected, {} received", a.len(), b.len()));
    }
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        if x != y {
            return Err(format!("offer {}: expected `{x}`, received `{y}`", i + 1));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::{parse_offers, parse_security_header};
    use EncryptionAlg::*;
    use IntegrityAlg::*;

    fn offers(v: &str) -> Vec<Result<SecMechanism, HeaderError>> {
        parse_offers(v).unwrap()
    }

    const SIX: &str =
        "ipsec-3gpp; alg=hmac-md5-96; ealg=des-ede3-cbc; spi-c=1; spi-s=2; port-c=3; port-s=4, \
        ipsec-3gpp; alg=hmac-md5-96; ealg=aes-cbc; spi-c=1; spi-s=2; port-c=3; port-s=4, \
        ipsec-3gpp; alg=hmac-md5-96; ealg=null; spi-c=1; spi-s=2; port-c=3; port-s=4, \
        ipsec-3gpp; alg=hmac-sha-1-96; ealg=des-ede3-cbc; spi-c=1; spi-s=2; port-c=3; port-s=4, \
        ipsec-3gpp; alg=hmac-sha-1-96; ealg=aes-cbc; spi-c=1; spi-s=2; port-c=3; port-s=4, \
        ipsec-3gpp; alg=hmac-sha-1-96; ealg=null; spi-c=1; spi-s=2; port-c=3; port-s=4";

    #[test]
    fn policy_order_wins_over_ue_order() {
        let c = choose_offer(
            &offers(SIX),
            &SecAgreePolicy::default(),
            &KernelSupport::all(),
        )
        .unwrap();
        assert_eq!(c.offer.pair(), AlgPair::new(HmacSha1_96, AesCbc));
        assert_eq!(c.offer_index, 5);
        assert_eq!(c.policy_rank, 1);
        assert_eq!(c.passed.len(), 5);
        assert!(c
            .to_string()
            .starts_with("chose offer 5 (hmac-sha-1-96/aes-cbc), policy rank 1"));
    }

    #[test]
    fn kernel_support_is_respected_and_reported() {
        let kernel = KernelSupport {
            integrity: vec![HmacMd5_96, HmacSha1_96],
            encryption: vec![Null, DesEde3Cbc],
        };
        let c = choose_offer(&offers(SIX), &SecAgreePolicy::default(), &kernel).unwrap();
        assert_eq!(c.offer.pair(), AlgPair::new(HmacSha1_96, DesEde3Cbc));
        assert_eq!(c.policy_rank, 3);
        assert!(c.passed.contains(&(
            2,
            Passed::KernelLacks(AlgPair::new(HmacMd5_96, AesCbc), "cbc(aes)")
        )));
    }

    #[test]
    fn pairs_outside_policy_are_never_chosen() {
        let policy = SecAgreePolicy {
            preference: vec![AlgPair::new(HmacSha1_96, AesCbc)],
        };
        let samsung = "ipsec-3gpp;alg=hmac-md5-96;spi-c=1;spi-s=2;port-c=3;port-s=4, ipsec-3gpp;alg=hmac-sha-1-96;spi-c=1;spi-s=2;port-c=3;port-s=4";
        let e = choose_offer(&offers(samsung), &policy, &KernelSupport::all()).unwrap_err();
        assert_eq!(e.passed.len(), 2);
        assert!(
            e.to_string().contains("hmac-md5-96/null not in policy"),
            "{e}"
        );
    }

    #[test]
    fn non_ipsec_unparsable_ah_and_tunnel_offers_are_skipped_with_reasons() {
        let v = "digest;d-alg=md5, ipsec-3gpp;alg=bogus;spi-c=1;spi-s=2;port-c=3;port-s=4, \
                 ipsec-3gpp;prot=ah;alg=hmac-sha-1-96;spi-c=1;spi-s=2;port-c=3;port-s=4, \
                 ipsec-3gpp;mod=tun;alg=hmac-sha-1-96;spi-c=1;spi-s=2;port-c=3;port-s=4, \
                 ipsec-3gpp;alg=hmac-md5-96;spi-c=1;spi-s=2;port-c=3;port-s=4";
        let c = choose_offer(
            &offers(v),
            &SecAgreePolicy::default(),
            &KernelSupport::all(),
        )
        .unwrap();
        assert_eq!(c.offer_index, 5);
        let reasons: Vec<_> = c.passed.iter().map(|(_, p)| p.clone()).collect();
        assert!(matches!(reasons[0], Passed::OtherMechanism(_)));
        assert!(matches!(reasons[1], Passed::Unparsable(_)));
        assert_eq!(reasons[2], Passed::NotEsp);
        assert_eq!(reasons[3], Passed::NotTransport);
    }

    #[test]
    fn equal_rank_keeps_first_offer() {
        let v = "ipsec-3gpp;alg=hmac-md5-96;spi-c=10;spi-s=11;port-c=3;port-s=4, ipsec-3gpp;alg=hmac-md5-96;spi-c=20;spi-s=21;port-c=3;port-s=4";
        let c = choose_offer(
            &offers(v),
            &SecAgreePolicy::default(),
            &KernelSupport::all(),
        )
        .unwrap();
        assert_eq!(c.offer.spi_c, 10);
    }

    #[test]
    fn empty_offer_list() {
        let e = choose_offer(&[], &SecAgreePolicy::default(), &KernelSupport::all()).unwrap_err();
        assert!(e.to_string().contains("no offers"));
    }

    #[test]
    fn verify_accepts_respelling_and_rejects_downgrade() {
        let sent = parse_security_header("ipsec-3gpp;q=0.1;prot=esp;mod=trans;spi-c=4096;spi-s=4097;port-c=5100;port-s=6100;alg=hmac-sha-1-96;ealg=aes-cbc").unwrap();
        let echo = parse_security_header("ipsec-3gpp; alg=hmac-sha-1-96; ealg=aes-cbc; spi-c=4096; spi-s=4097; port-c=5100; port-s=6100; q=0.100").unwrap();
        check_security_verify(&sent, &echo).unwrap();
        let downgraded = parse_security_header("ipsec-3gpp;q=0.1;spi-c=4096;spi-s=4097;port-c=5100;port-s=6100;alg=hmac-sha-1-96;ealg=null").unwrap();
        let e = check_security_verify(&sent, &downgraded).unwrap_err();
        assert!(e.to_string().contains("ealg=null"), "{e}");
        let no_q = parse_security_header("ipsec-3gpp;alg=hmac-sha-1-96;ealg=aes-cbc;spi-c=4096;spi-s=4097;port-c=5100;port-s=6100").unwrap();
        check_security_verify(&sent, &no_q).unwrap();
        let other_q = parse_security_header("ipsec-3gpp;q=0.5;alg=hmac-sha-1-96;ealg=aes-cbc;spi-c=4096;spi-s=4097;port-c=5100;port-s=6100").unwrap();
        assert!(check_security_verify(&sent, &other_q).is_err());
        let other_spi = parse_security_header("ipsec-3gpp;q=0.1;alg=hmac-sha-1-96;ealg=aes-cbc;spi-c=4096;spi-s=4098;port-c=5100;port-s=6100").unwrap();
        assert!(check_security_verify(&sent, &other_spi).is_err());
        let two = [echo[0].clone(), echo[0].clone()];
        assert!(check_security_verify(&sent, &two).is_err());
        let e = check_security_verify(&sent, &[]).unwrap_err();
        assert!(matches!(e, VerifyError::VerifyMismatch(_)));
    }

    #[test]
    fn client_must_be_unchanged() {
        let first = parse_security_header(SIX).unwrap();
        check_security_client_unchanged(&first, &first.clone()).unwrap();
        let fewer = first[..5].to_vec();
        assert!(matches!(
            check_security_client_unchanged(&first, &fewer),
            Err(VerifyError::ClientChanged(_))
        ));
    }
}
