//! The live dashboard: its page, stylesheet and script (shipped inside the
//! binary, no external requests) and `GET /api/overview`, the one JSON
//! document the page needs beyond `/trends`, `/search` and `/healthz`:
//! per-source counters, watermarks and pauses read from the process's
//! Prometheus registry, plus component health. It answers `304 Not
//! Modified` to an `If-None-Match` carrying its current ETag, so a page
//! polling every few seconds costs almost nothing while nothing changes.

use super::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use farol_common::metrics::metrics;
use serde::Serialize;
use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};

/// `GET /`: the page.
pub async fn page() -> Html<&'static str> {
    Html(include_str!("../dashboard/index.html"))
}

/// `GET /dashboard/app.css`
pub async fn css() -> Response {
    asset(
        "text/css; charset=utf-8",
        include_str!("../dashboard/app.css"),
    )
}

/// `GET /dashboard/app.js`
pub async fn js() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("../dashboard/app.js"),
    )
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// What `/api/overview` says about one source.
#[derive(Serialize, Default, Hash)]
pub struct SourceView {
    /// Records read so far (the page derives rates from successive polls).
    pub records: u64,
    /// Bytes read so far.
    pub bytes: u64,
    /// Records processed so far, all kinds.
    pub processed: u64,
    /// True while the source waits for room on the bus.
    pub paused: bool,
    /// Unix seconds the current pause began.
    pub paused_since: Option<i64>,
    /// Event-time watermark, Unix seconds (lag = now − watermark).
    pub watermark: Option<i64>,
    /// Records later than a closed window.
    pub late: u64,
    /// Records too far ahead of the wall clock.
    pub future: u64,
    /// Records routed to the dead-letter output.
    pub dead_letters: u64,
    /// Read and poll errors.
    pub errors: u64,
}

/// The body of `/api/overview`.
#[derive(Serialize, Hash)]
pub struct Overview {
    /// Every source seen in the configuration or the metrics, by name.
    pub sources: BTreeMap<String, SourceView>,
    /// Component name → `null` when live, else the failure reason.
    pub health: BTreeMap<String, Option<String>>,
}

/// Builds the overview from the metrics registry and `state`.
pub fn overview(state: &AppState) -> Overview {
    let mut sources: BTreeMap<String, SourceView> = state
        .sources
        .iter()
        .map(|s| (s.clone(), SourceView::default()))
        .collect();
    add_metrics(&mut sources, &metrics().registry.gather());
    // Where the metric is not kept, the index's stream states know it.
    for st in state.index.stream_states().into_values() {
        if let Some(wm) = st.watermark {
            let v = sources.entry(st.source).or_default();
            let secs = wm.div_euclid(1000);
            v.watermark = Some(v.watermark.map_or(secs, |w: i64| w.max(secs)));
        }
    }
    let mut health: BTreeMap<String, Option<String>> = state
        .health
        .snapshot()
        .into_iter()
        .map(|(k, v)| (k, v.err()))
        .collect();
    if *state.write_block.borrow() {
        health.insert(
            farol_indexer::sink::COMPONENT.to_string(),
            Some("writes blocked by the operator".to_string()),
        );
    }
    Overview { sources, health }
}

/// Folds every per-source series of `families` (Farol's registry, names
/// prefixed `farol_`) into `sources`, adding sources not seen before.
fn add_metrics(
    sources: &mut BTreeMap<String, SourceView>,
    families: &[prometheus::proto::MetricFamily],
) {
    for family in families {
        let name = family.name();
        for m in family.get_metric() {
            let Some(source) = m
                .get_label()
                .iter()
                .find(|l| l.name() == "source")
                .map(|l| l.value().to_string())
            else {
                continue;
            };
            let counter = m.get_counter().get_value().max(0.0) as u64;
            let gauge = m.get_gauge().get_value() as i64;
            let v = sources.entry(source).or_default();
            match name {
                "farol_records_read_total" => v.records += counter,
                "farol_bytes_read_total" => v.bytes += counter,
                "farol_records_processed_total" => v.processed += counter,
                "farol_late_records_total" => v.late += counter,
                "farol_future_records_total" => v.future += counter,
                "farol_dead_letters_total" => v.dead_letters += counter,
                "farol_source_errors_total" | "farol_feed_errors_total" => v.errors += counter,
                "farol_source_paused" => v.paused = gauge > 0,
                "farol_source_paused_since_seconds" if gauge > 0 => v.paused_since = Some(gauge),
                "farol_watermark_seconds" => v.watermark = Some(gauge),
                _ => {}
            }
        }
    }
}

/// `GET /api/overview`, with ETag / `If-None-Match` support.
pub async fn overview_json(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let view = overview(&s);
    let mut h = DefaultHasher::new();
    view.hash(&mut h);
    let etag = format!("\"{:016x}\"", h.finish());
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let etag_value = HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"0\""));
    if fresh {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag_value)]).into_response();
    }
    (
        [
            (header::ETAG, etag_value),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        axum::Json(view),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry};

    #[test]
    fn per_source_metrics_are_folded_by_source() {
        let r = Registry::new_custom(Some("farol".into()), None).expect("registry");
        let read =
            IntCounterVec::new(Opts::new("records_read_total", "r"), &["source"]).expect("counter");
        let dead = IntCounterVec::new(Opts::new("dead_letters_total", "d"), &["source", "reason"])
            .expect("counter");
        let paused = IntGaugeVec::new(Opts::new("source_paused", "p"), &["source"]).expect("gauge");
        let depth =
            IntGaugeVec::new(Opts::new("bus_queue_depth", "q"), &["partition"]).expect("gauge");
        for m in [&read, &dead] {
            r.register(Box::new(m.clone())).expect("registered");
        }
        for m in [&paused, &depth] {
            r.register(Box::new(m.clone())).expect("registered");
        }
        read.with_label_values(&["web"]).inc_by(5);
        dead.with_label_values(&["web", "late"]).inc_by(2);
        dead.with_label_values(&["web", "future"]).inc();
        paused.with_label_values(&["feed"]).set(1);
        depth.with_label_values(&["0"]).set(9);
        let mut sources = BTreeMap::from([("quiet".to_string(), SourceView::default())]);
        add_metrics(&mut sources, &r.gather());
        assert_eq!(sources.len(), 3, "configured plus seen, no partition rows");
        assert_eq!(sources["web"].records, 5);
        assert_eq!(sources["web"].dead_letters, 3);
        assert!(sources["feed"].paused && !sources["web"].paused);
        assert_eq!(sources["quiet"].records, 0);
    }
}
