//! The embedded index: events, dead letters and base-bucket counters stored
//! durably in a tantivy index under the data dir. Writes are idempotent
//! (every document has a deterministic id, replaced on rewrite); the
//! per-stream processing state rides in the same commit as its payload, so
//! counts and positions can never disagree after a crash.
//!
//! Base-bucket counters are documents too (`doc_type` `bucket`: a counter's
//! absolute value; `bucket_delta`: an increment of a counter not held
//! exactly in memory). Memory holds only recent buckets ([`Counts`]);
//! spans older than that are summed from these documents, and a restart
//! loads only the buckets still held, not the whole history.

use crate::counts::{CountLimits, Counts};
use crate::params::check_query_text;
use crate::query::{SearchHits, SearchQuery, Trends, TrendsQuery, MAX_SEARCH_BYTES};
use crate::{Index, IndexError};
use async_trait::async_trait;
use farol_common::metrics::metrics;
use farol_common::model::{
    AggKind, Batch, BucketKey, DeadLetter, Event, InputOffset, Position, StreamState,
};
use farol_common::time::{rfc3339, Millis};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::ops::Bound;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use tantivy::collector::{Count, DocSetCollector, TopDocs};
use tantivy::query::{AllQuery, BooleanQuery, Occur, Query, QueryParser, RangeQuery, TermQuery};
use tantivy::query_grammar::{UserInputAst, UserInputLeaf};
use tantivy::schema::{
    Field, IndexRecordOption, Schema, Value, FAST, INDEXED, STORED, STRING, TEXT,
};
use tantivy::{IndexReader, IndexWriter, Order, ReloadPolicy, TantivyDocument, Term};

#[derive(Clone, Copy)]
struct Fields {
    id: Field,
    doc_type: Field,
    source: Field,
    ts: Field,
    text: Field,
    class: Field,
    tags: Field,
    body: Field,
    kind: Field,
    key: Field,
    bucket: Field,
    count: Field,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let f = Fields {
        id: b.add_text_field("id", STRING | STORED),
        doc_type: b.add_text_field("doc_type", STRING | STORED),
        source: b.add_text_field("source", STRING | STORED),
        ts: b.add_i64_field("ts", INDEXED | FAST | STORED),
        text: b.add_text_field("text", TEXT),
        class: b.add_text_field("class", STRING),
        tags: b.add_text_field("tags", STRING),
        body: b.add_text_field("body", STORED),
        kind: b.add_text_field("kind", STRING | STORED),
        key: b.add_text_field("key", STRING | STORED),
        bucket: b.add_i64_field("bucket", STORED),
        count: b.add_u64_field("count", STORED),
    };
    (b.build(), f)
}

#[derive(Default)]
struct State {
    counts: Counts,
    /// Sequence number making every delta document's id unique (starts at
    /// the last commit's opstamp, which grows at least once per document).
    next_delta: u64,
    streams: HashMap<String, StreamState>,
    durable_streams: HashMap<String, StreamState>,
    pending_positions: HashMap<String, Position>,
    pending_docs: usize,
    /// Template id → template text, for `kind=log_template` answers.
    template_texts: HashMap<String, String>,
    offsets: HashMap<(String, i32), i64>,
    durable_offsets: HashMap<(String, i32), i64>,
    offsets_dirty: bool,
}

/// What a commit's payload holds: the per-stream state and, on the Kafka
/// bus, the next input offset of every partition whose records the commit
/// reflects. Without offsets it is written as the bare stream map, as
/// before offsets existed.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Payload {
    WithOffsets {
        farol_payload: u32,
        streams: HashMap<String, StreamState>,
        input_offsets: Vec<InputOffset>,
    },
    Streams(HashMap<String, StreamState>),
}

struct Inner {
    writer: Mutex<IndexWriter>,
    reader: IndexReader,
    parser: QueryParser,
    f: Fields,
    state: RwLock<State>,
}

/// The embedded (tantivy) index.
#[derive(Clone)]
pub struct EmbeddedIndex {
    inner: Arc<Inner>,
}

fn lock_err<T>(_: T) -> IndexError {
    IndexError::Task("a lock was poisoned by a panicking writer".into())
}

impl EmbeddedIndex {
    /// Opens (or creates) the index in `dir` and loads its durable state,
    /// with the default memory bounds of the counters.
    pub fn open(dir: &Path, writer_memory_mb: usize) -> Result<Self, IndexError> {
        Self::open_with(dir, writer_memory_mb, CountLimits::default())
    }

    /// [`EmbeddedIndex::open`] with these memory bounds of the counters.
    pub fn open_with(
        dir: &Path,
        writer_memory_mb: usize,
        limits: CountLimits,
    ) -> Result<Self, IndexError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| IndexError::Directory(format!("{}: {e}", dir.display())))?;
        let (schema, f) = schema();
        let mmap = tantivy::directory::MmapDirectory::open(dir)
            .map_err(|e| IndexError::Directory(format!("{}: {e}", dir.display())))?;
        let index = tantivy::Index::open_or_create(mmap, schema)?;
        let writer = index.writer(writer_memory_mb.max(15) * 1024 * 1024)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let mut parser = QueryParser::for_index(&index, vec![f.text]);
        // Every term must match, as in grep-style log search.
        parser.set_conjunction_by_default();
        let mut state = State::default();
        let metas = index.load_metas()?;
        state.next_delta = metas.opstamp;
        if let Some(payload) = metas.payload {
            let (streams, offsets) = match serde_json::from_str(&payload)
                .map_err(|e| IndexError::Corrupt(format!("commit payload: {e}")))?
            {
                Payload::WithOffsets {
                    streams,
                    input_offsets,
                    ..
                } => (
                    streams,
                    input_offsets
                        .into_iter()
                        .map(|o| ((o.topic, o.partition), o.next))
                        .collect(),
                ),
                Payload::Streams(streams) => (streams, HashMap::new()),
            };
            for s in streams.values() {
                for t in s.templates.iter().flatten() {
                    state.template_texts.insert(t.id.clone(), t.text());
                }
            }
            state.durable_streams = streams.clone();
            state.streams = streams;
            state.durable_offsets = offsets.clone();
            state.offsets = offsets;
        }
        state.counts = Counts::new(limits);
        load_counts(
            &reader.searcher(),
            f,
            &state.durable_streams,
            &mut state.counts,
        )?;
        Ok(EmbeddedIndex {
            inner: Arc::new(Inner {
                writer: Mutex::new(writer),
                reader,
                parser,
                f,
                state: RwLock::new(state),
            }),
        })
    }
}

