//! A bad config fails before any data moves: exit 1, naming each key and why.

mod support;

use std::process::Command;
use support::farol_bin;

fn run(args: &[&str], config: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("farol.toml");
    std::fs::write(&path, config).unwrap();
    let mut cmd = Command::new(farol_bin());
    cmd.args(args).arg(&path);
    if args[0] == "run" {
        cmd.arg("--data-dir").arg(dir.path().join("d"));
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const BAD: &str = r#"
[api]
listen = "not an address"
[[logs]]
name = "web"
paths = ["/var/log/*.log"]
format = "klingon"
[[logs]]
name = "app"
paths = ["/tmp/app.log"]
format = { regex = "(?P<ts>\\S+ (?P<level>" }
[trends]
baseline_windows = 0
smoothing = 0.0
"#;

#[test]
fn run_and_check_config_name_every_bad_key() {
    for args in [&["check-config"][..], &["run", "--config"][..]] {
        let (code, err) = run(args, BAD);
        assert_eq!(code, 1, "{args:?}: {err}");
        for key in [
            "api.listen",
            "logs[0].format",
            "logs[1].format.regex",
            "trends.baseline_windows",
            "trends.smoothing",
        ] {
            assert!(err.contains(key), "{args:?}: '{key}' missing from:\n{err}");
        }
    }
}

#[test]
fn unknown_keys_and_type_errors_are_named() {
    let (code, err) = run(
        &["check-config"],
        "[api]\nlisten = \"127.0.0.1:1\"\nlistne = 1\n",
    );
    assert_eq!(code, 1);
    assert!(err.contains("listne"), "{err}");
    let (code, err) = run(&["check-config"], "[bus]\npartitions = \"many\"\n");
    assert_eq!(code, 1);
    assert!(err.contains("bus.partitions"), "{err}");
}

#[test]
fn a_good_config_passes() {
    let (code, err) = run(
        &["check-config"],
        "[[logs]]\nname = \"web\"\npaths = [\"/var/log/*.log\"]\n[windows]\nlateness = \"1m\"\n",
    );
    assert_eq!(code, 0, "{err}");
}
