//! The base-bucket totals `farol batch --format json` accumulates: source
//! names and keys interned once, each counter a fixed-size entry, so that
//! memory grows with the number of distinct (bucket, key) pairs at about
//! 40 bytes each instead of two heap strings each; written sorted as
//! `BucketKey` sorts (bucket, kind, source, key).

use farol_common::model::{AggKind, BucketKey};
use farol_common::time::{rfc3339, Millis};
use farol_indexer::score::Scoring;
use std::collections::HashMap;
use std::io::Write;

/// Strings stored once, named by their index.
#[derive(Debug, Default)]
struct Interner {
    ids: HashMap<String, u32>,
    names: Vec<String>,
}

impl Interner {
    fn id(&mut self, s: String) -> u32 {
        if let Some(&id) = self.ids.get(&s) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(s.clone());
        self.ids.insert(s, id);
        id
    }
}

/// One counter's identity, with interned source and key.
type Slot = (Millis, AggKind, u32, u32);

/// Totals per base bucket, kind, source and key.
#[derive(Debug, Default)]
pub struct Counts {
    sources: Interner,
    keys: Interner,
    counts: HashMap<Slot, u64>,
}

impl Counts {
    /// Adds one counter increment.
    pub fn add(&mut self, k: BucketKey, n: u64) {
        let slot = (
            k.bucket_start,
            k.kind,
            self.sources.id(k.source),
            self.keys.id(k.key),
        );
        *self.counts.entry(slot).or_insert(0) += n;
    }

    /// Adds every counter of `other` (another worker's).
    pub fn merge(&mut self, other: Counts) {
        let Counts {
            sources,
            keys,
            counts,
        } = other;
        let src: Vec<u32> = sources
            .names
            .into_iter()
            .map(|s| self.sources.id(s))
            .collect();
        let key: Vec<u32> = keys.names.into_iter().map(|s| self.keys.id(s)).collect();
        for ((start, kind, s, k), n) in counts {
            let slot = (start, kind, src[s as usize], key[k as usize]);
            *self.counts.entry(slot).or_insert(0) += n;
        }
    }

    /// Writes one JSON line per counter, `{"bucket_start","kind","source",
    /// "key","count","score"}`, in `BucketKey` order. The score is the
    /// counter's against the same (kind, source, key) in the
    /// `baseline_windows` base buckets of `bucket_ms` before it, as
    /// `/trends` scores a span.
    pub fn write_json(
        self,
        out: &mut impl Write,
        scoring: &Scoring,
        bucket_ms: Millis,
    ) -> std::io::Result<()> {
        let Counts {
            sources,
            keys,
            counts,
        } = self;
        let mut rows: Vec<(Slot, u64)> = counts.iter().map(|(s, n)| (*s, *n)).collect();
        rows.sort_unstable_by(|(a, _), (b, _)| {
            (
                a.0,
                a.1,
                &sources.names[a.2 as usize],
                &keys.names[a.3 as usize],
            )
                .cmp(&(
                    b.0,
                    b.1,
                    &sources.names[b.2 as usize],
                    &keys.names[b.3 as usize],
                ))
        });
        let json = |s: &str| serde_json::to_string(s).map_err(std::io::Error::other);
        let sources: Vec<String> = sources
            .names
            .iter()
            .map(|s| json(s))
            .collect::<Result<_, _>>()?;
        let keys: Vec<String> = keys
            .names
            .iter()
            .map(|s| json(s))
            .collect::<Result<_, _>>()?;
        for &((start, kind, s, k), n) in &rows {
            let baseline: u64 = (1..=i64::from(scoring.baseline_windows))
                .filter_map(|i| {
                    let prev = start.checked_sub(i.checked_mul(bucket_ms)?)?;
                    counts.get(&(prev, kind, s, k)).copied()
                })
                .sum();
            let score = scoring.score(n, baseline);
            writeln!(
                out,
                r#"{{"bucket_start":"{}","count":{n},"key":{},"kind":"{}","score":{},"source":{}}}"#,
                rfc3339(start),
                keys[k as usize],
                kind.as_str(),
                serde_json::Value::from(score),
                sources[s as usize],
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(start: Millis, kind: AggKind, source: &str, key: &str) -> BucketKey {
        BucketKey {
            bucket_start: start,
            kind,
            source: source.into(),
            key: key.into(),
        }
    }

    #[test]
    fn merged_workers_write_what_one_map_would() {
        let mut a = Counts::default();
        a.add(key(10_000, AggKind::LogClass, "web", "INFO"), 2);
        a.add(key(0, AggKind::Hashtag, "posts", "rust"), 1);
        let mut b = Counts::default();
        b.add(key(0, AggKind::Hashtag, "posts", "go"), 1);
        b.add(key(0, AggKind::Hashtag, "posts", "rust"), 3);
        b.add(key(0, AggKind::Hashtag, "Posts", "\"q\""), 1);
        a.merge(b);
        let mut out = Vec::new();
        let scoring = Scoring {
            baseline_windows: 2,
            min_count: 1,
            smoothing: 1.0,
        };
        a.write_json(&mut out, &scoring, 10_000).unwrap();
        let lines: Vec<serde_json::Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let got: Vec<(String, String, String, u64)> = lines
            .iter()
            .map(|v| {
                (
                    v["bucket_start"].as_str().unwrap().to_string(),
                    v["source"].as_str().unwrap().to_string(),
                    v["key"].as_str().unwrap().to_string(),
                    v["count"].as_u64().unwrap(),
                )
            })
            .collect();
        let at = |s: &str, src: &str, k: &str, n| (s.to_string(), src.into(), k.into(), n);
        assert_eq!(
            got,
            vec![
                at("1970-01-01T00:00:00Z", "Posts", "\"q\"", 1),
                at("1970-01-01T00:00:00Z", "posts", "go", 1),
                at("1970-01-01T00:00:00Z", "posts", "rust", 4),
                at("1970-01-01T00:00:10Z", "web", "INFO", 2),
            ]
        );
    }

    #[test]
    fn a_counter_is_scored_against_the_same_key_in_the_buckets_before_it() {
        let mut c = Counts::default();
        c.add(key(0, AggKind::Hashtag, "p", "rust"), 1);
        c.add(key(10_000, AggKind::Hashtag, "p", "rust"), 1);
        c.add(key(20_000, AggKind::Hashtag, "p", "rust"), 10);
        // Another source's and another kind's counts are not its baseline.
        c.add(key(10_000, AggKind::Hashtag, "q", "rust"), 50);
        c.add(key(10_000, AggKind::LogTemplate, "p", "rust"), 50);
        let scoring = Scoring {
            baseline_windows: 2,
            min_count: 1,
            smoothing: 1.0,
        };
        let mut out = Vec::new();
        c.write_json(&mut out, &scoring, 10_000).unwrap();
        let text = String::from_utf8(out).unwrap();
        let last = text
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .find(|v| v["bucket_start"] == "1970-01-01T00:00:20Z")
            .unwrap();
        // expected = (1 + 1 + smoothing 1) / (2 + 1) = 1; z = (10 - 1) / 1.
        assert_eq!(last["score"], 9.0);
        assert_eq!(last["count"], 10);
    }
}
