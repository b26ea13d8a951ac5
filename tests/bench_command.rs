//! `farol bench` runs the whole pipeline under load and reports latency
//! only once every line it wrote has been acknowledged (and counted in a
//! `/trends` answer: it fails otherwise).

mod support;

use std::process::Command;

#[test]
fn bench_reports_once_every_line_is_acknowledged() {
    let out = Command::new(support::farol_bin())
        .args([
            "bench",
            "--duration",
            "2s",
            "--rate",
            "2000",
            "--files",
            "2",
        ])
        .env("FAROL_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: u64 = stdout
        .split_whitespace()
        .nth(2)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    // 2 s at 2000 lines/s; a loaded machine may fall a little behind.
    assert!(lines >= 3000, "{stdout}");
    assert!(stdout.contains("to 2 file(s)"), "{stdout}");
    for what in ["visible", "durable"] {
        assert!(
            stdout.contains(&format!("write → {what:<7} latency (ms): p50")),
            "{stdout}"
        );
    }
}
