//! The Elasticsearch index backend: the [`Index`] seam on an
//! Elasticsearch-API server.
//!
//! Writes. Events and dead letters are written with deterministic ids (a
//! rewrite replaces), in bulk requests as they arrive ([`bulk`]); documents
//! the server rejects for good become dead letters with the reason. Base
//! bucket counts arrive as increments; the backend keeps the absolute value
//! of every counter its partition touched (read back lazily from the
//! server) and writes it as one per-partition partial document with a
//! deterministic `_id` per (bucket, kind, source, key, partition).
//!
//! Commit order, so that a crash at any point leaves counts and stream
//! positions consistent: (1) every staged event and dead letter is accepted;
//! (2) the partition's state document is replaced in one write: the stream
//! states *and* a journal holding the new absolute value of every counter
//! changed since the last commit; (3) the counter documents are written.
//! Only then are positions returned for acknowledgement. At start-up a
//! journal is replayed (rewriting the same absolute values, idempotent), so
//! a crash between (2) and (3) loses nothing and counts nothing twice.

pub mod bulk;
pub mod client;
pub mod lifecycle;
pub mod query;
pub mod search_text;
pub mod templates;

use crate::query::{SearchHits, SearchQuery, Trends, TrendsQuery};
use crate::{Index, IndexError};
use async_trait::async_trait;
use bulk::{Action, BulkLimits, BulkOp};
use client::{EsClient, EsError, EsSettings};
use elasticsearch::http::Method;
use farol_common::config::EsEvents;
use farol_common::metrics::metrics;
use farol_common::model::{AggKind, Batch, BucketKey, DeadLetter, Event, Position, StreamState};
use farol_common::time::{now_ms, Millis};
use lifecycle::Layout;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use templates::{IndexKind, MappingConflict};

/// The partition whose partial aggregates this process writes. The
/// embedded bus hands every record to one index sink, so it is 0 until the
/// bus carries partitions to the index.
pub const PARTITION: u32 = 0;

/// The `_id` of a counter document: the same (bucket, kind, source, key,
/// partition) always gets the same id.
pub fn trend_id(k: &BucketKey, partition: u32) -> String {
    let mut h = Vec::with_capacity(k.source.len() + k.key.len() + 32);
    for part in [
        k.kind.as_str().as_bytes(),
        k.source.as_bytes(),
        k.key.as_bytes(),
        k.bucket_start.to_string().as_bytes(),
        partition.to_string().as_bytes(),
    ] {
        h.extend_from_slice(part);
        h.push(0);
    }
    format!(
        "{}-{:032x}",
        k.bucket_start,
        xxhash_rust::xxh3::xxh3_128(&h)
    )
}

fn trend_doc(k: &BucketKey, partition: u32, count: u64) -> Value {
    json!({
        "@timestamp": k.bucket_start,
        "bucket_start": k.bucket_start,
        "kind": k.kind.as_str(),
        "source": k.source,
        "key": k.key,
        "partition": partition,
        "count": count,
    })
}

/// The write of one event: `create` into its data stream (a replay is a
/// 409, a duplicate), or `index` into its month (a replay replaces).
fn event_op(prefix: &str, events: EsEvents, e: &Event) -> BulkOp {
    let (kind, ts) = match e {
        Event::Log(l) => (IndexKind::Logs, l.ts),
        Event::Post(p) => (IndexKind::Posts, p.created_at),
    };
    let body = e.document();
    BulkOp {
        action: match events {
            EsEvents::DataStream => Action::Create,
            EsEvents::Monthly => Action::Index,
        },
        index: kind.target(prefix, events, ts),
        id: e.id().to_string(),
        body: body.to_string(),
        ts,
        source: e.source().to_string(),
    }
}

fn dead_letter_op(prefix: &str, dl: &DeadLetter) -> BulkOp {
    let mut body = serde_json::to_value(dl).unwrap_or(Value::Null);
    body["type"] = "deadletter".into();
    body["@timestamp"] = dl.ts.into();
    BulkOp {
        action: Action::Index,
        index: IndexKind::DeadLetter.index_for(prefix, dl.ts),
        id: dl.id.clone(),
        body: body.to_string(),
        ts: dl.ts,
        source: dl.source.clone(),
    }
}

