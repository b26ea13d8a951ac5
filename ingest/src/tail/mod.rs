//! The file source: follows every file matching a source's globs, publishes
//! each complete line to the bus in order, and persists a checkpoint that
//! only moves when the bus acknowledges lines as durable downstream.
//!
//! Reading and checkpointing are two tasks joined by the acknowledgement
//! channel: the reader runs ahead (bounded by the bus), the checkpointer
//! trails at the durable position. Files are identified by fingerprint
//! ([`crate::fingerprint`]) so renames keep their position.
//!
//! One job a module: [`discovery`] (globs, rotation), [`read`] (lines and
//! compressed rotations), [`checkpointer`] (the trailing checkpoint task),
//! [`identity`] and [`tracked`] (what a source knows of its files), and
//! [`batch_read`] (whole files once, for `farol batch`).

use crate::checkpoint::{path_for, Registry};
use crate::fingerprint::{self, Identity};
use crate::gz;
use crate::lines::{mtime_ms, Line, LineSplitter};
use crate::multiline::{Aggregator, Numbered};
use farol_common::bus::{publish_paced, publish_paced_all, Producer};
use farol_common::config::ReadFrom;
use farol_common::health::Health;
use farol_common::metrics::metrics;
use farol_common::model::{Position, RawRecord, RecordKind};
use farol_common::time::{now_ms, Millis};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Size of one read from a file.
const CHUNK: usize = 64 * 1024;
/// Checkpoint entries not updated for this long are dropped (7 days).
const CHECKPOINT_MAX_AGE_MS: i64 = 7 * 24 * 3600 * 1000;

/// What a file source reads and how.
#[derive(Debug, Clone)]
pub struct FileSource {
    /// Source name.
    pub name: String,
    /// Glob patterns.
    pub patterns: Vec<String>,
    /// Glob patterns of paths to skip (e.g. `*.gz`).
    pub exclude: Vec<String>,
    /// Log lines or JSON-lines posts.
    pub kind: RecordKind,
    /// Platform hint for posts.
    pub platform: Option<String>,
    /// Where newly found files start.
    pub read_from: ReadFrom,
    /// Longer lines are cut.
    pub max_line_bytes: usize,
    /// How often globs are re-scanned and files polled for growth.
    pub poll_interval: Duration,
    /// An unterminated last line is emitted once its file has not grown for
    /// this long (files whose last line has no newline are common).
    pub partial_line_timeout: Duration,
    /// Multiline records, if configured.
    pub multiline: Option<Multiline>,
    /// The data dir holding checkpoints.
    pub data_dir: PathBuf,
}

/// Multiline settings of a file source.
#[derive(Debug, Clone)]
pub struct Multiline {
    /// A line matching this starts a record.
    pub start: regex::bytes::Regex,
    /// The held record is emitted after the file is quiet this long.
    pub timeout: Duration,
}

mod batch_read;
mod checkpointer;
mod discovery;
mod identity;
mod read;
mod tracked;
mod wake;

pub use batch_read::read_file_lines;
use checkpointer::checkpointer;
use identity::Identities;
use read::{ends_line_at, GzOutcome, ReadOutcome};
use tracked::Tracked;
use wake::Wake;

impl FileSource {
    /// The bus record of line `n` of `file`, whose source and stream are
    /// `ids` (shared by the records of a read).
    fn record(
        &self,
        n: Numbered,
        ids: &(Arc<str>, Arc<str>),
        file: &str,
        mtime: Option<Millis>,
        now: Millis,
    ) -> RawRecord {
        let mut rec = n.line.into_record(
            &ids.0,
            &ids.1,
            self.kind,
            self.platform.clone(),
            Some(file),
            n.line_no,
            mtime,
            now,
        );
        rec.line_span = n.last_line_no.saturating_sub(n.line_no);
        rec
    }

