//! Round trips of every Cx message, a byte-level check of a UAR, and validation.

use bytes::Bytes;
use ims_diameter::codec::{Avp, AvpFlags, AvpSet, Message, ResultCode};
use ims_diameter::dictionary as base;

use super::*;
use crate::dictionary::*;

fn routing() -> RequestRouting {
    RequestRouting {
        session_id: "scscf.ims.test;1;2".into(),
        origin_host: "scscf.ims.test".into(),
        origin_realm: "ims.test".into(),
        destination_host: Some("hss.ims.test".into()),
        destination_realm: "ims.test".into(),
    }
}

fn ans_routing() -> AnswerRouting {
    AnswerRouting {
        session_id: "scscf.ims.test;1;2".into(),
        origin_host: "hss.ims.test".into(),
        origin_realm: "ims.test".into(),
    }
}

/// Encode → bytes → decode → typed, and check the typed value is unchanged.
fn wire(m: &Message) -> Message {
    Message::decode(&m.to_bytes().expect("encode")).expect("decode")
}

#[test]
fn uar_uaa_round_trip() {
    let req = UserAuthorizationRequest {
        routing: routing(),
        user_name: "001010000000001@ims.test".into(),
        public_identity: "sip:001010000000001@ims.test".into(),
        visited_network_identifier: "ims.test".into(),
        user_authorization_type: Some(UserAuthorizationType::RegistrationAndCapabilities),
        uar_flags: Some(1),
    };
    let m = wire(&req.to_message());
    assert_eq!(m.header.command_code, 300);
    assert_eq!(m.header.application_id, 16777216);
    assert!(m.is_request() && m.header.flags.is_proxiable());
    assert_eq!(UserAuthorizationRequest::from_message(&m).unwrap(), req);

    for ans in [
        UserAuthorizationAnswer {
            routing: ans_routing(),
            outcome: CxOutcome::Experimental(ExperimentalResultCode::FirstRegistration),
            server_name: None,
            server_capabilities: Some(ServerCapabilities {
                mandatory: vec![1, 2],
                optional: vec![7],
                server_names: vec!["sip:scscf.ims.test:6060".into()],
            }),
        },
        UserAuthorizationAnswer {
            routing: ans_routing(),
            outcome: CxOutcome::Experimental(ExperimentalResultCode::SubsequentRegistration),
            server_name: Some("sip:scscf.ims.test:6060".into()),
            server_capabilities: None,
        },
        UserAuthorizationAnswer {
            routing: ans_routing(),
            outcome: CxOutcome::Experimental(ExperimentalResultCode::UserUnknown),
            server_name: None,
            server_capabilities: None,
        },
    ] {
        let a = wire(&ans.to_message(&m));
        assert!(!a.is_request());
        assert_eq!(a.header.hop_by_hop, m.header.hop_by_hop);
        assert_eq!(UserAuthorizationAnswer::from_message(&a).unwrap(), ans);
    }
}

#[test]
fn mar_maa_round_trip_aka_resync_and_digest() {
    let rand = [0x23u8; 16];
    let auts = [0x45u8; 14];
    let req = MultimediaAuthRequest::new(
        "alice@ims.test",
        "sip:alice@ims.test",
        "sip:scscf.ims.test",
        SipAuthScheme::DigestAkaV1Md5,
        1,
    )
    .with_resync(&rand, &auts);
    let req = MultimediaAuthRequest {
        routing: routing(),
        ..req
    };
    let m = wire(&req.to_message());
    let back = MultimediaAuthRequest::from_message(&m).unwrap();
    assert_eq!(back, req);
    let (r, a) = back.sip_auth_data_item.resync_rand_auts().unwrap();
    assert_eq!((r, a), (&rand[..], &auts[..]));

    let aka = SipAuthDataItem {
        item_number: Some(1),
        scheme: Some(SipAuthScheme::DigestAkaV1Md5),
        authenticate: Some(Bytes::from(vec![1u8; 32])),
        authorization: Some(Bytes::from(vec![2u8; 8])),
        confidentiality_key: Some(Bytes::from(vec![3u8; 16])),
        integrity_key: Some(Bytes::from(vec![4u8; 16])),
        ..Default::default()
    };
    let digest = SipAuthDataItem {
        item_number: Some(2),
        scheme: Some(SipAuthScheme::SipDigest),
        digest: Some(SipDigestAuthenticate {
            realm: "ims.test".into(),
            algorithm: Some("MD5".into()),
            qop: Some("auth".into()),
            ha1: "0123456789abcdef0123456789abcdef".into(),
        }),
        ..Default::default()
    };
    let ans = MultimediaAuthAnswer {
        routing: ans_routing(),
        outcome: CxOutcome::Success,
        user_name: Some("alice@ims.test".into()),
        public_identity: Some("sip:alice@ims.test".into()),
        sip_number_auth_items: Some(2),
        sip_auth_data_items: vec![aka, digest],
    };
    let a = wire(&ans.to_message(&m));
    assert_eq!(a.result_code(), Some(ResultCode::Success));
    assert_eq!(MultimediaAuthAnswer::from_message(&a).unwrap(), ans);
    // Debug never shows CK/IK/XRES/HA1 bytes.
    let dbg = format!("{ans:?}");
    assert!(!dbg.contains("0123456789abcdef"));
    assert!(!dbg.contains("[3, 3, 3"));
    assert!(dbg.contains("<16 bytes>"));
}

