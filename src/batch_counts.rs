//! The base-bucket totals `farol batch --format json` accumulates and
//! writes. Each worker keeps its own: source names and keys interned once,
//! each counter a fixed-size entry (about 40 bytes instead of two heap
//! strings). At the end the workers' counters are not merged into one map:
//! each is turned into a sorted run, one worker at a time, and the runs are
//! merged while they are written, sorted as `BucketKey` sorts (bucket,
//! kind, source, key), so that the peak holds each counter once.

use farol_common::model::{AggKind, BucketKey};
use farol_common::time::{rfc3339, Millis};
use farol_indexer::score::Scoring;
use hashbrown::HashMap;
use std::collections::VecDeque;
use std::io::Write;

/// Strings stored once, named by their index.
#[derive(Debug, Default)]
struct Interner {
    ids: HashMap<String, u32>,
    names: Vec<String>,
}

impl Interner {
    fn id(&mut self, s: String) -> u32 {
        if let Some(&id) = self.ids.get(s.as_str()) {
            return id;
        }
        let id = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        self.names.push(s.clone());
        self.ids.insert(s, id);
        id
    }
}

/// One counter's identity, with interned source and key.
type Slot = (Millis, AggKind, u32, u32);

/// One worker's totals per base bucket, kind, source and key.
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
}

/// A counter in a sorted run: source and key by their rank in name order,
/// so that runs sort and merge by integers alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Row {
    bucket_start: Millis,
    kind: AggKind,
    source: u32,
    key: u32,
    count: u64,
}

impl Row {
    fn id(&self) -> (Millis, AggKind, u32, u32) {
        (self.bucket_start, self.kind, self.source, self.key)
    }
}

/// Every name of every worker, sorted; `rank` maps a worker's id to the
/// name's position.
fn ranks(tables: &[&Interner]) -> (Vec<String>, Vec<Vec<u32>>) {
    let mut all: Vec<&str> = tables
        .iter()
        .flat_map(|t| t.names.iter().map(String::as_str))
        .collect();
    all.sort_unstable();
    all.dedup();
    let rank = tables
        .iter()
        .map(|t| {
            t.names
                .iter()
                .map(|n| {
                    let at = all.binary_search(&n.as_str()).unwrap_or(0);
                    u32::try_from(at).unwrap_or(u32::MAX)
                })
                .collect()
        })
        .collect();
    (all.into_iter().map(str::to_string).collect(), rank)
}

/// Writes one JSON line per counter of all `workers` together,
/// `{"bucket_start","count","key","kind","score","source"}`, in `BucketKey`
/// order. The score is the counter's against the same (kind, source, key)
/// in the `baseline_windows` base buckets of `bucket_ms` before it, as
/// `/trends` scores a span.
pub fn write_json(
    workers: Vec<Counts>,
    out: &mut impl Write,
    scoring: &Scoring,
    bucket_ms: Millis,
) -> std::io::Result<()> {
    let (sources, source_rank) = ranks(&workers.iter().map(|w| &w.sources).collect::<Vec<_>>());
    let (keys, key_rank) = ranks(&workers.iter().map(|w| &w.keys).collect::<Vec<_>>());
    // One worker's map at a time becomes a sorted run.
    let mut runs: Vec<std::vec::IntoIter<Row>> = Vec::with_capacity(workers.len());
    for (i, w) in workers.into_iter().enumerate() {
        let mut run: Vec<Row> = w
            .counts
            .into_iter()
            .map(|((bucket_start, kind, s, k), count)| Row {
                bucket_start,
                kind,
                source: source_rank[i][s as usize],
                key: key_rank[i][k as usize],
                count,
            })
            .collect();
        run.sort_unstable();
        runs.push(run.into_iter());
    }
    let json = |s: &str| serde_json::to_string(s).map_err(std::io::Error::other);
    let sources: Vec<String> = sources.iter().map(|s| json(s)).collect::<Result<_, _>>()?;
    let keys: Vec<String> = keys.iter().map(|s| json(s)).collect::<Result<_, _>>()?;
    let mut heads: Vec<Option<Row>> = runs.iter_mut().map(Iterator::next).collect();
    // Each (kind, source, key)'s counts in the base buckets before the one
    // being written, oldest first, at most `baseline_windows` of them.
    let span = i64::from(scoring.baseline_windows).saturating_mul(bucket_ms);
    let mut history: HashMap<(AggKind, u32, u32), VecDeque<(Millis, u64)>> = HashMap::new();
    while let Some(first) = heads.iter().flatten().map(Row::id).min() {
        // Sum this counter over every run that holds it.
        let mut row = Row {
            bucket_start: first.0,
            kind: first.1,
            source: first.2,
            key: first.3,
            count: 0,
        };
        for (head, run) in heads.iter_mut().zip(runs.iter_mut()) {
            while let Some(r) = *head {
                if r.id() != first {
                    break;
                }
                row.count = row.count.saturating_add(r.count);
                *head = run.next();
            }
        }
        let past = history.entry((row.kind, row.source, row.key)).or_default();
        let from = row.bucket_start.saturating_sub(span);
        while past.front().is_some_and(|&(b, _)| b < from) {
            past.pop_front();
        }
        let baseline: u64 = past.iter().map(|&(_, n)| n).sum();
        past.push_back((row.bucket_start, row.count));
        let score = scoring.score(row.count, baseline);
        writeln!(
            out,
            r#"{{"bucket_start":"{}","count":{},"key":{},"kind":"{}","score":{},"source":{}}}"#,
            rfc3339(row.bucket_start),
            row.count,
            keys[row.key as usize],
            row.kind.as_str(),
            serde_json::Value::from(score),
            sources[row.source as usize],
        )?;
    }
    Ok(())
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

    fn scoring() -> Scoring {
        Scoring {
            baseline_windows: 2,
            min_count: 1,
            smoothing: 1.0,
        }
    }

    fn lines(workers: Vec<Counts>) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        write_json(workers, &mut out, &scoring(), 10_000).unwrap();
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
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
        let got: Vec<(String, String, String, u64)> = lines(vec![a, b])
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
        let mut a = Counts::default();
        a.add(key(0, AggKind::Hashtag, "p", "rust"), 1);
        a.add(key(20_000, AggKind::Hashtag, "p", "rust"), 4);
        // Another source's and another kind's counts are not its baseline.
        a.add(key(10_000, AggKind::Hashtag, "q", "rust"), 50);
        let mut b = Counts::default();
        b.add(key(10_000, AggKind::Hashtag, "p", "rust"), 1);
        b.add(key(20_000, AggKind::Hashtag, "p", "rust"), 6);
        b.add(key(10_000, AggKind::LogTemplate, "p", "rust"), 50);
        // Three buckets later: only the two before it count (0 and 0).
        b.add(key(50_000, AggKind::Hashtag, "p", "rust"), 2);
        let all = lines(vec![a, b]);
        let at = |t: &str| {
            all.iter()
                .find(|v| v["bucket_start"] == t && v["source"] == "p" && v["kind"] == "hashtag")
                .unwrap()
                .clone()
        };
        // expected = (1 + 1 + smoothing 1) / (2 + 1) = 1; z = (10 - 1) / 1.
        assert_eq!(at("1970-01-01T00:00:20Z")["count"], 10);
        assert_eq!(at("1970-01-01T00:00:20Z")["score"], 9.0);
        // expected = (0 + 1) / 3; z = (2 - 1/3) / sqrt(1/3) = 2.89 (2 decimals).
        assert_eq!(at("1970-01-01T00:00:50Z")["score"], 2.89);
    }
}
