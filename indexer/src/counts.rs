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
//! Invariant: the true count of a (bucket, source, key) counter is what the
//! index holds for it (its absolute value, if any, plus its deltas) plus
//! what memory holds and the index does not yet ([`Counts::uncommitted`]):
//! for a counter held exactly, its value minus the value last committed;
//! for any other, the increments not committed yet. A commit moves these
//! into the index; [`Counts::settle`] then marks them committed, at the
//! moment the index's reader sees them, so readers never miss or double
//! them.
//!
//! Layout, for memory: source names are interned (a counter names its
//! source by a small number), a key is one boxed string per counter held
//! exactly, and a summary shares one string per key between its map and
//! its counters.

use crate::heavy::SpaceSaving;
use farol_common::model::{AggKind, BucketKey, StreamState};
use farol_common::time::{align_down, Millis};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

/// An interned source name.
type Src = u32;

/// Counters to write, with the value to write.
pub type Writes = Vec<(BucketKey, u64)>;

/// Absolute values to write: the counter, its value, and whether the index
/// may already hold an older value of it (to be replaced). A counter whose
/// index value is unknown or nonzero is replaced; one created in memory and
/// never written is only added, which spares the index a delete per new
/// counter. (An older document of value 0 left beside it adds nothing.)
pub type Absolutes = Vec<(BucketKey, u64, bool)>;

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

/// A counter held exactly: its value and the value the index holds.
#[derive(Debug, Clone, Copy, Default)]
struct Counter {
    value: u64,
    committed: u64,
}

#[derive(Debug, Default)]
struct Bucket {
    /// Per source, key → counter.
    exact: HashMap<Src, HashMap<Box<str>, Counter>>,
    /// Counters in `exact`.
    exact_len: usize,
    overflow: Option<SpaceSaving<(Src, Arc<str>)>>,
}

impl Bucket {
    fn counter(&self, src: Src, key: &str) -> Option<&Counter> {
        self.exact.get(&src)?.get(key)
    }

    fn counter_mut(&mut self, src: Src, key: &str) -> Option<&mut Counter> {
        self.exact.get_mut(&src)?.get_mut(key)
    }

    fn insert(&mut self, src: Src, key: &str, c: Counter) {
        let m = self.exact.entry(src).or_default();
        if m.insert(key.into(), c).is_none() {
            self.exact_len += 1;
        }
    }

    fn summarise(&mut self, cap: usize, src: Src, key: &str, n: u64) {
        self.overflow
            .get_or_insert_with(|| SpaceSaving::new(cap))
            .add(&(src, Arc::from(key)), n);
    }
}

/// All counters held in memory.
#[derive(Debug, Default)]
pub struct Counts {
    limits: CountLimits,
    /// Interned source names: `names[src]`.
    names: Vec<String>,
    ids: HashMap<String, Src>,
    by_kind: HashMap<AggKind, BTreeMap<Millis, Bucket>>,
    sources: HashMap<AggKind, HashSet<String>>,
    /// Per source: buckets before this are not held (beyond exact counters
    /// still waiting for a commit). Absent: everything is held.
    floors: HashMap<String, Millis>,
    /// Per source: the newest bucket with counts only the index holds.
    newest_cold: HashMap<String, Millis>,
    /// Exact counters changed since the last [`Counts::take_writes`].
    dirty: HashSet<BucketKey>,
    /// Exact counters whose value the index may not hold yet (`dirty` and
    /// those being written).
    unsettled: HashSet<BucketKey>,
    /// Absolute values being written by the commit in progress.
    writing: Writes,
    /// Increments of counters not held exactly, not committed yet.
    pending: HashMap<BucketKey, u64>,
    /// Increments being written by the commit in progress.
    in_flight: HashMap<BucketKey, u64>,
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

