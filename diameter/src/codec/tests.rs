//! Codec tests: byte layout against RFC 6733 §3/§4, round trips, malformed input.

use bytes::{Bytes, BytesMut};

use super::*;
use crate::dictionary as d;

/// A DWR built by hand from the RFC 6733 §3 and §4 layouts, with one 3GPP
/// vendor AVP (code 601, V+M, Vendor-ID 10415) and one unknown non-M AVP.
fn hand_built() -> Vec<u8> {
    let mut v = vec![
        0x01, 0x00, 0x00, 0x00, // version 1, length patched below
        0x80, 0x00, 0x01, 0x18, // flags R, command 280
        0x00, 0x00, 0x00, 0x00, // application 0
        0x11, 0x22, 0x33, 0x44, // hop-by-hop
        0x55, 0x66, 0x77, 0x88, // end-to-end
        // Origin-Host 264, M, length 8+3=11, "a.b", 1 pad byte
        0x00, 0x00, 0x01, 0x08, 0x40, 0x00, 0x00, 0x0b, b'a', b'.', b'b', 0x00,
        // Origin-Realm 296, M, length 9, "b", 3 pad bytes
        0x00, 0x00, 0x01, 0x28, 0x40, 0x00, 0x00, 0x09, b'b', 0x00, 0x00, 0x00,
        // 601 V+M vendor 10415 (0x28af), length 12+5=17, "sip:x", 3 pad
        0x00, 0x00, 0x02, 0x59, 0xc0, 0x00, 0x00, 0x11, 0x00, 0x00, 0x28, 0xaf, b's', b'i', b'p',
        b':', b'x', 0x00, 0x00, 0x00,
        // unknown AVP 9999, no flags, length 12, Unsigned32 7
        0x00, 0x00, 0x27, 0x0f, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x00, 0x00, 0x07,
    ];
    let len = v.len();
    v[1] = (len >> 16) as u8;
    v[2] = (len >> 8) as u8;
    v[3] = len as u8;
    v
}

const PUBLIC_IDENTITY: AvpDef =
    AvpDef::vendor("Public-Identity", 601, 10415, true, AvpType::Utf8String);

#[test]
fn decodes_hand_built_dwr_field_by_field() {
    let raw = hand_built();
    let m = Message::decode(&raw).expect("decode");
    assert!(m.is_request());
    assert!(!m.header.flags.is_proxiable());
    assert_eq!(m.header.command_code, 280);
    assert_eq!(m.header.application_id, 0);
    assert_eq!(m.header.hop_by_hop, 0x1122_3344);
    assert_eq!(m.header.end_to_end, 0x5566_7788);
    assert_eq!(m.avps.len(), 4);
    assert_eq!(m.origin_host(), Some("a.b"));
    assert_eq!(m.require_utf8(&d::ORIGIN_REALM).unwrap(), "b");
    let pi = m.required(&PUBLIC_IDENTITY).unwrap();
    assert_eq!(pi.vendor_id, Some(10415));
    assert!(pi.flags.is_vendor() && pi.flags.is_mandatory());
    assert_eq!(pi.as_utf8().unwrap(), "sip:x");
    let unknown = &m.avps[3];
    assert_eq!(
        (unknown.code, unknown.flags.0, unknown.vendor_id),
        (9999, 0, None)
    );
    assert_eq!(unknown.as_u32().unwrap(), 7);
}

#[test]
fn encodes_hand_built_dwr_byte_for_byte() {
    let m = Message {
        header: Header {
            flags: CommandFlags(CommandFlags::REQUEST),
            command_code: 280,
            application_id: 0,
            hop_by_hop: 0x1122_3344,
            end_to_end: 0x5566_7788,
        },
        avps: vec![
            Avp::utf8(&d::ORIGIN_HOST, "a.b"),
            Avp::utf8(&d::ORIGIN_REALM, "b"),
            Avp::utf8(&PUBLIC_IDENTITY, "sip:x"),
            Avp::raw(
                9999,
                AvpFlags::NONE,
                None,
                Bytes::from_static(&[0, 0, 0, 7]),
            ),
        ],
    };
    assert_eq!(m.to_bytes().unwrap().as_ref(), hand_built().as_slice());
}

