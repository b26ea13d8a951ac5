//! The checkpoint registry of a file source: for every file identity, the
//! position up to which its lines are durable downstream. Written atomically
//! (temporary file, fsync, rename), so a SIGKILL at any instant leaves either
//! the old or the new registry, never a torn one.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Where one file identity is durable up to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Last path the file was seen at.
    pub path: String,
    /// Byte offset just past the last durable line.
    pub end: u64,
    /// Line number of the last durable line.
    pub line_no: u64,
    /// When the entry last moved (epoch ms), for expiry.
    pub updated_ms: i64,
}

/// Checkpoint failures.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The registry file could not be read or written.
    #[error("checkpoint {path}: {source}")]
    Io {
        /// The registry path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The registry file is not valid JSON.
    #[error("checkpoint {path} is corrupt: {source}")]
    Corrupt {
        /// The registry path.
        path: PathBuf,
        /// The parse error.
        source: serde_json::Error,
    },
}

/// The registry of one source, keyed by stream (file identity).
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Registry {
    /// Entries by stream id.
    pub streams: BTreeMap<String, Entry>,
}

/// Path of a source's registry under the data dir.
pub fn path_for(data_dir: &Path, source: &str) -> PathBuf {
    let safe: String = source
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    data_dir.join("checkpoints").join(format!("{safe}.json"))
}

impl Registry {
    /// Loads a registry; a missing file is an empty registry.
    pub fn load(path: &Path) -> Result<Registry, CheckpointError> {
        match std::fs::read(path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|source| CheckpointError::Corrupt {
                    path: path.to_path_buf(),
                    source,
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Registry::default()),
            Err(source) => Err(CheckpointError::Io {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Writes the registry atomically.
    pub fn save(&self, path: &Path) -> Result<(), CheckpointError> {
        let io = |source| CheckpointError::Io {
            path: path.to_path_buf(),
            source,
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(io)?;
        let tmp = path.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| io(std::io::Error::other(e)))?;
        {
            let mut f = std::fs::File::create(&tmp).map_err(io)?;
            f.write_all(&bytes).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, path).map_err(io)?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// Moves a stream's position forward (never backwards).
    pub fn advance(&mut self, stream: &str, path: &str, end: u64, line_no: u64, now_ms: i64) {
        let e = self.streams.entry(stream.to_string()).or_insert(Entry {
            path: path.to_string(),
            end: 0,
            line_no: 0,
            updated_ms: now_ms,
        });
        if end > e.end {
            e.end = end;
            e.line_no = line_no;
            e.updated_ms = now_ms;
        }
        if !path.is_empty() {
            e.path = path.to_string();
        }
    }

    /// Drops entries not updated for `max_age_ms`.
    pub fn expire(&mut self, now_ms: i64, max_age_ms: i64) {
        self.streams
            .retain(|_, e| now_ms - e.updated_ms <= max_age_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_and_loads_atomically() {
        let d = tempfile::tempdir().unwrap();
        let p = path_for(d.path(), "web/logs");
        assert!(Registry::load(&p).unwrap().streams.is_empty());
        let mut r = Registry::default();
        r.advance("s1", "/a.log", 100, 3, 1);
        r.advance("s1", "/a.log", 50, 2, 2);
        r.save(&p).unwrap();
        let back = Registry::load(&p).unwrap();
        assert_eq!(back.streams["s1"].end, 100, "positions never move back");
        assert!(!p.with_extension("json.tmp").exists());
    }

    #[test]
    fn corrupt_registry_is_an_error_not_a_reset() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("c.json");
        std::fs::write(&p, b"{not json").unwrap();
        assert!(matches!(
            Registry::load(&p),
            Err(CheckpointError::Corrupt { .. })
        ));
    }

    #[test]
    fn old_entries_expire() {
        let mut r = Registry::default();
        r.advance("old", "/a", 1, 1, 0);
        r.advance("new", "/b", 1, 1, 1000);
        r.expire(1000, 500);
        assert!(r.streams.contains_key("new") && !r.streams.contains_key("old"));
    }
}