/// Loads the counters still held in memory: for each source with streams,
/// the buckets from its floor on ([`Counts::floor_of`]); the newest older
/// bucket is remembered so that spans reaching it are read from the index.
/// Sources without streams stay in the index only.
impl EmbeddedIndex {
    /// Counters held in memory: (exact, summarised, buckets).
    pub fn counters_held(&self) -> (usize, usize, usize) {
        self.inner
            .state
            .read()
            .map(|s| s.counts.held())
            .unwrap_or_default()
    }
}

fn load_counts(
    searcher: &tantivy::Searcher,
    f: Fields,
    streams: &HashMap<String, StreamState>,
    counts: &mut Counts,
) -> Result<(), IndexError> {
    let mut by_source: HashMap<&str, Vec<&StreamState>> = HashMap::new();
    for s in streams.values() {
        by_source.entry(s.source.as_str()).or_default().push(s);
    }
    for source in indexed_sources(searcher, f)? {
        for kind in [AggKind::Hashtag, AggKind::LogClass, AggKind::LogTemplate] {
            let q = bucket_query(f, Some(kind), Some(&source), None, None);
            if searcher.search(&q, &Count)? > 0 {
                counts.note_indexed_source(kind, &source);
            }
        }
        let floor = match by_source.get(source.as_str()) {
            Some(ss) => counts.floor_of(ss.iter().copied()).unwrap_or(Millis::MIN),
            None => Millis::MAX,
        };
        let older = bucket_query(f, None, Some(&source), Some((Millis::MIN, floor)), None);
        let newest_cold = searcher
            .search(
                &older,
                &TopDocs::with_limit(1).order_by_fast_field::<i64>("ts", Order::Desc),
            )?
            .first()
            .and_then(|(t, _)| *t);
        counts.set_floor(&source, floor, newest_cold);
        if floor == Millis::MAX {
            continue;
        }
        let held = bucket_query(f, None, Some(&source), Some((floor, Millis::MAX)), None);
        for addr in searcher.search(&held, &DocSetCollector)? {
            if let Some(d) = read_bucket_doc(searcher, f, addr)? {
                if d.delta {
                    counts.load_delta(d.key, d.count);
                } else {
                    counts.load_absolute(d.key, d.count);
                }
            }
        }
    }
    Ok(())
}

/// Every source name the index knows (events, dead letters and counters).
fn indexed_sources(searcher: &tantivy::Searcher, f: Fields) -> Result<Vec<String>, IndexError> {
    let mut out = HashSet::new();
    for seg in searcher.segment_readers() {
        let inv = seg.inverted_index(f.source)?;
        let mut terms = inv.terms().stream().map_err(tantivy::TantivyError::from)?;
        while terms.advance() {
            if let Ok(s) = std::str::from_utf8(terms.key()) {
                out.insert(s.to_string());
            }
        }
    }
    Ok(out.into_iter().collect())
}

/// Counter documents (absolute and delta) of `kind`, `source`, buckets in
/// `span`, and `keys` when given.
fn bucket_query(
    f: Fields,
    kind: Option<AggKind>,
    source: Option<&str>,
    span: Option<(Millis, Millis)>,
    keys: Option<&[&String]>,
) -> BooleanQuery {
    let term = |field, v: &str| -> Box<dyn Query> {
        Box::new(TermQuery::new(
            Term::from_field_text(field, v),
            IndexRecordOption::Basic,
        ))
    };
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(
        Occur::Must,
        Box::new(BooleanQuery::new(vec![
            (Occur::Should, term(f.doc_type, "bucket")),
            (Occur::Should, term(f.doc_type, "bucket_delta")),
        ])),
    )];
    if let Some(k) = kind {
        clauses.push((Occur::Must, term(f.kind, k.as_str())));
    }
    if let Some(s) = source {
        clauses.push((Occur::Must, term(f.source, s)));
    }
    if let Some((from, to)) = span {
        let lo = Bound::Included(Term::from_field_i64(f.ts, from));
        let hi = if to == Millis::MAX {
            Bound::Unbounded
        } else {
            Bound::Excluded(Term::from_field_i64(f.ts, to))
        };
        clauses.push((Occur::Must, Box::new(RangeQuery::new(lo, hi))));
    }
    if let Some(keys) = keys {
        let any: Vec<(Occur, Box<dyn Query>)> = keys
            .iter()
            .map(|k| (Occur::Should, term(f.key, k)))
            .collect();
        clauses.push((Occur::Must, Box::new(BooleanQuery::new(any))));
    }
    BooleanQuery::new(clauses)
}

/// A counter document read back.
struct BucketDoc {
    key: BucketKey,
    count: u64,
    delta: bool,
}

