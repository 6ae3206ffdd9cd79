//! RFC 4475 torture messages (the repository copy in `sip-core/testdata/rfc4475`) fed
//! straight into the S-CSCF core: nothing panics, nothing unauthenticated is ever
//! accepted (no 2xx to a REGISTER), and regaut01 (§3.3.7, unknown Authorization scheme)
//! is challenged with 401, never 400.

use ims_scscf::testutil::{code, FakeHss};
use ims_scscf::{Core, Settings};
use ims_sip_core::{Message, Method};
use std::sync::Arc;

#[tokio::test]
async fn torture_messages_through_the_core() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../sip-core/testdata/rfc4475");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        println!("skipped: {} not present", dir.display());
        return;
    };
    let hss = Arc::new(FakeHss::new(&[]));
    let core = Core::new(Settings::new("sip:127.0.0.1:5080"), hss.clone(), None);
    let mut seen = 0;
    let mut regaut01 = false;
    for e in entries.flatten() {
        let p = e.path();
        if p.extension().and_then(|x| x.to_str()) != Some("dat") {
            continue;
        }
        let bytes = std::fs::read(&p).unwrap();
        seen += 1;
        let Ok(msg) = Message::parse(bytes) else {
            continue;
        };
        let name = p.file_stem().unwrap().to_string_lossy().to_string();
        match msg.method() {
            Some(Method::Register) => {
                let o = core.register(&msg, 1_800_000_000).await;
                assert!(
                    code(&o.response) >= 300,
                    "{name}: unauthenticated REGISTER accepted"
                );
                if name == "regaut01" {
                    assert_eq!(code(&o.response), 401, "regaut01 must be challenged");
                    regaut01 = true;
                }
            }
            Some(Method::Subscribe) => {
                let o = core.subscribe(&msg, 1_800_000_000).await;
                assert!(code(&o.response) >= 300, "{name}");
            }
            _ => {}
        }
    }
    assert!(seen > 30, "found the torture messages");
    assert!(regaut01, "regaut01 parsed and reached the registrar");
    assert_eq!(core.registration_count(), 0);
}