#[test]
fn sar_saa_round_trip_all_assignment_types() {
    for t in [
        ServerAssignmentType::Registration,
        ServerAssignmentType::ReRegistration,
        ServerAssignmentType::UnregisteredUser,
        ServerAssignmentType::TimeoutDeregistration,
        ServerAssignmentType::UserDeregistration,
        ServerAssignmentType::AdministrativeDeregistration,
    ] {
        let mut req = ServerAssignmentRequest::new(
            Some("alice@ims.test"),
            "sip:alice@ims.test",
            "sip:scscf",
            t,
        );
        req.routing = routing();
        req.public_identities.push("tel:+15550001".into());
        req.user_data_already_available = t == ServerAssignmentType::ReRegistration;
        let m = wire(&req.to_message());
        assert_eq!(ServerAssignmentRequest::from_message(&m).unwrap(), req);
    }
    let req = ServerAssignmentRequest {
        routing: routing(),
        ..ServerAssignmentRequest::new(None, "sip:a", "sip:s", ServerAssignmentType::Registration)
    };
    let m = wire(&req.to_message());
    let ans = ServerAssignmentAnswer {
        routing: ans_routing(),
        outcome: CxOutcome::Success,
        user_name: Some("alice@ims.test".into()),
        user_data: Some("<?xml version=\"1.0\"?><IMSSubscription/>".into()),
        charging_information: Some(ChargingInformation {
            primary_event_charging_function_name: Some("aaa://ecf.ims.test".into()),
            ..Default::default()
        }),
        associated_identities: vec!["bob@ims.test".into()],
        server_name: Some("sip:s".into()),
    };
    assert_eq!(
        ServerAssignmentAnswer::from_message(&wire(&ans.to_message(&m))).unwrap(),
        ans
    );
}

#[test]
fn lir_lia_rtr_rta_ppr_ppa_round_trip() {
    let lir = LocationInfoRequest {
        routing: routing(),
        public_identity: "sip:bob@ims.test".into(),
        originating_request: Some(OriginatingRequest::Originating),
        user_authorization_type: Some(UserAuthorizationType::RegistrationAndCapabilities),
    };
    let m = wire(&lir.to_message());
    assert_eq!(LocationInfoRequest::from_message(&m).unwrap(), lir);
    let lia = LocationInfoAnswer {
        routing: ans_routing(),
        outcome: CxOutcome::Experimental(ExperimentalResultCode::UnregisteredService),
        server_name: None,
        server_capabilities: Some(ServerCapabilities::default()),
        wildcarded_psi: Some("sip:psi!.*!@ims.test".into()),
        wildcarded_impu: None,
    };
    assert_eq!(
        LocationInfoAnswer::from_message(&wire(&lia.to_message(&m))).unwrap(),
        lia
    );

    let rtr = RegistrationTerminationRequest {
        routing: routing(),
        user_name: "alice@ims.test".into(),
        associated_identities: vec!["alice2@ims.test".into()],
        public_identities: vec!["sip:alice@ims.test".into()],
        deregistration_reason: DeregistrationReason {
            reason_code: ReasonCode::PermanentTermination,
            reason_info: Some("Administrative Deregistration".into()),
        },
    };
    let m = wire(&rtr.to_message());
    assert_eq!(
        RegistrationTerminationRequest::from_message(&m).unwrap(),
        rtr
    );
    let rta = RegistrationTerminationAnswer {
        routing: ans_routing(),
        outcome: CxOutcome::Success,
        associated_identities: vec!["alice2@ims.test".into()],
    };
    assert_eq!(
        RegistrationTerminationAnswer::from_message(&wire(&rta.to_message(&m))).unwrap(),
        rta
    );

    let ppr = PushProfileRequest {
        routing: routing(),
        user_name: "alice@ims.test".into(),
        user_data: Some("<IMSSubscription/>".into()),
        charging_information: None,
        sip_auth_data_item: None,
    };
    let m = wire(&ppr.to_message());
    assert_eq!(PushProfileRequest::from_message(&m).unwrap(), ppr);
    let ppa = PushProfileAnswer {
        routing: ans_routing(),
        outcome: CxOutcome::Base(ResultCode::UnableToComply),
    };
    let a = wire(&ppa.to_message(&m));
    assert!(!a.header.flags.is_error(), "5012 is not a protocol error");
    assert_eq!(PushProfileAnswer::from_message(&a).unwrap(), ppa);
    let ppa = PushProfileAnswer {
        routing: ans_routing(),
        outcome: CxOutcome::Base(ResultCode::UnableToDeliver),
    };
    let a = wire(&ppa.to_message(&m));
    assert!(a.header.flags.is_error(), "3002 is a protocol error: E bit");
}

