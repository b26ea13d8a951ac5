//! Retries tested for real: a fault-injecting proxy (`es_support::proxy`)
//! between the Elasticsearch backend and a real index server (osmem-server
//! and noida-db, or `FAROL_TEST_ES_URL`) refuses whole bulk requests with
//! 429 and 503, holds single items back with per-item 429s, and cuts the
//! connection while the answer to a request the server stored is sent,
//! while the server stores what gets through. Final counts equal the truth computed
//! from the input, the retry counter rose by exactly what the proxy
//! refused, and nothing is dead-lettered. Then one bulk answer mixing
//! written items, per-item 429s and mapping errors provoked on purpose:
//! only the 429 items are sent again, the others are dead-lettered with
//! their reason.
//!
//! The tests share the process-wide retry counter, so they take turns.

mod es_support;

use es_support::proxy::{Faults, Proxy};
use es_support::{log_event, servers, unique_prefix, EsServer, Flavor, CLASSES, T0};
use farol_common::config::EsEvents;
use farol_common::model::{AggKind, Batch, BucketKey, Event, StreamState};
use farol_indexer::elasticsearch::client::EsSettings;
use farol_indexer::elasticsearch::{es_metrics, ElasticsearchIndex};
use farol_indexer::{Index, TrendsQuery, TrendsRange};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Duration;

/// One test at a time: the retry counter is process-wide.
static TURN: Mutex<()> = Mutex::new(());

fn settings(url: &str, prefix: &str) -> EsSettings {
    es_support::settings(url, prefix, Duration::from_secs(60))
}

fn log(source: &str, i: u64, level: Option<&str>) -> Event {
    Event::Log(log_event(source, i, level))
}

