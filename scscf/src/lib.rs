//! The S-CSCF role (TS 24.229 §5.4).