/// Longest raw text a dead letter for a rejected document keeps.
const MAX_REJECTED_RAW: usize = 8 * 1024;

/// The dead letter standing for a document the server rejected for good.
pub fn rejected_dead_letter(op: &BulkOp, reason: &str) -> DeadLetter {
    let mut raw = op.body.clone();
    if raw.len() > MAX_REJECTED_RAW {
        let mut end = MAX_REJECTED_RAW;
        while !raw.is_char_boundary(end) {
            end -= 1;
        }
        raw.truncate(end);
    }
    DeadLetter {
        id: format!("rejected:{}", op.id),
        source: op.source.clone(),
        reason: "index_rejected".into(),
        detail: format!("{} rejected the document: {reason}", op.index),
        raw,
        ts: op.ts,
    }
}

/// Counters of this backend, registered in the process-wide registry.
pub struct EsMetrics {
    /// Documents rejected for good by the server, by source.
    pub rejected: prometheus::IntCounterVec,
    /// Documents sent again after a retryable failure (of their bulk item,
    /// or of their whole bulk request), counted as they are resent.
    pub retried: prometheus::IntCounter,
    /// Documents that already existed (409).
    pub duplicates: prometheus::IntCounter,
}

/// This backend's metrics.
pub fn es_metrics() -> &'static EsMetrics {
    static M: OnceLock<EsMetrics> = OnceLock::new();
    M.get_or_init(|| {
        let rejected = prometheus::IntCounterVec::new(
            prometheus::Opts::new(
                "farol_index_rejected_documents_total",
                "Documents the index server rejected for good (sent to the dead-letter output), by source",
            ),
            &["source"],
        )
        .expect("valid metric");
        let retried = prometheus::IntCounter::new(
            "farol_index_bulk_items_retried_total",
            "Bulk items sent again after a retryable failure",
        )
        .expect("valid metric");
        let duplicates = prometheus::IntCounter::new(
            "farol_index_bulk_duplicates_total",
            "Bulk items that already existed (409 on create or a version conflict)",
        )
        .expect("valid metric");
        let r = &metrics().registry;
        let _ = r.register(Box::new(rejected.clone()));
        let _ = r.register(Box::new(retried.clone()));
        let _ = r.register(Box::new(duplicates.clone()));
        EsMetrics {
            rejected,
            retried,
            duplicates,
        }
    })
}

#[derive(Default)]
struct Staged {
    ops: Vec<BulkOp>,
    bytes: usize,
    deltas: HashMap<BucketKey, u64>,
    streams: HashMap<String, StreamState>,
    positions: HashMap<String, Position>,
    offsets: HashMap<(String, i32), i64>,
}

struct Inner {
    client: EsClient,
    prefix: String,
    limits: BulkLimits,
    partition: u32,
    staged: Mutex<Staged>,
    /// Absolute values of the counters this partition wrote.
    counts: tokio::sync::Mutex<HashMap<BucketKey, u64>>,
    durable: Mutex<HashMap<String, StreamState>>,
    /// Input offsets stored with the durable state (see [`Index::input_offsets`]).
    durable_offsets: Mutex<HashMap<(String, i32), i64>>,
    generation: Mutex<u64>,
    /// Serializes commits and early flushes.
    commit_lock: tokio::sync::Mutex<()>,
    conflicts: Vec<MappingConflict>,
    /// The event storage in effect.
    layout: Layout,
    composite: query::AggSupport,
}

/// The Elasticsearch index.
#[derive(Clone)]
pub struct ElasticsearchIndex {
    inner: Arc<Inner>,
}

fn lock_err<T>(_: T) -> IndexError {
    IndexError::Task("a lock was poisoned by a panicking writer".into())
}

