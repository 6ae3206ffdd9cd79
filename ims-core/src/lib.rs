//! All-in-one IMS core: the HSS, S-CSCF, I-CSCF and P-CSCF in one process, each role on
//! its own loopback address/port, the HSS on a SQLite file, a demo subscriber
//! provisioned. Wiring only: every behaviour lives in the role crates.
//!
//! The roles talk to each other over real sockets (SIP over UDP/TCP, Cx over Diameter
//! TCP) exactly as the separate binaries do, so a lab can later split them apart with
//! the same configuration sections (`[hss]`, `[scscf]`, `[icscf]`, `[pcscf]`).

pub mod demo;
