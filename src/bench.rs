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
}

/// Unacknowledged lines the writer may run ahead by in `--rate 0` mode.
const MAX_BACKLOG: u64 = 200_000;

/// One written batch of lines.
#[derive(Debug, Clone, Copy)]
struct Written {
    /// File offset just past the batch.
    end: u64,
    /// Lines in the batch.
    lines: u64,
    /// Lines written up to and including this batch.
    total: u64,
    /// When the write returned.
    at: Instant,
}

/// Batches written and not yet durable (`durable`) or visible (`visible`).
#[derive(Default)]
struct Queues {
    durable: VecDeque<Written>,
    visible: VecDeque<Written>,
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
    path: std::path::PathBuf,
    opts: BenchOptions,
    pending: Pending,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<u64> {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    let levels = ["INFO", "WARN", "ERROR", "DEBUG", "INFO"];
    let pad = "x".repeat(opts.line_bytes.saturating_sub(60));
    let per_batch = if opts.rate == 0 {
        1000
    } else {
        (opts.rate / 100).max(1)
    };
    let start = Instant::now();
    let (mut i, mut offset) = (0u64, 0u64);
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
                .map(|q| q.durable.iter().map(|w| w.lines).sum::<u64>() > MAX_BACKLOG)
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
            buf.push_str(&format!(
                "{stamp} {} [bench] seq={i} {pad}\n",
                levels[(i % 5) as usize]
            ));
            i += 1;
        }
        f.write_all(buf.as_bytes())?;
        offset += buf.len() as u64;
        let w = Written {
            end: offset,
            lines: per_batch,
            total: i,
            at: Instant::now(),
        };
        if let Ok(mut p) = pending.lock() {
            p.durable.push_back(w);
            p.visible.push_back(w);
        }
    }
    Ok(i)
}

/// Runs the bench and prints its report.
pub async fn run(opts: BenchOptions) -> anyhow::Result<()> {
    let dir = tempfile::tempdir().context("creating a scratch dir")?;
    let log = dir.path().join("bench.log");
    std::fs::write(&log, "").context("creating the bench log")?;
    let cfg = Config {
        data_dir: dir.path().join("data"),
        logs: vec![LogSourceConfig {
            name: SOURCE.into(),
            paths: vec![log.to_string_lossy().into_owned()],
            exclude: vec![],
            format: FormatSpec::Named("log4j".into()),
            read_from: ReadFrom::Beginning,
            max_line_bytes: 1024 * 1024,
            multiline: None,
        }],
        index: farol_common::config::IndexConfig {
            events: opts.events,
            ..Default::default()
        },
        ..Config::default()
    };
    let running = pipeline::start(&cfg).await?;
    let mut acks = running.acks.tap();
    let pending: Pending = Arc::default();
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
        let (log, opts, pending, stop) = (log.clone(), opts.clone(), pending.clone(), stop.clone());
        std::thread::spawn(move || writer(log, opts, pending, stop))
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

/// The bench's source name.
const SOURCE: &str = "bench";

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
    // From a minute before the first line to an hour after the last: every
    // line, and a span the index holds in memory (the longest window).
    let from = now.saturating_sub(60_000);
    let q = TrendsQuery {
        kind: AggKind::LogClass,
        source: Some(SOURCE.into()),
        limit: 100,
        range: TrendsRange::Between {
            from,
            to: now.saturating_add(3_600_000),
        },
        sort: TrendSort::Count,
        scoring,
    };
    let mut stopping: Option<Instant> = None;
    let mut tick = tokio::time::interval(PROBE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let t = index
            .trends(q.clone())
            .await
            .context("asking the index for the bench's counts")?;
        let seen_at = Instant::now();
        let counted: u64 = t.items.iter().map(|i| i.count).sum();
        let left = match pending.lock() {
            Ok(mut p) => {
                while p.visible.front().is_some_and(|w| w.total <= counted) {
                    if let Some(w) = p.visible.pop_front() {
                        let us = seen_at.duration_since(w.at).as_micros().max(1) as u64;
                        hist.saturating_record_n(us, w.lines);
                    }
                }
                p.visible.len()
            }
            Err(_) => anyhow::bail!("the bench's queue is poisoned"),
        };
        if stop.load(Ordering::Relaxed) {
            let since = *stopping.get_or_insert(seen_at);
            if left == 0 || since.elapsed() > Duration::from_secs(10) {
                return Ok((hist, counted));
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
        if let Ok(mut q) = pending.lock() {
            while q.durable.front().is_some_and(|w| w.end <= p.end) {
                if let Some(w) = q.durable.pop_front() {
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
        "farol bench: {total} lines of ~{} bytes, target {target}, written for {:?}, events {}",
        opts.line_bytes,
        opts.duration,
        if opts.events { "on" } else { "off" }
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
