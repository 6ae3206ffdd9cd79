//! Cx messages encoded by an independent implementation, python-diameter 0.9.0
//! (requests built AVP by AVP with its `Avp.new`, answers by the `handle()`
//! function of `tests/py/cx_server.py`; Hop-by-Hop 0x11223344, End-to-End
//! 0x55667788). `cd tests/py && python3 gen_vectors.py` regenerates them.
//! Checks: our decoder reads them into the expected typed values, they
//! re-encode byte for byte, and our own encoding of the same requests is
//! byte-identical to python-diameter's (same AVP order, flags, lengths, padding).

use ims_diameter::codec::Message;
use ims_hss_client::*;

const UAR: &str = concat!(
    "010000e0c000012c010000001122334455667788000001074000001a73637363",
    "662e696d732e746573743b313b32000000000104400000200000010a4000000c",
    "000028af000001024000000c01000000000001154000000c0000000100000108",
    "4000001673637363662e696d732e7465737400000000012840000010696d732e",
    "746573740000011b40000010696d732e746573740000000140000016616c6963",
    "6540696d732e74657374000000000259c000001e000028af7369703a616c6963",
    "6540696d732e74657374000000000258c0000014000028af696d732e74657374",
);
const UAA: &str = concat!(
    "010001044000012c010000001122334455667788000001074000001a73637363",
    "662e696d732e746573743b313b32000000000104400000200000010a4000000c",
    "000028af000001024000000c01000000000001154000000c0000000100000108",
    "400000176873732e70792e696d732e74657374000000012840000010696d732e",
    "7465737400000129400000200000010a4000000c000028af0000012a4000000c",
    "000007d10000025bc0000060000028af0000025cc0000010000028af00000001",
    "0000025dc0000010000028af000000020000025dc0000010000028af00000003",
    "0000025ac0000023000028af7369703a73637363662e696d732e746573743a36",
    "30363000",
);
const MAR: &str = concat!(
    "01000124c000012f010000001122334455667788000001074000001a73637363",
    "662e696d732e746573743b313b32000000000104400000200000010a4000000c",
    "000028af000001024000000c01000000000001154000000c0000000100000108",
    "4000001673637363662e696d732e7465737400000000012840000010696d732e",
    "746573740000011b40000010696d732e746573740000000140000016616c6963",
    "6540696d732e74657374000000000259c000001e000028af7369703a616c6963",
    "6540696d732e74657374000000000264c0000028000028af00000260c000001c",
    "000028af4469676573742d414b4176312d4d44350000025fc0000010000028af",
    "000000010000025ac000001e000028af7369703a73637363662e696d732e7465",
    "73740000",
);
const MAA: &str = concat!(
    "010001884000012f010000001122334455667788000001074000001a73637363",
    "662e696d732e746573743b313b32000000000104400000200000010a4000000c",
    "000028af000001024000000c01000000000001154000000c0000000100000108",
    "400000176873732e70792e696d732e74657374000000012840000010696d732e",
    "746573740000010c4000000c000007d10000000140000016616c69636540696d",
    "732e74657374000000000259c000001e000028af7369703a616c69636540696d",
    "732e7465737400000000025fc0000010000028af0000000100000264c00000b0",
    "000028af00000265c0000010000028af0000000100000260c000001c000028af",
    "4469676573742d414b4176312d4d443500000261c000002c000028af23553cbe",
    "9637a89d218ae64dae47bf3555f328b43577b9b94a9ffac354dfafb300000262",
    "c0000014000028afa54211d5e3ba50bf00000271c000001c000028afb40ba9a3",
    "c58b2a05bbf0d987b21bf8cb00000272c000001c000028aff769bcd751044604",
    "127672711c6d3441",
);

fn bytes(h: &str) -> Vec<u8> {
    hex::decode(h).expect("hex")
}

fn routing() -> RequestRouting {
    RequestRouting {
        session_id: "scscf.ims.test;1;2".into(),
        origin_host: "scscf.ims.test".into(),
        origin_realm: "ims.test".into(),
        destination_host: None,
        destination_realm: "ims.test".into(),
    }
}

