//! Base-bucket counters held in memory, bounded: only the recent ("hot")
//! buckets of each source, and in each bucket of a kind at most `key_budget`
//! counters kept exactly; further keys of that bucket go into a Space-Saving
//! summary ([`crate::heavy`]) that answers windows approximately.
//!
//! What is not held lives in the index: counters kept exactly are written
//! as absolute values, the others (keys beyond the budget, and late records
//! for buckets that already left memory) as increments ("deltas") that
//! readers add up. A bucket leaves memory once every window holding it has
//! closed and it is committed: when the source's committed watermark is
//! more than `retain_ms` (the longest window plus its slide) past it.
//!
//! Invariant: for a (bucket, source, key) counter held exactly here, this
//! value is authoritative (the index holds it or an older one); for any
//! other, the true count is the index's absolute value plus its deltas plus
//! the [`pending`](Counts::pending_deltas) increments not committed yet.

use crate::heavy::SpaceSaving;
use farol_common::model::{AggKind, BucketKey, StreamState};
use farol_common::time::{align_down, Millis};
use std::collections::{BTreeMap, HashMap, HashSet};

/// (source, key)
type Entry = (String, String);

/// Counters to write, with the value to write.
pub type Writes = Vec<(BucketKey, u64)>;

/// Memory bounds of the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CountLimits {
    /// Counters one bucket of one kind keeps exactly.
    pub key_budget: usize,
    /// Counters of the summary of a bucket beyond the budget.
    pub heavy_hitters: usize,
    /// How far behind a source's committed watermark buckets stay in memory.
    pub retain_ms: Millis,
    /// Base bucket length.
    pub bucket_ms: Millis,
}

impl Default for CountLimits {
    fn default() -> Self {
        CountLimits {
            key_budget: 4096,
            heavy_hitters: 1024,
            // The default longest window (1 h) plus its slide (5 m).
            retain_ms: 3_900_000,
            bucket_ms: 10_000,
        }
    }
}

#[derive(Debug, Default)]
struct Bucket {
    exact: HashMap<Entry, u64>,
    overflow: Option<SpaceSaving<Entry>>,
}

/// All counters held in memory.
#[derive(Debug, Default)]
pub struct Counts {
    limits: CountLimits,
    by_kind: HashMap<AggKind, BTreeMap<Millis, Bucket>>,
    sources: HashMap<AggKind, HashSet<String>>,
    /// Per source: buckets before this are not held (beyond exact counters
    /// still waiting for a commit). Absent: everything is held.
    floors: HashMap<String, Millis>,
    /// Per source: the newest bucket with counts only the index holds.
    newest_cold: HashMap<String, Millis>,
    /// Exact counters changed since the last commit.
    dirty: HashSet<BucketKey>,
    /// Increments of counters not held exactly, not committed yet.
    pending: HashMap<BucketKey, u64>,
    /// True when an eviction kept counters below a floor because they were
    /// not committed yet: the next one looks at every floor again.
    evict_again: bool,
}

/// Totals from memory and how far they may be off.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct HotTotals {
    /// Per key.
    pub totals: HashMap<String, u64>,
    /// Largest possible error of any total (0: exact).
    pub max_error: u64,
}

impl Counts {
    /// Empty counters with these bounds.
    pub fn new(limits: CountLimits) -> Self {
        Counts {
            limits,
            ..Counts::default()
        }
    }

    /// The bounds.
    pub fn limits(&self) -> CountLimits {
        self.limits
    }

    fn floor(&self, source: &str) -> Millis {
        self.floors.get(source).copied().unwrap_or(Millis::MIN)
    }

    fn note_source(&mut self, kind: AggKind, source: &str) {
        let set = self.sources.entry(kind).or_default();
        if !set.contains(source) {
            set.insert(source.to_string());
        }
    }

    /// Records that `source` counted `kind` (found in the index at start).
    pub fn note_indexed_source(&mut self, kind: AggKind, source: &str) {
        self.note_source(kind, source);
    }