#[test]
fn unknown_avps_survive_round_trip_byte_exact() {
    // Unknown vendor AVP with reserved flag bits and an odd length, plus unknown M AVP.
    let mut m = Message::request(316, 16777251);
    m.push(Avp::utf8(&d::SESSION_ID, "s;1;2"));
    m.push(Avp::raw(
        1400,
        AvpFlags(0xc3),
        Some(10415),
        Bytes::from_static(b"\x01\x02\x03"),
    ));
    m.push(Avp::raw(
        77,
        AvpFlags::M,
        None,
        Bytes::from_static(b"abcdefg"),
    ));
    let raw = m.to_bytes().unwrap();
    let back = Message::decode(&raw).unwrap();
    assert_eq!(back, m);
    assert_eq!(back.to_bytes().unwrap(), raw);
}

#[test]
fn typed_values_round_trip() {
    let def_u32 = AvpDef::ietf("U32", 1000, true, AvpType::Unsigned32);
    let def_u64 = AvpDef::ietf("U64", 1001, true, AvpType::Unsigned64);
    let def_i32 = AvpDef::ietf("I32", 1002, true, AvpType::Integer32);
    let def_i64 = AvpDef::ietf("I64", 1003, true, AvpType::Integer64);
    let def_oct = AvpDef::vendor("Oct", 1004, 10415, false, AvpType::OctetString);
    let grp = AvpDef::ietf("Grp", 1005, true, AvpType::Grouped);
    let v4: std::net::IpAddr = "192.0.2.1".parse().unwrap();
    let v6: std::net::IpAddr = "2001:db8::1".parse().unwrap();
    let m = Message::request(300, 16777216)
        .with(Avp::unsigned32(&def_u32, 0xdead_beef))
        .with(Avp::unsigned64(&def_u64, u64::MAX - 1))
        .with(Avp::integer32(&def_i32, -5))
        .with(Avp::integer64(&def_i64, i64::MIN))
        .with(Avp::octets(&def_oct, Bytes::from_static(&[0, 1, 2, 3, 4])))
        .with(Avp::address(&d::HOST_IP_ADDRESS, v4))
        .with(Avp::address(&d::HOST_IP_ADDRESS, v6))
        .with(Avp::grouped(
            &grp,
            &[
                Avp::unsigned32(&d::VENDOR_ID, 10415),
                Avp::utf8(&d::USER_NAME, "x"),
            ],
        ));
    let back = Message::decode(&m.to_bytes().unwrap()).unwrap();
    assert_eq!(back.require_u32(&def_u32).unwrap(), 0xdead_beef);
    assert_eq!(back.get_u64(&def_u64).unwrap(), Some(u64::MAX - 1));
    assert_eq!(back.require_i32(&def_i32).unwrap(), -5);
    assert_eq!(back.required(&def_i64).unwrap().as_i64().unwrap(), i64::MIN);
    assert_eq!(
        back.require_octets(&def_oct).unwrap().as_ref(),
        &[0, 1, 2, 3, 4]
    );
    let addrs: Vec<_> = back
        .find_all(&d::HOST_IP_ADDRESS)
        .map(|a| a.as_address().unwrap())
        .collect();
    assert_eq!(addrs, vec![v4, v6]);
    let g = back.require_grouped(&grp).unwrap();
    assert_eq!(g.require_u32(&d::VENDOR_ID).unwrap(), 10415);
    assert_eq!(g.require_utf8(&d::USER_NAME).unwrap(), "x");
    assert_eq!(back, m);
}

fn err_of(raw: &[u8]) -> DecodeError {
    Message::decode(raw).expect_err("must fail")
}

#[test]
fn truncated_header_is_invalid_message_length() {
    let raw = hand_built();
    let e = err_of(&raw[..19]);
    assert!(matches!(
        e,
        DecodeError::InvalidMessageLength {
            declared: None,
            available: 19
        }
    ));
    assert_eq!(e.result_code(), ResultCode::InvalidMessageLength);
    assert_eq!(e.result_code().code(), 5015);
}

