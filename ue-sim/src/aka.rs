//! The USIM side of UMTS AKA (3GPP TS 33.102 §6.3.3, Milenage TS 35.206) as IMS-AKA
//! uses it (TS 33.203 §6.1): verify AUTN (MAC-A, SQN freshness), produce RES/CK/IK, or
//! AUTS on a synchronisation failure.
//!
//! Wraps the `milenage` crate: keys live in zeroizing buffers, `Debug` never prints
//! them, and a fresh `Milenage` is made per challenge and dropped at once.

use std::fmt;

use ims_ipsec::{Ck, Ik};
use milenage::Milenage;
use zeroize::{Zeroize, Zeroizing};

/// K and OPc of one subscriber (128 bits each). OP is turned into OPc at once.
#[derive(Clone)]
pub struct SimKeys {
    k: Zeroizing<[u8; 16]>,
    opc: Zeroizing<[u8; 16]>,
}

impl fmt::Debug for SimKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SimKeys { k: <redacted>, opc: <redacted> }")
    }
}

/// A key that is not 32 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{which} must be 32 hex digits (128 bits)")]
pub struct KeyError {
    /// `K`, `OP` or `OPc`.
    pub which: &'static str,
}

fn hex16(which: &'static str, s: &str) -> Result<Zeroizing<[u8; 16]>, KeyError> {
    let mut b = Zeroizing::new([0u8; 16]);
    hex::decode_to_slice(s.trim(), &mut *b).map_err(|_| KeyError { which })?;
    Ok(b)
}

impl SimKeys {
    /// From K and OP (TS 35.206: OPc = AES_K(OP) ⊕ OP).
    pub fn from_op(k: [u8; 16], op: [u8; 16]) -> Self {
        let m = Milenage::new_with_op(k, op);
        SimKeys {
            k: Zeroizing::new(k),
            opc: Zeroizing::new(*m.opc()),
        }
    }

    /// From K and OPc.
    pub fn from_opc(k: [u8; 16], opc: [u8; 16]) -> Self {
        SimKeys {
            k: Zeroizing::new(k),
            opc: Zeroizing::new(opc),
        }
    }

    /// From hex K and hex OP.
    pub fn from_hex_op(k: &str, op: &str) -> Result<Self, KeyError> {
        Ok(Self::from_op(*hex16("K", k)?, *hex16("OP", op)?))
    }

    /// From hex K and hex OPc.
    pub fn from_hex_opc(k: &str, opc: &str) -> Result<Self, KeyError> {
        Ok(Self::from_opc(*hex16("K", k)?, *hex16("OPc", opc)?))
    }

    fn milenage(&self) -> Milenage {
        Milenage::new_with_opc(*self.k, *self.opc)
    }

    /// OPc (for tests of the OP → OPc step).
    pub fn opc(&self) -> &[u8; 16] {
        &self.opc
    }
}

/// RAND and AUTN from an AKAv1-MD5 nonce (RFC 3310 §3.2: base64(RAND ‖ AUTN ‖ server data)).
#[derive(Clone, PartialEq, Eq)]
pub struct Challenge {
    /// RAND (16 bytes).
    pub rand: [u8; 16],
    /// AUTN = (SQN ⊕ AK) ‖ AMF ‖ MAC-A (16 bytes).
    pub autn: [u8; 16],
}

impl fmt::Debug for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Challenge {{ rand: {}, autn: {} }}",
            hex::encode(self.rand),
            hex::encode(self.autn)
        )
    }
}

/// Why a nonce is not an AKA challenge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NonceError {
    /// Not base64.
    #[error("nonce is not base64")]
    NotBase64,
    /// Fewer than 32 bytes.
    #[error("nonce has {0} bytes, an AKA nonce needs at least 32 (RAND ‖ AUTN)")]
    TooShort(usize),
}

impl Challenge {
    /// Decodes `nonce` (the value inside the quotes).
    pub fn from_nonce(nonce: &str) -> Result<Self, NonceError> {
        use base64::Engine;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(nonce.trim())
            .map_err(|_| NonceError::NotBase64)?;
        if raw.len() < 32 {
            return Err(NonceError::TooShort(raw.len()));
        }
        let mut rand = [0u8; 16];
        let mut autn = [0u8; 16];
        rand.copy_from_slice(&raw[..16]);
        autn.copy_from_slice(&raw[16..32]);
        Ok(Challenge { rand, autn })
    }

