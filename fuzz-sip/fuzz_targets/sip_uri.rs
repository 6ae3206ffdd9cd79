//! URI and address parse → print → reparse: printed text parses again, prints the same,
//! and is equivalent (RFC 3261 §19.1.4) to the original.
#![no_main]

use ims_sip_core::{NameAddr, Uri};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(u) = Uri::parse(s) {
        let p = u.to_string();
        let u2 = Uri::parse(&p).unwrap_or_else(|e| panic!("{p:?} does not reparse: {e}"));
        assert_eq!(u2.to_string(), p);
        assert!(u.equivalent(&u2), "{s:?} vs {p:?}");
        if let Uri::Sip(sip) = &u {
            let _ = sip.aor();
        }
    }
    if let Ok(a) = NameAddr::parse(s) {
        let p = a.to_string();
        let b = NameAddr::parse(&p).unwrap_or_else(|e| panic!("{p:?} does not reparse: {e}"));
        assert_eq!(b.to_string(), p);
        assert!(a.uri.equivalent(&b.uri));
    }
});
