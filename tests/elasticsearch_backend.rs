//! The Elasticsearch index backend against real Elasticsearch-API servers
//! (osmem-server and noida-db, or `FAROL_TEST_ES_URL`): templates installed,
//! events, dead letters and counters written, stream state persisted and
//! resumed, rewrites idempotent, and documents rejected for good
//! dead-lettered with their reason; the event storage (data streams under
//! ILM, or monthly indices) decided by what the server answers.

mod es_support;

use es_support::{log_event, servers, unique_prefix, EsServer, Flavor, CLASSES, T0};
use farol_common::config::EsEvents;
use farol_common::model::{AggKind, Batch, BucketKey, Event, LogEvent, StreamState};
use farol_indexer::elasticsearch::client::EsSettings;
use farol_indexer::elasticsearch::lifecycle::{Ilm, IlmPolicy};
use farol_indexer::elasticsearch::{es_metrics, ElasticsearchIndex};
use farol_indexer::{Index, SearchQuery, TrendSort, TrendsQuery, TrendsRange};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;

fn settings(url: &str, prefix: &str) -> EsSettings {
    es_support::settings(url, prefix, Duration::from_secs(30))
}

fn log(source: &str, i: u64, level: Option<&str>) -> Event {
    Event::Log(LogEvent {
        template: Some("request <*> done".into()),
        template_id: Some(template_id(i).into()),
        ..log_event(source, i, level)
    })
}

/// The template id event `i` carries (three ids, by `i % 3`).
fn template_id(i: u64) -> &'static str {
    ["00000000000000a0", "00000000000000b1", "00000000000000c2"][(i % 3) as usize]
}