/// A UAR checked byte by byte against the layout of RFC 6733 §3/§4 and the AVP
/// order of TS 29.229 §6.1.1.
#[test]
fn uar_bytes_match_rfc_layout() {
    let req = UserAuthorizationRequest {
        routing: RequestRouting {
            session_id: "s;1".into(),
            origin_host: "i".into(),
            origin_realm: "r".into(),
            destination_host: None,
            destination_realm: "r".into(),
        },
        user_name: "u".into(),
        public_identity: "sip:u".into(),
        visited_network_identifier: "r".into(),
        user_authorization_type: None,
        uar_flags: None,
    };
    let mut m = req.to_message();
    m.header.hop_by_hop = 0x0102_0304;
    m.header.end_to_end = 0x0506_0708;
    let bytes = m.to_bytes().unwrap();
    #[rustfmt::skip]
    let expected: Vec<u8> = [
        // header: version 1, length 0xa0 (160), flags R+P, code 300, app 16777216
        &[0x01, 0x00, 0x00, 0xa0, 0xc0, 0x00, 0x01, 0x2c, 0x01, 0x00, 0x00, 0x00,
          0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08][..],
        // Session-Id 263, M, len 11, "s;1" + 1 pad
        &[0, 0, 1, 7, 0x40, 0, 0, 11, b's', b';', b'1', 0],
        // Vendor-Specific-Application-Id 260, M, len 32: Vendor-Id 266 = 10415,
        // Auth-Application-Id 258 = 16777216
        &[0, 0, 1, 4, 0x40, 0, 0, 32,
          0, 0, 1, 10, 0x40, 0, 0, 12, 0, 0, 0x28, 0xaf,
          0, 0, 1, 2, 0x40, 0, 0, 12, 0x01, 0, 0, 0],
        // Auth-Session-State 277, M, len 12, 1
        &[0, 0, 1, 21, 0x40, 0, 0, 12, 0, 0, 0, 1],
        // Origin-Host 264 "i", Origin-Realm 296 "r", Destination-Realm 283 "r"
        &[0, 0, 1, 8, 0x40, 0, 0, 9, b'i', 0, 0, 0],
        &[0, 0, 1, 40, 0x40, 0, 0, 9, b'r', 0, 0, 0],
        &[0, 0, 1, 27, 0x40, 0, 0, 9, b'r', 0, 0, 0],
        // User-Name 1 "u"
        &[0, 0, 0, 1, 0x40, 0, 0, 9, b'u', 0, 0, 0],
        // Public-Identity 601, V+M, len 17, vendor 10415, "sip:u" + 3 pad
        &[0, 0, 2, 0x59, 0xc0, 0, 0, 17, 0, 0, 0x28, 0xaf, b's', b'i', b'p', b':', b'u', 0, 0, 0],
        // Visited-Network-Identifier 600, V+M, len 13, vendor 10415, "r" + 3 pad
        &[0, 0, 2, 0x58, 0xc0, 0, 0, 13, 0, 0, 0x28, 0xaf, b'r', 0, 0, 0],
    ]
    .concat();
    assert_eq!(bytes.len(), 160);
    assert_eq!(bytes.as_ref(), expected.as_slice());
}

