//! Memory bound and accuracy of the embedded index's trend counters
//! (issue 14), reported in BENCHMARKS.md.
//!
//! `trends_memory hour DIR [--no-range]` feeds one hour of base buckets
//! holding 10 M distinct hashtags: a Zipf head (`z1`…: key r counted
//! ⌊50 000 / r⌋ times) and a long tail of keys counted once, plus 100
//! planted keys (`p0`…`p99`, 60 000 + 1 000·i times each). It prints memory
//! at stages (RSS from `/proc/self/status`, live heap from a counting
//! global allocator), the counters held, then the 1 h window's top 100 and
//! a `from`/`to` range over the hour (unless `--no-range`). Only after
//! that, with the index dropped, does it compute the exact totals on its
//! own (the same stream summed into a plain `HashMap`, checked against the
//! generator's closed form) and report top-100 recall and the largest
//! count error of each answer against them.
//!
//! `trends_memory counts DIR` feeds the same hour to the in-memory
//! counters alone, without the index: what the counters cost by
//! themselves.
//!
//! `trends_memory week DIR` writes a week of buckets (26 keys a bucket);
//! `trends_memory reopen DIR` then measures, in a fresh process, how long
//! opening takes and the RSS after it.
//!
//! Run in release: `cargo run --release -p farol-indexer --example trends_memory -- hour /tmp/x`.

use farol_common::model::{AggKind, Batch, BucketKey, StreamState};
use farol_common::time::{Millis, Window};
use farol_indexer::counts::CountLimits;
use farol_indexer::embedded::EmbeddedIndex;
use farol_indexer::{Index, TrendSort, TrendsQuery, TrendsRange};
use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// The system allocator, counting the bytes live on the heap and their
/// peak, so that RSS can be split into live heap and the rest (allocator
/// slack, mapped index files, stacks).
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged to the system allocator.
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            let now = LIVE.fetch_add(l.size(), Ordering::Relaxed) + l.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(p, l) };
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged to the system allocator.
        let q = unsafe { System.realloc(p, l, new) };
        if !q.is_null() {
            if new >= l.size() {
                let now = LIVE.fetch_add(new - l.size(), Ordering::Relaxed) + new - l.size();
                PEAK.fetch_max(now, Ordering::Relaxed);
            } else {
                LIVE.fetch_sub(l.size() - new, Ordering::Relaxed);
            }
        }
        q
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const MIB: usize = 1024 * 1024;

/// One line of memory figures: RSS (anonymous and file-backed), its peak,
/// and the live heap and its peak as the counting allocator sees them.
fn probe(stage: &str) -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
            / 1024
    };
    let line = format!(
        "{stage}: RSS {} MiB (anon {}, file {}), peak RSS {} MiB; heap live {} MiB, heap peak {} MiB",
        field("VmRSS:"),
        field("RssAnon:"),
        field("RssFile:"),
        field("VmHWM:"),
        LIVE.load(Ordering::Relaxed) / MIB,
        PEAK.load(Ordering::Relaxed) / MIB,
    );
    eprintln!("{line}");
    line
}

/// 2024-01-01T00:00:00Z
const T0: Millis = 1_704_067_200_000;
const BUCKET: Millis = 10_000;
const HOUR_BUCKETS: i64 = 360;
const DISTINCT: u64 = 10_000_000;
const HEAD: u64 = 50_000;
const PLANTED: u64 = 100;

fn planted_total(p: u64) -> u64 {
    60_000 + 1_000 * p
}

fn zipf_total(r: u64) -> u64 {
    if r <= HEAD {
        HEAD / r
    } else {
        1
    }
}

/// The exact count of a generated key over the hour.
fn truth(key: &str) -> u64 {
    if let Some(p) = key.strip_prefix('p').and_then(|p| p.parse().ok()) {
        planted_total(p)
    } else if let Some(r) = key.strip_prefix('z').and_then(|r| r.parse().ok()) {
        zipf_total(r)
    } else {
        0
    }
}

