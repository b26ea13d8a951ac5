//! `farol bench`: the end-to-end load generator. It starts the whole
//! pipeline in-process on a scratch data dir, appends log lines stamped with
//! the current time to a file at a target rate, and measures two latencies
//! for every line, each into an HdrHistogram:
//!
//! - **write → visible**: until the line is counted in a `/trends` answer.
//!   A probe asks the index the `/trends` question (log classes of the
//!   bench source over a span holding every line) every millisecond; a
//!   line is visible once the answer's total reaches it. The time taken is
//!   the end of the answer that first showed it (an upper bound, ≤ 1 ms
//!   plus one answer late).
//! - **write → durable**: until its acknowledgement, the moment its effects
//!   are committed in the index and its source checkpoint may move.

use crate::pipeline;
use anyhow::Context;
use farol_common::config::{Config, FormatSpec, LogSourceConfig, ReadFrom};
use farol_common::model::AggKind;
use farol_indexer::query::{TrendSort, TrendsQuery, TrendsRange};
use hdrhistogram::Histogram;
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What to generate.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// How long to write.
    pub duration: Duration,
    /// Lines per second (0: as fast as the writer can).
    pub rate: u64,
    /// Approximate bytes per line.
    pub line_bytes: usize,
    /// Whether every line is indexed as an event document (`index.events`).
    pub events: bool,
    /// Whether log lines are mined for templates (`processor.templates`).
    pub templates: bool,
    /// Files written in turn, each its own source `bench-N`.
    pub files: usize,
}

/// Unacknowledged lines the writer may run ahead by in `--rate 0` mode.
const MAX_BACKLOG: u64 = 2_000_000;

/// One written batch of lines.
#[derive(Debug, Clone, Copy)]
struct Written {
    /// File offset just past the batch.
    end: u64,
    /// Lines in the batch.
    lines: u64,
    /// Lines written to its file up to and including this batch.
    total: u64,
    /// When the write returned.
    at: Instant,
}

/// Batches written and not yet durable (`durable`) or visible (`visible`),
/// by file.
struct Queues {
    durable: Vec<VecDeque<Written>>,
    visible: Vec<VecDeque<Written>>,
}

impl Queues {
    fn new(files: usize) -> Queues {
        Queues {
            durable: vec![VecDeque::new(); files],
            visible: vec![VecDeque::new(); files],
        }
    }
}

type Pending = Arc<Mutex<Queues>>;

/// How often the visibility probe asks `/trends`.
const PROBE_EVERY: Duration = Duration::from_millis(1);

fn peak_rss_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: u64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb / 1024)
}