/// Events `range` of `src` with their counts and stream state; adds the
/// per-class truth.
fn batch(src: &str, range: std::ops::Range<u64>, truth: &mut BTreeMap<String, u64>) -> Batch {
    let mut counts: BTreeMap<BucketKey, u64> = BTreeMap::new();
    let mut events = Vec::new();
    for i in range.clone() {
        let e = log(src, i, None);
        let class = CLASSES[(i % 4) as usize];
        *counts
            .entry(BucketKey {
                bucket_start: e.ts() - e.ts().rem_euclid(10_000),
                kind: AggKind::LogClass,
                source: src.into(),
                key: class.into(),
            })
            .or_insert(0) += 1;
        *truth.entry(class.to_string()).or_insert(0) += 1;
        events.push(e);
    }
    let last = T0 + (range.end as i64 - 1) * 1000;
    Batch {
        events,
        counts: counts.into_iter().collect(),
        streams: vec![(
            format!("{src}:stream"),
            StreamState {
                source: src.into(),
                applied_end: range.end * 100,
                line_no: range.end,
                max_ts: Some(last),
                last_ts: Some(last),
                watermark: Some(last - 30_000),
                wall_ms: None,
                templates: None,
            },
        )],
        ..Batch::default()
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn totals(rt: &tokio::runtime::Runtime, ix: &dyn Index, src: &str) -> BTreeMap<String, u64> {
    let t = rt
        .block_on(ix.trends(TrendsQuery {
            kind: AggKind::LogClass,
            source: Some(src.into()),
            limit: 100,
            range: TrendsRange::Between {
                from: 0,
                to: 4_102_444_800_000,
            },
            sort: Default::default(),
            scoring: Default::default(),
        }))
        .expect("trends");
    t.items.into_iter().map(|i| (i.key, i.count)).collect()
}

#[test]
fn bulk_429_and_503_are_retried_until_every_document_is_stored_on_every_server() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    for flavor in servers() {
        refused_bulks_are_retried(flavor);
    }
}

const EVENTS: u64 = 3000;

fn refused_bulks_are_retried(flavor: Flavor) {
    let es = EsServer::start(flavor);
    let rt = runtime();
    // Every 3rd bulk request refused with 429, every 7th (not 3rd) with
    // 503; every 11th of the others stored and its answer cut; in every
    // 5th of the rest, every 4th item held back with a per-item 429.
    let proxy = rt.block_on(Proxy::start(
        &es.url,
        Faults {
            whole: Box::new(|n| match n {
                n if n % 3 == 0 => Some(429),
                n if n % 7 == 0 => Some(503),
                _ => None,
            }),
            lose_answer: Box::new(|n| n % 11 == 0),
            item: Box::new(|n, k, _, _| n % 5 == 0 && k % 4 == 1),
        },
    ));
    let prefix = unique_prefix("faults");
    let src = format!("faults-{}", flavor as u8);
    let retried_before = es_metrics().retried.get();
    let rejected_before = es_metrics().rejected.with_label_values(&[&src]).get();
    let mut truth = BTreeMap::new();
    {
        let ix = rt
            .block_on(ElasticsearchIndex::open(&settings(&proxy.url, &prefix)))
            .expect("open through the proxy");
        for start in (0..EVENTS).step_by(500) {
            rt.block_on(ix.apply(batch(&src, start..start + 500, &mut truth)))
                .expect("apply");
            let acked = rt.block_on(ix.commit()).expect("commit");
            assert_eq!(acked.len(), 1, "{flavor:?}: the commit acknowledges");
        }
        es.refresh();
        assert_eq!(totals(&rt, &ix, &src), truth, "{flavor:?}: /trends");
    }
    let stats = proxy.stats();
    eprintln!(
        "{flavor:?}: {} bulk requests, refused {:?} ({} documents), {} items held back, \
         {} documents' answers cut",
        stats.bulks, stats.refused, stats.refused_docs, stats.withheld_docs, stats.lost_docs
    );
    // The faults happened.
    assert!(
        stats.refused.get(&429).copied().unwrap_or(0) > 0,
        "{stats:?}"
    );
    assert!(
        stats.refused.get(&503).copied().unwrap_or(0) > 0,
        "{stats:?}"
    );
    assert!(stats.withheld_docs > 0, "{stats:?}");
    assert!(stats.lost_docs > 0, "{stats:?}");
    // Every event reached the server once, and once more after each cut
    // answer (refused requests and held-back items never reach it).
    for i in 0..EVENTS {
        let id = format!("{src}:{i}");
        let again = stats.lost.get(&id).copied().unwrap_or(0);
        assert_eq!(
            stats.forwarded.get(&id),
            Some(&(1 + again)),
            "{flavor:?}: {id}"
        );
    }
    // What the server holds, asked directly (not through the proxy).
    assert_eq!(
        es.count(&format!("{prefix}-logs*"), None),
        EVENTS,
        "{flavor:?}"
    );
    for (class, n) in &truth {
        let got = es.count(
            &format!("{prefix}-logs*"),
            Some(json!({"term": {"class": class}})),
        );
        assert_eq!(got, *n, "{flavor:?}: class {class}");
    }
    assert_eq!(
        es.count(&format!("{prefix}-deadletter-*"), None),
        0,
        "{flavor:?}: nothing dead-lettered"
    );
    assert_eq!(
        es_metrics().rejected.with_label_values(&[&src]).get(),
        rejected_before,
        "{flavor:?}"
    );
    // The retry counter rose by exactly the documents the proxy refused
    // or whose answer it cut.
    assert_eq!(
        es_metrics().retried.get() - retried_before,
        stats.refused_docs + stats.withheld_docs + stats.lost_docs,
        "{flavor:?}: retried documents"
    );
}

#[test]
fn a_bulk_answer_with_mixed_item_errors_retries_only_the_retryable_on_every_server() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    for flavor in servers() {
        mixed_item_errors(flavor);
    }
}

const MIXED: u64 = 40;