/// Occurrences of a key counted `total` times, spread round-robin over the
/// hour's buckets from `offset`, that fall in bucket `b`.
fn share(total: u64, offset: u64, b: u64) -> u64 {
    let n = HOUR_BUCKETS as u64;
    total / n + u64::from((b + n - offset % n) % n < total % n)
}

fn rss() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
            / 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn stream(end: Millis, n: u64) -> (String, StreamState) {
    (
        "bench:1".into(),
        StreamState {
            source: "bench".into(),
            applied_end: n,
            line_no: n,
            max_ts: Some(end - 1),
            last_ts: Some(end - 1),
            watermark: Some(end),
            wall_ms: None,
            templates: None,
        },
    )
}

fn key(b: Millis, kind: AggKind, k: String) -> BucketKey {
    BucketKey {
        bucket_start: b,
        kind,
        source: "bench".into(),
        key: k,
    }
}

fn window_query(name: &str, size: Millis, slide: Millis, limit: usize) -> TrendsQuery {
    TrendsQuery {
        kind: AggKind::Hashtag,
        source: None,
        limit,
        range: TrendsRange::Window {
            window: Window {
                name: name.into(),
                size,
                slide,
            },
            at: None,
        },
        sort: TrendSort::Count,
        scoring: Default::default(),
    }
}

/// The counters of base bucket `b` of the hour, shuffled by `rng`.
fn bucket_counts(b: u64, rng: &mut fastrand::Rng) -> Vec<(BucketKey, u64)> {
    let start = T0 + b as i64 * BUCKET;
    let mut counts: Vec<(BucketKey, u64)> = Vec::new();
    for p in 0..PLANTED {
        let n = share(planted_total(p), p * 13, b);
        if n > 0 {
            counts.push((key(start, AggKind::Hashtag, format!("p{p}")), n));
        }
    }
    for r in 1..=HEAD {
        let n = share(zipf_total(r), r * 7, b);
        if n > 0 {
            counts.push((key(start, AggKind::Hashtag, format!("z{r}")), n));
        }
    }
    // The tail: key r (counted once) falls in bucket r mod 360.
    let first = HEAD
        + 1
        + (b + HOUR_BUCKETS as u64 - (HEAD + 1) % HOUR_BUCKETS as u64) % HOUR_BUCKETS as u64;
    let mut r = first;
    while r <= DISTINCT {
        counts.push((key(start, AggKind::Hashtag, format!("z{r}")), 1));
        r += HOUR_BUCKETS as u64;
    }
    rng.shuffle(&mut counts);
    counts
}

/// Keys and counts, count descending then key ascending.
type TopKeys = Vec<(String, u64)>;

/// Exact totals of the hour, computed independently of the product: the
/// same generated stream summed into a plain `HashMap` (not the index,
/// not the product's counters), checked against the generator's closed
/// form. Returns the totals and the true top 100 (count desc, key asc).
fn independent_truth() -> anyhow::Result<(HashMap<String, u64>, TopKeys)> {
    let mut rng = fastrand::Rng::with_seed(14);
    let mut exact: HashMap<String, u64> = HashMap::new();
    for b in 0..HOUR_BUCKETS as u64 {
        for (k, n) in bucket_counts(b, &mut rng) {
            *exact.entry(k.key).or_insert(0) += n;
        }
    }
    let mut top: Vec<(String, u64)> = exact.iter().map(|(k, n)| (k.clone(), *n)).collect();
    top.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    top.truncate(100);
    anyhow::ensure!(exact.len() as u64 == DISTINCT + PLANTED, "distinct keys");
    for (k, n) in &exact {
        anyhow::ensure!(*n == truth(k), "{k}: summed {n}, closed form {}", truth(k));
    }
    Ok((exact, top))
}

/// Top-100 recall against the true top 100 and the largest count error
/// of the answered items against the exact totals.
fn score(
    items: &[farol_indexer::TrendItem],
    exact: &HashMap<String, u64>,
    top: &[(String, u64)],
) -> (usize, u64) {
    let want: HashSet<&str> = top.iter().map(|(k, _)| k.as_str()).collect();
    let recall = items
        .iter()
        .filter(|i| want.contains(i.key.as_str()))
        .count();
    let err = items
        .iter()
        .map(|i| i.count.abs_diff(exact.get(&i.key).copied().unwrap_or(0)))
        .max()
        .unwrap_or(0);
    (recall, err)
}