    /// The nonce for this challenge (for building test challenges).
    pub fn to_nonce(&self) -> String {
        use base64::Engine;
        let mut raw = Vec::with_capacity(32);
        raw.extend_from_slice(&self.rand);
        raw.extend_from_slice(&self.autn);
        base64::engine::general_purpose::STANDARD.encode(raw)
    }
}

/// RES, CK, IK of a successful AKA run (all secret; `Debug` redacts).
pub struct AkaSuccess {
    /// RES (8 bytes with Milenage), the digest password of RFC 3310 §3.3.
    pub res: Zeroizing<Vec<u8>>,
    /// CK.
    pub ck: Ck,
    /// IK.
    pub ik: Ik,
    /// The SQN the network used.
    pub sqn: u64,
}

impl fmt::Debug for AkaSuccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "AkaSuccess {{ res: <redacted>, ck: {:?}, ik: {:?}, sqn: {} }}",
            self.ck, self.ik, self.sqn
        )
    }
}

/// What the USIM concludes from a challenge (TS 33.102 §6.3.3).
#[derive(Debug)]
pub enum AkaOutcome {
    /// AUTN verified and SQN fresh.
    Success(AkaSuccess),
    /// MAC-A verified but SQN not fresh: AUTS = (SQN_MS ⊕ AK*) ‖ MAC-S (14 bytes).
    SyncFailure {
        /// AUTS.
        auts: [u8; 14],
        /// The SQN in the challenge, refused.
        sqn: u64,
    },
    /// MAC-A did not verify: the network does not know this K/OPc.
    MacFailure,
}

/// The USIM: keys and the highest SQN accepted so far (SQN_MS).
///
/// Freshness here is the simple rule of TS 33.102 Annex C.1 without the IND array:
/// a SQN is fresh when it is greater than SQN_MS and not more than `max_delta` ahead
/// (0 = no upper limit).
#[derive(Debug, Clone)]
pub struct Usim {
    keys: SimKeys,
    /// Highest accepted SQN (48 bits).
    pub sqn_ms: u64,
    /// Largest accepted jump of SQN (0: unlimited).
    pub max_delta: u64,
}

const SQN_MASK: u64 = (1 << 48) - 1;

fn sqn_bytes(sqn: u64) -> [u8; 6] {
    let b = (sqn & SQN_MASK).to_be_bytes();
    [b[2], b[3], b[4], b[5], b[6], b[7]]
}

fn sqn_value(b: &[u8; 6]) -> u64 {
    u64::from_be_bytes([0, 0, b[0], b[1], b[2], b[3], b[4], b[5]])
}

impl Usim {
    /// A USIM that has accepted nothing yet (SQN_MS = 0).
    pub fn new(keys: SimKeys) -> Self {
        Usim {
            keys,
            sqn_ms: 0,
            max_delta: 0,
        }
    }

    /// Runs AKA on a challenge (TS 33.102 §6.3.3): computes AK, recovers SQN, checks
    /// MAC-A, then SQN freshness; on success remembers SQN.
    pub fn authenticate(&mut self, ch: &Challenge) -> AkaOutcome {
        let mut m = self.keys.milenage();
        let (res, ck, ik, ak) = m.f2345(&ch.rand);
        let mut sqn = [0u8; 6];
        for (i, s) in sqn.iter_mut().enumerate() {
            *s = ch.autn[i] ^ ak[i];
        }
        let amf = [ch.autn[6], ch.autn[7]];
        let mut xmac = m.f1(&ch.rand, &sqn, &amf);
        let mac_ok = xmac[..] == ch.autn[8..16];
        xmac.zeroize();
        if !mac_ok {
            return AkaOutcome::MacFailure;
        }
        let sqn_v = sqn_value(&sqn);
        let fresh =
            sqn_v > self.sqn_ms && (self.max_delta == 0 || sqn_v - self.sqn_ms <= self.max_delta);
        if !fresh {
            // AUTS = (SQN_MS ⊕ AK*) ‖ MAC-S, MAC-S = f1*(SQN_MS, RAND, AMF = 0x0000)
            // (TS 33.102 §6.3.3, dummy AMF in re-synchronisation).
            let ak_star = m.f5star(&ch.rand);
            let ms = sqn_bytes(self.sqn_ms);
            let mac_s = m.f1star(&ch.rand, &ms, &[0, 0]);
            let mut auts = [0u8; 14];
            for i in 0..6 {
                auts[i] = ms[i] ^ ak_star[i];
            }
            auts[6..].copy_from_slice(&mac_s);
            return AkaOutcome::SyncFailure { auts, sqn: sqn_v };
        }
        self.sqn_ms = sqn_v;
        AkaOutcome::Success(AkaSuccess {
            res: Zeroizing::new(res.to_vec()),
            ck: Ck::new(ck),
            ik: Ik::new(ik),
            sqn: sqn_v,
        })
    }