#[test]
fn truncated_body_and_bad_lengths_are_5015() {
    let raw = hand_built();
    // Fewer bytes than the header says.
    let e = err_of(&raw[..raw.len() - 4]);
    assert_eq!(e.result_code().code(), 5015);
    // Length not a multiple of 4.
    let mut bad = raw.clone();
    bad.push(0);
    bad[3] += 1;
    assert_eq!(err_of(&bad).result_code().code(), 5015);
    // Trailing garbage after the declared length.
    let mut extra = raw.clone();
    extra.extend_from_slice(&[0, 0, 0, 0]);
    assert_eq!(err_of(&extra).result_code().code(), 5015);
}

#[test]
fn wrong_version_is_5011() {
    let mut raw = hand_built();
    raw[0] = 2;
    assert_eq!(err_of(&raw), DecodeError::UnsupportedVersion(2));
    assert_eq!(err_of(&raw).result_code().code(), 5011);
}

#[test]
fn request_with_error_bit_is_3008() {
    let mut raw = hand_built();
    raw[4] |= CommandFlags::ERROR;
    let e = err_of(&raw);
    assert_eq!(e.result_code(), ResultCode::InvalidHdrBits);
    assert_eq!(e.result_code().code(), 3008);
}

#[test]
fn avp_length_below_header_is_5014_with_failed_avp() {
    let mut raw = hand_built();
    // Origin-Host length 7 (< 8).
    raw[20 + 7] = 7;
    let e = err_of(&raw);
    assert_eq!(e.result_code().code(), 5014);
    let f = e.failed_avp().expect("failed avp");
    assert_eq!(f.code, 264);
}

#[test]
fn vendor_avp_length_below_12_is_5014() {
    let mut raw = hand_built();
    // Public-Identity (offset 44) length 11 with V set.
    raw[44 + 7] = 11;
    let e = err_of(&raw);
    assert_eq!(e.result_code(), ResultCode::InvalidAvpLength);
    assert_eq!(e.failed_avp().unwrap().code, 601);
    assert_eq!(e.failed_avp().unwrap().vendor_id, Some(10415));
}

#[test]
fn avp_length_past_end_is_5014() {
    let mut raw = hand_built();
    // Last AVP (offset 64) claims 200 bytes.
    raw[64 + 7] = 200;
    let e = err_of(&raw);
    assert_eq!(e.result_code().code(), 5014);
    assert_eq!(e.failed_avp().unwrap().code, 9999);
}

#[test]
fn partial_avp_header_at_end_is_5014() {
    let mut raw = hand_built();
    raw.extend_from_slice(&[0, 0, 1, 7]); // 4 bytes: not a whole AVP header
    let len = raw.len();
    raw[3] = len as u8;
    let e = err_of(&raw);
    assert_eq!(e.result_code().code(), 5014);
    assert_eq!(e.failed_avp().unwrap().code, 263);
}

#[test]
fn grouped_member_length_errors_are_5014() {
    let grp = AvpDef::ietf("Grp", 1005, true, AvpType::Grouped);
    // Member claims 100 bytes but 12 are there.
    let bad = Avp::new(
        &grp,
        Bytes::from_static(&[0, 0, 1, 10, 0x40, 0, 0, 100, 0, 0, 0, 1]),
    );
    let e = bad.as_grouped().unwrap_err();
    assert_eq!(e.result_code().code(), 5014);
}

#[test]
fn fixed_size_type_with_wrong_length_is_5014_and_bad_utf8_is_5004() {
    let a = Avp::new(&d::RESULT_CODE, Bytes::from_static(&[0, 0, 7]));
    assert_eq!(a.as_u32().unwrap_err().result_code().code(), 5014);
    let s = Avp::new(&d::ORIGIN_HOST, Bytes::from_static(&[0xff, 0xfe]));
    assert_eq!(s.as_utf8().unwrap_err().result_code().code(), 5004);
    let ip = Avp::new(&d::HOST_IP_ADDRESS, Bytes::from_static(&[0, 9, 1, 2, 3, 4]));
    assert_eq!(ip.as_address().unwrap_err().result_code().code(), 5004);
}

