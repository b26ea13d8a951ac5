//! `farol batch`: re-processes historical files through the same processor
//! core as streaming, file by file in order, and writes the same aggregates —
//! into the embedded index, or as JSON lines on stdout.

use crate::cli::BatchFormat;
use crate::pipeline::open_index;
use crate::sources::stem_name;
use anyhow::Context;
use farol_common::config::Config;
use farol_common::model::{BucketKey, RawRecord, RecordKind};
use farol_common::time::{now_ms, rfc3339};
use farol_indexer::Index;
use farol_ingest::tail::read_file_lines;
use farol_ingest::{fingerprint, lines};
use farol_processor::processor::{Parsers, Processor};
use farol_processor::window::WindowParams;
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

/// Records per processor flush in batch mode.
const FLUSH_EVERY: usize = 20_000;

fn expand(paths: &[String]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        let matches: Vec<PathBuf> = glob::glob(p)
            .with_context(|| format!("bad glob '{p}'"))?
            .flatten()
            .filter(|x| x.is_file())
            .collect();
        if matches.is_empty() {
            anyhow::bail!("{p}: no such file");
        }
        out.extend(matches);
    }
    Ok(out)
}

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

/// Runs the batch job.
pub async fn run(cfg: Config, format: BatchFormat, paths: &[String]) -> anyhow::Result<()> {
    let files = expand(paths)?;
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
        BatchFormat::Json => None,
    };
    let restored = index
        .as_ref()
        .map(|i| i.stream_states())
        .unwrap_or_default();
    let mut proc = Processor::new(params, parsers, &restored);
    let mut totals: BTreeMap<BucketKey, u64> = BTreeMap::new();
    let mut names = HashSet::new();
    let mut lines = 0u64;
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
        let f = std::fs::File::open(file).with_context(|| format!("{}", file.display()))?;
        let fp = fingerprint::of_file(&f)?.unwrap_or(0);
        let stream = format!("{source}:{fp:016x}");
        let path = file.to_string_lossy().into_owned();
        let mtime = f.metadata().ok().as_ref().and_then(lines::mtime_ms);
        bar.set_message(source.clone());
        let mut line_no = 0u64;
        let mut pending: Vec<RawRecord> = Vec::new();
        read_file_lines(file, 1024 * 1024, |l| {
            line_no += 1;
            pending.push(l.into_record(
                &source,
                &stream,
                kind,
                (kind == RecordKind::Post).then(|| "jsonl".to_string()),
                &path,
                line_no,
                mtime,
            ));
        })
        .with_context(|| format!("reading {}", file.display()))?;
        for rec in pending {
            bar.inc(rec.end - rec.offset);
            proc.handle(rec, now_ms());
            lines += 1;
            if proc.pending_records() >= FLUSH_EVERY {
                deliver(proc.flush(), index.as_ref(), &mut totals).await?;
            }
        }
    }
    // Batch input is finite: every stream is idle now, close its windows.
    proc.end_of_input();
    deliver(proc.flush(), index.as_ref(), &mut totals).await?;
    bar.finish_and_clear();
    match (format, index) {
        (BatchFormat::Json, _) => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            for (k, count) in &totals {
                serde_json::to_writer(
                    &mut out,
                    &serde_json::json!({
                        "bucket_start": rfc3339(k.bucket_start),
                        "kind": k.kind.as_str(),
                        "source": k.source,
                        "key": k.key,
                        "count": count,
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
        (BatchFormat::Index, None) => {}
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