fn read_bucket_doc(
    searcher: &tantivy::Searcher,
    f: Fields,
    addr: tantivy::DocAddress,
) -> Result<Option<BucketDoc>, IndexError> {
    let d: TantivyDocument = searcher.doc(addr)?;
    let text = |fl| d.get_first(fl).and_then(|v| v.as_str()).map(str::to_string);
    let (Some(doc_type), Some(kind), Some(source), Some(key)) =
        (text(f.doc_type), text(f.kind), text(f.source), text(f.key))
    else {
        return Ok(None);
    };
    let Some(kind) = AggKind::parse(&kind) else {
        return Ok(None);
    };
    let Some(bucket_start) = d.get_first(f.bucket).and_then(|v| v.as_i64()) else {
        return Ok(None);
    };
    let count = d.get_first(f.count).and_then(|v| v.as_u64()).unwrap_or(0);
    Ok(Some(BucketDoc {
        key: BucketKey {
            bucket_start,
            kind,
            source,
            key,
        },
        count,
        delta: doc_type == "bucket_delta",
    }))
}

/// Most keys one baseline query names; more are read as a scan of the span.
const MAX_KEY_TERMS: usize = 1024;

fn bucket_id(k: &BucketKey) -> String {
    format!(
        "bucket:{}:{}:{}:{}",
        k.kind.as_str(),
        k.source,
        k.key,
        k.bucket_start
    )
}

impl Inner {
    fn event_doc(&self, e: &Event) -> TantivyDocument {
        let f = self.f;
        let mut d = TantivyDocument::default();
        d.add_text(f.id, e.id());
        d.add_text(f.source, e.source());
        d.add_i64(f.ts, e.ts());
        match e {
            Event::Log(l) => {
                d.add_text(f.doc_type, "log");
                d.add_text(f.text, &l.message);
                d.add_text(f.class, &l.class);
                // A log event's `key` is its log_template key (`&template_id=`).
                if let Some(t) = &l.template_id {
                    d.add_text(f.key, t);
                }
            }
            Event::Post(p) => {
                d.add_text(f.doc_type, "post");
                d.add_text(f.text, &p.text);
                for h in &p.hashtags {
                    d.add_text(f.tags, h);
                }
            }
        }
        d.add_text(f.body, serde_json::to_string(e).unwrap_or_default());
        d
    }

    fn dead_letter_doc(&self, dl: &DeadLetter) -> TantivyDocument {
        let f = self.f;
        let mut d = TantivyDocument::default();
        d.add_text(f.id, &dl.id);
        d.add_text(f.doc_type, "deadletter");
        d.add_text(f.source, &dl.source);
        d.add_i64(f.ts, dl.ts);
        d.add_text(f.text, &dl.raw);
        d.add_text(f.class, &dl.reason);
        let mut body = serde_json::to_value(dl).unwrap_or_default();
        body["type"] = "deadletter".into();
        d.add_text(f.body, body.to_string());
        d
    }

    fn apply(&self, batch: Batch) -> Result<(), IndexError> {
        let f = self.f;
        let writer = self.writer.lock().map_err(lock_err)?;
        let mut docs = 0usize;
        for e in &batch.events {
            writer.delete_term(Term::from_field_text(f.id, e.id()));
            writer.add_document(self.event_doc(e))?;
            docs += 1;
        }
        for dl in &batch.dead_letters {
            writer.delete_term(Term::from_field_text(f.id, &dl.id));
            writer.add_document(self.dead_letter_doc(dl))?;
            docs += 1;
        }
        drop(writer);
        let mut st = self.state.write().map_err(lock_err)?;
        for (k, n) in batch.counts {
            st.counts.add(&k, n);
        }
        for (id, s) in batch.streams {
            st.pending_positions.insert(
                id.clone(),
                Position {
                    source: s.source.clone(),
                    stream: id.clone(),
                    end: s.applied_end,
                    line_no: s.line_no,
                },
            );
            let mut s = s;
            match &s.templates {
                Some(ts) => {
                    for t in ts {
                        st.template_texts.insert(t.id.clone(), t.text());
                    }
                }
                // Unchanged since the last state: keep what is held.
                None => s.templates = st.streams.get(&id).and_then(|o| o.templates.clone()),
            }
            st.streams.insert(id, s);
        }
        for id in batch.retired {
            st.streams.remove(&id);
        }
        for o in batch.offsets {
            st.offsets.insert((o.topic, o.partition), o.next);
            st.offsets_dirty = true;
        }
        st.pending_docs += docs;
        metrics().index_pending.set(st.pending_docs as i64);
        Ok(())
    }

