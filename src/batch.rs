//! `farol batch`: re-processes historical files through the same processor
//! core as streaming, each file a stream read in order, and writes the same
//! aggregates — into the embedded index, or as JSON lines on stdout
//! (aggregates, or every event document).

use crate::batch_counts::{self, Counts};
use crate::batch_inputs;
use crate::batch_summary::Summary;
use crate::batch_worker::{self, FileJob, Queue};
use crate::cli::BatchFormat;
use crate::pipeline::open_index;
use crate::sources::stem_name;
use farol_common::config::Config;
use farol_common::model::Batch;
use farol_indexer::Index;
use farol_processor::processor::{Parsers, Processor};
use farol_processor::window::WindowParams;
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::{HashMap, HashSet};
use std::io::Write;

/// Runs the batch job. Returns false when some path could not be read
/// (the others were processed; the failures were reported on stderr).
///
/// With `--format json` and `--format events` the files are spread over one
/// worker thread per core, each with its own processor: counts are summed
/// at the end, event documents are printed batch by batch as the workers
/// flush them (a file's events in order). With `--format index` one worker
/// reads and processes while this task writes its batches into the index,
/// in order.
pub async fn run(cfg: Config, format: BatchFormat, paths: &[String]) -> anyhow::Result<bool> {
    let inputs = batch_inputs::expand(paths);
    let mut failed = inputs.failed;
    for p in &inputs.skipped {
        eprintln!("batch: skipped binary file {}", p.display());
    }
    let files = inputs.files;
    let total_bytes: u64 = files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    let bar = ProgressBar::new(total_bytes);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {msg} ({eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let params = WindowParams::from_config(&cfg.windows);
    let parsers = Parsers::new(cfg.logs.iter().map(|l| (l.name.as_str(), &l.format)))?;
    let jobs = name_sources(&files);
    let mut reports = Vec::new();
    let mut totals: Vec<Counts> = Vec::new();
    match format {
        BatchFormat::Json | BatchFormat::Events => {
            let events_out = (format == BatchFormat::Events)
                .then(|| std::sync::Mutex::new(std::io::BufWriter::new(std::io::stdout())));
            let results = on_every_core(jobs, |queue| {
                let proc = Processor::new(params.clone(), parsers.clone(), &HashMap::new());
                // Aggregates alone need no event documents.
                let proc = proc
                    .events(format == BatchFormat::Events)
                    .templates(cfg.processor.templates);
                let mut counts = Counts::default();
                let report = batch_worker::run(queue, proc, &bar, &mut |b| {
                    match &events_out {
                        Some(out) => write_events(&b, out)?,
                        None => {
                            for (k, n) in b.counts {
                                counts.add(k, n)?;
                            }
                        }
                    }
                    Ok(())
                })?;
                counts.seal();
                Ok((report, counts))
            });
            for r in results {
                let (report, counts) = r?;
                totals.push(counts);
                reports.push(report);
            }
            if let Some(out) = events_out {
                out.into_inner()
                    .map_err(|_| anyhow::anyhow!("a batch worker panicked while printing"))?
                    .flush()?;
            }
        }
        BatchFormat::Index => {
            std::fs::create_dir_all(&cfg.data_dir)?;
            let ix = open_index(&cfg)?;
            let proc = Processor::new(params, parsers, &ix.stream_states());
            let proc = proc
                .events(cfg.index.events)
                .templates(cfg.processor.templates);
            // The worker reads and processes on its own thread; this task
            // writes its batches, in order, as they come.
            let (tx, mut rx) = tokio::sync::mpsc::channel::<Batch>(2);
            let worker_bar = bar.clone();
            let worker = std::thread::spawn(move || {
                let queue = Queue::new(&jobs);
                batch_worker::run(&queue, proc, &worker_bar, &mut |b| {
                    tx.blocking_send(b)
                        .map_err(|_| anyhow::anyhow!("the index writer stopped"))
                })
            });
            let mut applied = Ok(());
            while let Some(b) = rx.recv().await {
                if applied.is_ok() {
                    applied = ix.apply(b).await;
                }
                // After a failure the rest is drained, so the worker ends.
            }
            let report = worker
                .join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("the batch worker panicked")));
            applied?;
            reports.push(report?);
            ix.commit().await?;
            let lines: u64 = reports.iter().map(|r| r.lines).sum();
            eprintln!(
                "batch: {lines} records from {} files indexed into {}",
                files.len(),
                cfg.data_dir.join("index").display()
            );
        }
    }
    bar.finish_and_clear();
    let mut summary = Summary::default();
    for r in reports {
        summary.merge(r.summary);
        failed.extend(r.failed);
    }
    if format == BatchFormat::Json {
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        // Each base bucket is scored like a `/trends` span: against the same
        // (kind, source, key) in the N base buckets before it.
        let scoring = crate::pipeline::scoring(&cfg.trends);
        let bucket_ms = i64::try_from(cfg.windows.bucket.as_millis()).unwrap_or(i64::MAX);
        batch_counts::write_json(totals, &mut out, &scoring, bucket_ms)?;
        out.flush()?;
    }
    let mut err = std::io::stderr().lock();
    summary.write(&mut err)?;
    for f in &failed {
        writeln!(err, "batch: could not read {}: {}", f.path, f.why)?;
    }
    Ok(failed.is_empty())
}

/// Runs `work` on one thread per core (at most one per file), each taking
/// files from one shared queue; the largest files are taken first, so that
/// the last file to start is a small one and the workers end close
/// together.
fn on_every_core<T: Send>(
    mut jobs: Vec<FileJob>,
    work: impl Fn(&Queue<'_>) -> anyhow::Result<T> + Sync,
) -> Vec<anyhow::Result<T>> {
    jobs.sort_by_key(|j| std::cmp::Reverse(std::fs::metadata(&j.path).map_or(0, |m| m.len())));
    let queue = Queue::new(&jobs);
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(jobs.len())
        .max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers).map(|_| s.spawn(|| work(&queue))).collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a batch worker panicked")))
            })
            .collect()
    })
}

/// Prints a batch's event documents, one JSON line each, together (so that
/// workers never interleave inside a batch).
fn write_events(
    b: &Batch,
    out: &std::sync::Mutex<std::io::BufWriter<std::io::Stdout>>,
) -> anyhow::Result<()> {
    let mut out = out
        .lock()
        .map_err(|_| anyhow::anyhow!("a batch worker panicked while printing"))?;
    for e in &b.events {
        serde_json::to_writer(&mut *out, &e.document())?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// Source names of the files, in argument order: the file stem, with `-2`,
/// `-3`, … added when a stem repeats.
fn name_sources(files: &[std::path::PathBuf]) -> Vec<FileJob> {
    let mut names = HashSet::new();
    files
        .iter()
        .map(|file| {
            let base = stem_name(&file.to_string_lossy());
            let mut source = base.clone();
            let mut n = 2;
            while !names.insert(source.clone()) {
                source = format!("{base}-{n}");
                n += 1;
            }
            FileJob {
                path: file.clone(),
                source,
            }
        })
        .collect()
}
