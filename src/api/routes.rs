//! The read handlers (BRIEF §2): `/trends`, `/search`, `/healthz`,
//! `/metrics` (the dashboard is in `dashboard`). Parameters are parsed by the pure
//! functions of `farol_indexer::params`; every rejection is an [`ApiError`]
//! naming the parameter, and no user input can produce a 500.

use super::errors::ApiError;
use super::AppState;
use axum::extract::{RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use farol_common::metrics::metrics;
use farol_indexer::params::{echo, parse_search, parse_trends};
use farol_indexer::{SearchHits, Trends};
use serde_json::json;
use std::collections::BTreeMap;

/// `GET /trends`
pub async fn trends(
    State(s): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Json<Trends>, ApiError> {
    let mut q = parse_trends(query.as_deref().unwrap_or(""), &s.windows, s.bucket_ms)?;
    q.scoring = s.scoring;
    if let Some(src) = &q.source {
        if !s.knows_source(src) {
            return Err(ApiError::param(
                StatusCode::NOT_FOUND,
                "source",
                format!("no source named '{}'", echo(src)),
            ));
        }
    }
    s.index.trends(q).await.map(Json).map_err(ApiError::index)
}

/// `GET /search`
pub async fn search(
    State(s): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Json<SearchHits>, ApiError> {
    let q = parse_search(query.as_deref().unwrap_or(""))?;
    s.index.search(q).await.map(Json).map_err(ApiError::index)
}

/// `GET /healthz`: 200 when every component is live, else 503 naming the
/// failing ones with their (redacted, upstream-free) reasons.
pub async fn healthz(State(s): State<AppState>) -> Response {
    let mut snap = s.health.snapshot();
    if *s.write_block.borrow() {
        // In force from the moment it was acknowledged, not only once the
        // index sink has noticed it.
        snap.insert(
            farol_indexer::sink::COMPONENT.to_string(),
            Err("writes blocked by the operator".to_string()),
        );
    }
    health_response(&snap)
}

/// 200 with the components when none fails, 503 naming the failing ones.
pub fn health_response(snap: &BTreeMap<String, Result<(), String>>) -> Response {
    let failing: BTreeMap<&String, &String> = snap
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

/// `GET /metrics` (Prometheus text format).
pub async fn metrics_text() -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        metrics().render(),
    )
        .into_response()
}