impl ElasticsearchIndex {
    /// Connects, installs the templates, loads the partition's durable
    /// state and replays its journal.
    pub async fn open(settings: &EsSettings) -> Result<Self, IndexError> {
        let client = EsClient::new(settings)?;
        let prefix = settings.index_prefix.clone();
        let wanted = templates::Wanted {
            events: settings.events,
            ilm: settings.ilm.clone(),
        };
        let (layout, conflicts) = templates::install(&client, &prefix, &wanted).await?;
        let limits = BulkLimits {
            max_docs: settings.bulk_max_docs.max(1),
            max_bytes: settings.bulk_max_bytes.max(1024),
            concurrency: settings.bulk_concurrency.max(1),
            retry_for: settings.retry_for,
        };
        let inner = Inner {
            client,
            prefix,
            limits,
            partition: PARTITION,
            staged: Mutex::new(Staged::default()),
            counts: tokio::sync::Mutex::new(HashMap::new()),
            durable: Mutex::new(HashMap::new()),
            durable_offsets: Mutex::new(HashMap::new()),
            generation: Mutex::new(0),
            commit_lock: tokio::sync::Mutex::new(()),
            conflicts,
            layout,
            composite: query::AggSupport::default(),
        };
        inner.recover().await?;
        es_metrics();
        Ok(ElasticsearchIndex {
            inner: Arc::new(inner),
        })
    }

    /// Existing indices whose mapping differs from Farol's templates.
    pub fn mapping_conflicts(&self) -> &[MappingConflict] {
        &self.inner.conflicts
    }

    /// The index name prefix.
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// The event storage in effect (and why, when it is not what the
    /// settings asked for).
    pub fn layout(&self) -> &Layout {
        &self.inner.layout
    }
}

/// The state document of a partition.
#[derive(serde::Serialize, serde::Deserialize, Default)]
struct StateDoc {
    partition: u32,
    generation: u64,
    updated: Millis,
    streams: HashMap<String, StreamState>,
    /// Every counter changed by the last commit, with its new value.
    journal: Vec<JournalEntry>,
    /// The next input offset of every Kafka topic partition whose records
    /// these counts and streams reflect.
    #[serde(default)]
    input_offsets: Vec<farol_common::model::InputOffset>,
}

/// One counter's new absolute value.
#[derive(serde::Serialize, serde::Deserialize)]
struct JournalEntry {
    kind: AggKind,
    source: String,
    key: String,
    bucket_start: Millis,
    count: u64,
}

impl Inner {
    fn state_path(&self) -> String {
        format!(
            "/{}/_doc/partition-{}",
            IndexKind::State.pattern(&self.prefix),
            self.partition
        )
    }

    async fn recover(&self) -> Result<(), IndexError> {
        let (status, v) = self
            .client
            .raw(Method::Get, &self.state_path(), None, false)
            .await?;
        if status == 404 {
            return Ok(());
        }
        if status >= 300 {
            return Err(EsError::Status {
                status,
                what: "reading the state document".into(),
                body: client::short(&v.to_string()),
            }
            .into());
        }
        let doc: StateDoc = serde_json::from_value(v["_source"].clone())
            .map_err(|e| IndexError::Corrupt(format!("state document: {e}")))?;
        let mut counts = self.counts.lock().await;
        let mut ops = Vec::new();
        for e in doc.journal {
            let n = e.count;
            let k = BucketKey {
                bucket_start: e.bucket_start,
                kind: e.kind,
                source: e.source,
                key: e.key,
            };
            ops.push(self.trend_op(&k, n));
            counts.insert(k, n);
        }
        drop(counts);
        if !ops.is_empty() {
            tracing::info!(counters = ops.len(), "replaying the index journal");
            self.write_own(ops).await?;
        }
        *self.generation.lock().map_err(lock_err)? = doc.generation;
        *self.durable.lock().map_err(lock_err)? = doc.streams;
        *self.durable_offsets.lock().map_err(lock_err)? = doc
            .input_offsets
            .into_iter()
            .map(|o| ((o.topic, o.partition), o.next))
            .collect();
        Ok(())
    }

    fn trend_op(&self, k: &BucketKey, n: u64) -> BulkOp {
        BulkOp {
            action: Action::Index,
            index: IndexKind::Trends.pattern(&self.prefix),
            id: trend_id(k, self.partition),
            body: trend_doc(k, self.partition, n).to_string(),
            ts: k.bucket_start,
            source: k.source.clone(),
        }
    }

    /// Writes Farol's own documents (counters): a rejection is a failure.
    async fn write_own(&self, ops: Vec<BulkOp>) -> Result<(), IndexError> {
        let report = bulk::write_all(&self.client, ops, &self.limits).await?;
        if let Some((op, why)) = report.rejected.first() {
            return Err(IndexError::Corrupt(format!(
                "{} rejected counter document {}: {why}",
                op.index, op.id
            )));
        }
        Ok(())
    }

