//! Splitting a byte stream into lines with a maximum length. Bytes arrive in
//! chunks of any size; a line is emitted only once its terminator is seen, so
//! a half-written line is never published. Lines longer than the maximum are
//! cut, flagged, and the rest of them skipped up to the terminator.
//!
//! A reader may also give up waiting for a terminator ([`LineSplitter::finish`],
//! e.g. a file whose last line has none): the terminator that may still come
//! later is then swallowed instead of producing an empty line.

/// One complete line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The line's bytes without `\n` (and without a trailing `\r`), at most the maximum.
    pub bytes: Vec<u8>,
    /// Offset of the line's first byte.
    pub start: u64,
    /// Offset just past the terminator.
    pub end: u64,
    /// True when the line was longer than the maximum.
    pub truncated: bool,
}

impl Line {
    /// The bus record of this line: `line_no`-th line of `file` in `stream`,
    /// read while the file's modification time was `file_mtime`, at
    /// `ingest_ms` (the caller reads the clock once a chunk, not once a line).
    #[allow(clippy::too_many_arguments)]
    pub fn into_record(
        self,
        source: &std::sync::Arc<str>,
        stream: &std::sync::Arc<str>,
        kind: farol_common::model::RecordKind,
        platform: Option<String>,
        file: Option<&str>,
        line_no: u64,
        file_mtime: Option<farol_common::time::Millis>,
        ingest_ms: farol_common::time::Millis,
    ) -> farol_common::model::RawRecord {
        farol_common::model::RawRecord {
            source: source.clone(),
            stream: stream.clone(),
            kind,
            platform,
            file: file.map(str::to_string),
            line_no,
            line_span: 0,
            offset: self.start,
            end: self.end,
            payload: self.bytes,
            truncated: self.truncated,
            ingest_ms,
            file_mtime,
            arrival_delay_ms: None,
        }
    }
}

/// Modification time of an open file in epoch milliseconds, if the platform
/// reports one.
pub fn mtime_ms(meta: &std::fs::Metadata) -> Option<farol_common::time::Millis> {
    let t = meta.modified().ok()?;
    let d = t.duration_since(std::time::UNIX_EPOCH).ok()?;
    i64::try_from(d.as_millis()).ok()
}

/// Incremental line splitter.
#[derive(Debug)]
pub struct LineSplitter {
    max: usize,
    carry: Vec<u8>,
    carry_start: u64,
    /// Offset of the next byte to be fed.
    pos: u64,
    truncated: bool,
    /// The previous line was emitted without its terminator; drop a `\n` (or
    /// `\r\n`) arriving first.
    skip_lf: bool,
}

impl LineSplitter {
    /// A splitter whose next byte is at `pos`.
    pub fn new(pos: u64, max: usize) -> Self {
        LineSplitter {
            max,
            carry: Vec::new(),
            carry_start: pos,
            pos,
            truncated: false,
            skip_lf: false,
        }
    }

    /// A splitter resuming at `pos` right after a line that was emitted
    /// without its terminator (so a late `\n` is not read as an empty line).
    pub fn after_unterminated(pos: u64, max: usize) -> Self {
        let mut s = LineSplitter::new(pos, max);
        s.skip_lf = true;
        s
    }

    /// True while bytes of an unfinished line are held.
    pub fn has_partial(&self) -> bool {
        !self.carry.is_empty() || self.truncated
    }

    /// Offset of the first byte not yet part of an emitted line: where a
    /// reader must resume to lose nothing.
    pub fn resume_offset(&self) -> u64 {
        self.carry_start
    }

    /// Offset of the next byte expected by [`feed`](Self::feed).
    pub fn next_offset(&self) -> u64 {
        self.pos
    }

