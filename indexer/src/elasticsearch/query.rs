//! Queries answered from Elasticsearch: `/trends` as exact sums over the
//! per-partition partial counter documents, and `/search` over the event
//! indices (the query text as the embedded index reads it: [`super::search_text`]).
//!
//! Sums are exact: a composite aggregation over `key` (paged with
//! `after_key`) with a `sum` of `count`, never a plain `terms` top-N whose
//! counts may be approximate across shards. Servers without the composite
//! aggregation get one `terms` aggregation large enough for every key,
//! accepted only when it reports `sum_other_doc_count == 0` and no error
//! bound (every key returned with its exact sum).

use super::client::{EsClient, EsError};
use super::templates::IndexKind;
use crate::params::check_query_text;
use crate::query::{SearchHits, SearchQuery, Trends, TrendsQuery, MAX_SEARCH_BYTES};
use crate::IndexError;
use backon::{BackoffBuilder, ExponentialBuilder};
use elasticsearch::http::Method;
use farol_common::model::{AggKind, StreamState};
use farol_common::time::{rfc3339, Millis};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

/// Keys one composite page returns.
const PAGE: usize = 1000;
/// Keys whose baseline one request sums.
const BASELINE_KEYS: usize = 1000;
/// Most keys the `terms` fallback accepts in one answer.
const MAX_TERMS: usize = 65_000;

/// Whether the server has the composite aggregation (learned on first use:
/// 0 unknown, then [`COMPOSITE`] or [`TERMS`]).
#[derive(Default)]
pub struct AggSupport(AtomicU8);

const COMPOSITE: u8 = 1;
const TERMS: u8 = 2;

/// Runs `f` again on retryable failures (jittered exponential backoff),
/// for at most `retry_for`.
pub async fn with_retries<T, F, Fut>(
    _client: &EsClient,
    retry_for: Duration,
    mut f: F,
) -> Result<T, EsError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, EsError>>,
{
    let started = Instant::now();
    let mut delays = ExponentialBuilder::default()
        .with_jitter()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(5))
        .without_max_times()
        .build();
    loop {
        match f().await {
            Err(e) if e.retryable() && started.elapsed() < retry_for => {
                tracing::warn!(error = %e, "index request failed; retrying");
                tokio::time::sleep(delays.next().unwrap_or(Duration::from_secs(5))).await;
            }
            r => return r,
        }
    }
}

fn trends_filter(kind: AggKind, source: Option<&str>, span: Option<(Millis, Millis)>) -> Value {
    let mut filter = vec![json!({"term": {"kind": kind.as_str()}})];
    if let Some(s) = source {
        filter.push(json!({"term": {"source": s}}));
    }
    if let Some((from, to)) = span {
        filter.push(json!({"range": {"bucket_start": {"gte": from, "lt": to}}}));
    }
    json!({"bool": {"filter": filter}})
}