    /// Builds a challenge as the HSS would (for tests and for `ue-sim --self-test`):
    /// AUTN = (SQN ⊕ AK) ‖ AMF ‖ f1(SQN, RAND, AMF).
    pub fn make_challenge(&self, rand: [u8; 16], sqn: u64, amf: [u8; 2]) -> Challenge {
        let mut m = self.keys.milenage();
        let (_, _, _, ak) = m.f2345(&rand);
        let s = sqn_bytes(sqn);
        let mac = m.f1(&rand, &s, &amf);
        let mut autn = [0u8; 16];
        for i in 0..6 {
            autn[i] = s[i] ^ ak[i];
        }
        autn[6..8].copy_from_slice(&amf);
        autn[8..].copy_from_slice(&mac);
        Challenge { rand, autn }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// TS 35.208 test set 1 from `testdata/` (see its README for provenance).
    fn set1() -> HashMap<String, Vec<u8>> {
        let text = include_str!("../testdata/milenage-ts35208-set1.txt");
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| {
                let mut it = l.split_whitespace();
                let k = it.next().unwrap().to_string();
                (k, hex::decode(it.next().unwrap()).unwrap())
            })
            .collect()
    }

    fn arr<const N: usize>(v: &[u8]) -> [u8; N] {
        v.try_into().unwrap()
    }

    fn set1_usim() -> (Usim, HashMap<String, Vec<u8>>) {
        let v = set1();
        let keys = SimKeys::from_op(arr(&v["K"]), arr(&v["OP"]));
        (Usim::new(keys), v)
    }

    #[test]
    fn op_to_opc_matches_set1() {
        let (u, v) = set1_usim();
        assert_eq!(u.keys.opc()[..], v["OPc"][..]);
    }

    /// The network's AUTN for set 1, built from the published values only (not with
    /// our code): (SQN ⊕ f5) ‖ AMF ‖ f1.
    fn set1_challenge(v: &HashMap<String, Vec<u8>>) -> Challenge {
        let mut autn = [0u8; 16];
        for i in 0..6 {
            autn[i] = v["SQN"][i] ^ v["f5"][i];
        }
        autn[6..8].copy_from_slice(&v["AMF"]);
        autn[8..].copy_from_slice(&v["f1"]);
        Challenge {
            rand: arr(&v["RAND"]),
            autn,
        }
    }

    #[test]
    fn set1_challenge_gives_res_ck_ik() {
        let (mut u, v) = set1_usim();
        let ch = set1_challenge(&v);
        match u.authenticate(&ch) {
            AkaOutcome::Success(s) => {
                assert_eq!(&s.res[..], &v["f2"][..]);
                assert_eq!(&s.ck.as_bytes()[..], &v["f3"][..]);
                assert_eq!(&s.ik.as_bytes()[..], &v["f4"][..]);
                assert_eq!(s.sqn, 0xff9b_b4d0_b607);
            }
            other => panic!("expected success, got {other:?}"),
        }
        assert_eq!(u.sqn_ms, 0xff9b_b4d0_b607);
        // our own challenge builder agrees with the published AUTN
        assert_eq!(
            u.make_challenge(arr(&v["RAND"]), 0xff9b_b4d0_b607, [0xb9, 0xb9]),
            ch
        );
    }

    #[test]
    fn opc_form_gives_the_same_result() {
        let v = set1();
        let mut u = Usim::new(SimKeys::from_opc(arr(&v["K"]), arr(&v["OPc"])));
        assert!(matches!(
            u.authenticate(&set1_challenge(&v)),
            AkaOutcome::Success(_)
        ));
    }

