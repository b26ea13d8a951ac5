//! `farol batch`: re-processes historical files through the same processor
//! core as streaming, each file a stream read in order, and writes the same
//! aggregates — into the embedded index, or as JSON lines on stdout.

use crate::batch_counts::Counts;
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
/// With `--format json` the files are spread over one worker thread per
/// core, each with its own processor, and their counts are summed at the
/// end. With `--format index` one worker reads and processes while this
/// task writes its batches into the index, in order.
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
    let mut totals = Counts::default();
    match format {
        BatchFormat::Json => {
            // Largest files first, so that the last file to start is a
            // small one and the workers end close together.
            let mut jobs = jobs;
            jobs.sort_by_key(|j| {
                std::cmp::Reverse(std::fs::metadata(&j.path).map(|m| m.len()).unwrap_or(0))
            });
            let queue = Queue::new(&jobs);
            let workers = std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
                .min(jobs.len())
                .max(1);
            let results: Vec<anyhow::Result<(batch_worker::Report, Counts)>> =
                std::thread::scope(|s| {
                    let handles: Vec<_> = (0..workers)
                        .map(|_| {
                            let proc =
                                Processor::new(params.clone(), parsers.clone(), &HashMap::new());
                            let (queue, bar) = (&queue, &bar);
                            s.spawn(move || {
                                let mut counts = Counts::default();
                                let report = batch_worker::run(queue, proc, bar, &mut |b| {
                                    for (k, n) in b.counts {
                                        counts.add(k, n);
                                    }
                                    Ok(())
                                })?;
                                Ok((report, counts))
                            })
                        })
                        .collect();
                    handles
                        .into_iter()
                        .map(|h| {
                            h.join()
                                .unwrap_or_else(|_| Err(anyhow::anyhow!("a batch worker panicked")))
                        })
                        .collect()
                });
            for r in results {
                let (report, counts) = r?;
                totals.merge(counts);
                reports.push(report);
            }
        }
        BatchFormat::Index => {
            std::fs::create_dir_all(&cfg.data_dir)?;
            let ix = open_index(&cfg)?;
            let proc = Processor::new(params, parsers, &ix.stream_states());
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
        totals.write_json(&mut out)?;
        out.flush()?;
    }
    let mut err = std::io::stderr().lock();
    summary.write(&mut err)?;
    for f in &failed {
        writeln!(err, "batch: could not read {}: {}", f.path, f.why)?;
    }
    Ok(failed.is_empty())
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
