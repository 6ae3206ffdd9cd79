//! Message::decode must never panic; whatever decodes re-encodes to bytes that
//! decode to the same message (round trip), and an error always yields an
//! answer or None without panicking.
#![no_main]

use ims_diameter::codec::{error_answer_for_raw, AvpSet, Message};
use ims_diameter::dictionary as d;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match Message::decode(data) {
        Ok(m) => {
            let bytes = m.to_bytes().expect("a decoded message re-encodes");
            assert_eq!(bytes.len(), data.len());
            let again = Message::decode(&bytes).expect("re-encoded message decodes");
            assert_eq!(again, m);
            // Typed accessors never panic.
            let _ = m.session_id();
            let _ = m.result_code();
            let _ = m.get_grouped(&d::VENDOR_SPECIFIC_APPLICATION_ID);
            for a in &m.avps {
                let _ = a.as_grouped();
                let _ = a.as_address();
                let _ = a.as_utf8();
            }
            let _ = m.check_mandatory(&d::is_base_avp);
        }
        Err(e) => {
            let _ = e.result_code();
            if let Some(ans) = error_answer_for_raw(data, &e, "fuzz.host", "fuzz.realm") {
                let b = ans.to_bytes().expect("error answer encodes");
                Message::decode(&b).expect("error answer decodes");
            }
        }
    }
});