    /// Writes events and dead letters; documents rejected for good become
    /// dead letters (written in turn; their own rejection is a failure).
    async fn write_events(&self, ops: Vec<BulkOp>) -> Result<(), IndexError> {
        if ops.is_empty() {
            return Ok(());
        }
        let report = bulk::write_all(&self.client, ops, &self.limits).await?;
        let m = es_metrics();
        m.duplicates.inc_by(report.duplicates as u64);
        if report.rejected.is_empty() {
            return Ok(());
        }
        let mut dls = Vec::new();
        for (op, why) in &report.rejected {
            if op
                .index
                .starts_with(&format!("{}-deadletter-", self.prefix))
            {
                return Err(IndexError::Corrupt(format!(
                    "{} rejected dead letter {}: {why}",
                    op.index, op.id
                )));
            }
            tracing::warn!(index = %op.index, id = %op.id, reason = %why, "document rejected; dead-lettered");
            m.rejected.with_label_values(&[&op.source]).inc();
            metrics()
                .dead_letters
                .with_label_values(&[&op.source, "index_rejected"])
                .inc();
            dls.push(dead_letter_op(&self.prefix, &rejected_dead_letter(op, why)));
        }
        let report = bulk::write_all(&self.client, dls, &self.limits).await?;
        if let Some((op, why)) = report.rejected.first() {
            return Err(IndexError::Corrupt(format!(
                "{} rejected dead letter {}: {why}",
                op.index, op.id
            )));
        }
        Ok(())
    }

    fn stage(&self, batch: Batch) -> Result<Option<Vec<BulkOp>>, IndexError> {
        let mut st = self.staged.lock().map_err(lock_err)?;
        for e in &batch.events {
            let op = event_op(&self.prefix, self.layout.events, e);
            st.bytes += op.body.len();
            st.ops.push(op);
        }
        for dl in &batch.dead_letters {
            let op = dead_letter_op(&self.prefix, dl);
            st.bytes += op.body.len();
            st.ops.push(op);
        }
        for (k, n) in batch.counts {
            *st.deltas.entry(k).or_insert(0) += n;
        }
        for (id, s) in batch.streams {
            st.positions.insert(
                id.clone(),
                Position {
                    source: s.source.clone(),
                    stream: id.clone(),
                    end: s.applied_end,
                    line_no: s.line_no,
                },
            );
            let mut s = s;
            if s.templates.is_none() {
                // Unchanged templates: keep the ones held for this stream,
                // staged or durable (the state document always carries them).
                s.templates = st
                    .streams
                    .get(&id)
                    .and_then(|o| o.templates.clone())
                    .or_else(|| {
                        self.durable
                            .lock()
                            .ok()
                            .and_then(|d| d.get(&id).and_then(|o| o.templates.clone()))
                    });
            }
            st.streams.insert(id, s);
        }
        for o in batch.offsets {
            st.offsets.insert((o.topic, o.partition), o.next);
        }
        for id in batch.retired {
            st.streams.remove(&id);
            st.positions.remove(&id);
            if let Ok(mut d) = self.durable.lock() {
                d.remove(&id);
            }
        }
        metrics().index_pending.set(st.ops.len() as i64);
        // Enough for every bulk slot: send now, so memory stays bounded
        // between commits (positions still wait for the commit).
        let full_docs = self.limits.max_docs * self.limits.concurrency;
        let full_bytes = self.limits.max_bytes * self.limits.concurrency;
        if st.ops.len() >= full_docs || st.bytes >= full_bytes {
            st.bytes = 0;
            return Ok(Some(std::mem::take(&mut st.ops)));
        }
        Ok(None)
    }

