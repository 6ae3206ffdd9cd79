//! Every Cx `from_message` on arbitrary decoded messages: no panic, and a
//! request that decodes survives to_message → from_message unchanged.
#![no_main]

use ims_diameter::codec::Message;
use ims_hss_client::messages::*;
use libfuzzer_sys::fuzz_target;

macro_rules! req_round_trip {
    ($t:ty, $m:expr) => {
        if let Ok(r) = <$t>::from_message($m) {
            let again = <$t>::from_message(&r.to_message()).expect("re-encoded request decodes");
            assert_eq!(again, r);
        }
    };
}

macro_rules! ans_round_trip {
    ($t:ty, $m:expr) => {
        if let Ok(a) = <$t>::from_message($m) {
            let mut req = $m.clone();
            req.header.flags.0 |= 0x80;
            let again = <$t>::from_message(&a.to_message(&req)).expect("re-encoded answer decodes");
            assert_eq!(again.outcome, a.outcome);
        }
    };
}

fuzz_target!(|data: &[u8]| {
    let Ok(mut m) = Message::decode(data) else { return };
    m.header.application_id = 16_777_216;
    let code = 300 + (m.header.command_code % 6);
    m.header.command_code = code;
    if m.is_request() {
        req_round_trip!(UserAuthorizationRequest, &m);
        req_round_trip!(MultimediaAuthRequest, &m);
        req_round_trip!(ServerAssignmentRequest, &m);
        req_round_trip!(LocationInfoRequest, &m);
        req_round_trip!(RegistrationTerminationRequest, &m);
        req_round_trip!(PushProfileRequest, &m);
        if let Err(e) = UserAuthorizationRequest::from_message(&m) {
            let _ = e.to_answer(&m, "h", "r").to_bytes();
        }
    } else {
        ans_round_trip!(UserAuthorizationAnswer, &m);
        ans_round_trip!(MultimediaAuthAnswer, &m);
        ans_round_trip!(ServerAssignmentAnswer, &m);
        ans_round_trip!(LocationInfoAnswer, &m);
        ans_round_trip!(RegistrationTerminationAnswer, &m);
        ans_round_trip!(PushProfileAnswer, &m);
    }
});
