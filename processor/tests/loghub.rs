//! Line by line against Loghub's ground truth: the class `auto` gives every
//! line of each `../shared/data/loghub/*_2k.log` equals the class of the
//! `Level` cell of the same row of its `_structured.csv` (hand-labelled by
//! Loghub, independent of Farol), and every line gets a time. Skipped when
//! the shared data is absent. The whole-pipeline version is
//! `tests/ground_truth.rs` at the workspace root.

use farol_common::config::FormatSpec;
use farol_processor::logparse::LineParser;
use std::path::Path;

/// The BRIEF §5 class of a `Level` cell (as `tests/ground_truth.rs` reads it).
fn truth_class(level: Option<&str>) -> &'static str {
    match level.map(str::to_ascii_lowercase).as_deref() {
        Some("notice" | "info" | "informational") => "INFO",
        Some("error" | "err") => "ERROR",
        Some("warn" | "warning") => "WARN",
        Some("fatal" | "crit" | "critical" | "emerg" | "alert" | "panic" | "severe") => "FATAL",
        Some("debug") => "DEBUG",
        Some("trace") => "TRACE",
        _ => "UNKNOWN",
    }
}

/// One CSV record (no newlines inside fields in these files).
fn csv_fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', q) => quoted = !q,
            (',', false) => out.push(std::mem::take(&mut cur)),
            (c, _) => cur.push(c),
        }
    }
    out.push(cur);
    out
}

#[test]
fn every_loghub_line_gets_its_labelled_class_and_a_time() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/loghub");
    let Ok(rd) = std::fs::read_dir(&dir) else {
        eprintln!("{} absent: skipped", dir.display());
        return;
    };
    let mut logs: Vec<_> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    logs.sort();
    assert!(!logs.is_empty());
    let parser = LineParser::new(&FormatSpec::default()).unwrap();
    let mut wrong = Vec::new();
    for log in &logs {
        let csv_path = log.with_file_name(format!(
            "{}_structured.csv",
            log.file_name().unwrap().to_string_lossy()
        ));
        let csv = std::fs::read_to_string(&csv_path).unwrap();
        let mut rows = csv.lines();
        let header = csv_fields(rows.next().unwrap());
        let level_col = header.iter().position(|h| h == "Level");
        let text = std::fs::read_to_string(log).unwrap();
        let mut hint = None;
        let mut n = 0;
        for (line, row) in text.lines().zip(rows) {
            n += 1;
            let cells = csv_fields(row);
            let want = truth_class(level_col.and_then(|i| cells.get(i)).map(String::as_str));
            // Loghub's Proxifier and the other year-less files are dated
            // against a reference; any reference gives every line a time.
            let p = parser.parse(line, &mut hint, 1_700_000_000_000);
            if p.class != want || p.ts.is_none() {
                wrong.push(format!(
                    "{}:{n}: want {want}, got {} ({}) ts={:?}: {line}",
                    log.file_name().unwrap().to_string_lossy(),
                    p.class,
                    p.format,
                    p.ts
                ));
            }
        }
        assert_eq!(n, 2000, "{}", log.display());
    }
    assert!(
        wrong.is_empty(),
        "{} lines differ:\n{}",
        wrong.len(),
        wrong
            .iter()
            .take(30)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
