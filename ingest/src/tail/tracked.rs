//! One followed file: its descriptor, line splitter and identity.

use super::*;

/// A file being followed.
pub(super) struct Tracked {
    pub(super) path: PathBuf,
    pub(super) file: std::fs::File,
    pub(super) splitter: LineSplitter,
    pub(super) line_no: u64,
    /// True once the path no longer matches; the file is read to its end and dropped.
    pub(super) orphaned: bool,
    /// When the file last grew.
    pub(super) last_growth: std::time::Instant,
    /// Device and inode of the open file.
    pub(super) dev: u64,
    pub(super) ino: u64,
    /// What the file was identified by.
    pub(super) ident: Identity,
    /// Joins continuation lines, when the source is multiline.
    pub(super) multi: Option<Aggregator>,
}

impl Tracked {
    /// True when the open file no longer holds what was read from it: it
    /// shrank below the read position, or its first line changed
    /// (truncated and written again, perhaps past the old position).
    pub(super) fn replaced(&self) -> bool {
        let shrunk = self
            .file
            .metadata()
            .map(|m| m.len() < self.splitter.next_offset())
            .unwrap_or(true);
        shrunk || !self.ident.matches(&self.file)
    }

    /// Line number of the last complete line (the partial one is not counted
    /// until it ends, so this is simply the current count).
    pub(super) fn line_no_at_resume(&self) -> u64 {
        self.line_no
    }
}
