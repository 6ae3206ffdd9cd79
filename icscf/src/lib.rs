//! The I-CSCF role (TS 24.229 §5.3).