    fn commit(&self) -> Result<Vec<Position>, IndexError> {
        let f = self.f;
        let timer = metrics()
            .index_commit_seconds
            .with_label_values(&["embedded"])
            .start_timer();
        let mut writer = self.writer.lock().map_err(lock_err)?;
        let (payload, positions, snapshot) = {
            let mut st = self.state.write().map_err(lock_err)?;
            let (absolute, deltas) = st.counts.take_writes();
            let doc = |id: &str, doc_type: &str, k: &BucketKey, n: u64| {
                let mut d = TantivyDocument::default();
                d.add_text(f.id, id);
                d.add_text(f.doc_type, doc_type);
                d.add_text(f.kind, k.kind.as_str());
                d.add_text(f.source, &k.source);
                d.add_text(f.key, &k.key);
                d.add_i64(f.bucket, k.bucket_start);
                d.add_i64(f.ts, k.bucket_start);
                d.add_u64(f.count, n);
                d
            };
            for (k, n) in &absolute {
                let id = bucket_id(k);
                writer.delete_term(Term::from_field_text(f.id, &id));
                writer.add_document(doc(&id, "bucket", k, *n))?;
            }
            for (k, n) in &deltas {
                st.next_delta += 1;
                let id = format!("{}:d{}", bucket_id(k), st.next_delta);
                writer.add_document(doc(&id, "bucket_delta", k, *n))?;
            }
            let payload = if st.offsets.is_empty() {
                serde_json::to_string(&st.streams)
            } else {
                serde_json::to_string(&Payload::WithOffsets {
                    farol_payload: 2,
                    streams: st.streams.clone(),
                    input_offsets: st
                        .offsets
                        .iter()
                        .map(|((topic, partition), next)| InputOffset {
                            topic: topic.clone(),
                            partition: *partition,
                            next: *next,
                        })
                        .collect(),
                })
            }
            .map_err(|e| IndexError::Corrupt(e.to_string()))?;
            st.offsets_dirty = false;
            let offsets = st.offsets.clone();
            let positions: Vec<Position> = st.pending_positions.drain().map(|(_, p)| p).collect();
            st.pending_docs = 0;
            (payload, positions, (st.streams.clone(), offsets))
        };
        let mut prepared = writer.prepare_commit()?;
        prepared.set_payload(&payload);
        prepared.commit()?;
        drop(writer);
        self.reader.reload()?;
        if let Ok(mut st) = self.state.write() {
            // Committed and visible to the reloaded reader: buckets whose
            // windows have all closed may leave memory now.
            st.counts.evict(&snapshot.0);
            st.durable_streams = snapshot.0;
            st.durable_offsets = snapshot.1;
        }
        metrics().index_pending.set(0);
        metrics()
            .index_commits
            .with_label_values(&["embedded"])
            .inc();
        timer.observe_duration();
        Ok(positions)
    }

    fn trends(&self, q: &TrendsQuery) -> Result<Trends, IndexError> {
        let st = self.state.read().map_err(lock_err)?;
        let (window, span) = crate::trends::plan(&q.range, |window| {
            crate::trends::last_closed(
                st.streams.values(),
                |src| st.counts.has_source(q.kind, src),
                q.source.as_deref(),
                window,
            )
        });
        let mut approximate = None;
        let mut items = match span {
            Some((from, to)) => {
                let source = q.source.as_deref();
                let windowed = matches!(q.range, crate::query::TrendsRange::Window { .. });
                let totals = if windowed
                    && st.counts.holds(q.kind, source, from)
                    && st.counts.overflowed(q.kind, from, to)
                {
                    // A window beyond the key budget: the summaries answer.
                    let hot = st.counts.hot_totals(q.kind, source, from, to);
                    if hot.max_error > 0 {
                        approximate = Some(hot.max_error);
                    }
                    hot.totals
                } else {
                    self.exact_totals(&st, q.kind, source, (from, to), None)?
                };
                let keys = crate::trends::scored_keys(q, &totals);
                let baseline = if keys.is_empty() {
                    HashMap::new()
                } else {
                    let base = q.scoring.baseline_span((from, to));
                    self.exact_totals(&st, q.kind, source, base, Some(&keys))?
                };
                crate::trends::rank(q, &totals, &baseline)
            }
            None => vec![],
        };
        if q.kind == AggKind::LogTemplate {
            for i in &mut items {
                i.template = st.template_texts.get(&i.key).cloned();
            }
        }
        Ok(Trends {
            kind: q.kind.as_str(),
            window,
            from: span.map(|s| rfc3339(s.0)),
            to: span.map(|s| rfc3339(s.1)),
            items,
            approximate: approximate.is_some(),
            max_error: approximate,
        })
    }

    /// Exact totals per key over buckets starting in `[from, to)`: from
    /// memory alone when it holds the span exactly, else from the counter
    /// documents (skipping absolute ones memory holds newer values of)
    /// plus what memory holds exactly. `keys` restricts the keys.
    fn exact_totals(
        &self,
        st: &State,
        kind: AggKind,
        source: Option<&str>,
        (from, to): (Millis, Millis),
        keys: Option<&[String]>,
    ) -> Result<HashMap<String, u64>, IndexError> {
        let key_set: Option<HashSet<String>> = keys.map(|k| k.iter().cloned().collect());
        if st.counts.holds(kind, source, from) && !st.counts.overflowed(kind, from, to) {
            let mut out = st.counts.hot_totals(kind, source, from, to).totals;
            if let Some(ks) = &key_set {
                out.retain(|k, _| ks.contains(k));
            }
            return Ok(out);
        }
        let mut out = HashMap::new();
        if from >= to {
            return Ok(out);
        }
        let searcher = self.reader.searcher();
        let named: Option<Vec<&String>> = keys
            .filter(|k| k.len() <= MAX_KEY_TERMS)
            .map(|k| k.iter().collect());
        let q = bucket_query(
            self.f,
            Some(kind),
            source,
            Some((from, to)),
            named.as_deref(),
        );
        for addr in searcher.search(&q, &DocSetCollector)? {
            let Some(d) = read_bucket_doc(&searcher, self.f, addr)? else {
                continue;
            };
            if key_set.as_ref().is_some_and(|ks| !ks.contains(&d.key.key)) {
                continue;
            }
            if !d.delta
                && st
                    .counts
                    .holds_exactly(kind, d.key.bucket_start, &d.key.source, &d.key.key)
            {
                continue;
            }
            *out.entry(d.key.key).or_insert(0) += d.count;
        }
        st.counts
            .add_exact(kind, source, (from, to), key_set.as_ref(), &mut out);
        out.retain(|_, n| *n > 0);
        Ok(out)
    }

