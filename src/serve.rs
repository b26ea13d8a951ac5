//! `farol serve`: the REST API and dashboard answered from Elasticsearch
//! alone. Trends are exact sums over the per-partition counter documents;
//! watermarks and closed windows come from the stream states the index
//! processes persisted, read again every [`REFRESH`]. It writes nothing,
//! so it has no write block to set: `PUT /admin/index/write_block` (after
//! the usual admin check) answers 501 with a JSON error naming the
//! processes that do write; `GET` answers `{"write_block": false}`.

use crate::api;
use crate::pipeline::es_settings;
use anyhow::{bail, Context};
use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::middleware::{from_fn, from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::put;
use axum::Router;
use farol_common::config::Config;
use farol_common::health::Health;
use farol_indexer::elasticsearch::ElasticsearchReader;
use farol_indexer::Index;
use farol_processor::window::WindowParams;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tower::ServiceExt;

/// How often the persisted stream states are read again.
const REFRESH: Duration = Duration::from_secs(2);
/// Health component of the index server.
const COMPONENT: &str = "index";
/// The admin route `farol serve` refuses to set.
const WRITE_BLOCK: &str = "/admin/index/write_block";

/// `PUT /admin/index/write_block` under `farol serve`.
async fn no_write_block() -> Response {
    api::errors::ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        "write_block",
        "farol serve writes nothing, so there is nothing to block; set the write block on the \
         process that writes (farol index or farol run)",
    )
    .into_response()
}

/// The API router, with `PUT` of the write block answered by
/// [`no_write_block`] behind the same admin check as every admin route.
fn app(state: api::AppState) -> Router {
    let refusal = Router::new()
        .route(WRITE_BLOCK, put(no_write_block))
        .route_layer(from_fn_with_state(state.clone(), api::admin::require_admin))
        .with_state(state.clone());
    api::router(state).layer(from_fn(move |req: Request, next: Next| {
        let refusal = refusal.clone();
        async move {
            if req.method() == Method::PUT && req.uri().path() == WRITE_BLOCK {
                match refusal.oneshot(req).await {
                    Ok(r) => r,
                    Err(never) => match never {},
                }
            } else {
                next.run(req).await
            }
        }
    }))
}

/// Serves until SIGINT/SIGTERM.
pub async fn run(cfg: Config) -> anyhow::Result<()> {
    let Some(es) = &cfg.elasticsearch else {
        bail!("farol serve answers from Elasticsearch: set [elasticsearch] url (or FAROL_ELASTICSEARCH__URL)");
    };
    let reader = ElasticsearchReader::new(&es_settings(es)?)
        .with_context(|| format!("connecting to Elasticsearch at {}", es.url))?;
    let health = Health::default();
    // Known sources and watermarks before the first request is answered.
    if let Err(e) = reader.refresh().await {
        tracing::warn!(error = %e, "reading the persisted stream states");
    }
    let refresher = {
        let reader = reader.clone();
        let health = health.clone();
        tokio::spawn(async move {
            loop {
                match reader.refresh().await {
                    Ok(()) => health.up(COMPONENT),
                    Err(e) => health.down(COMPONENT, e.to_string()),
                }
                tokio::time::sleep(REFRESH).await;
            }
        })
    };
    let params = WindowParams::from_config(&cfg.windows);
    let listener = crate::pipeline::bind_api(&cfg.api.listen).await?;
    let (write_block, _) = watch::channel(false);
    let (_stop_tx, stop_rx) = watch::channel(false);
    let sources = crate::pipeline::source_names(&cfg);
    let app = app(api::AppState {
        index: Arc::new(reader) as Arc<dyn Index>,
        health,
        windows: params.windows.clone(),
        bucket_ms: params.bucket,
        write_block: Arc::new(write_block),
        stopping: stop_rx,
        sources: Arc::new(sources),
        scoring: crate::pipeline::scoring(&cfg.trends),
        admin: api::AdminAuth::from_env(),
    });
    api::serve::serve(
        listener,
        app,
        crate::pipeline::shutdown_signal(),
        Duration::from_secs(1),
    )
    .await;
    refresher.abort();
    Ok(())
}
