//! The REST API (BRIEF §2), assembled from one module per concern:
//! [`routes`] (the read handlers), [`admin`] (who may pause writes),
//! [`errors`] (JSON for every failure), [`limits`] (timeouts, sizes,
//! concurrency) and [`serve`] (the HTTP/1 connection loop that applies the
//! connection-level limits). The dashboard (page, assets and
//! `/api/overview`) is [`dashboard`], its files in `src/dashboard/`.

pub mod admin;
pub mod dashboard;
pub mod errors;
pub mod limits;
pub mod routes;
pub mod serve;

use axum::error_handling::HandleErrorLayer;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use farol_common::health::Health;
use farol_common::time::{Millis, Window};
use farol_indexer::Index;
use std::collections::HashSet;
use std::sync::Arc;
use tower::limit::ConcurrencyLimitLayer;
use tower::load_shed::LoadShedLayer;
use tower::{BoxError, ServiceBuilder};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};
use tower_http::trace::{DefaultOnFailure, TraceLayer};

pub use admin::AdminAuth;

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
    /// True once shutdown has begun (no new write block then).
    pub stopping: tokio::sync::watch::Receiver<bool>,
    /// Source names from the configuration.
    pub sources: Arc<HashSet<String>>,
    /// How admin requests are authenticated.
    pub admin: AdminAuth,
    /// How `/trends` scores keys (`[trends]`).
    pub scoring: farol_indexer::score::Scoring,
}

impl AppState {
    /// True when `source` is configured or has data in the index.
    pub fn knows_source(&self, source: &str) -> bool {
        self.sources.contains(source)
            || self
                .index
                .stream_states()
                .values()
                .any(|s| s.source == source)
    }
}

/// Builds the router with every limit of [`limits`] applied.
pub fn router(state: AppState) -> Router {
    use limits::*;
    let admin = Router::new()
        .route(
            "/admin/index/write_block",
            get(admin::get_write_block)
                .put(admin::set_write_block)
                .delete(admin::clear_write_block),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            admin::require_admin,
        ));
    Router::new()
        .route("/", get(dashboard::page))
        .route("/dashboard/app.css", get(dashboard::css))
        .route("/dashboard/app.js", get(dashboard::js))
        .route("/api/overview", get(dashboard::overview_json))
        .route(
            "/trends",
            shed(get(routes::trends), MAX_CONCURRENT_TRENDS, "/trends"),
        )
        .route(
            "/search",
            shed(get(routes::search), MAX_CONCURRENT_SEARCHES, "/search"),
        )
        .route("/healthz", get(routes::healthz))
        .route("/metrics", get(routes::metrics_text))
        .merge(admin)
        .fallback(errors::not_found)
        .method_not_allowed_fallback(errors::method_not_allowed)
        .with_state(state)
        // Each layer wraps the ones before it: the last is the outermost,
        // so every refusal from the layers below becomes JSON.
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(RequestBodyTimeoutLayer::new(BODY_TIMEOUT))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            REQUEST_TIMEOUT,
        ))
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(|e: BoxError| async move {
                    overloaded("API", MAX_IN_FLIGHT, e)
                }))
                .layer(LoadShedLayer::new())
                .layer(ConcurrencyLimitLayer::new(MAX_IN_FLIGHT)),
        )
        .layer(axum::middleware::from_fn(uri_limit))
        // Per-request spans and timings at DEBUG (`FAROL_LOG=tower_http=debug`);
        // refusals under load must not flood the log at a higher level.
        .layer(
            TraceLayer::new_for_http()
                .on_failure(DefaultOnFailure::new().level(tracing::Level::DEBUG)),
        )
        .layer(axum::middleware::from_fn(errors::json_errors))
}
