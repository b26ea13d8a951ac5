//! Multiline records end to end: stack traces are joined onto the log line
//! that starts them, so each record is counted once under its own level,
//! including the last one of a file that then goes quiet.

mod support;

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;
use support::{await_totals, await_value, Farol};

#[test]
fn stack_traces_count_once_under_their_record() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let mut f = std::fs::File::create(&log).unwrap();
    let mut want: BTreeMap<String, u64> = BTreeMap::new();
    for i in 0..300u32 {
        let level = if i % 3 == 0 { "ERROR" } else { "INFO" };
        writeln!(
            f,
            "2024-02-01 10:{:02}:{:02},000 {level} [main] event {i}",
            i / 60,
            i % 60
        )
        .unwrap();
        if level == "ERROR" {
            writeln!(
                f,
                "java.lang.IllegalStateException: WARN is not a level here"
            )
            .unwrap();
            for d in 0..(i % 5) {
                writeln!(f, "\tat com.example.Worker.step{d}(Worker.java:{})", 10 + d).unwrap();
            }
        }
        *want.entry(level.to_string()).or_insert(0) += 1;
    }
    drop(f);
    let cfg = dir.path().join("farol.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[logs]]\nname = \"java\"\npaths = [\"{}\"]\n[logs.multiline]\nstart_pattern = '^\\d{{4}}-\\d{{2}}-\\d{{2}} '\ntimeout = \"500ms\"\n",
            log.display()
        ),
    )
    .unwrap();
    let farol = Farol::start(
        &dir.path().join("data"),
        &["--config", cfg.to_str().unwrap()],
    );
    await_totals(&farol, "log_class", "java", &want, Duration::from_secs(60));
    // The joined record is searchable as one event with its trace.
    let hit = await_value(Duration::from_secs(30), "a joined record", || {
        let (_, v) =
            farol.get("/search?q=%22event%203%22%20IllegalStateException&kind=log&limit=5");
        v["hits"].as_array()?.first().cloned()
    });
    let msg = hit["message"].as_str().unwrap();
    assert!(
        msg.contains("event 3") && msg.contains("\tat com.example.Worker.step2"),
        "{msg}"
    );
}
