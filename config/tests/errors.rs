//! Bad files: every problem is reported with the file, the line, the key and the reason.

use ims_config::{
    AllInOneConfig, ConfigError, ConfigErrors, HssConfig, IcscfConfig, NoEnv, PcscfConfig,
    ScscfConfig,
};

fn pcscf(text: &str) -> ConfigErrors {
    PcscfConfig::from_toml_str_with_env(text, "pcscf.toml", &NoEnv).unwrap_err()
}

/// The error about `key`, checking that its message names file, key and reason.
fn expect<'a>(e: &'a ConfigErrors, file: &str, key: &str, reason: &str) -> &'a ConfigError {
    let err = e
        .for_key(key)
        .unwrap_or_else(|| panic!("no error for {key} in:\n{e}"));
    let msg = err.to_string();
    assert!(msg.starts_with(file), "{msg}");
    assert!(msg.contains(key), "{msg}");
    assert!(
        err.reason.contains(reason),
        "reason for {key} is {:?}, expected {reason:?}",
        err.reason
    );
    err
}

#[test]
fn syntax_error_names_the_line() {
    let e = pcscf("domain = \"a\"\n[sip\nlisten = []\n");
    assert_eq!(e.len(), 1);
    let err = &e.0[0];
    assert_eq!(err.line, Some(2), "{err}");
    assert!(err.reason.starts_with("TOML syntax error"), "{err}");
    assert!(
        err.to_string()
            .starts_with("pcscf.toml:2: TOML syntax error"),
        "{err}"
    );
}

#[test]
fn unknown_keys_are_all_reported() {
    let e = pcscf(
        "colour = 1\n[sip]\nlisten = [\"udp:127.0.0.1:5060\"]\nlsten = 2\n[ipsec]\nenable = true\n",
    );
    let c = expect(&e, "pcscf.toml", "colour", "unknown key \"colour\"");
    assert_eq!(c.line, Some(1));
    let l = expect(&e, "pcscf.toml", "sip.lsten", "unknown key \"lsten\"");
    assert_eq!(l.line, Some(4));
    assert!(l.reason.contains("listen"), "lists valid keys: {l}");
    let i = expect(&e, "pcscf.toml", "ipsec.enable", "unknown key");
    assert_eq!(i.line, Some(6));
    assert_eq!(e.len(), 3, "{e}");
}

#[test]
fn unknown_section() {
    let e = pcscf("[sipp]\nlisten = []\n");
    expect(&e, "pcscf.toml", "sipp", "unknown key");
}

#[test]
fn wrong_types_are_all_reported() {
    let e = pcscf("[timers]\nt1_ms = \"500\"\nt2_ms = -1\n[ipsec]\nenabled = \"yes\"\n");
    let t1 = expect(&e, "pcscf.toml", "timers.t1_ms", "invalid type: string");
    assert_eq!(t1.line, Some(2));
    expect(&e, "pcscf.toml", "timers.t2_ms", "invalid value");
    expect(&e, "pcscf.toml", "ipsec.enabled", "invalid type");
    assert_eq!(e.len(), 3, "{e}");
}

#[test]
fn invalid_addresses() {
    let e = pcscf(
        "[sip]\nlisten = [\"udp:127.0.0.1:5060\", \"udp:300.0.0.1:5060\", \"sctp:127.0.0.1:1\"]\n",
    );
    let a = expect(&e, "pcscf.toml", "sip.listen[1]", "invalid socket address");
    assert_eq!(a.line, Some(2));
    // after dropping [1], the sctp entry is index 1 as well: reported on the next pass
    assert!(e.to_string().contains("unknown transport \"sctp\""), "{e}");

    let e = HssConfig::from_toml_str_with_env(
        "[diameter]\nlisten = \"localhost\"\n",
        "hss.toml",
        &NoEnv,
    )
    .unwrap_err();
    expect(&e, "hss.toml", "diameter.listen", "invalid socket address");

    let e = IcscfConfig::from_toml_str_with_env(
        "[diameter]\npeers = [\"hss\"]\n",
        "icscf.toml",
        &NoEnv,
    )
    .unwrap_err();
    expect(
        &e,
        "icscf.toml",
        "diameter.peers[0]",
        "is not <host>:<port>",
    );
}