    fn search(&self, q: &SearchQuery) -> Result<SearchHits, IndexError> {
        let f = self.f;
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        if !q.q.trim().is_empty() {
            clauses.push((Occur::Must, self.user_query(&q.q)?));
        } else {
            clauses.push((Occur::Must, Box::new(AllQuery)));
        }
        let term = |t: &str| -> Box<dyn Query> {
            Box::new(TermQuery::new(
                Term::from_field_text(f.doc_type, t),
                IndexRecordOption::Basic,
            ))
        };
        match q.kind.as_deref() {
            Some(k) => clauses.push((Occur::Must, term(k))),
            None => clauses.push((
                Occur::Must,
                Box::new(BooleanQuery::new(vec![
                    (Occur::Should, term("log")),
                    (Occur::Should, term("post")),
                ])),
            )),
        }
        if let Some(t) = &q.template_id {
            clauses.push((
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_field_text(f.key, t),
                    IndexRecordOption::Basic,
                )),
            ));
        }
        if q.from.is_some() || q.to.is_some() {
            let lo = q.from.map_or(Bound::Unbounded, |v| {
                Bound::Included(Term::from_field_i64(f.ts, v))
            });
            let hi = q.to.map_or(Bound::Unbounded, |v| {
                Bound::Excluded(Term::from_field_i64(f.ts, v))
            });
            clauses.push((Occur::Must, Box::new(RangeQuery::new(lo, hi))));
        }
        let query = BooleanQuery::new(clauses);
        let searcher = self.reader.searcher();
        let top = TopDocs::with_limit(q.limit.max(1)).order_by_fast_field::<i64>("ts", Order::Desc);
        let (total, top_hits) = searcher.search(&query, &(Count, top))?;
        let mut out = SearchHits {
            total: total as u64,
            ..SearchHits::default()
        };
        let mut bytes = 0usize;
        for (_, addr) in top_hits {
            let d: TantivyDocument = searcher.doc(addr)?;
            if let Some(body) = d.get_first(f.body).and_then(|v| v.as_str()) {
                bytes += body.len();
                if bytes > MAX_SEARCH_BYTES {
                    out.truncated = true;
                    break;
                }
                if let Ok(v) = serde_json::from_str(body) {
                    out.hits.push(v);
                }
            }
        }
        Ok(out)
    }

    /// The user's query text as a tantivy query: bounded before parsing,
    /// parsed strictly (a syntax error is the user's to fix, not something
    /// to guess around), and limited to the fields worth searching.
    fn user_query(&self, text: &str) -> Result<Box<dyn Query>, IndexError> {
        check_query_text(text).map_err(IndexError::Query)?;
        let ast = tantivy::query_grammar::parse_query(text).map_err(|_| {
            IndexError::Query(
                "is not a valid query (check quotes, parentheses and ranges; \\ escapes a special character)"
                    .into(),
            )
        })?;
        check_fields(&ast).map_err(IndexError::Query)?;
        self.parser
            .build_query_from_user_input_ast(ast)
            .map_err(|e| IndexError::Query(e.to_string()))
    }
}

/// Fields a search text may name (`class:ERROR`); the rest of the schema
/// is internal.
const SEARCHABLE: &[&str] = &["text", "tags", "class", "source"];

fn check_fields(ast: &UserInputAst) -> Result<(), String> {
    let field_ok = |name: &Option<String>| match name {
        Some(n) if !SEARCHABLE.contains(&n.as_str()) => Err(format!(
            "unknown field '{}' (searchable: {}; put text containing ':' in double quotes)",
            crate::params::echo(n),
            SEARCHABLE.join(", ")
        )),
        _ => Ok(()),
    };
    match ast {
        UserInputAst::Clause(cs) => cs.iter().try_for_each(|(_, c)| check_fields(c)),
        UserInputAst::Boost(inner, _) => check_fields(inner),
        UserInputAst::Leaf(leaf) => match leaf.as_ref() {
            UserInputLeaf::Literal(l) => field_ok(&l.field_name),
            UserInputLeaf::All => Ok(()),
            UserInputLeaf::Range { field, .. } | UserInputLeaf::Set { field, .. } => {
                field_ok(field)
            }
            UserInputLeaf::Exists { field } => Err(format!(
                "'{}:*' (field exists) is not supported",
                crate::params::echo(field)
            )),
            UserInputLeaf::Regex { .. } => Err("regular expressions are not supported".into()),
        },
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, IndexError> + Send + 'static,
) -> Result<T, IndexError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| IndexError::Task(e.to_string()))?
}

#[async_trait]
impl Index for EmbeddedIndex {
    async fn apply(&self, batch: Batch) -> Result<(), IndexError> {
        let inner = self.inner.clone();
        blocking(move || inner.apply(batch)).await
    }

    async fn commit(&self) -> Result<Vec<Position>, IndexError> {
        let inner = self.inner.clone();
        blocking(move || inner.commit()).await
    }

    fn has_pending(&self) -> bool {
        self.inner
            .state
            .read()
            .map(|s| {
                !s.pending_positions.is_empty()
                    || s.counts.has_writes()
                    || s.pending_docs > 0
                    || s.offsets_dirty
            })
            .unwrap_or(false)
    }

    fn input_offsets(&self) -> HashMap<(String, i32), i64> {
        self.inner
            .state
            .read()
            .map(|s| s.durable_offsets.clone())
            .unwrap_or_default()
    }

    fn stream_states(&self) -> HashMap<String, StreamState> {
        self.inner
            .state
            .read()
            .map(|s| s.durable_streams.clone())
            .unwrap_or_default()
    }