#[test]
fn presence_rules_missing_and_repeated() {
    let m = Message::decode(&hand_built()).unwrap();
    let e = m.required(&d::DESTINATION_REALM).unwrap_err();
    assert_eq!(e.result_code().code(), 5005);
    let f = e.failed_avp().unwrap();
    assert_eq!((f.code, f.vendor_id, f.data.len()), (283, None, 0));
    let e = d::RESULT_CODE.missing();
    assert_eq!(e.failed_avp().unwrap().data.as_ref(), &[0, 0, 0, 0]);

    let twice = m.clone().with(Avp::utf8(&d::ORIGIN_HOST, "c.d"));
    let e = twice.required(&d::ORIGIN_HOST).unwrap_err();
    assert_eq!(e.result_code(), ResultCode::AvpOccursTooManyTimes);
    assert_eq!(e.result_code().code(), 5009);
    assert_eq!(e.failed_avp().unwrap().as_utf8().unwrap(), "c.d");
}

#[test]
fn unknown_mandatory_avp_maps_to_5001_and_unknown_optional_is_kept() {
    let m = Message::decode(&hand_built()).unwrap();
    // 601 (vendor) is unknown to the base dictionary and has M set → 5001.
    let e = m.check_mandatory(&d::is_base_avp).unwrap_err();
    assert_eq!(e.result_code(), ResultCode::AvpUnsupported);
    assert_eq!(e.failed_avp().unwrap().code, 601);
    // Knowing 601, the only unknown AVP is 9999 without M: accepted, still there.
    let known = |c: u32, v: Option<u32>| d::is_base_avp(c, v) || (c == 601 && v == Some(10415));
    m.check_mandatory(&known).unwrap();
    assert!(m.avps.iter().any(|a| a.code == 9999));
}

#[test]
fn answer_copies_identifiers_session_and_proxy_info() {
    let proxy = Avp::grouped(&d::PROXY_INFO, &[Avp::utf8(&d::PROXY_HOST, "p.example")]);
    let mut req = Message::request(300, 16777216);
    req.header.hop_by_hop = 7;
    req.header.end_to_end = 9;
    req.push(Avp::utf8(&d::SESSION_ID, "sid;1"));
    req.push(Avp::utf8(&d::ORIGIN_HOST, "client"));
    req.push(proxy.clone());
    let ans = Message::answer_to(&req)
        .with(Avp::unsigned32(&d::RESULT_CODE, 2001))
        .finish_answer(&req);
    assert!(!ans.is_request());
    assert!(ans.header.flags.is_proxiable());
    assert_eq!(
        (ans.header.command_code, ans.header.application_id),
        (300, 16777216)
    );
    assert_eq!((ans.header.hop_by_hop, ans.header.end_to_end), (7, 9));
    assert_eq!(ans.avps[0], Avp::utf8(&d::SESSION_ID, "sid;1"));
    assert_eq!(ans.avps.last(), Some(&proxy));
    assert_eq!(ans.result_code(), Some(ResultCode::Success));
}

#[test]
fn error_answer_sets_e_bit_only_for_protocol_errors() {
    let req = Message::decode(&hand_built()).unwrap();
    let a = Message::error_answer(&req, ResultCode::CommandUnsupported, "h", "r", None, None);
    assert!(a.header.flags.is_error());
    assert_eq!(a.result_code().unwrap().code(), 3001);
    let failed = Avp::utf8(&d::USER_NAME, "x");
    let b = Message::error_answer(&req, ResultCode::MissingAvp, "h", "r", Some(&failed), None);
    assert!(!b.header.flags.is_error());
    let f = b.require_grouped(&d::FAILED_AVP).unwrap();
    assert_eq!(f, vec![failed]);
}