/// `counts`: the same hour fed to the in-memory counters alone (no
/// index), committing and evicting after each bucket as the index does:
/// what the counters themselves cost.
fn counts_only() -> anyhow::Result<()> {
    use farol_indexer::counts::Counts;
    probe("start");
    let mut c = Counts::new(CountLimits::default());
    let mut rng = fastrand::Rng::with_seed(14);
    for b in 0..HOUR_BUCKETS as u64 {
        let start = T0 + b as i64 * BUCKET;
        let counts = bucket_counts(b, &mut rng);
        for (k, n) in &counts {
            c.add(k, *n);
        }
        drop(counts);
        let (abs, deltas) = c.take_writes();
        drop((abs, deltas));
        // As a commit does once the index's reader sees the writes.
        c.settle();
        c.evict(&[stream(start + BUCKET, b + 1)].into_iter().collect());
        if b % 60 == 59 {
            probe(&format!("bucket {}, held {:?}", b + 1, c.held()));
        }
    }
    probe("end");
    Ok(())
}

async fn hour(dir: &Path, range: bool) -> anyhow::Result<()> {
    probe("start");
    let ix = EmbeddedIndex::open_with(dir, 64, CountLimits::default())?;
    let started = Instant::now();
    let mut rng = fastrand::Rng::with_seed(14);
    let mut events = 0u64;
    let mut distinct = 0u64;
    for b in 0..HOUR_BUCKETS as u64 {
        let start = T0 + b as i64 * BUCKET;
        let counts = bucket_counts(b, &mut rng);
        events += counts.iter().map(|(_, n)| n).sum::<u64>();
        distinct += counts.len() as u64;
        ix.apply(Batch {
            counts,
            streams: vec![stream(start + BUCKET, b + 1)],
            ..Batch::default()
        })
        .await?;
        ix.commit().await?;
        if b % 20 == 19 {
            probe(&format!(
                "bucket {}, {:.0} s, held {:?}",
                b + 1,
                started.elapsed().as_secs_f64(),
                ix.counters_held()
            ));
        }
    }
    let fed = started.elapsed();
    println!(
        "fed {events} hashtag occurrences, {distinct} (bucket, key) counters, in {:.1} s",
        fed.as_secs_f64()
    );
    let mut report = vec![probe("after the hour")];
    let (exact, summarised, buckets) = ix.counters_held();
    println!("held: {exact} exact counters, {summarised} summarised, {buckets} buckets");

    let t = Instant::now();
    let w = ix
        .trends(window_query("1h", 3_600_000, 300_000, 100))
        .await?;
    let window_took = t.elapsed();
    report.push(probe("after the 1h window"));

    let range = if range {
        let t = Instant::now();
        let r = ix
            .trends(TrendsQuery {
                range: TrendsRange::Between {
                    from: T0,
                    to: T0 + HOUR_BUCKETS * BUCKET,
                },
                ..window_query("1h", 3_600_000, 300_000, 100)
            })
            .await?;
        let took = t.elapsed();
        report.push(probe("after the range"));
        Some((r, took))
    } else {
        None
    };
    drop(ix);
    // Everything measured above; the truth below needs ~1 GiB of its own.
    let t = Instant::now();
    let (exact, top) = independent_truth()?;
    println!(
        "independent truth: {} distinct keys summed in {:.1} s; true top 100 from {} ({}) to {} ({})",
        exact.len(),
        t.elapsed().as_secs_f64(),
        top[0].0,
        top[0].1,
        top[99].0,
        top[99].1
    );
    let (recall, max_err) = score(&w.items, &exact, &top);
    println!(
        "1h window {}..{}: top-100 recall {recall}/100, largest count error {max_err}, \
         approximate {} max_error {:?}, answered in {:.0} ms",
        w.from.as_deref().unwrap_or_default(),
        w.to.as_deref().unwrap_or_default(),
        w.approximate,
        w.max_error,
        window_took.as_secs_f64() * 1000.0
    );
    if let Some((r, took)) = range {
        let (recall, max_err) = score(&r.items, &exact, &top);
        println!(
            "range over the hour: top-100 recall {recall}/100, largest count error {max_err}, \
             approximate {} max_error {:?}, answered in {:.1} s",
            r.approximate,
            r.max_error,
            took.as_secs_f64()
        );
    }
    for line in report {
        println!("{line}");
    }
    Ok(())
}