#[test]
fn sip_uris_must_be_sip() {
    let e = pcscf("icscf_uri = \"http://icscf\"\n");
    let u = expect(&e, "pcscf.toml", "icscf_uri", "is not a SIP URI");
    assert_eq!(u.line, Some(1));
    let e = ScscfConfig::from_toml_str_with_env(
        "uri = \"tel:+1234\"\nservice_route = \"<sip:x>\"\n",
        "scscf.toml",
        &NoEnv,
    )
    .unwrap_err();
    expect(&e, "scscf.toml", "uri", "is not a SIP URI");
}

#[test]
fn service_route_checked_after_resolve() {
    let e =
        ScscfConfig::from_toml_str_with_env("service_route = \"tel:1\"\n", "scscf.toml", &NoEnv)
            .unwrap_err();
    expect(&e, "scscf.toml", "service_route", "is not a SIP URI");
}

#[test]
fn t1_greater_than_t2() {
    let e = pcscf("[timers]\nt1_ms = 5000\nt2_ms = 4000\n");
    let t = expect(
        &e,
        "pcscf.toml",
        "timers.t1_ms",
        "must not be greater than T2",
    );
    assert_eq!(t.line, Some(2));
    let e = pcscf("[timers]\nt1_ms = 0\nt4_ms = 0\n");
    expect(&e, "pcscf.toml", "timers.t1_ms", "greater than 0");
    expect(&e, "pcscf.toml", "timers.t4_ms", "greater than 0");
}

#[test]
fn protected_ports_collide_with_gm_port() {
    let e = pcscf(
        "[sip]\nlisten = [\"udp:127.0.0.1:5150\"]\n[ipsec]\nport_c = { first = 5100, last = 5199 }\nport_s = { first = 5150, last = 5250 }\n",
    );
    let c = expect(
        &e,
        "pcscf.toml",
        "ipsec.port_c",
        "contains the Gm port 5150",
    );
    assert_eq!(c.line, Some(4));
    let all: Vec<_> = e.iter().filter(|x| x.key == "ipsec.port_s").collect();
    assert!(
        all.iter()
            .any(|x| x.reason.contains("overlaps ipsec.port_c")),
        "{e}"
    );
    assert!(
        all.iter()
            .any(|x| x.reason.contains("contains the Gm port")),
        "{e}"
    );
}

#[test]
fn port_range_shape() {
    let e = pcscf(
        "[ipsec]\nport_c = { first = 5200, last = 5100 }\nport_s = { first = 0, last = 10 }\n",
    );
    expect(&e, "pcscf.toml", "ipsec.port_c", "greater than last");
    expect(&e, "pcscf.toml", "ipsec.port_s", "port 0");
    let e = pcscf("[ipsec]\nport_c = { first = 5200, lst = 5300 }\n");
    expect(&e, "pcscf.toml", "ipsec.port_c.lst", "unknown key");
}

#[test]
fn bad_algorithm_names() {
    let e = pcscf("[ipsec]\nalgorithms = [\"hmac-sha-1-96/null\", \"hmac-sha-256/null\"]\n");
    let a = expect(
        &e,
        "pcscf.toml",
        "ipsec.algorithms[1]",
        "unknown integrity algorithm",
    );
    assert_eq!(a.line, Some(2));
    let e = pcscf("[ipsec]\nalgorithms = [\"hmac-md5-96+null\"]\n");
    expect(
        &e,
        "pcscf.toml",
        "ipsec.algorithms[0]",
        "is not \"<alg>/<ealg>\"",
    );
    let e = pcscf("[ipsec]\nalgorithms = [\"hmac-md5-96/null\", \"hmac-md5-96/null\"]\n");
    expect(&e, "pcscf.toml", "ipsec.algorithms[1]", "listed twice");
    let e = pcscf("[ipsec]\nenabled = true\nalgorithms = []\n");
    expect(&e, "pcscf.toml", "ipsec.algorithms", "no algorithm");
}

#[test]
fn spi_and_address_rules() {
    let e = pcscf("[ipsec]\nenabled = true\nspi_start = 100\nspi_range = 10\nmax_ues = 100\n");
    expect(&e, "pcscf.toml", "ipsec.spi_start", "reserved");
    expect(&e, "pcscf.toml", "ipsec.spi_range", "cannot serve max_ues");
    let e = pcscf("[ipsec]\nspi_start = 4294967000\nspi_range = 1000\n");
    expect(
        &e,
        "pcscf.toml",
        "ipsec.spi_range",
        "exceeds the 32-bit SPI space",
    );
    // gm_address_v4 removed by giving none: only possible through an empty v4 via the
    // all-in-one? no: Option keys are removed by leaving them out of the defaults, so
    // check with an explicit bad value instead.
    let e = pcscf("[ipsec]\ngm_address_v4 = \"::1\"\n");
    expect(
        &e,
        "pcscf.toml",
        "ipsec.gm_address_v4",
        "invalid IPv4 address",
    );
}