    /// Runs until `shutdown` turns true (or the bus closes). Acknowledged
    /// positions arrive on `acks` and are checkpointed.
    pub async fn run(
        self,
        producer: Arc<dyn Producer>,
        acks: mpsc::UnboundedReceiver<Position>,
        mut shutdown: watch::Receiver<bool>,
        health: Health,
    ) -> anyhow::Result<()> {
        let ckpt_path = path_for(&self.data_dir, &self.name);
        let registry = Registry::load(&ckpt_path)?;
        let component = format!("source:{}", self.name);
        let checkpointer = tokio::spawn(checkpointer(
            ckpt_path,
            registry.clone(),
            acks,
            health.clone(),
            component.clone(),
        ));
        health.up(&component);
        let mut tracked: HashMap<String, Tracked> = HashMap::new();
        let mut gz_done: HashSet<(u64, u64)> = HashSet::new();
        let mut ids = Identities {
            known: registry.streams.keys().cloned().collect(),
            truncated: HashMap::new(),
        };
        let mut wake = Wake::new(&self.name);
        let literal_dirs: Vec<PathBuf> =
            self.patterns.iter().map(|p| wake::literal_dir(p)).collect();
        // When the globs were last matched: on every poll, and when the
        // watcher saw files appear, vanish or move; appends alone only need
        // the followed files read.
        let mut scanned: Option<tokio::time::Instant> = None;
        // Streams found truncated, and whether the globs were matched since.
        // A truncated file is let go only after a match: its copy (when
        // copytruncate made one) then takes over with the record being
        // joined. Events can wake the source between the copy and the
        // truncation, so that match must come after the truncation was seen.
        let mut shrunk: HashMap<String, bool> = HashMap::new();
        'outer: loop {
            if *shutdown.borrow() {
                break;
            }
            let due = scanned.is_none_or(|at| at.elapsed() >= self.poll_interval)
                || shrunk.values().any(|matched| !matched);
            let compressed = if due || wake.take_rescan() {
                scanned = Some(tokio::time::Instant::now());
                shrunk.values_mut().for_each(|matched| *matched = true);
                let c = self.scan(&registry, &mut tracked, &mut ids);
                // A followed path may be a symlink (Kubernetes'
                // `/var/log/containers/*.log`): writes to it are reported in
                // its target's directory, under the target's name.
                let targets: Vec<PathBuf> = tracked
                    .values()
                    .filter(|t| t.path.is_symlink())
                    .filter_map(|t| std::fs::canonicalize(&t.path).ok())
                    .collect();
                let parents = tracked
                    .values()
                    .map(|t| t.path.as_path())
                    .chain(targets.iter().map(PathBuf::as_path))
                    .filter_map(Path::parent);
                wake.watch(literal_dirs.iter().map(PathBuf::as_path).chain(parents));
                wake.follow(
                    tracked
                        .values()
                        .map(|t| t.path.as_path())
                        .chain(targets.iter().map(PathBuf::as_path)),
                );
                c
            } else {
                Vec::new()
            };
            for (path, id) in compressed {
                if gz_done.contains(&id) {
                    continue;
                }
                match self
                    .read_gz(&path, &registry, &tracked, producer.as_ref(), &mut shutdown)
                    .await
                {
                    Ok(GzOutcome::Done) => {
                        gz_done.insert(id);
                    }
                    Ok(GzOutcome::Later) => {}
                    Ok(GzOutcome::Stopped) => break 'outer,
                    Err(e) => {
                        // A corrupt archive is reported once and not retried.
                        gz_done.insert(id);
                        metrics()
                            .source_errors
                            .with_label_values(&[&self.name])
                            .inc();
                        tracing::warn!(source = %self.name, path = %path.display(), error = %e, "cannot read compressed file");
                    }
                }
            }
            let mut done = Vec::new();
            for (stream, t) in tracked.iter_mut() {
                let outcome = self
                    .read_available(stream, t, producer.as_ref(), &mut shutdown)
                    .await;
                if !matches!(outcome, Ok(ReadOutcome::Truncated)) {
                    shrunk.remove(stream);
                }
                match outcome {
                    Ok(ReadOutcome::Eof) => {
                        if t.orphaned {
                            done.push(stream.clone());
                        }
                    }
                    Ok(ReadOutcome::Truncated) => match shrunk.get(stream) {
                        Some(true) => {
                            shrunk.remove(stream);
                            tracing::warn!(source = %self.name, path = %t.path.display(), "file truncated; will read it again as a new file");
                            ids.truncated.insert(stream.clone(), (t.dev, t.ino));
                            done.push(stream.clone());
                        }
                        _ => {
                            shrunk.insert(stream.clone(), false);
                        }
                    },
                    Ok(ReadOutcome::Stopped) => break 'outer,
                    Err(e) => {
                        metrics()
                            .source_errors
                            .with_label_values(&[&self.name])
                            .inc();
                        tracing::warn!(source = %self.name, path = %t.path.display(), error = %e, "read failed; will retry");
                    }
                }
            }
            for s in done {
                let Some(mut t) = tracked.remove(&s) else {
                    continue;
                };
                // A rotated-away or truncated file is let go: the record its
                // multiline aggregator still holds is complete now.
                if let Some(n) = t.multi.as_mut().and_then(Aggregator::flush) {
                    let mtime = t.file.metadata().ok().as_ref().and_then(mtime_ms);
                    let ids = (self.name.as_str().into(), s.as_str().into());
                    let rec = self.record(n, &ids, &t.path.to_string_lossy(), mtime, now_ms());
                    tokio::select! {
                        r = publish_paced(producer.as_ref(), rec) => if r.is_err() { break 'outer },
                        _ = shutdown.changed() => break 'outer,
                    }
                }
            }
            if shrunk.values().any(|matched| !matched) {
                continue; // match the globs again at once
            }
            tokio::select! {
                _ = tokio::time::sleep(self.poll_interval) => {}
                _ = wake.changed() => {}
                _ = shutdown.changed() => {}
            }
        }
        drop(tracked);
        // Releasing the producer lets the bus drain and close; the final
        // acknowledgements then arrive and the checkpointer ends when the
        // ack router is dropped.
        drop(producer);
        let _ = checkpointer.await;
        Ok(())
    }

