//! Multiline records: consecutive lines joined into one record until a line
//! matches the start pattern (a Java stack trace under its log line), with a
//! flush timeout so the last record of a quiet file is not held forever.
//! A record's position is that of its last line, so a checkpoint never
//! splits a record: a restart re-reads it whole.

use crate::lines::Line;
use regex::bytes::Regex;

/// One line with its line number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Numbered {
    /// The line (or joined lines).
    pub line: Line,
    /// Line number of its first line.
    pub line_no: u64,
    /// Line number of its last line (a checkpoint after this record resumes
    /// counting from it).
    pub last_line_no: u64,
}

impl Numbered {
    /// A single line.
    pub fn single(line: Line, line_no: u64) -> Self {
        Numbered {
            line,
            line_no,
            last_line_no: line_no,
        }
    }
}

/// Joins continuation lines onto the record they belong to.
#[derive(Debug)]
pub struct Aggregator {
    start: Regex,
    max_bytes: usize,
    pending: Option<Numbered>,
}

impl Aggregator {
    /// Records start at lines matching `start`; joined records are capped at `max_bytes`.
    pub fn new(start: Regex, max_bytes: usize) -> Self {
        Aggregator {
            start,
            max_bytes,
            pending: None,
        }
    }

    /// Feeds a line; returns the record it completes, if any.
    pub fn push(&mut self, n: Numbered) -> Option<Numbered> {
        if self.start.is_match(&n.line.bytes) {
            return self.pending.replace(n);
        }
        match &mut self.pending {
            None => {
                // Continuation without a start (file begins mid-record): a record of its own.
                self.pending = Some(n);
                None
            }
            Some(p) => {
                let room = self.max_bytes.saturating_sub(p.line.bytes.len());
                if room > n.line.bytes.len() {
                    p.line.bytes.push(b'\n');
                    p.line.bytes.extend_from_slice(&n.line.bytes);
                } else {
                    let take = room.saturating_sub(1).min(n.line.bytes.len());
                    if take > 0 {
                        p.line.bytes.push(b'\n');
                        p.line.bytes.extend_from_slice(&n.line.bytes[..take]);
                    }
                    p.line.truncated = true;
                }
                p.line.truncated |= n.line.truncated;
                p.line.end = n.line.end;
                p.last_line_no = n.last_line_no;
                None
            }
        }
    }

    /// True while a record is held.
    pub fn has_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// Emits the held record (end of input, or the flush timeout).
    pub fn flush(&mut self) -> Option<Numbered> {
        self.pending.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(text: &str, start: u64, line_no: u64) -> Numbered {
        Numbered {
            line: Line {
                bytes: text.as_bytes().to_vec(),
                start,
                end: start + text.len() as u64 + 1,
                truncated: false,
            },
            line_no,
            last_line_no: line_no,
        }
    }

    #[test]
    fn stack_traces_join_their_log_line() {
        let mut a = Aggregator::new(Regex::new(r"^\d{4}-").unwrap(), 1024);
        assert_eq!(a.push(n("2024-01-01 ERROR boom", 0, 1)), None);
        assert_eq!(a.push(n("java.lang.X: y", 22, 2)), None);
        assert_eq!(a.push(n("\tat a.b(C.java:1)", 37, 3)), None);
        let first = a.push(n("2024-01-01 INFO ok", 55, 4)).unwrap();
        assert_eq!(
            first.line.bytes,
            b"2024-01-01 ERROR boom\njava.lang.X: y\n\tat a.b(C.java:1)"
        );
        assert_eq!(
            (first.line_no, first.line.start, first.line.end),
            (1, 0, 55)
        );
        let last = a.flush().unwrap();
        assert_eq!(
            (last.line_no, last.line.bytes.as_slice()),
            (4, &b"2024-01-01 INFO ok"[..])
        );
    }

    #[test]
    fn joined_records_are_capped() {
        let mut a = Aggregator::new(Regex::new(r"^S").unwrap(), 10);
        a.push(n("S12345", 0, 1));
        a.push(n("continuation", 7, 2));
        let r = a.flush().unwrap();
        assert!(r.line.truncated);
        assert!(r.line.bytes.len() <= 10, "{}", r.line.bytes.len());
        assert_eq!(r.line.end, 20);
    }
}
