//! The feed pollers end to end: `farol run` polls a local server that serves
//! the real recorded X v2 and Mastodon responses (`../shared/data/social`)
//! the way the real APIs page them, through a 401, a 429 with a reset
//! header, a 503, a truncated body and an error inside a 200, and across a
//! SIGKILL. The posts and hashtags in the index must be exactly the
//! recorded ones, none twice; each error counted.

mod support;

use farol_ingest::feed::replay::{posts_from_bodies, Fault, Replay};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;
use support::{await_totals, await_value, shared_data, Farol};

fn load(shared: &Path, files: &[&str]) -> Vec<Value> {
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(shared.join("social/extracted").join(f)).unwrap();
        out.extend(posts_from_bodies(&text).unwrap());
    }
    out
}

fn unique_ids(posts: &[Value]) -> BTreeSet<String> {
    posts
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect()
}

fn indexed_ids(f: &Farol, feed: &str) -> BTreeSet<String> {
    let (status, v) = f.get("/search?kind=post&limit=10000");
    assert_eq!(status, 200, "{v}");
    let prefix = format!("post:{feed}:");
    v["hits"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h["id"].as_str()?.strip_prefix(&prefix).map(str::to_string))
        .collect()
}

fn feed_errors(f: &Farol, feed: &str, kind: &str) -> f64 {
    f.metric_sum(
        "farol_feed_errors_total",
        &format!("kind=\"{kind}\",source=\"{feed}\""),
    )
}

fn write_config(dir: &Path, body: &str) -> String {
    let p = dir.join("farol.toml");
    std::fs::write(&p, body).unwrap();
    p.to_string_lossy().into_owned()
}

#[test]
fn mastodon_timeline_through_faults_and_a_sigkill() {
    let Some(shared) = shared_data() else { return };
    let statuses = load(
        &shared,
        &[
            "rtoot_vcr_fosstodon_account_statuses.bodies.json",
            "rtoot_vcr_fosstodon_public.bodies.json",
            "rtoot_vcr_mastodon.social_public.bodies.json",
        ],
    );
    let want_ids = unique_ids(&statuses);
    // Ground truth: each status's own tag list, lower-cased, once per status.
    let mut by_id: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for s in &statuses {
        let tags = s["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_lowercase())
            .collect();
        by_id.insert(s["id"].as_str().unwrap().to_string(), tags);
    }
    let mut want_tags: BTreeMap<String, u64> = BTreeMap::new();
    for tags in by_id.values() {
        for t in tags {
            *want_tags.entry(t.clone()).or_insert(0) += 1;
        }
    }

    let rt = tokio::runtime::Runtime::new().unwrap();
    let replay = rt.block_on(Replay::start(statuses, vec![])).unwrap();
    replay.set_visible(Some(10));
    replay.inject([
        Fault::Unauthorized,
        Fault::RateLimited(Duration::from_secs(1)),
        Fault::Unavailable,
        Fault::Truncated,
    ]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "[[feeds]]\nname = \"masto\"\nplatform = \"mastodon\"\nurl = \"{}\"\ntimeline = \"public\"\ninterval = \"1s\"\n",
            replay.url()
        ),
    );
    let data = dir.path().join("data");
    let f = Farol::start(&data, &["--config", &config]);
    let first: BTreeSet<String> = want_ids.iter().take(10).cloned().collect();
    await_value(Duration::from_secs(60), "the 10 visible statuses", || {
        (indexed_ids(&f, "masto") == first).then_some(())
    });
    await_value(
        Duration::from_secs(30),
        "every injected fault counted",
        || {
            let counted = [
                feed_errors(&f, "masto", "auth"),
                feed_errors(&f, "masto", "rate_limited"),
                feed_errors(&f, "masto", "server"),
                feed_errors(&f, "masto", "body"),
            ];
            (counted == [1.0; 4]).then_some(())
        },
    );
    // More statuses appear: the poller pages forward with min_id / Link.
    replay.set_visible(Some(70));
    let seventy: BTreeSet<String> = want_ids.iter().take(70).cloned().collect();
    await_value(Duration::from_secs(60), "70 statuses", || {
        (indexed_ids(&f, "masto") == seventy).then_some(())
    });
    f.kill();
    replay.set_visible(None);
    let f = Farol::start(&data, &["--config", &config]);
    await_value(Duration::from_secs(60), "every recorded status", || {
        (indexed_ids(&f, "masto") == want_ids).then_some(())
    });
    // Counts would double if any status were emitted twice.
    await_totals(&f, "hashtag", "masto", &want_tags, Duration::from_secs(30));
    let before = replay.requests();
    await_value(Duration::from_secs(30), "three more polls", || {
        (replay.requests() >= before + 3).then_some(())
    });
    assert_eq!(f.totals("hashtag", "masto"), want_tags);
}

