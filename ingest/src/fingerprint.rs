//! File identity. A file is known by a checksum of its first line (at most
//! [`FINGERPRINT_BYTES`] bytes), as Vector does: it survives renames and
//! copies, so a rotated file is recognised instead of being read twice.

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
    fn long_first_lines_use_the_prefix() {
        let long = vec![b'x'; 1000];
        assert!(of_prefix(&long).is_some());
    }
}
