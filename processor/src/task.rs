//! The streaming processor: one task per bus partition drives a
//! [`Processor`] and hands its batches to the index through a bounded channel,
//! so a slow index slows the consumers and, through the bus, the sources.
//!
//! On a Kafka partition each batch also carries the partition's next input
//! offset: the offset just past the last record whose effects are in this
//! batch or an earlier one. While the processor holds leading untimed lines
//! back (they are in no batch yet) the offset stays where it was, so a restart
//! from the stored offset reads them again; records after them that were
//! already applied are skipped then by their stream's `applied_end`.

use crate::processor::Processor;
use farol_common::bus::Consumer;
use farol_common::model::{Batch, InputOffset};
use farol_common::time::now_ms;
use std::time::Duration;
use tokio::sync::mpsc;

/// Flushes a batch after this many records even before the timer.
pub const MAX_BATCH_RECORDS: usize = 5_000;
/// Flushes a batch once its records carried this many payload bytes.
pub const MAX_BATCH_BYTES: usize = 8 * 1024 * 1024;
/// Records taken from the bus at once, at most (those already there).
const RECV_MANY: usize = 256;

/// Input offsets of one partition: what was consumed and what was sent.
struct Offsets {
    topic: Option<String>,
    partition: i32,
    consumed: Option<u64>,
    sent: Option<u64>,
}

impl Offsets {
    /// Stamps `b` with the partition's next offset when it moved.
    fn stamp(&mut self, b: &mut Batch, proc: &Processor) {
        let (Some(topic), Some(consumed)) = (&self.topic, self.consumed) else {
            return;
        };
        if proc.holding() || self.sent == Some(consumed) {
            return;
        }
        b.offsets.push(InputOffset {
            topic: topic.clone(),
            partition: self.partition,
            next: i64::try_from(consumed)
                .unwrap_or(i64::MAX)
                .saturating_add(1),
        });
        self.sent = Some(consumed);
    }
}

/// When a partition's processor hands a batch on.
#[derive(Debug, Clone, Copy)]
pub struct FlushPolicy {
    /// The processor's clock ticks this often (idle watermarks move, windows
    /// close) and flushes whatever it holds.
    pub tick: Duration,
    /// A batch is handed on at most this long after its first record came
    /// in (Kafka's `linger.ms`): counts become visible to `/trends` when the
    /// index applies the batch, so this bounds how stale they are. Full
    /// batches ([`MAX_BATCH_RECORDS`], [`MAX_BATCH_BYTES`]) go at once.
    pub linger: Duration,
}

/// Consumes one partition until the bus closes, flushing as `flush` says.
pub async fn run_partition(
    mut consumer: Box<dyn Consumer>,
    mut proc: Processor,
    sink: mpsc::Sender<Batch>,
    flush: FlushPolicy,
) {
    let mut offsets = Offsets {
        topic: consumer.topic().map(str::to_string),
        partition: i32::try_from(consumer.partition()).unwrap_or(i32::MAX),
        consumed: None,
        sent: None,
    };
    let mut timer = tokio::time::interval(flush.tick);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The linger deadline of the batch being filled (None: it is empty).
    let mut due: Option<tokio::time::Instant> = None;
    let mut inbox = Vec::with_capacity(RECV_MANY);
    loop {
        let linger = async {
            match due {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            n = consumer.recv_many(&mut inbox, RECV_MANY) => match n {
                1.. => {
                    // Records that arrived together share the clock read.
                    let now = now_ms();
                    for d in inbox.drain(..) {
                        offsets.consumed = Some(d.offset);
                        proc.handle(d.record, now);
                        if due.is_none() {
                            due = Some(tokio::time::Instant::now() + flush.linger);
                        }
                        if proc.pending_records() >= MAX_BATCH_RECORDS
                            || proc.pending_bytes() >= MAX_BATCH_BYTES
                        {
                            due = None;
                            let mut b = proc.flush();
                            offsets.stamp(&mut b, &proc);
                            if sink.send(b).await.is_err() {
                                return;
                            }
                        }
                    }
                }
                0 => {
                    let mut b = proc.flush();
                    offsets.stamp(&mut b, &proc);
                    if !b.is_empty() {
                        let _ = sink.send(b).await;
                    }
                    return;
                }
            },
            _ = linger => {
                due = None;
                let mut b = proc.flush();
                offsets.stamp(&mut b, &proc);
                if !b.is_empty() && sink.send(b).await.is_err() {
                    return;
                }
            }
            _ = timer.tick() => {
                due = None;
                proc.tick(now_ms());
                let mut b = proc.flush();
                offsets.stamp(&mut b, &proc);
                if !b.is_empty() && sink.send(b).await.is_err() {
                    return;
                }
            }
        }
    }
}