#[test]
fn error_answer_for_raw_salvages_header_and_session() {
    let mut req = Message::request(303, 16777216);
    req.header.hop_by_hop = 0xabcd;
    req.push(Avp::utf8(&d::SESSION_ID, "s;9"));
    req.push(Avp::utf8(&d::ORIGIN_HOST, "h"));
    let mut raw = req.to_bytes().unwrap().to_vec();
    // Corrupt Origin-Host's length to 3.
    let off = 20 + Avp::utf8(&d::SESSION_ID, "s;9").padded_len();
    raw[off + 7] = 3;
    let err = Message::decode(&raw).unwrap_err();
    assert_eq!(err.result_code().code(), 5014);
    let ans = error_answer_for_raw(&raw, &err, "hss", "realm").unwrap();
    assert_eq!(ans.header.hop_by_hop, 0xabcd);
    assert_eq!(ans.header.command_code, 303);
    assert_eq!(ans.session_id(), Some("s;9"));
    assert_eq!(ans.result_code().unwrap().code(), 5014);
    assert_eq!(ans.require_grouped(&d::FAILED_AVP).unwrap()[0].code, 264);
    // Header bits error: E bit set in answer.
    raw[4] |= CommandFlags::ERROR;
    raw[off + 7] = 9;
    let err = Message::decode(&raw).unwrap_err();
    let ans = error_answer_for_raw(&raw, &err, "hss", "realm").unwrap();
    assert!(ans.header.flags.is_error());
    assert_eq!(ans.result_code().unwrap().code(), 3008);
    // Answers are never answered.
    raw[4] = 0;
    assert!(error_answer_for_raw(&raw, &err, "hss", "realm").is_none());
    assert!(error_answer_for_raw(&raw[..10], &err, "hss", "realm").is_none());
}

#[test]
fn framer_states() {
    let raw = hand_built();
    assert_eq!(check(&raw[..3]), Frame::Incomplete);
    assert_eq!(check(&raw[..30]), Frame::Incomplete);
    assert_eq!(check(&raw), Frame::Complete(raw.len()));
    let mut two = raw.clone();
    two.extend_from_slice(&raw);
    assert_eq!(check(&two), Frame::Complete(raw.len()));
    let mut v = raw.clone();
    v[0] = 3;
    assert!(matches!(
        check(&v),
        Frame::Invalid(DecodeError::UnsupportedVersion(3))
    ));
    let short = [1u8, 0, 0, 8];
    assert!(matches!(
        check(&short),
        Frame::Invalid(DecodeError::InvalidMessageLength { .. })
    ));
    let huge = [1u8, 0xff, 0xff, 0xfc];
    assert!(matches!(
        check_with_limit(&huge, 4096),
        Frame::Invalid(DecodeError::MessageTooLarge { .. })
    ));
}

#[test]
fn encode_rejects_oversized_avp() {
    let big = Avp::new(&d::USER_NAME, Bytes::from(vec![b'a'; 0x0100_0000]));
    let m = Message::request(300, 0).with(big);
    assert!(matches!(
        m.encode(&mut BytesMut::new()),
        Err(EncodeError::TooLong { .. })
    ));
}

#[test]
fn every_prefix_of_a_message_is_rejected_without_panic() {
    let raw = hand_built();
    for n in 0..raw.len() {
        assert!(Message::decode(&raw[..n]).is_err());
    }
    // Every single-byte corruption decodes or errors, never panics, and a decoded
    // message re-encodes to the same bytes (padding is normalised to zero, RFC 6733
    // §4: "padding ... MUST be set to zero", so padding bytes are compared as zero).
    let padding = [31usize, 41, 42, 43, 61, 62, 63];
    for i in 0..raw.len() {
        for b in [0x00u8, 0x01, 0x7f, 0x80, 0xff] {
            let mut v = raw.clone();
            v[i] = b;
            if let Ok(m) = Message::decode(&v) {
                let re = m.to_bytes().unwrap();
                if padding.contains(&i) {
                    assert_eq!(Message::decode(&re).unwrap(), m);
                } else {
                    assert_eq!(re.as_ref(), v.as_slice(), "byte {i} = {b:#x}");
                }
            }
        }
    }
}