    /// Feeds a chunk, calling `emit` for each line it completes.
    pub fn feed(&mut self, chunk: &[u8], mut emit: impl FnMut(Line)) {
        let mut rest = chunk;
        if self.skip_lf && !rest.is_empty() {
            self.skip_lf = false;
            let skip = if rest.starts_with(b"\r\n") {
                2
            } else if rest.starts_with(b"\n") {
                1
            } else {
                0
            };
            rest = &rest[skip..];
            self.pos += skip as u64;
            self.carry_start = self.pos;
        }
        while !rest.is_empty() {
            match memchr::memchr(b'\n', rest) {
                Some(i) => {
                    self.append(&rest[..i]);
                    self.pos += (i + 1) as u64;
                    let mut bytes = std::mem::take(&mut self.carry);
                    if bytes.last() == Some(&b'\r') && !self.truncated {
                        bytes.pop();
                    }
                    emit(Line {
                        bytes,
                        start: self.carry_start,
                        end: self.pos,
                        truncated: self.truncated,
                    });
                    self.truncated = false;
                    self.carry_start = self.pos;
                    rest = &rest[i + 1..];
                }
                None => {
                    self.append(rest);
                    self.pos += rest.len() as u64;
                    rest = &[];
                }
            }
        }
    }

    /// Emits a final unterminated line, if any (batch mode at end of input).
    pub fn finish(&mut self) -> Option<Line> {
        if self.carry.is_empty() && !self.truncated {
            return None;
        }
        let mut bytes = std::mem::take(&mut self.carry);
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
        let line = Line {
            bytes,
            start: self.carry_start,
            end: self.pos,
            truncated: self.truncated,
        };
        self.truncated = false;
        self.carry_start = self.pos;
        self.skip_lf = true;
        Some(line)
    }

    fn append(&mut self, part: &[u8]) {
        let room = self.max.saturating_sub(self.carry.len());
        if part.len() > room {
            self.carry.extend_from_slice(&part[..room]);
            self.truncated = true;
        } else {
            self.carry.extend_from_slice(part);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]], max: usize) -> (Vec<Line>, u64) {
        let mut s = LineSplitter::new(0, max);
        let mut out = vec![];
        for c in chunks {
            s.feed(c, |l| out.push(l));
        }
        (out, s.resume_offset())
    }

    #[test]
    fn lines_across_chunks_with_offsets() {
        let (lines, resume) = split(&[b"ab", b"c\r\nde\nf"], 100);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].bytes, b"abc");
        assert_eq!((lines[0].start, lines[0].end), (0, 5));
        assert_eq!(lines[1].bytes, b"de");
        assert_eq!((lines[1].start, lines[1].end), (5, 8));
        assert_eq!(resume, 8, "the partial 'f' is not consumed");
    }

    #[test]
    fn long_lines_are_cut_and_flagged() {
        let big = vec![b'x'; 10_000];
        let (lines, _) = split(&[&big[..4000], &big[4000..], b"\nok\n"], 64);
        assert_eq!(lines.len(), 2);
        assert!(lines[0].truncated);
        assert_eq!(lines[0].bytes.len(), 64);
        assert_eq!(lines[0].end, 10_001);
        assert_eq!(lines[1].bytes, b"ok");
        assert!(!lines[1].truncated);
    }

    #[test]
    fn a_late_terminator_after_finish_is_not_an_empty_line() {
        let mut s = LineSplitter::new(0, 10);
        let mut out = vec![];
        s.feed(b"a\nb", |l| out.push(l));
        out.push(s.finish().unwrap());
        s.feed(b"\r\nc\n", |l| out.push(l));
        let texts: Vec<&[u8]> = out.iter().map(|l| l.bytes.as_slice()).collect();
        assert_eq!(texts, vec![&b"a"[..], b"b", b"c"]);
        assert_eq!(out[2].start, 5);
        let mut r = LineSplitter::after_unterminated(3, 10);
        let mut got = vec![];
        r.feed(b"\nd\n", |l| got.push(l));
        assert_eq!((got[0].bytes.as_slice(), got[0].start), (&b"d"[..], 4));
    }

    #[test]
    fn finish_flushes_the_unterminated_tail() {
        let mut s = LineSplitter::new(0, 10);
        s.feed(b"a\nb", |_| {});
        let l = s.finish().unwrap();
        assert_eq!((l.bytes.as_slice(), l.start, l.end), (&b"b"[..], 2, 3));
    }
}