    async fn trends(&self, q: TrendsQuery) -> Result<Trends, IndexError> {
        self.inner.trends(&q)
    }

    async fn search(&self, q: SearchQuery) -> Result<SearchHits, IndexError> {
        let inner = self.inner.clone();
        blocking(move || inner.search(&q)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::TrendsRange;
    use farol_common::model::{LogEvent, Post};
    use farol_common::time::{Millis, Window};

    fn log(id: &str, ts: Millis, msg: &str) -> Event {
        Event::Log(LogEvent {
            id: id.into(),
            source: "web".into(),
            file: "f".into(),
            line_no: 1,
            offset: 0,
            ts,
            ts_from_line: true,
            class: "ERROR".into(),
            level: Some("error".into()),
            message: msg.into(),
            fields: Default::default(),
            truncated: false,
            template: None,
            template_id: None,
        })
    }

    fn key(b: Millis, k: &str) -> BucketKey {
        BucketKey {
            bucket_start: b,
            kind: AggKind::LogClass,
            source: "web".into(),
            key: k.into(),
        }
    }

    fn state(end: u64, wm: Millis) -> (String, StreamState) {
        (
            "web:1".into(),
            StreamState {
                source: "web".into(),
                applied_end: end,
                line_no: end,
                max_ts: Some(wm + 30_000),
                last_ts: Some(wm),
                watermark: Some(wm),
                wall_ms: None,
                templates: None,
            },
        )
    }

    #[tokio::test]
    async fn input_offsets_are_committed_with_the_state_they_reflect() {
        let d = tempfile::tempdir().unwrap();
        let off = |p: i32, next: i64| InputOffset {
            topic: "farol.logs".into(),
            partition: p,
            next,
        };
        {
            let ix = EmbeddedIndex::open(d.path(), 15).unwrap();
            ix.apply(Batch {
                streams: vec![state(20, 70_000)],
                offsets: vec![off(0, 7), off(3, 2)],
                ..Batch::default()
            })
            .await
            .unwrap();
            assert!(ix.input_offsets().is_empty(), "not durable before commit");
            ix.commit().await.unwrap();
            // Staged but never committed: must not survive.
            ix.apply(Batch {
                offsets: vec![off(0, 9)],
                ..Batch::default()
            })
            .await
            .unwrap();
            assert!(ix.has_pending(), "a moved offset alone is worth a commit");
        }
        let ix = EmbeddedIndex::open(d.path(), 15).unwrap();
        let want: HashMap<(String, i32), i64> = [
            (("farol.logs".to_string(), 0), 7),
            (("farol.logs".to_string(), 3), 2),
        ]
        .into_iter()
        .collect();
        assert_eq!(ix.input_offsets(), want);
        assert_eq!(ix.stream_states()["web:1"].applied_end, 20);
    }

    #[tokio::test]
    async fn counts_and_positions_survive_reopen_and_rewrites_are_idempotent() {
        let d = tempfile::tempdir().unwrap();
        {
            let ix = EmbeddedIndex::open(d.path(), 15).unwrap();
            ix.apply(Batch {
                events: vec![log("a", 5_000, "disk full"), log("b", 15_000, "disk ok")],
                counts: vec![(key(0, "ERROR"), 1), (key(10_000, "ERROR"), 1)],
                dead_letters: vec![],
                streams: vec![state(20, 70_000)],
                retired: vec![],
                offsets: vec![],
                records: vec![],
            })
            .await
            .unwrap();
            let acked = ix.commit().await.unwrap();
            assert_eq!(acked[0].end, 20);
            // The same event again replaces, never duplicates.
            ix.apply(Batch {
                events: vec![log("a", 5_000, "disk full")],
                counts: vec![(key(0, "ERROR"), 2)],
                dead_letters: vec![],
                streams: vec![state(30, 80_000)],
                retired: vec![],
                offsets: vec![],
                records: vec![],
            })
            .await
            .unwrap();
            ix.commit().await.unwrap();
        }
        let ix = EmbeddedIndex::open(d.path(), 15).unwrap();
        assert_eq!(ix.stream_states()["web:1"].applied_end, 30);
        assert!(ix.input_offsets().is_empty());
        let t = ix
            .trends(TrendsQuery {
                kind: AggKind::LogClass,
                source: Some("web".into()),
                limit: 10,
                range: TrendsRange::Between {
                    from: 0,
                    to: 20_000,
                },
                sort: Default::default(),
                scoring: Default::default(),
            })
            .await
            .unwrap();
        assert_eq!(t.items[0].count, 4);
        let hits = ix
            .search(SearchQuery {
                q: "disk".into(),
                kind: Some("log".into()),
                from: None,
                to: None,
                limit: 10,
                template_id: None,
            })
            .await
            .unwrap()
            .hits;
        assert_eq!(hits.len(), 2, "{hits:?}");
        assert_eq!(hits[0]["id"], "b", "newest first");
        let w = ix
            .trends(TrendsQuery {
                kind: AggKind::LogClass,
                source: None,
                limit: 10,
                range: TrendsRange::Window {
                    window: Window {
                        name: "1m".into(),
                        size: 60_000,
                        slide: 10_000,
                    },
                    at: None,
                },
                sort: Default::default(),
                scoring: Default::default(),
            })
            .await
            .unwrap();
        assert_eq!(w.from.as_deref(), Some("1970-01-01T00:00:20Z"));
        assert_eq!(w.to.as_deref(), Some("1970-01-01T00:01:20Z"));
        assert!(w.items.is_empty(), "no counts in the last closed window");
        let window = Window {
            name: "1m".into(),
            size: 60_000,
            slide: 10_000,
        };
        let at = ix
            .trends(TrendsQuery {
                kind: AggKind::LogClass,
                source: None,
                limit: 10,
                range: TrendsRange::Window {
                    window,
                    at: Some(5_000),
                },
                sort: Default::default(),
                scoring: Default::default(),
            })
            .await
            .unwrap();
        assert_eq!(at.to.as_deref(), Some("1970-01-01T00:00:10Z"));
        assert_eq!(at.items[0].count, 3);
    }

    fn hashtag(b: Millis, k: &str) -> BucketKey {
        BucketKey {
            bucket_start: b,
            kind: AggKind::Hashtag,
            source: "web".into(),
            key: k.into(),
        }
    }

    fn between(from: Millis, to: Millis) -> TrendsQuery {
        TrendsQuery {
            kind: AggKind::Hashtag,
            source: None,
            limit: 100,
            range: TrendsRange::Between { from, to },
            sort: Default::default(),
            scoring: Default::default(),
        }
    }

    fn counts_of(t: &Trends) -> HashMap<String, u64> {
        t.items.iter().map(|i| (i.key.clone(), i.count)).collect()
    }

    /// Old buckets leave memory once committed and closed; ranges over them
    /// are summed from the index, exactly, also after late counts, beyond the
    /// key budget and after a restart (which loads only recent buckets).
    #[tokio::test]
    async fn old_buckets_leave_memory_and_stay_exact_in_the_index() {
        let d = tempfile::tempdir().unwrap();
        let limits = CountLimits {
            key_budget: 2,
            heavy_hitters: 2,
            retain_ms: 60_000,
            bucket_ms: 10_000,
        };
        let mut counts: Vec<(BucketKey, u64)> =
            (0..19).map(|b| (hashtag(b * 10_000, "x"), 1)).collect();
        // Bucket 190 s: two keys within the budget, three beyond it.
        for (k, n) in [("a", 7), ("b", 6), ("c", 5), ("d", 1), ("e", 1)] {
            counts.push((hashtag(190_000, k), n));
        }
        let truth: HashMap<String, u64> =
            [("x", 19), ("a", 7), ("b", 6), ("c", 5), ("d", 1), ("e", 1)]
                .into_iter()
                .map(|(k, n)| (k.to_string(), n))
                .collect();
        let (sid, mut s) = state(1, 200_000);
        s.max_ts = Some(205_000);
        {
            let ix = EmbeddedIndex::open_with(d.path(), 15, limits).unwrap();
            ix.apply(Batch {
                counts,
                streams: vec![(sid.clone(), s.clone())],
                ..Batch::default()
            })
            .await
            .unwrap();
            assert_eq!(ix.counters_held(), (21, 2, 20));
            ix.commit().await.unwrap();
            // Floor: align(200 s - 60 s) - 10 s = 130 s; x's buckets 0..130 s left.
            assert_eq!(ix.counters_held(), (21 - 13, 2, 7));
            assert_eq!(
                counts_of(&ix.trends(between(0, 200_000)).await.unwrap()),
                truth
            );
            // A late count for bucket 0: visible at once, and once committed.
            ix.apply(Batch {
                counts: vec![(hashtag(0, "x"), 3)],
                ..Batch::default()
            })
            .await
            .unwrap();
            let t = ix.trends(between(0, 10_000)).await.unwrap();
            assert_eq!(counts_of(&t)["x"], 4);
            ix.commit().await.unwrap();
            let t = ix.trends(between(0, 10_000)).await.unwrap();
            assert_eq!(counts_of(&t)["x"], 4);
            // The 1m window holding bucket 190 s is beyond the budget.
            let w = ix
                .trends(TrendsQuery {
                    range: TrendsRange::Window {
                        window: Window {
                            name: "1m".into(),
                            size: 60_000,
                            slide: 10_000,
                        },
                        at: Some(195_000),
                    },
                    ..between(0, 0)
                })
                .await
                .unwrap();
            assert!(w.approximate);
            // Summary of 2: c (5), then d (1), then e replaces d: e ≈ 2.
            assert_eq!(w.max_error, Some(2));
            let got = counts_of(&w);
            assert_eq!((got["x"], got["a"], got["b"]), (5, 7, 6), "exact ones");
            for (k, n) in &got {
                assert!(n.abs_diff(truth[k]) <= 2 || k == "x", "{k}: {n}");
            }
        }
        let mut truth = truth;
        *truth.get_mut("x").unwrap() += 3;
        let ix = EmbeddedIndex::open_with(d.path(), 15, limits).unwrap();
        // Only buckets from the floor on come back (a, b exact; c, e summarised).
        let (exact, summarised, _) = ix.counters_held();
        assert_eq!(exact, 6 + 2);
        assert_eq!(summarised, 2, "c, d, e's delta documents in a summary of 2");
        assert_eq!(
            counts_of(&ix.trends(between(0, 200_000)).await.unwrap()),
            truth
        );
        let t = ix.trends(between(130_000, 200_000)).await.unwrap();
        assert_eq!(counts_of(&t)["x"], 6);
    }

    #[tokio::test]
    async fn search_filters_posts_by_time() {
        let d = tempfile::tempdir().unwrap();
        let ix = EmbeddedIndex::open(d.path(), 15).unwrap();
        let post = |id: &str, t: Millis| {
            Event::Post(Post {
                id: id.into(),
                source: "p".into(),
                platform: "jsonl".into(),
                created_at: t,
                author: None,
                text: "hello rust".into(),
                lang: None,
                hashtags: vec!["rust".into()],
                url: None,
            })
        };
        ix.apply(Batch {
            events: vec![post("1", 1_000), post("2", 2_000), post("3", 3_000)],
            ..Batch::default()
        })
        .await
        .unwrap();
        ix.commit().await.unwrap();
        let hits = ix
            .search(SearchQuery {
                q: "rust".into(),
                kind: Some("post".into()),
                from: Some(2_000),
                to: Some(3_000),
                limit: 10,
                template_id: None,
            })
            .await
            .unwrap()
            .hits;
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0]["id"], "2");
    }

