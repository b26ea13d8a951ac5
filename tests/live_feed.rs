//! A live feed polled every 30 s (the replay server serving real recorded
//! Mastodon statuses, re-dated to the moment they appear): the stream is
//! idle between polls, yet no post is late and the default window of
//! `/trends` answers exactly the posts created in it.

mod support;

use chrono::{SecondsFormat, Utc};
use farol_ingest::feed::replay::{posts_from_bodies, Replay};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use support::{await_value, items, shared_data, write_config, Farol};

fn ms(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s)
        .unwrap()
        .timestamp_millis()
}

#[test]
fn a_feed_polled_every_30s_is_never_late() {
    let Some(shared) = shared_data() else { return };
    let mut statuses: Vec<Value> = Vec::new();
    for f in [
        "rtoot_vcr_fosstodon_account_statuses.bodies.json",
        "rtoot_vcr_fosstodon_public.bodies.json",
        "rtoot_vcr_mastodon.social_public.bodies.json",
    ] {
        let text = std::fs::read_to_string(shared.join("social/extracted").join(f)).unwrap();
        statuses.extend(posts_from_bodies(&text).unwrap());
    }
    statuses.sort_by_key(|s| s["id"].as_str().unwrap().parse::<u64>().unwrap());
    statuses.dedup_by_key(|s| s["id"].as_str().unwrap().to_string());
    let tagged: Vec<Value> = statuses
        .into_iter()
        .filter(|s| !s["tags"].as_array().unwrap().is_empty())
        .take(40)
        .collect();
    assert!(tagged.len() >= 20, "enough tagged statuses recorded");
    // Status i appears (and is dated) 1.5 s after status i-1, starting 5 s on.
    let t0 = Utc::now() + chrono::Duration::seconds(5);
    let step = chrono::Duration::milliseconds(1500);
    let mut truth: Vec<(i64, BTreeSet<String>)> = Vec::new();
    let dated: Vec<Value> = tagged
        .into_iter()
        .enumerate()
        .map(|(i, mut s)| {
            let at = t0 + step * i as i32;
            s["created_at"] = at.to_rfc3339_opts(SecondsFormat::Millis, true).into();
            let tags = s["tags"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["name"].as_str().unwrap().to_lowercase())
                .collect();
            truth.push((at.timestamp_millis(), tags));
            s
        })
        .collect();
    let n = dated.len();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let replay = rt.block_on(Replay::start(dated, vec![])).unwrap();
    replay.set_visible(Some(0));
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        &format!(
            "[[feeds]]\nname = \"masto\"\nplatform = \"mastodon\"\nurl = \"{}\"\ntimeline = \"public\"\ninterval = \"30s\"\n",
            replay.url()
        ),
    );
    let f = Farol::start(
        &dir.path().join("data"),
        &["--config", cfg.to_str().unwrap()],
    );
    // Reveal each status when its time comes.
    for (i, (at, _)) in truth.iter().enumerate() {
        let wait = at - Utc::now().timestamp_millis();
        if wait > 0 {
            std::thread::sleep(Duration::from_millis(wait as u64));
        }
        replay.set_visible(Some(i + 1));
        let (status, v) = f.get("/trends?kind=hashtag&window=1m&source=masto");
        assert_eq!(status, 200, "{v}");
        if let Some(to) = v["to"].as_str() {
            assert!(
                ms(to) <= Utc::now().timestamp_millis(),
                "window ahead of the clock: {v}"
            );
        }
    }
    let last = truth.last().unwrap().0;
    let started = Instant::now();
    let v = await_value(
        Duration::from_secs(150),
        "the window holding the newest post to close",
        || {
            let (_, v) = f.get("/trends?kind=hashtag&window=1m&source=masto&limit=10000");
            (ms(v["to"].as_str()?) > last).then_some(v)
        },
    );
    eprintln!(
        "closed {:?} after the last post appeared",
        started.elapsed()
    );
    let (from, to) = (
        ms(v["from"].as_str().unwrap()),
        ms(v["to"].as_str().unwrap()),
    );
    let mut want: BTreeMap<String, u64> = BTreeMap::new();
    for (at, tags) in &truth {
        if (from..to).contains(at) {
            for t in tags {
                *want.entry(t.clone()).or_insert(0) += 1;
            }
        }
    }
    assert_eq!(items(&v), want, "{v}");
    assert!(!want.is_empty());
    assert_eq!(
        f.metric_sum("farol_late_records_total", "source=\"masto\""),
        0.0
    );
    assert_eq!(
        f.metric_sum("farol_records_read_total", "source=\"masto\""),
        n as f64
    );
}