    /// The number of a source name, interned on first use.
    fn intern(&mut self, source: &str) -> Src {
        if let Some(&s) = self.ids.get(source) {
            return s;
        }
        let s = Src::try_from(self.names.len()).unwrap_or(Src::MAX);
        self.names.push(source.to_string());
        self.ids.insert(source.to_string(), s);
        s
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
        let src = self.intern(&k.source);
        let floor = self.floor(&k.source);
        let buckets = self.by_kind.entry(k.kind).or_default();
        if let Some(c) = buckets
            .get_mut(&k.bucket_start)
            .and_then(|b| b.counter_mut(src, &k.key))
        {
            c.value = c.value.saturating_add(n);
            if !self.dirty.contains(k) {
                self.dirty.insert(k.clone());
                self.unsettled.insert(k.clone());
            }
            return;
        }
        if k.bucket_start < floor {
            // Late counts for a bucket that already left memory.
            let p = self.pending.entry(k.clone()).or_insert(0);
            *p = p.saturating_add(n);
            let cold = self
                .newest_cold
                .entry(k.source.clone())
                .or_insert(k.bucket_start);
            *cold = (*cold).max(k.bucket_start);
            return;
        }
        let b = buckets.entry(k.bucket_start).or_default();
        // A bucket beyond its budget stays beyond it: a key of its summary
        // may have counts in the index that a new exact counter would not
        // know of.
        if b.exact_len < self.limits.key_budget && b.overflow.is_none() {
            b.insert(
                src,
                &k.key,
                Counter {
                    value: n,
                    committed: 0,
                },
            );
            self.dirty.insert(k.clone());
            self.unsettled.insert(k.clone());
        } else {
            b.summarise(self.limits.heavy_hitters, src, &k.key, n);
            let p = self.pending.entry(k.clone()).or_insert(0);
            *p = p.saturating_add(n);
        }
    }

    /// Loads a counter's absolute value from the index (at start): held
    /// exactly within the budget, else summarised (later increments of it
    /// are then written as deltas, on top of this stored value).
    pub fn load_absolute(&mut self, k: BucketKey, n: u64) {
        self.note_source(k.kind, &k.source);
        let src = self.intern(&k.source);
        let budget = self.limits.key_budget;
        let cap = self.limits.heavy_hitters;
        let b = self
            .by_kind
            .entry(k.kind)
            .or_default()
            .entry(k.bucket_start)
            .or_default();
        if b.exact_len < budget || b.counter(src, &k.key).is_some() {
            b.insert(
                src,
                &k.key,
                Counter {
                    value: n,
                    committed: n,
                },
            );
        } else {
            b.summarise(cap, src, &k.key, n);
        }
    }

