//! Every example file loads, matches the defaults, and shows every key.

use ims_config::{AllInOneConfig, HssConfig, IcscfConfig, NoEnv, PcscfConfig, ScscfConfig};
use std::path::PathBuf;

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}

/// Every leaf key of `defaults` is in the example, set or as a commented `# key =` line
/// (or a commented `# [[key]]` array of tables).
fn assert_every_key_shown<T: serde::Serialize>(name: &str, defaults: &T) {
    let text = std::fs::read_to_string(example(name)).unwrap();
    let parsed: toml::Table = toml::from_str(&text).unwrap();
    let defaults = match toml::Value::try_from(defaults).unwrap() {
        toml::Value::Table(t) => t,
        _ => unreachable!(),
    };
    fn walk(prefix: &str, d: &toml::Table, e: Option<&toml::Table>, text: &str, name: &str) {
        for (k, v) in d {
            let here = e.and_then(|e| e.get(k));
            let path = format!("{prefix}{k}");
            match v {
                toml::Value::Table(t) => walk(
                    &format!("{path}."),
                    t,
                    here.and_then(|h| h.as_table()),
                    text,
                    name,
                ),
                _ => assert!(
                    here.is_some()
                        || text.contains(&format!("# {k} ="))
                        || text.contains(&format!("{k}]]")),
                    "{name}: key {path} is not shown"
                ),
            }
        }
    }
    walk("", &defaults, Some(&parsed), &text, name);
}

#[test]
fn hss_example_loads_and_is_the_default() {
    let c = HssConfig::load_with_env(example("hss.toml"), &NoEnv).unwrap();
    let d = HssConfig::from_toml_str("").unwrap();
    assert_eq!(c, d);
    assert_eq!(c.diameter.listen.to_string(), "0.0.0.0:3868");
    assert_eq!(
        c.diameter.origin_host,
        "hss.ims.mnc001.mcc001.3gppnetwork.org"
    );
    assert_eq!(c.diameter.origin_realm, "ims.mnc001.mcc001.3gppnetwork.org");
    assert_eq!(c.http.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(c.database.url, "sqlite://hss.db");
    assert_every_key_shown("hss.toml", &HssConfig::default());
}

#[test]
fn pcscf_example_loads_and_is_the_default() {
    let c = PcscfConfig::load_with_env(example("pcscf.toml"), &NoEnv).unwrap();
    assert_eq!(c, PcscfConfig::from_toml_str("").unwrap());
    assert_eq!(c.sip.listen.len(), 2);
    assert_eq!(c.sip.listen[0].to_string(), "udp:127.0.0.1:5060");
    assert_eq!(c.icscf_uri.as_str(), "sip:127.0.0.1:5070");
    assert_eq!(c.visited_network_id, "ims.mnc001.mcc001.3gppnetwork.org");
    assert_eq!(c.ipsec.algorithms[0].to_string(), "hmac-sha-1-96/aes-cbc");
    assert_eq!(c.ipsec_preferences().len(), 6);
    assert_every_key_shown("pcscf.toml", &PcscfConfig::default());
}

#[test]
fn icscf_example_loads_and_is_the_default() {
    let c = IcscfConfig::load_with_env(example("icscf.toml"), &NoEnv).unwrap();
    assert_eq!(c, IcscfConfig::from_toml_str("").unwrap());
    assert_eq!(
        c.diameter.origin_host,
        "icscf.ims.mnc001.mcc001.3gppnetwork.org"
    );
    assert_eq!(c.diameter.peers[0].to_string(), "127.0.0.1:3868");
    assert_every_key_shown("icscf.toml", &IcscfConfig::default());
}

#[test]
fn scscf_example_loads_and_is_the_default() {
    let c = ScscfConfig::load_with_env(example("scscf.toml"), &NoEnv).unwrap();
    assert_eq!(c, ScscfConfig::from_toml_str("").unwrap());
    assert_eq!(c.service_route, "sip:127.0.0.1:5080;lr;orig");
    assert_eq!(
        c.diameter.origin_host,
        "scscf.ims.mnc001.mcc001.3gppnetwork.org"
    );
    assert_eq!(c.registration.default_expires, 3600);
    assert_every_key_shown("scscf.toml", &ScscfConfig::default());
}

#[test]
fn all_in_one_example_loads_and_is_the_default() {
    let c = AllInOneConfig::load_with_env(example("all-in-one.toml"), &NoEnv).unwrap();
    assert_eq!(c, AllInOneConfig::from_toml_str("").unwrap());
    assert_eq!(c.hss.diameter.listen.to_string(), "127.0.0.1:3868");
    assert_eq!(c.pcscf.sip.listen[1].to_string(), "tcp:127.0.0.1:5060");
    assert_eq!(
        c.demo.impu,
        "sip:001010000000001@ims.mnc001.mcc001.3gppnetwork.org"
    );
    assert!(
        !format!("{:?}", c.demo).contains("3031"),
        "K leaked in Debug"
    );
    assert_every_key_shown("all-in-one.toml", &AllInOneConfig::default());
}

#[test]
fn all_in_one_domain_reaches_every_role() {
    let c =
        AllInOneConfig::from_toml_str("domain = \"ims.lab\"\n[scscf]\ndomain = \"other.lab\"\n")
            .unwrap();
    assert_eq!(c.hss.diameter.origin_host, "hss.ims.lab");
    assert_eq!(c.icscf.diameter.origin_host, "icscf.ims.lab");
    assert_eq!(c.pcscf.visited_network_id, "ims.lab");
    assert_eq!(c.scscf.diameter.origin_host, "scscf.other.lab");
    assert_eq!(c.demo.impu, "sip:001010000000001@ims.lab");
}

#[test]
fn partial_section_keeps_loopback_defaults_in_all_in_one() {
    // Only one key of [hss.diameter] given: the others keep the all-in-one defaults.
    let c = AllInOneConfig::from_toml_str("[hss.diameter]\nwatchdog_s = 10\n").unwrap();
    assert_eq!(c.hss.diameter.listen.to_string(), "127.0.0.1:3868");
    assert_eq!(c.hss.diameter.watchdog_s, 10);
}
