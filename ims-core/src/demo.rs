//! The demo subscriber of the all-in-one lab and the instructions printed at start.

use ims_config::AllInOneConfig;
use ims_hss::store::model::{aka_from_hex, parse_amf, Impu, NewSubscriber};
use ims_hss::store::Store;

/// Provisions the configured demo subscriber unless its IMSI is already in the store.
/// Returns whether it was created.
pub async fn provision(cfg: &AllInOneConfig, store: &Store) -> anyhow::Result<bool> {
    let d = &cfg.demo;
    if !d.enabled || store.get(&d.imsi).await?.is_some() {
        return Ok(false);
    }
    let new = NewSubscriber {
        imsi: d.imsi.clone(),
        impi: None,
        impus: vec![Impu {
            uri: d.impu.clone(),
            irs: 0,
            barred: false,
        }],
        aka: Some(aka_from_hex(&d.k, Some(&d.op), None).map_err(|e| anyhow::anyhow!("demo: {e}"))?),
        amf: Some(parse_amf(&d.amf).map_err(|e| anyhow::anyhow!("demo: {e}"))?),
        sqn: None,
        password: None,
        ifc_xml: None,
        scscf_name: None,
    };
    store.create(new).await?;
    Ok(true)
}

/// The bytes of a hex string as text, when every byte is printable ASCII (SIPp 3.6 takes
/// `aka_K`/`aka_OP`/`aka_AMF` as raw bytes).
pub fn printable(hex_str: &str) -> Option<String> {
    let bytes = hex::decode(hex_str).ok()?;
    bytes
        .iter()
        .all(|b| b.is_ascii_graphic() && !b"[]\"\\%;".contains(b))
        .then(|| String::from_utf8_lossy(&bytes).to_string())
}

/// How to register the demo subscriber with SIPp, as printed at start.
pub fn instructions(cfg: &AllInOneConfig, pcscf: &str, db_path: &str) -> String {
    let d = &cfg.demo;
    let impi = format!("{}@{}", d.imsi, cfg.domain);
    let user = d
        .impu
        .trim_start_matches("sip:")
        .split('@')
        .next()
        .unwrap_or(&d.imsi)
        .to_string();
    let mut s = format!(
        "IMS core running. HSS database: {db_path}\n\
         Provision more subscribers while it runs:\n  \
         hss subscriber add --imsi <digits> --impu sip:<user>@{domain} --k <hex32> --op <hex32> --db {db_path}\n",
        domain = cfg.domain
    );
    if !d.enabled {
        return s;
    }
    s.push_str(&format!(
        "Demo subscriber: IMSI {imsi}, IMPI {impi}, IMPU {impu}\n",
        imsi = d.imsi,
        impu = d.impu
    ));
    match (printable(&d.k), printable(&d.op), printable(&d.amf)) {
        (Some(k), Some(op), Some(amf)) => s.push_str(&format!(
            "Register it with SIPp (IMS-AKA through P-CSCF {pcscf}):\n  \
             printf 'SEQUENTIAL\\n{user};{impi};{domain};{k};{op};{amf}\\n' > demo.csv\n  \
             sipp {pcscf} -sf tests/scenarios/reg_aka.xml -inf demo.csv -m 1\n",
            domain = cfg.domain
        )),
        _ => s.push_str(
            "(its K/OP/AMF are not printable ASCII, so SIPp 3.6 cannot use them; \
             use ue-sim or a handset)\n",
        ),
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_keys_are_shown_as_text() {
        assert_eq!(printable("30313233").as_deref(), Some("0123"));
        assert_eq!(printable("8000"), None);
        assert_eq!(
            printable("5b41"),
            None,
            "'[' would break SIPp's keyword syntax"
        );
    }

    #[test]
    fn default_demo_can_be_registered_with_sipp() {
        let cfg = AllInOneConfig::default();
        let text = instructions(&cfg, "127.0.0.1:5060", "/tmp/hss.db");
        assert!(text.contains("sipp 127.0.0.1:5060"), "{text}");
        assert!(text.contains("/tmp/hss.db"));
    }
}
