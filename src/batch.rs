//! `farol batch`: re-processes historical files through the same processor
//! core as streaming, file by file in order, and writes the same aggregates —
//! into the embedded index, or as JSON lines on stdout (aggregates, or
//! every event document).

use crate::batch_inputs::{self, Failed};
use crate::batch_summary::Summary;
use crate::cli::BatchFormat;
use crate::pipeline::open_index;
use crate::sources::stem_name;
use farol_common::config::Config;
use farol_common::model::{BucketKey, RawRecord, RecordKind};
use farol_common::time::{now_ms, rfc3339};
use farol_indexer::Index;
use farol_ingest::lines::{Line, LineSplitter};
use farol_ingest::{fingerprint, lines};
use farol_processor::processor::{Parsers, Processor};
use farol_processor::window::WindowParams;
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, Read, Write};
use std::path::Path;

/// Records per processor flush in batch mode.
const FLUSH_EVERY: usize = 20_000;
/// Bytes read from a file at a time.
const CHUNK_BYTES: usize = 1024 * 1024;
/// Longest line kept whole (longer ones are cut and flagged).
const MAX_LINE_BYTES: usize = 1024 * 1024;

/// A file holds posts when its first non-empty line is a post.
fn looks_like_posts(path: &Path) -> bool {
    let Ok(f) = std::fs::File::open(path) else {
        return false;
    };
    for line in std::io::BufReader::new(f).lines().take(5) {
        let Ok(l) = line else { return false };
        if l.trim().is_empty() {
            continue;
        }
        return farol_processor::post::parse("probe", "jsonl", &l).is_ok();
    }
    false
}

