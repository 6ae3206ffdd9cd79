//! `icscf`: the I-CSCF as its own process (TS 24.229 §5.3).
fn main() {}
