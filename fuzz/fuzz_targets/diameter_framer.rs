//! The stream framer agrees with the decoder: a complete frame has exactly the
//! length the decoder checks, and framing a stream chunk by chunk never panics.
#![no_main]

use ims_diameter::codec::{check, Frame, Message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while let Frame::Complete(n) = check(rest) {
        assert!(n >= 20 && n <= rest.len());
        let _ = Message::decode(&rest[..n]);
        rest = &rest[n..];
    }
});