    /// True when `source` has counted anything of `kind`.
    pub fn has_source(&self, kind: AggKind, source: &str) -> bool {
        self.sources.get(&kind).is_some_and(|s| s.contains(source))
    }

    /// Adds `n` to a counter.
    pub fn add(&mut self, k: &BucketKey, n: u64) {
        self.note_source(k.kind, &k.source);
        let entry = (k.source.clone(), k.key.clone());
        let floor = self.floor(&k.source);
        let buckets = self.by_kind.entry(k.kind).or_default();
        if let Some(c) = buckets
            .get_mut(&k.bucket_start)
            .and_then(|b| b.exact.get_mut(&entry))
        {
            *c += n;
            self.dirty.insert(k.clone());
            return;
        }
        if k.bucket_start < floor {
            // Late counts for a bucket that already left memory.
            *self.pending.entry(k.clone()).or_insert(0) += n;
            let cold = self
                .newest_cold
                .entry(k.source.clone())
                .or_insert(k.bucket_start);
            *cold = (*cold).max(k.bucket_start);
            return;
        }
        let b = buckets.entry(k.bucket_start).or_default();
        if b.exact.len() < self.limits.key_budget {
            b.exact.insert(entry, n);
            self.dirty.insert(k.clone());
        } else {
            let cap = self.limits.heavy_hitters;
            b.overflow
                .get_or_insert_with(|| SpaceSaving::new(cap))
                .add(&entry, n);
            *self.pending.entry(k.clone()).or_insert(0) += n;
        }
    }

    /// Loads a counter's absolute value from the index (at start): held
    /// exactly within the budget, else summarised (later increments of it
    /// are then written as deltas, on top of this stored value).
    pub fn load_absolute(&mut self, k: BucketKey, n: u64) {
        self.note_source(k.kind, &k.source);
        let budget = self.limits.key_budget;
        let cap = self.limits.heavy_hitters;
        let b = self
            .by_kind
            .entry(k.kind)
            .or_default()
            .entry(k.bucket_start)
            .or_default();
        let entry = (k.source, k.key);
        if b.exact.len() < budget || b.exact.contains_key(&entry) {
            b.exact.insert(entry, n);
        } else {
            b.overflow
                .get_or_insert_with(|| SpaceSaving::new(cap))
                .add(&entry, n);
        }
    }

    /// Loads a committed increment of a counter not held exactly (at start).
    pub fn load_delta(&mut self, k: BucketKey, n: u64) {
        self.note_source(k.kind, &k.source);
        let cap = self.limits.heavy_hitters;
        self.by_kind
            .entry(k.kind)
            .or_default()
            .entry(k.bucket_start)
            .or_default()
            .overflow
            .get_or_insert_with(|| SpaceSaving::new(cap))
            .add(&(k.source, k.key), n);
    }

    /// Sets where `source`'s held buckets start (at start, before loading),
    /// and the newest bucket before it that the index holds.
    pub fn set_floor(&mut self, source: &str, floor: Millis, newest_cold: Option<Millis>) {
        self.floors.insert(source.to_string(), floor);
        if let Some(c) = newest_cold {
            self.newest_cold.insert(source.to_string(), c);
        }
    }