/// Events `range` of source `src` with their count increments and stream state.
fn batch(src: &str, range: std::ops::Range<u64>, truth: &mut BTreeMap<String, u64>) -> Batch {
    let mut counts: BTreeMap<BucketKey, u64> = BTreeMap::new();
    let mut events = Vec::new();
    for i in range.clone() {
        let e = log(src, i, Some("info"));
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
        dead_letters: vec![],
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
        retired: vec![],
        offsets: vec![],
        records: vec![],
    }
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

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn counts_state_and_rewrites_on_every_server() {
    for flavor in servers() {
        counts_state_and_rewrites(flavor);
    }
}

fn counts_state_and_rewrites(flavor: Flavor) {
    let es = EsServer::start(flavor);
    let rt = runtime();
    let prefix = unique_prefix("backend");
    let s = settings(&es.url, &prefix);
    let mut truth = BTreeMap::new();
    {
        let ix = rt.block_on(ElasticsearchIndex::open(&s)).expect("open");
        for tpl in ["logs", "posts", "deadletter", "trends", "state"] {
            let (st, v) = es.req("GET", &format!("/_index_template/{prefix}-{tpl}"), None);
            assert_eq!(st, 200, "{flavor:?}: template {tpl}: {v}");
        }
        for part in [0..300, 300..450, 450..500] {
            rt.block_on(ix.apply(batch("app", part, &mut truth)))
                .expect("apply");
            let acked = rt.block_on(ix.commit()).expect("commit");
            assert_eq!(acked.len(), 1, "{flavor:?}");
        }
        assert_eq!(acked_end(&ix), 50_000, "{flavor:?}");
        es.refresh();
        assert_eq!(totals(&rt, &ix, "app"), truth, "{flavor:?}");
    }
    assert_eq!(
        es.count(&format!("{prefix}-logs*"), None),
        500,
        "{flavor:?}"
    );
    let class_count = es.count(
        &format!("{prefix}-logs*"),
        Some(json!({"term": {"class": "ERROR"}})),
    );
    assert_eq!(class_count, truth["ERROR"], "{flavor:?}");

    // A restart resumes from the persisted state; rewriting the same events
    // (a replay) replaces documents and counts nothing twice.
    let ix = rt.block_on(ElasticsearchIndex::open(&s)).expect("reopen");
    assert_eq!(acked_end(&ix), 50_000, "{flavor:?}: state resumed");
    let mut again = batch("app", 0..500, &mut BTreeMap::new());
    again.counts.clear();
    rt.block_on(ix.apply(again)).expect("apply");
    rt.block_on(ix.commit()).expect("commit");
    es.refresh();
    assert_eq!(
        es.count(&format!("{prefix}-logs*"), None),
        500,
        "{flavor:?}"
    );
    assert_eq!(totals(&rt, &ix, "app"), truth, "{flavor:?}");

    // `/search` by template id: exactly the events carrying it (500 events,
    // ids by i % 3: 167, 167, 166).
    for (k, want) in [(0u64, 167u64), (1, 167), (2, 166)] {
        let hits = rt
            .block_on(ix.search(SearchQuery {
                q: String::new(),
                kind: Some("log".into()),
                from: None,
                to: None,
                limit: 5,
                template_id: Some(template_id(k).into()),
            }))
            .expect("search");
        assert_eq!(hits.total, want, "{flavor:?}: template {k}");
        assert!(
            hits.hits.iter().all(|h| h["template_id"] == template_id(k)),
            "{flavor:?}"
        );
    }

    // `/search` text as the embedded index reads it: every word required,
    // its field names (`class`, `source`, `tags`, `text`), its errors.
    let search = |q: &str| {
        rt.block_on(ix.search(SearchQuery {
            q: q.into(),
            kind: Some("log".into()),
            from: None,
            to: None,
            limit: 3,
            template_id: None,
        }))
    };
    let total = |q: &str| search(q).map(|h| h.total).expect("search");
    assert_eq!(total("class:ERROR"), truth["ERROR"], "{flavor:?}");
    assert_eq!(total("source:app request"), 500, "{flavor:?}");
    assert_eq!(total("\"request 42 done\""), 1, "{flavor:?}: a phrase");
    assert_eq!(
        total("text:request class:WARN"),
        truth["WARN"],
        "{flavor:?}"
    );
    assert_eq!(total("request -done"), 0, "{flavor:?}");
    assert_eq!(
        total("class:ERROR OR class:WARN"),
        truth["ERROR"] + truth["WARN"],
        "{flavor:?}"
    );
    assert_eq!(total("tags:rust"), 0, "{flavor:?}: logs carry no hashtags");
    let err = search("author:bob")
        .expect_err("an unknown field")
        .to_string();
    assert!(err.contains("unknown field 'author'"), "{flavor:?}: {err}");

    // The window form: the last closed 1m window that holds data.
    let w = rt
        .block_on(ix.trends(TrendsQuery {
            kind: AggKind::LogClass,
            source: None,
            limit: 10,
            range: TrendsRange::Window {
                window: farol_common::time::Window {
                    name: "1m".into(),
                    size: 60_000,
                    slide: 10_000,
                },
                at: None,
            },
            sort: Default::default(),
            scoring: Default::default(),
        }))
        .expect("window trends");
    // Watermark T0+469s: windows end on 10 s boundaries at or before it.
    assert_eq!(w.to.as_deref(), Some("2001-01-01T00:07:40Z"), "{flavor:?}");
    let n: u64 = w.items.iter().map(|i| i.count).sum();
    assert_eq!(n, 60, "{flavor:?}: one event a second in a 1m window");
}

fn acked_end(ix: &ElasticsearchIndex) -> u64 {
    ix.stream_states()
        .get("app:stream")
        .map(|s| s.applied_end)
        .unwrap_or(0)
}

#[test]
fn rejected_documents_are_dead_lettered_with_their_reason_on_every_server() {
    for flavor in servers() {
        rejected_documents_are_dead_lettered(flavor);
    }
}

fn rejected_documents_are_dead_lettered(flavor: Flavor) {
    let es = EsServer::start(flavor);
    let rt = runtime();
    let prefix = unique_prefix("mixed");
    // A mapping conflict provoked on purpose: this month's log index exists
    // with `level` as a number, so lines that carry a level are rejected.
    let index = format!("{prefix}-logs-2001.01");
    let (st, v) = es.req(
        "PUT",
        &format!("/{index}"),
        Some(json!({"mappings": {"properties": {"level": {"type": "long"}}}})),
    );
    assert!(st < 300, "{flavor:?}: {v}");
    // Monthly indices: the conflict lives in this month's index.
    let s = EsSettings {
        events: EsEvents::Monthly,
        ..settings(&es.url, &prefix)
    };
    let ix = rt.block_on(ElasticsearchIndex::open(&s)).expect("open");
    let conflicts = ix.mapping_conflicts();
    assert!(
        conflicts
            .iter()
            .any(|c| c.index == index && c.field == "level"),
        "{flavor:?}: the differing mapping is reported by name: {conflicts:?}"
    );
    let src = format!("mixed-{}", flavor as u8);
    let events: Vec<Event> = (0..10)
        .map(|i| log(&src, i, (i % 5 < 3).then_some("error")))
        .collect();
    let before = es_metrics().rejected.with_label_values(&[&src]).get();
    rt.block_on(ix.apply(Batch {
        events,
        ..Batch::default()
    }))
    .expect("apply");
    rt.block_on(ix.commit())
        .expect("the commit succeeds: rejections are dead-lettered");
    assert_eq!(es.count(&format!("{prefix}-logs*"), None), 4, "{flavor:?}");
    let dl = format!("{prefix}-deadletter-*");
    assert_eq!(
        es.count(&dl, Some(json!({"term": {"reason": "index_rejected"}}))),
        6,
        "{flavor:?}"
    );
    assert_eq!(
        es_metrics().rejected.with_label_values(&[&src]).get() - before,
        6,
        "{flavor:?}: counted"
    );
    let (st, v) = es.req(
        "POST",
        &format!("/{dl}/_search"),
        Some(json!({"size": 10, "query": {"match_all": {}}})),
    );
    assert_eq!(st, 200, "{v}");
    let hits = v["hits"]["hits"].as_array().expect("hits");
    assert_eq!(hits.len(), 6, "{flavor:?}");
    for h in hits {
        let detail = h["_source"]["detail"].as_str().unwrap_or("");
        assert!(
            detail.contains("document_parsing_exception")
                || detail.contains("mapper_parsing_exception"),
            "{flavor:?}: reason kept: {detail}"
        );
        assert!(detail.contains(&index), "{detail}");
    }
}

#[test]
fn a_planted_burst_ranks_first_by_score_on_every_server() {
    for flavor in servers() {
        planted_burst(flavor);
    }
}

/// Counters written straight to the backend: per minute `steady` 150 and
/// `burst` 5, and `burst` 100 in minute 6. Scored over minute 6 against
/// minutes 0..6 (the default baseline of 6 spans).
fn planted_burst(flavor: Flavor) {
    let es = EsServer::start(flavor);
    let rt = runtime();
    let prefix = unique_prefix("score");
    let ix = rt
        .block_on(ElasticsearchIndex::open(&settings(&es.url, &prefix)))
        .expect("open");
    let mut counts = vec![];
    for minute in 0..7i64 {
        for (key, n) in [
            ("steady", 150),
            ("burst", if minute == 6 { 100 } else { 5 }),
        ] {
            counts.push((
                BucketKey {
                    bucket_start: T0 + minute * 60_000,
                    kind: AggKind::Hashtag,
                    source: "feed".into(),
                    key: key.into(),
                },
                n,
            ));
        }
    }
    rt.block_on(ix.apply(Batch {
        counts,
        ..Batch::default()
    }))
    .expect("apply");
    rt.block_on(ix.commit()).expect("commit");
    es.refresh();
    let ask = |sort| {
        rt.block_on(ix.trends(TrendsQuery {
            kind: AggKind::Hashtag,
            source: None,
            limit: 10,
            range: TrendsRange::Between {
                from: T0 + 6 * 60_000,
                to: T0 + 7 * 60_000,
            },
            sort,
            scoring: Default::default(),
        }))
        .expect("trends")
        .items
        .into_iter()
        .map(|i| (i.key, i.count, i.score))
        .collect::<Vec<_>>()
    };
    // Expected (documented formula, N = 6, smoothing 1):
    // burst  e = (30 + 1) / 7,  z = (100 - e) / sqrt(e) = 45.41
    // steady e = (900 + 1) / 7, z = (150 - e) / sqrt(e) = 1.88
    assert_eq!(
        ask(TrendSort::Count),
        vec![("steady".into(), 150, 1.88), ("burst".into(), 100, 45.41)],
        "{flavor:?}"
    );
    assert_eq!(
        ask(TrendSort::Score),
        vec![("burst".into(), 100, 45.41), ("steady".into(), 150, 1.88)],
        "{flavor:?}"
    );
}

#[test]
fn event_storage_follows_what_the_server_supports_on_every_server() {
    for flavor in servers() {
        event_storage(flavor);
    }
}

/// Data streams under ILM asked for (the default). osmem-server and
/// noida-db answer that they have neither (seen: `PUT _ilm/policy` → 400
/// "no handler found" on both; `PUT _data_stream` → 400
/// `unsupported_operation_exception` on osmem, "no handler found" on
/// noida): the index falls back to monthly indices without ILM, says why,
/// and writes exactly. A server with both (`FAROL_TEST_ES_URL`) gets the
/// data streams, under the policy, and a replay is a duplicate (409).
fn event_storage(flavor: Flavor) {
    let es = EsServer::start(flavor);
    let rt = runtime();
    let prefix = unique_prefix("layout");
    let s = EsSettings {
        events: EsEvents::DataStream,
        ilm: Some(IlmPolicy {
            retention: Duration::from_secs(7 * 86_400),
            rollover_max_age: Duration::from_secs(86_400),
            rollover_max_size: "10gb".into(),
        }),
        ..settings(&es.url, &prefix)
    };
    let ix = rt.block_on(ElasticsearchIndex::open(&s)).expect("open");
    let layout = ix.layout().clone();
    let (st, tpl) = es.req("GET", &format!("/_index_template/{prefix}-logs"), None);
    assert_eq!(st, 200, "{tpl}");
    let tpl = &tpl["index_templates"][0]["index_template"];
    match flavor {
        Flavor::Osmem | Flavor::Noida => {
            assert_eq!(layout.requested, EsEvents::DataStream, "{flavor:?}");
            assert_eq!(layout.events, EsEvents::Monthly, "{flavor:?}: fell back");
            let why = layout.fallback.clone().unwrap_or_default();
            let expected = match flavor {
                Flavor::Osmem => "data streams are not supported",
                _ => "no handler found",
            };
            assert!(why.contains(expected), "{flavor:?}: {why}");
            assert!(
                matches!(&layout.ilm, Ilm::Unsupported(w) if w.contains("no handler found")),
                "{flavor:?}: {:?}",
                layout.ilm
            );
            // The data-stream template was replaced by the monthly one.
            assert_eq!(
                tpl["index_patterns"],
                json!([format!("{prefix}-logs-*")]),
                "{flavor:?}: {tpl}"
            );
            assert!(
                tpl["data_stream"].is_null(),
                "{flavor:?}: no data stream left: {tpl}"
            );
        }
        Flavor::External => {
            assert_eq!(layout.events, EsEvents::DataStream, "{layout:?}");
            assert_eq!(
                layout.ilm,
                Ilm::Installed(format!("{prefix}-events")),
                "{layout:?}"
            );
            let (st, v) = es.req("GET", &format!("/_data_stream/{prefix}-logs"), None);
            assert_eq!(st, 200, "{v}");
            assert_eq!(
                v["data_streams"][0]["ilm_policy"],
                json!(format!("{prefix}-events")),
                "{v}"
            );
        }
    }
    let mut truth = BTreeMap::new();
    rt.block_on(ix.apply(batch("app", 0..200, &mut truth)))
        .expect("apply");
    rt.block_on(ix.commit()).expect("commit");
    let dups_before = es_metrics().duplicates.get();
    // A replay of the same events (no counts): nothing new stored.
    let mut again = batch("app", 0..200, &mut BTreeMap::new());
    again.counts.clear();
    rt.block_on(ix.apply(again)).expect("apply");
    rt.block_on(ix.commit()).expect("commit");
    assert_eq!(
        es.count(&format!("{prefix}-logs*"), None),
        200,
        "{flavor:?}"
    );
    assert_eq!(totals(&rt, &ix, "app"), truth, "{flavor:?}");
    match layout.events {
        EsEvents::Monthly => {
            // Where monthly indices put them: event time 2001-01.
            assert_eq!(
                es.count(&format!("{prefix}-logs-2001.01"), None),
                200,
                "{flavor:?}"
            );
        }
        EsEvents::DataStream => {
            // `create` into the data stream: the replay answered 409s.
            assert!(
                es_metrics().duplicates.get() - dups_before >= 200,
                "{flavor:?}: duplicates counted"
            );
        }
    }
}

/// Documents per second indexed, at several bulk sizes, into each server:
/// `cargo test --test elasticsearch_backend -- --ignored --nocapture
/// bulk_throughput` (`FAROL_BENCH_DOCS`, default 100000; `FAROL_BENCH_SIZES`,
/// default `500,2000,5000`). Events are applied in batches of 10 000 and
/// committed after each, as the pipeline does; timed from the first apply
/// to the last commit, each size on a fresh server; every run's count is
/// checked afterwards. Event
/// documents only (about 400 bytes of JSON each): no counters.
#[test]
#[ignore = "a measurement, not a test: run by hand for BENCHMARKS.md"]
fn bulk_throughput() {
    let docs: u64 = std::env::var("FAROL_BENCH_DOCS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let sizes: Vec<usize> = std::env::var("FAROL_BENCH_SIZES")
        .unwrap_or_else(|_| "500,2000,5000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let load = || std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    for flavor in servers() {
        let rt = runtime();
        for &size in &sizes {
            // A fresh server for each size: a server already holding the
            // previous runs' documents would slow the later runs.
            let es = EsServer::start(flavor);
            let prefix = unique_prefix("bench");
            let s = EsSettings {
                bulk_max_docs: size,
                bulk_max_bytes: 5 * 1024 * 1024,
                bulk_concurrency: 2,
                ..settings(&es.url, &prefix)
            };
            let ix = rt.block_on(ElasticsearchIndex::open(&s)).expect("open");
            let batches: Vec<Batch> = (0..docs)
                .step_by(10_000)
                .map(|start| {
                    // Event documents only: no counter increments, so each
                    // commit writes the events and the one state document.
                    let mut b = batch(
                        "bench",
                        start..(start + 10_000).min(docs),
                        &mut BTreeMap::new(),
                    );
                    b.counts.clear();
                    b
                })
                .collect();
            let doc_bytes = log("bench", 12_345, Some("info"))
                .document()
                .to_string()
                .len();
            let load_before = load();
            let t = std::time::Instant::now();
            for b in batches {
                rt.block_on(ix.apply(b)).expect("apply");
                rt.block_on(ix.commit()).expect("commit");
            }
            let secs = t.elapsed().as_secs_f64();
            let load_after = load();
            assert_eq!(
                es.count(&format!("{prefix}-logs*"), None),
                docs,
                "{flavor:?}"
            );
            println!(
                "BENCH {flavor:?} bulk_max_docs={size} docs={docs} doc_bytes={doc_bytes} secs={secs:.2} docs_per_s={:.0} \
                 load_before=[{}] load_after=[{}]",
                docs as f64 / secs,
                load_before.trim(),
                load_after.trim()
            );
        }
    }
}
