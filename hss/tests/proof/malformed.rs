//! Bad Diameter input gets the RFC 6733 answer, changes nothing, and the same
//! connection then serves a valid MAR.

use std::time::Duration;

use bytes::Bytes;
use ims_diameter::codec::{Avp, AvpFlags, AvpSet, Message};
use ims_diameter::dictionary as base;
use ims_diameter::transport::{connect, ClientConfig, LocalNode, PeerHandle};
use ims_hss_client::dictionary::{self as cx, SipAuthScheme, VENDOR_3GPP};
use ims_hss_client::messages::*;

use crate::harness::*;
use crate::util::temp_db;

fn valid_mar(impi: &str, impu: &str) -> Message {
    let mut r = MultimediaAuthRequest::new(impi, impu, SCSCF, SipAuthScheme::DigestAkaV1Md5, 1);
    r.routing = RequestRouting {
        session_id: format!("raw.ims.test;1;{}", rand::random::<u32>()),
        origin_host: "raw.ims.test".into(),
        origin_realm: REALM.into(),
        destination_host: None,
        destination_realm: REALM.into(),
    };
    r.to_message()
}

async fn result_of(peer: &PeerHandle, m: Message) -> (u32, bool, Message) {
    let a = peer.request(m).await.expect("an answer, connection alive");
    let rc = a
        .get_u32(&base::RESULT_CODE)
        .expect("decodable")
        .unwrap_or(0);
    let e = a.header.flags.0 & 0x20 != 0;
    (rc, e, a)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_rfc6733_errors_and_connection_survives() {
    let hss = start(&temp_db("malformed")).await;
    let s = hss
        .store()
        .create(subscriber("001010000000501"))
        .await
        .expect("create");
    let sqn_before = hss.store().get(&s.imsi).await.expect("get").expect("s").sqn;
    let mut cfg = ClientConfig::new(hss.diameter_addr().to_string());
    cfg.request_timeout = Duration::from_secs(5);
    let peer = connect(
        cfg,
        LocalNode::cx("raw.ims.test", REALM, "127.0.0.1".parse().expect("ip")),
        None,
    );
    for _ in 0..100 {
        if peer.is_usable() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(peer.is_usable(), "CER/CEA");
    let (impi, impu) = (s.impi.as_str(), s.impus[0].uri.as_str());

    // SIP-Number-Auth-Items (Unsigned32) with 2 bytes of data → 5014 INVALID_AVP_LENGTH.
    let mut m = valid_mar(impi, impu);
    for a in m.avps.iter_mut() {
        if a.code == cx::SIP_NUMBER_AUTH_ITEMS.code {
            a.data = Bytes::from_static(&[0, 1]);
        }
    }
    let (rc, _, a) = result_of(&peer, m).await;
    assert_eq!(rc, 5014, "{a:?}");
    assert!(
        a.get_grouped(&base::FAILED_AVP).expect("ok").is_some(),
        "Failed-AVP present"
    );

    // Missing User-Name → 5005 MISSING_AVP.
    let mut m = valid_mar(impi, impu);
    m.avps.retain(|a| a.code != base::USER_NAME.code);
    assert_eq!(result_of(&peer, m).await.0, 5005);

    // Unknown AVP with the M bit → 5001 AVP_UNSUPPORTED; without M it is ignored.
    let mut m = valid_mar(impi, impu);
    m.push(Avp::raw(
        9999,
        AvpFlags::VM,
        Some(VENDOR_3GPP),
        Bytes::from_static(b"x"),
    ));
    assert_eq!(result_of(&peer, m).await.0, 5001);
    let mut m = valid_mar(impi, impu);
    m.push(Avp::raw(
        9999,
        AvpFlags::V,
        Some(VENDOR_3GPP),
        Bytes::from_static(b"x"),
    ));
    assert_eq!(
        result_of(&peer, m).await.0,
        2001,
        "non-mandatory unknown AVP ignored"
    );

    // Invalid UTF-8 in User-Name (UTF8String) → 5004 INVALID_AVP_VALUE.
    let mut m = valid_mar(impi, impu);
    for a in m.avps.iter_mut() {
        if a.code == base::USER_NAME.code {
            a.data = Bytes::from_static(&[0xff, 0xfe, 0x41]);
        }
    }
    let (rc, _, _) = result_of(&peer, m).await;
    assert!(rc == 5004 || rc == 5014, "invalid UTF-8 → {rc}");

    // Another application → 3007 with the E bit; unknown command → 3001 with E.
    let mut m = valid_mar(impi, impu);
    m.header.application_id = 16_777_217;
    let (rc, e, _) = result_of(&peer, m).await;
    assert_eq!((rc, e), (3007, true));
    let mut m = valid_mar(impi, impu);
    m.header.command_code = 399;
    let (rc, e, _) = result_of(&peer, m).await;
    assert_eq!((rc, e), (3001, true));

    // Nothing changed; the same connection serves a valid MAR.
    let (rc, _, a) = result_of(&peer, valid_mar(impi, impu)).await;
    assert_eq!(rc, 2001, "{a:?}");
    let maa = MultimediaAuthAnswer::from_message(&a).expect("MAA");
    assert_eq!(maa.sip_auth_data_items.len(), 1);
    let after = hss.store().get(&s.imsi).await.expect("get").expect("s").sqn;
    assert!(after >= sqn_before);
    assert_eq!(hss.server().peers().len(), 1, "still connected");
    peer.close().await;
    hss.shutdown().await;
}