#[test]
fn empty_hss_peer_list() {
    let e = IcscfConfig::from_toml_str_with_env("[diameter]\npeers = []\n", "icscf.toml", &NoEnv)
        .unwrap_err();
    let p = expect(&e, "icscf.toml", "diameter.peers", "at least one HSS peer");
    assert_eq!(p.line, Some(2));
    let e = ScscfConfig::from_toml_str_with_env("[diameter]\npeers = []\n", "scscf.toml", &NoEnv)
        .unwrap_err();
    expect(&e, "scscf.toml", "diameter.peers", "at least one HSS peer");
}

#[test]
fn cx_timeout_must_fit_in_timer_b() {
    let e = ScscfConfig::from_toml_str_with_env(
        "[timers]\nt1_ms = 100\n[diameter]\nrequest_timeout_ms = 7000\n",
        "scscf.toml",
        &NoEnv,
    )
    .unwrap_err();
    expect(
        &e,
        "scscf.toml",
        "diameter.request_timeout_ms",
        "Timer B (64·T1 = 6400 ms)",
    );
}

#[test]
fn diameter_identities() {
    let e = ScscfConfig::from_toml_str_with_env(
        "[diameter]\norigin_host = \"scscf ims\"\n",
        "scscf.toml",
        &NoEnv,
    )
    .unwrap_err();
    expect(
        &e,
        "scscf.toml",
        "diameter.origin_host",
        "is not a Diameter identity",
    );
    let e = HssConfig::from_toml_str_with_env("domain = \"\"\n", "hss.toml", &NoEnv).unwrap_err();
    expect(&e, "hss.toml", "domain", "must not be empty");
}

#[test]
fn registration_expiry_order() {
    let e = ScscfConfig::from_toml_str_with_env(
        "[registration]\nmin_expires = 4000\ndefault_expires = 3600\nmax_expires = 3000\n",
        "scscf.toml",
        &NoEnv,
    )
    .unwrap_err();
    expect(
        &e,
        "scscf.toml",
        "registration.min_expires",
        "greater than default_expires",
    );
    expect(
        &e,
        "scscf.toml",
        "registration.default_expires",
        "greater than max_expires",
    );
}

#[test]
fn misc_rules() {
    let e = pcscf("[sip]\nlisten = []\n[log]\nlevel = \"loud\"\n[database]\nurl = \"mysql://x\"\n");
    expect(&e, "pcscf.toml", "sip.listen", "at least one listener");
    expect(&e, "pcscf.toml", "log.level", "is not a log level");
    expect(&e, "pcscf.toml", "database.url", "is not a database URL");
    let e = pcscf(
        "[sip]\nlisten = [\"udp:127.0.0.1:5060\", \"udp:127.0.0.1:5060\", \"tcp:127.0.0.1:0\"]\n",
    );
    expect(&e, "pcscf.toml", "sip.listen[1]", "listed twice");
    expect(&e, "pcscf.toml", "sip.listen[2]", "port 0");
    let e = IcscfConfig::from_toml_str_with_env("scscf_fallback = []\n", "icscf.toml", &NoEnv)
        .unwrap_err();
    expect(
        &e,
        "icscf.toml",
        "scscf_fallback",
        "no S-CSCF is configured",
    );
    let e = IcscfConfig::from_toml_str_with_env(
        "[[scscf]]\nuri = \"sip:a\"\n[[scscf]]\nuri = \"sip:b\"\ncapabilities = [\"x\"]\n",
        "icscf.toml",
        &NoEnv,
    )
    .unwrap_err();
    let c = expect(&e, "icscf.toml", "scscf[1].capabilities[0]", "invalid type");
    assert_eq!(c.line, Some(5));
}

