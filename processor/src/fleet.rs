//! `farol process`: one member of the processor fleet.
//!
//! The members of one consumer group share the partitions of the raw
//! topics. For each assigned partition a member runs a [`Processor`]
//! restored from the partition's newest state snapshot, hands its batches
//! on through `kafka.processed_topic` (where `farol index` reads them) and,
//! every [`SNAPSHOT_EVERY`], snapshots the partition's state to
//! `kafka.state_topic` and commits the partition's offset to the group.
//!
//! # Why the totals are exact
//!
//! Transport is at least once; exactness comes from three orderings and one
//! rule:
//! 1. A snapshot is published only after every batch holding the effects of
//!    the records it reflects was acknowledged by the broker, and an offset is
//!    committed only after the snapshot reflecting everything before it was.
//!    So whatever a member restores (the newest snapshot it can read, or an
//!    older one, or none) and wherever it starts reading (the committed
//!    offset), every record before that point already has its effects in the
//!    processed topic, and every record after it is read again.
//! 2. A restored processor skips records at or below each stream's
//!    `applied_end` in the snapshot (they are in the processed topic).
//! 3. Records a member processes again (read after its snapshot, or handed on
//!    by a member that died before its next snapshot) reach the processed
//!    topic twice, in batches that may be cut differently. Every batch
//!    therefore marks each record with its stream position and what it
//!    added ([`Processor::mark_records`]).
//! 4. The rule: the index applies a record's effects only when its stream
//!    position is past the highest one the index holds for its stream
//!    (`farol_indexer::dedupe`), and stores those positions in the same
//!    commit as the effects and its offsets in the processed topic.
//!
//! A stream lives on one partition (records are keyed by stream), a
//! partition on one member at a time, and positions increase along a
//! stream, so each record is counted once. Counts from different streams
//! simply add up in the index, which is why per-partition partials sum to
//! the exact global count even when one source's files land on different
//! partitions.
//!
//! What a failover may change is only what depends on the wall clock: a
//! record processed again after its stream went idle in between can be
//! judged late where the first owner counted it on time; the first verdict
//! that reached the index stands.

use crate::processor::{Parsers, Processor};
use crate::window::WindowParams;
use farol_common::bus::kafka::group::{GroupConsumer, Rebalance};
use farol_common::bus::kafka::output::{read_latest, OutputProducer, Pending};
use farol_common::bus::BusError;
use farol_common::config::KafkaConfig;
use farol_common::health::Health;
use farol_common::model::{Batch, InputOffset, StreamState};
use farol_common::time::now_ms;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Health component name of a fleet member.
pub const COMPONENT: &str = "processor";
/// How often a member flushes batches (and lets idle watermarks move).
pub const FLUSH_EVERY: Duration = Duration::from_millis(200);
/// How often a member snapshots its partitions and commits their offsets.
pub const SNAPSHOT_EVERY: Duration = Duration::from_secs(5);
/// A partition's batch is handed on early after this many records...
pub const MAX_BATCH_RECORDS: usize = 2_000;
/// ... or this many payload bytes (a batch is one Kafka message).
pub const MAX_BATCH_BYTES: usize = 512 * 1024;

/// A partition's state as a snapshot stores it.
#[derive(Debug, Serialize, Deserialize)]
pub struct Snapshot {
    /// Input topic.
    pub topic: String,
    /// Input partition.
    pub partition: i32,
    /// The next input offset: every record before it is reflected here.
    pub next: i64,
    /// Every stream's state, templates included.
    pub streams: HashMap<String, StreamState>,
}

/// The key of a partition's messages in the processed and state topics.
pub fn partition_key(topic: &str, partition: i32) -> String {
    format!("{topic}/{partition}")
}

/// Failures of a fleet member.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// The Kafka client failed.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// A snapshot or batch could not be encoded or decoded.
    #[error("encoding: {0}")]
    Encoding(#[from] serde_json::Error),
    /// A blocking task failed.
    #[error("task: {0}")]
    Task(String),
}