#[test]
fn request_validation_maps_to_rfc_result_codes() {
    let req = UserAuthorizationRequest {
        routing: routing(),
        user_name: "u".into(),
        public_identity: "sip:u".into(),
        visited_network_identifier: "r".into(),
        ..Default::default()
    };
    let good = req.to_message();

    // Missing Public-Identity → 5005 with a Failed-AVP example of it.
    let mut m = good.clone();
    m.avps.retain(|a| !PUBLIC_IDENTITY.matches(a));
    let e = UserAuthorizationRequest::from_message(&m).unwrap_err();
    assert_eq!(e.result_code(), ResultCode::MissingAvp);
    assert_eq!(e.failed_avp().unwrap().code, 601);

    // Public-Identity twice → 5009.
    let m = good.clone().with(Avp::utf8(&PUBLIC_IDENTITY, "sip:v"));
    let e = UserAuthorizationRequest::from_message(&m).unwrap_err();
    assert_eq!(e.result_code(), ResultCode::AvpOccursTooManyTimes);

    // Unknown AVP with M → 5001; without M → ignored and kept.
    let m = good.clone().with(Avp::raw(
        4242,
        AvpFlags::VM,
        Some(10415),
        Bytes::from_static(b"x"),
    ));
    let e = UserAuthorizationRequest::from_message(&m).unwrap_err();
    assert_eq!(e.result_code(), ResultCode::AvpUnsupported);
    assert_eq!(e.failed_avp().unwrap().code, 4242);
    let m = wire(&good.clone().with(Avp::raw(
        4242,
        AvpFlags::V,
        Some(10415),
        Bytes::from_static(b"x"),
    )));
    assert_eq!(UserAuthorizationRequest::from_message(&m).unwrap(), req);

    // Bad UTF-8 in User-Name → 5004; wrong-size Unsigned32 → 5014.
    let mut m = good.clone();
    for a in &mut m.avps {
        if base::USER_NAME.matches(a) {
            a.data = Bytes::from_static(&[0xff, 0xfe]);
        }
    }
    assert_eq!(
        UserAuthorizationRequest::from_message(&m)
            .unwrap_err()
            .result_code()
            .code(),
        5004
    );
    let m = good
        .clone()
        .with(Avp::new(&UAR_FLAGS, Bytes::from_static(&[1, 2])));
    assert_eq!(
        UserAuthorizationRequest::from_message(&m)
            .unwrap_err()
            .result_code()
            .code(),
        5014
    );

    // Wrong command → 3001, wrong application → 3007, answer instead of request.
    let e = MultimediaAuthRequest::from_message(&good).unwrap_err();
    assert_eq!(e.result_code(), ResultCode::CommandUnsupported);
    let mut m = good.clone();
    m.header.application_id = 4;
    assert_eq!(
        UserAuthorizationRequest::from_message(&m)
            .unwrap_err()
            .result_code()
            .code(),
        3007
    );
    let ans = UserAuthorizationAnswer::new(CxOutcome::Success).to_message(&good);
    assert!(UserAuthorizationRequest::from_message(&ans).is_err());

    // The error answer carries the code, the E bit for 3xxx, and Failed-AVP.
    let mut m = good.clone();
    m.avps.retain(|a| !PUBLIC_IDENTITY.matches(a));
    let e = UserAuthorizationRequest::from_message(&m).unwrap_err();
    let a = wire(&e.to_answer(&m, "hss", "ims.test"));
    assert_eq!(a.result_code(), Some(ResultCode::MissingAvp));
    assert!(!a.header.flags.is_error());
    assert_eq!(a.require_grouped(&base::FAILED_AVP).unwrap()[0].code, 601);
    assert_eq!(a.session_id(), Some("scscf.ims.test;1;2"));
    let mut m = good.clone();
    m.header.application_id = 4;
    let e = UserAuthorizationRequest::from_message(&m).unwrap_err();
    assert!(e.to_answer(&m, "hss", "ims.test").header.flags.is_error());
}

#[test]
fn answer_without_result_is_rejected_and_outcomes_are_typed() {
    let req = LocationInfoRequest {
        routing: routing(),
        public_identity: "sip:x".into(),
        ..Default::default()
    }
    .to_message();
    let mut a = LocationInfoAnswer::new(CxOutcome::Success).to_message(&req);
    a.avps.retain(|x| !base::RESULT_CODE.matches(x));
    let e = LocationInfoAnswer::from_message(&a).unwrap_err();
    assert_eq!(e.result_code(), ResultCode::MissingAvp);

    let a = LocationInfoAnswer::new(ExperimentalResultCode::IdentityNotRegistered.into())
        .to_message(&req);
    let lia = LocationInfoAnswer::from_message(&a).unwrap();
    assert_eq!(
        lia.outcome,
        CxOutcome::Experimental(ExperimentalResultCode::IdentityNotRegistered)
    );
    assert!(!lia.outcome.is_success());
    assert!(CxOutcome::Experimental(ExperimentalResultCode::FirstRegistration).is_success());
    assert!(CxOutcome::from(ResultCode::Success) == CxOutcome::Success);
}
