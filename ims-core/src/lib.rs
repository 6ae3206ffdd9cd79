//! All-in-one IMS core: HSS, S-CSCF, I-CSCF and P-CSCF in one process.
