//! `farol ingest`: every configured source publishes its raw records to
//! Kafka and nothing else runs in this process. A source's checkpoint moves
//! only on the broker's delivery report (see `farol_common::bus::kafka`),
//! so a SIGKILL loses nothing: what was not acknowledged is read and
//! published again, and the processors skip the copies by stream position.
//! A broker that goes away fills `kafka.max_in_flight`; sources then pause
//! until it is back. `/healthz` and `/metrics` are served on `api.listen`.

use crate::pipeline::{setup_feeds, shutdown_signal, spawn_sources};
use anyhow::Context;
use farol_common::bus::kafka::{self, KafkaProducer};
use farol_common::bus::{AckRouter, Producer};
use farol_common::config::Config;
use farol_common::health::Health;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Runs the sources until SIGINT/SIGTERM, then flushes the producer.
pub async fn run(cfg: Config) -> anyhow::Result<()> {
    let Some(k) = cfg.kafka.clone() else {
        anyhow::bail!(
            "farol ingest publishes to Kafka: set [kafka] brokers (or FAROL_KAFKA__BROKERS)"
        );
    };
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("creating data dir {}", cfg.data_dir.display()))?;
    let feeds = setup_feeds(&cfg)?;
    kafka::ensure_topics(&k, &[k.logs_topic.as_str(), k.posts_topic.as_str()])
        .await
        .with_context(|| format!("creating the Kafka topics on {}", k.brokers))?;
    let acks = AckRouter::default();
    let producer = KafkaProducer::new(&k, Arc::new(acks.clone()))
        .with_context(|| format!("creating the Kafka producer for {}", k.brokers))?;
    let health = Health::default();
    let (stop_tx, stop_rx) = watch::channel(false);
    let sources = spawn_sources(
        &cfg,
        feeds,
        Arc::new(producer.clone()) as Arc<dyn Producer>,
        &acks,
        &stop_rx,
        &health,
    );
    let (_health_server, addr) =
        crate::health_server::start(&cfg.api.listen, health.clone()).await?;
    crate::pipeline::announce(addr)?;
    tracing::info!(brokers = %k.brokers, sources = sources.len(), "ingesting");
    // Sources run until told to stop: one that ends first has failed (a
    // delivery the broker refused for good stops every acknowledgement
    // after it), and the process exits non-zero to be restarted from its
    // checkpoints (crash-only).
    let mut running = tokio::task::JoinSet::new();
    for s in sources {
        running.spawn(async move {
            let _ = s.await;
        });
    }
    let failed = tokio::select! {
        _ = shutdown_signal() => false,
        Some(_) = running.join_next() => true,
    };
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(cfg.shutdown_timeout, async {
        while running.join_next().await.is_some() {}
        producer.flush(Duration::from_secs(5)).await
    })
    .await;
    if failed {
        let why = health
            .snapshot()
            .into_iter()
            .filter_map(|(k, v)| v.err().map(|e| format!("{k}: {e}")))
            .collect::<Vec<_>>()
            .join("; ");
        anyhow::bail!("a source stopped ({why}); restart to resume from the checkpoints");
    }
    match drained {
        Ok(r) => r.context("flushing the Kafka producer"),
        Err(_) => anyhow::bail!(
            "shutdown did not finish within {:?}; what was not acknowledged is read again on the next start",
            cfg.shutdown_timeout
        ),
    }
}
