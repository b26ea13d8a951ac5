//! File identity. A file is known by a checksum of its first line (at most
//! [`FINGERPRINT_BYTES`] bytes), as Vector does: it survives renames and
//! copies, so a rotated file is recognised instead of being read twice.
//! A file too short to fingerprint (no complete first line yet) is known by
//! device and inode plus a checksum of the bytes it had, which guards against
//! a reused inode; it keeps that identity for good.
//!
//! Files often share their first line (CSV and IIS headers, banners,
//! `#Version` lines). Such a file is told apart by a longer *prefix*
//! identity: its first `len` bytes, through the line where its content first
//! differs from the file it was confused with, plus a generation that counts
//! rewrites of the same content (a file truncated and written again with the
//! same header). The longest (then newest) prefix identity a file matches
//! wins over its first-line fingerprint, so the choice survives restarts.

use std::os::unix::fs::FileExt;

/// How many leading bytes identify a file at most.
pub const FINGERPRINT_BYTES: usize = 256;

/// Fingerprint of a file from its leading bytes, or `None` while the file is
/// too short to identify (no complete first line and fewer than
/// [`FINGERPRINT_BYTES`] bytes).
pub fn of_prefix(prefix: &[u8]) -> Option<u64> {
    let head = &prefix[..prefix.len().min(FINGERPRINT_BYTES)];
    let end = match head.iter().position(|b| *b == b'\n') {
        Some(nl) => nl + 1,
        None if head.len() == FINGERPRINT_BYTES => FINGERPRINT_BYTES,
        None => return None,
    };
    Some(xxhash_rust::xxh3::xxh3_64(&head[..end]))
}

/// Reads the leading bytes of a file (without moving its cursor) and
/// fingerprints them.
pub fn of_file(file: &std::fs::File) -> std::io::Result<Option<u64>> {
    let mut buf = [0u8; FINGERPRINT_BYTES];
    let mut n = 0;
    while n < buf.len() {
        let r = file.read_at(&mut buf[n..], n as u64)?;
        if r == 0 {
            break;
        }
        n += r;
    }
    Ok(of_prefix(&buf[..n]))
}

/// How a file is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identity {
    /// Checksum of the first line.
    Fingerprint(u64),
    /// Checksum of the first `len` bytes (ending at a line end), and the
    /// generation of that content.
    Prefix {
        /// How many leading bytes the checksum covers.
        len: u64,
        /// Their checksum.
        hash: u64,
        /// Rewrites of the same prefix seen before this one.
        generation: u32,
    },
    /// Device, inode, and checksum of the first `len` bytes.
    Inode {
        /// Device.
        dev: u64,
        /// Inode.
        ino: u64,
        /// How many leading bytes the checksum covers.
        len: u64,
        /// Their checksum.
        hash: u64,
    },
}

impl Identity {
    /// The stream id of this identity within `source`.
    pub fn stream_id(&self, source: &str) -> String {
        match self {
            Identity::Fingerprint(fp) => format!("{source}:{fp:016x}"),
            Identity::Prefix {
                len,
                hash,
                generation,
            } => format!("{source}:x{len}.{hash:016x}.{generation}"),
            Identity::Inode {
                dev,
                ino,
                len,
                hash,
            } => {
                format!("{source}:i{dev:x}.{ino:x}.{len}.{hash:016x}")
            }
        }
    }

    /// Reads an inode identity back from a stream id of `source`.
    pub fn parse_inode(source: &str, stream: &str) -> Option<Identity> {
        let rest = stream.strip_prefix(source)?.strip_prefix(":i")?;
        let mut p = rest.split('.');
        let dev = u64::from_str_radix(p.next()?, 16).ok()?;
        let ino = u64::from_str_radix(p.next()?, 16).ok()?;
        let len = p.next()?.parse().ok()?;
        let hash = u64::from_str_radix(p.next()?, 16).ok()?;
        Some(Identity::Inode {
            dev,
            ino,
            len,
            hash,
        })
    }

    /// Reads a prefix identity back from a stream id of `source`.
    pub fn parse_prefix(source: &str, stream: &str) -> Option<Identity> {
        let rest = stream.strip_prefix(source)?.strip_prefix(":x")?;
        let mut p = rest.split('.');
        let len = p.next()?.parse().ok()?;
        let hash = u64::from_str_radix(p.next()?, 16).ok()?;
        let generation = p.next()?.parse().ok()?;
        Some(Identity::Prefix {
            len,
            hash,
            generation,
        })
    }

    /// True while `file` is still the file this identity names.
    pub fn matches(&self, file: &std::fs::File) -> bool {
        match *self {
            Identity::Fingerprint(fp) => of_file(file).ok().flatten() == Some(fp),
            Identity::Prefix { len, hash, .. } => {
                hash_prefix(file, len).ok().flatten() == Some(hash)
            }
            Identity::Inode {
                dev,
                ino,
                len,
                hash,
            } => {
                use std::os::unix::fs::MetadataExt;
                let Ok(m) = file.metadata() else { return false };
                if m.dev() != dev || m.ino() != ino || m.len() < len {
                    return false;
                }
                let mut buf = vec![0u8; len as usize];
                file.read_exact_at(&mut buf, 0).is_ok() && xxhash_rust::xxh3::xxh3_64(&buf) == hash
            }
        }
    }
}

