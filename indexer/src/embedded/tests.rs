//! Tests of the embedded index as a whole: durability, idempotent rewrites,
//! counters leaving memory, trends and search.

use super::*;
use crate::query::{TrendsRange, MAX_SEARCH_BYTES};
use farol_common::model::{AggKind, Event, LogEvent, Post};
use farol_common::time::{Millis, Window};
use std::collections::HashSet;
use std::sync::atomic::Ordering;

fn log(id: &str, ts: Millis, msg: &str) -> Event {
    Event::Log(LogEvent {
        id: id.into(),
        source: "web".into(),
        file: "f".into(),
        line_no: 1,
        offset: 0,
        ts,
        ts_from_line: true,
        class: "ERROR".into(),
        level: Some("error".into()),
        message: msg.into(),
        fields: Default::default(),
        truncated: false,
        template: None,
        template_id: None,
    })
}

fn post(id: &str, t: Millis) -> Event {
    Event::Post(Post {
        id: id.into(),
        source: "p".into(),
        platform: "jsonl".into(),
        created_at: t,
        author: None,
        text: "hello rust".into(),
        lang: None,
        hashtags: vec!["rust".into()],
        url: None,
    })
}

fn key(b: Millis, k: &str) -> BucketKey {
    BucketKey {
        bucket_start: b,
        kind: AggKind::LogClass,
        source: "web".into(),
        key: k.into(),
    }
}

fn state(end: u64, wm: Millis) -> (String, StreamState) {
    (
        "web:1".into(),
        StreamState {
            source: "web".into(),
            applied_end: end,
            line_no: end,
            max_ts: Some(wm + 30_000),
            last_ts: Some(wm),
            watermark: Some(wm),
            wall_ms: None,
            templates: None,
        },
    )
}

#[tokio::test]
async fn input_offsets_are_committed_with_the_state_they_reflect() {
    let d = tempfile::tempdir().unwrap();
    let off = |p: i32, next: i64| InputOffset {
        topic: "farol.logs".into(),
        partition: p,
        next,
    };
    {
        let ix = EmbeddedIndex::open(d.path(), 15).unwrap();
        ix.apply(Batch {
            streams: vec![state(20, 70_000)],
            offsets: vec![off(0, 7), off(3, 2)],
            ..Batch::default()
        })
        .await
        .unwrap();
        assert!(ix.input_offsets().is_empty(), "not durable before commit");
        ix.commit().await.unwrap();
        // Staged but never committed: must not survive.
        ix.apply(Batch {
            offsets: vec![off(0, 9)],
            ..Batch::default()
        })
        .await
        .unwrap();
        assert!(ix.has_pending(), "a moved offset alone is worth a commit");
    }
    let ix = EmbeddedIndex::open(d.path(), 15).unwrap();
    let want: HashMap<(String, i32), i64> = [
        (("farol.logs".to_string(), 0), 7),
        (("farol.logs".to_string(), 3), 2),
    ]
    .into_iter()
    .collect();
    assert_eq!(ix.input_offsets(), want);
    assert_eq!(ix.stream_states()["web:1"].applied_end, 20);
}

