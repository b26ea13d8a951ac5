//! Year-less timestamps (syslog) are dated from the file's modification
//! time, never from when Farol runs: a file written across 31 Dec → 1 Jan
//! rolls its year over, 29 Feb lands in a leap year, and the same file
//! re-processed gives the same buckets whatever the date of the run.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};
use support::batch_json_lines;

fn batch_buckets(path: &std::path::Path) -> BTreeMap<String, u64> {
    let mut b = BTreeMap::new();
    for v in batch_json_lines(&[path]) {
        *b.entry(v["bucket_start"].as_str().unwrap().to_string())
            .or_insert(0) += v["count"].as_u64().unwrap();
    }
    b
}

fn set_mtime(path: &std::path::Path, rfc3339: &str) {
    let secs = chrono::DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .timestamp() as u64;
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
        .unwrap();
}

#[test]
fn a_syslog_file_crossing_new_year_is_dated_from_its_mtime() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("messages");
    std::fs::write(
        &log,
        "Dec 31 23:59:41 gw sshd[811]: Accepted publickey for ops\n\
         Dec 31 23:59:58 gw sshd[811]: session opened\n\
         Jan  1 00:00:03 gw cron[90]: (root) CMD (run-parts /etc/cron.hourly)\n\
         Jan  1 00:00:17 gw kernel: eth0: link up\n",
    )
    .unwrap();
    set_mtime(&log, "2025-01-01T00:05:00Z");
    let want: BTreeMap<String, u64> = [
        ("2024-12-31T23:59:40Z", 1),
        ("2024-12-31T23:59:50Z", 1),
        ("2025-01-01T00:00:00Z", 1),
        ("2025-01-01T00:00:10Z", 1),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(batch_buckets(&log), want);
    // Re-processed later (the file untouched), the answer is the same.
    assert_eq!(batch_buckets(&log), want);
}

#[test]
fn a_leap_day_finds_its_leap_year() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("auth.log");
    std::fs::write(
        &log,
        "Feb 29 12:00:01 gw sshd[1]: ok\nMar  1 08:00:00 gw sshd[1]: ok\n",
    )
    .unwrap();
    // Last written in 2025 (no 29 Feb): the leap day is 2024's.
    set_mtime(&log, "2025-03-01T09:00:00Z");
    let got = batch_buckets(&log);
    assert_eq!(got.get("2024-02-29T12:00:00Z"), Some(&1), "{got:?}");
    assert_eq!(got.get("2025-03-01T08:00:00Z"), Some(&1), "{got:?}");
}
