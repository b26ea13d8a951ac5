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
use std::io::{BufWriter, Seek, Write};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

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

/// A sorted run, readable from any row on: in memory, or in its file of
/// fixed-size rows (read with positioned reads, so that two readers can
/// share it). Rows come out with their source and key mapped to global
/// ranks (order is kept: ranks are in name order too).
struct Run {
    rows: Stored,
    source_rank: Arc<Vec<u32>>,
    key_rank: Arc<Vec<u32>>,
}

enum Stored {
    Memory(Vec<Row>),
    File { file: std::fs::File, rows: u64 },
}

/// Rows a file reader reads at a time.
const READ_ROWS: u64 = 2048;

impl Run {
    fn len(&self) -> u64 {
        match &self.rows {
            Stored::Memory(v) => v.len() as u64,
            Stored::File { rows, .. } => *rows,
        }
    }

    /// The rows `from..to`, as stored (local ids).
    fn read(&self, from: u64, to: u64, into: &mut Vec<Row>) -> std::io::Result<()> {
        into.clear();
        match &self.rows {
            Stored::Memory(v) => {
                let (from, to) = (from as usize, (to as usize).min(v.len()));
                into.extend_from_slice(v.get(from..to).unwrap_or_default());
            }
            Stored::File { file, .. } => {
                let n = to.saturating_sub(from) as usize;
                let mut bytes = vec![0u8; n * ROW_BYTES];
                file.read_exact_at(&mut bytes, from * ROW_BYTES as u64)?;
                for chunk in bytes.chunks_exact(ROW_BYTES) {
                    let mut b = [0u8; ROW_BYTES];
                    b.copy_from_slice(chunk);
                    into.push(Row::decode(&b)?);
                }
            }
        }
        Ok(())
    }

    /// The first row whose bucket starts at or after `bucket`.
    fn first_from(&self, bucket: Millis) -> std::io::Result<u64> {
        let (mut lo, mut hi) = (0u64, self.len());
        let mut one = Vec::with_capacity(1);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            self.read(mid, mid + 1, &mut one)?;
            if one.first().is_some_and(|r| r.bucket_start < bucket) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    }

    /// Its rows `from..to` in order, with global ranks.
    fn cursor(&self, from: u64, to: u64) -> Cursor<'_> {
        Cursor {
            run: self,
            next: from,
            end: to,
            buf: Vec::new(),
            at: 0,
        }
    }
}

/// Reads one run's rows in order, a block at a time.
struct Cursor<'a> {
    run: &'a Run,
    next: u64,
    end: u64,
    buf: Vec<Row>,
    at: usize,
}

