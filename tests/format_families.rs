//! `farol batch DIR` over the hand-written format-family samples of issue 9
//! (`processor/tests/formats/*.tsv`): each sample file is written to a
//! directory tree with its modification time, the whole tree is given to
//! `farol batch --format json`, and the class counts per source and 10 s
//! bucket must equal what the samples' own expected classes and times give
//! under BRIEF §6 (a line without a time of its own takes the previous
//! line's; leading ones the first following line's). Nothing expected here
//! is computed by Farol.

mod support;

use farol_common::time::{parse_rfc3339, Millis};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use support::farol_bin;

/// (source, bucket start, class) → lines.
type Buckets = BTreeMap<(String, Millis, String), u64>;

struct File {
    source: String,
    name: String,
    mtime: Millis,
    lines: Vec<(String, Option<Millis>, String)>,
}

fn load(family: &str) -> Vec<File> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("processor/tests/formats/{family}.tsv"));
    let mut files: Vec<File> = Vec::new();
    for l in std::fs::read_to_string(path).unwrap().lines() {
        if let Some(h) = l.strip_prefix("## file: ") {
            let (name, m) = h.split_once(" mtime=").unwrap();
            // Unique stems: `go.log` and `go.json` are two sources.
            let source = name.trim().replace('.', "_");
            files.push(File {
                name: format!("{source}.log"),
                source,
                mtime: parse_rfc3339(m.trim()).unwrap(),
                lines: Vec::new(),
            });
            continue;
        }
        if l.starts_with('#') || l.trim().is_empty() {
            continue;
        }
        let mut cols = l.splitn(3, '\t');
        let (class, time, line) = (
            cols.next().unwrap(),
            cols.next().unwrap(),
            cols.next().unwrap(),
        );
        let ts = parse_rfc3339(time);
        files
            .last_mut()
            .unwrap()
            .lines
            .push((class.to_string(), ts, line.to_string()));
    }
    files
}

/// Expected buckets by BRIEF §6; files with no timed line at all take the
/// ingest time and are only compared in their class totals.
fn expected(files: &[File]) -> (Buckets, BTreeMap<(String, String), u64>) {
    let mut buckets = Buckets::new();
    let mut totals = BTreeMap::new();
    for f in files {
        for (class, _, _) in &f.lines {
            *totals.entry((f.source.clone(), class.clone())).or_default() += 1;
        }
        let Some(first) = f.lines.iter().find_map(|(_, t, _)| *t) else {
            continue;
        };
        let mut last = first;
        for (class, t, _) in &f.lines {
            let t = t.unwrap_or(last);
            last = t;
            *buckets
                .entry((f.source.clone(), t - t.rem_euclid(10_000), class.clone()))
                .or_default() += 1;
        }
    }
    (buckets, totals)
}

#[test]
fn batch_over_a_directory_of_every_family_counts_by_construction() {
    let dir = tempfile::tempdir().unwrap();
    let mut all = Vec::new();
    for family in ["web", "databases", "languages", "systems", "generic"] {
        let sub = dir.path().join("logs").join(family);
        std::fs::create_dir_all(&sub).unwrap();
        for f in load(family) {
            let path = sub.join(&f.name);
            let mut text = String::new();
            for (_, _, line) in &f.lines {
                text.push_str(line);
                text.push('\n');
            }
            std::fs::write(&path, text).unwrap();
            let when = std::time::UNIX_EPOCH
                + std::time::Duration::from_millis(u64::try_from(f.mtime).unwrap());
            std::fs::File::options()
                .write(true)
                .open(&path)
                .unwrap()
                .set_modified(when)
                .unwrap();
            all.push(f);
        }
    }
    // A binary file in the tree is skipped, not read.
    std::fs::write(dir.path().join("logs/core"), b"\x7fELF\x02\x01\x00\x00").unwrap();
    let out = Command::new(farol_bin())
        .current_dir(dir.path())
        .args(["batch", "--format", "json", "logs"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("skipped binary file"), "{stderr}");
    let mut got = Buckets::new();
    let mut got_totals: BTreeMap<(String, String), u64> = BTreeMap::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if v["kind"] != "log_class" {
            continue;
        }
        let source = v["source"].as_str().unwrap().to_string();
        let key = v["key"].as_str().unwrap().to_string();
        let n = v["count"].as_u64().unwrap();
        let at = parse_rfc3339(v["bucket_start"].as_str().unwrap()).unwrap();
        *got.entry((source.clone(), at, key.clone())).or_default() += n;
        *got_totals.entry((source, key)).or_default() += n;
    }
    let (want, want_totals) = expected(&all);
    assert_eq!(got_totals, want_totals, "class totals per source");
    let timed: std::collections::BTreeSet<&String> = want.keys().map(|(s, _, _)| s).collect();
    got.retain(|(s, _, _), _| timed.contains(s));
    assert_eq!(got, want, "classes per source and 10 s bucket");
    // The summary names every source with its line count.
    for f in &all {
        let head = format!("{}: {} lines (", f.source, f.lines.len());
        assert!(
            stderr.contains(&head),
            "no summary line `{head}` in:\n{stderr}"
        );
    }
}

#[test]
fn unreadable_paths_are_reported_and_the_others_processed() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.log");
    std::fs::write(
        &good,
        "2024/03/05 10:12:01 [error] 29#29: *1 open() failed\n",
    )
    .unwrap();
    let out = Command::new(farol_bin())
        .current_dir(dir.path())
        .args(["batch", "--format", "json"])
        .arg(dir.path().join("missing.log"))
        .arg(&good)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("missing.log"), "{stderr}");
    assert!(stderr.contains("good: 1 lines (ERROR 1)"), "{stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains(r#""key":"ERROR""#), "{stdout}");
}

#[test]
fn detect_shows_format_class_level_and_time() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("error.log");
    std::fs::write(
        &file,
        "2024/03/05 10:12:01 [warn] 1#1: the \"user\" directive makes sense only if the master process runs with super-user privileges\n\
         {\"log\":\"I0305 10:12:06.000000       1 main.go:10] started\\n\",\"stream\":\"stderr\",\"time\":\"2024-03-05T10:12:06.5Z\"}\n",
    )
    .unwrap();
    let out = Command::new(farol_bin())
        .args(["detect"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<&str> = text.lines().collect();
    for want in ["nginx_error", "WARN", "warn", "2024-03-05T10:12:01"] {
        assert!(rows[2].contains(want), "{want} in {text}");
    }
    for want in ["docker>klog", "INFO", "2024-03-05T10:12:06.500Z"] {
        assert!(rows[3].contains(want), "{want} in {text}");
    }
    let out = Command::new(farol_bin())
        .args(["detect"])
        .arg(dir.path().join("missing.log"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}
