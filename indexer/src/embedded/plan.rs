//! `/trends` on the embedded index: which span a question covers (planned
//! by [`crate::trends`]), then its totals from memory when memory holds
//! them, else from the counter documents plus what memory holds exactly.

use super::counters::{bucket_query, read_bucket_doc, MAX_KEY_TERMS};
use super::state::State;
use super::{lock_err, Inner};
use crate::query::{Trends, TrendsQuery};
use crate::IndexError;
use farol_common::model::AggKind;
use farol_common::time::{rfc3339, Millis};
use std::collections::{HashMap, HashSet};
use tantivy::collector::DocSetCollector;

impl Inner {
    pub(super) fn trends(&self, q: &TrendsQuery) -> Result<Trends, IndexError> {
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
}