/// Runs the batch job. Returns false when some path could not be read
/// (the others were processed; the failures were reported on stderr).
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
    let index = match format {
        BatchFormat::Index => {
            std::fs::create_dir_all(&cfg.data_dir)?;
            Some(open_index(&cfg)?)
        }
        BatchFormat::Json | BatchFormat::Events => None,
    };
    let mut events_out =
        (format == BatchFormat::Events).then(|| std::io::BufWriter::new(std::io::stdout().lock()));
    let restored = index
        .as_ref()
        .map(|i| i.stream_states())
        .unwrap_or_default();
    let mut proc = Processor::new(params, parsers, &restored);
    let mut totals: BTreeMap<BucketKey, u64> = BTreeMap::new();
    let mut names = HashSet::new();
    let mut lines = 0u64;
    let mut summary = Summary::default();
    for file in &files {
        let base = stem_name(&file.to_string_lossy());
        let mut source = base.clone();
        let mut n = 2;
        while !names.insert(source.clone()) {
            source = format!("{base}-{n}");
            n += 1;
        }
        let kind = if looks_like_posts(file) {
            RecordKind::Post
        } else {
            RecordKind::Log
        };
        let f = match std::fs::File::open(file) {
            Ok(f) => f,
            Err(e) => {
                failed.push(Failed {
                    path: file.display().to_string(),
                    why: e.to_string(),
                });
                continue;
            }
        };
        let fp = match fingerprint::of_file(&f) {
            Ok(fp) => fp.unwrap_or(0),
            Err(e) => {
                failed.push(Failed {
                    path: file.display().to_string(),
                    why: e.to_string(),
                });
                continue;
            }
        };
        let stream = format!("{source}:{fp:016x}");
        let path = file.to_string_lossy().into_owned();
        let mtime = f.metadata().ok().as_ref().and_then(lines::mtime_ms);
        bar.set_message(source.clone());
        // Read and process a chunk at a time, so memory does not grow with
        // the file.
        let platform = (kind == RecordKind::Post).then(|| "jsonl".to_string());
        let mut line_no = 0u64;
        let mut splitter = LineSplitter::new(0, MAX_LINE_BYTES);
        let mut buf = vec![0u8; CHUNK_BYTES];
        let mut recs: Vec<RawRecord> = Vec::new();
        let mut reader = &f;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(n) => n,
                Err(e) => {
                    failed.push(Failed {
                        path: file.display().to_string(),
                        why: format!("{e} (after {line_no} lines, which were counted)"),
                    });
                    break;
                }
            };
            let mut to_record = |l: Line| {
                line_no += 1;
                recs.push(l.into_record(
                    &source,
                    &stream,
                    kind,
                    platform.clone(),
                    &path,
                    line_no,
                    mtime,
                ));
            };
            if n == 0 {
                if let Some(l) = splitter.finish() {
                    to_record(l);
                }
            } else {
                splitter.feed(&buf[..n], &mut to_record);
            }
            for rec in recs.drain(..) {
                bar.inc(rec.end - rec.offset);
                proc.handle(rec, now_ms());
                lines += 1;
                if proc.pending_records() >= FLUSH_EVERY {
                    let b = proc.flush();
                    summary.observe(&b);
                    write_events(&b, events_out.as_mut())?;
                    deliver(b, index.as_ref(), &mut totals).await?;
                }
            }
            if n == 0 {
                break;
            }
        }
    }
    // Batch input is finite: every stream is idle now, close its windows.
    proc.end_of_input();
    let b = proc.flush();
    summary.observe(&b);
    write_events(&b, events_out.as_mut())?;
    deliver(b, index.as_ref(), &mut totals).await?;
    if let Some(mut out) = events_out.take() {
        out.flush()?;
    }
    bar.finish_and_clear();
    match (format, index) {
        (BatchFormat::Json, _) => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            // Each base bucket is scored like a `/trends` span: against the
            // same (kind, source, key) in the N base buckets before it.
            let scoring = crate::pipeline::scoring(&cfg.trends);
            let bucket_ms = cfg.windows.bucket.as_millis() as i64;
            for (k, count) in &totals {
                let baseline: u64 = (1..=i64::from(scoring.baseline_windows))
                    .filter_map(|i| {
                        let mut prev = k.clone();
                        prev.bucket_start = k.bucket_start.checked_sub(i * bucket_ms)?;
                        totals.get(&prev).copied()
                    })
                    .sum();
                serde_json::to_writer(
                    &mut out,
                    &serde_json::json!({
                        "bucket_start": rfc3339(k.bucket_start),
                        "kind": k.kind.as_str(),
                        "source": k.source,
                        "key": k.key,
                        "count": count,
                        "score": scoring.score(*count, baseline),
                    }),
                )?;
                out.write_all(b"\n")?;
            }
            out.flush()?;
        }
        (BatchFormat::Index, Some(ix)) => {
            ix.commit().await?;
            eprintln!(
                "batch: {lines} records from {} files indexed into {}",
                files.len(),
                cfg.data_dir.join("index").display()
            );
        }
        (BatchFormat::Index, None) | (BatchFormat::Events, _) => {}
    }
    let mut err = std::io::stderr().lock();
    summary.write(&mut err)?;
    for f in &failed {
        writeln!(err, "batch: could not read {}: {}", f.path, f.why)?;
    }
    Ok(failed.is_empty())
}

/// Prints the batch's event documents, one JSON line each.
fn write_events(
    b: &farol_common::model::Batch,
    out: Option<&mut std::io::BufWriter<std::io::StdoutLock<'static>>>,
) -> std::io::Result<()> {
    let Some(out) = out else { return Ok(()) };
    for e in &b.events {
        serde_json::to_writer(&mut *out, &e.document())?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

async fn deliver(
    b: farol_common::model::Batch,
    index: Option<&farol_indexer::embedded::EmbeddedIndex>,
    totals: &mut BTreeMap<BucketKey, u64>,
) -> anyhow::Result<()> {
    match index {
        Some(ix) => ix.apply(b).await?,
        None => {
            let mut merged: HashMap<BucketKey, u64> = HashMap::new();
            for (k, n) in b.counts {
                *merged.entry(k).or_insert(0) += n;
            }
            for (k, n) in merged {
                *totals.entry(k).or_insert(0) += n;
            }
        }
    }
    Ok(())
}
