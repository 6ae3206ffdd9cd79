//! `exit_on_error` prints every problem and exits with code 2 (checked in a child
//! process: this test binary re-runs itself with a marker variable).

use ims_config::HssConfig;
use std::process::Command;

const CHILD: &str = "CFG_EXIT_TEST_CHILD";

#[test]
fn exit_on_error_prints_every_problem_and_exits_2() {
    if std::env::var_os(CHILD).is_some() {
        let e = HssConfig::from_toml_str_with_env(
            "bogus = 1\n[diameter]\nlisten = \"nowhere\"\n",
            "hss.toml",
            &ims_config::NoEnv,
        )
        .unwrap_err();
        ims_config::exit_on_error(e);
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "exit_on_error_prints_every_problem_and_exits_2",
            "--exact",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("invalid configuration (2 problems)"), "{err}");
    assert!(err.contains("hss.toml:1: bogus: unknown key"), "{err}");
    assert!(err.contains("hss.toml:3: diameter.listen:"), "{err}");
}