    fn search_text(q: &str, limit: usize) -> SearchQuery {
        SearchQuery {
            q: q.into(),
            kind: None,
            from: None,
            to: None,
            limit,
            template_id: None,
        }
    }

    #[tokio::test]
    async fn total_counts_matches_not_returned_hits() {
        let d = tempfile::tempdir().unwrap();
        let ix = EmbeddedIndex::open(d.path(), 15).unwrap();
        let events = (0..25)
            .map(|i| {
                log(
                    &format!("e{i}"),
                    i * 1000,
                    if i % 5 == 0 { "disk full" } else { "disk ok" },
                )
            })
            .collect();
        ix.apply(Batch {
            events,
            ..Batch::default()
        })
        .await
        .unwrap();
        ix.commit().await.unwrap();
        let r = ix.search(search_text("disk", 3)).await.unwrap();
        assert_eq!((r.total, r.hits.len(), r.truncated), (25, 3, false));
        let r = ix.search(search_text("full", 100)).await.unwrap();
        assert_eq!((r.total, r.hits.len()), (5, 5));
        let r = ix
            .search(search_text("class:ERROR AND full", 100))
            .await
            .unwrap();
        assert_eq!(r.total, 5);
    }

    #[tokio::test]
    async fn answers_stop_at_the_byte_bound() {
        let d = tempfile::tempdir().unwrap();
        let ix = EmbeddedIndex::open(d.path(), 15).unwrap();
        // Each body is over 64 KiB, so the bound is reached long before the limit.
        let big = "y".repeat(64 * 1024);
        let n = MAX_SEARCH_BYTES / (64 * 1024) + 10;
        let events = (0..n as i64)
            .map(|i| log(&format!("b{i}"), i, &format!("big {big}")))
            .collect();
        ix.apply(Batch {
            events,
            ..Batch::default()
        })
        .await
        .unwrap();
        ix.commit().await.unwrap();
        let r = ix.search(search_text("big", 10_000)).await.unwrap();
        assert_eq!(r.total, n as u64);
        assert!(r.truncated);
        let bytes: usize = r.hits.iter().map(|h| h.to_string().len()).sum();
        assert!(bytes <= MAX_SEARCH_BYTES, "{bytes}");
        assert!(r.hits.len() < n && !r.hits.is_empty());
    }

