//! A planted burst ranks first by trend score while another key is always
//! more frequent: posts generated here, replayed through `farol run`, asked
//! through the HTTP API. The truth (which key bursts, every count, and the
//! score the documented formula gives) is computed here from what was written.

mod support;

use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;
use support::{await_totals, Farol};

/// 2024-06-01T00:00:00Z
const T0: i64 = 1_717_200_000;
/// Five-minute blocks, the last one is the burst.
const BLOCKS: i64 = 8;

fn rfc(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .expect("valid time")
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Per block: `steady` 150 posts, `burst` 5 (100 in the last block), and
/// `quiet` 3. Returns the truth per key over all time and per block.
fn write_posts(path: &std::path::Path) -> (BTreeMap<String, u64>, Vec<BTreeMap<String, u64>>) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).expect("posts file"));
    let mut total = BTreeMap::new();
    let mut blocks = vec![];
    let mut id = 0;
    for b in 0..BLOCKS {
        let burst = if b == BLOCKS - 1 { 100 } else { 5 };
        let mut tags: Vec<&str> = vec![];
        tags.extend(std::iter::repeat_n("steady", 150));
        tags.extend(std::iter::repeat_n("burst", burst));
        tags.extend(std::iter::repeat_n("quiet", 3));
        // Interleave deterministically, spread over the block's 300 s.
        let n = tags.len();
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by_key(|i| (i * 7919) % n);
        let mut per = BTreeMap::new();
        for (j, &i) in order.iter().enumerate() {
            let t = T0 + b * 300 + (j as i64 * 300) / n as i64;
            id += 1;
            let line = serde_json::json!({
                "id": id.to_string(),
                "created_at": rfc(t),
                "text": format!("post {id} #{}", tags[i]),
            });
            writeln!(f, "{line}").expect("write");
            *per.entry(tags[i].to_string()).or_insert(0) += 1;
            *total.entry(tags[i].to_string()).or_insert(0) += 1;
        }
        blocks.push(per);
    }
    f.flush().expect("flush");
    (total, blocks)
}

fn keys(v: &Value) -> Vec<String> {
    v["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["key"].as_str().expect("key").to_string())
        .collect()
}

fn score_of(v: &Value, key: &str) -> f64 {
    v["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|i| i["key"] == key)
        .and_then(|i| i["score"].as_f64())
        .unwrap_or_else(|| panic!("{key} has no score in {v}"))
}

/// The documented score (README, `indexer/src/score.rs`) with the defaults
/// N = 6, smoothing 1, min_count 5, rounded to two decimals.
fn expected_score(count: u64, baseline: u64) -> f64 {
    if count < 5 {
        return 0.0;
    }
    let e = (baseline as f64 + 1.0) / 7.0;
    ((count as f64 - e) / e.sqrt() * 100.0).round() / 100.0
}

#[test]
fn a_planted_burst_ranks_first_by_score_but_not_by_count() {
    let dir = tempfile::tempdir().expect("tempdir");
    let posts = dir.path().join("planted.jsonl");
    let (want, blocks) = write_posts(&posts);
    let f = Farol::start(
        &dir.path().join("data"),
        &["--posts", posts.to_str().expect("utf-8 path")],
    );
    await_totals(&f, "hashtag", "planted", &want, Duration::from_secs(60));

    let last = (BLOCKS - 1) as usize;
    let (from, to) = (T0 + 300 * (BLOCKS - 1), T0 + 300 * BLOCKS);
    let baseline = |k: &str| -> u64 {
        blocks[last - 6..last]
            .iter()
            .map(|b| b.get(k).copied().unwrap_or(0))
            .sum()
    };
    // The truth: by count the steady key leads, the burst is second.
    let now = &blocks[last];
    assert!(now["steady"] > now["burst"]);

    let window = format!("/trends?kind=hashtag&window=5m&at={}", rfc(to - 30));
    let range = format!("/trends?kind=hashtag&from={}&to={}", rfc(from), rfc(to));
    for q in [window, range] {
        let (status, by_count) = f.get(&q);
        assert_eq!(status, 200, "{by_count}");
        assert_eq!(by_count["from"], rfc(from), "{q}");
        assert_eq!(
            keys(&by_count),
            vec!["steady", "burst", "quiet"],
            "{q}: {by_count}"
        );
        let (status, by_score) = f.get(&format!("{q}&sort=score"));
        assert_eq!(status, 200, "{by_score}");
        assert_eq!(
            keys(&by_score),
            vec!["burst", "steady", "quiet"],
            "{q}: {by_score}"
        );
        for k in ["steady", "burst", "quiet"] {
            assert_eq!(
                score_of(&by_score, k),
                expected_score(now[k], baseline(k)),
                "{q}: {k}"
            );
            assert_eq!(score_of(&by_count, k), score_of(&by_score, k), "{q}");
        }
        // `quiet` (3 per block) is below the minimum count: listed, unscored.
        assert_eq!(score_of(&by_score, "quiet"), 0.0);
    }
    // The same counts in an earlier block: nothing bursts there.
    let (_, early) = f.get(&format!(
        "/trends?kind=hashtag&from={}&to={}&sort=score",
        rfc(T0 + 300 * 6),
        rfc(T0 + 300 * 7)
    ));
    assert_eq!(keys(&early)[0], "steady", "{early}");

    let (status, bad) = f.get("/trends?kind=hashtag&window=5m&sort=hot");
    assert_eq!(status, 400, "{bad}");
    assert!(
        bad["error"].as_str().is_some_and(|e| e.contains("sort")),
        "{bad}"
    );
}

/// `farol batch --format json` scores each base bucket against the same
/// key's six base buckets before it, with the same formula.
#[test]
fn batch_aggregates_carry_the_score_of_their_base_bucket() {
    let dir = tempfile::tempdir().expect("tempdir");
    let posts = dir.path().join("planted.jsonl");
    write_posts(&posts);
    let lines = support::batch_json_lines(&[&posts]);
    let count: BTreeMap<(String, i64), u64> = lines
        .iter()
        .map(|v| {
            let t = farol_common::time::parse_rfc3339(v["bucket_start"].as_str().expect("time"))
                .expect("RFC 3339");
            (
                (v["key"].as_str().expect("key").to_string(), t),
                v["count"].as_u64().expect("count"),
            )
        })
        .collect();
    let mut scored = 0;
    for v in &lines {
        let key = v["key"].as_str().expect("key").to_string();
        let t = farol_common::time::parse_rfc3339(v["bucket_start"].as_str().expect("time"))
            .expect("RFC 3339");
        let n = count[&(key.clone(), t)];
        let baseline: u64 = (1..=6)
            .map(|i| {
                count
                    .get(&(key.clone(), t - i * 10_000))
                    .copied()
                    .unwrap_or(0)
            })
            .sum();
        assert_eq!(
            v["score"].as_f64(),
            Some(expected_score(n, baseline)),
            "{v}"
        );
        scored += usize::from(n >= 5);
    }
    assert!(scored > 0, "some base buckets reach the minimum count");
}
