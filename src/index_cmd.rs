//! `farol index`: reads the batches the processor fleet hands on
//! (`kafka.processed_topic`) into the configured index — Elasticsearch, or
//! the embedded index under the data dir — and answers the API from it.
//!
//! Every partition of the processed topic is read from the offset the index
//! stored in the same commit as the effects of the batches before it (both
//! backends store offsets with their state), so a restart neither loses nor
//! repeats a batch; batches a failover made the fleet send twice are dropped
//! record by record by the sink (`farol_indexer::dedupe`).

use crate::api;
use crate::pipeline::{open_configured_index, shutdown_signal};
use crate::supervisor::Supervisor;
use anyhow::{bail, Context};
use farol_common::bus::kafka::{self, output};
use farol_common::bus::AckRouter;
use farol_common::config::Config;
use farol_common::health::Health;
use farol_common::metrics::metrics;
use farol_common::model::{Batch, DeadLetter, InputOffset};
use farol_indexer::sink::run_sink;
use farol_processor::window::WindowParams;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Runs until SIGINT/SIGTERM or a failure.
pub async fn run(cfg: Config) -> anyhow::Result<()> {
    let Some(k) = cfg.kafka.clone() else {
        bail!("farol index reads Kafka: set [kafka] brokers (or FAROL_KAFKA__BROKERS)");
    };
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("creating data dir {}", cfg.data_dir.display()))?;
    let index = open_configured_index(&cfg).await?;
    output::ensure_output_topics(&k)
        .await
        .with_context(|| format!("creating the processors' topics on {}", k.brokers))?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let topic = k.processed_topic.clone();
    let consumers = kafka::assign(
        &k,
        &[topic.as_str()],
        &index.input_offsets(),
        stop_rx.clone(),
    )
    .await
    .with_context(|| format!("reading {topic} from {}", k.brokers))?;
    let health = Health::default();
    let (sink_tx, sink_rx) = mpsc::channel(consumers.len().max(1));
    let (write_block, write_block_rx) = watch::channel(false);
    let mut supervisor = Supervisor::new(health.clone());
    supervisor.spawn(
        farol_indexer::sink::COMPONENT,
        farol_indexer::sink::COMPONENT.into(),
        run_sink(
            index.clone(),
            sink_rx,
            AckRouter::default(),
            cfg.index.commit_interval,
            health.clone(),
            write_block_rx,
        ),
    );
    for mut c in consumers {
        let tx = sink_tx.clone();
        let topic = topic.clone();
        let partition = farol_common::bus::Consumer::partition(&c) as i32;
        supervisor.spawn("reader", format!("{topic}/{partition}"), async move {
            while let Some((offset, payload)) = c.recv_bytes().await {
                let mut b = decode_batch(&topic, partition, offset, &payload);
                b.offsets = vec![InputOffset {
                    topic: topic.clone(),
                    partition,
                    next: offset.saturating_add(1),
                }];
                if tx.send(b).await.is_err() {
                    break;
                }
            }
            Ok(())
        });
    }
    drop(sink_tx);
    health.up("reader");

    let params = WindowParams::from_config(&cfg.windows);
    let listener = crate::pipeline::bind_api(&cfg.api.listen).await?;
    let sources = crate::pipeline::source_names(&cfg);
    let write_block = Arc::new(write_block);
    let app = api::router(api::AppState {
        index: index.clone(),
        health: health.clone(),
        windows: params.windows.clone(),
        bucket_ms: params.bucket,
        write_block: write_block.clone(),
        stopping: stop_rx.clone(),
        sources: Arc::new(sources),
        admin: api::AdminAuth::from_env(),
        scoring: crate::pipeline::scoring(&cfg.trends),
    });
    let (api_stop, api_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(api::serve::serve(
        listener,
        app,
        async move {
            let _ = api_stopped.await;
        },
        Duration::from_secs(1),
    ));
    let failed = tokio::select! {
        _ = shutdown_signal() => None,
        f = supervisor.first_failure() => Some(f),
    };
    let _ = stop_tx.send(true);
    write_block.send_replace(false);
    let drained = tokio::time::timeout(cfg.shutdown_timeout, supervisor.join_all()).await;
    let _ = api_stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(2), server).await;
    if let Some(f) = failed {
        return Err(anyhow::Error::new(f));
    }
    match drained {
        Ok(r) => r,
        Err(_) => bail!(
            "shutdown did not finish within {:?}; what was not committed is read again on the next start",
            cfg.shutdown_timeout
        ),
    }
}

/// Decodes one batch; a message that is not one becomes a dead letter
/// (counted), so a foreign producer on the topic stops nothing.
fn decode_batch(topic: &str, partition: i32, offset: i64, payload: &[u8]) -> Batch {
    match serde_json::from_slice::<Batch>(payload) {
        Ok(b) => b,
        Err(e) => {
            let source = topic.to_string();
            metrics()
                .dead_letters
                .with_label_values(&[&source, "malformed_batch"])
                .inc();
            tracing::warn!(topic, partition, offset, error = %e, "a message of the processed topic is not a batch");
            let mut raw = String::from_utf8_lossy(payload).into_owned();
            if raw.len() > 64 * 1024 {
                let mut cut = 64 * 1024;
                while !raw.is_char_boundary(cut) {
                    cut -= 1;
                }
                raw.truncate(cut);
            }
            Batch {
                dead_letters: vec![DeadLetter {
                    id: format!("dl:malformed_batch:{topic}/{partition}:{offset}"),
                    source,
                    reason: "malformed_batch".into(),
                    detail: format!("{topic}/{partition} offset {offset}: {e}"),
                    raw,
                    ts: farol_common::time::now_ms(),
                }],
                ..Batch::default()
            }
        }
    }
}