    #[tokio::test]
    async fn invalid_query_texts_are_query_errors() {
        let d = tempfile::tempdir().unwrap();
        let ix = EmbeddedIndex::open(d.path(), 15).unwrap();
        for q in [
            "text:*",
            "source:*",
            "nosuchfield:foo",
            "body:foo",
            "doc_type:log",
            "text:[a TO",
            "\"x",
            "(a",
            "a)",
            &"(".repeat(750),
            &format!("{}a{}", "(".repeat(17), ")".repeat(17)),
            &"x".repeat(2000),
        ] {
            match ix.search(search_text(q, 10)).await {
                Err(IndexError::Query(m)) => {
                    assert!(
                        !m.contains("doc_type") || q.contains("doc_type"),
                        "{q}: {m}"
                    );
                    assert!(!m.contains("body") || q.contains("body"), "{q}: {m}");
                }
                other => panic!("{q}: {other:?}"),
            }
        }
        for q in [
            "a AND b",
            "\"a b\"",
            "tags:rust",
            "class:ERROR OR text:x",
            "a -x",
            "*",
            "a*",
        ] {
            assert!(ix.search(search_text(q, 10)).await.is_ok(), "{q}");
        }
    }

    /// The deepest accepted queries parse and run on a thread with the stack
    /// of a Tokio worker (2 MiB), in this unoptimized build.
    #[test]
    fn deepest_accepted_queries_fit_a_worker_stack() {
        use crate::params::{MAX_QUERY_BYTES, MAX_QUERY_DEPTH};
        let d = tempfile::tempdir().unwrap();
        let ix = EmbeddedIndex::open(d.path(), 15).unwrap();
        let n = MAX_QUERY_DEPTH;
        let mut texts = vec![
            format!("{}a{}", "(".repeat(n), ")".repeat(n)),
            format!("{}a", "NOT ".repeat(n)),
            format!("{}a{}", "(NOT ".repeat(n / 2), ")".repeat(n / 2)),
            format!("{}a{}", "text:(".repeat(n), ")".repeat(n)),
            format!("{}a{}", "-(+(".repeat(n / 2), ")".repeat(n)),
        ];
        let filler = "a OR ".repeat(MAX_QUERY_BYTES);
        for t in texts.iter_mut() {
            let room = MAX_QUERY_BYTES - t.len();
            t.insert_str(0, &filler[..room - room % 5]);
        }
        texts.push("a ".repeat(MAX_QUERY_BYTES / 2));
        texts.push("\"a\"~1^2 ".repeat(MAX_QUERY_BYTES / 10));
        let inner = ix.inner.clone();
        std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            .spawn(move || {
                for t in texts {
                    assert!(t.len() <= MAX_QUERY_BYTES, "{}", t.len());
                    let r = inner.search(&search_text(&t, 10));
                    assert!(r.is_ok(), "{t}: {r:?}");
                }
            })
            .unwrap()
            .join()
            .unwrap();
    }
}
