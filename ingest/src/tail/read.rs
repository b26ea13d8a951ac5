//! Reading: new lines of a followed file and whole compressed rotations,
//! published in order, pausing while the bus is full.

use super::*;

impl FileSource {
    /// Reads a compressed rotated file from its checkpoint, unless the file
    /// it was compressed from is still being followed (that one finishes
    /// through its open descriptor).
    pub(super) async fn read_gz(
        &self,
        path: &Path,
        registry: &Registry,
        tracked: &HashMap<String, Tracked>,
        producer: &dyn Producer,
        shutdown: &mut watch::Receiver<bool>,
    ) -> std::io::Result<GzOutcome> {
        let p = path.to_path_buf();
        let fp = tokio::task::spawn_blocking(move || gz::fingerprint(&p))
            .await
            .map_err(std::io::Error::other)??;
        let Some(fp) = fp else {
            return Ok(GzOutcome::Later);
        };
        let stream = Identity::Fingerprint(fp).stream_id(&self.name);
        if tracked.contains_key(&stream) {
            return Ok(GzOutcome::Later);
        }
        let start = match registry.streams.get(&stream) {
            Some(e) => e.end,
            None if self.read_from == ReadFrom::End => return Ok(GzOutcome::Done),
            None => 0,
        };
        tracing::info!(source = %self.name, path = %path.display(), %stream, start, "reading compressed file");
        let (tx, mut rx) = mpsc::channel::<Line>(1024);
        let (p, max) = (path.to_path_buf(), self.max_line_bytes);
        let reader = tokio::task::spawn_blocking(move || {
            gz::read_lines(&p, max, |l| tx.blocking_send(l).is_ok())
        });
        let path_str = path.to_string_lossy().into_owned();
        let mtime = std::fs::metadata(path).ok().as_ref().and_then(mtime_ms);
        let ids = (self.name.as_str().into(), stream.as_str().into());
        let mut line_no = 0u64;
        while let Some(l) = rx.recv().await {
            line_no += 1;
            if l.end <= start {
                continue;
            }
            let rec = self.record(
                Numbered::single(l, line_no),
                &ids,
                &path_str,
                mtime,
                now_ms(),
            );
            tokio::select! {
                r = publish_paced(producer, rec) => if r.is_err() { return Ok(GzOutcome::Stopped) },
                _ = shutdown.changed() => return Ok(GzOutcome::Stopped),
            }
            metrics()
                .records_read
                .with_label_values(&[&self.name])
                .inc();
        }
        reader.await.map_err(std::io::Error::other)??;
        Ok(GzOutcome::Done)
    }

    pub(super) async fn read_available(
        &self,
        stream: &str,
        t: &mut Tracked,
        producer: &dyn Producer,
        shutdown: &mut watch::Receiver<bool>,
    ) -> std::io::Result<ReadOutcome> {
        if t.replaced() {
            // Truncated in place (copytruncate): what follows is a new file
            // for all purposes. The source lets it go; the next scan
            // fingerprints its new first line as a new stream, read from the start.
            return Ok(ReadOutcome::Truncated);
        }
        t.file.seek(SeekFrom::Start(t.splitter.next_offset()))?;
        let mut buf = vec![0u8; CHUNK];
        let path_str = t.path.to_string_lossy().into_owned();
        loop {
            if *shutdown.borrow() {
                return Ok(ReadOutcome::Stopped);
            }
            let n = t.file.read(&mut buf)?;
            let mut lines: Vec<Line> = Vec::new();
            let mut flush_multi = false;
            if n == 0 {
                let quiet = t.last_growth.elapsed();
                if quiet >= self.partial_line_timeout && t.splitter.has_partial() {
                    // The writer left an unterminated last line and went quiet.
                    lines.extend(t.splitter.finish());
                }
                flush_multi = match (&t.multi, &self.multiline) {
                    (Some(a), Some(m)) => {
                        quiet >= m.timeout && (a.has_pending() || !lines.is_empty())
                    }
                    _ => false,
                };
                if lines.is_empty() && !flush_multi {
                    return Ok(ReadOutcome::Eof);
                }
            } else {
                t.last_growth = std::time::Instant::now();
                metrics()
                    .bytes_read
                    .with_label_values(&[&self.name])
                    .inc_by(n as u64);
                t.splitter.feed(&buf[..n], |l| lines.push(l));
            }
            let mut records: Vec<Numbered> = Vec::with_capacity(lines.len());
            for l in lines {
                t.line_no += 1;
                let numbered = Numbered::single(l, t.line_no);
                match &mut t.multi {
                    Some(a) => records.extend(a.push(numbered)),
                    None => records.push(numbered),
                }
            }
            if flush_multi {
                records.extend(t.multi.as_mut().and_then(Aggregator::flush));
            }
            // Read after the bytes: every line read was written before it.
            let mtime = t.file.metadata().ok().as_ref().and_then(mtime_ms);
            let truncated = records.iter().filter(|n| n.line.truncated).count();
            if truncated > 0 {
                metrics()
                    .truncated_lines
                    .with_label_values(&[&self.name])
                    .inc_by(truncated as u64);
            }
            let count = records.len() as u64;
            let now = now_ms();
            let ids = (self.name.as_str().into(), stream.into());
            let records: Vec<RawRecord> = records
                .into_iter()
                .map(|n| self.record(n, &ids, &path_str, mtime, now))
                .collect();
            // One publish a read chunk: the bus takes the run at once.
            tokio::select! {
                r = publish_paced_all(producer, &self.name, records) => {
                    if r.is_err() {
                        return Ok(ReadOutcome::Stopped);
                    }
                }
                _ = shutdown.changed() => return Ok(ReadOutcome::Stopped),
            }
            metrics()
                .records_read
                .with_label_values(&[&self.name])
                .inc_by(count);
        }
    }
}

/// True when the byte before `pos` is a line terminator (or `pos` is 0).
pub(super) fn ends_line_at(file: &mut std::fs::File, pos: u64) -> bool {
    if pos == 0 {
        return true;
    }
    let mut b = [0u8; 1];
    match file
        .seek(SeekFrom::Start(pos - 1))
        .and_then(|_| file.read_exact(&mut b))
    {
        Ok(()) => b[0] == b'\n',
        Err(_) => true,
    }
}

pub(super) enum GzOutcome {
    Done,
    Later,
    Stopped,
}

pub(super) enum ReadOutcome {
    Eof,
    Truncated,
    Stopped,
}
