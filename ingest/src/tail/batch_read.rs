//! Whole files read once, for `farol batch`.

use super::*;

/// Reads whole files once (batch mode), calling `emit` for every line
/// including an unterminated last one.
pub fn read_file_lines(
    path: &Path,
    max_line_bytes: usize,
    mut emit: impl FnMut(Line),
) -> std::io::Result<u64> {
    let mut f = std::fs::File::open(path)?;
    let mut s = LineSplitter::new(0, max_line_bytes);
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        s.feed(&buf[..n], &mut emit);
    }
    if let Some(l) = s.finish() {
        emit(l);
    }
    Ok(s.next_offset())
}
