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
        parts.push(Partition {
            tx,
            next_offset: AtomicU64::new(0),
            bytes: Arc::new(Semaphore::new(max_bytes)),
            max_bytes,
        });
        consumers.push(EmbeddedConsumer { partition: p, rx });
    }
    (
        EmbeddedProducer {
            partitions: Arc::new(parts),
        },
        consumers,
    )
}

#[async_trait]
impl Producer for EmbeddedProducer {
    async fn publish(&self, record: RawRecord) -> Result<(), BusError> {
        let p = partition_for(&record.stream, self.partitions.len() as u32);
        let part = &self.partitions[p as usize];
        let want = record.payload.len().clamp(1, part.max_bytes) as u32;
        let budget = part
            .bytes
            .clone()
            .acquire_many_owned(want)
            .await
            .map_err(|_| BusError::Closed)?;
        // Reserve first so offsets follow queue order even with concurrent publishers.
        let permit = part.tx.reserve().await.map_err(|_| BusError::Closed)?;
        let offset = part.next_offset.fetch_add(1, Ordering::Relaxed);
        permit.send(Delivery {
            partition: p,
            offset,
            record,
            budget: Some(budget),
        });
        let depth = part.tx.max_capacity() - part.tx.capacity();
        metrics()
            .bus_depth
            .with_label_values(&[&p.to_string()])
            .set(depth as i64);
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
        metrics()
            .bus_depth
            .with_label_values(&[&self.partition.to_string()])
            .set(self.rx.len() as i64);
        d
    }
}
