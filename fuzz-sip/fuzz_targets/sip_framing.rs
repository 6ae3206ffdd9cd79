//! Stream framing never panics, never claims more octets than it has, and a framed
//! message indexes with exactly the framed length (when its head is well formed).
#![no_main]

use bytes::Bytes;
use ims_sip_core::framing::{check, check_frame, Frame};
use ims_sip_core::Message;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some(n)) = check(data) {
        assert!(n <= data.len());
        if let Ok(m) = Message::index(Bytes::copy_from_slice(&data[..n])) {
            let lead = data.iter().take_while(|&&c| c == b'\r' || c == b'\n').count();
            assert_eq!(m.len(), n - lead);
        }
    }
    match check_frame(data) {
        Ok(Frame::KeepAlive(n)) | Ok(Frame::Message(n)) => assert!(n <= data.len() && n > 0),
        _ => {}
    }
});
