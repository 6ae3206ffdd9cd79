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
//! - `uml` (feature `uml`): test support to run tests inside user-mode Linux.
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
