//! `farol batch --format events` prints every event document as one JSON
//! line: checked against truth computed independently from a generated file
//! (line count, line numbers, levels and messages by a regex of the test's
//! own, event times, and the template grouping the generator knows).

mod support;

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::Command;
use support::farol_bin;

const LINES: usize = 3_000;
const LEVELS: [&str; 4] = ["INFO", "WARN", "ERROR", "DEBUG"];

/// Writes the file; returns for each line the kind of message it holds.
fn generate(path: &std::path::Path) -> Vec<usize> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut kinds = Vec::new();
    for i in 0..LINES {
        let kind = (i * 7 + i / 13) % 3;
        let msg = match kind {
            0 => format!("request {i} done in {} ms", i % 97),
            1 => format!("user u{} logged in from 10.0.{}.{}", i % 50, i % 7, i % 251),
            _ => format!("cache miss for key k{i:x} after {} retries", i % 5),
        };
        let s = i as u64;
        writeln!(
            f,
            "2024-05-01 {:02}:{:02}:{:02},000 {} [worker-{}] {msg}",
            12 + s / 3600,
            (s / 60) % 60,
            s % 60,
            LEVELS[i % LEVELS.len()],
            i % 4
        )
        .unwrap();
        kinds.push(kind);
    }
    f.flush().unwrap();
    kinds
}

#[test]
fn every_event_is_one_json_line_equal_to_independent_truth() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let kinds = generate(&log);
    let out = Command::new(farol_bin())
        .args(["batch", "--format", "events"])
        .arg(&log)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let docs: Vec<Value> = String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object a line"))
        .collect();

    // Truth from the raw file with a regex of our own.
    let re =
        regex::Regex::new(r"^2024-05-01 (\d\d):(\d\d):(\d\d),000 ([A-Z]+) \[worker-\d\] (.*)$")
            .unwrap();
    let raw = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = raw.lines().collect();
    assert_eq!(docs.len(), lines.len(), "one document per line");
    let day = 1_714_521_600_000i64; // 2024-05-01T00:00:00Z in ms
    let mut ids_by_kind: BTreeMap<usize, BTreeSet<String>> = BTreeMap::new();
    for (i, (d, line)) in docs.iter().zip(&lines).enumerate() {
        let c = re.captures(line).unwrap();
        let secs: i64 = c[1].parse::<i64>().unwrap() * 3600
            + c[2].parse::<i64>().unwrap() * 60
            + c[3].parse::<i64>().unwrap();
        assert_eq!(d["type"], "log");
        assert_eq!(d["source"], "app");
        assert_eq!(d["file"], log.to_str().unwrap());
        assert_eq!(d["line_no"].as_u64(), Some(i as u64 + 1), "input order");
        assert_eq!(d["ts"].as_i64(), Some(day + secs * 1000), "{line}");
        assert_eq!(d["@timestamp"], d["ts"]);
        assert_eq!(d["level"].as_str(), Some(&c[4]));
        assert_eq!(d["class"].as_str(), Some(&c[4]));
        assert!(d["message"].as_str().unwrap().ends_with(&c[5]), "{d}");
        let template = d["template"].as_str().unwrap();
        assert!(template.contains("<*>"), "{template}");
        ids_by_kind
            .entry(kinds[i])
            .or_default()
            .insert(d["template_id"].as_str().unwrap().to_string());
    }
    // Each kind of message has exactly one template id, all different.
    assert_eq!(ids_by_kind.len(), 3);
    let all: BTreeSet<&String> = ids_by_kind.values().flatten().collect();
    assert!(
        ids_by_kind.values().all(|ids| ids.len() == 1),
        "{ids_by_kind:?}"
    );
    assert_eq!(all.len(), 3);
    // The same input gives the same documents again (stable ids).
    let again = Command::new(farol_bin())
        .args(["batch", "--format", "events"])
        .arg(&log)
        .output()
        .unwrap();
    assert_eq!(again.stdout, out.stdout);
}
