//! Discovery and rotation: which files a source's globs match now, and what
//! became of the files it follows (renamed, copied, truncated, deleted).

use super::*;

impl FileSource {
    /// Finds new files, notices renamed, replaced, copied and vanished ones.
    ///
    /// A path is matched to a followed file by device and inode first (a
    /// rename keeps both), then by fingerprint: the same first line under a
    /// new inode is either a copy made by copytruncate (the followed file has
    /// shrunk: the copy takes over at the position already read) or a plain
    /// duplicate (ignored). A followed file whose path is gone or now names
    /// another inode is read to its end, then let go.
    ///
    /// Returns the gzip-compressed files matched (read whole, see [`crate::gz`]).
    pub(super) fn scan(
        &self,
        registry: &Registry,
        tracked: &mut HashMap<String, Tracked>,
        ids: &mut Identities,
    ) -> Vec<(PathBuf, (u64, u64))> {
        let mut seen: BTreeMap<PathBuf, (u64, u64)> = BTreeMap::new();
        let mut compressed = Vec::new();
        for pat in &self.patterns {
            let Ok(paths) = glob::glob(pat) else { continue };
            for p in paths.flatten() {
                if self.excluded(&p) {
                    continue;
                }
                if let Ok(m) = std::fs::metadata(&p) {
                    if m.is_file() {
                        if gz::is_gz(&p) {
                            compressed.push((p, (m.dev(), m.ino())));
                        } else {
                            seen.insert(p, (m.dev(), m.ino()));
                        }
                    }
                }
            }
        }
        for (path, id) in &seen {
            if let Some(t) = tracked.values_mut().find(|t| (t.dev, t.ino) == *id) {
                // The same file, perhaps under a new name: keep the position.
                t.path = path.clone();
                t.orphaned = false;
                continue;
            }
            let mut file = match std::fs::File::open(path) {
                Ok(f) => f,
                Err(e) => {
                    tracing::debug!(path = %path.display(), error = %e, "cannot open yet");
                    continue;
                }
            };
            let ident = match fingerprint::identify(&file) {
                Ok(Some(i)) => i,
                Ok(None) => continue, // empty; retried next scan
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cannot fingerprint");
                    continue;
                }
            };
            // A file first seen too short to fingerprint keeps its inode identity.
            let mut ident = registry
                .streams
                .keys()
                .filter_map(|k| Identity::parse_inode(&self.name, k))
                .find(|i| i.matches(&file))
                .unwrap_or(ident);
            if matches!(ident, Identity::Fingerprint(_)) {
                // A longer (then newer) prefix identity it matches wins.
                if let Some(p) = ids.best_prefix(&self.name, &file) {
                    ident = p;
                }
            }
            let mut stream = ident.stream_id(&self.name);
            if ids.truncated.get(&stream) == Some(id) && !tracked.contains_key(&stream) {
                // Truncated and written again in place with the same start:
                // new content, so a new stream, read from its beginning.
                let Ok(Some(len)) = fingerprint::prefix_through_line(&file, 0) else {
                    continue;
                };
                let Some(next) = ids.next_prefix(&self.name, &file, len) else {
                    continue;
                };
                ids.truncated.remove(&stream);
                tracing::info!(source = %self.name, path = %path.display(), "truncated file written again; reading it as a new file");
                ident = next;
                stream = ident.stream_id(&self.name);
            } else if let Some(t) = tracked.get(&stream).filter(|t| !t.replaced()) {
                // The same start as a followed file: a copy of it, or another
                // file sharing its header?
                match fingerprint::first_difference(&t.file, &file) {
                    Ok(None) => {
                        tracing::debug!(path = %path.display(), "same content as a followed file; ignored");
                        continue;
                    }
                    Ok(Some(at)) => {
                        let Ok(Some(len)) = fingerprint::prefix_through_line(&file, at) else {
                            continue; // its distinguishing line is not complete yet
                        };
                        let Some(next) = ids.next_prefix(&self.name, &file, len) else {
                            continue;
                        };
                        tracing::info!(source = %self.name, path = %path.display(), "shares its first line with a followed file; told apart by its first {len} bytes");
                        ident = next;
                        stream = ident.stream_id(&self.name);
                    }
                    Err(e) => {
                        tracing::warn!(path = %path.display(), error = %e, "cannot compare with a followed file");
                        continue;
                    }
                }
            }
            ids.known.insert(stream.clone());
            let mut carried: Option<Aggregator> = None;
            let (start, line_no) = if let Some(t) = tracked.get_mut(&stream) {
                if !t.replaced() {
                    continue;
                }
                // copytruncate: the copy holds what the shrunk file held.
                tracing::info!(source = %self.name, path = %path.display(), "continuing a truncated file in its copy");
                // The record being joined goes on in the copy.
                carried = t.multi.take();
                (t.splitter.resume_offset(), t.line_no_at_resume())
            } else {
                match registry.streams.get(&stream) {
                    Some(e) => (e.end, e.line_no),
                    None => match self.read_from {
                        ReadFrom::Beginning => (0, 0),
                        ReadFrom::End => (file.metadata().map(|m| m.len()).unwrap_or(0), 0),
                    },
                }
            };
            let splitter = if start > 0 && !ends_line_at(&mut file, start) {
                LineSplitter::after_unterminated(start, self.max_line_bytes)
            } else {
                LineSplitter::new(start, self.max_line_bytes)
            };
            tracing::info!(source = %self.name, path = %path.display(), %stream, start, "following file");
            tracked.insert(
                stream,
                Tracked {
                    path: path.clone(),
                    file,
                    splitter,
                    line_no,
                    orphaned: false,
                    last_growth: std::time::Instant::now(),
                    dev: id.0,
                    ino: id.1,
                    ident,
                    multi: carried.or_else(|| {
                        self.multiline
                            .as_ref()
                            .map(|m| Aggregator::new(m.start.clone(), self.max_line_bytes))
                    }),
                },
            );
        }
        for t in tracked.values_mut() {
            if seen.get(&t.path) != Some(&(t.dev, t.ino)) {
                t.orphaned = true;
            }
        }
        compressed
    }
}