struct Part {
    proc: Processor,
    /// Offset of the last record handed to the processor.
    consumed: Option<i64>,
    /// The next offset stamped on the last batch handed on.
    sent: Option<i64>,
    /// The `next` of the last snapshot published.
    snapshotted: Option<i64>,
    changed: bool,
}

/// What a member needs besides its Kafka clients.
pub struct Member {
    /// Kafka settings (topics, partitions).
    pub kafka: KafkaConfig,
    /// Window parameters.
    pub params: WindowParams,
    /// Log formats by source.
    pub parsers: Parsers,
    /// Whether event documents are built (`index.events`).
    pub events: bool,
    /// Whether log lines are mined for templates (`processor.templates`).
    pub templates: bool,
    /// Component health.
    pub health: Health,
}

struct Fleet<'a> {
    m: &'a Member,
    out: OutputProducer,
    parts: HashMap<(String, i32), Part>,
    assigned: BTreeSet<(String, i32)>,
    in_flight: Vec<Pending>,
    out_partitions: i32,
}

/// Runs a member until `stop` turns true, then hands on, snapshots and
/// commits what it processed and leaves the group.
pub async fn run(
    m: Member,
    consumer: GroupConsumer,
    out: OutputProducer,
    out_partitions: i32,
    mut stop: watch::Receiver<bool>,
) -> Result<(), FleetError> {
    let mut f = Fleet {
        m: &m,
        out,
        parts: HashMap::new(),
        assigned: BTreeSet::new(),
        in_flight: Vec::new(),
        out_partitions: out_partitions.max(1),
    };
    m.health.up(COMPONENT);
    let mut flush = tokio::time::interval(FLUSH_EVERY);
    flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_snapshot = Instant::now();
    let mut last_lag = Instant::now();
    loop {
        tokio::select! {
            _ = async { let _ = stop.wait_for(|s| *s).await; } => break,
            r = consumer.recv() => {
                f.rebalanced(consumer.take_rebalances());
                match r {
                    Ok(rec) => f.handle(rec).await?,
                    Err(e) => {
                        tracing::warn!(error = %e, "kafka consumer");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
            _ = flush.tick() => {
                f.rebalanced(consumer.take_rebalances());
                f.flush_all(true).await?;
                if last_snapshot.elapsed() >= SNAPSHOT_EVERY {
                    f.checkpoint(&consumer).await?;
                    last_snapshot = Instant::now();
                }
                if last_lag.elapsed() >= SNAPSHOT_EVERY {
                    consumer.report_lag().await;
                    last_lag = Instant::now();
                }
            }
        }
    }
    f.rebalanced(consumer.take_rebalances());
    f.flush_all(true).await?;
    f.checkpoint(&consumer).await?;
    consumer.leave();
    Ok(())
}

impl Fleet<'_> {
    /// Follows the group: partitions no longer assigned are dropped with
    /// whatever they had not snapshotted (their next owner processes it
    /// again); new ones are restored when their first record arrives.
    fn rebalanced(&mut self, events: Vec<Rebalance>) {
        for ev in events {
            match ev {
                Rebalance::Assigned(all) => self.assigned = all,
                Rebalance::Revoked(gone) => {
                    for p in &gone {
                        self.assigned.remove(p);
                    }
                }
            }
            let assigned = &self.assigned;
            self.parts.retain(|k, _| assigned.contains(k));
        }
        self.m.health.up(COMPONENT);
    }

    async fn handle(
        &mut self,
        rec: farol_common::bus::kafka::group::GroupRecord,
    ) -> Result<(), FleetError> {
        let key = (rec.topic.clone(), rec.partition);
        if !self.assigned.contains(&key) {
            // Fetched before a revocation took effect.
            return Ok(());
        }
        if !self.parts.contains_key(&key) {
            let part = self.restore(&rec.topic, rec.partition).await?;
            self.parts.insert(key.clone(), part);
        }
        let Some(part) = self.parts.get_mut(&key) else {
            return Ok(());
        };
        part.consumed = Some(rec.offset);
        part.changed = true;
        part.proc.handle(rec.record, now_ms());
        if part.proc.pending_records() >= MAX_BATCH_RECORDS
            || part.proc.pending_bytes() >= MAX_BATCH_BYTES
        {
            self.flush_one(&key, false).await?;
        }
        Ok(())
    }

    /// Restores a partition from the newest snapshot the state topic holds.
    async fn restore(&self, topic: &str, partition: i32) -> Result<Part, FleetError> {
        let k = self.m.kafka.clone();
        let key = partition_key(topic, partition);
        let state_partition = partition % self.out_partitions;
        let found = tokio::task::spawn_blocking(move || {
            let want = key.clone();
            read_latest(&k, &k.state_topic, state_partition, |x| x == want)
                .map(|mut m| m.remove(&key))
        })
        .await
        .map_err(|e| FleetError::Task(e.to_string()))??;
        let snap = match found {
            Some(bytes) => Some(serde_json::from_slice::<Snapshot>(&bytes)?),
            None => None,
        };
        let streams = snap.as_ref().map(|s| s.streams.clone()).unwrap_or_default();
        tracing::info!(
            topic,
            partition,
            streams = streams.len(),
            next = snap.as_ref().map(|s| s.next),
            "partition assigned; state restored"
        );
        let proc =
            Processor::new(self.m.params.clone(), self.m.parsers.clone(), &streams).mark_records();
        let proc = proc.events(self.m.events).templates(self.m.templates);
        let next = snap.map(|s| s.next);
        Ok(Part {
            proc,
            consumed: None,
            sent: next,
            snapshotted: next,
            changed: false,
        })
    }

    async fn flush_all(&mut self, tick: bool) -> Result<(), FleetError> {
        let keys: Vec<(String, i32)> = self.parts.keys().cloned().collect();
        for k in keys {
            self.flush_one(&k, tick).await?;
        }
        Ok(())
    }

    /// Hands one partition's batch on to the processed topic.
    async fn flush_one(&mut self, key: &(String, i32), tick: bool) -> Result<(), FleetError> {
        let Some(part) = self.parts.get_mut(key) else {
            return Ok(());
        };
        if tick {
            part.proc.tick(now_ms());
        }
        let mut b: Batch = part.proc.flush();
        if let Some(c) = part.consumed {
            let next = c.saturating_add(1);
            if !part.proc.holding() && part.sent != Some(next) {
                b.offsets.push(InputOffset {
                    topic: key.0.clone(),
                    partition: key.1,
                    next,
                });
                part.sent = Some(next);
            }
        }
        if b.is_empty() {
            return Ok(());
        }
        part.changed = true;
        let payload = serde_json::to_vec(&b)?;
        let pending = self
            .out
            .send(
                &self.m.kafka.processed_topic,
                key.1 % self.out_partitions,
                &partition_key(&key.0, key.1),
                &payload,
            )
            .await?;
        self.in_flight.push(pending);
        Ok(())
    }

    /// Waits for every batch handed on, then snapshots every partition that
    /// moved, waits for the snapshots, then commits their offsets.
    async fn checkpoint(&mut self, consumer: &GroupConsumer) -> Result<(), FleetError> {
        for p in std::mem::take(&mut self.in_flight) {
            p.delivered().await?;
        }
        let mut snaps = Vec::new();
        let mut commits = Vec::new();
        for ((topic, partition), part) in self.parts.iter_mut() {
            let Some(next) = part.sent else { continue };
            if !part.changed && part.snapshotted == Some(next) {
                continue;
            }
            let snap = Snapshot {
                topic: topic.clone(),
                partition: *partition,
                next,
                streams: part.proc.snapshot_states(),
            };
            let payload = serde_json::to_vec(&snap)?;
            snaps.push(
                self.out
                    .send(
                        &self.m.kafka.state_topic,
                        *partition % self.out_partitions,
                        &partition_key(topic, *partition),
                        &payload,
                    )
                    .await?,
            );
            part.snapshotted = Some(next);
            part.changed = false;
            commits.push(InputOffset {
                topic: topic.clone(),
                partition: *partition,
                next,
            });
        }
        for p in snaps {
            p.delivered().await?;
        }
        consumer.commit(&commits)?;
        Ok(())
    }
}