    /// Loads a committed increment of a counter not held exactly (at start).
    pub fn load_delta(&mut self, k: BucketKey, n: u64) {
        self.note_source(k.kind, &k.source);
        let src = self.intern(&k.source);
        let cap = self.limits.heavy_hitters;
        self.by_kind
            .entry(k.kind)
            .or_default()
            .entry(k.bucket_start)
            .or_default()
            .summarise(cap, src, &k.key, n);
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

    fn value_of(&self, k: &BucketKey) -> Option<Counter> {
        let src = *self.ids.get(&k.source)?;
        self.by_kind
            .get(&k.kind)?
            .get(&k.bucket_start)?
            .counter(src, &k.key)
            .copied()
    }

    /// The counters to write at a commit: exact ones as absolute values,
    /// the others as increments. Until [`Counts::settle`] they still count
    /// as [`uncommitted`](Counts::uncommitted).
    pub fn take_writes(&mut self) -> (Absolutes, Writes) {
        let dirty: Vec<BucketKey> = self.dirty.drain().collect();
        let absolute: Absolutes = dirty
            .into_iter()
            .filter_map(|k| {
                let c = self.value_of(&k)?;
                // Nothing to write for a counter that stayed at 0.
                (c.value > 0 || c.committed > 0).then_some((k, c.value, c.committed > 0))
            })
            .collect();
        self.writing
            .extend(absolute.iter().map(|(k, n, _)| (k.clone(), *n)));
        let deltas: Writes = self.pending.drain().collect();
        for (k, n) in &deltas {
            let f = self.in_flight.entry(k.clone()).or_insert(0);
            *f = f.saturating_add(*n);
        }
        (absolute, deltas)
    }

    /// The writes last taken are committed and visible to the index's
    /// readers: they no longer count as uncommitted.
    pub fn settle(&mut self) {
        let src_of = |ids: &HashMap<String, Src>, s: &str| ids.get(s).copied();
        for (k, n) in std::mem::take(&mut self.writing) {
            let Some(src) = src_of(&self.ids, &k.source) else {
                continue;
            };
            if let Some(c) = self
                .by_kind
                .get_mut(&k.kind)
                .and_then(|m| m.get_mut(&k.bucket_start))
                .and_then(|b| b.counter_mut(src, &k.key))
            {
                c.committed = n;
            }
        }
        self.in_flight.clear();
        let (ids, by_kind) = (&self.ids, &self.by_kind);
        let dirty = &self.dirty;
        self.unsettled.retain(|k| {
            dirty.contains(k)
                || src_of(ids, &k.source)
                    .and_then(|src| {
                        by_kind
                            .get(&k.kind)?
                            .get(&k.bucket_start)?
                            .counter(src, &k.key)
                    })
                    .is_some_and(|c| c.value != c.committed)
        });
    }

    /// True when something waits for a commit.
    pub fn has_writes(&self) -> bool {
        !self.dirty.is_empty() || !self.pending.is_empty()
    }

    /// Drops committed buckets of every source whose streams (committed
    /// state, `streams`) have moved far enough: see [`Counts::floor_of`].
    /// Floors only rise. Sources without streams are left alone. Counters
    /// not settled yet stay until they are.
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
        // Floors by interned source.
        let raised_src: HashMap<Src, Millis> = raised
            .iter()
            .filter_map(|(s, f)| Some((*self.ids.get(s)?, *f)))
            .collect();
        let floors_src: HashMap<Src, Millis> = self
            .floors
            .iter()
            .filter_map(|(s, f)| Some((*self.ids.get(s)?, *f)))
            .collect();
        let mut cold: HashMap<Src, Millis> = HashMap::new();
        let mut again = false;
        for buckets in self.by_kind.values_mut() {
            let mut emptied = vec![];
            for (&start, b) in buckets.range_mut(..top) {
                let mut removed = 0;
                for (src, keys) in b.exact.iter_mut() {
                    let Some(&f) = raised_src.get(src) else {
                        continue;
                    };
                    if start >= f {
                        continue;
                    }
                    let before = keys.len();
                    // Counters the index does not hold yet stay until it does.
                    keys.retain(|_, c| c.value != c.committed);
                    if !keys.is_empty() {
                        again = true;
                    }
                    if keys.len() < before {
                        let c = cold.entry(*src).or_insert(start);
                        *c = (*c).max(start);
                    }
                    removed += before - keys.len();
                }
                b.exact.retain(|_, keys| !keys.is_empty());
                b.exact_len -= removed;
                if let Some(o) = &b.overflow {
                    for ((src, _), _) in o.iter() {
                        if raised_src.get(src).is_some_and(|f| start < *f) {
                            let c = cold.entry(*src).or_insert(start);
                            *c = (*c).max(start);
                        }
                    }
                }
                // A summary goes with its bucket only once every source in
                // it is past the bucket (its counts are all in the index).
                let summary_done = b.overflow.as_ref().is_none_or(|o| {
                    o.iter()
                        .all(|((src, _), _)| floors_src.get(src).is_some_and(|f| start < *f))
                });
                if b.exact_len == 0 && summary_done {
                    emptied.push(start);
                }
            }
            for s in emptied {
                buckets.remove(&s);
            }
        }
        self.evict_again |= again;
        for (src, start) in cold {
            let name = self.names[src as usize].clone();
            let c = self.newest_cold.entry(name).or_insert(start);
            *c = (*c).max(start);
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
    /// [`Counts::overflowed`]. With `top = Some(n)` only keys whose total
    /// reaches the `n`-th largest total are returned (ties included), and
    /// `keys` restricts the keys; the sum runs over borrowed keys, so only
    /// the returned ones are copied.
    pub fn hot_totals(
        &self,
        kind: AggKind,
        source: Option<&str>,
        (from, to): (Millis, Millis),
        top: Option<usize>,
        keys: Option<&HashSet<String>>,
    ) -> HotTotals {
        let mut out = HotTotals::default();
        if from >= to {
            return out;
        }
        let Some(m) = self.by_kind.get(&kind) else {
            return out;
        };
        let asked: Option<Option<Src>> = source.map(|s| self.ids.get(s).copied());
        if asked == Some(None) {
            return out;
        }
        let wanted = |src: Src, key: &str| {
            asked.is_none_or(|a| a == Some(src)) && keys.is_none_or(|ks| ks.contains(key))
        };
        let mut sums: HashMap<&str, u64> = HashMap::new();
        for b in m.range(from..to).map(|(_, b)| b) {
            for (src, ks) in &b.exact {
                for (key, c) in ks {
                    if wanted(*src, key) {
                        let s = sums.entry(key).or_insert(0);
                        *s = s.saturating_add(c.value);
                    }
                }
            }
            if let Some(o) = &b.overflow {
                for ((src, key), n) in o.iter() {
                    if wanted(*src, key) {
                        let s = sums.entry(key).or_insert(0);
                        *s = s.saturating_add(n);
                    }
                }
                out.max_error = out.max_error.saturating_add(o.max_error());
            }
        }
        let threshold = match top {
            Some(n) if n > 0 && n < sums.len() => {
                let mut v: Vec<u64> = sums.values().copied().collect();
                let (_, nth, _) = v.select_nth_unstable_by(n - 1, |a, b| b.cmp(a));
                *nth
            }
            _ => 0,
        };
        out.totals = sums
            .into_iter()
            .filter(|(_, n)| *n >= threshold && *n > 0)
            .map(|(k, n)| (k.to_string(), n))
            .collect();
        out
    }

    /// What memory holds of `kind` over `[from, to)` that the index does
    /// not yet: (bucket, key, increment). Added to the index's sums, this
    /// gives exact totals.
    pub fn uncommitted(
        &self,
        kind: AggKind,
        source: Option<&str>,
        (from, to): (Millis, Millis),
    ) -> Vec<(Millis, String, u64)> {
        let wanted = |k: &BucketKey| {
            k.kind == kind
                && (from..to).contains(&k.bucket_start)
                && source.is_none_or(|s| s == k.source)
        };
        let mut out = Vec::new();
        for k in self.unsettled.iter().filter(|k| wanted(k)) {
            if let Some(c) = self.value_of(k) {
                let n = c.value.saturating_sub(c.committed);
                if n > 0 {
                    out.push((k.bucket_start, k.key.clone(), n));
                }
            }
        }
        for (k, n) in self.pending.iter().chain(&self.in_flight) {
            if wanted(k) && *n > 0 {
                out.push((k.bucket_start, k.key.clone(), *n));
            }
        }
        out
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
                exact += b.exact_len;
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

    fn hot(c: &Counts, source: Option<&str>, span: (Millis, Millis)) -> HotTotals {
        c.hot_totals(AggKind::Hashtag, source, span, None, None)
    }

    /// (key, increment) of `uncommitted`, summed per key, sorted.
    fn unsettled(c: &Counts, span: (Millis, Millis)) -> Vec<(String, u64)> {
        let mut m: BTreeMap<String, u64> = BTreeMap::new();
        for (_, key, n) in c.uncommitted(AggKind::Hashtag, None, span) {
            *m.entry(key).or_insert(0) += n;
        }
        m.into_iter().collect()
    }

    #[test]
    fn sums_buckets_in_range_by_source() {
        let mut c = Counts::new(limits(100));
        c.add(&k(0, "a", "x"), 2);
        c.add(&k(10_000, "a", "x"), 1);
        c.add(&k(10_000, "b", "y"), 5);
        c.add(&k(20_000, "a", "y"), 7);
        let t = hot(&c, None, (0, 20_000)).totals;
        assert_eq!((t["x"], t["y"]), (3, 5));
        let t = hot(&c, Some("a"), (10_000, 30_000)).totals;
        assert_eq!((t["x"], t["y"]), (1, 7));
        assert!(hot(&c, Some("nobody"), (0, 99_999)).totals.is_empty());
        assert!(c
            .hot_totals(AggKind::LogClass, None, (0, 99_999), None, None)
            .totals
            .is_empty());
    }

    #[test]
    fn top_keeps_the_keys_reaching_the_nth_total_and_ties() {
        let mut c = Counts::new(limits(100));
        for (key, n) in [("a", 9), ("b", 5), ("c", 5), ("d", 1)] {
            c.add(&k(0, "a", key), n);
        }
        let t = c.hot_totals(AggKind::Hashtag, None, (0, 10_000), Some(2), None);
        let mut keys: Vec<&str> = t.totals.keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(keys, vec!["a", "b", "c"]);
        let only: HashSet<String> = ["d".to_string()].into();
        let t = c.hot_totals(AggKind::Hashtag, None, (0, 10_000), None, Some(&only));
        assert_eq!(t.totals, [("d".to_string(), 1)].into());
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
        let h = hot(&c, None, (0, 10_000));
        assert_eq!(h.totals["x"], 6);
        assert_eq!(h.totals["z"], 3);
        assert_eq!(h.totals["v"], 2, "w's count inherited");
        assert_eq!(h.max_error, 2);
        let (abs, mut deltas) = c.take_writes();
        let mut abs: Vec<(String, u64)> = abs.into_iter().map(|(k, n, _)| (k.key, n)).collect();
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

    /// What the index does not hold yet stays uncommitted from the change
    /// until `settle` (the commit is visible), never missing in between.
    #[test]
    fn uncommitted_increments_last_until_settled() {
        let mut c = Counts::new(limits(1));
        c.add(&k(0, "a", "x"), 5); // exact
        c.add(&k(0, "a", "y"), 2); // beyond the budget: a delta
        let span = (0, 10_000);
        let want = vec![("x".to_string(), 5), ("y".to_string(), 2)];
        assert_eq!(unsettled(&c, span), want);
        let (abs, deltas) = c.take_writes();
        assert_eq!(
            abs,
            vec![(k(0, "a", "x"), 5, false)],
            "new: nothing to replace"
        );
        assert_eq!(deltas.len(), 1);
        assert_eq!(unsettled(&c, span), want, "being written: still counted");
        c.add(&k(0, "a", "x"), 1);
        c.add(&k(0, "a", "y"), 1);
        c.settle();
        // The commit wrote x = 5 and y + 2; x + 1 and y + 1 came after it.
        assert_eq!(
            unsettled(&c, span),
            vec![("x".to_string(), 1), ("y".to_string(), 1)]
        );
        let (abs, deltas) = c.take_writes();
        assert_eq!(
            abs,
            vec![(k(0, "a", "x"), 6, true)],
            "x = 5 is in the index"
        );
        assert_eq!(deltas, vec![(k(0, "a", "y"), 1)]);
        c.settle();
        assert!(unsettled(&c, span).is_empty());
        assert!(unsettled(&c, (10_000, 20_000)).is_empty());
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
        // Written but not settled (not visible yet): nothing leaves.
        c.evict(&streams);
        assert_eq!(c.held().0, 21);
        c.settle();
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
        let u = c.uncommitted(AggKind::Hashtag, Some("a"), (0, 10_000));
        assert_eq!(u, vec![(0, "x".to_string(), 4)]);
        let (abs, deltas) = c.take_writes();
        assert!(abs.is_empty());
        assert_eq!(deltas, vec![(k(0, "a", "x"), 4)]);
        // Floors never sink.
        c.evict(&[stream("a", 0)].into());
        assert!(!c.holds(AggKind::Hashtag, Some("a"), 70_000));
    }
}
