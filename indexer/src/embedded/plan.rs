//! `/trends` on the embedded index: which span a question covers (planned
//! by [`crate::trends`]), then its totals, from memory when memory holds
//! them, else from the counter documents plus what memory holds beyond the
//! last commit.
//!
//! The state lock is held only to plan, to answer from memory, and to take
//! a snapshot (the index's searcher and the uncommitted increments, which
//! agree because a commit settles its writes and reloads the reader under
//! the same lock); the index is read without it, so commits are not held
//! up by a long range.
//!
//! Top N of a span read from the index never materialises a total per key:
//! a first pass feeds every counter document into a Space-Saving summary of
//! [`CANDIDATES`] keys (bound ε on any count), a second pass sums exactly the
//! candidates that can still reach the top N. When the N-th exact total is
//! above ε no other key can be in the top N, so the answer is exact; else
//! the summary grows (up to [`MAX_CANDIDATES`]) and, beyond that, the answer
//! says `approximate` with `max_error` ε (its counts are exact, a key it
//! misses counted at most ε).

use super::counters::{bucket_query, scan_counters, MAX_KEY_TERMS};
use super::state::State;
use super::{lock_err, Inner};
use crate::counts::HotTotals;
use crate::heavy::SpaceSaving;
use crate::query::{TrendSort, Trends, TrendsQuery, TrendsRange};
use crate::IndexError;
use farol_common::model::AggKind;
use farol_common::time::{rfc3339, Millis};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;

/// Keys the first pass of a top N over the index summarises.
pub(super) const CANDIDATES: usize = 16_384;
/// Most keys it grows to before answering approximately (a few tens of MiB).
pub(super) const MAX_CANDIDATES: usize = 262_144;

/// What a span is summed from when memory does not hold it exactly: the
/// index as of the last settled commit and what memory holds beyond it.
struct Snapshot {
    searcher: tantivy::Searcher,
    /// (bucket, key, increment), already of the asked kind and source.
    uncommitted: Vec<(Millis, String, u64)>,
}

impl Snapshot {
    fn take(
        inner: &Inner,
        st: &State,
        kind: AggKind,
        source: Option<&str>,
        span: (Millis, Millis),
    ) -> Self {
        Snapshot {
            searcher: inner.reader.searcher(),
            uncommitted: st.counts.uncommitted(kind, source, span),
        }
    }
}

/// Totals of the top candidates of a span read from the index.
struct IndexTop {
    /// Exact totals of the candidates that can reach the top N.
    totals: HashMap<String, u64>,
    /// The first pass's bound: a key not in `totals` counted at most this.
    bound: u64,
    /// True when no key outside `totals` can be in the answer.
    complete: bool,
}

impl Inner {
    pub(super) fn trends(&self, q: &TrendsQuery) -> Result<Trends, IndexError> {
        let source = q.source.as_deref();
        let top = match q.sort {
            TrendSort::Count => Some(q.limit),
            TrendSort::Score => None,
        };
        // Under the lock: the span, and its totals from memory or a snapshot.
        let (window, span, hot, snap) = {
            let st = self.state.read().map_err(lock_err)?;
            let (window, span) = crate::trends::plan(&q.range, |window| {
                crate::trends::last_closed(
                    st.streams.values(),
                    |src| st.counts.has_source(q.kind, src),
                    source,
                    window,
                )
            });
            let (hot, snap) = match span {
                None => (None, None),
                Some((from, to)) => {
                    let windowed = matches!(q.range, TrendsRange::Window { .. });
                    // Exact from memory, or (windows only) from the summaries
                    // of buckets beyond the key budget.
                    if st.counts.holds(q.kind, source, from)
                        && (windowed || !st.counts.overflowed(q.kind, from, to))
                    {
                        let h = st.counts.hot_totals(q.kind, source, (from, to), top, None);
                        (Some(h), None)
                    } else {
                        let s = Snapshot::take(self, &st, q.kind, source, (from, to));
                        (None, Some(s))
                    }
                }
            };
            (window, span, hot, snap)
        };
        let Some((from, to)) = span else {
            return Ok(Trends {
                kind: q.kind.as_str(),
                window,
                from: None,
                to: None,
                items: vec![],
                approximate: false,
                max_error: None,
            });
        };
        // The error bound of the answer, and whether it only applies when
        // the answer has room for keys the first pass may have missed.
        let (totals, mut max_error, unless_full) = match (hot, snap) {
            (Some(HotTotals { totals, max_error }), _) => (totals, max_error, false),
            (None, Some(snap)) => {
                let t = self.index_top(&snap, q, (from, to))?;
                match (q.sort, t.complete) {
                    (_, false) => (t.totals, t.bound, false),
                    (TrendSort::Count, true) => (t.totals, 0, false),
                    (TrendSort::Score, true) => (t.totals, t.bound, true),
                }
            }
            (None, None) => (HashMap::new(), 0, false),
        };
        let keys = crate::trends::scored_keys(q, &totals);
        let baseline = if keys.is_empty() {
            HashMap::new()
        } else {
            let keys: HashSet<String> = keys.into_iter().collect();
            self.totals_of(q.kind, source, q.scoring.baseline_span((from, to)), &keys)?
        };
        let mut items = crate::trends::rank(q, &totals, &baseline);
        if unless_full && items.len() == q.limit && items.iter().all(|i| i.score > 0.0) {
            // By score, keys the first pass may have missed (counted below
            // the minimum count) score 0: a full answer of positive scores
            // has no room for them.
            max_error = 0;
        }
        if q.kind == AggKind::LogTemplate {
            let st = self.state.read().map_err(lock_err)?;
            for i in &mut items {
                i.template = st.template_texts.get(&i.key).cloned();
            }
        }
        Ok(Trends {
            kind: q.kind.as_str(),
            window,
            from: Some(rfc3339(from)),
            to: Some(rfc3339(to)),
            items,
            approximate: max_error > 0,
            max_error: (max_error > 0).then_some(max_error),
        })
    }

