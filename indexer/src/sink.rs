//! The index sink task: applies processor batches to an [`Index`], commits on
//! a timer, and only then acknowledges the committed stream positions back to
//! the sources. A failed commit stops the pipeline (crash-only: a restart
//! resumes from the last durable state) rather than acknowledging unsaved data.

use crate::Index;
use farol_common::bus::AckRouter;
use farol_common::health::Health;
use farol_common::model::{Batch, Position};
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
///
/// On an index that [applies during a commit](Index::applies_during_commit)
/// a commit runs as its own task while batches keep being applied, so what
/// `/trends` shows does not stall for the commit; one commit runs at a time.
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
    let background = index.applies_during_commit();
    let mut committing: Option<Committing> = None;
    loop {
        if *write_block.borrow_and_update() {
            finish(committing.take(), &acks, &health).await?;
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
            done = async {
                match committing.as_mut() {
                    Some(task) => task.await,
                    None => std::future::pending().await,
                }
            } => {
                committing = None;
                settle(joined(done), &acks, &health)?;
            }
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
                if committing.is_none() && index.has_pending() {
                    if background {
                        let index = index.clone();
                        committing = Some(tokio::spawn(async move { index.commit().await }));
                    } else {
                        commit(index.as_ref(), &acks, &health).await?;
                    }
                }
            }
        }
    }
    finish(committing.take(), &acks, &health).await?;
    if index.has_pending() {
        commit(index.as_ref(), &acks, &health).await?;
    }
    Ok(())
}

/// A commit running as its own task.
type Committing = tokio::task::JoinHandle<Result<Vec<Position>, crate::IndexError>>;

/// A commit task's outcome (a task that panicked is a failed commit).
fn joined(
    done: Result<Result<Vec<Position>, crate::IndexError>, tokio::task::JoinError>,
) -> Result<Vec<Position>, crate::IndexError> {
    done.map_err(|e| crate::IndexError::Task(e.to_string()))?
}

/// Waits for the commit in progress, if any, and acknowledges it.
async fn finish(
    committing: Option<Committing>,
    acks: &AckRouter,
    health: &Health,
) -> anyhow::Result<()> {
    match committing {
        Some(task) => settle(joined(task.await), acks, health),
        None => Ok(()),
    }
}

async fn commit(index: &dyn Index, acks: &AckRouter, health: &Health) -> anyhow::Result<()> {
    settle(index.commit().await, acks, health)
}

/// Acknowledges what a commit made durable, or stops the sink when it failed.
fn settle(
    outcome: Result<Vec<Position>, crate::IndexError>,
    acks: &AckRouter,
    health: &Health,
) -> anyhow::Result<()> {
    match outcome {
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
