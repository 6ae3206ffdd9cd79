//! Service-layer tests: every Cx outcome, on a temporary SQLite store, no sockets.

use super::*;
use crate::milenage::{build_auts, check_autn};
use crate::store::model::{Password, SubscriberUpdate};
use crate::store::tests::{alice, temp_db};

const SCSCF: &str = "sip:scscf.ims.test:6060";

async fn setup(name: &str) -> (HssService, Subscriber) {
    let store = Store::open(&temp_db(name)).await.expect("open");
    let s = store
        .create(alice("001010000000100"))
        .await
        .expect("create");
    (HssService::new(store, ServerPolicy::single(SCSCF)), s)
}

fn uar(s: &Subscriber, t: AuthorizationType) -> UarInput {
    UarInput {
        impi: s.impi.clone(),
        impu: s.impus[0].uri.clone(),
        authorization_type: t,
    }
}

fn sar(s: &Subscriber, t: AssignmentType) -> SarInput {
    SarInput {
        impi: Some(s.impi.clone()),
        impus: vec![s.impus[0].uri.clone()],
        server_name: SCSCF.into(),
        origin_host: "scscf.ims.test".into(),
        assignment_type: t,
        user_data_already_available: false,
    }
}

fn mar(s: &Subscriber, scheme: AuthScheme, n: u32) -> MarInput {
    MarInput {
        impi: s.impi.clone(),
        impu: s.impus[0].uri.clone(),
        number_items: n,
        scheme,
        resync: None,
        server_name: Some(SCSCF.into()),
    }
}

#[tokio::test]
async fn uar_first_then_subsequent_and_errors() {
    let (svc, s) = setup("uar").await;
    assert_eq!(
        svc.user_authorization(&uar(&s, AuthorizationType::Registration))
            .await,
        Ok(UarOutcome::FirstRegistration(ServerSelection::Name(
            SCSCF.into()
        )))
    );
    assert_eq!(
        svc.user_authorization(&uar(&s, AuthorizationType::DeRegistration))
            .await,
        Err(CxError::IdentityNotRegistered)
    );
    svc.server_assignment(&sar(&s, AssignmentType::Registration))
        .await
        .expect("sar");
    assert_eq!(
        svc.user_authorization(&uar(&s, AuthorizationType::Registration))
            .await,
        Ok(UarOutcome::SubsequentRegistration(SCSCF.into()))
    );
    assert_eq!(
        svc.user_authorization(&uar(&s, AuthorizationType::DeRegistration))
            .await,
        Ok(UarOutcome::Success(ServerSelection::Name(SCSCF.into())))
    );
    let mut unknown = uar(&s, AuthorizationType::Registration);
    unknown.impu = "sip:nobody@ims.test".into();
    assert_eq!(
        svc.user_authorization(&unknown).await,
        Err(CxError::UserUnknown)
    );
    let mut mismatch = uar(&s, AuthorizationType::Registration);
    mismatch.impi = "other@ims.test".into();
    assert_eq!(
        svc.user_authorization(&mismatch).await,
        Err(CxError::IdentitiesDontMatch)
    );
}

#[tokio::test]
async fn uar_with_capabilities_policy() {
    let store = Store::open(&temp_db("caps")).await.expect("open");
    let s = store
        .create(alice("001010000000101"))
        .await
        .expect("create");
    let caps = Capabilities {
        mandatory: vec![1],
        optional: vec![2, 3],
        server_names: vec![],
    };
    let svc = HssService::new(
        store,
        ServerPolicy {
            scscf_pool: vec![],
            capabilities: Some(caps.clone()),
        },
    );
    assert_eq!(
        svc.user_authorization(&uar(&s, AuthorizationType::Registration))
            .await,
        Ok(UarOutcome::FirstRegistration(
            ServerSelection::Capabilities(caps)
        ))
    );
}