#[tokio::test]
async fn counts_and_positions_survive_reopen_and_a_post_seen_again_replaces_itself() {
    let d = tempfile::tempdir().unwrap();
    {
        let ix = EmbeddedIndex::open(d.path(), 15).unwrap();
        ix.apply(Batch {
            events: vec![
                log("a", 5_000, "disk full"),
                log("b", 15_000, "disk ok"),
                post("p1", 6_000),
            ],
            counts: vec![(key(0, "ERROR"), 1), (key(10_000, "ERROR"), 1)],
            dead_letters: vec![],
            streams: vec![state(20, 70_000)],
            retired: vec![],
            offsets: vec![],
            records: vec![],
        })
        .await
        .unwrap();
        let acked = ix.commit().await.unwrap();
        assert_eq!(acked[0].end, 20);
        // A post fetched again (overlapping polls) replaces its copy. (A
        // log event is named by its stream position, which the index
        // never receives twice: replays are dropped before it.)
        ix.apply(Batch {
            events: vec![post("p1", 6_000)],
            counts: vec![(key(0, "ERROR"), 2)],
            dead_letters: vec![],
            streams: vec![state(30, 80_000)],
            retired: vec![],
            offsets: vec![],
            records: vec![],
        })
        .await
        .unwrap();
        ix.commit().await.unwrap();
    }
    let ix = EmbeddedIndex::open(d.path(), 15).unwrap();
    assert_eq!(ix.stream_states()["web:1"].applied_end, 30);
    assert!(ix.input_offsets().is_empty());
    let t = ix
        .trends(TrendsQuery {
            kind: AggKind::LogClass,
            source: Some("web".into()),
            limit: 10,
            range: TrendsRange::Between {
                from: 0,
                to: 20_000,
            },
            sort: Default::default(),
            scoring: Default::default(),
        })
        .await
        .unwrap();
    assert_eq!(t.items[0].count, 4);
    let hits = ix
        .search(SearchQuery {
            q: "disk".into(),
            kind: Some("log".into()),
            from: None,
            to: None,
            limit: 10,
            template_id: None,
        })
        .await
        .unwrap()
        .hits;
    assert_eq!(hits.len(), 2, "{hits:?}");
    assert_eq!(hits[0]["id"], "b", "newest first");
    let posts = ix.search(search_text("rust", 10)).await.unwrap();
    assert_eq!(posts.total, 1, "{:?}", posts.hits);
    let w = ix
        .trends(TrendsQuery {
            kind: AggKind::LogClass,
            source: None,
            limit: 10,
            range: TrendsRange::Window {
                window: Window {
                    name: "1m".into(),
                    size: 60_000,
                    slide: 10_000,
                },
                at: None,
            },
            sort: Default::default(),
            scoring: Default::default(),
        })
        .await
        .unwrap();
    assert_eq!(w.from.as_deref(), Some("1970-01-01T00:00:20Z"));
    assert_eq!(w.to.as_deref(), Some("1970-01-01T00:01:20Z"));
    assert!(w.items.is_empty(), "no counts in the last closed window");
    let window = Window {
        name: "1m".into(),
        size: 60_000,
        slide: 10_000,
    };
    let at = ix
        .trends(TrendsQuery {
            kind: AggKind::LogClass,
            source: None,
            limit: 10,
            range: TrendsRange::Window {
                window,
                at: Some(5_000),
            },
            sort: Default::default(),
            scoring: Default::default(),
        })
        .await
        .unwrap();
    assert_eq!(at.to.as_deref(), Some("1970-01-01T00:00:10Z"));
    assert_eq!(at.items[0].count, 3);
}

fn hashtag(b: Millis, k: &str) -> BucketKey {
    BucketKey {
        bucket_start: b,
        kind: AggKind::Hashtag,
        source: "web".into(),
        key: k.into(),
    }
}

fn between(from: Millis, to: Millis) -> TrendsQuery {
    TrendsQuery {
        kind: AggKind::Hashtag,
        source: None,
        limit: 100,
        range: TrendsRange::Between { from, to },
        sort: Default::default(),
        scoring: Default::default(),
    }
}

fn counts_of(t: &Trends) -> HashMap<String, u64> {
    t.items.iter().map(|i| (i.key.clone(), i.count)).collect()
}