    fn excluded(&self, path: &Path) -> bool {
        self.exclude
            .iter()
            .any(|p| glob::Pattern::new(p).is_ok_and(|g| g.matches_path(path)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use farol_common::bus::{embedded, AckRouter, Consumer, EmbeddedConsumer};
    use std::io::Write;

    fn source(dir: &Path, pattern: &str) -> FileSource {
        FileSource {
            name: "t".into(),
            patterns: vec![dir.join(pattern).to_string_lossy().into_owned()],
            exclude: vec![],
            kind: RecordKind::Log,
            platform: None,
            read_from: ReadFrom::Beginning,
            max_line_bytes: 1024,
            poll_interval: Duration::from_millis(20),
            partial_line_timeout: Duration::from_millis(300),
            multiline: None,
            data_dir: dir.join("data"),
        }
    }

    async fn next_lines(c: &mut impl Consumer, n: usize) -> Vec<RawRecord> {
        let mut out = vec![];
        while out.len() < n {
            let d = tokio::time::timeout(Duration::from_secs(5), c.recv())
                .await
                .expect("line within 5s")
                .expect("bus open");
            out.push(d.record);
        }
        out
    }

    #[tokio::test]
    async fn follows_appends_and_resumes_from_acknowledged_checkpoint() {
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("a.log");
        std::fs::write(&log, "one\ntwo\n").unwrap();
        let router = AckRouter::default();
        let (p, mut cs) = embedded(1, 64, 1 << 20);
        let (stop_tx, stop_rx) = watch::channel(false);
        let src = source(d.path(), "*.log");
        let task = tokio::spawn(src.clone().run(
            Arc::new(p),
            router.register("t"),
            stop_rx,
            Health::default(),
        ));
        let got = next_lines(&mut cs[0], 2).await;
        assert_eq!(got[1].payload, b"two");
        assert_eq!(got[1].line_no, 2);
        // Append, including a partial line that must wait for its newline.
        let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        f.write_all(b"three\nfo").unwrap();
        let got3 = next_lines(&mut cs[0], 1).await;
        assert_eq!(got3[0].payload, b"three");
        // Acknowledge only the first two lines, then stop.
        ack_and_stop(d.path(), &got[1], router, stop_tx, task).await;
        f.write_all(b"ur\n").unwrap();
        // Restart: the unacknowledged 'three' is read again, then 'four'.
        let (mut c2, _r2) = start(src).await;
        let again = next_lines(&mut c2, 2).await;
        assert_eq!(again[0].payload, b"three");
        assert_eq!(again[0].line_no, 3);
        assert_eq!(again[1].payload, b"four");
    }

    #[tokio::test]
    async fn with_an_hour_between_polls_the_file_system_wakes_the_source() {
        // Nothing is read by polling here: appends to a followed file, a new
        // file, and a file found empty and written later all arrive through
        // inotify events.
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("a.log");
        std::fs::write(&log, "one\n").unwrap();
        std::fs::write(d.path().join("c.log"), "").unwrap();
        let src = FileSource {
            poll_interval: Duration::from_secs(3600),
            ..source(d.path(), "*.log")
        };
        let (mut c, _router) = start(src).await;
        assert_eq!(next_lines(&mut c, 1).await[0].payload, b"one");
        append(&log, "two\n");
        assert_eq!(next_lines(&mut c, 1).await[0].payload, b"two");
        std::fs::write(d.path().join("b.log"), "new file\n").unwrap();
        assert_eq!(next_lines(&mut c, 1).await[0].payload, b"new file");
        append(&d.path().join("c.log"), "was empty\n");
        assert_eq!(next_lines(&mut c, 1).await[0].payload, b"was empty");
    }

    #[tokio::test]
    async fn a_followed_symlink_is_woken_by_writes_to_its_target() {
        // As Kubernetes lays out container logs: the glob matches symlinks
        // into another directory, where the runtime writes.
        let d = tempfile::tempdir().unwrap();
        let pods = d.path().join("pods");
        let containers = d.path().join("containers");
        std::fs::create_dir_all(&pods).unwrap();
        std::fs::create_dir_all(&containers).unwrap();
        let target = pods.join("0.log");
        std::fs::write(&target, "one\n").unwrap();
        std::os::unix::fs::symlink(&target, containers.join("app.log")).unwrap();
        let src = FileSource {
            poll_interval: Duration::from_secs(3600),
            ..source(&containers, "*.log")
        };
        let (mut c, _router) = start(src).await;
        assert_eq!(next_lines(&mut c, 1).await[0].payload, b"one");
        append(&target, "two\n");
        assert_eq!(next_lines(&mut c, 1).await[0].payload, b"two");
    }

    async fn spawn_source(dir: &Path, pattern: &str) -> (EmbeddedConsumer, AckRouter) {
        start(source(dir, pattern)).await
    }

    /// Starts `src` on a fresh bus with a stop switch and its task handle.
    fn start_stoppable(
        src: FileSource,
    ) -> (
        EmbeddedConsumer,
        AckRouter,
        watch::Sender<bool>,
        tokio::task::JoinHandle<anyhow::Result<()>>,
    ) {
        let router = AckRouter::default();
        let (p, mut cs) = embedded(1, 64, 1 << 20);
        let (stop_tx, stop_rx) = watch::channel(false);
        let task = tokio::spawn(src.run(
            Arc::new(p),
            router.register("t"),
            stop_rx,
            Health::default(),
        ));
        (cs.remove(0), router, stop_tx, task)
    }

    /// Starts `src` on a fresh bus; the source runs until the test ends.
    async fn start(src: FileSource) -> (EmbeddedConsumer, AckRouter) {
        let (p, mut cs) = embedded(1, 1024, 1 << 20);
        let (stop, stop_rx) = watch::channel(false);
        std::mem::forget(stop);
        let router = AckRouter::default();
        tokio::spawn(src.run(
            Arc::new(p),
            router.register("t"),
            stop_rx,
            Health::default(),
        ));
        (cs.remove(0), router)
    }

    /// Acknowledges `rec`, waits for the checkpoint file, and stops the source.
    async fn ack_and_stop(
        dir: &Path,
        rec: &RawRecord,
        router: AckRouter,
        stop: watch::Sender<bool>,
        task: tokio::task::JoinHandle<anyhow::Result<()>>,
    ) {
        router.ack([Position {
            source: "t".into(),
            stream: rec.stream.to_string(),
            end: rec.end,
            line_no: rec.line_no,
        }]);
        let ckpt = path_for(&dir.join("data"), "t");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while Registry::load(&ckpt).unwrap().streams.is_empty() {
            assert!(std::time::Instant::now() < deadline, "checkpoint written");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        stop.send(true).unwrap();
        drop(router);
        task.await.unwrap().unwrap();
    }

    fn append(path: &Path, text: &str) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    fn texts(recs: &[RawRecord]) -> Vec<String> {
        recs.iter()
            .map(|r| String::from_utf8_lossy(&r.payload).into_owned())
            .collect()
    }

    fn multiline_source(dir: &Path, pattern: &str) -> FileSource {
        FileSource {
            multiline: Some(Multiline {
                start: regex::bytes::Regex::new(r"^\d").unwrap(),
                // Long: records must be completed by rotation, not by the timer.
                timeout: Duration::from_secs(600),
            }),
            ..source(dir, pattern)
        }
    }

    #[tokio::test]
    async fn a_rotated_file_let_go_emits_its_pending_multiline_record() {
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("app.log");
        append(&log, "1 boom\n  at a\n2 again\n  at b\n");
        let (mut c, _router) = start(multiline_source(d.path(), "app.log")).await;
        assert_eq!(texts(&next_lines(&mut c, 1).await), ["1 boom\n  at a"]);
        std::fs::rename(&log, d.path().join("app.log.1")).unwrap();
        append(&log, "3 new file\n");
        let got = next_lines(&mut c, 1).await;
        assert_eq!(texts(&got), ["2 again\n  at b"]);
        assert_eq!((got[0].line_no, got[0].line_span), (3, 1));
    }

    #[tokio::test]
    async fn a_copytruncate_copy_continues_the_pending_multiline_record() {
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("app.log");
        append(&log, "1 boom\n  at a\n");
        let mut src = multiline_source(d.path(), "app.log*");
        if let Some(m) = src.multiline.as_mut() {
            // The copy is never let go: its record ends by the timeout.
            m.timeout = Duration::from_secs(2);
        }
        let (mut c, _router) = start(src).await;
        // Let the tailer read the pending record, then copy and truncate.
        tokio::time::sleep(Duration::from_millis(200)).await;
        append(&log, "  at b\n");
        std::fs::copy(&log, d.path().join("app.log.1")).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&log)
            .unwrap();
        append(&log, "2 after\n");
        // Both records end by the timeout, each in its own stream: which
        // comes first is not defined.
        let mut got = texts(&next_lines(&mut c, 2).await);
        got.sort();
        assert_eq!(got, ["1 boom\n  at a\n  at b", "2 after"]);
    }

    #[tokio::test]
    async fn line_numbers_stay_right_after_a_restart_past_a_multiline_record() {
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("app.log");
        append(&log, "1 boom\n  at a\n  at b\n2 next\n");
        let src = multiline_source(d.path(), "app.log");
        let (mut c, router, stop_tx, task) = start_stoppable(src.clone());
        let first = next_lines(&mut c, 1).await.remove(0);
        assert_eq!((first.line_no, first.line_span), (1, 2));
        // Acknowledged as the processor does: through the record's last line.
        let mut acked = first.clone();
        acked.line_no = first.line_no + first.line_span;
        ack_and_stop(d.path(), &acked, router, stop_tx, task).await;
        append(&log, "3 last\n");
        let (mut c2, _r2) = start(src).await;
        let got = next_lines(&mut c2, 1).await;
        assert_eq!(texts(&got), ["2 next"]);
        assert_eq!(got[0].line_no, 4);
    }

    #[tokio::test]
    async fn files_sharing_a_header_line_are_each_read_in_full() {
        let d = tempfile::tempdir().unwrap();
        append(&d.path().join("a.csv"), "ts,level,msg\n1,INFO,from a\n");
        append(&d.path().join("b.csv"), "ts,level,msg\n2,WARN,from b\n");
        let (mut c, _router) = spawn_source(d.path(), "*.csv").await;
        let got = next_lines(&mut c, 4).await;
        let mut t = texts(&got);
        t.sort();
        assert_eq!(
            t,
            [
                "1,INFO,from a",
                "2,WARN,from b",
                "ts,level,msg",
                "ts,level,msg"
            ]
        );
        let streams: HashSet<&str> = got.iter().map(|r| &*r.stream).collect();
        assert_eq!(streams.len(), 2, "two files, two streams");
        append(&d.path().join("b.csv"), "3,ERROR,more b\n");
        assert_eq!(texts(&next_lines(&mut c, 1).await), ["3,ERROR,more b"]);
    }

    #[tokio::test]
    async fn files_sharing_a_header_resume_each_at_its_own_checkpoint() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join("a.csv"), d.path().join("b.csv"));
        append(&a, "#Version: 1.0\na1\n");
        append(&b, "#Version: 1.0\nb1\nb2\n");
        let src = source(d.path(), "*.csv");
        let (mut c, router, stop_tx, task) = start_stoppable(src.clone());
        let got = next_lines(&mut c, 5).await;
        // Acknowledge everything read from both files, then stop.
        for r in &got {
            router.ack([Position {
                source: "t".into(),
                stream: r.stream.to_string(),
                end: r.end,
                line_no: r.line_no,
            }]);
        }
        let last = got
            .iter()
            .max_by_key(|r| (r.stream.clone(), r.end))
            .unwrap()
            .clone();
        ack_and_stop(d.path(), &last, router, stop_tx, task).await;
        let ckpt = path_for(&d.path().join("data"), "t");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while Registry::load(&ckpt).unwrap().streams.len() < 2 {
            assert!(std::time::Instant::now() < deadline, "both checkpointed");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        append(&a, "a2\n");
        append(&b, "b3\n");
        let (mut c2, _r2) = start(src).await;
        let mut t = texts(&next_lines(&mut c2, 2).await);
        t.sort();
        assert_eq!(t, ["a2", "b3"], "each file resumes at its own position");
    }

    #[tokio::test]
    async fn a_file_truncated_and_rewritten_with_the_same_header_is_read_again() {
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("t.csv");
        std::fs::write(&log, "ts,level,msg\n1,INFO,old one\n1,INFO,old two\n").unwrap();
        let (mut c, _router) = spawn_source(d.path(), "*.csv").await;
        let old = next_lines(&mut c, 3).await;
        std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&log)
            .unwrap();
        std::fs::write(&log, "ts,level,msg\n2,WARN,new\n").unwrap();
        let new = next_lines(&mut c, 2).await;
        assert_eq!(texts(&new), ["ts,level,msg", "2,WARN,new"]);
        assert_eq!((new[0].offset, new[0].line_no), (0, 1));
        assert_ne!(new[0].stream, old[0].stream);
    }

    #[tokio::test]
    async fn rename_and_create_reads_the_old_file_to_its_end_and_the_new_one() {
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("app.log");
        append(&log, "a1\na2\n");
        let (mut c, _router) = spawn_source(d.path(), "app.log").await;
        assert_eq!(texts(&next_lines(&mut c, 2).await), ["a1", "a2"]);
        // The writer still holds the old file: rename, write, create anew.
        let rotated = d.path().join("app.log.1");
        std::fs::rename(&log, &rotated).unwrap();
        append(&rotated, "a3\n");
        append(&log, "b1\n");
        let got = texts(&next_lines(&mut c, 2).await);
        assert!(
            got.contains(&"a3".to_string()) && got.contains(&"b1".to_string()),
            "{got:?}"
        );
        append(&log, "b2\n");
        assert_eq!(texts(&next_lines(&mut c, 1).await), ["b2"]);
    }

    #[tokio::test]
    async fn copytruncate_continues_in_the_copy_without_loss_or_repeat() {
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("app.log");
        append(&log, "a1\n");
        let (mut c, _router) = spawn_source(d.path(), "app.log*").await;
        assert_eq!(texts(&next_lines(&mut c, 1).await), ["a1"]);
        // Lines the tailer has not seen yet, then copy and truncate at once.
        append(&log, "a2\na3\n");
        std::fs::copy(&log, d.path().join("app.log.1")).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&log)
            .unwrap();
        append(&log, "b1\n");
        let got = texts(&next_lines(&mut c, 3).await);
        let mut sorted = got.clone();
        sorted.sort();
        assert_eq!(sorted, ["a2", "a3", "b1"], "{got:?}");
        append(&log, "b2\n");
        assert_eq!(texts(&next_lines(&mut c, 1).await), ["b2"]);
    }

