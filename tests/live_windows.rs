//! Live event time end to end: a log written in real time (lines stamped
//! with the writer's clock) that pauses for 15 s and goes on. No line may be
//! late, the default window of `/trends` is never in the future, and it
//! answers exactly what the writer wrote in it. A line stamped a day ahead
//! moves no window but is still counted, and dead-lettered as `future`.

mod support;

use chrono::{SecondsFormat, Utc};
use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};
use support::{await_value, items, write_config, Farol};

const CLASSES: [&str; 3] = ["INFO", "WARN", "ERROR"];

/// Appends one line stamped now; returns its time (ms) and class.
fn write_line(f: &mut std::fs::File, n: usize) -> (i64, &'static str) {
    let now = Utc::now();
    let class = CLASSES[n % 3];
    let line = format!(
        "{} {class} worker-{n} handled request\n",
        now.to_rfc3339_opts(SecondsFormat::Millis, true)
    );
    f.write_all(line.as_bytes()).unwrap();
    f.flush().unwrap();
    (now.timestamp_millis(), class)
}

fn ms(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s)
        .unwrap()
        .timestamp_millis()
}

#[test]
fn a_live_log_that_pauses_is_never_late_and_trends_answer_its_windows() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("live.log");
    let mut file = std::fs::File::create(&log).unwrap();
    let cfg = write_config(
        dir.path(),
        &format!(
            "[[logs]]\nname = \"live\"\npaths = [\"{}\"]\n",
            log.display()
        ),
    );
    let f = Farol::start(
        &dir.path().join("data"),
        &["--config", cfg.to_str().unwrap()],
    );
    // Truth, kept by the writer itself: every line's time and class.
    let mut written: Vec<(i64, &str)> = Vec::new();
    let mut n = 0;
    let mut write_for = |secs: u64, written: &mut Vec<(i64, &str)>| {
        let until = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < until {
            for _ in 0..5 {
                written.push(write_line(&mut file, n));
                n += 1;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    write_for(12, &mut written);
    // The pause: the default window must never lie ahead of the clock.
    let pause_end = Instant::now() + Duration::from_secs(15);
    while Instant::now() < pause_end {
        let (status, v) = f.get("/trends?kind=log_class&window=1m&source=live");
        assert_eq!(status, 200, "{v}");
        if let Some(to) = v["to"].as_str() {
            assert!(
                ms(to) <= Utc::now().timestamp_millis(),
                "window in the future: {v}"
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    write_for(12, &mut written);
    let last = written.last().unwrap().0;
    // A stray line a day ahead: counted, dead-lettered, moves no window.
    let future = Utc::now() + chrono::Duration::days(1);
    writeln!(
        file,
        "{} FATAL clock skew",
        future.to_rfc3339_opts(SecondsFormat::Millis, true)
    )
    .unwrap();
    file.flush().unwrap();

    // Wait until the default 1m window is one that holds the writer's last line.
    let v = await_value(
        Duration::from_secs(90),
        "the window holding the last line to close",
        || {
            let (_, v) = f.get("/trends?kind=log_class&window=1m&source=live");
            let to = ms(v["to"].as_str()?);
            (to > last).then_some(v)
        },
    );
    let (from, to) = (
        ms(v["from"].as_str().unwrap()),
        ms(v["to"].as_str().unwrap()),
    );
    assert!(to <= Utc::now().timestamp_millis(), "{v}");
    let mut want: BTreeMap<String, u64> = BTreeMap::new();
    for (t, c) in &written {
        if (from..to).contains(t) {
            *want.entry(c.to_string()).or_insert(0) += 1;
        }
    }
    assert_eq!(items(&v), want, "window {v}");
    assert_eq!(
        f.metric_sum("farol_late_records_total", "source=\"live\""),
        0.0
    );

    // Range totals include every line, the future one too.
    let totals = await_value(Duration::from_secs(30), "all lines in range totals", || {
        let t = f.totals("log_class", "live");
        (t.values().sum::<u64>() == written.len() as u64 + 1).then_some(t)
    });
    assert_eq!(totals.get("FATAL"), Some(&1));
    assert_eq!(
        f.metric_sum("farol_future_records_total", "source=\"live\""),
        1.0
    );
    assert_eq!(
        f.metric_sum(
            "farol_dead_letters_total",
            "reason=\"future\",source=\"live\""
        ),
        1.0
    );
}
