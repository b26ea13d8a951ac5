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
use tokio::sync::mpsc;

/// Health component name of the sink.
pub const COMPONENT: &str = "index";

/// Runs until every processor is gone, then commits a last time.
pub async fn run_sink(
    index: Arc<dyn Index>,
    mut rx: mpsc::Receiver<Batch>,
    acks: AckRouter,
    commit_every: Duration,
    health: Health,
) -> anyhow::Result<()> {
    health.up(COMPONENT);
    let mut timer = tokio::time::interval(commit_every);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            b = rx.recv() => match b {
                Some(b) => {
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