/// Old buckets leave memory once committed and closed; ranges over them
/// are summed from the index, exactly, also after late counts, beyond the
/// key budget and after a restart (which loads only recent buckets).
#[tokio::test]
async fn old_buckets_leave_memory_and_stay_exact_in_the_index() {
    let d = tempfile::tempdir().unwrap();
    let limits = CountLimits {
        key_budget: 2,
        heavy_hitters: 2,
        retain_ms: 60_000,
        bucket_ms: 10_000,
    };
    let mut counts: Vec<(BucketKey, u64)> =
        (0..19).map(|b| (hashtag(b * 10_000, "x"), 1)).collect();
    // Bucket 190 s: two keys within the budget, three beyond it.
    for (k, n) in [("a", 7), ("b", 6), ("c", 5), ("d", 1), ("e", 1)] {
        counts.push((hashtag(190_000, k), n));
    }
    let truth: HashMap<String, u64> = [("x", 19), ("a", 7), ("b", 6), ("c", 5), ("d", 1), ("e", 1)]
        .into_iter()
        .map(|(k, n)| (k.to_string(), n))
        .collect();
    let (sid, mut s) = state(1, 200_000);
    s.max_ts = Some(205_000);
    {
        let ix = EmbeddedIndex::open_with(d.path(), 15, limits).unwrap();
        ix.apply(Batch {
            counts,
            streams: vec![(sid.clone(), s.clone())],
            ..Batch::default()
        })
        .await
        .unwrap();
        assert_eq!(ix.counters_held(), (21, 2, 20));
        ix.commit().await.unwrap();
        // Floor: align(200 s - 60 s) - 10 s = 130 s; x's buckets 0..130 s left.
        assert_eq!(ix.counters_held(), (21 - 13, 2, 7));
        assert_eq!(
            counts_of(&ix.trends(between(0, 200_000)).await.unwrap()),
            truth
        );
        // A late count for bucket 0: visible at once, and once committed.
        ix.apply(Batch {
            counts: vec![(hashtag(0, "x"), 3)],
            ..Batch::default()
        })
        .await
        .unwrap();
        let t = ix.trends(between(0, 10_000)).await.unwrap();
        assert_eq!(counts_of(&t)["x"], 4);
        ix.commit().await.unwrap();
        let t = ix.trends(between(0, 10_000)).await.unwrap();
        assert_eq!(counts_of(&t)["x"], 4);
        // The 1m window holding bucket 190 s is beyond the budget.
        let w = ix
            .trends(TrendsQuery {
                range: TrendsRange::Window {
                    window: Window {
                        name: "1m".into(),
                        size: 60_000,
                        slide: 10_000,
                    },
                    at: Some(195_000),
                },
                ..between(0, 0)
            })
            .await
            .unwrap();
        assert!(w.approximate);
        // Summary of 2: c (5), then d (1), then e replaces d: e ≈ 2.
        assert_eq!(w.max_error, Some(2));
        let got = counts_of(&w);
        assert_eq!((got["x"], got["a"], got["b"]), (5, 7, 6), "exact ones");
        for (k, n) in &got {
            assert!(n.abs_diff(truth[k]) <= 2 || k == "x", "{k}: {n}");
        }
    }
    let mut truth = truth;
    *truth.get_mut("x").unwrap() += 3;
    let ix = EmbeddedIndex::open_with(d.path(), 15, limits).unwrap();
    // Only buckets from the floor on come back (a, b exact; c, e summarised).
    let (exact, summarised, _) = ix.counters_held();
    assert_eq!(exact, 6 + 2);
    assert_eq!(summarised, 2, "c, d, e's delta documents in a summary of 2");
    assert_eq!(
        counts_of(&ix.trends(between(0, 200_000)).await.unwrap()),
        truth
    );
    let t = ix.trends(between(130_000, 200_000)).await.unwrap();
    assert_eq!(counts_of(&t)["x"], 6);
}

/// A `from`/`to` top N read from the index with a first pass of 4
/// candidates: exact when the N-th total is above the summary's bound,
/// else `approximate` with a `max_error` every missed key stays within;
/// against totals summed here from the generated stream.
#[tokio::test]
async fn range_top_n_is_exact_when_certified_and_bounded_otherwise() {
    let d = tempfile::tempdir().unwrap();
    let limits = CountLimits {
        key_budget: 2,
        heavy_hitters: 2,
        retain_ms: 60_000,
        bucket_ms: 10_000,
    };
    let ix = EmbeddedIndex::open_with(d.path(), 15, limits).unwrap();
    ix.inner.candidates.0.store(4, Ordering::Relaxed);
    ix.inner.candidates.1.store(4, Ordering::Relaxed);
    // Three heavy keys and 40 keys counted once, over 4 buckets, shuffled.
    let mut rng = fastrand::Rng::with_seed(7);
    let mut counts: Vec<(BucketKey, u64)> = vec![];
    for b in 0..4 {
        for (k, n) in [("a", 25), ("b", 22), ("c", 20)] {
            counts.push((hashtag(b * 10_000, k), n));
        }
        for t in 0..10 {
            counts.push((hashtag(b * 10_000, &format!("t{b}_{t}")), 1));
        }
    }
    rng.shuffle(&mut counts);
    let mut truth: HashMap<String, u64> = HashMap::new();
    for (k, n) in &counts {
        *truth.entry(k.key.clone()).or_insert(0) += n;
    }
    let (sid, s) = state(1, 45_000);
    ix.apply(Batch {
        counts,
        streams: vec![(sid, s)],
        ..Batch::default()
    })
    .await
    .unwrap();
    ix.commit().await.unwrap();
    // Top 2: 100 and 88 against a bound of at most 308 / 4 = 77.
    let mut q = between(0, 40_000);
    q.limit = 2;
    let t = ix.trends(q.clone()).await.unwrap();
    assert!(!t.approximate, "{t:?}");
    let got: Vec<(String, u64)> = t.items.iter().map(|i| (i.key.clone(), i.count)).collect();
    assert_eq!(
        got,
        vec![("a".into(), truth["a"]), ("b".into(), truth["b"])]
    );
    // Top 10: the 10th total is 1, below any bound of a full summary.
    q.limit = 10;
    let t = ix.trends(q).await.unwrap();
    assert!(t.approximate, "{t:?}");
    let bound = t.max_error.unwrap();
    assert!(bound > 0);
    for i in &t.items {
        assert_eq!(
            i.count, truth[&i.key],
            "{}: returned counts are exact",
            i.key
        );
    }
    let returned: HashSet<&str> = t.items.iter().map(|i| i.key.as_str()).collect();
    let smallest = t.items.iter().map(|i| i.count).min().unwrap_or(0);
    for (k, n) in &truth {
        if !returned.contains(k.as_str()) && *n > smallest {
            assert!(*n <= bound, "{k} ({n}) missed beyond the bound {bound}");
        }
    }
    for k in ["a", "b", "c"] {
        assert!(returned.contains(k), "{k} is above any bound");
    }
}

