//! The processors' own topics: batches handed to `farol index`
//! (`kafka.processed_topic`) and state snapshots (`kafka.state_topic`).
//!
//! [`OutputProducer`] publishes to them with an idempotent producer and
//! lets the caller await every delivery before it moves anything that
//! depends on it (a snapshot after the batches it reflects, a committed
//! offset after its snapshot). [`read_latest`] reads a partition of the
//! state topic from its beginning to its end and keeps the newest value of
//! each key: a processor restores an assigned partition from it.

use super::{client_config, kerr, ADMIN_TIMEOUT};
use crate::bus::BusError;
use crate::config::KafkaConfig;
use crate::metrics::metrics;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::Message;
use rdkafka::producer::future_producer::DeliveryFuture;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::HashMap;
use std::time::Duration;

/// Largest message the processors publish (a batch of at most a few
/// thousand records; the topics are created to accept it).
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// Creates the processed and state topics when missing: as many partitions
/// as `kafka.partitions`, messages up to [`MAX_MESSAGE_BYTES`], and the
/// state topic compacted (only the newest snapshot of a partition matters).
pub async fn ensure_output_topics(cfg: &KafkaConfig) -> Result<(), BusError> {
    let admin: AdminClient<DefaultClientContext> = client_config(cfg).create().map_err(kerr)?;
    let max = MAX_MESSAGE_BYTES.to_string();
    let topics = [
        NewTopic::new(
            &cfg.processed_topic,
            cfg.partitions as i32,
            TopicReplication::Fixed(i32::from(cfg.replication_factor)),
        )
        .set("max.message.bytes", &max),
        NewTopic::new(
            &cfg.state_topic,
            cfg.partitions as i32,
            TopicReplication::Fixed(i32::from(cfg.replication_factor)),
        )
        .set("max.message.bytes", &max)
        .set("cleanup.policy", "compact"),
    ];
    let opts = AdminOptions::new().operation_timeout(Some(ADMIN_TIMEOUT));
    for r in admin
        .create_topics(topics.iter(), &opts)
        .await
        .map_err(kerr)?
    {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, code)) => return Err(BusError::Kafka(format!("creating topic {t}: {code}"))),
        }
    }
    for t in [&cfg.processed_topic, &cfg.state_topic] {
        super::partition_count(cfg, t).await?;
    }
    Ok(())
}

/// An idempotent producer whose deliveries the caller awaits.
#[derive(Clone)]
pub struct OutputProducer {
    producer: FutureProducer,
}

/// A message queued for delivery.
pub struct Pending {
    topic: String,
    delivery: DeliveryFuture,
}

impl Pending {
    /// Waits for the broker's acknowledgement.
    pub async fn delivered(self) -> Result<(), BusError> {
        let r = match self.delivery.await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err((e, _))) => Err(BusError::Delivery(e.to_string())),
            Err(_) => Err(BusError::Delivery(
                "the producer was dropped before the delivery report".into(),
            )),
        };
        let m = metrics();
        match &r {
            Ok(()) => m.kafka_delivered.with_label_values(&[&self.topic]).inc(),
            Err(_) => m
                .kafka_delivery_errors
                .with_label_values(&[&self.topic])
                .inc(),
        }
        r
    }
}

impl OutputProducer {
    /// Creates the producer.
    pub fn new(cfg: &KafkaConfig) -> Result<Self, BusError> {
        let producer: FutureProducer = client_config(cfg)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("compression.type", cfg.compression.as_str())
            .set("message.max.bytes", MAX_MESSAGE_BYTES.to_string())
            .set("message.timeout.ms", "0")
            .set("linger.ms", "5")
            .create()
            .map_err(kerr)?;
        Ok(OutputProducer { producer })
    }

    /// Queues one message to an explicit partition, waiting while the
    /// producer's queue is full.
    pub async fn send(
        &self,
        topic: &str,
        partition: i32,
        key: &str,
        payload: &[u8],
    ) -> Result<Pending, BusError> {
        loop {
            let fr = FutureRecord::to(topic)
                .partition(partition)
                .key(key)
                .payload(payload);
            match self.producer.send_result(fr) {
                Ok(delivery) => {
                    metrics().kafka_produced.with_label_values(&[topic]).inc();
                    return Ok(Pending {
                        topic: topic.to_string(),
                        delivery,
                    });
                }
                Err((
                    rdkafka::error::KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull),
                    _,
                )) => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err((e, _)) => {
                    metrics()
                        .kafka_delivery_errors
                        .with_label_values(&[topic])
                        .inc();
                    return Err(kerr(e));
                }
            }
        }
    }
}

/// Reads partition `partition` of `topic` from its beginning up to its end
/// (the high watermark when the read starts) and returns the newest value
/// of every key accepted by `want`. Blocking: run it on a blocking thread.
/// A broker that reports too low an end makes this return older values,
/// never newer ones.
pub fn read_latest(
    cfg: &KafkaConfig,
    topic: &str,
    partition: i32,
    want: impl Fn(&str) -> bool,
) -> Result<HashMap<String, Vec<u8>>, BusError> {
    let consumer: BaseConsumer = client_config(cfg)
        .set("group.id", format!("{}-restore", cfg.group_id))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()
        .map_err(kerr)?;
    let (low, high) = consumer
        .fetch_watermarks(topic, partition, ADMIN_TIMEOUT)
        .map_err(kerr)?;
    let mut out = HashMap::new();
    if high <= low {
        return Ok(out);
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(low))
        .map_err(kerr)?;
    consumer.assign(&tpl).map_err(kerr)?;
    let deadline = std::time::Instant::now() + ADMIN_TIMEOUT;
    loop {
        if std::time::Instant::now() >= deadline {
            return Err(BusError::Kafka(format!(
                "reading {topic}/{partition} up to offset {high} took longer than {ADMIN_TIMEOUT:?}"
            )));
        }
        let Some(m) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let m = m.map_err(kerr)?;
        if let Some(key) = m.key().and_then(|k| std::str::from_utf8(k).ok()) {
            if want(key) {
                match m.payload() {
                    Some(p) => out.insert(key.to_string(), p.to_vec()),
                    None => out.remove(key),
                };
            }
        }
        if m.offset() + 1 >= high {
            return Ok(out);
        }
    }
}