#[tokio::test]
async fn mar_aka_vectors_verify_and_sqns_increase() {
    let (svc, s) = setup("mar").await;
    let keys = s.aka.clone().expect("aka");
    let MarOutcome::Aka(items) = svc
        .multimedia_auth(&mar(&s, AuthScheme::AkaV1Md5, 3))
        .await
        .expect("mar")
    else {
        panic!("expected AKA");
    };
    assert_eq!(items.len(), 3);
    let mut last = 0;
    for (n, it) in items.iter().enumerate() {
        assert_eq!(it.item_number, n as u32 + 1);
        let rand: [u8; 16] = it.sip_authenticate[..16].try_into().expect("rand");
        let autn: [u8; 16] = it.sip_authenticate[16..].try_into().expect("autn");
        let ue = check_autn(&keys.k, &keys.opc, &rand, &autn).expect("MAC-A verifies");
        assert_eq!(ue.res, it.sip_authorization);
        assert_eq!(ue.ck, it.ck);
        assert_eq!(ue.ik, it.ik);
        assert_eq!(ue.amf, [0x80, 0]);
        assert!(ue.sqn > last && ue.sqn > 0x1000);
        last = ue.sqn;
    }
    // Unknown scheme → the HSS picks AKA.
    assert!(matches!(
        svc.multimedia_auth(&mar(&s, AuthScheme::Unknown, 1)).await,
        Ok(MarOutcome::Aka(_))
    ));
    // Digest for a subscriber without password → 5006; exotic scheme → 5006.
    assert_eq!(
        svc.multimedia_auth(&mar(&s, AuthScheme::SipDigest, 1))
            .await
            .unwrap_err(),
        CxError::AuthSchemeNotSupported
    );
    assert_eq!(
        svc.multimedia_auth(&mar(&s, AuthScheme::Other("NASS-Bundled".into()), 1))
            .await
            .unwrap_err(),
        CxError::AuthSchemeNotSupported
    );
    let mut unknown = mar(&s, AuthScheme::AkaV1Md5, 1);
    unknown.impi = "nobody@ims.test".into();
    assert_eq!(
        svc.multimedia_auth(&unknown).await.unwrap_err(),
        CxError::UserUnknown
    );
}

#[tokio::test]
async fn mar_resync_with_auts() {
    let (svc, s) = setup("resync").await;
    let keys = s.aka.clone().expect("aka");
    let rand = [7u8; 16];
    let sqn_ms = 0x0000_7777_0000;
    let auts = build_auts(&keys.k, &keys.opc, &rand, sqn_ms);
    let mut req = mar(&s, AuthScheme::AkaV1Md5, 1);
    req.resync = Some([rand.as_slice(), auts.as_slice()].concat());
    let MarOutcome::Aka(items) = svc.multimedia_auth(&req).await.expect("mar") else {
        panic!("expected AKA");
    };
    let autn: [u8; 16] = items[0].sip_authenticate[16..].try_into().expect("autn");
    let r: [u8; 16] = items[0].sip_authenticate[..16].try_into().expect("rand");
    let ue = check_autn(&keys.k, &keys.opc, &r, &autn).expect("verifies");
    assert_eq!(ue.sqn, sqn_ms + 32);
    // Tampered AUTS → rejected, SQN unchanged.
    let mut bad = auts;
    bad[10] ^= 0xff;
    req.resync = Some([rand.as_slice(), bad.as_slice()].concat());
    assert_eq!(
        svc.multimedia_auth(&req).await.unwrap_err(),
        CxError::AuthenticationRejected
    );
    req.resync = Some(vec![1, 2, 3]);
    assert_eq!(
        svc.multimedia_auth(&req).await.unwrap_err(),
        CxError::AuthenticationRejected
    );
}

