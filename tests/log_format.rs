//! `--log-format json`: every line Farol logs on stderr is one JSON object
//! with a timestamp, a level and its fields (for log collectors); the
//! default stays text for a person.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;
use support::{await_value, farol_bin};

/// Runs `farol [--log-format F] run` until it has logged a line;
/// returns them.
fn logged(format: Option<&str>) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    std::fs::write(&log, "2024-05-01 12:00:00,000 INFO [main] started\n").unwrap();
    let stderr = dir.path().join("stderr");
    let mut cmd = Command::new(farol_bin());
    if let Some(f) = format {
        cmd.args(["--log-format", f]);
    }
    let mut child = cmd
        .arg("run")
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--listen", "127.0.0.1:0", "--logs"])
        .arg(&log)
        .env("FAROL_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(line.starts_with("listening on "), "{line}");
    let lines = await_value(Duration::from_secs(30), "a log line", || {
        let text = std::fs::read_to_string(&stderr).ok()?;
        // Whole lines only: the last one may still be being written.
        let lines: Vec<String> = text
            .split_inclusive('\n')
            .filter_map(|l| l.strip_suffix('\n'))
            .map(str::to_string)
            .collect();
        (!lines.is_empty()).then_some(lines)
    });
    let _ = child.kill();
    let _ = child.wait();
    lines
}

#[test]
fn json_log_lines_are_objects_with_time_level_and_fields() {
    let lines = logged(Some("json"));
    for l in &lines {
        let v: serde_json::Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        assert!(v["timestamp"].is_string(), "{l}");
        assert!(
            ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"]
                .contains(&v["level"].as_str().unwrap_or("")),
            "{l}"
        );
        assert!(v["fields"].is_object(), "{l}");
    }
}

#[test]
fn text_is_the_default() {
    let lines = logged(None);
    assert!(lines
        .iter()
        .all(|l| serde_json::from_str::<serde_json::Value>(l).is_err()));
    assert!(lines.iter().any(|l| l.contains("INFO")), "{lines:?}");
}
