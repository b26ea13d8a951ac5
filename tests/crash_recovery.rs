//! SIGKILL while reading a large file, twice, then a clean run on the same
//! data dir: totals must still equal what was written, exactly.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;
use support::{await_totals, await_value, Farol};

const LINES: u64 = 300_000;
const LEVELS: [&str; 7] = ["INFO", "WARN", "ERROR", "DEBUG", "INFO", "TRACE", "FATAL"];

fn write_big_log(path: &std::path::Path) -> BTreeMap<String, u64> {
    support::write_level_log(path, LINES, &LEVELS, 0)
}

fn processed(f: &Farol) -> f64 {
    f.metric_sum("farol_records_processed_total", "big")
}

#[test]
fn sigkill_mid_file_neither_loses_nor_repeats_a_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log = dir.path().join("big.log");
    let want = write_big_log(&log);
    let log_arg = log.to_str().unwrap();
    let size = std::fs::metadata(&log).unwrap().len();

    for (round, at_least) in [(1, 40_000.0), (2, 40_000.0)] {
        let f = Farol::start(&data, &["--logs", log_arg]);
        await_value(Duration::from_secs(120), "progress before the kill", || {
            (processed(&f) >= at_least).then_some(())
        });
        let before: u64 = f.totals("log_class", "big").values().sum();
        assert!(
            before < LINES,
            "round {round}: killed before the end ({before} counted)"
        );
        f.kill(); // SIGKILL
    }

    let f = Farol::start(&data, &["--logs", log_arg]);
    await_totals(&f, "log_class", "big", &want, Duration::from_secs(240));
    // Wait until the durable checkpoint covers the whole file, then check
    // that nothing was counted twice on the way.
    let ckpt = data.join("checkpoints/big.json");
    await_value(Duration::from_secs(60), "checkpoint at end of file", || {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&ckpt).ok()?).ok()?;
        v["streams"]
            .as_object()?
            .values()
            .any(|e| e["end"].as_u64() == Some(size))
            .then_some(())
    });
    assert_eq!(f.totals("log_class", "big"), want);
}