    #[test]
    fn wrong_k_is_a_mac_failure() {
        let v = set1();
        let mut k: [u8; 16] = arr(&v["K"]);
        k[0] ^= 1;
        let mut u = Usim::new(SimKeys::from_op(k, arr(&v["OP"])));
        assert!(matches!(
            u.authenticate(&set1_challenge(&v)),
            AkaOutcome::MacFailure
        ));
        assert_eq!(u.sqn_ms, 0, "a failed challenge must not move SQN_MS");
    }

    #[test]
    fn tampered_amf_is_a_mac_failure() {
        let (mut u, v) = set1_usim();
        let mut ch = set1_challenge(&v);
        ch.autn[6] ^= 0x80;
        assert!(matches!(u.authenticate(&ch), AkaOutcome::MacFailure));
    }

    #[test]
    fn replayed_sqn_gives_auts_that_the_network_can_verify() {
        let (mut u, v) = set1_usim();
        let ch = set1_challenge(&v);
        assert!(matches!(u.authenticate(&ch), AkaOutcome::Success(_)));
        // the same challenge again: SQN is not fresh any more
        let AkaOutcome::SyncFailure { auts, sqn } = u.authenticate(&ch) else {
            panic!("expected a synchronisation failure");
        };
        assert_eq!(sqn, 0xff9b_b4d0_b607);
        // Network side, from the published f5* and f1* definitions: SQN_MS = AUTS[0..6] ⊕ f5*.
        let mut sqn_ms = [0u8; 6];
        for i in 0..6 {
            sqn_ms[i] = auts[i] ^ v["f5*"][i];
        }
        assert_eq!(sqn_value(&sqn_ms), 0xff9b_b4d0_b607);
        // MAC-S with the dummy AMF 0000 over SQN_MS, checked with milenage directly.
        let mut m = Milenage::new_with_op(arr(&v["K"]), arr(&v["OP"]));
        assert_eq!(m.f1star(&arr(&v["RAND"]), &sqn_ms, &[0, 0])[..], auts[6..]);
    }

    #[test]
    fn set1_f1star_matches_published_mac_s() {
        // With the set's own SQN and AMF, f1* is the published value (sanity of the crate).
        let v = set1();
        let mut m = Milenage::new_with_op(arr(&v["K"]), arr(&v["OP"]));
        assert_eq!(
            m.f1star(&arr(&v["RAND"]), &arr(&v["SQN"]), &arr(&v["AMF"]))[..],
            v["f1*"][..]
        );
        assert_eq!(m.f5star(&arr(&v["RAND"]))[..], v["f5*"][..]);
    }

    #[test]
    fn sqn_window_limits_jumps() {
        let (mut u, v) = set1_usim();
        u.sqn_ms = 10;
        u.max_delta = 100;
        let ch = u.make_challenge(arr(&v["RAND"]), 500, [0x80, 0]);
        assert!(matches!(
            u.authenticate(&ch),
            AkaOutcome::SyncFailure { .. }
        ));
        let ch = u.make_challenge(arr(&v["RAND"]), 50, [0x80, 0]);
        assert!(matches!(u.authenticate(&ch), AkaOutcome::Success(_)));
        assert_eq!(u.sqn_ms, 50);
    }

    #[test]
    fn nonce_round_trip_and_errors() {
        let (u, v) = set1_usim();
        let ch = u.make_challenge(arr(&v["RAND"]), 7, [0x80, 0]);
        assert_eq!(Challenge::from_nonce(&ch.to_nonce()).unwrap(), ch);
        assert_eq!(Challenge::from_nonce("!!"), Err(NonceError::NotBase64));
        assert_eq!(Challenge::from_nonce("AAAA"), Err(NonceError::TooShort(3)));
    }

    #[test]
    fn debug_never_shows_keys() {
        let (mut u, v) = set1_usim();
        let s = format!("{u:?}");
        assert!(!s.contains("465b") && !s.contains("cd63"), "{s}");
        let AkaOutcome::Success(ok) = u.authenticate(&set1_challenge(&v)) else {
            panic!()
        };
        let s = format!("{ok:?}");
        assert!(
            !s.contains("a54211") && !s.contains("b40ba9") && !s.contains("f769bc"),
            "{s}"
        );
        assert!(SimKeys::from_hex_op("zz", "00").is_err());
    }
}
