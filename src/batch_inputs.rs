//! What `farol batch` reads: its arguments expanded into files — globs,
//! and directories walked recursively (hidden entries and binary files
//! skipped) — with every path that cannot be read reported instead of
//! aborting the others.

use std::io::Read;
use std::path::{Path, PathBuf};

/// Bytes looked at to tell a binary file from a text one.
const SNIFF: usize = 8192;

/// A path that could not be used, and why.
#[derive(Debug)]
pub struct Failed {
    /// The argument or file.
    pub path: String,
    /// Why.
    pub why: String,
}

/// The expansion of `farol batch`'s arguments.
#[derive(Debug, Default)]
pub struct Inputs {
    /// Text files to read, in argument order (directories sorted).
    pub files: Vec<PathBuf>,
    /// Binary files skipped.
    pub skipped: Vec<PathBuf>,
    /// Paths that could not be read.
    pub failed: Vec<Failed>,
}

/// True when the start of the file holds a NUL byte or is not UTF-8 in a
/// way a log would never be (compressed archives, executables, images).
pub fn is_binary(path: &Path) -> std::io::Result<bool> {
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; SNIFF];
    let mut n = 0;
    while n < buf.len() {
        let k = f.read(&mut buf[n..])?;
        if k == 0 {
            break;
        }
        n += k;
    }
    let head = &buf[..n];
    if head.contains(&0) {
        return Ok(true);
    }
    // Gzip, zip, zstd, bzip2, xz: compressed, not lines.
    const MAGIC: &[&[u8]] = &[
        b"\x1f\x8b",
        b"PK\x03\x04",
        b"\x28\xb5\x2f\xfd",
        b"BZh",
        b"\xfd7zXZ",
    ];
    Ok(MAGIC.iter().any(|m| head.starts_with(m)))
}

impl Inputs {
    fn add_file(&mut self, path: PathBuf) {
        match is_binary(&path) {
            Ok(false) => self.files.push(path),
            Ok(true) => self.skipped.push(path),
            Err(e) => self.failed.push(Failed {
                path: path.display().to_string(),
                why: e.to_string(),
            }),
        }
    }

    fn walk(&mut self, dir: &Path) {
        let rd = match std::fs::read_dir(dir) {
            Ok(rd) => rd,
            Err(e) => {
                self.failed.push(Failed {
                    path: dir.display().to_string(),
                    why: e.to_string(),
                });
                return;
            }
        };
        let mut entries: Vec<PathBuf> = Vec::new();
        for e in rd {
            match e {
                Ok(e) => entries.push(e.path()),
                Err(err) => self.failed.push(Failed {
                    path: dir.display().to_string(),
                    why: err.to_string(),
                }),
            }
        }
        entries.sort();
        for p in entries {
            let hidden = p
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if hidden {
                continue;
            }
            // Directory symlinks are not followed (no cycles); file
            // symlinks are read.
            match std::fs::symlink_metadata(&p) {
                Ok(m) if m.is_dir() => self.walk(&p),
                Ok(m) if m.file_type().is_symlink() => {
                    if p.is_file() {
                        self.add_file(p);
                    }
                }
                Ok(m) if m.is_file() => self.add_file(p),
                Ok(_) => {}
                Err(e) => self.failed.push(Failed {
                    path: p.display().to_string(),
                    why: e.to_string(),
                }),
            }
        }
    }
}

/// Expands files, directories and globs.
pub fn expand(args: &[String]) -> Inputs {
    let mut out = Inputs::default();
    for a in args {
        let matches: Vec<PathBuf> = match glob::glob(a) {
            Ok(paths) => paths.flatten().collect(),
            Err(e) => {
                out.failed.push(Failed {
                    path: a.clone(),
                    why: format!("bad glob: {e}"),
                });
                continue;
            }
        };
        if matches.is_empty() {
            let why = match std::fs::metadata(a) {
                Err(e) => e.to_string(),
                Ok(_) => "not readable".into(),
            };
            out.failed.push(Failed {
                path: a.clone(),
                why,
            });
            continue;
        }
        for p in matches {
            if p.is_dir() {
                out.walk(&p);
            } else {
                out.add_file(p);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_recursively_binaries_skipped_missing_reported() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("a/one.log"), "hello\n").unwrap();
        std::fs::write(root.join("a/b/two.log"), "world\n").unwrap();
        std::fs::write(root.join("a/b/core"), b"\x7fELF\x00\x01").unwrap();
        std::fs::write(root.join("a/b/old.log.gz"), b"\x1f\x8b\x08\x00").unwrap();
        std::fs::write(root.join("a/.hidden.log"), "x\n").unwrap();
        let missing = root.join("nope.log").display().to_string();
        let got = expand(&[root.join("a").display().to_string(), missing.clone()]);
        assert_eq!(
            got.files,
            vec![root.join("a/b/two.log"), root.join("a/one.log")]
        );
        assert_eq!(got.skipped.len(), 2);
        assert_eq!(got.failed.len(), 1);
        assert_eq!(got.failed[0].path, missing);
    }
}
