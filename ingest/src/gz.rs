//! Gzip-compressed rotated files (`app.log.2.gz`): identified by the
//! fingerprint of their decompressed first line — the same as the file they
//! were compressed from — so a file rotated and compressed while Farol was
//! down resumes at its checkpoint in the decompressed stream instead of being
//! read again or skipped.

use crate::fingerprint::{of_prefix, FINGERPRINT_BYTES};
use crate::lines::{Line, LineSplitter};
use flate2::read::MultiGzDecoder;
use std::io::Read;
use std::path::Path;

/// True for paths this module reads.
pub fn is_gz(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "gz")
}

fn decoder(path: &Path) -> std::io::Result<MultiGzDecoder<std::io::BufReader<std::fs::File>>> {
    Ok(MultiGzDecoder::new(std::io::BufReader::new(
        std::fs::File::open(path)?,
    )))
}

/// Fingerprint of the decompressed content (`None` while too short).
pub fn fingerprint(path: &Path) -> std::io::Result<Option<u64>> {
    let mut d = decoder(path)?;
    let mut buf = [0u8; FINGERPRINT_BYTES];
    let mut n = 0;
    while n < buf.len() {
        let r = d.read(&mut buf[n..])?;
        if r == 0 {
            break;
        }
        n += r;
    }
    Ok(of_prefix(&buf[..n]))
}

/// Decompresses `path` and calls `emit` for every line (offsets in the
/// decompressed stream) until it returns false.
pub fn read_lines(
    path: &Path,
    max_line_bytes: usize,
    mut emit: impl FnMut(Line) -> bool,
) -> std::io::Result<()> {
    let mut d = decoder(path)?;
    let mut s = LineSplitter::new(0, max_line_bytes);
    let mut buf = vec![0u8; 64 * 1024];
    let mut go = true;
    while go {
        let n = d.read(&mut buf)?;
        if n == 0 {
            break;
        }
        s.feed(&buf[..n], |l| {
            if go {
                go = emit(l);
            }
        });
    }
    if go {
        if let Some(l) = s.finish() {
            emit(l);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn same_fingerprint_as_the_uncompressed_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.log.1.gz");
        let mut e = flate2::write::GzEncoder::new(
            std::fs::File::create(&p).unwrap(),
            flate2::Compression::default(),
        );
        e.write_all(b"first line\nsecond\nthird").unwrap();
        e.finish().unwrap();
        assert_eq!(fingerprint(&p).unwrap(), of_prefix(b"first line\n"));
        let mut got = vec![];
        read_lines(&p, 100, |l| {
            got.push((String::from_utf8(l.bytes).unwrap(), l.end));
            true
        })
        .unwrap();
        assert_eq!(
            got,
            vec![
                ("first line".to_string(), 11),
                ("second".to_string(), 18),
                ("third".to_string(), 23)
            ]
        );
    }

    #[test]
    fn corrupt_archives_are_errors() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("bad.gz");
        std::fs::write(&p, b"\x1f\x8b\x08\x00garbage").unwrap();
        assert!(read_lines(&p, 100, |_| true).is_err());
    }
}