/// Exact sums of `count` per value of `field` over the documents matching `filter`.
pub async fn exact_sums(
    client: &EsClient,
    prefix: &str,
    support: &AggSupport,
    filter: Value,
    field: &str,
) -> Result<HashMap<String, u64>, IndexError> {
    let path = format!("/{}/_search", IndexKind::Trends.pattern(prefix));
    if support.0.load(Ordering::Relaxed) != TERMS {
        let mut out = HashMap::new();
        let mut after: Option<Value> = None;
        loop {
            let mut comp = json!({"size": PAGE, "sources": [{"k": {"terms": {"field": field}}}]});
            if let Some(a) = &after {
                comp["after"] = a.clone();
            }
            let body = json!({"size": 0, "query": filter, "aggs": {"c": {"composite": comp, "aggs": {"n": {"sum": {"field": "count"}}}}}});
            let (status, v) = client
                .raw(
                    Method::Post,
                    &path,
                    Some(body.to_string().into_bytes()),
                    false,
                )
                .await?;
            if status == 400 && v.to_string().contains("composite") {
                support.0.store(TERMS, Ordering::Relaxed);
                break;
            }
            if status >= 300 {
                return Err(EsError::Status {
                    status,
                    what: format!("POST {path}"),
                    body: super::client::short(&v.to_string()),
                }
                .into());
            }
            support.0.store(COMPOSITE, Ordering::Relaxed);
            let agg = &v["aggregations"]["c"];
            let buckets = agg["buckets"].as_array().cloned().unwrap_or_default();
            for b in &buckets {
                if let Some(k) = b["key"]["k"].as_str() {
                    *out.entry(k.to_string()).or_insert(0) += sum_value(&b["n"]);
                }
            }
            if buckets.len() < PAGE || agg["after_key"].is_null() {
                return Ok(out);
            }
            after = Some(agg["after_key"].clone());
        }
    }
    let body = json!({"size": 0, "query": filter, "aggs": {"c": {
        "terms": {"field": field, "size": MAX_TERMS, "shard_size": MAX_TERMS},
        "aggs": {"n": {"sum": {"field": "count"}}}}}});
    let v = client.request(Method::Post, &path, Some(&body)).await?;
    let agg = &v["aggregations"]["c"];
    if agg["sum_other_doc_count"].as_u64().unwrap_or(0) != 0
        || agg["doc_count_error_upper_bound"].as_u64().unwrap_or(0) != 0
    {
        return Err(IndexError::Query(format!(
            "more than {MAX_TERMS} keys in the span; narrow it (source, window) for exact totals"
        )));
    }
    let mut out = HashMap::new();
    for b in agg["buckets"].as_array().into_iter().flatten() {
        if let Some(k) = b["key"].as_str() {
            *out.entry(k.to_string()).or_insert(0) += sum_value(&b["n"]);
        }
    }
    Ok(out)
}

fn sum_value(v: &Value) -> u64 {
    // A sum is a double; counts stay far below 2^53, where it is exact.
    v["value"].as_f64().map(|f| f.round() as u64).unwrap_or(0)
}

/// Stream states persisted by every partition.
pub async fn persisted_streams(
    client: &EsClient,
    prefix: &str,
) -> Result<HashMap<String, StreamState>, IndexError> {
    let path = format!(
        "/{}/_search?ignore_unavailable=true&allow_no_indices=true",
        IndexKind::State.pattern(prefix)
    );
    let body = json!({"size": 1000, "query": {"match_all": {}}});
    let v = client.request(Method::Post, &path, Some(&body)).await?;
    let mut out = HashMap::new();
    for h in v["hits"]["hits"].as_array().into_iter().flatten() {
        if let Ok(m) =
            serde_json::from_value::<HashMap<String, StreamState>>(h["_source"]["streams"].clone())
        {
            out.extend(m);
        }
    }
    Ok(out)
}

/// Answers `/trends`; `streams` are the stream states when the caller holds
/// them, otherwise they are read from the state index.
pub async fn trends(
    client: &EsClient,
    prefix: &str,
    support: &AggSupport,
    q: &TrendsQuery,
    streams: Option<HashMap<String, StreamState>>,
) -> Result<Trends, IndexError> {
    let needs_plan = matches!(q.range, crate::query::TrendsRange::Window { at: None, .. });
    let mut last = None;
    if needs_plan {
        let streams = match streams {
            Some(s) => s,
            None => persisted_streams(client, prefix).await?,
        };
        let counting: HashSet<String> = exact_sums(
            client,
            prefix,
            support,
            trends_filter(q.kind, q.source.as_deref(), None),
            "source",
        )
        .await?
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(s, _)| s)
        .collect();
        if let crate::query::TrendsRange::Window { window, .. } = &q.range {
            last = crate::trends::last_closed(
                streams.values(),
                |s| counting.contains(s),
                q.source.as_deref(),
                window,
            );
        }
    }
    let (window, span) = crate::trends::plan(&q.range, |_| last);
    let items = match span {
        Some(span) => {
            let totals = exact_sums(
                client,
                prefix,
                support,
                trends_filter(q.kind, q.source.as_deref(), Some(span)),
                "key",
            )
            .await?;
            let keys = crate::trends::scored_keys(q, &totals);
            let base = q.scoring.baseline_span(span);
            let mut baseline = HashMap::new();
            // A bounded `terms` filter per request (the default
            // `index.max_terms_count` is 65 536).
            for chunk in keys.chunks(BASELINE_KEYS) {
                let mut filter = trends_filter(q.kind, q.source.as_deref(), Some(base));
                if let Some(f) = filter["bool"]["filter"].as_array_mut() {
                    f.push(json!({"terms": {"key": chunk}}));
                }
                baseline.extend(exact_sums(client, prefix, support, filter, "key").await?);
            }
            crate::trends::rank(q, &totals, &baseline)
        }
        None => vec![],
    };
    Ok(Trends {
        kind: q.kind.as_str(),
        window,
        from: span.map(|s| rfc3339(s.0)),
        to: span.map(|s| rfc3339(s.1)),
        items,
        approximate: false,
        max_error: None,
    })
}

