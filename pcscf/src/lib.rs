//! The P-CSCF role (TS 24.229 §5.2).
