//! `[index] events = false`: aggregates only. `/trends` is as exact as with
//! events (truth from the generator's own count), and no event document is
//! stored, so `/search` finds none of the lines, where the same run with
//! events finds every one.

mod support;

use std::time::Duration;
use support::{await_totals, await_value, write_config, write_level_log, Farol};

const LINES: u64 = 5_000;

fn run(events: bool) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let want = write_level_log(&log, LINES, &["INFO", "WARN", "ERROR"], 0);
    let config = write_config(
        dir.path(),
        &format!(
            "[index]\nevents = {events}\n\n[[logs]]\nname = \"app\"\npaths = [{:?}]\n",
            log.display().to_string()
        ),
    );
    let data = dir.path().join("data");
    let f = Farol::start(&data, &["--config", config.to_str().unwrap()]);
    await_totals(&f, "log_class", "app", &want, Duration::from_secs(60));
    // Nothing left uncommitted: whatever was applied is searchable now.
    await_value(Duration::from_secs(30), "everything committed", || {
        let m = f.metrics();
        let pending = m
            .lines()
            .find(|l| l.starts_with("farol_index_pending_docs "))?
            .rsplit(' ')
            .next()?
            .parse::<f64>()
            .ok()?;
        let commits = f.metric_sum("farol_index_commits_total", "");
        (pending == 0.0 && commits >= 1.0).then_some(())
    });
    // Every line says "request N done".
    let (status, v) = f.get("/search?q=request&limit=1");
    assert_eq!(status, 200, "{v}");
    v
}

#[test]
fn without_events_trends_stay_exact_and_search_finds_nothing() {
    let with = run(true);
    assert_eq!(
        with["total"], LINES,
        "with events every line is found: {with}"
    );
    let without = run(false);
    assert_eq!(without["total"], 0, "{without}");
    assert_eq!(
        without["hits"].as_array().map(Vec::len),
        Some(0),
        "{without}"
    );
}
