//! A consumer-group member (`farol process`): the group shares the input
//! partitions among its members; this member learns of assignments and
//! revocations as [`Rebalance`] events, reads every assigned partition from
//! the group's committed offset, and commits offsets only when told to.
//!
//! The member uses the eager protocol (`range` or `roundrobin`): on every
//! rebalance it gives up every partition and is handed a complete new
//! assignment. Revocation needs no flush here: whatever a member had not
//! snapshotted yet is processed again by the next owner, and the index drops
//! what it already holds (see `farol_indexer::dedupe`).

use super::{client_config, decode, kerr, report_lag};
use crate::bus::BusError;
use crate::config::KafkaConfig;
use crate::metrics::metrics;
use crate::model::{InputOffset, RawRecord};
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer as _, ConsumerContext, Rebalance as KRebalance,
    StreamConsumer,
};
use rdkafka::message::Message;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

/// A change of this member's assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rebalance {
    /// These topic partitions are now this member's (the complete assignment).
    Assigned(BTreeSet<(String, i32)>),
    /// These topic partitions are no longer this member's.
    Revoked(BTreeSet<(String, i32)>),
}

/// Collects rebalance events for the consuming task.
#[derive(Default)]
pub struct GroupContext {
    events: Mutex<Vec<Rebalance>>,
}

impl ClientContext for GroupContext {}

fn partitions(tpl: &TopicPartitionList) -> BTreeSet<(String, i32)> {
    tpl.elements()
        .iter()
        .map(|e| (e.topic().to_string(), e.partition()))
        .collect()
}

impl ConsumerContext for GroupContext {
    fn post_rebalance(&self, _c: &BaseConsumer<Self>, r: &KRebalance<'_>) {
        let ev = match r {
            KRebalance::Assign(tpl) => Rebalance::Assigned(partitions(tpl)),
            KRebalance::Revoke(tpl) => Rebalance::Revoked(partitions(tpl)),
            KRebalance::Error(e) => {
                tracing::warn!(error = %e, "kafka rebalance failed");
                return;
            }
        };
        tracing::info!(event = ?ev, "kafka rebalance");
        if let Ok(mut q) = self.events.lock() {
            q.push(ev);
        }
    }
}

/// A record read by a group member.
#[derive(Debug)]
pub struct GroupRecord {
    /// Topic it was read from.
    pub topic: String,
    /// Partition it was read from.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// The record.
    pub record: RawRecord,
}

/// One member of the processors' consumer group.
pub struct GroupConsumer {
    consumer: Arc<StreamConsumer<GroupContext>>,
}

impl GroupConsumer {
    /// Joins `kafka.group_id` and subscribes to `topics`.
    pub fn join(cfg: &KafkaConfig, topics: &[&str]) -> Result<Self, BusError> {
        let consumer: StreamConsumer<GroupContext> = client_config(cfg)
            .set("group.id", &cfg.group_id)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("partition.assignment.strategy", "range,roundrobin")
            .set(
                "session.timeout.ms",
                cfg.session_timeout.as_millis().to_string(),
            )
            .set(
                "heartbeat.interval.ms",
                cfg.heartbeat_interval.as_millis().to_string(),
            )
            .create_with_context(GroupContext::default())
            .map_err(kerr)?;
        consumer.subscribe(topics).map_err(kerr)?;
        Ok(GroupConsumer {
            consumer: Arc::new(consumer),
        })
    }

    /// The next record of any assigned partition. Rebalances happen while
    /// this waits; collect them with [`take_rebalances`](Self::take_rebalances).
    pub async fn recv(&self) -> Result<GroupRecord, BusError> {
        let m = self.consumer.recv().await.map_err(|e| {
            metrics()
                .kafka_consume_errors
                .with_label_values(&["*"])
                .inc();
            kerr(e)
        })?;
        let topic = m.topic().to_string();
        let partition = m.partition();
        metrics()
            .kafka_consumed
            .with_label_values(&[&topic, &partition.to_string()])
            .inc();
        let record = decode(&topic, partition, &m);
        Ok(GroupRecord {
            offset: m.offset(),
            topic,
            partition,
            record,
        })
    }

    /// The rebalance events since the last call, oldest first.
    pub fn take_rebalances(&self) -> Vec<Rebalance> {
        self.consumer
            .context()
            .events
            .lock()
            .map(|mut q| std::mem::take(&mut *q))
            .unwrap_or_default()
    }

    /// Commits `offsets` (the next offset to read of each partition) to the
    /// group, without waiting for the broker's answer.
    pub fn commit(&self, offsets: &[InputOffset]) -> Result<(), BusError> {
        if offsets.is_empty() {
            return Ok(());
        }
        let mut tpl = TopicPartitionList::new();
        for o in offsets {
            tpl.add_partition_offset(&o.topic, o.partition, Offset::Offset(o.next))
                .map_err(kerr)?;
        }
        self.consumer.commit(&tpl, CommitMode::Async).map_err(kerr)
    }

    /// Sets the consumer-lag gauge of every assigned partition (blocking
    /// requests, run on a blocking thread).
    pub async fn report_lag(&self) {
        let c = self.consumer.clone();
        let _ = tokio::task::spawn_blocking(move || report_lag(&*c)).await;
    }

    /// Leaves the group now, so the others take the partitions over at once.
    pub fn leave(&self) {
        self.consumer.unsubscribe();
    }
}
