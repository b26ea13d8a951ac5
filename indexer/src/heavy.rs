//! A bounded heavy-hitters summary (Space-Saving: Metwally, Agrawal and
//! El Abbadi, "Efficient Computation of Frequent and Top-k Elements in Data
//! Streams", ICDT 2005), so that a base bucket with more distinct keys than
//! the key budget still answers top-N in bounded memory.
//!
//! At most `capacity` counters. A key already held is incremented; a new key
//! takes a free counter, or else replaces the key with the smallest count and
//! inherits that count (recorded as the counter's error). Guarantees, for
//! weighted increments: a held key's count overestimates its true count by at
//! most its error, which is at most [`SpaceSaving::max_error`] (the smallest
//! count once full, 0 before); a key not held has a true count of at most
//! that bound too. Every key whose true count exceeds the bound is held.
//!
//! Counters sit in a `BTreeSet` ordered by (count, slot), so the minimum is
//! found and replaced in O(log capacity) per update.

use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;

/// The summary.
#[derive(Debug, Clone)]
pub struct SpaceSaving<K: Hash + Eq + Clone> {
    capacity: usize,
    /// Key → slot.
    slots: HashMap<K, usize>,
    /// Slot → (key, count, error).
    counters: Vec<(K, u64, u64)>,
    /// (count, slot), smallest first.
    order: BTreeSet<(u64, usize)>,
}

impl<K: Hash + Eq + Clone> SpaceSaving<K> {
    /// An empty summary of at most `capacity` counters (at least 1).
    pub fn new(capacity: usize) -> Self {
        SpaceSaving {
            capacity: capacity.max(1),
            slots: HashMap::new(),
            counters: Vec::new(),
            order: BTreeSet::new(),
        }
    }

    /// Adds `n` occurrences of `key`.
    pub fn add(&mut self, key: &K, n: u64) {
        if n == 0 {
            return;
        }
        if let Some(&slot) = self.slots.get(key) {
            let c = &mut self.counters[slot];
            self.order.remove(&(c.1, slot));
            c.1 = c.1.saturating_add(n);
            self.order.insert((c.1, slot));
            return;
        }
        if self.counters.len() < self.capacity {
            let slot = self.counters.len();
            self.counters.push((key.clone(), n, 0));
            self.slots.insert(key.clone(), slot);
            self.order.insert((n, slot));
            return;
        }
        let Some((min, slot)) = self.order.pop_first() else {
            return;
        };
        let c = &mut self.counters[slot];
        self.slots.remove(&c.0);
        *c = (key.clone(), min.saturating_add(n), min);
        self.slots.insert(key.clone(), slot);
        self.order.insert((c.1, slot));
    }

    /// The estimated count of `key` (an overestimate by at most its error), 0
    /// when not held.
    pub fn estimate(&self, key: &K) -> u64 {
        self.slots.get(key).map_or(0, |&s| self.counters[s].1)
    }

    /// Largest possible difference between [`estimate`](Self::estimate) and
    /// the true count, for any key: the smallest count once every counter
    /// is taken, else 0 (every key seen is held exactly).
    pub fn max_error(&self) -> u64 {
        if self.counters.len() < self.capacity {
            0
        } else {
            self.order.first().map_or(0, |(c, _)| *c)
        }
    }

    /// Every held key with its estimated count.
    pub fn iter(&self) -> impl Iterator<Item = (&K, u64)> {
        self.counters.iter().map(|(k, c, _)| (k, *c))
    }

    /// Every held key with its estimated count and that estimate's error
    /// (the count it inherited; its true count is at least count − error).
    pub fn entries(&self) -> impl Iterator<Item = (&K, u64, u64)> {
        self.counters.iter().map(|(k, c, e)| (k, *c, *e))
    }

    /// Number of held keys.
    pub fn len(&self) -> usize {
        self.counters.len()
    }

    /// True when nothing was added.
    pub fn is_empty(&self) -> bool {
        self.counters.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_until_full() {
        let mut s = SpaceSaving::new(3);
        s.add(&"a", 2);
        s.add(&"b", 1);
        s.add(&"a", 1);
        assert_eq!(
            (s.estimate(&"a"), s.estimate(&"b"), s.max_error()),
            (3, 1, 0)
        );
        s.add(&"c", 5);
        assert_eq!(s.max_error(), 1, "full: the smallest count");
        // d replaces b (count 1): estimate 1 + 4, error 1.
        s.add(&"d", 4);
        assert_eq!((s.estimate(&"b"), s.estimate(&"d")), (0, 5));
        assert_eq!(s.len(), 3);
    }

    /// Against exact counts computed independently, on a skewed stream:
    /// every estimate within the bound, every key above the bound held.
    #[test]
    fn error_bound_and_heavy_keys_hold_on_a_skewed_stream() {
        let mut s = SpaceSaving::new(50);
        let mut exact: HashMap<u32, u64> = HashMap::new();
        let mut x: u64 = 12345;
        for _ in 0..20_000 {
            // xorshift; key = floor of a heavy-tailed draw.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let u = (x % 1_000_000) as f64 / 1_000_000.0;
            let key = (1.0 / (1.0 - u * 0.999)).floor() as u32;
            let w = 1 + (x >> 40) % 3;
            s.add(&key, w);
            *exact.entry(key).or_insert(0) += w;
        }
        let bound = s.max_error();
        assert!(bound > 0, "the summary filled up");
        for (k, est, err) in s.entries() {
            assert!(err <= bound && est - err <= exact[k], "{k}: lower bound");
        }
        for (k, &n) in &exact {
            let est = s.estimate(k);
            if est > 0 {
                assert!(
                    est >= n && est - n <= bound,
                    "{k}: {est} vs {n}, bound {bound}"
                );
            } else {
                assert!(n <= bound, "{k} ({n}) above the bound {bound} was dropped");
            }
        }
        let total: u64 = exact.values().sum();
        let held: u64 = s.iter().map(|(_, c)| c).sum();
        assert_eq!(held, total, "Space-Saving keeps the stream total");
    }
}
