//! The Kafka bus (rdkafka, bundled librdkafka).
//!
//! **Publishing.** Raw records go to `kafka.logs_topic` / `kafka.posts_topic`
//! keyed by their stream, so one file or one feed lands on one partition and
//! keeps its order. The producer is idempotent (`enable.idempotence`, which
//! implies `acks=all` and in-order retries) and compresses batches
//! (`kafka.compression`, lz4 by default). The payload is the record's raw
//! bytes; everything else about the record travels as JSON in the `farol`
//! header. `publish` returns once librdkafka has queued the record; a
//! forwarder task awaits the broker's delivery reports *in publish order* and
//! only then acknowledges the record's position to its source, so a
//! checkpoint never moves past a record the broker does not hold. At most
//! `kafka.max_in_flight` records wait for their report: past that `publish`
//! waits, which is how a broker outage pauses sources within a bound instead
//! of dropping or buffering without limit (`message.timeout.ms=0`: librdkafka
//! retries until the broker is back). A delivery that fails anyway stops
//! acknowledgements for good and fails every later `publish`: the process is
//! meant to stop and resume from its checkpoints (crash-only).
//!
//! **Consuming.** [`assign`] reads every partition of the input topics from
//! given offsets (the offsets the index stored with the state they produced;
//! the beginning when it stored none), one [`KafkaPartitionConsumer`] per
//! partition so each partition is processed in order by its own task.
//! Offsets are never committed automatically.
//!
//! **Why results are exact (state snapshots stored with offsets).** The
//! index commits, in one atomic commit, the counts, the per-stream state
//! (`applied_end`: the stream position of the last record applied) and the
//! next input offset of each partition whose records those effects reflect.
//! On restart every partition is consumed again from exactly that offset, so
//! a record is either reflected in the durable state (before the offset) or
//! consumed again (at or after it), never both and never neither. A record
//! can also be in a topic twice, when a source crashed after the broker took
//! it and before the delivery report moved its checkpoint: both copies carry
//! the same stream position (`end`), land on the same partition (same key)
//! in publish order, and the processor skips any record at or below the
//! stream's `applied_end`, so the copy is not counted again. Count
//! increments from different partitions touch different streams, and the
//! index adds them up, so per-partition partial counts sum to the exact
//! global count even when one source's files land on different partitions.

pub mod group;
pub mod output;

use super::{Acknowledge, BusError, Consumer, Delivery, Producer};
use crate::config::KafkaConfig;
use crate::metrics::metrics;
use crate::model::{Position, RawRecord, RecordKind};
use async_trait::async_trait;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::stream_consumer::StreamPartitionQueue;
use rdkafka::consumer::{Consumer as _, DefaultConsumerContext, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::future_producer::DeliveryFuture;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// The header that carries a record's metadata.
const META_HEADER: &str = "farol";
/// How long admin and metadata requests may take.
pub(crate) const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) fn kerr(e: KafkaError) -> BusError {
    BusError::Kafka(e.to_string())
}

/// Client settings shared by producers, consumers and the admin client.
pub fn client_config(cfg: &KafkaConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &cfg.brokers);
    for (k, v) in &cfg.properties {
        c.set(k, v);
    }
    c
}

/// The topic raw records of `kind` are published to.
pub fn topic_for(cfg: &KafkaConfig, kind: RecordKind) -> &str {
    match kind {
        RecordKind::Log => &cfg.logs_topic,
        RecordKind::Post => &cfg.posts_topic,
    }
}

/// Creates the topics that do not exist yet, with `kafka.partitions`
/// partitions, and waits until the broker reports all of them.
pub async fn ensure_topics(cfg: &KafkaConfig, topics: &[&str]) -> Result<(), BusError> {
    let admin: AdminClient<DefaultClientContext> = client_config(cfg).create().map_err(kerr)?;
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|t| {
            NewTopic::new(
                t,
                cfg.partitions as i32,
                TopicReplication::Fixed(i32::from(cfg.replication_factor)),
            )
        })
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(ADMIN_TIMEOUT));
    for r in admin.create_topics(new.iter(), &opts).await.map_err(kerr)? {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, code)) => {
                return Err(BusError::Kafka(format!("creating topic {t}: {code}")));
            }
        }
    }
    for t in topics {
        partition_count(cfg, t).await?;
    }
    Ok(())
}

