//! `farol bench`: the end-to-end load generator. It starts the whole
//! pipeline in-process on a scratch data dir, appends log lines to a file at a
//! target rate, and measures for every line the time from its write to its
//! acknowledgement — the moment its effects are committed in the index and
//! its source checkpoint may move. Latencies go to an HdrHistogram.

use crate::pipeline;
use anyhow::Context;
use farol_common::config::{Config, FormatSpec, LogSourceConfig, ReadFrom};
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

/// Batches written and not yet acknowledged: (file offset after the batch, lines, when).
type Pending = Arc<Mutex<VecDeque<(u64, u64, Instant)>>>;

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
                .map(|q| q.iter().map(|(_, n, _)| n).sum::<u64>() > MAX_BACKLOG)
                .unwrap_or(false)
                && start.elapsed() < opts.duration
            {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        buf.clear();
        for _ in 0..per_batch {
            let ms = i;
            buf.push_str(&format!(
                "2024-01-01 {:02}:{:02}:{:02},{:03} {} [bench] seq={i} {pad}\n",
                (ms / 3_600_000) % 24,
                (ms / 60_000) % 60,
                (ms / 1000) % 60,
                ms % 1000,
                levels[(i % 5) as usize]
            ));
            i += 1;
        }
        f.write_all(buf.as_bytes())?;
        offset += buf.len() as u64;
        if let Ok(mut p) = pending.lock() {
            p.push_back((offset, per_batch, Instant::now()));
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
            name: "bench".into(),
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
    let pending: Pending = Arc::new(Mutex::new(VecDeque::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut w = Some({
        let (log, opts, pending, stop) = (log.clone(), opts.clone(), pending.clone(), stop.clone());
        std::thread::spawn(move || writer(log, opts, pending, stop))
    });
    let mut hist = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3)
        .context("creating the latency histogram")?;
    let mut acked_lines = 0u64;
    let mut written: Option<u64> = None;
    let drain_deadline = opts.duration + Duration::from_secs(120);
    let outcome = measure(
        &mut acks,
        &pending,
        &stop,
        &mut w,
        &mut hist,
        &mut acked_lines,
        &mut written,
        started,
        drain_deadline,
    )
    .await;
    let elapsed = started.elapsed();
    // Stop the pipeline before the scratch dir goes away, whatever happened.
    stop.store(true, Ordering::Relaxed);
    running.shutdown().await?;
    outcome?;
    let total = written.unwrap_or(0);
    report(&opts, total, elapsed, &hist);
    Ok(())
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
            while q.front().is_some_and(|(end, _, _)| *end <= p.end) {
                if let Some((_, lines, at)) = q.pop_front() {
                    let us = now.duration_since(at).as_micros().max(1) as u64;
                    hist.saturating_record_n(us, lines);
                    *acked_lines += lines;
                }
            }
        }
    }
}

fn report(opts: &BenchOptions, total: u64, elapsed: Duration, hist: &Histogram<u64>) {
    let ms = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    let target = if opts.rate == 0 {
        "max (closed loop)".to_string()
    } else {
        format!("{} lines/s", opts.rate)
    };
    println!(
        "farol bench: {total} lines of ~{} bytes, target {target}, written for {:?}",
        opts.line_bytes, opts.duration
    );
    println!(
        "  throughput  {:.0} lines/s acknowledged ({:.1} s from first write to last ack)",
        total as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64()
    );
    println!(
        "  write → durable ack latency (ms): p50 {:.1}  p90 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}",
        ms(0.5),
        ms(0.9),
        ms(0.99),
        ms(0.999),
        hist.max() as f64 / 1000.0
    );
    if let Some(rss) = peak_rss_mib() {
        println!("  peak RSS    {rss} MiB");
    }
}
