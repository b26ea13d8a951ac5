//! Format families of issue 9, from samples written by hand after each
//! program's documentation and default configuration
//! (`tests/formats/*.tsv`). Every sample line carries its expected class and
//! event time, decided when the line was written — never computed by Farol.
//! Each family test asserts, per line, the class, the time (or that there is
//! none, or that it does not read) and, per family, the class counts and the
//! 10 s buckets the timed lines fall in.
//!
//! The sample format: `## file: NAME mtime=RFC3339` starts a log file (its
//! mtime dates year-less and date-less timestamps); other lines are
//! `CLASS<TAB>TIME<TAB>LINE` with TIME an RFC 3339 time, `-` (no time) or
//! `!` (a time that does not read); `#` lines are comments.

use farol_common::config::FormatSpec;
use farol_common::time::{parse_rfc3339, rfc3339, Millis};
use farol_processor::logparse::LineParser;
use std::collections::BTreeMap;
use std::path::Path;

/// What a sample line should parse to.
#[derive(Debug, Clone, PartialEq)]
enum Time {
    At(Millis),
    None,
    Unreadable,
}

struct Sample {
    file: String,
    mtime: Millis,
    class: String,
    time: Time,
    line: String,
}

fn load(family: &str) -> Vec<Sample> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/formats/{family}.tsv"));
    let text = std::fs::read_to_string(&path).unwrap();
    let mut out = Vec::new();
    let (mut file, mut mtime) = (String::new(), 0);
    for (n, l) in text.lines().enumerate() {
        if let Some(h) = l.strip_prefix("## file: ") {
            let (name, m) = h.split_once(" mtime=").expect("file header has an mtime");
            file = name.trim().to_string();
            mtime = parse_rfc3339(m.trim()).expect("mtime is RFC 3339");
            continue;
        }
        if l.starts_with('#') || l.trim().is_empty() {
            continue;
        }
        let mut cols = l.splitn(3, '\t');
        let (class, time, line) = (cols.next(), cols.next(), cols.next());
        let (Some(class), Some(time), Some(line)) = (class, time, line) else {
            panic!("{}:{}: not CLASS<TAB>TIME<TAB>LINE", path.display(), n + 1);
        };
        let time = match time {
            "-" => Time::None,
            "!" => Time::Unreadable,
            t => Time::At(parse_rfc3339(t).unwrap_or_else(|| panic!("bad time {t}"))),
        };
        assert!(!file.is_empty(), "a sample before any ## file: header");
        out.push(Sample {
            file: file.clone(),
            mtime,
            class: class.to_string(),
            time,
            line: line.to_string(),
        });
    }
    out
}

/// Parses every sample of a family, file by file with one stream hint per
/// file (as the processor does), and compares with the expectations.
fn check(family: &str) {
    let samples = load(family);
    assert!(!samples.is_empty());
    let parser = LineParser::new(&FormatSpec::default()).unwrap();
    let mut hints: BTreeMap<String, Option<usize>> = BTreeMap::new();
    let mut wrong = Vec::new();
    let mut want_counts: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut got_counts: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut want_buckets: BTreeMap<(Millis, String), u64> = BTreeMap::new();
    let mut got_buckets: BTreeMap<(Millis, String), u64> = BTreeMap::new();
    for s in &samples {
        let hint = hints.entry(s.file.clone()).or_default();
        let p = parser.parse(&s.line, hint, s.mtime);
        let got_time = match (p.ts, p.ts_unreadable) {
            (Some(t), _) => Time::At(t),
            (None, true) => Time::Unreadable,
            (None, false) => Time::None,
        };
        if p.class != s.class || got_time != s.time {
            let show = |t: &Time| match t {
                Time::At(t) => rfc3339(*t),
                Time::None => "-".into(),
                Time::Unreadable => "!".into(),
            };
            wrong.push(format!(
                "{}: want {} {}, got {} {} (format {}, level {:?}): {}",
                s.file,
                s.class,
                show(&s.time),
                p.class,
                show(&got_time),
                p.format,
                p.level,
                s.line
            ));
        }
        *want_counts
            .entry((s.file.clone(), s.class.clone()))
            .or_default() += 1;
        *got_counts
            .entry((s.file.clone(), p.class.to_string()))
            .or_default() += 1;
        if let Time::At(t) = s.time {
            *want_buckets
                .entry((t - t.rem_euclid(10_000), s.class.clone()))
                .or_default() += 1;
        }
        if let Some(t) = p.ts {
            *got_buckets
                .entry((t - t.rem_euclid(10_000), p.class.to_string()))
                .or_default() += 1;
        }
    }
    assert!(
        wrong.is_empty(),
        "{family}: {} of {} lines differ:\n{}",
        wrong.len(),
        samples.len(),
        wrong.join("\n")
    );
    assert_eq!(got_counts, want_counts, "{family}: class counts per file");
    assert_eq!(
        got_buckets, want_buckets,
        "{family}: classes per 10 s bucket"
    );
}

#[test]
fn web_servers_and_proxies() {
    check("web");
}

#[test]
fn databases_and_brokers() {
    check("databases");
}

#[test]
fn languages_and_frameworks() {
    check("languages");
}

#[test]
fn systems_and_containers() {
    check("systems");
}

#[test]
fn generic_conventions() {
    check("generic");
}

/// Every prefix and suffix of every sample line (cut at each character)
/// parses without panicking: truncated lines are common in real files.
#[test]
fn truncated_sample_lines_never_panic() {
    let parser = LineParser::new(&FormatSpec::default()).unwrap();
    let mut n = 0;
    for family in ["web", "databases", "languages", "systems", "generic"] {
        for s in load(family) {
            let mut hint = None;
            for (cut, _) in s.line.char_indices() {
                let _ = parser.parse(&s.line[..cut], &mut hint, s.mtime);
                let _ = parser.parse(&s.line[cut..], &mut hint, s.mtime);
                n += 2;
            }
        }
    }
    assert!(n > 1000);
}