    #[tokio::test]
    async fn a_short_file_is_read_and_resumed_by_inode() {
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("s.log");
        append(&log, "tiny");
        let router = AckRouter::default();
        let (p, mut cs) = embedded(1, 64, 1 << 20);
        let (stop_tx, stop_rx) = watch::channel(false);
        let src = source(d.path(), "*.log");
        let task = tokio::spawn(src.clone().run(
            Arc::new(p),
            router.register("t"),
            stop_rx,
            Health::default(),
        ));
        // Too short to fingerprint, no newline: read once the file is quiet.
        let got = next_lines(&mut cs[0], 1).await;
        assert_eq!(got[0].payload, b"tiny");
        ack_and_stop(d.path(), &got[0], router, stop_tx, task).await;
        // It grows into a fingerprintable file while Farol is down.
        append(&log, "\nsecond line\n");
        let (mut c2, _r2) = start(src).await;
        let again = next_lines(&mut c2, 1).await;
        assert_eq!(again[0].payload, b"second line", "resumed, not re-read");
        assert_eq!(
            again[0].stream, got[0].stream,
            "same identity across the restart"
        );
    }

    #[tokio::test]
    async fn a_file_compressed_while_down_resumes_at_its_checkpoint() {
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("app.log");
        append(&log, "one\ntwo\n");
        let router = AckRouter::default();
        let (p, mut cs) = embedded(1, 64, 1 << 20);
        let (stop_tx, stop_rx) = watch::channel(false);
        let src = source(d.path(), "app.log*");
        let task = tokio::spawn(src.clone().run(
            Arc::new(p),
            router.register("t"),
            stop_rx,
            Health::default(),
        ));
        let got = next_lines(&mut cs[0], 2).await;
        ack_and_stop(d.path(), &got[1], router, stop_tx, task).await;
        // While down: more lines, then logrotate renames and compresses.
        append(&log, "three\n");
        let mut e = flate2::write::GzEncoder::new(
            std::fs::File::create(d.path().join("app.log.1.gz")).unwrap(),
            flate2::Compression::default(),
        );
        e.write_all(&std::fs::read(&log).unwrap()).unwrap();
        e.finish().unwrap();
        std::fs::remove_file(&log).unwrap();
        append(&log, "new file\n");
        let (mut c2, _r2) = start(src).await;
        let mut got = texts(&next_lines(&mut c2, 2).await);
        got.sort();
        assert_eq!(
            got,
            ["new file", "three"],
            "only the unread line of the archive"
        );
    }