fn ids(mut m: Message) -> Message {
    m.header.hop_by_hop = 0x1122_3344;
    m.header.end_to_end = 0x5566_7788;
    m
}

#[test]
fn python_uar_decodes_and_matches_our_encoding() {
    let raw = bytes(UAR);
    let m = Message::decode(&raw).unwrap();
    assert_eq!(
        m.to_bytes().unwrap().as_ref(),
        raw.as_slice(),
        "byte-exact round trip"
    );
    let uar = UserAuthorizationRequest::from_message(&m).unwrap();
    assert_eq!(uar.user_name, "alice@ims.test");
    assert_eq!(uar.public_identity, "sip:alice@ims.test");
    assert_eq!(uar.visited_network_identifier, "ims.test");
    assert_eq!(uar.routing, routing());
    let ours = UserAuthorizationRequest {
        routing: routing(),
        ..uar.clone()
    };
    assert_eq!(
        ids(ours.to_message()).to_bytes().unwrap().as_ref(),
        raw.as_slice()
    );
}

#[test]
fn python_mar_decodes_and_matches_our_encoding() {
    let raw = bytes(MAR);
    let m = Message::decode(&raw).unwrap();
    assert_eq!(m.to_bytes().unwrap().as_ref(), raw.as_slice());
    let mar = MultimediaAuthRequest::from_message(&m).unwrap();
    assert_eq!(
        mar.sip_auth_data_item.scheme,
        Some(SipAuthScheme::DigestAkaV1Md5)
    );
    assert_eq!(mar.sip_number_auth_items, 1);
    assert_eq!(mar.server_name, "sip:scscf.ims.test");
    let ours = MultimediaAuthRequest {
        routing: routing(),
        ..MultimediaAuthRequest::new(
            "alice@ims.test",
            "sip:alice@ims.test",
            "sip:scscf.ims.test",
            SipAuthScheme::DigestAkaV1Md5,
            1,
        )
    };
    assert_eq!(
        ids(ours.to_message()).to_bytes().unwrap().as_ref(),
        raw.as_slice()
    );
}

#[test]
fn python_uaa_and_maa_decode_to_typed_answers() {
    let raw = bytes(UAA);
    let m = Message::decode(&raw).unwrap();
    assert_eq!(m.to_bytes().unwrap().as_ref(), raw.as_slice());
    let uaa = UserAuthorizationAnswer::from_message(&m).unwrap();
    assert_eq!(
        uaa.outcome,
        CxOutcome::Experimental(ExperimentalResultCode::FirstRegistration)
    );
    assert_eq!(uaa.routing.origin_host, "hss.py.ims.test");
    let caps = uaa.server_capabilities.unwrap();
    assert_eq!((caps.mandatory, caps.optional), (vec![1], vec![2, 3]));

    let raw = bytes(MAA);
    let m = Message::decode(&raw).unwrap();
    assert_eq!(m.to_bytes().unwrap().as_ref(), raw.as_slice());
    let maa = MultimediaAuthAnswer::from_message(&m).unwrap();
    assert_eq!(maa.outcome, CxOutcome::Success);
    let item = maa.sip_auth_data_items.first().unwrap();
    assert_eq!(
        hex::encode(item.authenticate.as_ref().unwrap()),
        "23553cbe9637a89d218ae64dae47bf3555f328b43577b9b94a9ffac354dfafb3"
    );
    assert_eq!(
        hex::encode(item.authorization.as_ref().unwrap()),
        "a54211d5e3ba50bf"
    );
    assert_eq!(
        hex::encode(item.confidentiality_key.as_ref().unwrap()),
        "b40ba9a3c58b2a05bbf0d987b21bf8cb"
    );
    assert_eq!(
        hex::encode(item.integrity_key.as_ref().unwrap()),
        "f769bcd751044604127672711c6d3441"
    );
}