    /// Where a source's held buckets start, given its committed streams:
    /// `retain_ms` before the oldest of their watermarks (or newest event,
    /// when older: a quiet source keeps showing its last windows), aligned
    /// one bucket lower. `None` when a stream has no watermark yet.
    pub fn floor_of<'a>(
        &self,
        streams: impl IntoIterator<Item = &'a StreamState>,
    ) -> Option<Millis> {
        let mut oldest: Option<Millis> = None;
        for s in streams {
            let wm = s.watermark?;
            let t = s.max_ts.map_or(wm, |m| m.min(wm));
            oldest = Some(oldest.map_or(t, |o| o.min(t)));
        }
        let t = oldest?;
        let b = self.limits.bucket_ms.max(1);
        Some(align_down(t.saturating_sub(self.limits.retain_ms), b).saturating_sub(b))
    }

    /// The counters to write at a commit: exact ones as absolute values,
    /// the others as increments. Both are then considered written.
    pub fn take_writes(&mut self) -> (Writes, Writes) {
        let dirty: Vec<BucketKey> = self.dirty.drain().collect();
        let absolute = dirty
            .into_iter()
            .filter_map(|k| {
                let n = self
                    .by_kind
                    .get(&k.kind)?
                    .get(&k.bucket_start)?
                    .exact
                    .get(&(k.source.clone(), k.key.clone()))
                    .copied()?;
                Some((k, n))
            })
            .collect();
        let deltas = self.pending.drain().collect();
        (absolute, deltas)
    }

    /// True when something waits for a commit.
    pub fn has_writes(&self) -> bool {
        !self.dirty.is_empty() || !self.pending.is_empty()
    }

    /// Drops committed buckets of every source whose streams (committed
    /// state, `streams`) have moved far enough: see [`Counts::floor_of`].
    /// Floors only rise. Sources without streams are left alone.
    pub fn evict(&mut self, streams: &HashMap<String, StreamState>) {
        let mut by_source: HashMap<&str, Vec<&StreamState>> = HashMap::new();
        for s in streams.values() {
            by_source.entry(s.source.as_str()).or_default().push(s);
        }
        let mut raised: HashMap<String, Millis> = HashMap::new();
        for (src, ss) in by_source {
            if let Some(f) = self.floor_of(ss.iter().copied()) {
                if f > self.floor(src) {
                    self.floors.insert(src.to_string(), f);
                    raised.insert(src.to_string(), f);
                }
            }
        }
        if std::mem::take(&mut self.evict_again) {
            for (src, f) in &self.floors {
                raised.entry(src.clone()).or_insert(*f);
            }
        }
        let Some(&top) = raised.values().max() else {
            return;
        };
        for (kind, buckets) in self.by_kind.iter_mut() {
            let mut emptied = vec![];
            for (&start, b) in buckets.range_mut(..top) {
                b.exact.retain(|(src, key), _| {
                    let Some(&f) = raised.get(src) else {
                        return true;
                    };
                    if start >= f {
                        return true;
                    }
                    let k = BucketKey {
                        bucket_start: start,
                        kind: *kind,
                        source: src.clone(),
                        key: key.clone(),
                    };
                    if self.dirty.contains(&k) {
                        self.evict_again = true;
                        return true;
                    }
                    let cold = self.newest_cold.entry(src.clone()).or_insert(start);
                    *cold = (*cold).max(start);
                    false
                });
                if let Some(o) = &b.overflow {
                    for ((src, _), _) in o.iter() {
                        if raised.get(src).is_some_and(|f| start < *f) {
                            let cold = self.newest_cold.entry(src.clone()).or_insert(start);
                            *cold = (*cold).max(start);
                        }
                    }
                }
                // A summary goes with its bucket only once every source in
                // it is past the bucket (its counts are all in the index).
                let summary_done = b.overflow.as_ref().is_none_or(|o| {
                    o.iter()
                        .all(|((src, _), _)| self.floors.get(src).is_some_and(|f| start < *f))
                });
                if b.exact.is_empty() && summary_done {
                    emptied.push(start);
                }
            }
            for s in emptied {
                buckets.remove(&s);
            }
        }
    }

    /// The sources of `kind` a question is about.
    fn asked<'a>(&'a self, kind: AggKind, source: Option<&'a str>) -> Vec<&'a str> {
        match source {
            Some(s) => vec![s],
            None => self
                .sources
                .get(&kind)
                .map(|s| s.iter().map(String::as_str).collect())
                .unwrap_or_default(),
        }
    }

    /// True when memory holds every count of `[from, ..)` for the asked
    /// sources (exactly, or summarised where a bucket overflowed).
    pub fn holds(&self, kind: AggKind, source: Option<&str>, from: Millis) -> bool {
        self.asked(kind, source)
            .into_iter()
            .all(|s| self.newest_cold.get(s).is_none_or(|c| *c < from))
    }

    /// True when a bucket in `[from, to)` of `kind` went beyond the key budget.
    pub fn overflowed(&self, kind: AggKind, from: Millis, to: Millis) -> bool {
        from < to
            && self
                .by_kind
                .get(&kind)
                .is_some_and(|m| m.range(from..to).any(|(_, b)| b.overflow.is_some()))
    }

    /// Totals per key over buckets starting in `[from, to)`, from memory
    /// only: exact counters plus summary estimates, with their error bound.
    /// Complete when [`Counts::holds`]; exact when also not
    /// [`Counts::overflowed`].
    pub fn hot_totals(
        &self,
        kind: AggKind,
        source: Option<&str>,
        from: Millis,
        to: Millis,
    ) -> HotTotals {
        let mut out = HotTotals::default();
        if from >= to {
            return out;
        }
        let Some(m) = self.by_kind.get(&kind) else {
            return out;
        };
        for b in m.range(from..to).map(|(_, b)| b) {
            for ((src, key), n) in &b.exact {
                if source.is_none_or(|s| s == src) {
                    *out.totals.entry(key.clone()).or_insert(0) += n;
                }
            }
            if let Some(o) = &b.overflow {
                for ((src, key), n) in o.iter() {
                    if source.is_none_or(|s| s == src) {
                        *out.totals.entry(key.clone()).or_insert(0) += n;
                    }
                }
                out.max_error += o.max_error();
            }
        }
        out
    }

    /// True when memory holds the counter exactly (its absolute document in
    /// the index, if any, is then stale or equal and must not be added).
    pub fn holds_exactly(&self, kind: AggKind, bucket: Millis, source: &str, key: &str) -> bool {
        self.by_kind
            .get(&kind)
            .and_then(|m| m.get(&bucket))
            .is_some_and(|b| b.exact.contains_key(&(source.to_string(), key.to_string())))
    }

    /// Adds to `out` what memory knows exactly over `[from, to)`: the exact
    /// counters and the increments not committed yet (the index supplies
    /// the rest). `keys` restricts the keys.
    pub fn add_exact(
        &self,
        kind: AggKind,
        source: Option<&str>,
        (from, to): (Millis, Millis),
        keys: Option<&HashSet<String>>,
        out: &mut HashMap<String, u64>,
    ) {
        if from >= to {
            return;
        }
        let wanted = |src: &str, key: &str| {
            source.is_none_or(|s| s == src) && keys.is_none_or(|ks| ks.contains(key))
        };
        if let Some(m) = self.by_kind.get(&kind) {
            for b in m.range(from..to).map(|(_, b)| b) {
                for ((src, key), n) in &b.exact {
                    if wanted(src, key) {
                        *out.entry(key.clone()).or_insert(0) += n;
                    }
                }
            }
        }
        for (k, n) in &self.pending {
            if k.kind == kind && (from..to).contains(&k.bucket_start) && wanted(&k.source, &k.key) {
                *out.entry(k.key.clone()).or_insert(0) += n;
            }
        }
    }

    /// Counters held (exact, summarised) and buckets held, for metrics and
    /// benchmarks.
    pub fn held(&self) -> (usize, usize, usize) {
        let mut exact = 0;
        let mut summarised = 0;
        let mut buckets = 0;
        for m in self.by_kind.values() {
            for b in m.values() {
                buckets += 1;
                exact += b.exact.len();
                summarised += b.overflow.as_ref().map_or(0, SpaceSaving::len);
            }
        }
        (exact, summarised, buckets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(b: Millis, src: &str, key: &str) -> BucketKey {
        BucketKey {
            bucket_start: b,
            kind: AggKind::Hashtag,
            source: src.into(),
            key: key.into(),
        }
    }

    fn limits(budget: usize) -> CountLimits {
        CountLimits {
            key_budget: budget,
            heavy_hitters: 2,
            retain_ms: 60_000,
            bucket_ms: 10_000,
        }
    }

    fn stream(src: &str, wm: Millis) -> (String, StreamState) {
        (
            format!("{src}:1"),
            StreamState {
                source: src.into(),
                applied_end: 0,
                line_no: 0,
                max_ts: Some(wm + 30_000),
                last_ts: Some(wm),
                watermark: Some(wm),
                wall_ms: None,
                templates: None,
            },
        )
    }

    #[test]
    fn sums_buckets_in_range_by_source() {
        let mut c = Counts::new(limits(100));
        c.add(&k(0, "a", "x"), 2);
        c.add(&k(10_000, "a", "x"), 1);
        c.add(&k(10_000, "b", "y"), 5);
        c.add(&k(20_000, "a", "y"), 7);
        let t = c.hot_totals(AggKind::Hashtag, None, 0, 20_000).totals;
        assert_eq!((t["x"], t["y"]), (3, 5));
        let t = c
            .hot_totals(AggKind::Hashtag, Some("a"), 10_000, 30_000)
            .totals;
        assert_eq!((t["x"], t["y"]), (1, 7));
        assert!(c
            .hot_totals(AggKind::LogClass, None, 0, 99_999)
            .totals
            .is_empty());
    }

    #[test]
    fn beyond_the_budget_counts_are_deltas_and_summarised() {
        let mut c = Counts::new(limits(2));
        c.add(&k(0, "a", "x"), 5);
        c.add(&k(0, "a", "y"), 1);
        c.add(&k(0, "a", "z"), 3); // over budget
        c.add(&k(0, "a", "w"), 1);
        c.add(&k(0, "a", "v"), 1); // summary of 2 full: replaces w
        c.add(&k(0, "a", "x"), 1); // held exactly: stays exact
        assert!(c.overflowed(AggKind::Hashtag, 0, 10_000));
        let h = c.hot_totals(AggKind::Hashtag, None, 0, 10_000);
        assert_eq!(h.totals["x"], 6);
        assert_eq!(h.totals["z"], 3);
        assert_eq!(h.totals["v"], 2, "w's count inherited");
        assert_eq!(h.max_error, 2);
        let (abs, mut deltas) = c.take_writes();
        let mut abs: Vec<(String, u64)> = abs.into_iter().map(|(k, n)| (k.key, n)).collect();
        abs.sort();
        assert_eq!(abs, vec![("x".into(), 6), ("y".into(), 1)]);
        deltas.sort();
        let deltas: Vec<(String, u64)> = deltas.into_iter().map(|(k, n)| (k.key, n)).collect();
        assert_eq!(
            deltas,
            vec![("v".into(), 1), ("w".into(), 1), ("z".into(), 3)]
        );
        assert!(!c.has_writes());
    }

    #[test]
    fn committed_buckets_leave_memory_and_late_counts_become_deltas() {
        let mut c = Counts::new(limits(100));
        for b in 0..20 {
            c.add(&k(b * 10_000, "a", "x"), 1);
        }
        c.add(&k(0, "b", "x"), 1);
        let streams: HashMap<String, StreamState> =
            [stream("a", 150_000), stream("b", 10_000)].into();
        // Not committed yet: nothing leaves.
        c.evict(&streams);
        assert_eq!(c.held().0, 21);
        c.take_writes();
        c.evict(&streams);
        // a: floor = align(150 s - 60 s) - 10 s = 80 s: buckets 0..80 s leave.
        assert_eq!(c.held().0, 21 - 8);
        assert!(!c.holds(AggKind::Hashtag, None, 70_000));
        assert!(c.holds(AggKind::Hashtag, Some("a"), 80_000));
        assert!(
            c.holds(AggKind::Hashtag, Some("b"), 0),
            "b holds everything"
        );
        // A late count for bucket 0 of a: a delta, memory only has it pending.
        c.add(&k(0, "a", "x"), 4);
        let mut out = HashMap::new();
        c.add_exact(AggKind::Hashtag, Some("a"), (0, 10_000), None, &mut out);
        assert_eq!(out["x"], 4);
        let (abs, deltas) = c.take_writes();
        assert!(abs.is_empty());
        assert_eq!(deltas, vec![(k(0, "a", "x"), 4)]);
        // Floors never sink.
        c.evict(&[stream("a", 0)].into());
        assert!(!c.holds(AggKind::Hashtag, Some("a"), 70_000));
    }
}
