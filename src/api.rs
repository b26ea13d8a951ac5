//! The REST API (BRIEF §2): `/trends`, `/search`, `/healthz`, `/metrics`,
//! and a small dashboard page at `/`. Every bad parameter is a 400 with a JSON
//! body naming it; no user input can produce a 500.

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use farol_common::health::Health;
use farol_common::metrics::metrics;
use farol_common::model::AggKind;
use farol_common::time::{parse_rfc3339, Millis, Window};
use farol_indexer::{Index, SearchQuery, TrendsQuery, TrendsRange};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;

/// Largest `limit` accepted.
pub const MAX_LIMIT: usize = 10_000;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The index queries go to.
    pub index: Arc<dyn Index>,
    /// Component health.
    pub health: Health,
    /// Configured sliding windows.
    pub windows: Vec<Window>,
    /// Base bucket length (range bounds must be aligned to it).
    pub bucket_ms: Millis,
    /// The index write block (true: writes paused, backpressure to sources).
    pub write_block: Arc<tokio::sync::watch::Sender<bool>>,
}

/// Builds the router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(dashboard))
        .route("/trends", get(trends))
        .route("/search", get(search))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text))
        .route(
            "/admin/index/write_block",
            get(get_write_block)
                .put(set_write_block)
                .delete(clear_write_block),
        )
        .with_state(state)
}

/// A rejected parameter: HTTP 400 with `{"error": "<param>: <why>"}`.
struct BadParam(String);

impl BadParam {
    fn new(param: &str, why: impl std::fmt::Display) -> Self {
        BadParam(format!("{param}: {why}"))
    }
}

impl IntoResponse for BadParam {
    fn into_response(self) -> Response {
        (StatusCode::BAD_REQUEST, Json(json!({ "error": self.0 }))).into_response()
    }
}

fn bad(param: &str, why: impl std::fmt::Display) -> Response {
    BadParam::new(param, why).into_response()
}

fn internal(e: impl std::fmt::Display) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({ "error": format!("index unavailable: {e}") })),
    )
        .into_response()
}

fn time_param(p: &HashMap<String, String>, name: &str) -> Result<Option<Millis>, BadParam> {
    match p.get(name) {
        None => Ok(None),
        Some(v) => parse_rfc3339(v)
            .map(Some)
            .ok_or_else(|| BadParam::new(name, format!("'{v}' is not an RFC 3339 time"))),
    }
}

fn limit_param(p: &HashMap<String, String>) -> Result<usize, BadParam> {
    match p.get("limit") {
        None => Ok(10),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            _ => Err(BadParam::new(
                "limit",
                format!("must be an integer from 1 to {MAX_LIMIT}"),
            )),
        },
    }
}

async fn trends(State(s): State<AppState>, Query(p): Query<HashMap<String, String>>) -> Response {
    let kind = match p.get("kind").map(String::as_str) {
        None => return bad("kind", "is required (hashtag or log_class)"),
        Some(k) => match AggKind::parse(k) {
            Some(k) => k,
            None => return bad("kind", format!("'{k}' is not hashtag or log_class")),
        },
    };
    let limit = match limit_param(&p) {
        Ok(l) => l,
        Err(r) => return r.into_response(),
    };
    let (from, to, at) = match (
        time_param(&p, "from"),
        time_param(&p, "to"),
        time_param(&p, "at"),
    ) {
        (Ok(f), Ok(t), Ok(a)) => (f, t, a),
        (Err(r), _, _) | (_, Err(r), _) | (_, _, Err(r)) => return r.into_response(),
    };
    let range = match (p.get("window"), from, to) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            return bad(
                "window",
                "use either window (with optional at) or from and to",
            )
        }
        (Some(w), None, None) => match s.windows.iter().find(|x| &x.name == w) {
            Some(window) => TrendsRange::Window {
                window: window.clone(),
                at,
            },
            None => {
                let names: Vec<&str> = s.windows.iter().map(|w| w.name.as_str()).collect();
                return bad(
                    "window",
                    format!("'{w}' is not one of {}", names.join(", ")),
                );
            }
        },
        (None, Some(from), Some(to)) => {
            if at.is_some() {
                return bad("at", "only applies to the window form");
            }
            for (name, v) in [("from", from), ("to", to)] {
                if v.rem_euclid(s.bucket_ms) != 0 {
                    return bad(
                        name,
                        format!(
                            "must be aligned to the {} s base bucket",
                            s.bucket_ms / 1000
                        ),
                    );
                }
            }
            if from >= to {
                return bad("to", "must be after from");
            }
            TrendsRange::Between { from, to }
        }
        (None, Some(_), None) => return bad("to", "is required with from"),
        (None, None, Some(_)) => return bad("from", "is required with to"),
        (None, None, None) => return bad("window", "is required (or from and to)"),
    };
    let q = TrendsQuery {
        kind,
        source: p.get("source").cloned(),
        limit,
        range,
    };
    match s.index.trends(q).await {
        Ok(t) => Json(t).into_response(),
        Err(e) => internal(e),
    }
}

async fn search(State(s): State<AppState>, Query(p): Query<HashMap<String, String>>) -> Response {
    let limit = match limit_param(&p) {
        Ok(l) => l,
        Err(r) => return r.into_response(),
    };
    let kind = match p.get("kind").map(String::as_str) {
        None => None,
        Some(k @ ("post" | "log" | "deadletter")) => Some(k.to_string()),
        Some(k) => return bad("kind", format!("'{k}' is not post, log or deadletter")),
    };
    let (from, to) = match (time_param(&p, "from"), time_param(&p, "to")) {
        (Ok(f), Ok(t)) => (f, t),
        (Err(r), _) | (_, Err(r)) => return r.into_response(),
    };
    let q = SearchQuery {
        q: p.get("q").cloned().unwrap_or_default(),
        kind,
        from,
        to,
        limit,
    };
    match s.index.search(q).await {
        Ok(hits) => Json(json!({ "total": hits.len(), "hits": hits })).into_response(),
        Err(e) => internal(e),
    }
}

async fn healthz(State(s): State<AppState>) -> Response {
    let snap = s.health.snapshot();
    let failing: HashMap<&String, &String> = snap
        .iter()
        .filter_map(|(k, v)| v.as_ref().err().map(|e| (k, e)))
        .collect();
    let components: Vec<&String> = snap.keys().collect();
    if failing.is_empty() {
        (
            StatusCode::OK,
            Json(json!({"status": "ok", "components": components})),
        )
            .into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "failing", "failing": failing, "components": components})),
        )
            .into_response()
    }
}

async fn metrics_text() -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        metrics().render(),
    )
        .into_response()
}

async fn dashboard() -> Html<&'static str> {
    Html(include_str!("dashboard.html"))
}

async fn get_write_block(State(s): State<AppState>) -> Response {
    Json(json!({ "write_block": *s.write_block.borrow() })).into_response()
}

/// Sets the write block: the pipeline pauses until it is cleared, nothing is
/// dropped (maintenance, backups of the data dir, or testing backpressure).
async fn set_write_block(State(s): State<AppState>) -> Response {
    s.write_block.send_replace(true);
    Json(json!({ "write_block": true })).into_response()
}

async fn clear_write_block(State(s): State<AppState>) -> Response {
    s.write_block.send_replace(false);
    Json(json!({ "write_block": false })).into_response()
}