/// Hashtags the way twitter-text defines them, written independently of
/// Farol's extractor for the ground truth of tweets without entities.
fn simple_hashtags(text: &str) -> BTreeSet<String> {
    // twitter-text lets a hashtag follow an emoji variation selector (U+FE0E/F).
    let re = regex::Regex::new(
        r"(?:^|[\x{FE0E}\x{FE0F}]|[^\p{L}\p{M}\p{N}_&])[#＃]([\p{L}\p{M}\p{N}_]+)",
    )
    .unwrap();
    re.captures_iter(text)
        .map(|c| c[1].to_lowercase())
        .filter(|t| !t.chars().all(|c| c.is_ascii_digit()))
        .collect()
}

/// Every tweet of the recorded X v2 responses.
fn recorded_tweets(shared: &Path) -> Vec<Value> {
    load(
        shared,
        &[
            "tweepy_cassette_v2_home_timeline.bodies.json",
            "tweepy_cassette_v2_list_tweets.bodies.json",
            "tweepy_cassette_v2_search_recent.bodies.json",
        ],
    )
}

/// `farol run` polling the replay server's X recent search as feed `xs`.
fn start_x_feed(dir: &Path, replay: &Replay) -> Farol {
    let config = write_config(
        dir,
        &format!(
            "[[feeds]]\nname = \"xs\"\nplatform = \"x\"\nurl = \"{}\"\nquery = \"tweepy\"\ninterval = \"1s\"\ntoken_env = \"FAROL_TEST_X_TOKEN\"\n",
            replay.url()
        ),
    );
    Farol::start_with_env(
        &dir.join("data"),
        &["--config", &config],
        &[("FAROL_TEST_X_TOKEN", "test-bearer-token")],
    )
}

#[test]
fn x_recent_search_pages_and_errors_in_body() {
    let Some(shared) = shared_data() else { return };
    let tweets = recorded_tweets(&shared);
    let want_ids = unique_ids(&tweets);
    let mut texts: BTreeMap<String, String> = BTreeMap::new();
    for t in &tweets {
        texts.insert(
            t["id"].as_str().unwrap().to_string(),
            t["text"].as_str().unwrap().to_string(),
        );
    }
    let mut want_tags: BTreeMap<String, u64> = BTreeMap::new();
    for text in texts.values() {
        for t in simple_hashtags(text) {
            *want_tags.entry(t).or_insert(0) += 1;
        }
    }
    assert!(!want_tags.is_empty());

    let rt = tokio::runtime::Runtime::new().unwrap();
    let replay = rt.block_on(Replay::start(vec![], tweets)).unwrap();
    replay.set_visible(Some(50));
    replay.inject([Fault::ErrorInBody]);
    let dir = tempfile::tempdir().unwrap();
    let f = start_x_feed(dir.path(), &replay);
    let first: BTreeSet<String> = want_ids.iter().take(50).cloned().collect();
    await_value(Duration::from_secs(60), "the 50 visible tweets", || {
        (indexed_ids(&f, "xs") == first).then_some(())
    });
    assert_eq!(feed_errors(&f, "xs", "api"), 1.0);
    replay.inject([Fault::Unavailable]);
    replay.set_visible(None);
    await_value(
        Duration::from_secs(60),
        "every recorded tweet (next_token paging)",
        || (indexed_ids(&f, "xs") == want_ids).then_some(()),
    );
    await_totals(&f, "hashtag", "xs", &want_tags, Duration::from_secs(30));
    assert_eq!(feed_errors(&f, "xs", "server"), 1.0);
}

#[test]
fn an_x_paging_chain_cut_midway_is_resumed_not_skipped() {
    let Some(shared) = shared_data() else { return };
    let tweets = recorded_tweets(&shared);
    let want_ids = unique_ids(&tweets);
    assert!(want_ids.len() > 200, "three pages of 100, newest first");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let replay = rt.block_on(Replay::start(vec![], tweets)).unwrap();
    // The first page arrives; the second is cut off mid-body.
    replay.inject([Fault::Pass, Fault::Truncated]);
    let dir = tempfile::tempdir().unwrap();
    let f = start_x_feed(dir.path(), &replay);
    await_value(
        Duration::from_secs(60),
        "every tweet, the older pages too",
        || (indexed_ids(&f, "xs") == want_ids).then_some(()),
    );
    assert_eq!(feed_errors(&f, "xs", "body"), 1.0);
    assert_eq!(
        f.metric_sum("farol_records_read_total", "source=\"xs\""),
        want_ids.len() as f64,
        "each tweet published once"
    );
}

#[test]
fn a_feed_without_its_token_fails_before_data_moves() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "[[feeds]]\nname = \"xs\"\nplatform = \"x\"\nurl = \"http://127.0.0.1:9\"\nquery = \"q\"\ntoken_env = \"FAROL_TEST_UNSET_TOKEN\"\n",
    );
    let out = std::process::Command::new(support::farol_bin())
        .args([
            "run",
            "--listen",
            "127.0.0.1:0",
            "--config",
            &config,
            "--data-dir",
        ])
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("FAROL_TEST_UNSET_TOKEN"), "{err}");
}
