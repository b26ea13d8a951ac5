//! The index sink task: applies processor batches to an [`Index`], commits on
//! a timer, and only then acknowledges the committed stream positions back to
//! the sources. A failed commit stops the pipeline (crash-only: a restart
//! resumes from the last durable state) rather than acknowledging unsaved data.

use crate::Index;
use farol_common::bus::AckRouter;
use farol_common::health::Health;
use farol_common::model::Batch;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Health component name of the sink.
pub const COMPONENT: &str = "index";

/// Runs until every processor is gone, then commits a last time.
///
/// While `write_block` is true (an operator's write block, like
/// Elasticsearch's `index.blocks.write`) nothing is applied: the bounded
/// channel fills, processors wait, the bus fills and sources pause.
pub async fn run_sink(
    index: Arc<dyn Index>,
    mut rx: mpsc::Receiver<Batch>,
    acks: AckRouter,
    commit_every: Duration,
    health: Health,
    mut write_block: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    health.up(COMPONENT);
    let mut applied = crate::dedupe::Applied::from_states(&index.stream_states());
    let mut timer = tokio::time::interval(commit_every);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if *write_block.borrow_and_update() {
            if index.has_pending() {
                commit(index.as_ref(), &acks, &health).await?;
            }
            health.down(COMPONENT, "writes blocked by the operator");
            tracing::warn!("index write block set; pausing the pipeline");
            if write_block.wait_for(|b| !*b).await.is_err() {
                break;
            }
            tracing::info!("index write block lifted");
            health.up(COMPONENT);
            continue;
        }
        tokio::select! {
            _ = write_block.changed() => continue,
            b = rx.recv() => match b {
                Some(b) => {
                    let b = applied.filter(b);
                    if b.is_empty() {
                        continue;
                    }
                    if let Err(e) = index.apply(b).await {
                        health.down(COMPONENT, e.to_string());
                        return Err(anyhow::anyhow!(e).context("applying a batch to the index"));
                    }
                }
                None => break,
            },
            _ = timer.tick() => {
                if index.has_pending() {
                    commit(index.as_ref(), &acks, &health).await?;
                }
            }
        }
    }
    if index.has_pending() {
        commit(index.as_ref(), &acks, &health).await?;
    }
    Ok(())
}

async fn commit(index: &dyn Index, acks: &AckRouter, health: &Health) -> anyhow::Result<()> {
    match index.commit().await {
        Ok(positions) => {
            health.up(COMPONENT);
            acks.ack(positions);
            Ok(())
        }
        Err(e) => {
            tracing::error!(error = %e, "index commit failed");
            health.down(COMPONENT, e.to_string());
            Err(anyhow::anyhow!(e).context("committing the index"))
        }
    }
}
