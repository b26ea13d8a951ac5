//! A processor's pending base-bucket counters. Almost every increment hits
//! a counter that already exists (a busy key in the current bucket), so a
//! counter is looked up by borrowed source and key and allocates only when
//! it is new: per-record allocation was the largest cost in the profile of
//! `farol batch`.

use farol_common::model::{AggKind, BucketKey};
use farol_common::time::Millis;
use hashbrown::{Equivalent, HashMap};
use std::hash::{Hash, Hasher};

/// A counter's identity, borrowed. It hashes and compares exactly as the
/// [`BucketKey`] it names, so it finds that key in a map.
#[derive(Debug, Clone, Copy)]
pub struct KeyRef<'a> {
    /// Start of the base bucket (epoch ms).
    pub bucket_start: Millis,
    /// What is counted.
    pub kind: AggKind,
    /// Source name.
    pub source: &'a str,
    /// Hashtag, class or template id.
    pub key: &'a str,
}

impl Hash for KeyRef<'_> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        // The writes `#[derive(Hash)]` makes for `BucketKey`, field by field
        // in declaration order (a `String` hashes as its `str`).
        self.bucket_start.hash(h);
        self.kind.hash(h);
        self.source.hash(h);
        self.key.hash(h);
    }
}

impl Equivalent<BucketKey> for KeyRef<'_> {
    fn equivalent(&self, k: &BucketKey) -> bool {
        self.bucket_start == k.bucket_start
            && self.kind == k.kind
            && self.source == k.source
            && self.key == k.key
    }
}

impl KeyRef<'_> {
    /// The owned key.
    pub fn to_key(self) -> BucketKey {
        BucketKey {
            bucket_start: self.bucket_start,
            kind: self.kind,
            source: self.source.to_string(),
            key: self.key.to_string(),
        }
    }
}

/// Counts per base bucket, kind, source and key since the last drain.
#[derive(Debug, Default)]
pub struct Counters {
    map: HashMap<BucketKey, u64>,
}

impl Counters {
    /// Adds one to the counter `k`.
    pub fn increment(&mut self, k: KeyRef<'_>) {
        match self.map.get_mut(&k) {
            Some(n) => *n += 1,
            None => {
                self.map.insert(k.to_key(), 1);
            }
        }
    }

    /// Takes every counter, leaving none.
    pub fn drain(&mut self) -> Vec<(BucketKey, u64)> {
        self.map.drain().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn a_borrowed_key_hashes_and_compares_as_the_owned_one() {
        let owned = BucketKey {
            bucket_start: -10_000,
            kind: AggKind::LogTemplate,
            source: "web".into(),
            key: "ab".into(),
        };
        let borrowed = KeyRef {
            bucket_start: -10_000,
            kind: AggKind::LogTemplate,
            source: "web",
            key: "ab",
        };
        let s = hashbrown::DefaultHashBuilder::default();
        assert_eq!(s.hash_one(&owned), s.hash_one(borrowed));
        assert!(borrowed.equivalent(&owned));
        // "we" + "bab" must not be "web" + "ab".
        let shifted = KeyRef {
            source: "we",
            key: "bab",
            ..borrowed
        };
        assert!(!shifted.equivalent(&owned));
        assert_ne!(s.hash_one(&owned), s.hash_one(shifted));
    }

    #[test]
    fn increments_add_up_per_key() {
        let mut c = Counters::default();
        let k = |key| KeyRef {
            bucket_start: 0,
            kind: AggKind::Hashtag,
            source: "p",
            key,
        };
        for key in ["rust", "go", "rust", "rust"] {
            c.increment(k(key));
        }
        let mut got = c.drain();
        got.sort();
        assert_eq!(got, vec![(k("go").to_key(), 1), (k("rust").to_key(), 3)]);
        assert!(c.drain().is_empty());
    }
}
