//! Backpressure end to end: with index writes blocked for 60 s while a
//! writer appends ~10 000 lines/s, the source pauses instead of buffering,
//! the process stays under a memory bound, and once writes resume every
//! line is counted exactly once.

mod support;

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{await_totals, await_value, Farol};

/// Peak resident memory allowed while blocked (see BENCHMARKS.md).
const RSS_BOUND_KB: u64 = 400 * 1024;

fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[test]
fn blocked_index_pauses_sources_within_a_memory_bound_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    std::fs::write(&log, "").unwrap();
    let f = Farol::start(&dir.path().join("data"), &["--logs", log.to_str().unwrap()]);
    let pid = f.child.id();

    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (log, stop) = (log.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut out = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
            let mut want: BTreeMap<String, u64> = BTreeMap::new();
            let levels = ["INFO", "WARN", "ERROR", "DEBUG"];
            let start = Instant::now();
            let mut i = 0u64;
            let mut buf = String::new();
            while !stop.load(Ordering::SeqCst) {
                if let Some(w) = Duration::from_millis(i / 10).checked_sub(start.elapsed()) {
                    std::thread::sleep(w);
                }
                buf.clear();
                for _ in 0..100 {
                    let level = levels[(i % 4) as usize];
                    buf.push_str(&format!(
                        "2024-06-01 12:{:02}:{:02},{:03} {level} [w] payload {i} {}\n",
                        (i / 60_000) % 60,
                        (i / 1000) % 60,
                        i % 1000,
                        "x".repeat(60)
                    ));
                    *want.entry(level.to_string()).or_insert(0) += 1;
                    i += 1;
                }
                out.write_all(buf.as_bytes()).unwrap();
            }
            want
        })
    };
    let client = reqwest::blocking::Client::new();
    let block_url = format!("{}/admin/index/write_block", f.base);
    std::thread::sleep(Duration::from_secs(10));
    assert!(client.put(&block_url).send().unwrap().status().is_success());
    let blocked_at = Instant::now();
    let mut peak = 0u64;
    let mut saw_503 = false;
    while blocked_at.elapsed() < Duration::from_secs(60) {
        peak = peak.max(rss_kb(pid).unwrap_or(0));
        if !saw_503 {
            let (status, v) = f.get("/healthz");
            saw_503 = status == 503 && v["failing"]["index"].is_string();
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    // Still paused now, and since (at least) most of the block.
    let since = f.metric_sum("farol_source_paused_since_seconds", "app");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert_eq!(f.metric_sum("farol_source_paused{", "app"), 1.0);
    let paused = if since > 0.0 { now - since } else { 0.0 };
    assert!(client
        .delete(&block_url)
        .send()
        .unwrap()
        .status()
        .is_success());
    std::thread::sleep(Duration::from_secs(10));
    stop.store(true, Ordering::SeqCst);
    let want = writer.join().unwrap();
    let written: u64 = want.values().sum();
    eprintln!(
        "backpressure: {written} lines written, peak RSS while blocked {} MiB, source paused {paused:.1} s",
        peak / 1024
    );
    assert!(saw_503, "/healthz names the blocked index");
    assert!(
        paused >= 30.0,
        "the source waited instead of buffering ({paused:.1} s)"
    );
    assert!(
        peak > 0 && peak < RSS_BOUND_KB,
        "peak RSS {} KiB over the bound",
        peak
    );
    await_totals(&f, "log_class", "app", &want, Duration::from_secs(240));
    let (status, _) = await_value(Duration::from_secs(10), "healthy again", || {
        let r = f.get("/healthz");
        (r.0 == 200).then_some(r)
    });
    assert_eq!(status, 200);
}
