//! The bus seam: sources publish keyed records, processors consume them with
//! their partition and offset, and acknowledgements travel back to the source
//! that published them once the records' effects are durable.
//!
//! This module defines the interface; [`embedded`] is the in-process
//! implementation (bounded partitions: a full partition makes `publish` wait,
//! which is how backpressure reaches the sources), [`kafka`] the Kafka one,
//! and [`ack`] routes acknowledgements back to sources. [`publish_paced`] is
//! how sources publish: it records how long each source was held back.

pub mod ack;
pub mod embedded;
pub mod kafka;

pub use ack::{AckRouter, Acknowledge};
pub use embedded::{embedded, EmbeddedConsumer, EmbeddedProducer};

use crate::metrics::metrics;
use crate::model::RawRecord;
use async_trait::async_trait;
use tokio::sync::OwnedSemaphorePermit;

/// Bus failures.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// Every consumer is gone; nothing can be published any more.
    #[error("bus closed")]
    Closed,
    /// The Kafka client failed (configuration, admin request, producing).
    #[error("kafka: {0}")]
    Kafka(String),
    /// The broker refused a record for good; nothing after it is acknowledged.
    #[error("kafka delivery failed: {0}")]
    Delivery(String),
}

/// A record as a consumer sees it.
#[derive(Debug)]
pub struct Delivery {
    /// Partition the record was published to.
    pub partition: u32,
    /// Offset of the record within its partition.
    pub offset: u64,
    /// The record.
    pub record: RawRecord,
    /// The record's share of its partition's byte budget, returned when the
    /// delivery is dropped.
    pub budget: Option<OwnedSemaphorePermit>,
}

/// Publishing side of the bus.
#[async_trait]
pub trait Producer: Send + Sync {
    /// Publishes one record keyed by its stream; waits while the partition is full.
    async fn publish(&self, record: RawRecord) -> Result<(), BusError>;

    /// Publishes records in order, as [`publish`](Self::publish) would one
    /// at a time (which is what this default does). A backend may take a
    /// run of records for one partition at once (the embedded bus does).
    async fn publish_all(&self, records: Vec<RawRecord>) -> Result<(), BusError> {
        for r in records {
            self.publish(r).await?;
        }
        Ok(())
    }
}

/// Consuming side of the bus: one partition's records in order.
#[async_trait]
pub trait Consumer: Send {
    /// The partition this consumer reads.
    fn partition(&self) -> u32;
    /// The Kafka topic this consumer reads (`None` on the embedded bus,
    /// whose offsets are not stored).
    fn topic(&self) -> Option<&str> {
        None
    }
    /// The next record, or `None` once every producer is gone and the partition is drained.
    async fn recv(&mut self) -> Option<Delivery>;
    /// Waits for the next record and appends it to `out` with up to
    /// `max - 1` more that are already there; returns how many it appended,
    /// 0 once every producer is gone and the partition is drained. One call
    /// (one boxed future, one wake-up) a run of records rather than a
    /// record: the processor's loop per record showed in profiles.
    async fn recv_many(&mut self, out: &mut Vec<Delivery>, max: usize) -> usize {
        let _ = max;
        match self.recv().await {
            Some(d) => {
                out.push(d);
                1
            }
            None => 0,
        }
    }
}

/// Picks the partition for a stream key (FNV-1a, stable across runs).
pub fn partition_for(key: &str, partitions: u32) -> u32 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in key.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x100000001b3);
    }
    (h % u64::from(partitions.max(1))) as u32
}

/// Publishes through `producer`, recording in `farol_source_paused` and
/// `farol_source_paused_seconds_total` how long the source waited because
/// the bus was full.
pub async fn publish_paced(producer: &dyn Producer, record: RawRecord) -> Result<(), BusError> {
    let source = record.source.clone();
    paced(&source, producer.publish(record)).await
}

/// [`publish_paced`] for records of one source, published in order.
pub async fn publish_paced_all(
    producer: &dyn Producer,
    source: &str,
    records: Vec<RawRecord>,
) -> Result<(), BusError> {
    paced(source, producer.publish_all(records)).await
}

