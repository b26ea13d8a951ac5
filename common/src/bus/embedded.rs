//! The embedded bus: in-process partitions bounded in records and in bytes.
//! A full partition makes `publish` wait, which is how backpressure reaches
//! the sources; a consumed record returns its bytes to the budget.

use super::{partition_for, BusError, Consumer, Delivery, Producer};
use crate::metrics::metrics;
use crate::model::RawRecord;
use async_trait::async_trait;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, Semaphore};

struct Partition {
    tx: mpsc::Sender<Delivery>,
    next_offset: AtomicU64,
    bytes: Arc<Semaphore>,
    max_bytes: usize,
    /// `farol_bus_depth` of this partition (looked up once, not per record).
    depth: prometheus::IntGauge,
}

/// Producer of the embedded bus.
#[derive(Clone)]
pub struct EmbeddedProducer {
    partitions: Arc<Vec<Partition>>,
}

/// Consumer of one embedded partition.
pub struct EmbeddedConsumer {
    partition: u32,
    rx: mpsc::Receiver<Delivery>,
    depth: prometheus::IntGauge,
}

/// Creates an embedded bus with `partitions` partitions of at most
/// `capacity` records and `max_bytes` payload bytes each.
pub fn embedded(
    partitions: u32,
    capacity: usize,
    max_bytes: usize,
) -> (EmbeddedProducer, Vec<EmbeddedConsumer>) {
    let max_bytes = max_bytes.clamp(1, Semaphore::MAX_PERMITS);
    let n = partitions.max(1);
    let mut parts = Vec::with_capacity(n as usize);
    let mut consumers = Vec::with_capacity(n as usize);
    for p in 0..n {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let depth = metrics().bus_depth.with_label_values(&[&p.to_string()]);
        parts.push(Partition {
            tx,
            next_offset: AtomicU64::new(0),
            bytes: Arc::new(Semaphore::new(max_bytes)),
            max_bytes,
            depth: depth.clone(),
        });
        consumers.push(EmbeddedConsumer {
            partition: p,
            rx,
            depth,
        });
    }
    (
        EmbeddedProducer {
            partitions: Arc::new(parts),
        },
        consumers,
    )
}

impl Partition {
    /// A record's share of the partition's byte budget.
    fn bytes_of(&self, record: &RawRecord) -> usize {
        record.payload.len().clamp(1, self.max_bytes)
    }

    /// Queues `records` (all of this partition, at most its capacity in
    /// count and in bytes) once their room is free.
    async fn send(&self, p: u32, records: Vec<RawRecord>, bytes: usize) -> Result<(), BusError> {
        let want = u32::try_from(bytes).map_err(|_| BusError::Closed)?;
        let mut budget = self
            .bytes
            .clone()
            .acquire_many_owned(want)
            .await
            .map_err(|_| BusError::Closed)?;
        // Reserve first so offsets follow queue order even with concurrent publishers.
        let permits = self
            .tx
            .reserve_many(records.len())
            .await
            .map_err(|_| BusError::Closed)?;
        for (record, permit) in records.into_iter().zip(permits) {
            let share = budget.split(self.bytes_of(&record));
            let offset = self.next_offset.fetch_add(1, Ordering::Relaxed);
            permit.send(Delivery {
                partition: p,
                offset,
                record,
                budget: share,
            });
        }
        let depth = self.tx.max_capacity() - self.tx.capacity();
        self.depth.set(depth as i64);
        Ok(())
    }
}

#[async_trait]
impl Producer for EmbeddedProducer {
    async fn publish(&self, record: RawRecord) -> Result<(), BusError> {
        self.publish_all(vec![record]).await
    }

    async fn publish_all(&self, records: Vec<RawRecord>) -> Result<(), BusError> {
        let n = self.partitions.len() as u32;
        let mut records = records.into_iter().peekable();
        while let Some(first) = records.next() {
            let p = partition_for(&first.stream, n);
            let part = &self.partitions[p as usize];
            // The run of following records for the same partition that fits
            // the partition at once.
            let mut bytes = part.bytes_of(&first);
            let mut run = vec![first];
            while let Some(next) = records.peek() {
                let more = part.bytes_of(next);
                let same = next.stream == run[0].stream || partition_for(&next.stream, n) == p;
                if !same || run.len() >= part.tx.max_capacity() || bytes + more > part.max_bytes {
                    break;
                }
                bytes += more;
                run.extend(records.next());
            }
            part.send(p, run, bytes).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl Consumer for EmbeddedConsumer {
    fn partition(&self) -> u32 {
        self.partition
    }
    async fn recv(&mut self) -> Option<Delivery> {
        let d = self.rx.recv().await;
        self.depth.set(self.rx.len() as i64);
        d
    }
    async fn recv_many(&mut self, out: &mut Vec<Delivery>, max: usize) -> usize {
        let n = self.rx.recv_many(out, max.max(1)).await;
        self.depth.set(self.rx.len() as i64);
        n
    }
}