fn writer(
    paths: Vec<std::path::PathBuf>,
    opts: BenchOptions,
    pending: Pending,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<u64> {
    let mut files = paths
        .iter()
        .map(|path| {
            std::fs::OpenOptions::new()
                .append(true)
                .open(path)
                .with_context(|| format!("opening {}", path.display()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut offsets = vec![0u64; files.len()];
    let mut totals = vec![0u64; files.len()];
    let mut turn = 0usize;
    let levels = ["INFO", "WARN", "ERROR", "DEBUG", "INFO"];
    let pad = "x".repeat(opts.line_bytes.saturating_sub(60));
    let per_batch = if opts.rate == 0 {
        1000
    } else {
        (opts.rate / 100).max(1)
    };
    let start = Instant::now();
    let mut i = 0u64;
    let mut buf = String::new();
    while start.elapsed() < opts.duration && !stop.load(Ordering::Relaxed) {
        if opts.rate > 0 {
            let due = Duration::from_secs_f64(i as f64 / opts.rate as f64);
            if let Some(w) = due.checked_sub(start.elapsed()) {
                std::thread::sleep(w);
            }
        } else {
            // Closed loop: stay at most MAX_BACKLOG lines ahead of the
            // acknowledgements, so the pipeline runs at its own best rate.
            while pending
                .lock()
                .map(|q| q.durable.iter().flatten().map(|w| w.lines).sum::<u64>() > MAX_BACKLOG)
                .unwrap_or(false)
                && start.elapsed() < opts.duration
            {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        buf.clear();
        // Stamped now: the lines are on time, and their counts stay in the
        // index's memory for the whole run.
        let stamp = chrono::Utc::now()
            .format("%Y-%m-%d %H:%M:%S,%3f")
            .to_string();
        for _ in 0..per_batch {
            // Into the buffer, no string a line: the writer shares the cores.
            let _ = writeln!(
                buf,
                "{stamp} {} [bench] seq={i} {pad}",
                levels[(i % 5) as usize]
            );
            i += 1;
        }
        let file = turn % files.len();
        turn = turn.wrapping_add(1);
        files[file].write_all(buf.as_bytes())?;
        offsets[file] += buf.len() as u64;
        totals[file] += per_batch;
        let w = Written {
            end: offsets[file],
            lines: per_batch,
            total: totals[file],
            at: Instant::now(),
        };
        if let Ok(mut p) = pending.lock() {
            p.durable[file].push_back(w);
            p.visible[file].push_back(w);
        }
    }
    Ok(i)
}

/// Runs the bench and prints its report.
pub async fn run(opts: BenchOptions) -> anyhow::Result<()> {
    let dir = tempfile::tempdir().context("creating a scratch dir")?;
    let files = opts.files.max(1);
    let mut logs = Vec::with_capacity(files);
    let mut paths = Vec::with_capacity(files);
    for n in 0..files {
        let log = dir.path().join(format!("bench-{n}.log"));
        std::fs::write(&log, "").context("creating a bench log")?;
        logs.push(LogSourceConfig {
            name: source_name(n),
            paths: vec![log.to_string_lossy().into_owned()],
            exclude: vec![],
            format: FormatSpec::Named("log4j".into()),
            read_from: ReadFrom::Beginning,
            max_line_bytes: 1024 * 1024,
            multiline: None,
        });
        paths.push(log);
    }
    let cfg = Config {
        data_dir: dir.path().join("data"),
        logs,
        index: farol_common::config::IndexConfig {
            events: opts.events,
            ..Default::default()
        },
        processor: farol_common::config::ProcessorConfig {
            templates: opts.templates,
        },
        ..Config::default()
    };
    let running = pipeline::start(&cfg).await?;
    let mut acks = running.acks.tap();
    let pending: Pending = Arc::new(Mutex::new(Queues::new(files)));
    let stop = Arc::new(AtomicBool::new(false));
    let probe_stop = Arc::new(AtomicBool::new(false));
    let probe = tokio::spawn(probe(
        running.index.clone(),
        pipeline::scoring(&cfg.trends),
        pending.clone(),
        probe_stop.clone(),
    ));
    let started = Instant::now();
    let mut w = Some({
        let (opts, pending, stop) = (opts.clone(), pending.clone(), stop.clone());
        std::thread::spawn(move || writer(paths, opts, pending, stop))
    });
    let mut durable = latency_histogram()?;
    let mut acked_lines = 0u64;
    let mut written: Option<u64> = None;
    let drain_deadline = opts.duration + Duration::from_secs(120);
    let outcome = measure(
        &mut acks,
        &pending,
        &stop,
        &mut w,
        &mut durable,
        &mut acked_lines,
        &mut written,
        started,
        drain_deadline,
    )
    .await;
    let elapsed = started.elapsed();
    // Every line is applied once it is durable: the probe sees the rest soon.
    probe_stop.store(true, Ordering::Relaxed);
    let visible = probe.await;
    // Stop the pipeline before the scratch dir goes away, whatever happened.
    stop.store(true, Ordering::Relaxed);
    running.shutdown().await?;
    outcome?;
    let (visible, counted) = visible.context("the visibility probe")??;
    let total = written.unwrap_or(0);
    report(&opts, total, elapsed, &visible, &durable);
    if counted != total {
        anyhow::bail!("/trends counted {counted} lines of the {total} written");
    }
    Ok(())
}

/// The source name of the bench's file `n`.
fn source_name(n: usize) -> String {
    format!("bench-{n}")
}

fn latency_histogram() -> anyhow::Result<Histogram<u64>> {
    Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).context("creating a latency histogram")
}

/// Asks the index the `/trends` question every [`PROBE_EVERY`] and records,
/// for every written batch, when its lines were first counted. Ends once
/// told to stop and every batch was seen (or 10 s after being told).
/// Returns the histogram and the last total counted.
async fn probe(
    index: Arc<dyn farol_indexer::Index>,
    scoring: farol_indexer::score::Scoring,
    pending: Pending,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<(Histogram<u64>, u64)> {
    let mut hist = latency_histogram()?;
    let now = farol_common::time::now_ms();
    let files = pending.lock().map(|p| p.visible.len()).unwrap_or(0);
    // From a minute before the first line to an hour after the last: every
    // line, and a span the index holds in memory (the longest window).
    let from = now.saturating_sub(60_000);
    let question = |n: usize| TrendsQuery {
        kind: AggKind::LogClass,
        source: Some(source_name(n)),
        limit: 100,
        range: TrendsRange::Between {
            from,
            to: now.saturating_add(3_600_000),
        },
        sort: TrendSort::Count,
        scoring,
    };
    let questions: Vec<TrendsQuery> = (0..files).map(question).collect();
    let mut counted = vec![0u64; files];
    let mut stopping: Option<Instant> = None;
    let mut tick = tokio::time::interval(PROBE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let mut left = 0;
        for (n, q) in questions.iter().enumerate() {
            let t = index
                .trends(q.clone())
                .await
                .context("asking the index for the bench's counts")?;
            let seen_at = Instant::now();
            counted[n] = t.items.iter().map(|i| i.count).sum();
            let Ok(mut p) = pending.lock() else {
                anyhow::bail!("the bench's queue is poisoned");
            };
            let queue = &mut p.visible[n];
            while queue.front().is_some_and(|w| w.total <= counted[n]) {
                if let Some(w) = queue.pop_front() {
                    let us = seen_at.duration_since(w.at).as_micros().max(1) as u64;
                    hist.saturating_record_n(us, w.lines);
                }
            }
            left += queue.len();
        }
        if stop.load(Ordering::Relaxed) {
            let since = *stopping.get_or_insert_with(Instant::now);
            if left == 0 || since.elapsed() > Duration::from_secs(10) {
                return Ok((hist, counted.iter().sum()));
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn measure(
    acks: &mut tokio::sync::mpsc::UnboundedReceiver<farol_common::model::Position>,
    pending: &Pending,
    stop: &AtomicBool,
    w: &mut Option<std::thread::JoinHandle<anyhow::Result<u64>>>,
    hist: &mut Histogram<u64>,
    acked_lines: &mut u64,
    written: &mut Option<u64>,
    started: Instant,
    drain_deadline: Duration,
) -> anyhow::Result<()> {
    loop {
        if w.as_ref().is_some_and(|h| h.is_finished()) {
            if let Some(h) = w.take() {
                *written = Some(h.join().map_err(|_| anyhow::anyhow!("writer panicked"))??);
            }
        }
        if written.is_some_and(|n| *acked_lines >= n) {
            return Ok(());
        }
        if started.elapsed() > drain_deadline {
            stop.store(true, Ordering::Relaxed);
            anyhow::bail!(
                "only {acked_lines} of {} lines acknowledged after {:?}",
                written.unwrap_or(0),
                drain_deadline
            );
        }
        let Ok(Some(p)) = tokio::time::timeout(Duration::from_millis(100), acks.recv()).await
        else {
            continue;
        };
        let now = Instant::now();
        let Some(file) = p
            .source
            .strip_prefix("bench-")
            .and_then(|n| n.parse::<usize>().ok())
        else {
            continue;
        };
        if let Ok(mut q) = pending.lock() {
            let Some(queue) = q.durable.get_mut(file) else {
                continue;
            };
            while queue.front().is_some_and(|w| w.end <= p.end) {
                if let Some(w) = queue.pop_front() {
                    let us = now.duration_since(w.at).as_micros().max(1) as u64;
                    hist.saturating_record_n(us, w.lines);
                    *acked_lines += w.lines;
                }
            }
        }
    }
}

fn report(
    opts: &BenchOptions,
    total: u64,
    elapsed: Duration,
    visible: &Histogram<u64>,
    durable: &Histogram<u64>,
) {
    let target = if opts.rate == 0 {
        "max (closed loop)".to_string()
    } else {
        format!("{} lines/s", opts.rate)
    };
    println!(
        "farol bench: {total} lines of ~{} bytes to {} file(s), target {target}, written for {:?}, events {}, templates {}",
        opts.line_bytes,
        opts.files,
        opts.duration,
        if opts.events { "on" } else { "off" },
        if opts.templates { "on" } else { "off" }
    );
    let secs = elapsed.as_secs_f64();
    println!(
        "  throughput  {:.0} lines/s, {:.1} MB/s acknowledged ({secs:.1} s from first write to last ack)",
        total as f64 / secs,
        (total as f64 * opts.line_bytes as f64) / secs / 1e6,
    );
    for (name, hist) in [("visible", visible), ("durable", durable)] {
        let ms = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
        println!(
            "  write → {name:<7} latency (ms): p50 {:.1}  p90 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}",
            ms(0.5),
            ms(0.9),
            ms(0.99),
            ms(0.999),
            hist.max() as f64 / 1000.0
        );
    }
    if let Some(rss) = peak_rss_mib() {
        println!("  peak RSS    {rss} MiB");
    }
}
