//! `/healthz` and `/metrics` for the components that answer no queries
//! (`farol ingest`, `farol process`), so that an orchestrator can probe and scrape them.

use crate::api::routes;
use anyhow::Context;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use farol_common::health::Health;
use std::net::SocketAddr;

async fn healthz(State(h): State<Health>) -> Response {
    routes::health_response(&h.snapshot())
}

/// Binds `listen` and serves the two routes in the background.
pub async fn start(
    listen: &str,
    health: Health,
) -> anyhow::Result<(tokio::task::JoinHandle<()>, SocketAddr)> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding the health endpoint to {listen}"))?;
    let addr = listener.local_addr()?;
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(routes::metrics_text))
        .with_state(health);
    let server = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "health endpoint stopped");
        }
    });
    Ok((server, addr))
}
