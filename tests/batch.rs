//! `farol batch` re-processes files through the same pipeline: its
//! aggregates equal ground truth and, bucket by bucket, what streaming
//! `farol run` computes over the same input.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use support::{await_totals, farol_bin, Farol};

type Buckets = BTreeMap<(String, String, String, String), u64>;

fn batch_json(paths: &[&str]) -> Buckets {
    batch_json_with(&[], paths)
}

fn batch_json_with(flags: &[&str], paths: &[&str]) -> Buckets {
    let out = Command::new(farol_bin())
        .args(["batch", "--format", "json"])
        .args(flags)
        .args(paths)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut b = Buckets::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let key = (
            v["bucket_start"].as_str().unwrap().to_string(),
            v["kind"].as_str().unwrap().to_string(),
            v["source"].as_str().unwrap().to_string(),
            v["key"].as_str().unwrap().to_string(),
        );
        assert!(
            b.insert(key, v["count"].as_u64().unwrap()).is_none(),
            "one object per bucket, kind, source and key"
        );
    }
    b
}

fn totals(b: &Buckets, kind: &str, source: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for ((_, k, s, key), n) in b {
        if k == kind && s == source {
            *out.entry(key.clone()).or_insert(0) += n;
        }
    }
    out
}

#[test]
fn without_templates_the_other_counts_are_unchanged() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let access = root.join("samples/access.log");
    let posts = root.join("tests/fixtures/posts_text.jsonl");
    let paths = [access.to_str().unwrap(), posts.to_str().unwrap()];
    let with = batch_json(&paths);
    let without = batch_json_with(&["--no-templates"], &paths);
    let templates = |b: &Buckets| b.keys().filter(|k| k.1 == "log_template").count();
    assert!(templates(&with) > 0);
    assert_eq!(templates(&without), 0);
    let mut rest = with.clone();
    rest.retain(|k, _| k.1 != "log_template");
    assert_eq!(without, rest);
    // And the classes are the status classes of the lines (independently).
    let re = regex::Regex::new(r#"" (\d)\d\d "#).unwrap();
    let lines = std::fs::read_to_string(&access).unwrap();
    let classes: u64 = totals(&without, "log_class", "access").values().sum();
    assert_eq!(
        classes,
        lines.lines().filter(|l| re.is_match(l)).count() as u64
    );
    assert_eq!(classes, lines.lines().count() as u64);
}

#[test]
fn batch_equals_ground_truth_and_streaming_bucket_by_bucket() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let access = root.join("samples/access.log");
    let posts = root.join("tests/fixtures/posts_text.jsonl");
    let b = batch_json(&[access.to_str().unwrap(), posts.to_str().unwrap()]);

    // Ground truth, independently: the status field of every access line.
    let re = regex::Regex::new(r#"" (\d)\d\d "#).unwrap();
    let mut want = BTreeMap::new();
    for line in std::fs::read_to_string(&access).unwrap().lines() {
        let c = re.captures(line).unwrap();
        *want.entry(format!("{}xx", &c[1])).or_insert(0u64) += 1;
    }
    assert_eq!(totals(&b, "log_class", "access"), want);
    assert_eq!(totals(&b, "hashtag", "posts_text")["rust"], 2);

    let dir = tempfile::tempdir().unwrap();
    let f = Farol::start(
        dir.path(),
        &[
            "--logs",
            access.to_str().unwrap(),
            "--posts",
            posts.to_str().unwrap(),
        ],
    );
    await_totals(&f, "log_class", "access", &want, Duration::from_secs(60));
    await_totals(
        &f,
        "hashtag",
        "posts_text",
        &totals(&b, "hashtag", "posts_text"),
        Duration::from_secs(60),
    );
    // Every bucket batch wrote, streaming has with the same counts.
    let mut by_bucket: BTreeMap<(String, String, String), BTreeMap<String, u64>> = BTreeMap::new();
    for ((start, kind, source, key), n) in &b {
        by_bucket
            .entry((start.clone(), kind.clone(), source.clone()))
            .or_default()
            .insert(key.clone(), *n);
    }
    for ((start, kind, source), want) in by_bucket {
        let from = chrono::DateTime::parse_from_rfc3339(&start).unwrap();
        let to = (from + chrono::Duration::seconds(10))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let (status, v) = f.get(&format!(
            "/trends?kind={kind}&source={source}&from={start}&to={to}&limit=10000"
        ));
        assert_eq!(status, 200, "{v}");
        let got: BTreeMap<String, u64> = v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["key"].as_str().unwrap().to_string(),
                    i["count"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(got, want, "bucket {start} {kind} {source}");
    }
}