/// Drives a publish; while it waits, `source` is marked paused.
async fn paced(
    source: &str,
    fut: impl std::future::Future<Output = Result<(), BusError>>,
) -> Result<(), BusError> {
    let mut fut = std::pin::pin!(fut);
    tokio::select! {
        biased;
        r = &mut fut => return r,
        _ = std::future::ready(()) => {}
    }
    let m = metrics();
    m.source_paused.with_label_values(&[source]).set(1);
    m.source_paused_since
        .with_label_values(&[source])
        .set(crate::time::now_ms() / 1000);
    let started = std::time::Instant::now();
    let r = fut.await;
    m.source_paused_since.with_label_values(&[source]).set(0);
    m.source_paused_seconds
        .with_label_values(&[source])
        .inc_by(started.elapsed().as_secs_f64());
    m.source_paused.with_label_values(&[source]).set(0);
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Position;
    use crate::model::RecordKind;

    fn rec(stream: &str, end: u64) -> RawRecord {
        RawRecord {
            source: "s".into(),
            stream: stream.into(),
            kind: RecordKind::Log,
            platform: None,
            file: None,
            line_no: end,
            line_span: 0,
            offset: end - 1,
            end,
            payload: b"x".to_vec(),
            truncated: false,
            ingest_ms: 0,
            file_mtime: None,
            arrival_delay_ms: None,
        }
    }

    #[tokio::test]
    async fn keeps_stream_order_and_offsets() {
        let (p, mut cs) = embedded(2, 8, 1 << 20);
        for i in 1..=5 {
            p.publish(rec("a", i)).await.unwrap();
        }
        drop(p);
        let part = partition_for("a", 2) as usize;
        let c = &mut cs[part];
        let mut seen = vec![];
        while let Some(d) = c.recv().await {
            seen.push((d.offset, d.record.end));
        }
        assert_eq!(seen, vec![(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)]);
    }

    #[tokio::test]
    async fn publish_all_keeps_each_streams_order_across_runs_larger_than_a_partition() {
        // 2 records or 10 bytes a partition: 7 records of 4 bytes for each
        // of two streams need many runs, and consumers must free the room.
        let (p, cs) = embedded(2, 2, 10);
        let mut recs = Vec::new();
        for i in 1..=7 {
            for s in ["a", "b"] {
                let mut r = rec(s, i);
                r.payload = vec![b'x'; 4];
                recs.push(r);
            }
        }
        let publisher = tokio::spawn(async move { p.publish_all(recs).await });
        let mut seen: std::collections::BTreeMap<String, Vec<(u64, u64)>> = Default::default();
        let readers: Vec<_> = cs
            .into_iter()
            .map(|mut c| {
                tokio::spawn(async move {
                    let mut got = vec![];
                    while let Some(d) = c.recv().await {
                        got.push((d.record.stream.clone(), d.offset, d.record.end));
                    }
                    got
                })
            })
            .collect();
        tokio::time::timeout(std::time::Duration::from_secs(5), publisher)
            .await
            .expect("consumers free the room the runs wait for")
            .unwrap()
            .unwrap();
        for r in readers {
            for (stream, offset, end) in r.await.unwrap() {
                seen.entry(stream.to_string())
                    .or_default()
                    .push((offset, end));
            }
        }
        for s in ["a", "b"] {
            let ends: Vec<u64> = seen[s].iter().map(|(_, e)| *e).collect();
            assert_eq!(ends, (1..=7).collect::<Vec<_>>(), "stream {s} in order");
            assert!(seen[s].windows(2).all(|w| w[0].0 < w[1].0), "offsets rise");
        }
    }

    #[tokio::test]
    async fn full_partition_applies_backpressure() {
        let (p, _cs) = embedded(1, 2, 1 << 20);
        p.publish(rec("a", 1)).await.unwrap();
        p.publish(rec("a", 2)).await.unwrap();
        let third =
            tokio::time::timeout(std::time::Duration::from_millis(50), p.publish(rec("a", 3)));
        assert!(
            third.await.is_err(),
            "publish must wait while the partition is full"
        );
    }

    #[tokio::test]
    async fn byte_budget_applies_backpressure_and_returns_on_consume() {
        let (p, mut cs) = embedded(1, 100, 10);
        let mut big = rec("a", 1);
        big.payload = vec![b'x'; 8];
        p.publish(big).await.unwrap();
        let mut second = rec("a", 2);
        second.payload = vec![b'y'; 4];
        let blocked = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            p.publish(second.clone()),
        );
        assert!(
            blocked.await.is_err(),
            "12 bytes do not fit a 10-byte budget"
        );
        drop(cs[0].recv().await.unwrap());
        tokio::time::timeout(std::time::Duration::from_secs(1), publish_paced(&p, second))
            .await
            .expect("budget returned once the first record is consumed")
            .unwrap();
    }

    #[test]
    fn acks_reach_the_registered_source() {
        let r = AckRouter::default();
        let mut rx = r.register("web");
        r.ack([Position {
            source: "web".into(),
            stream: "f".into(),
            end: 10,
            line_no: 1,
        }]);
        assert_eq!(rx.try_recv().unwrap().end, 10);
    }
}
