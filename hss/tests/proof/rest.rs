//! REST provisioning API over real TCP: CRUD, validation (422 with the field), 409, 404,
//! keys never returned, OpenAPI document.

use ims_hss::api::{router, ApiState};
use ims_hss::store::Store;
use serde_json::json;

use crate::util::{http, temp_db, K, OP, OPC};

async fn serve(db: &str) -> std::net::SocketAddr {
    let store = Store::open(db).await.expect("open store");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = router(ApiState { store, push: None });
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

#[tokio::test]
async fn rest_crud_validation_and_secrecy() {
    let addr = serve(&temp_db("rest")).await;
    let body = json!({
        "imsi": "001010000000001",
        "impus": ["sip:alice@ims.mnc001.mcc001.3gppnetwork.org", "tel:+15550001"],
        "k": K, "op": OP, "amf": "8000", "sqn": "000000000020"
    })
    .to_string();
    let (st, v) = http(addr, "POST", "/api/v1/subscribers", Some(&body)).await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(
        v["impi"],
        "001010000000001@ims.mnc001.mcc001.3gppnetwork.org"
    );
    assert_eq!(v["has_k"], true);
    assert_eq!(v["key_type"], "op");
    let text = v.to_string().to_ascii_lowercase();
    for secret in [K, OP, OPC] {
        assert!(!text.contains(secret), "secret leaked in {text}");
    }
    assert!(v.get("k").is_none() && v.get("opc").is_none());

    // Duplicate IMSI → 409; duplicate IMPI under another IMSI → 409 naming impi.
    let (st, v) = http(addr, "POST", "/api/v1/subscribers", Some(&body)).await;
    assert_eq!(st, 409, "{v}");
    assert_eq!(v["field"], "imsi");
    let dup_impi = json!({"imsi": "001010000000002", "impi": "001010000000001@ims.mnc001.mcc001.3gppnetwork.org",
        "impus": ["sip:bob@ims.test"], "k": K, "opc": OPC}).to_string();
    let (st, v) = http(addr, "POST", "/api/v1/subscribers", Some(&dup_impi)).await;
    assert_eq!((st, v["field"].as_str()), (409, Some("impi")), "{v}");

    // Bad K / OPc / IMPU → 422 naming the field; nothing created.
    for (field, bad) in [
        (
            "k",
            json!({"imsi": "001010000000003", "impus": ["sip:c@ims.test"], "k": "1234", "op": OP}),
        ),
        (
            "k",
            json!({"imsi": "001010000000003", "impus": ["sip:c@ims.test"], "k": "zz5b5ce8b199b49faa5f0a2ee238a6bc", "op": OP}),
        ),
        (
            "opc",
            json!({"imsi": "001010000000003", "impus": ["sip:c@ims.test"], "k": K, "opc": "00"}),
        ),
        (
            "impu",
            json!({"imsi": "001010000000003", "impus": ["mailto:c@ims.test"], "k": K, "op": OP}),
        ),
        (
            "imsi",
            json!({"imsi": "12ab", "impus": ["sip:c@ims.test"], "k": K, "op": OP}),
        ),
    ] {
        let (st, v) = http(addr, "POST", "/api/v1/subscribers", Some(&bad.to_string())).await;
        assert_eq!(st, 422, "{bad} → {v}");
        assert_eq!(v["field"], field, "{v}");
        assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
    let (st, v) = http(addr, "GET", "/api/v1/subscribers", None).await;
    assert_eq!(st, 200);
    assert_eq!(v.as_array().map(|a| a.len()), Some(1), "{v}");

    // Get by IMSI and by IMPI.
    let (st, v) = http(addr, "GET", "/api/v1/subscribers/001010000000001", None).await;
    assert_eq!((st, v["imsi"].as_str()), (200, Some("001010000000001")));
    let (st, _) = http(
        addr,
        "GET",
        "/api/v1/subscribers/001010000000001@ims.mnc001.mcc001.3gppnetwork.org",
        None,
    )
    .await;
    assert_eq!(st, 200);

    // PATCH: new AMF and password; PUT: replace IMPUs and switch to OPc.
    let (st, v) = http(
        addr,
        "PATCH",
        "/api/v1/subscribers/001010000000001",
        Some(&json!({"amf": "9001", "password": "pw"}).to_string()),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        (v["amf"].as_str(), v["has_password"].as_bool()),
        (Some("9001"), Some(true))
    );
    assert!(v.get("password").is_none());
    let (st, v) = http(
        addr,
        "PATCH",
        "/api/v1/subscribers/001010000000001",
        Some(&json!({"k": "abc", "opc": OPC}).to_string()),
    )
    .await;
    assert_eq!((st, v["field"].as_str()), (422, Some("k")), "{v}");
    let put = json!({"impus": ["sip:alice2@ims.test"], "k": K, "opc": OPC}).to_string();
    let (st, v) = http(
        addr,
        "PUT",
        "/api/v1/subscribers/001010000000001",
        Some(&put),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["key_type"], "opc");
    assert_eq!(v["impus"][0]["uri"], "sip:alice2@ims.test");
    assert_eq!(v["has_password"], false, "PUT replaces everything");

    // 404s and delete.
    let (st, _) = http(addr, "GET", "/api/v1/subscribers/999999999999999", None).await;
    assert_eq!(st, 404);
    let (st, _) = http(addr, "DELETE", "/api/v1/subscribers/001010000000001", None).await;
    assert_eq!(st, 204);
    let (st, _) = http(addr, "DELETE", "/api/v1/subscribers/001010000000001", None).await;
    assert_eq!(st, 404);
    // Deregister without a Diameter server in this process.
    let (st, _) = http(
        addr,
        "POST",
        "/api/v1/subscribers/001010000000001/deregister",
        None,
    )
    .await;
    assert_eq!(st, 404);

    // Malformed JSON → 400 with a JSON error.
    let (st, v) = http(addr, "POST", "/api/v1/subscribers", Some("{not json")).await;
    assert_eq!((st, v["field"].as_str()), (400, Some("body")), "{v}");
}

#[tokio::test]
async fn openapi_document_is_served() {
    let addr = serve(&temp_db("openapi")).await;
    let (st, v) = http(addr, "GET", "/api/v1/openapi.json", None).await;
    assert_eq!(st, 200);
    assert!(v["openapi"].as_str().is_some_and(|s| s.starts_with("3.")));
    for p in [
        "/api/v1/subscribers",
        "/api/v1/subscribers/{id}",
        "/api/v1/subscribers/{id}/deregister",
    ] {
        assert!(v["paths"].get(p).is_some(), "{p} described");
    }
}
