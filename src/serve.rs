//! `farol serve`: the REST API and dashboard answered from Elasticsearch
//! alone. Trends are exact sums over the per-partition counter documents;
//! watermarks and closed windows come from the stream states the index
//! processes persisted, read again every [`REFRESH`].

use crate::api;
use crate::pipeline::es_settings;
use anyhow::{bail, Context};
use farol_common::config::Config;
use farol_common::health::Health;
use farol_indexer::elasticsearch::ElasticsearchReader;
use farol_indexer::Index;
use farol_processor::window::WindowParams;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How often the persisted stream states are read again.
const REFRESH: Duration = Duration::from_secs(2);
/// Health component of the index server.
const COMPONENT: &str = "index";

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
    let app = api::router(api::AppState {
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
