//! AVP list decoding (message bodies and grouped values) with recursion into
//! grouped members; round trip of whatever decodes.
#![no_main]

use bytes::{Bytes, BytesMut};
use ims_diameter::codec::Avp;
use libfuzzer_sys::fuzz_target;

fn walk(avps: &[Avp], depth: usize) {
    for a in avps {
        let _ = (a.as_u32(), a.as_u64(), a.as_i32(), a.as_i64(), a.as_utf8(), a.as_address());
        if depth < 8 {
            if let Ok(members) = a.as_grouped() {
                walk(&members, depth + 1);
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let buf = Bytes::copy_from_slice(data);
    if let Ok(avps) = Avp::decode_all(&buf) {
        walk(&avps, 0);
        let mut out = BytesMut::new();
        for a in &avps {
            a.encode(&mut out).expect("decoded AVP re-encodes");
        }
        let again = Avp::decode_all(&out.freeze()).expect("re-encoded AVPs decode");
        assert_eq!(again, avps);
    }
});
