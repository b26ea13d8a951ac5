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
//!
//! One concept per module: [`schema`] maps documents to tantivy fields,
//! [`counters`] reads counter documents back (loading the counters memory
//! holds at start, summing spans memory does not hold), [`state`] is what
//! memory holds between commits, [`plan`] answers `/trends` and [`search`]
//! answers `/search`.

mod counters;
mod plan;
mod schema;
mod search;
mod state;
#[cfg(test)]
mod tests;

use crate::counts::{CountLimits, Counts};
use crate::query::{SearchHits, SearchQuery, Trends, TrendsQuery};
use crate::{Index, IndexError};
use async_trait::async_trait;
use counters::load_counts;
use farol_common::metrics::metrics;
use farol_common::model::{Batch, BucketKey, Event, InputOffset, Position, StreamState};
use schema::{bucket_id, schema, Fields};
use state::{Payload, State};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;
use tantivy::query::QueryParser;
use tantivy::{IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

struct Inner {
    writer: Mutex<IndexWriter>,
    reader: IndexReader,
    parser: QueryParser,
    f: Fields,
    state: RwLock<State>,
    /// Keys the first pass of a top N over the index starts with and grows
    /// to ([`plan::CANDIDATES`], [`plan::MAX_CANDIDATES`]; smaller in tests).
    candidates: (AtomicUsize, AtomicUsize),
    /// When this index was opened, and milliseconds after that of the last
    /// [`Inner::release_free_memory`].
    opened: Instant,
    last_trim_ms: AtomicU64,
}

/// Segments with this many documents are not merged further (tantivy's
/// default is 10 M): a merge's memory grows with the documents it merges.
const MAX_DOCS_BEFORE_MERGE: usize = 100_000;
/// Bytes of stored documents compressed together (see `open_with`).
const DOCSTORE_BLOCK: usize = 64 * 1024;

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
        // Stored documents compressed in blocks of 64 KiB rather than
        // tantivy's 16 KiB: a quarter of the compression contexts made (a
        // profile showed them at 6 % of indexing); a `/search` hit reads
        // one block. LZ4, as Elasticsearch's default codec: zstd's block
        // compression and context set-up were 5 % of indexing with events.
        // An index keeps the settings it was created with (zstd indexes of
        // earlier versions are read and written as they are).
        let settings = tantivy::IndexSettings {
            docstore_blocksize: DOCSTORE_BLOCK,
            docstore_compression: tantivy::store::Compressor::Lz4,
            ..Default::default()
        };
        let index = tantivy::Index::builder()
            .schema(schema)
            .settings(settings)
            .open_or_create(mmap)?;
        let writer: IndexWriter = index.writer(writer_memory_mb.max(15) * 1024 * 1024)?;
        // Merges hold per-document state of every segment they merge, so
        // their size bounds their memory; larger segments stay as they are.
        let mut merges = tantivy::indexer::LogMergePolicy::default();
        merges.set_max_docs_before_merge(MAX_DOCS_BEFORE_MERGE);
        writer.set_merge_policy(Box::new(merges));
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
                candidates: (
                    AtomicUsize::new(plan::CANDIDATES),
                    AtomicUsize::new(plan::MAX_CANDIDATES),
                ),
                opened: Instant::now(),
                last_trim_ms: AtomicU64::new(0),
            }),
        })
    }
}

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

/// A document to write, and the id whose earlier copy it replaces.
pub(super) type Write = (Option<Term>, TantivyDocument);

