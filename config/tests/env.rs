//! Environment overrides, with a test environment (the process env is never touched).

use ims_config::{AllInOneConfig, HssConfig, PcscfConfig, ScscfConfig};

#[test]
fn overrides_apply_after_the_file() {
    let env = [
        (
            "IMS_PCSCF__SIP__LISTEN",
            r#"["udp:127.0.0.2:5062", "tcp:[::1]:5062"]"#,
        ),
        ("IMS_PCSCF__IPSEC__ENABLED", "true"),
        ("IMS_PCSCF__VISITED_NETWORK_ID", "12345"),
        ("IMS_PCSCF__IPSEC__PORT_C", "{ first = 7000, last = 7099 }"),
        ("IMS_SCSCF__REGISTRATION__MAX_EXPIRES", "1"), // another role: ignored
        ("HOME", "/root"),
    ];
    let file = "icscf_uri = \"sip:10.0.0.1\"\n[ipsec]\nenabled = false\n";
    let c = PcscfConfig::from_toml_str_with_env(file, "pcscf.toml", &env).unwrap();
    assert_eq!(c.sip.listen[0].to_string(), "udp:127.0.0.2:5062");
    assert_eq!(c.sip.listen[1].to_string(), "tcp:[::1]:5062");
    assert!(c.ipsec.enabled, "env wins over the file");
    assert_eq!(c.visited_network_id, "12345", "string keys stay strings");
    assert_eq!(c.ipsec.port_c.first, 7000);
    assert_eq!(c.icscf_uri.as_str(), "sip:10.0.0.1");
}

#[test]
fn plain_strings_for_addresses() {
    let env = [("IMS_HSS__DIAMETER__LISTEN", "10.1.2.3:3869")];
    let c = HssConfig::from_toml_str_with_env("", "hss.toml", &env).unwrap();
    assert_eq!(c.diameter.listen.to_string(), "10.1.2.3:3869");
}

#[test]
fn case_insensitive_and_nested() {
    let env = [("IMS_SCSCF__Registration__Max_Expires", "7200")];
    let c = ScscfConfig::from_toml_str_with_env("", "scscf.toml", &env).unwrap();
    assert_eq!(c.registration.max_expires, 7200);
}

#[test]
fn all_in_one_takes_role_and_core_variables() {
    let env = [
        ("IMS_CORE__LOG__LEVEL", "debug"),
        ("IMS_PCSCF__SIP__LISTEN", r#"["udp:127.0.0.1:5090"]"#),
        ("IMS_HSS__DATABASE__URL", "sqlite:///tmp/x.db"),
    ];
    let c = AllInOneConfig::from_toml_str_with_env("", "all-in-one.toml", &env).unwrap();
    assert_eq!(c.log.level, "debug");
    assert_eq!(c.pcscf.sip.listen.len(), 1);
    assert_eq!(c.pcscf.sip.listen[0].addr.port(), 5090);
    assert_eq!(c.hss.database.url, "sqlite:///tmp/x.db");
}

#[test]
fn bad_override_names_the_variable() {
    let env = [
        ("IMS_PCSCF__TIMERS__T1_MS", "soon"),
        ("IMS_PCSCF__SIP__BOGUS", "1"),
    ];
    let e = PcscfConfig::from_toml_str_with_env("", "pcscf.toml", &env).unwrap_err();
    let t1 = e.for_key("timers.t1_ms").expect("t1 reported");
    assert_eq!(t1.source, "environment variable IMS_PCSCF__TIMERS__T1_MS");
    assert!(t1.reason.contains("invalid type"), "{t1}");
    let bogus = e.for_key("sip.bogus").expect("unknown key reported");
    assert_eq!(bogus.source, "environment variable IMS_PCSCF__SIP__BOGUS");
    assert!(bogus.reason.contains("unknown key"), "{bogus}");
    assert_eq!(e.len(), 2, "{e}");
}

#[test]
fn sas_on_shutdown_from_the_environment() {
    let env = [("IMS_PCSCF__IPSEC__SAS_ON_SHUTDOWN", "keep")];
    let c = PcscfConfig::from_toml_str_with_env("", "pcscf.toml", &env).unwrap();
    assert_eq!(c.ipsec.sas_on_shutdown, ims_config::SasOnShutdown::Keep);
    let env = [("IMS_PCSCF__IPSEC__SAS_ON_SHUTDOWN", "sometimes")];
    let e = PcscfConfig::from_toml_str_with_env("", "pcscf.toml", &env).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("IMS_PCSCF__IPSEC__SAS_ON_SHUTDOWN") && msg.contains("\"remove\" or \"keep\""),
        "{msg}"
    );
}

#[test]
fn unanswered_challenge_s_from_the_environment() {
    let env = [("IMS_PCSCF__IPSEC__UNANSWERED_CHALLENGE_S", "10")];
    let c = PcscfConfig::from_toml_str_with_env(
        "[ipsec]\nunanswered_challenge_s = 30\n",
        "pcscf.toml",
        &env,
    )
    .unwrap();
    assert_eq!(
        c.ipsec.unanswered_challenge_s, 10,
        "the variable wins over the file"
    );
    let env = [("IMS_PCSCF__IPSEC__UNANSWERED_CHALLENGE_S", "0")];
    let e = PcscfConfig::from_toml_str_with_env("", "pcscf.toml", &env).unwrap_err();
    let err = e
        .for_key("ipsec.unanswered_challenge_s")
        .expect("0 reported");
    assert!(err.reason.contains("must be greater than 0"), "{err}");
}