    async fn commit(&self) -> Result<Vec<Position>, IndexError> {
        let _guard = self.commit_lock.lock().await;
        let timer = metrics()
            .index_commit_seconds
            .with_label_values(&["elasticsearch"])
            .start_timer();
        let (ops, deltas, positions, streams, offsets) = {
            let mut st = self.staged.lock().map_err(lock_err)?;
            st.bytes = 0;
            let ops = std::mem::take(&mut st.ops);
            let deltas = std::mem::take(&mut st.deltas);
            let positions: Vec<Position> = st.positions.drain().map(|(_, p)| p).collect();
            let mut streams = self.durable.lock().map_err(lock_err)?.clone();
            for (id, s) in &st.streams {
                streams.insert(id.clone(), s.clone());
            }
            st.streams.clear();
            let mut offsets = self.durable_offsets.lock().map_err(lock_err)?.clone();
            offsets.extend(st.offsets.drain());
            (ops, deltas, positions, streams, offsets)
        };
        // (1) events and dead letters.
        self.write_events(ops).await?;
        // New absolute values of the changed counters.
        let mut counts = self.counts.lock().await;
        let unknown: Vec<&BucketKey> = deltas.keys().filter(|k| !counts.contains_key(*k)).collect();
        let found = self.read_counts(&unknown).await?;
        let mut journal = Vec::with_capacity(deltas.len());
        let mut new_values = Vec::with_capacity(deltas.len());
        for (k, d) in deltas {
            let base = counts
                .get(&k)
                .copied()
                .or_else(|| found.get(&trend_id(&k, self.partition)).copied())
                .unwrap_or(0);
            let n = base + d;
            journal.push(JournalEntry {
                kind: k.kind,
                source: k.source.clone(),
                key: k.key.clone(),
                bucket_start: k.bucket_start,
                count: n,
            });
            new_values.push((k, n));
        }
        // (2) the state document with the journal, in one write.
        let generation = {
            let mut g = self.generation.lock().map_err(lock_err)?;
            *g += 1;
            *g
        };
        let doc = StateDoc {
            partition: self.partition,
            generation,
            updated: now_ms(),
            streams: streams.clone(),
            journal,
            input_offsets: offsets
                .iter()
                .map(
                    |((topic, partition), next)| farol_common::model::InputOffset {
                        topic: topic.clone(),
                        partition: *partition,
                        next: *next,
                    },
                )
                .collect(),
        };
        let body = serde_json::to_value(&doc).map_err(|e| IndexError::Corrupt(e.to_string()))?;
        self.put_state(&body).await?;
        // (3) the counters.
        let ops: Vec<BulkOp> = new_values
            .iter()
            .map(|(k, n)| self.trend_op(k, *n))
            .collect();
        self.write_own(ops).await?;
        for (k, n) in new_values {
            counts.insert(k, n);
        }
        drop(counts);
        *self.durable.lock().map_err(lock_err)? = streams;
        *self.durable_offsets.lock().map_err(lock_err)? = offsets;
        metrics().index_pending.set(0);
        metrics()
            .index_commits
            .with_label_values(&["elasticsearch"])
            .inc();
        timer.observe_duration();
        Ok(positions)
    }

    /// Writes the state document, retrying like a bulk request.
    async fn put_state(&self, body: &Value) -> Result<(), IndexError> {
        let op = BulkOp {
            action: Action::Index,
            index: IndexKind::State.pattern(&self.prefix),
            id: format!("partition-{}", self.partition),
            body: body.to_string(),
            ts: 0,
            source: String::new(),
        };
        self.write_own(vec![op]).await
    }

