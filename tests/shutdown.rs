//! Stopping the real binary: SIGTERM while the index write block holds data
//! back lifts the block, drains, commits and exits 0 within the deadline;
//! past the deadline the process exits non-zero without acknowledging what
//! it did not commit; a dead index stops the process non-zero (crash-only).
//! After each, a restart on the same data dir counts every line written
//! exactly once.

mod support;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::ExitStatus;
use std::time::{Duration, Instant};
use support::{await_totals, await_value, Farol};

/// The default `shutdown_timeout`.
const DEADLINE: Duration = Duration::from_secs(10);

/// Appends `n` log lines; returns the count per class, computed here.
fn write_lines(path: &Path, from: u64, n: u64) -> BTreeMap<String, u64> {
    let levels = ["INFO", "WARN", "ERROR", "DEBUG"];
    let mut want = BTreeMap::new();
    let mut buf = String::new();
    for i in from..from + n {
        let level = levels[(i % 4) as usize];
        buf.push_str(&format!(
            "2024-06-01 12:{:02}:{:02},{:03} {level} [w] line {i} {}\n",
            (i / 60_000) % 60,
            (i / 1000) % 60,
            i % 1000,
            "y".repeat(40)
        ));
        *want.entry(level.to_string()).or_insert(0) += 1;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
        .write_all(buf.as_bytes())
        .unwrap();
    want
}

fn merge(a: &mut BTreeMap<String, u64>, b: BTreeMap<String, u64>) {
    for (k, v) in b {
        *a.entry(k).or_insert(0) += v;
    }
}

fn sigterm(f: &Farol) {
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &f.child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -TERM");
}

/// Waits for the process to exit; returns its status and how long it took.
fn exit_within(f: &mut Farol, limit: Duration) -> (ExitStatus, Duration) {
    let start = Instant::now();
    let status = await_value(limit, "farol to exit", || f.child.try_wait().unwrap());
    (status, start.elapsed())
}

/// Sets the write block and waits until the source has read `more` lines
/// beyond `before` (held back in the bus and the processors).
fn block_and_feed(f: &Farol, log: &Path, before: u64, more: u64) -> BTreeMap<String, u64> {
    let client = reqwest::blocking::Client::new();
    let url = format!("{}/admin/index/write_block", f.base);
    assert!(client.put(&url).send().unwrap().status().is_success());
    // The sink has paused (it reports itself down) before the lines arrive.
    await_value(Duration::from_secs(30), "the sink paused", || {
        let (status, v) = f.get("/healthz");
        (status == 503 && v["failing"]["index"].is_string()).then_some(())
    });
    let want = write_lines(log, before, more);
    await_value(
        Duration::from_secs(60),
        "lines read behind the block",
        || {
            let read = f.metric_sum("farol_records_read_total", "source=\"app\"");
            (read >= (before + more / 2) as f64).then_some(())
        },
    );
    want
}

/// Restarts on the same data dir and checks exact totals, twice a little
/// apart (nothing counted twice later either).
fn restart_and_check(data: &Path, log: &Path, want: &BTreeMap<String, u64>) {
    let f = Farol::start(data, &["--logs", log.to_str().unwrap()]);
    await_totals(&f, "log_class", "app", want, Duration::from_secs(120));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(&f.totals("log_class", "app"), want, "stable after restart");
    let (_, v) = f.get("/admin/index/write_block");
    assert_eq!(
        v["write_block"], false,
        "the block does not survive a restart"
    );
}

#[test]
fn sigterm_with_the_write_block_set_drains_and_exits_zero_within_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log = dir.path().join("app.log");
    let mut want = write_lines(&log, 0, 3000);
    let mut f = Farol::start(&data, &["--logs", log.to_str().unwrap()]);
    await_totals(&f, "log_class", "app", &want, Duration::from_secs(60));
    merge(&mut want, block_and_feed(&f, &log, 3000, 3000));

    sigterm(&f);
    let (status, took) = exit_within(&mut f, DEADLINE + Duration::from_secs(5));
    eprintln!("exited {status} after {took:?} with the write block set");
    assert!(status.success(), "{status}");
    assert!(took < DEADLINE, "{took:?}");
    restart_and_check(&data, &log, &want);
}

#[test]
fn past_the_deadline_the_process_exits_non_zero_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log = dir.path().join("app.log");
    let mut want = write_lines(&log, 0, 3000);
    let mut f = Farol::start_with_env(
        &data,
        &["--logs", log.to_str().unwrap()],
        &[("FAROL_SHUTDOWN_TIMEOUT", "1ms")],
    );
    await_totals(&f, "log_class", "app", &want, Duration::from_secs(60));
    merge(&mut want, block_and_feed(&f, &log, 3000, 3000));

    sigterm(&f);
    let (status, took) = exit_within(&mut f, DEADLINE);
    eprintln!("exited {status} after {took:?} with a 1 ms deadline");
    assert!(
        !status.success(),
        "a missed deadline is a failure: {status}"
    );
    restart_and_check(&data, &log, &want);
}

#[test]
fn a_dead_index_stops_the_process_non_zero_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log = dir.path().join("app.log");
    let stderr = dir.path().join("stderr.log");
    let want = write_lines(&log, 0, 1000);
    let mut f = Farol::start_logging(
        &data,
        &["--logs", log.to_str().unwrap()],
        &[],
        Some(&stderr),
    );
    await_totals(&f, "log_class", "app", &want, Duration::from_secs(60));
    // The index directory disappears under the running process (moved
    // away in one step: deleting it races with the writer's new files).
    std::fs::rename(data.join("index"), dir.path().join("index.gone")).unwrap();
    let mut i = 1000;
    let status = await_value(Duration::from_secs(60), "farol to stop", || {
        write_lines(&log, i, 100);
        i += 100;
        f.child.try_wait().unwrap()
    });
    let text = std::fs::read_to_string(&stderr).unwrap();
    eprintln!("{text}");
    assert!(!status.success(), "{status}");
    assert!(
        text.contains("index stopped"),
        "the failing component is named"
    );
}
