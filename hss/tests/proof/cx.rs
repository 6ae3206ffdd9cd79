//! `ims-hss-client`'s CxClient against the running HSS over real TCP: CER, UAR, MAR
//! (AKA checked with our Milenage from the subscriber's keys, resync with an AUTS
//! built here, SIP Digest), SAR (every type), LIR, DWR, DPR, RTR/PPR to the client.

use std::time::Duration;

use ims_diameter::transport::PeerStatus;
use ims_hss::milenage::{build_auts, check_autn};
use ims_hss_client::dictionary::{
    ExperimentalResultCode as E, ServerAssignmentType as Sat, SipAuthScheme, UserAuthorizationType,
};
use ims_hss_client::messages::*;
use md5::{Digest, Md5};

use crate::harness::*;
use crate::util::{http, temp_db};

fn uar(
    s: &ims_hss::store::model::Subscriber,
    t: Option<UserAuthorizationType>,
) -> UserAuthorizationRequest {
    UserAuthorizationRequest {
        user_name: s.impi.clone(),
        public_identity: s.impus[0].uri.clone(),
        visited_network_identifier: REALM.into(),
        user_authorization_type: t,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cx_procedures_over_tcp() {
    let hss = start(&temp_db("cx")).await;
    let alice = hss
        .store()
        .create(subscriber("001010000000201"))
        .await
        .expect("alice");
    let bob = hss
        .store()
        .create(digest_subscriber("001010000000202", "bobsecret"))
        .await
        .expect("bob");
    // Short Tw so that several DWR/DWA rounds happen during the test.
    let (cx, mut pushed) = client(&hss, SCSCF_HOST, Duration::from_millis(400)).await;
    assert_eq!(
        hss.server().peers().len(),
        1,
        "CER/CEA done, peer known by Origin-Host"
    );
    assert_eq!(hss.server().peers()[0].origin_host(), SCSCF_HOST);

    // UAR: first registration with a Server-Name from the pool.
    let a = cx.uar(uar(&alice, None)).await.expect("UAA");
    assert_eq!(a.outcome, CxOutcome::Experimental(E::FirstRegistration));
    assert_eq!(a.server_name.as_deref(), Some(SCSCF));
    // De-registration UAR before any assignment → 5003.
    let a = cx
        .uar(uar(&alice, Some(UserAuthorizationType::DeRegistration)))
        .await
        .expect("UAA");
    assert_eq!(a.outcome, CxOutcome::Experimental(E::IdentityNotRegistered));
    // Unknown user and IMPI/IMPU mismatch.
    let mut unknown = uar(&alice, None);
    unknown.public_identity = "sip:nobody@ims.test".into();
    assert_eq!(
        cx.uar(unknown).await.expect("UAA").outcome,
        CxOutcome::Experimental(E::UserUnknown)
    );
    let mut mismatch = uar(&alice, None);
    mismatch.user_name = bob.impi.clone();
    assert_eq!(
        cx.uar(mismatch).await.expect("UAA").outcome,
        CxOutcome::Experimental(E::IdentitiesDontMatch)
    );

    // MAR: 3 AKA vectors, each verified as a USIM would.
    let (k, opc) = keys(&alice);
    let maa = cx
        .mar(MultimediaAuthRequest::new(
            &alice.impi,
            &alice.impus[0].uri,
            SCSCF,
            SipAuthScheme::DigestAkaV1Md5,
            3,
        ))
        .await
        .expect("MAA");
    assert_eq!(maa.outcome, CxOutcome::Success);
    assert_eq!(maa.sip_auth_data_items.len(), 3);
    assert_eq!(maa.sip_number_auth_items, Some(3));
    let mut last_sqn = 0;
    for item in &maa.sip_auth_data_items {
        assert_eq!(item.scheme, Some(SipAuthScheme::DigestAkaV1Md5));
        let auth = item.authenticate.as_ref().expect("SIP-Authenticate");
        assert_eq!(auth.len(), 32);
        let rand: [u8; 16] = auth[..16].try_into().expect("rand");
        let autn: [u8; 16] = auth[16..].try_into().expect("autn");
        let ue = check_autn(&k, &opc, &rand, &autn).expect("MAC-A verifies");
        assert_eq!(item.authorization.as_deref(), Some(&ue.res[..]), "XRES");
        assert_eq!(
            item.confidentiality_key.as_deref(),
            Some(&ue.ck.expose()[..])
        );
        assert_eq!(item.integrity_key.as_deref(), Some(&ue.ik.expose()[..]));
        assert!(ue.sqn > last_sqn);
        last_sqn = ue.sqn;
    }

    // Resync: the USIM is far ahead; AUTS built here; the next vector carries SQN_MS+32.
    let rand = [0x5au8; 16];
    let sqn_ms = 0x0000_4000_0000;
    let auts = build_auts(&k, &opc, &rand, sqn_ms);
    let maa = cx
        .mar(
            MultimediaAuthRequest::new(
                &alice.impi,
                &alice.impus[0].uri,
                SCSCF,
                SipAuthScheme::DigestAkaV1Md5,
                1,
            )
            .with_resync(&rand, &auts),
        )
        .await
        .expect("MAA");
    assert_eq!(maa.outcome, CxOutcome::Success);
    let auth = maa.sip_auth_data_items[0]
        .authenticate
        .as_ref()
        .expect("auth");
    let ue = check_autn(
        &k,
        &opc,
        &auth[..16].try_into().expect("rand"),
        &auth[16..].try_into().expect("autn"),
    )
    .expect("verifies");
    assert_eq!(ue.sqn, sqn_ms + 32);
    // A tampered AUTS is refused (4001) and changes nothing.
    let mut bad = auts;
    bad[13] ^= 1;
    let maa = cx
        .mar(
            MultimediaAuthRequest::new(
                &alice.impi,
                &alice.impus[0].uri,
                SCSCF,
                SipAuthScheme::DigestAkaV1Md5,
                1,
            )
            .with_resync(&rand, &bad),
        )
        .await
        .expect("MAA");
    assert!(!maa.outcome.is_success(), "{:?}", maa.outcome);
    assert!(maa.sip_auth_data_items.is_empty());

    // SIP Digest for the password subscriber.
    let maa = cx
        .mar(MultimediaAuthRequest::new(
            &bob.impi,
            &bob.impus[0].uri,
            SCSCF,
            SipAuthScheme::SipDigest,
            1,
        ))
        .await
        .expect("MAA");
    assert_eq!(maa.outcome, CxOutcome::Success);
    let d = maa.sip_auth_data_items[0]
        .digest
        .as_ref()
        .expect("SIP-Digest-Authenticate");
    let ha1 = format!(
        "{:x}",
        Md5::digest(format!("{}:{}:bobsecret", bob.impi, d.realm))
    );
    assert_eq!(d.ha1, ha1);
    // AKA for the password-only subscriber → 5006; unknown IMPI → 5001.
    let maa = cx
        .mar(MultimediaAuthRequest::new(
            &bob.impi,
            &bob.impus[0].uri,
            SCSCF,
            SipAuthScheme::DigestAkaV1Md5,
            1,
        ))
        .await
        .expect("MAA");
    assert_eq!(
        maa.outcome,
        CxOutcome::Experimental(E::AuthSchemeNotSupported)
    );
    let maa = cx
        .mar(MultimediaAuthRequest::new(
            "nobody@ims.test",
            "sip:nobody@ims.test",
            SCSCF,
            SipAuthScheme::DigestAkaV1Md5,
            1,
        ))
        .await
        .expect("MAA");
    assert_eq!(maa.outcome, CxOutcome::Experimental(E::UserUnknown));

    // SAR REGISTRATION stores the S-CSCF and returns the profile.
    let saa = cx
        .sar(ServerAssignmentRequest::new(
            Some(&alice.impi),
            &alice.impus[0].uri,
            SCSCF,
            Sat::Registration,
        ))
        .await
        .expect("SAA");
    assert_eq!(saa.outcome, CxOutcome::Success);
    let ud = saa.user_data.expect("User-Data");
    assert!(
        ud.contains(&format!("<PrivateID>{}</PrivateID>", alice.impi)),
        "{ud}"
    );
    assert!(
        ud.contains(&format!("<Identity>{}</Identity>", alice.impus[1].uri)),
        "implicit set"
    );
    let a = cx.uar(uar(&alice, None)).await.expect("UAA");
    assert_eq!(
        a.outcome,
        CxOutcome::Experimental(E::SubsequentRegistration)
    );
    assert_eq!(a.server_name.as_deref(), Some(SCSCF));
    let lia = cx
        .lir(LocationInfoRequest {
            public_identity: alice.impus[1].uri.clone(),
            ..Default::default()
        })
        .await
        .expect("LIA");
    assert_eq!(
        (lia.outcome, lia.server_name.as_deref()),
        (CxOutcome::Success, Some(SCSCF))
    );

    // RE_REGISTRATION with User-Data-Already-Available → no User-Data.
    let mut rereg = ServerAssignmentRequest::new(
        Some(&alice.impi),
        &alice.impus[0].uri,
        SCSCF,
        Sat::ReRegistration,
    );
    rereg.user_data_already_available = true;
    let saa = cx.sar(rereg).await.expect("SAA");
    assert_eq!((saa.outcome, saa.user_data), (CxOutcome::Success, None));

    // Every de-registration type clears the assignment; *_STORE_SERVER_NAME keep it.
    for (t, keeps) in [
        (Sat::TimeoutDeregistration, false),
        (Sat::UserDeregistration, false),
        (Sat::AdministrativeDeregistration, false),
        (Sat::TimeoutDeregistrationStoreServerName, true),
        (Sat::UserDeregistrationStoreServerName, true),
    ] {
        let saa = cx
            .sar(ServerAssignmentRequest::new(
                Some(&alice.impi),
                &alice.impus[0].uri,
                SCSCF,
                Sat::Registration,
            ))
            .await
            .expect("SAA");
        assert_eq!(saa.outcome, CxOutcome::Success);
        let saa = cx
            .sar(ServerAssignmentRequest::new(
                Some(&alice.impi),
                &alice.impus[0].uri,
                SCSCF,
                t,
            ))
            .await
            .expect("SAA");
        assert_eq!(saa.outcome, CxOutcome::Success, "{t:?}");
        let stored = hss
            .store()
            .get(&alice.imsi)
            .await
            .expect("get")
            .expect("s")
            .scscf_name;
        assert_eq!(stored.is_some(), keeps, "{t:?}");
    }
    // UNREGISTERED_USER assigns too; LIR for an unassigned user → 2003 with a pool name.
    let saa = cx
        .sar(ServerAssignmentRequest::new(
            Some(&alice.impi),
            &alice.impus[0].uri,
            SCSCF,
            Sat::UserDeregistration,
        ))
        .await
        .expect("SAA");
    assert_eq!(saa.outcome, CxOutcome::Success);
    let lia = cx
        .lir(LocationInfoRequest {
            public_identity: alice.impus[0].uri.clone(),
            ..Default::default()
        })
        .await
        .expect("LIA");
    assert_eq!(lia.outcome, CxOutcome::Experimental(E::UnregisteredService));
    assert_eq!(lia.server_name.as_deref(), Some(SCSCF));
    let saa = cx
        .sar(ServerAssignmentRequest::new(
            None,
            &alice.impus[0].uri,
            SCSCF,
            Sat::UnregisteredUser,
        ))
        .await
        .expect("SAA");
    assert_eq!(saa.outcome, CxOutcome::Success);
    assert!(saa.user_data.is_some());
    let saa = cx
        .sar(ServerAssignmentRequest::new(
            Some(&alice.impi),
            &alice.impus[0].uri,
            SCSCF,
            Sat::PgwUpdate,
        ))
        .await
        .expect("SAA");
    assert_eq!(saa.outcome, CxOutcome::Experimental(E::InAssignmentType));

    // RTR from the REST API to the connected S-CSCF; on RTA success the assignment goes.
    let http_addr = hss.http_addr().expect("http");
    let (st, v) = http(
        http_addr,
        "POST",
        &format!("/api/v1/subscribers/{}/deregister", alice.imsi),
        None,
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["result_code"], 2001);
    match tokio::time::timeout(Duration::from_secs(5), pushed.recv()).await {
        Ok(Some(Pushed::Rtr(rtr))) => {
            assert_eq!(rtr.user_name, alice.impi);
            assert!(rtr.public_identities.contains(&alice.impus[0].uri));
        }
        other => panic!("expected RTR, got {other:?}"),
    }
    assert!(hss
        .store()
        .get(&alice.imsi)
        .await
        .expect("get")
        .expect("s")
        .scscf_name
        .is_none());
    // Not registered any more → 409.
    let (st, _) = http(
        http_addr,
        "POST",
        &format!("/api/v1/subscribers/{}/deregister", alice.imsi),
        None,
    )
    .await;
    assert_eq!(st, 409);

    // PPR: a profile change of a registered user is pushed; also on demand.
    cx.sar(ServerAssignmentRequest::new(
        Some(&alice.impi),
        &alice.impus[0].uri,
        SCSCF,
        Sat::Registration,
    ))
    .await
    .expect("SAA");
    let ifc = "<InitialFilterCriteria><Priority>1</Priority></InitialFilterCriteria>";
    let body = serde_json::json!({ "ifc_xml": ifc }).to_string();
    let (st, v) = http(
        http_addr,
        "PATCH",
        &format!("/api/v1/subscribers/{}", alice.imsi),
        Some(&body),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    match tokio::time::timeout(Duration::from_secs(5), pushed.recv()).await {
        Ok(Some(Pushed::Ppr(ppr))) => {
            assert_eq!(ppr.user_name, alice.impi);
            assert!(ppr.user_data.as_deref().is_some_and(|u| u.contains(ifc)));
        }
        other => panic!("expected PPR, got {other:?}"),
    }
    let (st, v) = http(
        http_addr,
        "POST",
        &format!("/api/v1/subscribers/{}/push-profile", alice.imsi),
        None,
    )
    .await;
    assert_eq!((st, v["result_code"].as_u64()), (200, Some(2001)), "{v}");
    assert!(matches!(
        tokio::time::timeout(Duration::from_secs(5), pushed.recv()).await,
        Ok(Some(Pushed::Ppr(_)))
    ));

    // DWR/DWA: after several watchdog intervals the connection is still OKAY.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(cx.peers()[0].status(), PeerStatus::Open);
    let a = cx
        .uar(uar(&alice, None))
        .await
        .expect("UAA after watchdog rounds");
    assert!(a.outcome.is_success());

    // DPR/DPA: the client leaves, the HSS forgets the peer.
    cx.close().await;
    let mut gone = false;
    for _ in 0..50 {
        if hss.server().peers().is_empty() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gone, "peer removed after DPR/DPA");
    hss.shutdown().await;
}
