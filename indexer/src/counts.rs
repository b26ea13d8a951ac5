//! Base-bucket counters held in memory for fast trends: per kind, a time
//! ordered map of buckets, each holding counts per (source, key). Windows and
//! ranges are sums over buckets.

use farol_common::model::{AggKind, BucketKey};
use farol_common::time::Millis;
use std::collections::{BTreeMap, HashMap, HashSet};

type Bucket = HashMap<(String, String), u64>;

/// All counters.
#[derive(Debug, Default)]
pub struct Counts {
    by_kind: HashMap<AggKind, BTreeMap<Millis, Bucket>>,
    sources: HashMap<AggKind, HashSet<String>>,
}

impl Counts {
    /// Adds `n` to a counter and returns its new value.
    pub fn add(&mut self, k: &BucketKey, n: u64) -> u64 {
        self.note_source(k);
        let c = self
            .by_kind
            .entry(k.kind)
            .or_default()
            .entry(k.bucket_start)
            .or_default()
            .entry((k.source.clone(), k.key.clone()))
            .or_insert(0);
        *c += n;
        *c
    }

    /// Sets a counter (when loading durable state).
    pub fn set(&mut self, k: &BucketKey, n: u64) {
        self.note_source(k);
        self.by_kind
            .entry(k.kind)
            .or_default()
            .entry(k.bucket_start)
            .or_default()
            .insert((k.source.clone(), k.key.clone()), n);
    }

    fn note_source(&mut self, k: &BucketKey) {
        let set = self.sources.entry(k.kind).or_default();
        if !set.contains(&k.source) {
            set.insert(k.source.clone());
        }
    }

    /// True when `source` has counted anything of `kind`.
    pub fn has_source(&self, kind: AggKind, source: &str) -> bool {
        self.sources.get(&kind).is_some_and(|s| s.contains(source))
    }

    /// Current value of a counter.
    pub fn get(&self, k: &BucketKey) -> u64 {
        self.by_kind
            .get(&k.kind)
            .and_then(|m| m.get(&k.bucket_start))
            .and_then(|b| b.get(&(k.source.clone(), k.key.clone())))
            .copied()
            .unwrap_or(0)
    }

    /// Totals per key over buckets starting in `[from, to)`.
    pub fn totals(
        &self,
        kind: AggKind,
        source: Option<&str>,
        from: Millis,
        to: Millis,
    ) -> HashMap<String, u64> {
        let mut out: HashMap<String, u64> = HashMap::new();
        if from >= to {
            return out;
        }
        if let Some(m) = self.by_kind.get(&kind) {
            for bucket in m.range(from..to).map(|(_, b)| b) {
                for ((src, key), n) in bucket {
                    if source.is_none_or(|s| s == src) {
                        *out.entry(key.clone()).or_insert(0) += n;
                    }
                }
            }
        }
        out
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

    #[test]
    fn sums_buckets_in_range_by_source() {
        let mut c = Counts::default();
        c.add(&k(0, "a", "x"), 2);
        c.add(&k(10_000, "a", "x"), 1);
        c.add(&k(10_000, "b", "y"), 5);
        c.add(&k(20_000, "a", "y"), 7);
        let t = c.totals(AggKind::Hashtag, None, 0, 20_000);
        assert_eq!((t["x"], t["y"]), (3, 5));
        let t = c.totals(AggKind::Hashtag, Some("a"), 10_000, 30_000);
        assert_eq!((t["x"], t["y"]), (1, 7));
        assert!(c.totals(AggKind::LogClass, None, 0, 99_999).is_empty());
    }
}