    #[tokio::test]
    async fn a_truncated_file_is_read_again_as_a_new_stream() {
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("t.log");
        std::fs::write(&log, "old one\nold two\n").unwrap();
        let (p, mut cs) = embedded(1, 64, 1 << 20);
        let (_stop, stop_rx) = watch::channel(false);
        let router = AckRouter::default();
        tokio::spawn(source(d.path(), "*.log").run(
            Arc::new(p),
            router.register("t"),
            stop_rx,
            Health::default(),
        ));
        let old = next_lines(&mut cs[0], 2).await;
        // copytruncate: the content is copied away, the file cut to zero,
        // and the writer goes on.
        std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&log)
            .unwrap();
        std::fs::write(&log, "new one\n").unwrap();
        let new = next_lines(&mut cs[0], 1).await;
        assert_eq!(new[0].payload, b"new one");
        assert_eq!((new[0].offset, new[0].line_no), (0, 1));
        assert_ne!(
            new[0].stream, old[0].stream,
            "a new stream, not offsets below the old ones"
        );
    }

    #[tokio::test]
    async fn picks_up_new_files_and_keeps_position_across_rename() {
        let d = tempfile::tempdir().unwrap();
        let (p, mut cs) = embedded(1, 64, 1 << 20);
        let (_stop, stop_rx) = watch::channel(false);
        let router = AckRouter::default();
        tokio::spawn(source(d.path(), "*.log").run(
            Arc::new(p),
            router.register("t"),
            stop_rx,
            Health::default(),
        ));
        std::fs::write(d.path().join("x.log"), "x1\n").unwrap();
        assert_eq!(next_lines(&mut cs[0], 1).await[0].payload, b"x1");
        std::fs::rename(d.path().join("x.log"), d.path().join("y.log")).unwrap();
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(d.path().join("y.log"))
            .unwrap();
        f.write_all(b"x2\n").unwrap();
        let got = next_lines(&mut cs[0], 1).await;
        assert_eq!(got[0].payload, b"x2", "renamed file continues, not re-read");
        assert_eq!(got[0].line_no, 2);
    }
}
