//! Whole pipeline against ground truth: `farol run` tails real logs and
//! posts, and `/trends` totals must equal counts computed here, independently
//! of Farol's parsers, from the loghub `_structured.csv` files, the access
//! log's status field, and the posts' own tag lists.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;
use support::{await_totals, shared_data, Farol};

const LOGHUB: &[&str] = &[
    "Apache",
    "HDFS",
    "HPC",
    "Hadoop",
    "HealthApp",
    "Linux",
    "Mac",
    "OpenSSH",
    "Proxifier",
    "Spark",
    "Zookeeper",
];

/// The BRIEF §5 class of a `Level` cell; anything that is not a severity
/// (absent column, a host name as in Linux_2k) is UNKNOWN.
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

fn loghub_truth(csv_path: &Path) -> BTreeMap<String, u64> {
    let mut r = csv::Reader::from_path(csv_path).expect("structured csv");
    let headers = r.headers().expect("header row").clone();
    let level_col = headers.iter().position(|h| h == "Level");
    let mut out = BTreeMap::new();
    for row in r.records() {
        let row = row.expect("csv row");
        let level = level_col.and_then(|i| row.get(i));
        *out.entry(truth_class(level).to_string()).or_insert(0) += 1;
    }
    out
}

fn access_truth(path: &Path) -> BTreeMap<String, u64> {
    let re = regex::Regex::new(r#"^\S+ \S+ \S+ \[[^\]]+\] "[^"]*" (\d)\d\d "#).unwrap();
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let c = re.captures(line).expect("every access line has a status");
        *out.entry(format!("{}xx", &c[1])).or_insert(0) += 1;
    }
    out
}

fn mastodon_truth(path: &Path) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for line in std::fs::read_to_string(path).unwrap().lines() {
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let mut keys: Vec<String> = v["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_lowercase())
            .collect();
        keys.sort();
        keys.dedup();
        for k in keys {
            *out.entry(k).or_insert(0) += 1;
        }
    }
    out
}

#[test]
fn loghub_access_and_posts_match_ground_truth() {
    let Some(shared) = shared_data() else { return };
    let data = tempfile::tempdir().unwrap();
    let logs: Vec<String> = LOGHUB
        .iter()
        .map(|n| {
            shared
                .join(format!("loghub/{n}_2k.log"))
                .to_string_lossy()
                .into_owned()
        })
        .chain([shared
            .join("access/elastic_apache_logs.log")
            .to_string_lossy()
            .into_owned()])
        .collect();
    let posts = shared
        .join("social/raw/rtoot_mastodonsocial_statuses.jsonl")
        .to_string_lossy()
        .into_owned();
    let mut args: Vec<&str> = vec!["--logs"];
    args.extend(logs.iter().map(String::as_str));
    args.extend(["--posts", posts.as_str()]);
    let f = Farol::start(data.path(), &args);
    for n in LOGHUB {
        let want = loghub_truth(&shared.join(format!("loghub/{n}_2k.log_structured.csv")));
        assert_eq!(want.values().sum::<u64>(), 2000);
        await_totals(
            &f,
            "log_class",
            &format!("{n}_2k"),
            &want,
            Duration::from_secs(90),
        );
    }
    let want = access_truth(&shared.join("access/elastic_apache_logs.log"));
    // SOURCES.md: 200:9126 304:445 404:213 301:164 206:45 500:3 416:2 403:2
    assert_eq!(want["2xx"], 9126 + 45);
    await_totals(
        &f,
        "log_class",
        "elastic_apache_logs",
        &want,
        Duration::from_secs(90),
    );
    let want = mastodon_truth(&shared.join("social/raw/rtoot_mastodonsocial_statuses.jsonl"));
    await_totals(
        &f,
        "hashtag",
        "rtoot_mastodonsocial_statuses",
        &want,
        Duration::from_secs(60),
    );
    // Every line was processed once: nothing dead-lettered as malformed.
    assert_eq!(f.metric_sum("farol_dead_letters_total", "malformed"), 0.0);
}

#[test]
fn hashtags_from_text_match_hand_counted_fixture() {
    let data = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/posts_text.jsonl");
    let f = Farol::start(data.path(), &["--posts", fixture.to_str().unwrap()]);
    // Counted by hand: #Rust #rust #RUST is one mention; ＃Rust (full width)
    // another; the URL fragment, '#1' (digits only), '&#39;' and 'a#b' are
    // not hashtags; post 6 carries its own list, which wins over its text.
    let want: BTreeMap<String, u64> = [
        ("rust", 2),
        ("kafka", 2),
        ("flink", 1),
        ("café", 1),
        ("日本語", 1),
        ("_under", 1),
        ("streams", 1),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    await_totals(&f, "hashtag", "posts_text", &want, Duration::from_secs(30));
    // The windowed form answers too: all six posts fall in one hour.
    let (status, v) = f.get("/trends?kind=hashtag&window=1h&at=2024-03-01T10:00:00Z&limit=2");
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["items"][0]["key"], "kafka");
    assert_eq!(v["items"][1]["key"], "rust");
    assert_eq!(v["items"].as_array().unwrap().len(), 2);
}
