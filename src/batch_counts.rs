//! The base-bucket totals `farol batch --format json` accumulates and
//! writes, in memory bounded whatever the input. Each worker keeps its own:
//! source names and keys interned once, each counter a fixed-size entry
//! (about 40 bytes instead of two heap strings). When a worker holds
//! [`RUN_COUNTERS`] counters they are sorted and written to a temporary
//! file (a *run*) and the map starts again; at the end every run of every
//! worker is merged while the output is written, sorted as `BucketKey`
//! sorts (bucket, kind, source, key), equal counters summed. What stays in
//! memory grows with the distinct source and key names, not with the input.

use farol_common::model::{AggKind, BucketKey};
use farol_common::time::{rfc3339, Millis};
use farol_indexer::score::Scoring;
use hashbrown::HashMap;
use std::collections::VecDeque;
use std::io::{BufReader, BufWriter, Read, Seek, Write};

/// Counters a worker holds before it writes them to a run on disk: just
/// under 7/8 of 2^18, the most a map of 2^18 buckets (about 8.5 MiB) holds
/// before it doubles.
pub const RUN_COUNTERS: usize = (1 << 18) / 8 * 7 - 1;

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
        self.insert(s)
    }

    /// [`id`](Self::id) for a name that most often repeats the one before
    /// (a batch's counters share their source): compared before hashed.
    fn id_like(&mut self, s: String, last: &mut Option<u32>) -> u32 {
        if let Some(id) = *last {
            if self.names.get(id as usize).is_some_and(|n| *n == s) {
                return id;
            }
        }
        let id = self.id(s);
        *last = Some(id);
        id
    }

    fn insert(&mut self, s: String) -> u32 {
        let id = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        self.names.push(s.clone());
        self.ids.insert(s, id);
        id
    }
}

/// One counter's identity, with interned source and key.
type Slot = (Millis, AggKind, u32, u32);

/// One worker's totals per base bucket, kind, source and key.
#[derive(Debug)]
pub struct Counts {
    sources: Interner,
    keys: Interner,
    counts: HashMap<Slot, u64>,
    /// Counters held before a run is written.
    budget: usize,
    /// Runs written so far, each sorted by names.
    runs: Vec<std::fs::File>,
    /// Counters sorted in memory by [`seal`](Self::seal), each a run.
    sealed: Vec<Vec<Row>>,
    /// The source of the last counter added.
    last_source: Option<u32>,
}

impl Default for Counts {
    fn default() -> Self {
        Counts::with_budget(RUN_COUNTERS)
    }
}

impl Counts {
    /// Totals that go to a run every `budget` counters.
    pub fn with_budget(budget: usize) -> Self {
        Counts {
            sources: Interner::default(),
            keys: Interner::default(),
            counts: HashMap::new(),
            budget: budget.max(1),
            runs: Vec::new(),
            sealed: Vec::new(),
            last_source: None,
        }
    }

    /// Sorts the counters held into a run kept in memory: a worker calls
    /// it when its input is done, so that the sorting happens on its own
    /// thread while others still work, not on the one thread that merges.
    pub fn seal(&mut self) {
        let rows = self.sorted();
        self.counts = HashMap::new();
        if !rows.is_empty() {
            self.sealed.push(rows);
        }
    }

    /// Adds one counter increment.
    pub fn add(&mut self, k: BucketKey, n: u64) -> std::io::Result<()> {
        let slot = (
            k.bucket_start,
            k.kind,
            self.sources.id_like(k.source, &mut self.last_source),
            self.keys.id(k.key),
        );
        let c = self.counts.entry(slot).or_insert(0);
        *c = c.saturating_add(n);
        if self.counts.len() >= self.budget {
            self.spill()?;
        }
        Ok(())
    }

    /// The counters held, sorted by names (local ids).
    fn sorted(&mut self) -> Vec<Row> {
        let mut rows: Vec<Row> = self
            .counts
            .drain()
            .map(|((bucket_start, kind, source, key), count)| Row {
                bucket_start,
                kind,
                source,
                key,
                count,
            })
            .collect();
        // Names ranked once, then rows sorted by integers: the same order
        // as comparing the names, without a string compare per step.
        let rank = |names: &[String]| {
            let mut ids: Vec<u32> = (0..names.len() as u32).collect();
            ids.sort_unstable_by(|&a, &b| names[a as usize].cmp(&names[b as usize]));
            let mut rank = vec![0u32; names.len()];
            for (r, &id) in ids.iter().enumerate() {
                rank[id as usize] = r as u32;
            }
            rank
        };
        let (sources, keys) = (rank(&self.sources.names), rank(&self.keys.names));
        rows.sort_unstable_by_key(|r| {
            (
                r.bucket_start,
                r.kind,
                sources[r.source as usize],
                keys[r.key as usize],
            )
        });
        rows
    }