/// How many partitions `topic` has, waiting (up to the admin timeout) for
/// the broker to report it.
pub async fn partition_count(cfg: &KafkaConfig, topic: &str) -> Result<i32, BusError> {
    let consumer: rdkafka::consumer::BaseConsumer = client_config(cfg).create().map_err(kerr)?;
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + ADMIN_TIMEOUT;
        loop {
            let md = consumer
                .fetch_metadata(Some(&topic), Duration::from_secs(5))
                .map_err(kerr)?;
            let n = md
                .topics()
                .iter()
                .find(|t| t.name() == topic && t.error().is_none())
                .map_or(0, |t| t.partitions().len() as i32);
            if n > 0 {
                return Ok(n);
            }
            if std::time::Instant::now() >= deadline {
                return Err(BusError::Kafka(format!(
                    "topic {topic} has no partitions after {ADMIN_TIMEOUT:?}"
                )));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    })
    .await
    .map_err(|e| BusError::Kafka(e.to_string()))?
}

type InFlight = (DeliveryFuture, Position, Arc<str>);

/// Idempotent producer whose deliveries acknowledge source positions.
#[derive(Clone)]
pub struct KafkaProducer {
    producer: FutureProducer,
    logs_topic: Arc<str>,
    posts_topic: Arc<str>,
    in_flight: mpsc::Sender<InFlight>,
    failed: Arc<Mutex<Option<String>>>,
}

impl KafkaProducer {
    /// Creates the producer and its delivery-report forwarder (needs a tokio runtime).
    pub fn new(cfg: &KafkaConfig, acks: Arc<dyn Acknowledge>) -> Result<Self, BusError> {
        let producer: FutureProducer = client_config(cfg)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("compression.type", cfg.compression.as_str())
            .set("message.timeout.ms", "0")
            .set("linger.ms", "5")
            .create()
            .map_err(kerr)?;
        let (tx, rx) = mpsc::channel(cfg.max_in_flight);
        let failed = Arc::new(Mutex::new(None));
        tokio::spawn(forward_deliveries(rx, acks, failed.clone()));
        Ok(KafkaProducer {
            producer,
            logs_topic: cfg.logs_topic.as_str().into(),
            posts_topic: cfg.posts_topic.as_str().into(),
            in_flight: tx,
            failed,
        })
    }

    /// Waits up to `timeout` for every queued record to be delivered.
    pub async fn flush(&self, timeout: Duration) -> Result<(), BusError> {
        let p = self.producer.clone();
        tokio::task::spawn_blocking(move || p.flush(timeout))
            .await
            .map_err(|e| BusError::Kafka(e.to_string()))?
            .map_err(kerr)
    }

    fn topic(&self, kind: RecordKind) -> Arc<str> {
        match kind {
            RecordKind::Log => self.logs_topic.clone(),
            RecordKind::Post => self.posts_topic.clone(),
        }
    }
}

async fn forward_deliveries(
    mut rx: mpsc::Receiver<InFlight>,
    acks: Arc<dyn Acknowledge>,
    failed: Arc<Mutex<Option<String>>>,
) {
    let m = metrics();
    while let Some((fut, pos, topic)) = rx.recv().await {
        let outcome = match fut.await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err((e, _))) => Err(e.to_string()),
            Err(_) => Err("the producer was dropped before the delivery report".to_string()),
        };
        m.kafka_in_flight.dec();
        match outcome {
            Ok(()) => {
                m.kafka_delivered.with_label_values(&[&*topic]).inc();
                acks.acknowledge(vec![pos]);
            }
            Err(e) => {
                m.kafka_delivery_errors.with_label_values(&[&*topic]).inc();
                tracing::error!(topic = %topic, error = %e, "kafka delivery failed; no further acknowledgements");
                if let Ok(mut f) = failed.lock() {
                    *f = Some(e);
                }
                // Later records must not be acknowledged past the lost one.
                while rx.recv().await.is_some() {
                    m.kafka_in_flight.dec();
                }
                return;
            }
        }
    }
}