    /// Exact totals of `keys` over `span`: from memory when it holds the
    /// span exactly, else from a snapshot read outside the lock.
    fn totals_of(
        &self,
        kind: AggKind,
        source: Option<&str>,
        span: (Millis, Millis),
        keys: &HashSet<String>,
    ) -> Result<HashMap<String, u64>, IndexError> {
        let snap = {
            let st = self.state.read().map_err(lock_err)?;
            if st.counts.holds(kind, source, span.0) && !st.counts.overflowed(kind, span.0, span.1)
            {
                return Ok(st
                    .counts
                    .hot_totals(kind, source, span, None, Some(keys))
                    .totals);
            }
            Snapshot::take(self, &st, kind, source, span)
        };
        self.index_sum(&snap, kind, source, span, Some(keys))
    }

    /// Exact totals over `span` from a snapshot, of `keys` only when given
    /// (named in the query when few, else filtered during the scan).
    fn index_sum(
        &self,
        snap: &Snapshot,
        kind: AggKind,
        source: Option<&str>,
        (from, to): (Millis, Millis),
        keys: Option<&HashSet<String>>,
    ) -> Result<HashMap<String, u64>, IndexError> {
        let mut out: HashMap<String, u64> = HashMap::new();
        if from >= to {
            return Ok(out);
        }
        let named: Option<Vec<&String>> = keys
            .filter(|k| k.len() <= MAX_KEY_TERMS)
            .map(|k| k.iter().collect());
        let query = bucket_query(
            self.f,
            Some(kind),
            source,
            Some((from, to)),
            named.as_deref(),
        );
        let wanted = |k: &str| keys.is_none_or(|ks| ks.contains(k));
        scan_counters(&snap.searcher, self.f, &query, |d| {
            if wanted(&d.key.key) {
                let n = out.entry(d.key.key).or_insert(0);
                *n = n.saturating_add(d.count);
            }
        })?;
        for (b, key, n) in &snap.uncommitted {
            if (from..to).contains(b) && wanted(key) {
                let t = out.entry(key.clone()).or_insert(0);
                *t = t.saturating_add(*n);
            }
        }
        out.retain(|_, n| *n > 0);
        Ok(out)
    }

    /// The candidates of the top N of `span` with their exact totals, in
    /// memory bounded by the summary (see the module documentation).
    fn index_top(
        &self,
        snap: &Snapshot,
        q: &TrendsQuery,
        (from, to): (Millis, Millis),
    ) -> Result<IndexTop, IndexError> {
        let source = q.source.as_deref();
        let query = bucket_query(self.f, Some(q.kind), source, Some((from, to)), None);
        let mut cap = self.candidates.0.load(Ordering::Relaxed).max(1);
        let max = self.candidates.1.load(Ordering::Relaxed);
        loop {
            let mut summary: SpaceSaving<String> = SpaceSaving::new(cap);
            scan_counters(&snap.searcher, self.f, &query, |d| {
                summary.add(&d.key.key, d.count)
            })?;
            for (b, key, n) in &snap.uncommitted {
                if (from..to).contains(b) {
                    summary.add(key, *n);
                }
            }
            let bound = summary.max_error();
            if bound == 0 {
                // Every key fitted: the summary's counts are the totals.
                let totals = summary
                    .entries()
                    .filter(|(_, n, _)| *n > 0)
                    .map(|(k, n, _)| (k.clone(), n))
                    .collect();
                return Ok(IndexTop {
                    totals,
                    bound: 0,
                    complete: true,
                });
            }
            let threshold = match q.sort {
                // A key whose estimate is below the N-th largest lower bound
                // cannot be in the top N.
                TrendSort::Count => nth_largest(summary.entries().map(|(_, n, e)| n - e), q.limit),
                TrendSort::Score => q.scoring.min_count.max(1),
            };
            let wanted: HashSet<String> = summary
                .entries()
                .filter(|(_, n, _)| *n >= threshold)
                .map(|(k, _, _)| k.clone())
                .collect();
            drop(summary);
            let totals = self.index_sum(snap, q.kind, source, (from, to), Some(&wanted))?;
            let complete = match q.sort {
                TrendSort::Count => nth_largest(totals.values().copied(), q.limit) > bound,
                TrendSort::Score => bound < q.scoring.min_count,
            };
            if complete || cap >= max {
                return Ok(IndexTop {
                    totals,
                    bound,
                    complete,
                });
            }
            cap = cap.saturating_mul(4).min(max);
        }
    }
}

/// The `n`-th largest value (0 when there are fewer than `n`, or `n` is 0).
fn nth_largest(values: impl Iterator<Item = u64>, n: usize) -> u64 {
    let mut v: Vec<u64> = values.collect();
    if n == 0 || v.len() < n {
        return 0;
    }
    let (_, nth, _) = v.select_nth_unstable_by(n - 1, |a, b| b.cmp(a));
    *nth
}

#[cfg(test)]
mod tests {
    use super::nth_largest;

    #[test]
    fn nth_largest_counts_ties_and_short_lists() {
        assert_eq!(nth_largest([5, 9, 5, 1].into_iter(), 2), 5);
        assert_eq!(nth_largest([5, 9, 5, 1].into_iter(), 3), 5);
        assert_eq!(nth_largest([5, 9].into_iter(), 3), 0);
        assert_eq!(nth_largest([5].into_iter(), 0), 0);
    }
}