    /// Writes the counters held to a new run and empties the map.
    fn spill(&mut self) -> std::io::Result<()> {
        let rows = self.sorted();
        let mut file = tempfile::tempfile()?;
        let mut w = BufWriter::new(&mut file);
        for r in &rows {
            w.write_all(&r.encode())?;
        }
        w.flush()?;
        drop(w);
        file.rewind()?;
        self.runs.push(file);
        Ok(())
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

/// Bytes of one row in a run file.
const ROW_BYTES: usize = 25;

impl Row {
    fn id(&self) -> (Millis, AggKind, u32, u32) {
        (self.bucket_start, self.kind, self.source, self.key)
    }

    fn encode(&self) -> [u8; ROW_BYTES] {
        let mut b = [0u8; ROW_BYTES];
        b[..8].copy_from_slice(&self.bucket_start.to_le_bytes());
        b[8] = match self.kind {
            AggKind::Hashtag => 0,
            AggKind::LogClass => 1,
            AggKind::LogTemplate => 2,
        };
        b[9..13].copy_from_slice(&self.source.to_le_bytes());
        b[13..17].copy_from_slice(&self.key.to_le_bytes());
        b[17..].copy_from_slice(&self.count.to_le_bytes());
        b
    }

    fn decode(b: &[u8; ROW_BYTES]) -> std::io::Result<Row> {
        let word = |r: std::ops::Range<usize>| -> [u8; 8] {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[r]);
            w
        };
        let half = |r: std::ops::Range<usize>| -> [u8; 4] {
            let mut w = [0u8; 4];
            w.copy_from_slice(&b[r]);
            w
        };
        Ok(Row {
            bucket_start: i64::from_le_bytes(word(0..8)),
            kind: match b[8] {
                0 => AggKind::Hashtag,
                1 => AggKind::LogClass,
                2 => AggKind::LogTemplate,
                k => return Err(std::io::Error::other(format!("run file: unknown kind {k}"))),
            },
            source: u32::from_le_bytes(half(9..13)),
            key: u32::from_le_bytes(half(13..17)),
            count: u64::from_le_bytes(word(17..25)),
        })
    }
}

/// A sorted run: in memory, or read back from its file. Rows come out with
/// their source and key mapped to global ranks (order is kept: ranks are
/// in name order too).
struct Run {
    rows: RunRows,
    source_rank: std::sync::Arc<Vec<u32>>,
    key_rank: std::sync::Arc<Vec<u32>>,
}

enum RunRows {
    Memory(std::vec::IntoIter<Row>),
    File(BufReader<std::fs::File>),
}

impl Run {
    fn next(&mut self) -> std::io::Result<Option<Row>> {
        let row = match &mut self.rows {
            RunRows::Memory(it) => it.next(),
            RunRows::File(r) => {
                let mut b = [0u8; ROW_BYTES];
                match r.read_exact(&mut b) {
                    Ok(()) => Some(Row::decode(&b)?),
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => None,
                    Err(e) => return Err(e),
                }
            }
        };
        Ok(row.map(|r| Row {
            source: self
                .source_rank
                .get(r.source as usize)
                .copied()
                .unwrap_or(u32::MAX),
            key: self
                .key_rank
                .get(r.key as usize)
                .copied()
                .unwrap_or(u32::MAX),
            ..r
        }))
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
    // What each worker still holds becomes one more sorted run (workers
    // have sealed theirs when their input ended).
    let mut runs: Vec<Run> = Vec::new();
    for ((mut w, source_rank), key_rank) in workers.into_iter().zip(source_rank).zip(key_rank) {
        let (source_rank, key_rank) = (
            std::sync::Arc::new(source_rank),
            std::sync::Arc::new(key_rank),
        );
        w.seal();
        for held in std::mem::take(&mut w.sealed) {
            runs.push(Run {
                rows: RunRows::Memory(held.into_iter()),
                source_rank: source_rank.clone(),
                key_rank: key_rank.clone(),
            });
        }
        for file in w.runs {
            runs.push(Run {
                rows: RunRows::File(BufReader::with_capacity(64 * 1024, file)),
                source_rank: source_rank.clone(),
                key_rank: key_rank.clone(),
            });
        }
    }
    let json = |s: &str| serde_json::to_string(s).map_err(std::io::Error::other);
    let sources: Vec<String> = sources.iter().map(|s| json(s)).collect::<Result<_, _>>()?;
    let keys: Vec<String> = keys.iter().map(|s| json(s)).collect::<Result<_, _>>()?;
    let mut heads: Vec<Option<Row>> = runs.iter_mut().map(Run::next).collect::<Result<_, _>>()?;
    // Each (kind, source, key)'s counts in the base buckets before the one
    // being written, oldest first, at most `baseline_windows` of them.
    let span = i64::from(scoring.baseline_windows).saturating_mul(bucket_ms);
    let mut history: HashMap<(AggKind, u32, u32), VecDeque<(Millis, u64)>> = HashMap::new();
    // Rows come bucket by bucket: each bucket's time is formatted once.
    let mut stamp: Option<(Millis, String)> = None;
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
                *head = run.next()?;
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
        if stamp.as_ref().is_none_or(|(b, _)| *b != row.bucket_start) {
            stamp = Some((row.bucket_start, rfc3339(row.bucket_start)));
        }
        let bucket = stamp.as_ref().map_or("", |(_, s)| s.as_str());
        // Written piece by piece: one `writeln!` with six arguments a row
        // was a tenth of a posts-only run.
        out.write_all(br#"{"bucket_start":""#)?;
        out.write_all(bucket.as_bytes())?;
        out.write_all(br#"","count":"#)?;
        write!(out, "{}", row.count)?;
        out.write_all(br#","key":"#)?;
        out.write_all(keys[row.key as usize].as_bytes())?;
        out.write_all(br#","kind":""#)?;
        out.write_all(row.kind.as_str().as_bytes())?;
        out.write_all(br#"","score":"#)?;
        serde_json::to_writer(&mut *out, &score)?;
        out.write_all(br#","source":"#)?;
        out.write_all(sources[row.source as usize].as_bytes())?;
        out.write_all(b"}\n")?;
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
        a.add(key(10_000, AggKind::LogClass, "web", "INFO"), 2)
            .unwrap();
        a.add(key(0, AggKind::Hashtag, "posts", "rust"), 1).unwrap();
        let mut b = Counts::default();
        b.add(key(0, AggKind::Hashtag, "posts", "go"), 1).unwrap();
        b.add(key(0, AggKind::Hashtag, "posts", "rust"), 3).unwrap();
        b.add(key(0, AggKind::Hashtag, "Posts", "\"q\""), 1)
            .unwrap();
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

    /// Counters spilled to run files every few counters are written exactly
    /// as when all stay in memory.
    #[test]
    fn runs_on_disk_merge_to_the_same_output() {
        let fill = |budget: usize| {
            let mut workers = Vec::new();
            for w in 0..2u64 {
                let mut c = Counts::with_budget(budget);
                for i in 0..500u64 {
                    let tag = format!("t{}", (i * 7 + w) % 37);
                    let kind = if i % 3 == 0 {
                        AggKind::LogClass
                    } else {
                        AggKind::Hashtag
                    };
                    let source = if (i + w) % 2 == 0 { "a" } else { "b" };
                    let bucket = ((i * 13) % 50) as i64 * 10_000;
                    c.add(key(bucket, kind, source, &tag), i % 4 + 1).unwrap();
                }
                if budget < 100 {
                    assert!(c.runs.len() > 3, "{} runs", c.runs.len());
                }
                // Worker 1 counts a little more at the end; when spilling,
                // it seals first (as a worker does when its input ends):
                // the output must not change.
                if w == 1 {
                    if budget < 100 {
                        c.seal();
                    }
                    c.add(key(0, AggKind::Hashtag, "a", "t1"), 5).unwrap();
                    c.add(key(490_000, AggKind::Hashtag, "b", "zz"), 1).unwrap();
                }
                workers.push(c);
            }
            let mut out = Vec::new();
            write_json(workers, &mut out, &scoring(), 10_000).unwrap();
            String::from_utf8(out).unwrap()
        };
        let in_memory = fill(usize::MAX);
        let spilled = fill(17);
        assert_eq!(in_memory, spilled);
        // Independent total: sum of (i % 4 + 1) over both workers, and the
        // 5 + 1 worker 1 adds at the end.
        let total: u64 = in_memory
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["count"]
                    .as_u64()
                    .unwrap()
            })
            .sum();
        assert_eq!(total, 2 * (0..500u64).map(|i| i % 4 + 1).sum::<u64>() + 6);
    }

    #[test]
    fn a_counter_is_scored_against_the_same_key_in_the_buckets_before_it() {
        let mut a = Counts::default();
        a.add(key(0, AggKind::Hashtag, "p", "rust"), 1).unwrap();
        a.add(key(20_000, AggKind::Hashtag, "p", "rust"), 4)
            .unwrap();
        // Another source's and another kind's counts are not its baseline.
        a.add(key(10_000, AggKind::Hashtag, "q", "rust"), 50)
            .unwrap();
        let mut b = Counts::default();
        b.add(key(10_000, AggKind::Hashtag, "p", "rust"), 1)
            .unwrap();
        b.add(key(20_000, AggKind::Hashtag, "p", "rust"), 6)
            .unwrap();
        b.add(key(10_000, AggKind::LogTemplate, "p", "rust"), 50)
            .unwrap();
        // Three buckets later: only the two before it count (0 and 0).
        b.add(key(50_000, AggKind::Hashtag, "p", "rust"), 2)
            .unwrap();
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