impl Cursor<'_> {
    fn next(&mut self) -> std::io::Result<Option<Row>> {
        if self.at == self.buf.len() {
            if self.next >= self.end {
                return Ok(None);
            }
            let to = self.end.min(self.next.saturating_add(READ_ROWS));
            self.run.read(self.next, to, &mut self.buf)?;
            self.next = to;
            self.at = 0;
        }
        let Some(&r) = self.buf.get(self.at) else {
            return Ok(None);
        };
        self.at += 1;
        let rank = |ranks: &[u32], id: u32| ranks.get(id as usize).copied().unwrap_or(u32::MAX);
        Ok(Some(Row {
            source: rank(&self.run.source_rank, r.source),
            key: rank(&self.run.key_rank, r.key),
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
///
/// The buckets are written in two ranges on two threads: the later range
/// into a temporary file, first reading the buckets of one baseline before
/// it for the scores, then copied after the earlier one.
pub fn write_json(
    workers: Vec<Counts>,
    out: &mut impl Write,
    scoring: &Scoring,
    bucket_ms: Millis,
) -> std::io::Result<()> {
    write_json_split(workers, out, scoring, bucket_ms, MIN_SPLIT_ROWS)
}

/// [`write_json`], splitting when the largest run holds `2 * min_split_rows`
/// rows.
fn write_json_split(
    workers: Vec<Counts>,
    out: &mut impl Write,
    scoring: &Scoring,
    bucket_ms: Millis,
    min_split_rows: u64,
) -> std::io::Result<()> {
    let (sources, source_rank) = ranks(&workers.iter().map(|w| &w.sources).collect::<Vec<_>>());
    let (keys, key_rank) = ranks(&workers.iter().map(|w| &w.keys).collect::<Vec<_>>());
    // What each worker still holds becomes one more sorted run (workers
    // have sealed theirs when their input ended).
    let mut runs: Vec<Run> = Vec::new();
    for ((mut w, source_rank), key_rank) in workers.into_iter().zip(source_rank).zip(key_rank) {
        let (source_rank, key_rank) = (Arc::new(source_rank), Arc::new(key_rank));
        w.seal();
        for held in std::mem::take(&mut w.sealed) {
            runs.push(Run {
                rows: Stored::Memory(held),
                source_rank: source_rank.clone(),
                key_rank: key_rank.clone(),
            });
        }
        for mut file in w.runs {
            let rows = file.seek(std::io::SeekFrom::End(0))? / ROW_BYTES as u64;
            runs.push(Run {
                rows: Stored::File { file, rows },
                source_rank: source_rank.clone(),
                key_rank: key_rank.clone(),
            });
        }
    }
    let json = |s: &str| serde_json::to_string(s).map_err(std::io::Error::other);
    let names = Names {
        sources: sources.iter().map(|s| json(s)).collect::<Result<_, _>>()?,
        keys: keys.iter().map(|s| json(s)).collect::<Result<_, _>>()?,
    };
    let span = i64::from(scoring.baseline_windows).saturating_mul(bucket_ms);
    let all: Vec<(u64, u64)> = runs.iter().map(|r| (0, r.len())).collect();
    // Split at the bucket of the middle row of the largest run.
    let largest = runs.iter().max_by_key(|r| r.len());
    let split = match largest {
        Some(r) if r.len() >= min_split_rows.saturating_mul(2) => {
            let mut one = Vec::new();
            r.read(r.len() / 2, r.len() / 2 + 1, &mut one)?;
            one.first().map(|row| row.bucket_start)
        }
        _ => None,
    };
    let Some(split) = split else {
        return write_rows(&runs, &all, Millis::MIN, out, &names, scoring, span);
    };
    let mut early = Vec::new();
    let mut late = Vec::new();
    for (r, &(_, len)) in runs.iter().zip(&all) {
        let at = r.first_from(split)?;
        early.push((0, at));
        late.push((r.first_from(split.saturating_sub(span))?, len));
    }
    let mut tail = tempfile::tempfile()?;
    std::thread::scope(|s| {
        let later = s.spawn(|| -> std::io::Result<()> {
            let mut w = BufWriter::with_capacity(256 * 1024, &mut tail);
            write_rows(&runs, &late, split, &mut w, &names, scoring, span)?;
            w.flush()
        });
        let first = write_rows(&runs, &early, Millis::MIN, out, &names, scoring, span);
        let second = later
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("the merging thread panicked")));
        first.and(second)
    })?;
    tail.rewind()?;
    std::io::copy(&mut tail, out)?;
    Ok(())
}

/// Rows a run must hold, twice over, before the output is split.
const MIN_SPLIT_ROWS: u64 = 50_000;

/// The JSON-quoted name of rank `i`.
fn name(names: &[String], i: u32) -> &str {
    names.get(i as usize).map_or("\"\"", String::as_str)
}

/// Source and key names by global rank, JSON-quoted.
struct Names {
    sources: Vec<String>,
    keys: Vec<String>,
}

/// Each counter's baseline: the sum of its counts in the base buckets of
/// the `span` before its own. Rows come bucket by bucket, each bucket's
/// sorted by (kind, source, key): the buckets of the span are kept as they
/// came, and each is walked in step with the bucket being written, a merge
/// over memory read in order (a map of every key's history was a cache
/// miss or two a row, most of the output's time).
struct Baselines {
    span: Millis,
    /// The buckets before the current one that are still in its span,
    /// oldest first: start, rows, and how far the current bucket's walk
    /// has read them.
    past: VecDeque<(Millis, Vec<Row>, usize)>,
    /// The current bucket's start and its rows so far.
    current: Option<(Millis, Vec<Row>)>,
}

impl Baselines {
    fn new(span: Millis) -> Self {
        Baselines {
            span,
            past: VecDeque::new(),
            current: None,
        }
    }

    /// The baseline of `row`, the next row in order; `row` joins the
    /// history.
    fn next(&mut self, row: Row) -> u64 {
        if self
            .current
            .as_ref()
            .is_none_or(|(b, _)| *b != row.bucket_start)
        {
            let mut spare = Vec::new();
            if let Some((b, rows)) = self.current.take() {
                self.past.push_back((b, rows, 0));
            }
            let from = row.bucket_start.saturating_sub(self.span);
            while self.past.front().is_some_and(|(b, ..)| *b < from) {
                if let Some((_, rows, _)) = self.past.pop_front() {
                    spare = rows;
                }
            }
            for (_, _, at) in &mut self.past {
                *at = 0;
            }
            spare.clear();
            self.current = Some((row.bucket_start, spare));
        }
        let id = (row.kind, row.source, row.key);
        let mut sum = 0u64;
        for (_, rows, at) in &mut self.past {
            while let Some(r) = rows.get(*at) {
                let here = (r.kind, r.source, r.key);
                if here > id {
                    break;
                }
                *at += 1;
                if here == id {
                    sum = sum.saturating_add(r.count);
                    break;
                }
            }
        }
        if let Some((_, rows)) = &mut self.current {
            rows.push(row);
        }
        sum
    }
}

/// Merges the rows `ranges[i]` of each run `i`, sums equal counters, and
/// writes those of buckets from `write_from` on (earlier ones only feed
/// the scores' history).
fn write_rows(
    runs: &[Run],
    ranges: &[(u64, u64)],
    write_from: Millis,
    out: &mut impl Write,
    names: &Names,
    scoring: &Scoring,
    span: Millis,
) -> std::io::Result<()> {
    let mut cursors: Vec<Cursor<'_>> = runs
        .iter()
        .zip(ranges)
        .map(|(r, &(from, to))| r.cursor(from, to))
        .collect();
    let mut heads: Vec<Option<Row>> = cursors
        .iter_mut()
        .map(Cursor::next)
        .collect::<Result<_, _>>()?;
    let mut baselines = Baselines::new(span);
    // Rows come bucket by bucket: each bucket's time is formatted once.
    let mut stamp: Option<(Millis, String)> = None;
    let mut digits = itoa::Buffer::new();
    while let Some(first) = heads.iter().flatten().map(Row::id).min() {
        // Sum this counter over every run that holds it.
        let mut row = Row {
            bucket_start: first.0,
            kind: first.1,
            source: first.2,
            key: first.3,
            count: 0,
        };
        for (head, cursor) in heads.iter_mut().zip(cursors.iter_mut()) {
            while let Some(r) = *head {
                if r.id() != first {
                    break;
                }
                row.count = row.count.saturating_add(r.count);
                *head = cursor.next()?;
            }
        }
        let baseline = baselines.next(row);
        if row.bucket_start < write_from {
            continue;
        }
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
        out.write_all(digits.format(row.count).as_bytes())?;
        out.write_all(br#","key":"#)?;
        out.write_all(name(&names.keys, row.key).as_bytes())?;
        out.write_all(br#","kind":""#)?;
        out.write_all(row.kind.as_str().as_bytes())?;
        out.write_all(br#"","score":"#)?;
        serde_json::to_writer(&mut *out, &score)?;
        out.write_all(br#","source":"#)?;
        out.write_all(name(&names.sources, row.source).as_bytes())?;
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

    /// Many buckets, keys and runs (in memory and on disk), written in two
    /// ranges on two threads and on one: the same bytes, and the totals
    /// the test added.
    #[test]
    fn the_split_output_equals_the_whole() {
        let fill = || {
            let mut workers = Vec::new();
            let mut total = 0u64;
            for w in 0..2u64 {
                let mut c = Counts::with_budget(700);
                for i in 0..6_000u64 {
                    let bucket = ((i * 7 + w * 3) % 40) as i64 * 10_000;
                    let tag = format!("k{}", (i * 31 + w) % 97);
                    let n = i % 5 + 1;
                    total += n;
                    c.add(key(bucket, AggKind::Hashtag, "s", &tag), n).unwrap();
                }
                if w == 0 {
                    c.seal();
                }
                workers.push(c);
            }
            (workers, total)
        };
        let write = |min_split: u64| {
            let (workers, total) = fill();
            let mut out = Vec::new();
            write_json_split(workers, &mut out, &scoring(), 10_000, min_split).unwrap();
            (String::from_utf8(out).unwrap(), total)
        };
        let (whole, total) = write(u64::MAX);
        let (split, _) = write(10);
        assert_eq!(whole, split);
        assert_eq!(total_count(&split), total);
        // 40 buckets x 97 keys, every pair seen.
        assert_eq!(split.lines().count(), 40 * 97);
    }

    /// The sum of the `count` of every output line.
    fn total_count(out: &str) -> u64 {
        out.lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["count"]
                    .as_u64()
                    .unwrap()
            })
            .sum()
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
        assert_eq!(
            total_count(&in_memory),
            2 * (0..500u64).map(|i| i % 4 + 1).sum::<u64>() + 6
        );
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