fn mixed_item_errors(flavor: Flavor) {
    let es = EsServer::start(flavor);
    let rt = runtime();
    let prefix = unique_prefix("mixed-retry");
    let src = format!("mixed-retry-{}", flavor as u8);
    // A mapping conflict provoked on purpose: this month's log index maps
    // `level` as a number, so every event that carries a level is rejected.
    let index = format!("{prefix}-logs-2001.01");
    let (st, v) = es.req(
        "PUT",
        &format!("/{index}"),
        Some(json!({"mappings": {"properties": {"level": {"type": "long"}}}})),
    );
    assert!(st < 300, "{flavor:?}: {v}");
    // Events i % 4 == 3 (not their dead letters) are held back with a
    // per-item 429 the first time.
    let events_of = format!("{src}:");
    let held = move |id: &str| {
        id.strip_prefix(&events_of)
            .and_then(|i| i.parse::<u64>().ok())
            .is_some_and(|i| i % 4 == 3)
    };
    let proxy = rt.block_on(Proxy::start(
        &es.url,
        Faults {
            whole: Box::new(|_| None),
            lose_answer: Box::new(|_| false),
            item: Box::new(move |_, _, id, before| before == 0 && held(id)),
        },
    ));
    // Monthly indices: the conflict lives in this month's index.
    let s = EsSettings {
        events: EsEvents::Monthly,
        ..settings(&proxy.url, &prefix)
    };
    let ix = rt
        .block_on(ElasticsearchIndex::open(&s))
        .expect("open through the proxy");
    // Events i % 5 < 3 carry a level (rejected by the server for good).
    let has_level = |i: u64| i % 5 < 3;
    let events: Vec<Event> = (0..MIXED)
        .map(|i| log(&src, i, has_level(i).then_some("error")))
        .collect();
    let retried_before = es_metrics().retried.get();
    let rejected_before = es_metrics().rejected.with_label_values(&[&src]).get();
    rt.block_on(ix.apply(Batch {
        events,
        ..Batch::default()
    }))
    .expect("apply");
    rt.block_on(ix.commit())
        .expect("the commit succeeds: rejections are dead-lettered");

    let id = |i: u64| format!("{src}:{i}");
    let want_held: BTreeSet<String> = (0..MIXED).filter(|i| i % 4 == 3).map(id).collect();
    let want_rejected: BTreeSet<String> = (0..MIXED).filter(|i| has_level(*i)).map(id).collect();
    let stats = proxy.stats();
    // The first bulk of events: one answer with written items, items the
    // server rejected (mapping) and items held back (429).
    let first = stats
        .requests
        .iter()
        .find(|r| r.sent.iter().any(|s| s.starts_with(&src)))
        .expect("the events' bulk request");
    let held_now: BTreeSet<String> = first.withheld.iter().cloned().collect();
    assert_eq!(held_now, want_held, "{flavor:?}");
    let server_rejected: BTreeSet<String> =
        first.server_errors.iter().map(|(i, _)| i.clone()).collect();
    let want_first_rejected: BTreeSet<String> =
        want_rejected.difference(&want_held).cloned().collect();
    assert_eq!(server_rejected, want_first_rejected, "{flavor:?}");
    assert!(
        first.server_errors.iter().all(|(_, s)| *s == 400),
        "{flavor:?}: {first:?}"
    );
    assert!(
        first.sent.len() > server_rejected.len(),
        "{flavor:?}: written items too"
    );
    // Only the held-back items were sent again, once; rejected ones never.
    for i in 0..MIXED {
        assert_eq!(
            stats.forwarded.get(&id(i)),
            Some(&1),
            "{flavor:?}: event {i} reached the server once"
        );
    }
    assert_eq!(
        es_metrics().retried.get() - retried_before,
        want_held.len() as u64,
        "{flavor:?}: retried exactly the held-back items"
    );
    // The server's rejections are dead letters with their reason; the rest is stored.
    let stored = MIXED - want_rejected.len() as u64;
    assert_eq!(
        es.count(&format!("{prefix}-logs*"), None),
        stored,
        "{flavor:?}"
    );
    let dl = format!("{prefix}-deadletter-*");
    let (st, v) = es.req(
        "POST",
        &format!("/{dl}/_search"),
        Some(json!({"size": 100, "query": {"match_all": {}}})),
    );
    assert_eq!(st, 200, "{v}");
    let hits = v["hits"]["hits"].as_array().expect("hits");
    let dead: BTreeSet<String> = hits
        .iter()
        .filter_map(|h| h["_source"]["id"].as_str())
        .map(|s| s.trim_start_matches("rejected:").to_string())
        .collect();
    assert_eq!(dead, want_rejected, "{flavor:?}: dead letters");
    for h in hits {
        assert_eq!(h["_source"]["reason"], "index_rejected", "{flavor:?}");
        let detail = h["_source"]["detail"].as_str().unwrap_or("");
        assert!(
            detail.contains("document_parsing_exception")
                || detail.contains("mapper_parsing_exception"),
            "{flavor:?}: reason kept: {detail}"
        );
        assert!(detail.contains(&index), "{detail}");
    }
    assert_eq!(
        es_metrics().rejected.with_label_values(&[&src]).get() - rejected_before,
        want_rejected.len() as u64,
        "{flavor:?}: counted"
    );
}