#[tokio::test]
async fn search_filters_posts_by_time() {
    let d = tempfile::tempdir().unwrap();
    let ix = EmbeddedIndex::open(d.path(), 15).unwrap();
    ix.apply(Batch {
        events: vec![post("1", 1_000), post("2", 2_000), post("3", 3_000)],
        ..Batch::default()
    })
    .await
    .unwrap();
    ix.commit().await.unwrap();
    let hits = ix
        .search(SearchQuery {
            q: "rust".into(),
            kind: Some("post".into()),
            from: Some(2_000),
            to: Some(3_000),
            limit: 10,
            template_id: None,
        })
        .await
        .unwrap()
        .hits;
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0]["id"], "2");
}

fn search_text(q: &str, limit: usize) -> SearchQuery {
    SearchQuery {
        q: q.into(),
        kind: None,
        from: None,
        to: None,
        limit,
        template_id: None,
    }
}

#[tokio::test]
async fn total_counts_matches_not_returned_hits() {
    let d = tempfile::tempdir().unwrap();
    let ix = EmbeddedIndex::open(d.path(), 15).unwrap();
    let events = (0..25)
        .map(|i| {
            log(
                &format!("e{i}"),
                i * 1000,
                if i % 5 == 0 { "disk full" } else { "disk ok" },
            )
        })
        .collect();
    ix.apply(Batch {
        events,
        ..Batch::default()
    })
    .await
    .unwrap();
    ix.commit().await.unwrap();
    let r = ix.search(search_text("disk", 3)).await.unwrap();
    assert_eq!((r.total, r.hits.len(), r.truncated), (25, 3, false));
    let r = ix.search(search_text("full", 100)).await.unwrap();
    assert_eq!((r.total, r.hits.len()), (5, 5));
    let r = ix
        .search(search_text("class:ERROR AND full", 100))
        .await
        .unwrap();
    assert_eq!(r.total, 5);
}

#[tokio::test]
async fn answers_stop_at_the_byte_bound() {
    let d = tempfile::tempdir().unwrap();
    let ix = EmbeddedIndex::open(d.path(), 15).unwrap();
    // Each body is over 64 KiB, so the bound is reached long before the limit.
    let big = "y".repeat(64 * 1024);
    let n = MAX_SEARCH_BYTES / (64 * 1024) + 10;
    let events = (0..n as i64)
        .map(|i| log(&format!("b{i}"), i, &format!("big {big}")))
        .collect();
    ix.apply(Batch {
        events,
        ..Batch::default()
    })
    .await
    .unwrap();
    ix.commit().await.unwrap();
    let r = ix.search(search_text("big", 10_000)).await.unwrap();
    assert_eq!(r.total, n as u64);
    assert!(r.truncated);
    let bytes: usize = r.hits.iter().map(|h| h.to_string().len()).sum();
    assert!(bytes <= MAX_SEARCH_BYTES, "{bytes}");
    assert!(r.hits.len() < n && !r.hits.is_empty());
}

