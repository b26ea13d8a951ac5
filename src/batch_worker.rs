//! One `farol batch` worker: reads whole files, each a stream of its own, a
//! bounded chunk at a time, runs their lines through its own processor core
//! and hands every flushed batch to a sink. Files never share a worker's
//! stream state, so several workers (one a core) can take files from one
//! queue and their counts add up to exactly what one worker would count.

use crate::batch_inputs::Failed;
use crate::batch_summary::Summary;
use farol_common::model::{Batch, RawRecord, RecordKind};
use farol_common::time::{now_ms, Millis};
use farol_ingest::lines::{Line, LineSplitter};
use farol_ingest::{fingerprint, lines};
use farol_processor::processor::Processor;
use indicatif::ProgressBar;
use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Records per processor flush in batch mode.
const FLUSH_EVERY: usize = 20_000;
/// Bytes read from a file at a time.
const CHUNK_BYTES: usize = 1024 * 1024;
/// Longest line kept whole (longer ones are cut and flagged).
const MAX_LINE_BYTES: usize = 1024 * 1024;

/// One input file and the source name it was given.
#[derive(Debug, Clone)]
pub struct FileJob {
    /// The file.
    pub path: PathBuf,
    /// Its source name (file stem, made unique among the inputs).
    pub source: String,
}

/// The files still to read, taken one at a time by the workers.
pub struct Queue<'a> {
    jobs: &'a [FileJob],
    next: AtomicUsize,
}

impl<'a> Queue<'a> {
    /// A queue over `jobs`, taken in order.
    pub fn new(jobs: &'a [FileJob]) -> Self {
        Queue {
            jobs,
            next: AtomicUsize::new(0),
        }
    }

    fn take(&self) -> Option<&'a FileJob> {
        self.jobs.get(self.next.fetch_add(1, Ordering::Relaxed))
    }
}

/// What a worker did, besides its batches.
#[derive(Debug, Default)]
pub struct Report {
    /// Records handed to the processor.
    pub lines: u64,
    /// Per-source summary of the events.
    pub summary: Summary,
    /// Files (or parts of files) that could not be read.
    pub failed: Vec<Failed>,
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

/// The fixed parts of every record of one file.
struct FileCtx {
    source: Arc<str>,
    stream: Arc<str>,
    kind: RecordKind,
    /// The file's path, when the processor builds events (only they read
    /// it: one copy a line less otherwise).
    path: Option<String>,
    mtime: Option<Millis>,
}

impl FileCtx {
    fn record(&self, l: Line, line_no: u64, now: Millis) -> RawRecord {
        // No platform: the processor reads posts without one as `jsonl`.
        l.into_record(
            &self.source,
            &self.stream,
            self.kind,
            None,
            self.path.as_deref(),
            line_no,
            self.mtime,
            now,
        )
    }
}

/// Takes files from `queue` until it is empty, then ends the input of its
/// processor (every stream's windows close) and flushes. Every batch goes
/// to `sink`; a sink error stops the worker. The per-source summary is the
/// processor's own tally.
pub fn run(
    queue: &Queue<'_>,
    proc: Processor,
    bar: &ProgressBar,
    sink: &mut dyn FnMut(Batch) -> anyhow::Result<()>,
) -> anyhow::Result<Report> {
    let mut report = Report::default();
    let mut proc = proc.tally_sources();
    let mut buf = vec![0u8; CHUNK_BYTES];
    let mut recs: Vec<RawRecord> = Vec::new();
    while let Some(job) = queue.take() {
        let fail = |why: String| Failed {
            path: job.path.display().to_string(),
            why,
        };
        let f = match std::fs::File::open(&job.path) {
            Ok(f) => f,
            Err(e) => {
                report.failed.push(fail(e.to_string()));
                continue;
            }
        };
        let fp = match fingerprint::of_file(&f) {
            Ok(fp) => fp.unwrap_or(0),
            Err(e) => {
                report.failed.push(fail(e.to_string()));
                continue;
            }
        };
        let ctx = FileCtx {
            source: job.source.as_str().into(),
            stream: format!("{}:{fp:016x}", job.source).into(),
            kind: if looks_like_posts(&job.path) {
                RecordKind::Post
            } else {
                RecordKind::Log
            },
            path: proc
                .wants_events()
                .then(|| job.path.to_string_lossy().into_owned()),
            mtime: f.metadata().ok().as_ref().and_then(lines::mtime_ms),
        };
        // Read and process a chunk at a time, so memory does not grow with
        // the file.
        let mut line_no = 0u64;
        let mut splitter = LineSplitter::new(0, MAX_LINE_BYTES);
        let mut reader = &f;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(n) => n,
                Err(e) => {
                    report.failed.push(fail(format!(
                        "{e} (after {line_no} lines, which were counted)"
                    )));
                    break;
                }
            };
            let now = now_ms();
            let mut to_record = |l: Line| {
                line_no += 1;
                recs.push(ctx.record(l, line_no, now));
            };
            if n == 0 {
                if let Some(l) = splitter.finish() {
                    to_record(l);
                }
            } else {
                splitter.feed(&buf[..n], &mut to_record);
                bar.inc(n as u64);
            }
            for rec in recs.drain(..) {
                proc.handle(rec, now);
                report.lines += 1;
                if proc.pending_records() >= FLUSH_EVERY {
                    let b = proc.flush();
                    sink(b)?;
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
    sink(b)?;
    report.summary.add(proc.take_tally());
    Ok(report)
}