const WEEK_BUCKETS: i64 = 7 * 24 * 360;

async fn week(dir: &Path) -> anyhow::Result<()> {
    let ix = EmbeddedIndex::open_with(dir, 64, CountLimits::default())?;
    let started = Instant::now();
    let classes = ["INFO", "WARN", "ERROR", "DEBUG", "TRACE", "FATAL"];
    let mut written = 0u64;
    for b in 0..WEEK_BUCKETS {
        let start = T0 + b * BUCKET;
        let mut counts = Vec::new();
        for k in 0..20u64 {
            // 20 of 200 hashtags each bucket, rotating.
            let tag = (b as u64 * 7 + k * 10) % 200;
            counts.push((key(start, AggKind::Hashtag, format!("t{tag}")), 1 + k));
        }
        for (i, c) in classes.iter().enumerate() {
            counts.push((key(start, AggKind::LogClass, c.to_string()), 10 + i as u64));
        }
        written += counts.len() as u64;
        ix.apply(Batch {
            counts,
            streams: vec![stream(start + BUCKET, b as u64 + 1)],
            ..Batch::default()
        })
        .await?;
        if b % 60 == 59 {
            ix.commit().await?;
        }
    }
    ix.commit().await?;
    println!(
        "a week: {WEEK_BUCKETS} buckets, {written} counters written in {:.1} s; held {:?}",
        started.elapsed().as_secs_f64(),
        ix.counters_held()
    );
    Ok(())
}

async fn reopen(dir: &Path) -> anyhow::Result<()> {
    let (rss0, _) = rss();
    let t = Instant::now();
    let ix = EmbeddedIndex::open_with(dir, 64, CountLimits::default())?;
    let took = t.elapsed();
    let (rss1, hwm) = rss();
    println!(
        "reopen: {:.2} s, RSS {rss0} MiB before, {rss1} MiB after (peak {hwm}), held {:?}",
        took.as_secs_f64(),
        ix.counters_held()
    );
    let t = Instant::now();
    let w = ix
        .trends(window_query("1h", 3_600_000, 300_000, 10))
        .await?;
    println!(
        "1h window after reopen: {} items, {:.0} ms",
        w.items.len(),
        t.elapsed().as_secs_f64() * 1000.0
    );
    let t = Instant::now();
    let mut q = window_query("1h", 3_600_000, 300_000, 10);
    q.kind = AggKind::LogClass;
    q.range = TrendsRange::Between {
        from: T0,
        to: T0 + WEEK_BUCKETS * BUCKET,
    };
    let r = ix.trends(q).await?;
    let total: u64 = r.items.iter().map(|i| i.count).sum();
    let want: u64 = (10..16).sum::<u64>() * WEEK_BUCKETS as u64;
    println!(
        "log_class totals over the week from the index: {total} (expected {want}), {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let (rss2, hwm) = rss();
    println!("RSS at the end: {rss2} MiB, peak {hwm} MiB");
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(mode), Some(dir)) = (args.get(1), args.get(2)) else {
        anyhow::bail!("usage: trends_memory hour|counts|week|reopen DIR [--no-range]");
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let dir = Path::new(dir);
    rt.block_on(async {
        match mode.as_str() {
            "hour" => hour(dir, !args.iter().any(|a| a == "--no-range")).await,
            "counts" => counts_only(),
            "week" => week(dir).await,
            "reopen" => reopen(dir).await,
            m => anyhow::bail!("unknown mode {m}"),
        }
    })
}
