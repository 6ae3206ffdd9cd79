//! Gm IPsec for IMS: sec-agree headers (RFC 3329; TS 33.203 §7.2, Annex H), the choice
//! of an offer, the four ESP transport SAs of a UE with their keys (TS 33.203 §7.1,
//! §6.1, Annex I), and their programming into the Linux kernel through XFRM netlink.
//!
//! # Layout
//! - [`alg`]: integrity/encryption algorithms and their names (sec-agree, XFRM, Wireshark).
//! - [`header`]: parse/format `Security-Client`, `Security-Server`, `Security-Verify`.
//! - [`negotiate`]: choose an offer by the P-CSCF's ordered policy; check `Security-Verify`.
//! - [`keys`]: CK/IK and the derived ESP keys (zeroized, redacted).
//! - [`plan`]: the four SAs and their policies, for the P-CSCF or the UE side.
//! - [`pool`]: the P-CSCF's SPI and protected-port allocation.
//! - [`store`]: `SaStore` trait, kernel (`XfrmSaStore`) and in-memory (`MemorySaStore`).
//! - [`wireshark`]: ESP SA table lines for decrypting captures.
//! - [`watch`]: alarms for inbound ESP failing its integrity check (wrong keys at the UE).
//! - `uml` (feature `uml`): test support to run tests inside user-mode Linux.
//!
//! # The P-CSCF flow
//!
//! ```
//! use ims_ipsec::*;
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! // Start-up: pool, policy, store (XfrmSaStore::connect(reqid) + probe() in production).
//! let mut pool = ProtectedPool::new(PoolConfig::default()).unwrap();
//! let policy = SecAgreePolicy::default();
//! let store = MemorySaStore::new(plan::DEFAULT_PCSCF_REQID);
//! let kernel = KernelSupport::all(); // XfrmSaStore::probe().await.support
//!
//! // Unprotected REGISTER: Security-Client from the UE.
//! let client = "ipsec-3gpp; alg=hmac-md5-96; ealg=des-ede3-cbc; spi-c=3929944542; spi-s=3929944543; port-c=50000; port-s=50001, \
//!               ipsec-3gpp; alg=hmac-sha-1-96; ealg=aes-cbc; spi-c=3929944542; spi-s=3929944543; port-c=50000; port-s=50001";
//! let offers = parse_offers(client).unwrap();
//! let choice = choose_offer(&offers, &policy, &kernel).unwrap();
//! assert_eq!(choice.offer.pair().to_string(), "hmac-sha-1-96/aes-cbc"); // log `choice` per UE
//!
//! // 401 from the S-CSCF: take ck/ik, lease SPIs/ports, plan, install, answer.
//! let (ck, ik) = (Ck::from_hex("0f1e2d3c4b5a69788796a5b4c3d2e1f0").unwrap(), Ik::from_hex("00112233445566778899aabbccddeeff").unwrap());
//! let lease = pool.allocate().unwrap();
//! let ue = SecEndpoint::from_offer("10.45.0.2".parse().unwrap(), &choice.offer);
//! let me = lease.endpoint("10.45.0.1".parse().unwrap());
//! let plan = plan_sa_set(Side::Pcscf, &ue, &me, choice.offer.pair(), &ck, &ik, &PlanOptions::default()).unwrap();
//! store.install(&plan).await.unwrap();
//! let server = vec![SecMechanism::Ipsec3gpp(lease.security_server(choice.offer.pair()))];
//! let security_server_header = format_security_header(&server);
//! let id = plan.id(); // keep this (no keys) to remove the set later
//!
//! // Protected REGISTER: check Security-Verify and the repeated Security-Client.
//! let verify = parse_security_header(&security_server_header).unwrap();
//! check_security_verify(&server, &verify).unwrap();
//! let first: Vec<SecMechanism> = offers.into_iter().map(Result::unwrap).collect();
//! check_security_client_unchanged(&first, &parse_security_header(client).unwrap()).unwrap();
//!
//! // De-registration (after the protected 200 OK and NOTIFY went out) or expiry:
//! store.remove(&id).await.unwrap();
//! pool.release(&lease);
//! # }
//! ```
//!
//! Everything but [`store::XfrmSaStore`] is sans-I/O and unit-tested without root.
//! The kernel store is proven against real ESP in user-mode Linux (`tests/uml_esp.rs`,
//! harness in `../uml/`).
#![deny(missing_docs)]

pub mod alg;
pub mod header;
pub mod keys;
pub mod negotiate;
pub mod plan;
pub mod pool;
pub mod store;
#[cfg(feature = "uml")]
pub mod uml;
pub mod watch;
pub mod wireshark;

pub use alg::{AlgPair, EncryptionAlg, IntegrityAlg};
pub use header::{
    format_security_header, parse_offers, parse_security_header, HeaderError, IpsecOffer, QValue,
    SecMechanism,
};
pub use keys::{derive_esp_keys, Ck, EspKeys, Ik, XfrmKey};
pub use negotiate::{
    check_security_client_unchanged, check_security_verify, choose_offer, Choice, KernelSupport,
    NoAcceptableOffer, SecAgreePolicy, VerifyError,
};
pub use plan::{
    plan_sa_set, Direction, PlanError, PlanOptions, PolicyProtocols, SaPlan, SaRole, SaSetId,
    SecEndpoint, Side,
};
pub use pool::{Lease, PoolConfig, PoolError, PortConfig, ProtectedPool};
pub use store::{
    InstalledPolicy, InstalledSa, KernelProbe, MemorySaStore, OwnedState, SaStore, StoreError,
    XfrmSaStore,
};
pub use watch::{IntegrityAlarm, IntegrityWatch};