#[tokio::test]
async fn invalid_query_texts_are_query_errors() {
    let d = tempfile::tempdir().unwrap();
    let ix = EmbeddedIndex::open(d.path(), 15).unwrap();
    for q in [
        "text:*",
        "source:*",
        "nosuchfield:foo",
        "body:foo",
        "doc_type:log",
        "text:[a TO",
        "\"x",
        "(a",
        "a)",
        &"(".repeat(750),
        &format!("{}a{}", "(".repeat(17), ")".repeat(17)),
        &"x".repeat(2000),
    ] {
        match ix.search(search_text(q, 10)).await {
            Err(IndexError::Query(m)) => {
                assert!(
                    !m.contains("doc_type") || q.contains("doc_type"),
                    "{q}: {m}"
                );
                assert!(!m.contains("body") || q.contains("body"), "{q}: {m}");
            }
            other => panic!("{q}: {other:?}"),
        }
    }
    for q in [
        "a AND b",
        "\"a b\"",
        "tags:rust",
        "class:ERROR OR text:x",
        "a -x",
        "*",
        "a*",
    ] {
        assert!(ix.search(search_text(q, 10)).await.is_ok(), "{q}");
    }
}

/// The deepest accepted queries parse and run on a thread with the stack
/// of a Tokio worker (2 MiB), in this unoptimized build.
#[test]
fn deepest_accepted_queries_fit_a_worker_stack() {
    use crate::params::{MAX_QUERY_BYTES, MAX_QUERY_DEPTH};
    let d = tempfile::tempdir().unwrap();
    let ix = EmbeddedIndex::open(d.path(), 15).unwrap();
    let n = MAX_QUERY_DEPTH;
    let mut texts = vec![
        format!("{}a{}", "(".repeat(n), ")".repeat(n)),
        format!("{}a", "NOT ".repeat(n)),
        format!("{}a{}", "(NOT ".repeat(n / 2), ")".repeat(n / 2)),
        format!("{}a{}", "text:(".repeat(n), ")".repeat(n)),
        format!("{}a{}", "-(+(".repeat(n / 2), ")".repeat(n)),
    ];
    let filler = "a OR ".repeat(MAX_QUERY_BYTES);
    for t in texts.iter_mut() {
        let room = MAX_QUERY_BYTES - t.len();
        t.insert_str(0, &filler[..room - room % 5]);
    }
    texts.push("a ".repeat(MAX_QUERY_BYTES / 2));
    texts.push("\"a\"~1^2 ".repeat(MAX_QUERY_BYTES / 10));
    let inner = ix.inner.clone();
    std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(move || {
            for t in texts {
                assert!(t.len() <= MAX_QUERY_BYTES, "{}", t.len());
                let r = inner.search(&search_text(&t, 10));
                assert!(r.is_ok(), "{t}: {r:?}");
            }
        })
        .unwrap()
        .join()
        .unwrap();
}

/// A batch of `n` ERROR log events ending the stream at `end`.
fn errors(from: u64, n: u64, end: u64) -> Batch {
    Batch {
        events: (from..from + n)
            .map(|i| log(&format!("log:web:1:{i}"), 10_000, "disk full"))
            .collect(),
        counts: vec![(key(0, "ERROR"), n)],
        streams: vec![state(end, 70_000)],
        ..Batch::default()
    }
}

fn log_classes() -> TrendsQuery {
    TrendsQuery {
        kind: AggKind::LogClass,
        ..between(0, 60_000)
    }
}

#[tokio::test]
async fn a_batch_applied_during_a_commit_is_visible_at_once_and_durable_with_the_next() {
    let d = tempfile::tempdir().unwrap();
    let everything = SearchQuery {
        q: String::new(),
        kind: Some("log".into()),
        from: None,
        to: None,
        limit: 1,
        template_id: None,
    };
    {
        let ix = EmbeddedIndex::open(d.path(), 15).unwrap();
        assert!(ix.applies_during_commit());
        ix.apply(errors(0, 300, 300)).await.unwrap();
        // A commit in progress holds the writer: the next batch must not
        // wait for it.
        let commit_in_progress = ix.inner.writer.lock().unwrap();
        // Called directly (the lock is held on this thread): it returns
        // instead of waiting for the writer.
        ix.inner.apply(errors(300, 200, 500)).unwrap();
        let t = ix.inner.trends(&log_classes()).unwrap();
        assert_eq!(counts_of(&t)["ERROR"], 500, "counted before any commit");
        drop(commit_in_progress);

        let positions = ix.commit().await.unwrap();
        assert_eq!(positions.iter().map(|p| p.end).max(), Some(500));
        assert_eq!(ix.search(everything.clone()).await.unwrap().total, 500);
    }
    let ix = EmbeddedIndex::open(d.path(), 15).unwrap();
    assert_eq!(ix.stream_states()["web:1"].applied_end, 500);
    assert_eq!(ix.search(everything).await.unwrap().total, 500);
    let t = ix.trends(log_classes()).await.unwrap();
    assert_eq!(counts_of(&t)["ERROR"], 500);
}