impl Inner {
    /// Stages a batch: its counts and stream states become visible to
    /// `/trends` at once, its documents go to the writer, and the next
    /// commit makes all of it durable together.
    ///
    /// While a commit holds the writer (tantivy adds no document during
    /// one), the batch does not wait for it: its counts and states are
    /// staged for the commit after, and its documents wait in the state
    /// until that commit writes them first. Either way a batch's documents
    /// and its stream positions are taken by the same commit, under the
    /// state lock.
    fn apply(&self, batch: Batch) -> Result<(), IndexError> {
        let f = self.f;
        // Log events and dead letters are named by their stream position,
        // and a stream's records at or before its durable `applied_end` are
        // never applied again (the processor skips them, see the dedupe of
        // the sink): no earlier copy can exist, so none is deleted. A
        // delete costs a term lookup in every segment at each commit (a
        // profile of `farol bench` found 15 % of the time there). A post is
        // named by its platform id and may come again (overlapping polls,
        // two sources): it replaces its earlier copy.
        let mut writes: Vec<Write> =
            Vec::with_capacity(batch.events.len() + batch.dead_letters.len());
        for e in &batch.events {
            let replaces = matches!(e, Event::Post(_)).then(|| Term::from_field_text(f.id, e.id()));
            writes.push((replaces, self.event_doc(e)));
        }
        for dl in &batch.dead_letters {
            writes.push((None, self.dead_letter_doc(dl)));
        }
        let docs = writes.len();
        match self.writer.try_lock() {
            Ok(writer) => {
                for (replaces, doc) in writes {
                    if let Some(t) = replaces {
                        writer.delete_term(t);
                    }
                    writer.add_document(doc)?;
                }
                // The writer stays locked until the state holds the batch:
                // a commit takes both or neither.
                let mut st = self.state.write().map_err(lock_err)?;
                Self::stage(&mut st, batch, docs);
                drop(st);
                drop(writer);
            }
            Err(std::sync::TryLockError::WouldBlock) => {
                let mut st = self.state.write().map_err(lock_err)?;
                st.deferred.extend(writes);
                Self::stage(&mut st, batch, docs);
            }
            Err(std::sync::TryLockError::Poisoned(e)) => return Err(lock_err(e)),
        }
        Ok(())
    }

    /// Stages a batch's counts, stream states and offsets.
    fn stage(st: &mut State, batch: Batch, docs: usize) {
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
            // Documents of batches staged while the last commit ran.
            for (replaces, doc) in std::mem::take(&mut st.deferred) {
                if let Some(t) = replaces {
                    writer.delete_term(t);
                }
                writer.add_document(doc)?;
            }
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
            for (k, n, replaces) in &absolute {
                let id = bucket_id(k);
                if *replaces {
                    writer.delete_term(Term::from_field_text(f.id, &id));
                }
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
        {
            // The reader sees the commit and memory stops counting its
            // writes as uncommitted at the same moment (one lock), so a
            // reader's snapshot neither misses nor doubles them. The writer
            // stays locked until then: no other commit takes writes before
            // these are settled.
            let mut st = self.state.write().map_err(lock_err)?;
            self.reader.reload()?;
            st.counts.settle();
            // Buckets whose windows have all closed may leave memory now.
            st.counts.evict(&snapshot.0);
            st.durable_streams = snapshot.0;
            st.durable_offsets = snapshot.1;
        }
        drop(writer);
        self.release_free_memory();
        metrics().index_pending.set(0);
        metrics()
            .index_commits
            .with_label_values(&["embedded"])
            .inc();
        timer.observe_duration();
        Ok(positions)
    }
}

/// How often, at most, a commit hands freed memory back to the system.
const TRIM_EVERY_MS: u64 = 5_000;

impl Inner {
    /// Hands the memory the allocator holds free back to the system, at
    /// most every [`TRIM_EVERY_MS`]. Commits free a lot (tantivy's indexing
    /// buffers, merges, increments written): with glibc that memory stays
    /// in the process (measured: RSS about 200 MiB above the live heap
    /// after an hour of 10 M distinct keys, see BENCHMARKS.md).
    fn release_free_memory(&self) {
        let now = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        let last = self.last_trim_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) < TRIM_EVERY_MS {
            return;
        }
        self.last_trim_ms.store(now, Ordering::Relaxed);
        trim_allocator();
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim_allocator() {
    extern "C" {
        fn malloc_trim(pad: usize) -> std::os::raw::c_int;
    }
    // SAFETY: glibc's malloc_trim takes no pointers; it only returns free
    // pages of the allocator's arenas to the system.
    unsafe {
        malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim_allocator() {}

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

    fn applies_during_commit(&self) -> bool {
        true
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
        // A range read from the index can take a while: off the runtime.
        let inner = self.inner.clone();
        blocking(move || inner.trends(&q)).await
    }

    async fn search(&self, q: SearchQuery) -> Result<SearchHits, IndexError> {
        let inner = self.inner.clone();
        blocking(move || inner.search(&q)).await
    }
}