/// Answers `/search`: newest first over the event (or dead-letter) indices.
pub async fn search(
    client: &EsClient,
    prefix: &str,
    q: &SearchQuery,
) -> Result<SearchHits, IndexError> {
    let indices = match q.kind.as_deref() {
        Some("log") => IndexKind::Logs.pattern(prefix),
        Some("post") => IndexKind::Posts.pattern(prefix),
        Some("deadletter") => IndexKind::DeadLetter.pattern(prefix),
        _ => format!(
            "{},{}",
            IndexKind::Logs.pattern(prefix),
            IndexKind::Posts.pattern(prefix)
        ),
    };
    let mut must = Vec::new();
    if q.q.trim().is_empty() {
        must.push(json!({"match_all": {}}));
    } else {
        check_query_text(&q.q).map_err(IndexError::Query)?;
        must.push(super::search_text::to_dsl(&q.q).map_err(IndexError::Query)?);
    }
    let mut range = serde_json::Map::new();
    if let Some(f) = q.from {
        range.insert("gte".into(), f.into());
    }
    if let Some(t) = q.to {
        range.insert("lt".into(), t.into());
    }
    let mut filter = Vec::new();
    if !range.is_empty() {
        filter.push(json!({"range": {"@timestamp": range}}));
    }
    if let Some(t) = &q.template_id {
        filter.push(json!({"term": {"template_id": t}}));
    }
    let body = json!({
        "size": q.limit.max(1),
        "track_total_hits": true,
        "sort": [{"@timestamp": {"order": "desc"}}],
        "query": {"bool": {"must": must, "filter": filter}},
    });
    let path = format!("/{indices}/_search?ignore_unavailable=true&allow_no_indices=true");
    let (status, v) = client
        .raw(
            Method::Post,
            &path,
            Some(body.to_string().into_bytes()),
            false,
        )
        .await?;
    if status == 400 {
        // The text parsed, so the server refused what it asks (a range
        // over values it cannot compare, say): the user's to change.
        let reason = v["error"]["root_cause"][0]["reason"]
            .as_str()
            .or_else(|| v["error"]["reason"].as_str())
            .unwrap_or("refused by the index server");
        return Err(IndexError::Query(format!(
            "cannot be answered: {}",
            crate::params::echo(reason)
        )));
    }
    if status >= 300 {
        return Err(EsError::Status {
            status,
            what: format!("POST {path}"),
            body: super::client::short(&v.to_string()),
        }
        .into());
    }
    let mut out = SearchHits {
        total: v["hits"]["total"]["value"].as_u64().unwrap_or(0),
        ..SearchHits::default()
    };
    let mut bytes = 0usize;
    for h in v["hits"]["hits"].as_array().into_iter().flatten() {
        let mut src = h["_source"].clone();
        if let Some(o) = src.as_object_mut() {
            o.remove("@timestamp");
        }
        bytes += src.to_string().len();
        if bytes > MAX_SEARCH_BYTES {
            out.truncated = true;
            break;
        }
        out.hits.push(src);
    }
    Ok(out)
}