#[test]
fn all_in_one_cross_checks_and_prefixes() {
    let e = AllInOneConfig::from_toml_str_with_env(
        "[icscf.sip]\nlisten = [\"udp:127.0.0.1:5060\"]\n[hss.diameter]\nlisten = \"127.0.0.1:3999\"\n[pcscf.timers]\nt1_ms = 9000\n[demo]\nk = \"00\"\n",
        "all-in-one.toml",
        &NoEnv,
    )
    .unwrap_err();
    expect(
        &e,
        "all-in-one.toml",
        "icscf.sip.listen[0]",
        "is also a listener of pcscf",
    );
    expect(
        &e,
        "all-in-one.toml",
        "icscf.diameter.peers",
        "no peer is the HSS",
    );
    expect(
        &e,
        "all-in-one.toml",
        "scscf.diameter.peers",
        "no peer is the HSS",
    );
    let t = expect(
        &e,
        "all-in-one.toml",
        "pcscf.timers.t1_ms",
        "greater than T2",
    );
    assert_eq!(t.line, Some(6));
    expect(&e, "all-in-one.toml", "demo.k", "32 hex digits");
}

#[test]
fn many_problems_at_once() {
    let e = pcscf(
        "bogus = 1\nicscf_uri = \"x\"\n[timers]\nt1_ms = 9000\n[ipsec]\nalgorithms = [\"a/b\"]\n[sip]\nlisten = [\"udp:nowhere\"]\n",
    );
    for key in [
        "bogus",
        "icscf_uri",
        "timers.t1_ms",
        "ipsec.algorithms[0]",
        "sip.listen[0]",
    ] {
        assert!(e.for_key(key).is_some(), "{key} missing from:\n{e}");
    }
}

#[test]
fn missing_file() {
    let e = HssConfig::load_with_env("/nonexistent/hss.toml", &NoEnv).unwrap_err();
    assert_eq!(e.0[0].source, "/nonexistent/hss.toml");
    assert!(e.0[0].reason.contains("cannot read"), "{e}");
}

#[test]
fn message_format_shown_in_the_readme() {
    let e = pcscf("[sip]\nlsten = 1\n");
    let msg = e.for_key("sip.lsten").unwrap().to_string();
    assert!(
        msg.starts_with("pcscf.toml:2: sip.lsten: unknown key \"lsten\" (valid keys here: `listen`, `advertised_host`"),
        "{msg}"
    );
}

#[test]
fn sas_on_shutdown_values() {
    let c = PcscfConfig::from_toml_str_with_env("", "pcscf.toml", &NoEnv).unwrap();
    assert_eq!(c.ipsec.sas_on_shutdown, ims_config::SasOnShutdown::Remove);
    let c = PcscfConfig::from_toml_str_with_env(
        "[ipsec]\nsas_on_shutdown = \"keep\"\n",
        "pcscf.toml",
        &NoEnv,
    )
    .unwrap();
    assert_eq!(c.ipsec.sas_on_shutdown, ims_config::SasOnShutdown::Keep);
    let e = pcscf("[ipsec]\nsas_on_shutdown = \"flush\"\n");
    let err = expect(
        &e,
        "pcscf.toml",
        "ipsec.sas_on_shutdown",
        "is not \"remove\" or \"keep\"",
    );
    assert_eq!(err.line, Some(2));
    let e = pcscf("[ipsec]\nsas_on_shutdown = true\n");
    expect(&e, "pcscf.toml", "ipsec.sas_on_shutdown", "invalid type");
}

#[test]
fn unanswered_challenge_s_must_be_positive() {
    let c = PcscfConfig::from_toml_str_with_env("", "pcscf.toml", &NoEnv).unwrap();
    assert_eq!(c.ipsec.unanswered_challenge_s, 60);
    let c = PcscfConfig::from_toml_str_with_env(
        "[ipsec]\nunanswered_challenge_s = 5\n",
        "pcscf.toml",
        &NoEnv,
    )
    .unwrap();
    assert_eq!(c.ipsec.unanswered_challenge_s, 5);
    let e = pcscf("[ipsec]\nunanswered_challenge_s = 0\n");
    let err = expect(
        &e,
        "pcscf.toml",
        "ipsec.unanswered_challenge_s",
        "must be greater than 0",
    );
    assert_eq!(err.line, Some(2));
    let e = pcscf("[ipsec]\nunanswered_challenge_s = -1\n");
    expect(&e, "pcscf.toml", "ipsec.unanswered_challenge_s", "invalid");
}