#[tokio::test]
async fn batches_applied_while_commits_run_are_all_durable_with_their_positions() {
    // Commits on their own thread race the applies: whatever a commit
    // acknowledges must be in it, documents included.
    let d = tempfile::tempdir().unwrap();
    let ix = EmbeddedIndex::open(d.path(), 15).unwrap();
    let committer = {
        let ix = ix.clone();
        tokio::spawn(async move {
            let mut acked = 0u64;
            for _ in 0..20 {
                let positions = ix.commit().await.unwrap();
                if let Some(end) = positions.iter().map(|p| p.end).max() {
                    // The reader sees this commit: every acknowledged
                    // record's document is in it.
                    let s = ix.inner.reader.searcher();
                    let logs = tantivy::query::TermQuery::new(
                        Term::from_field_text(ix.inner.f.doc_type, "log"),
                        tantivy::schema::IndexRecordOption::Basic,
                    );
                    let docs = s.search(&logs, &tantivy::collector::Count).unwrap() as u64;
                    assert!(
                        docs >= end,
                        "acknowledged {end} with {docs} documents committed"
                    );
                    acked = end;
                }
                tokio::task::yield_now().await;
            }
            acked
        })
    };
    for i in 0..50u64 {
        ix.apply(errors(i * 20, 20, (i + 1) * 20)).await.unwrap();
    }
    committer.await.unwrap();
    ix.commit().await.unwrap();
    drop(ix);
    let ix = EmbeddedIndex::open(d.path(), 15).unwrap();
    assert_eq!(ix.stream_states()["web:1"].applied_end, 1000);
    let t = ix.trends(log_classes()).await.unwrap();
    assert_eq!(counts_of(&t)["ERROR"], 1000);
}

/// The doc-store compression an index's `meta.json` names.
fn docstore_compression(dir: &std::path::Path) -> String {
    let meta = std::fs::read_to_string(dir.join("meta.json")).unwrap();
    let meta: serde_json::Value = serde_json::from_str(&meta).unwrap();
    meta["index_settings"]["docstore_compression"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Opens the index in `dir`, writes one post and commits.
async fn write_post(dir: &std::path::Path, id: &str, t: Millis) -> EmbeddedIndex {
    let ix = EmbeddedIndex::open(dir, 15).unwrap();
    ix.apply(Batch {
        events: vec![post(id, t)],
        ..Batch::default()
    })
    .await
    .unwrap();
    ix.commit().await.unwrap();
    ix
}

#[tokio::test]
async fn new_indexes_store_lz4_and_zstd_indexes_stay_readable_and_writable() {
    let fresh = tempfile::tempdir().unwrap();
    drop(EmbeddedIndex::open(fresh.path(), 15).unwrap());
    assert_eq!(docstore_compression(fresh.path()), "lz4");

    // An index an earlier version made: zstd blocks with one post in them.
    let old = tempfile::tempdir().unwrap();
    let settings = tantivy::IndexSettings {
        docstore_blocksize: DOCSTORE_BLOCK,
        docstore_compression: tantivy::store::Compressor::Zstd(Default::default()),
        ..Default::default()
    };
    drop(
        tantivy::Index::builder()
            .schema(schema::schema().0)
            .settings(settings)
            .create_in_dir(old.path())
            .unwrap(),
    );
    drop(write_post(old.path(), "1", 1_000).await);
    let ix = write_post(old.path(), "2", 2_000).await;
    assert!(docstore_compression(old.path()).starts_with("zstd"));
    let mut ids: Vec<String> = ix
        .search(search_text("rust", 10))
        .await
        .unwrap()
        .hits
        .iter()
        .map(|h| h["id"].as_str().unwrap_or_default().to_string())
        .collect();
    ids.sort();
    assert_eq!(ids, ["1", "2"]);
}
