//! Counter documents read back from the index: the counters memory holds
//! are loaded from them at start (only recent buckets, not the whole
//! history), and spans memory does not hold are summed from them.

use super::schema::Fields;
use crate::counts::Counts;
use crate::IndexError;
use farol_common::model::{AggKind, BucketKey, StreamState};
use farol_common::time::Millis;
use std::collections::{HashMap, HashSet};
use std::ops::Bound;
use tantivy::collector::{Count, TopDocs};
use tantivy::query::{BooleanQuery, EnableScoring, Occur, Query, RangeQuery, TermQuery};
use tantivy::schema::{IndexRecordOption, Value};
use tantivy::{DocSet, Order, TantivyDocument, Term, TERMINATED};

/// Loads the counters still held in memory: for each source with streams,
/// the buckets from its floor on ([`Counts::floor_of`]); the newest older
/// bucket is remembered so that spans reaching it are read from the index.
/// Sources without streams stay in the index only.
pub(super) fn load_counts(
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
        scan_counters(searcher, f, &held, |d| {
            if d.delta {
                counts.load_delta(d.key, d.count);
            } else {
                counts.load_absolute(d.key, d.count);
            }
        })?;
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
pub(super) fn bucket_query(
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
pub(super) struct BucketDoc {
    pub(super) key: BucketKey,
    pub(super) count: u64,
    pub(super) delta: bool,
}

/// The counter a stored document holds, `None` for any other document.
fn bucket_doc(f: Fields, d: &TantivyDocument) -> Option<BucketDoc> {
    let text = |fl| d.get_first(fl).and_then(|v| v.as_str());
    let (doc_type, kind, source, key) = (
        text(f.doc_type)?,
        text(f.kind)?,
        text(f.source)?,
        text(f.key)?,
    );
    let kind = AggKind::parse(kind)?;
    let bucket_start = d.get_first(f.bucket).and_then(|v| v.as_i64())?;
    let count = d.get_first(f.count).and_then(|v| v.as_u64()).unwrap_or(0);
    Some(BucketDoc {
        key: BucketKey {
            bucket_start,
            kind,
            source: source.to_string(),
            key: key.to_string(),
        },
        count,
        delta: doc_type == "bucket_delta",
    })
}

/// Calls `each` with every live counter document `query` matches, one
/// segment after the other in document order, holding one document at a
/// time (no set of all matches, no map of all keys).
pub(super) fn scan_counters(
    searcher: &tantivy::Searcher,
    f: Fields,
    query: &dyn Query,
    mut each: impl FnMut(BucketDoc),
) -> Result<(), IndexError> {
    let weight = query.weight(EnableScoring::disabled_from_searcher(searcher))?;
    for seg in searcher.segment_readers() {
        // Documents come in order: a small block cache reads each block once.
        let store = seg
            .get_store_reader(STORE_CACHE_BLOCKS)
            .map_err(tantivy::TantivyError::from)?;
        let alive = seg.alive_bitset();
        let mut docs = weight.scorer(seg, 1.0)?;
        let mut doc = docs.doc();
        while doc != TERMINATED {
            if alive.is_none_or(|a| a.is_alive(doc)) {
                let d: TantivyDocument = store.get(doc)?;
                if let Some(b) = bucket_doc(f, &d) {
                    each(b);
                }
            }
            doc = docs.advance();
        }
    }
    Ok(())
}

/// Decompressed store blocks a scan keeps per segment.
const STORE_CACHE_BLOCKS: usize = 4;

/// Most keys one baseline query names; more are read as a scan of the span.
pub(super) const MAX_KEY_TERMS: usize = 1024;