#[tokio::test]
async fn mar_sip_digest_ha1() {
    let (svc, s) = setup("digest").await;
    svc.store()
        .update(
            &s.imsi,
            SubscriberUpdate {
                password: Some(Some(Password::new("secret"))),
                aka: Some(None),
                ..Default::default()
            },
        )
        .await
        .expect("update");
    let MarOutcome::Digest(d) = svc
        .multimedia_auth(&mar(&s, AuthScheme::Unknown, 1))
        .await
        .expect("mar")
    else {
        panic!("expected digest");
    };
    let realm = s.impi.split_once('@').expect("realm").1;
    assert_eq!(d.realm, realm);
    let expect = format!(
        "{:x}",
        Md5::digest(format!("{}:{}:secret", s.impi, realm).as_bytes())
    );
    assert_eq!(d.ha1, expect);
    assert_eq!(
        svc.multimedia_auth(&mar(&s, AuthScheme::AkaV1Md5, 1))
            .await
            .unwrap_err(),
        CxError::AuthSchemeNotSupported
    );
}

#[tokio::test]
async fn sar_every_type() {
    let (svc, s) = setup("sar").await;
    let get = || async { svc.store().get(&s.imsi).await.expect("get").expect("s") };
    use AssignmentType::*;
    for t in [Registration, ReRegistration, UnregisteredUser] {
        let out = svc.server_assignment(&sar(&s, t)).await.expect("sar");
        assert!(out
            .user_data
            .as_deref()
            .expect("ud")
            .contains("<PrivateID>"));
        assert_eq!(get().await.scscf_name.as_deref(), Some(SCSCF));
    }
    let mut already = sar(&s, ReRegistration);
    already.user_data_already_available = true;
    assert_eq!(
        svc.server_assignment(&already)
            .await
            .expect("sar")
            .user_data,
        None
    );
    for t in [
        TimeoutDeregistration,
        UserDeregistration,
        AdministrativeDeregistration,
    ] {
        svc.server_assignment(&sar(&s, Registration))
            .await
            .expect("reg");
        let out = svc.server_assignment(&sar(&s, t)).await.expect("sar");
        assert_eq!(out.user_data, None);
        assert_eq!(get().await.scscf_name, None, "{t:?} clears");
    }
    for t in [TimeoutDeregStoreServerName, UserDeregStoreServerName] {
        svc.server_assignment(&sar(&s, Registration))
            .await
            .expect("reg");
        svc.server_assignment(&sar(&s, t)).await.expect("sar");
        assert_eq!(
            get().await.scscf_name.as_deref(),
            Some(SCSCF),
            "{t:?} keeps"
        );
    }
    // A de-registration from another S-CSCF does not clear ours.
    let mut other = sar(&s, UserDeregistration);
    other.server_name = "sip:other.ims.test".into();
    svc.server_assignment(&other).await.expect("sar");
    assert_eq!(get().await.scscf_name.as_deref(), Some(SCSCF));
    assert_eq!(
        svc.server_assignment(&sar(&s, Other(12)))
            .await
            .unwrap_err(),
        CxError::InAssignmentType
    );
    let mut unknown = sar(&s, Registration);
    unknown.impus = vec!["sip:nobody@ims.test".into()];
    assert_eq!(
        svc.server_assignment(&unknown).await.unwrap_err(),
        CxError::UserUnknown
    );
}

#[tokio::test]
async fn lir_registered_and_unregistered() {
    let (svc, s) = setup("lir").await;
    let req = LirInput {
        impu: s.impus[1].uri.clone(),
    };
    assert_eq!(
        svc.location_info(&req).await,
        Ok(LirOutcome::Unregistered(ServerSelection::Name(
            SCSCF.into()
        )))
    );
    svc.server_assignment(&sar(&s, AssignmentType::Registration))
        .await
        .expect("sar");
    assert_eq!(
        svc.location_info(&req).await,
        Ok(LirOutcome::Registered(SCSCF.into()))
    );
    assert_eq!(
        svc.location_info(&LirInput {
            impu: "tel:+999".into()
        })
        .await,
        Err(CxError::UserUnknown)
    );
}