#[async_trait]
impl Producer for KafkaProducer {
    async fn publish(&self, record: RawRecord) -> Result<(), BusError> {
        if let Some(e) = self.failed.lock().ok().and_then(|f| f.clone()) {
            return Err(BusError::Delivery(e));
        }
        let slot = self
            .in_flight
            .reserve()
            .await
            .map_err(|_| BusError::Closed)?;
        let topic = self.topic(record.kind);
        let payload = record.payload;
        let record = RawRecord {
            payload: Vec::new(),
            ..record
        };
        let meta = serde_json::to_vec(&record).map_err(|e| BusError::Kafka(e.to_string()))?;
        let pos = Position {
            source: record.source.to_string(),
            stream: record.stream.to_string(),
            end: record.end,
            line_no: record.line_no.saturating_add(record.line_span),
        };
        loop {
            let headers = OwnedHeaders::new().insert(Header {
                key: META_HEADER,
                value: Some(&meta),
            });
            let fr = FutureRecord::to(&topic)
                .key(record.stream.as_bytes())
                .payload(&payload)
                .headers(headers);
            match self.producer.send_result(fr) {
                Ok(fut) => {
                    metrics().kafka_produced.with_label_values(&[&*topic]).inc();
                    metrics().kafka_in_flight.inc();
                    slot.send((fut, pos, topic.clone()));
                    return Ok(());
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err((e, _)) => {
                    metrics()
                        .kafka_delivery_errors
                        .with_label_values(&[&*topic])
                        .inc();
                    return Err(kerr(e));
                }
            }
        }
    }
}

/// Decodes a consumed message: the `farol` header when a Farol source
/// published it, otherwise (a foreign producer) a record of a source named
/// after the topic whose stream is the partition.
pub(crate) fn decode(topic: &str, partition: i32, m: &impl Message) -> RawRecord {
    let payload = m.payload().map(<[u8]>::to_vec).unwrap_or_default();
    let meta = m.headers().and_then(|h| {
        h.iter()
            .find(|h| h.key == META_HEADER)
            .and_then(|h| h.value)
            .and_then(|v| serde_json::from_slice::<RawRecord>(v).ok())
    });
    match meta {
        Some(r) => RawRecord { payload, ..r },
        None => {
            let offset = u64::try_from(m.offset()).unwrap_or(0);
            RawRecord {
                source: topic.into(),
                stream: format!("{topic}/{partition}").into(),
                kind: if payload.first() == Some(&b'{') && topic.contains("post") {
                    RecordKind::Post
                } else {
                    RecordKind::Log
                },
                platform: None,
                file: None,
                line_no: offset + 1,
                line_span: 0,
                offset,
                end: offset + 1,
                truncated: false,
                ingest_ms: m.timestamp().to_millis().unwrap_or(0),
                file_mtime: None,
                arrival_delay_ms: None,
                payload,
            }
        }
    }
}

/// Reads one topic partition in order.
pub struct KafkaPartitionConsumer {
    queue: StreamPartitionQueue<DefaultConsumerContext>,
    stop: watch::Receiver<bool>,
    topic: String,
    partition: i32,
    _consumer: Arc<StreamConsumer>,
}

/// Reads every partition of `topics`, each from its offset in `offsets`
/// (the beginning when absent). A partition consumer ends (`recv` gives
/// `None`) once `stop` turns true; what it had not handed out stays in the
/// topic for the next start. A background task drives the consumer's own
/// queue (client errors) until every partition consumer is dropped.
pub async fn assign(
    cfg: &KafkaConfig,
    topics: &[&str],
    offsets: &HashMap<(String, i32), i64>,
    stop: watch::Receiver<bool>,
) -> Result<Vec<KafkaPartitionConsumer>, BusError> {
    let consumer: StreamConsumer = client_config(cfg)
        .set("group.id", &cfg.group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .map_err(kerr)?;
    let consumer = Arc::new(consumer);
    let mut tpl = TopicPartitionList::new();
    let mut out = Vec::new();
    for t in topics {
        let n = partition_count(cfg, t).await?;
        for p in 0..n {
            let from = offsets
                .get(&(t.to_string(), p))
                .map_or(Offset::Beginning, |o| Offset::Offset(*o));
            tpl.add_partition_offset(t, p, from).map_err(kerr)?;
            let queue = consumer.split_partition_queue(t, p).ok_or_else(|| {
                BusError::Kafka(format!("cannot read partition {p} of {t} on its own"))
            })?;
            out.push(KafkaPartitionConsumer {
                queue,
                stop: stop.clone(),
                topic: t.to_string(),
                partition: p,
                _consumer: consumer.clone(),
            });
        }
    }
    consumer.assign(&tpl).map_err(kerr)?;
    let weak = Arc::downgrade(&consumer);
    drop(consumer);
    tokio::spawn(async move {
        // The main queue carries client errors once partitions are split off.
        let mut last_lag = std::time::Instant::now();
        loop {
            let Some(c) = weak.upgrade() else { return };
            if last_lag.elapsed() >= LAG_INTERVAL {
                last_lag = std::time::Instant::now();
                let lc = c.clone();
                let _ = tokio::task::spawn_blocking(move || report_lag(&lc)).await;
            }
            let r = tokio::time::timeout(Duration::from_secs(1), c.recv()).await;
            match r {
                Ok(Err(e)) => {
                    metrics()
                        .kafka_consume_errors
                        .with_label_values(&["*"])
                        .inc();
                    tracing::warn!(error = %e, "kafka consumer");
                }
                Ok(Ok(m)) => tracing::warn!(
                    topic = m.topic(),
                    partition = m.partition(),
                    "a message arrived outside its partition queue"
                ),
                Err(_) => {}
            }
        }
    });
    Ok(out)
}

/// How often consumer lag is measured.
const LAG_INTERVAL: Duration = Duration::from_secs(5);

/// Sets `farol_kafka_consumer_lag` for every assigned partition: the high
/// watermark minus the consumer's position (clamped at 0; some brokers
/// report a stale high watermark). Blocking: asks the broker.
pub(crate) fn report_lag<C: rdkafka::consumer::ConsumerContext>(c: &StreamConsumer<C>) {
    let Ok(positions) = c.position() else { return };
    for e in positions.elements() {
        let Offset::Offset(pos) = e.offset() else {
            continue;
        };
        if let Ok((_, high)) = c.fetch_watermarks(e.topic(), e.partition(), Duration::from_secs(2))
        {
            metrics()
                .kafka_consumer_lag
                .with_label_values(&[e.topic(), &e.partition().to_string()])
                .set((high - pos).max(0));
        }
    }
}

impl KafkaPartitionConsumer {
    /// The next message's offset and payload (for Farol's internal topics,
    /// whose payloads are not raw records), or `None` once `stop` turns true.
    pub async fn recv_bytes(&mut self) -> Option<(i64, Vec<u8>)> {
        loop {
            if *self.stop.borrow() {
                return None;
            }
            let mut stop = self.stop.clone();
            let got = tokio::select! {
                m = self.queue.recv() => m,
                _ = stop.wait_for(|s| *s) => return None,
            };
            match got {
                Ok(m) => {
                    metrics()
                        .kafka_consumed
                        .with_label_values(&[&self.topic, &self.partition.to_string()])
                        .inc();
                    return Some((
                        m.offset(),
                        m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
                    ));
                }
                Err(e) => {
                    metrics()
                        .kafka_consume_errors
                        .with_label_values(&[&self.topic])
                        .inc();
                    tracing::warn!(topic = %self.topic, partition = self.partition, error = %e, "kafka consumer");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }
}

#[async_trait]
impl Consumer for KafkaPartitionConsumer {
    fn partition(&self) -> u32 {
        self.partition as u32
    }

    fn topic(&self) -> Option<&str> {
        Some(&self.topic)
    }

    async fn recv(&mut self) -> Option<Delivery> {
        loop {
            if *self.stop.borrow() {
                return None;
            }
            let mut stop = self.stop.clone();
            let got = tokio::select! {
                m = self.queue.recv() => m,
                _ = stop.wait_for(|s| *s) => return None,
            };
            match got {
                Ok(m) => {
                    let record = decode(&self.topic, self.partition, &m);
                    metrics()
                        .kafka_consumed
                        .with_label_values(&[&self.topic, &self.partition.to_string()])
                        .inc();
                    return Some(Delivery {
                        partition: self.partition as u32,
                        offset: u64::try_from(m.offset()).unwrap_or(0),
                        record,
                        budget: None,
                    });
                }
                Err(e) => {
                    metrics()
                        .kafka_consume_errors
                        .with_label_values(&[&self.topic])
                        .inc();
                    tracing::warn!(topic = %self.topic, partition = self.partition, error = %e, "kafka consumer");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }
}
