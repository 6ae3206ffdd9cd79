//! The SQN invariant: 1,000 concurrent MARs for one subscriber over four connections
//! carry 1,000 distinct SQNs (decoded from AUTN with the test's own Milenage), and
//! after a restart of the HSS on the same database every new SQN is higher.

use std::collections::HashSet;
use std::time::Duration;

use ims_hss::milenage::check_autn;
use ims_hss_client::dictionary::SipAuthScheme;
use ims_hss_client::messages::*;

use crate::harness::*;
use crate::util::temp_db;

async fn sqns_of(
    cx: &ims_hss_client::CxClient,
    impi: &str,
    impu: &str,
    k: &ims_hss::milenage::K,
    opc: &ims_hss::milenage::Opc,
) -> u64 {
    let maa = cx
        .mar(MultimediaAuthRequest::new(
            impi,
            impu,
            SCSCF,
            SipAuthScheme::DigestAkaV1Md5,
            1,
        ))
        .await
        .expect("MAA");
    assert_eq!(maa.outcome, CxOutcome::Success);
    let auth = maa.sip_auth_data_items[0]
        .authenticate
        .as_ref()
        .expect("auth");
    let rand: [u8; 16] = auth[..16].try_into().expect("rand");
    let autn: [u8; 16] = auth[16..].try_into().expect("autn");
    check_autn(k, opc, &rand, &autn).expect("MAC-A").sqn
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_concurrent_mars_distinct_sqns_and_monotonic_across_restart() {
    let db = temp_db("sqn");
    let hss = start(&db).await;
    let s = hss
        .store()
        .create(subscriber("001010000000301"))
        .await
        .expect("create");
    let (k, opc) = keys(&s);
    let mut clients = Vec::new();
    for i in 0..4 {
        clients.push(
            client(&hss, &format!("scscf{i}.ims.test"), Duration::from_secs(30))
                .await
                .0,
        );
    }
    let mut tasks = Vec::new();
    for n in 0..1000 {
        let cx = clients[n % 4].clone();
        let (impi, impu, k, opc) = (
            s.impi.clone(),
            s.impus[0].uri.clone(),
            k.clone(),
            opc.clone(),
        );
        tasks.push(tokio::spawn(async move {
            sqns_of(&cx, &impi, &impu, &k, &opc).await
        }));
    }
    let mut seen = HashSet::new();
    for t in tasks {
        let sqn = t.await.expect("task");
        assert!(seen.insert(sqn), "SQN {sqn} was handed out twice");
    }
    assert_eq!(seen.len(), 1000);
    let max_before = seen.iter().copied().max().expect("max");
    for c in &clients {
        c.close().await;
    }
    hss.shutdown().await;

    // Restart on the same database.
    let hss = start(&db).await;
    let (cx, _) = client(&hss, "scscf0.ims.test", Duration::from_secs(30)).await;
    for _ in 0..5 {
        let sqn = sqns_of(&cx, &s.impi, &s.impus[0].uri, &k, &opc).await;
        assert!(
            sqn > max_before,
            "after restart {sqn:#x} must exceed {max_before:#x}"
        );
        assert!(seen.insert(sqn));
    }
    cx.close().await;
    hss.shutdown().await;
}