/// Largest prefix identity read: a difference further in is not looked for.
pub const MAX_PREFIX_BYTES: u64 = 64 * 1024;

/// Checksum of the first `len` bytes of `file`, `None` if it is shorter.
pub fn hash_prefix(file: &std::fs::File, len: u64) -> std::io::Result<Option<u64>> {
    let Ok(n) = usize::try_from(len) else {
        return Ok(None);
    };
    if file.metadata()?.len() < len {
        return Ok(None);
    }
    let mut buf = vec![0u8; n];
    file.read_exact_at(&mut buf, 0)?;
    Ok(Some(xxhash_rust::xxh3::xxh3_64(&buf)))
}

/// Offset of the first byte where `a` and `b` differ within their common
/// length (at most [`MAX_PREFIX_BYTES`]); `None` when one holds the other's
/// start (a copy, or the same file grown).
pub fn first_difference(a: &std::fs::File, b: &std::fs::File) -> std::io::Result<Option<u64>> {
    let common = a
        .metadata()?
        .len()
        .min(b.metadata()?.len())
        .min(MAX_PREFIX_BYTES);
    let mut x = vec![0u8; common as usize];
    let mut y = vec![0u8; common as usize];
    a.read_exact_at(&mut x, 0)?;
    b.read_exact_at(&mut y, 0)?;
    Ok(x.iter().zip(&y).position(|(p, q)| p != q).map(|i| i as u64))
}

/// Length of `file`'s prefix through the end of the line holding byte `at`
/// (at least its first line), or `None` while that line has no end yet.
pub fn prefix_through_line(file: &std::fs::File, at: u64) -> std::io::Result<Option<u64>> {
    let size = file.metadata()?.len().min(MAX_PREFIX_BYTES);
    let mut buf = vec![0u8; size as usize];
    file.read_exact_at(&mut buf, 0)?;
    let from = usize::try_from(at).unwrap_or(usize::MAX).min(buf.len());
    Ok(buf[from..]
        .iter()
        .position(|b| *b == b'\n')
        .map(|i| (from + i + 1) as u64))
}

/// Identifies a file: by fingerprint when it has a first line, by inode when
/// it is too short, `None` when it is empty.
pub fn identify(file: &std::fs::File) -> std::io::Result<Option<Identity>> {
    use std::os::unix::fs::MetadataExt;
    if let Some(fp) = of_file(file)? {
        return Ok(Some(Identity::Fingerprint(fp)));
    }
    let m = file.metadata()?;
    if m.len() == 0 {
        return Ok(None);
    }
    let len = m.len().min(FINGERPRINT_BYTES as u64);
    let mut buf = vec![0u8; len as usize];
    file.read_exact_at(&mut buf, 0)?;
    Ok(Some(Identity::Inode {
        dev: m.dev(),
        ino: m.ino(),
        len,
        hash: xxhash_rust::xxh3::xxh3_64(&buf),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_for_a_complete_first_line() {
        assert_eq!(of_prefix(b"partial"), None);
        assert!(of_prefix(b"line\n").is_some());
    }

    #[test]
    fn only_the_first_line_matters() {
        assert_eq!(of_prefix(b"a\nb\n"), of_prefix(b"a\nccc\n"));
        assert_ne!(of_prefix(b"a\n"), of_prefix(b"b\n"));
    }

    #[test]
    fn short_files_are_known_by_inode_until_replaced() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("s.log");
        std::fs::write(&p, b"hi").unwrap();
        let f = std::fs::File::open(&p).unwrap();
        let id = identify(&f).unwrap().unwrap();
        assert!(matches!(id, Identity::Inode { len: 2, .. }));
        let sid = id.stream_id("src");
        assert_eq!(Identity::parse_inode("src", &sid), Some(id));
        std::fs::write(&p, b"hi there\n").unwrap();
        assert!(id.matches(&f), "growing keeps the identity");
        std::fs::write(&p, b"ho").unwrap();
        assert!(!id.matches(&f), "rewritten content does not");
        std::fs::write(&p, b"").unwrap();
        assert_eq!(identify(&f).unwrap(), None);
    }

    #[test]
    fn prefix_identities_round_trip_and_tell_shared_headers_apart() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join("a.csv"), d.path().join("b.csv"));
        std::fs::write(&a, b"ts,level,msg\n1,INFO,x\n").unwrap();
        std::fs::write(&b, b"ts,level,msg\n2,WARN,y\n").unwrap();
        let (fa, fb) = (
            std::fs::File::open(&a).unwrap(),
            std::fs::File::open(&b).unwrap(),
        );
        assert_eq!(of_file(&fa).unwrap(), of_file(&fb).unwrap(), "same header");
        let at = first_difference(&fa, &fb).unwrap().unwrap();
        assert_eq!(at, 13);
        let len = prefix_through_line(&fb, at).unwrap().unwrap();
        assert_eq!(len, 22);
        let id = Identity::Prefix {
            len,
            hash: hash_prefix(&fb, len).unwrap().unwrap(),
            generation: 2,
        };
        assert_eq!(Identity::parse_prefix("s", &id.stream_id("s")), Some(id));
        assert!(id.matches(&fb) && !id.matches(&fa));
    }

    #[test]
    fn long_first_lines_use_the_prefix() {
        let long = vec![b'x'; 1000];
        assert!(of_prefix(&long).is_some());
    }
}
