//! The streaming processor: one task per bus partition drives a
//! [`Processor`] and hands its batches to the index through a bounded channel,
//! so a slow index slows the consumers and, through the bus, the sources.

use crate::processor::Processor;
use farol_common::bus::Consumer;
use farol_common::model::Batch;
use farol_common::time::now_ms;
use std::time::Duration;
use tokio::sync::mpsc;

/// Flushes a batch after this many records even before the timer.
pub const MAX_BATCH_RECORDS: usize = 5_000;
/// Flushes a batch once its records carried this many payload bytes.
pub const MAX_BATCH_BYTES: usize = 8 * 1024 * 1024;

/// Consumes one partition until the bus closes, flushing every `flush_every`.
pub async fn run_partition(
    mut consumer: Box<dyn Consumer>,
    mut proc: Processor,
    sink: mpsc::Sender<Batch>,
    flush_every: Duration,
) {
    let mut timer = tokio::time::interval(flush_every);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            d = consumer.recv() => match d {
                Some(d) => {
                    proc.handle(d.record, now_ms());
                    if (proc.pending_records() >= MAX_BATCH_RECORDS
                        || proc.pending_bytes() >= MAX_BATCH_BYTES)
                        && sink.send(proc.flush()).await.is_err()
                    {
                        return;
                    }
                }
                None => {
                    let b = proc.flush();
                    if !b.is_empty() {
                        let _ = sink.send(b).await;
                    }
                    return;
                }
            },
            _ = timer.tick() => {
                proc.tick(now_ms());
                let b = proc.flush();
                if !b.is_empty() && sink.send(b).await.is_err() {
                    return;
                }
            }
        }
    }
}