    /// Current values of counters not yet in memory, by document id.
    async fn read_counts(&self, keys: &[&BucketKey]) -> Result<HashMap<String, u64>, IndexError> {
        let mut out = HashMap::new();
        let path = format!("/{}/_mget", IndexKind::Trends.pattern(&self.prefix));
        for chunk in keys.chunks(1000) {
            let ids: Vec<String> = chunk.iter().map(|k| trend_id(k, self.partition)).collect();
            let body = json!({ "ids": ids });
            let v = query::with_retries(&self.client, self.limits.retry_for, || {
                self.client.request(Method::Post, &path, Some(&body))
            })
            .await?;
            for d in v["docs"].as_array().into_iter().flatten() {
                if d["found"].as_bool() == Some(true) {
                    if let (Some(id), Some(n)) = (d["_id"].as_str(), d["_source"]["count"].as_u64())
                    {
                        out.insert(id.to_string(), n);
                    }
                }
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl Index for ElasticsearchIndex {
    async fn apply(&self, batch: Batch) -> Result<(), IndexError> {
        if let Some(ops) = self.inner.stage(batch)? {
            let _guard = self.inner.commit_lock.lock().await;
            self.inner.write_events(ops).await?;
        }
        Ok(())
    }

    async fn commit(&self) -> Result<Vec<Position>, IndexError> {
        self.inner.commit().await
    }

    fn has_pending(&self) -> bool {
        self.inner
            .staged
            .lock()
            .map(|s| {
                !s.ops.is_empty()
                    || !s.deltas.is_empty()
                    || !s.positions.is_empty()
                    || !s.streams.is_empty()
                    || !s.offsets.is_empty()
            })
            .unwrap_or(false)
    }

    fn input_offsets(&self) -> HashMap<(String, i32), i64> {
        self.inner
            .durable_offsets
            .lock()
            .map(|d| d.clone())
            .unwrap_or_default()
    }

    fn stream_states(&self) -> HashMap<String, StreamState> {
        self.inner
            .durable
            .lock()
            .map(|d| d.clone())
            .unwrap_or_default()
    }

    async fn trends(&self, q: TrendsQuery) -> Result<Trends, IndexError> {
        let streams = self.stream_states();
        let kind = q.kind;
        let t = query::trends(
            &self.inner.client,
            &self.inner.prefix,
            &self.inner.composite,
            &q,
            Some(streams.clone()),
        )
        .await?;
        Ok(with_template_texts(t, kind, &streams))
    }

    async fn search(&self, q: SearchQuery) -> Result<SearchHits, IndexError> {
        query::search(&self.inner.client, &self.inner.prefix, &q).await
    }
}

/// Gives `kind=log_template` items their template text, from the templates
/// the processors persisted with the stream states.
fn with_template_texts(
    mut t: Trends,
    kind: AggKind,
    streams: &HashMap<String, StreamState>,
) -> Trends {
    if kind != AggKind::LogTemplate {
        return t;
    }
    let texts: HashMap<&str, String> = streams
        .values()
        .flat_map(|s| s.templates.iter().flatten())
        .map(|tpl| (tpl.id.as_str(), tpl.text()))
        .collect();
    for i in &mut t.items {
        if i.template.is_none() {
            i.template = texts.get(i.key.as_str()).cloned();
        }
    }
    t
}

/// Answers queries only (`farol serve`): no writes, stream states read
/// from what the index processes persisted, at every question.
#[derive(Clone)]
pub struct ElasticsearchReader {
    client: EsClient,
    prefix: String,
    composite: Arc<query::AggSupport>,
    streams: Arc<Mutex<HashMap<String, StreamState>>>,
}

impl ElasticsearchReader {
    /// Connects (no request is made).
    pub fn new(settings: &EsSettings) -> Result<Self, IndexError> {
        Ok(ElasticsearchReader {
            client: EsClient::new(settings)?,
            prefix: settings.index_prefix.clone(),
            composite: Arc::new(query::AggSupport::default()),
            streams: Arc::default(),
        })
    }

    /// Reads the persisted stream states again (they answer
    /// [`Index::stream_states`] until the next refresh).
    pub async fn refresh(&self) -> Result<(), IndexError> {
        let s = query::persisted_streams(&self.client, &self.prefix).await?;
        *self.streams.lock().map_err(lock_err)? = s;
        Ok(())
    }
}

#[async_trait]
impl Index for ElasticsearchReader {
    async fn apply(&self, _batch: Batch) -> Result<(), IndexError> {
        Err(IndexError::Task("farol serve does not write".into()))
    }

    async fn commit(&self) -> Result<Vec<Position>, IndexError> {
        Ok(vec![])
    }

    fn has_pending(&self) -> bool {
        false
    }

    fn stream_states(&self) -> HashMap<String, StreamState> {
        self.streams.lock().map(|s| s.clone()).unwrap_or_default()
    }

    async fn trends(&self, q: TrendsQuery) -> Result<Trends, IndexError> {
        let kind = q.kind;
        let t = query::trends(&self.client, &self.prefix, &self.composite, &q, None).await?;
        Ok(with_template_texts(t, kind, &self.stream_states()))
    }

    async fn search(&self, q: SearchQuery) -> Result<SearchHits, IndexError> {
        query::search(&self.client, &self.prefix, &q).await
    }
}
