//! The stream ids a file source knows, and how files sharing a first line
//! are told apart by a longer prefix (see [`crate::fingerprint`]).

use super::*;

/// The stream ids a source knows (checkpointed or followed in this run) and
/// the files it saw truncated, to tell files with a shared first line apart
/// (see [`fingerprint`]).
pub(super) struct Identities {
    pub(super) known: BTreeSet<String>,
    /// Streams let go because their file was truncated, by device and inode.
    pub(super) truncated: HashMap<String, (u64, u64)>,
}

impl Identities {
    /// The longest, then newest, prefix identity of `source` that `file` matches.
    pub(super) fn best_prefix(&self, source: &str, file: &std::fs::File) -> Option<Identity> {
        self.known
            .iter()
            .filter_map(|k| Identity::parse_prefix(source, k))
            .filter(|i| i.matches(file))
            .max_by_key(|i| match i {
                Identity::Prefix {
                    len, generation, ..
                } => (*len, *generation),
                _ => (0, 0),
            })
    }

    /// A new prefix identity over the first `len` bytes of `file`, one
    /// generation past any known identity of the same bytes.
    pub(super) fn next_prefix(
        &self,
        source: &str,
        file: &std::fs::File,
        len: u64,
    ) -> Option<Identity> {
        let hash = fingerprint::hash_prefix(file, len).ok().flatten()?;
        let generation = self
            .known
            .iter()
            .filter_map(|k| Identity::parse_prefix(source, k))
            .filter_map(|i| match i {
                Identity::Prefix {
                    len: l,
                    hash: h,
                    generation,
                } if l == len && h == hash => Some(generation + 1),
                _ => None,
            })
            .max()
            .unwrap_or(0);
        Some(Identity::Prefix {
            len,
            hash,
            generation,
        })
    }
}
