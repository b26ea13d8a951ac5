//! The severity of a line header: the level token that follows a timestamp
//! and whatever a format puts between the two (pid, thread, logger, `myid`,
//! `---`). Many formats are "timestamp, some header fields, level, message"
//! with different separators (`- ERROR -`, `[WARN]`, `|INFO|`, `:ERROR:`,
//! `[INF]`, tab), so one careful scanner serves them all.
//!
//! What keeps it from taking a word of the message for a severity:
//! - it looks at no more than six tokens, and stops at the first token that
//!   is neither a header field nor a level;
//! - a level in lower or mixed case is only taken bracketed (`[info]`), or as
//!   the first token when it is padded into a column (`Info      CBS`) or,
//!   where the caller allows it, followed by a colon (`info: …`);
//! - after a bare word (a logger name such as `root` or `app.db`) only an
//!   upper-case or bracketed level is taken.

use crate::class::is_level_word;

/// How permissive the scan is for lower-case levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Case {
    /// Upper case anywhere, other cases bracketed or padded.
    Strict,
    /// Also `level:` as the first token (`… info: message`).
    ColonToo,
}

/// A level found in a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Found<'a> {
    /// The level as written (without brackets or padding).
    pub level: &'a str,
    /// Byte offset in the scanned text where the message starts.
    pub msg_at: usize,
}

/// What stopped the scan without a level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stop {
    /// A `key=value` token at this offset: the rest may be logfmt.
    KeyValue(usize),
    /// Anything else.
    Other,
}

fn is_sep(c: u8) -> bool {
    matches!(
        c,
        b' ' | b'\t' | b'-' | b'|' | b':' | b',' | b']' | b'>' | b')'
    )
}

fn is_token_end(c: u8) -> bool {
    matches!(
        c,
        b' ' | b'\t' | b'|' | b':' | b',' | b']' | b'>' | b')' | b'/' | b'['
    )
}

fn closing(open: u8) -> u8 {
    match open {
        b'[' => b']',
        b'(' => b')',
        b'{' => b'}',
        _ => b'>',
    }
}

fn all_upper(s: &str) -> bool {
    s.bytes().any(|b| b.is_ascii_uppercase()) && !s.bytes().any(|b| b.is_ascii_lowercase())
}

/// A token that header fields are made of: a number (pid, thread id, the
/// `148` of HDFS), `#4242`, `4242-1`.
fn is_numeric_field(t: &str) -> bool {
    let t = t.strip_prefix('#').unwrap_or(t);
    !t.is_empty()
        && t.bytes().next().is_some_and(|b| b.is_ascii_digit())
        && t.bytes()
            .all(|b| b.is_ascii_digit() || b == b'-' || b == b'.')
}

/// A logger or component name: lower-case or dotted identifiers (`root`,
/// `app.db`, `c.e.demo.DemoApplication`, `__main__`, `main.go`).
fn is_name_field(t: &str) -> bool {
    let first = t.as_bytes().first().copied().unwrap_or(b' ');
    if !(first.is_ascii_alphabetic() || first == b'_') {
        return false;
    }
    let ident = t
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'$' | b'-'));
    ident
        && (t.contains(['.', '_', '$'])
            || t.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'))
}

/// Scans `rest` (the text right after a timestamp) for a header level.
pub(super) fn level(rest: &str, case: Case) -> Result<Found<'_>, Stop> {
    let b = rest.as_bytes();
    let mut i = 0;
    let mut after_name = false;
    for n in 0..6 {
        while i < b.len() && is_sep(b[i]) {
            i += 1;
        }
        if i >= b.len() {
            return Err(Stop::Other);
        }
        let first = n == 0;
        if matches!(b[i], b'[' | b'(' | b'{' | b'<') {
            let close = closing(b[i]);
            let Some(len) = b[i + 1..].iter().position(|&c| c == close) else {
                return Err(Stop::Other);
            };
            let end = i + 1 + len;
            let inner = rest[i + 1..end].trim();
            if is_level_word(inner) {
                return Ok(Found {
                    level: inner,
                    msg_at: end + 1,
                });
            }
            i = end + 1;
            continue;
        }
        let start = i;
        while i < b.len() && !is_token_end(b[i]) {
            i += 1;
        }
        let tok = &rest[start..i];
        if tok.is_empty() {
            // An opening bracket glued to a word (`INFO[0000]` is not a header).
            return Err(Stop::Other);
        }
        if tok.contains('=') {
            return Err(Stop::KeyValue(start));
        }
        if is_level_word(tok) {
            let upper = all_upper(tok);
            let next = b.get(i).copied();
            let padded =
                matches!(next, Some(b'\t')) || (next == Some(b' ') && b.get(i + 1) == Some(&b' '));
            let colon = next == Some(b':') && case == Case::ColonToo;
            if upper || (first && !after_name && (padded || colon)) {
                return Ok(Found {
                    level: tok,
                    msg_at: i,
                });
            }
            return Err(Stop::Other);
        }
        if is_numeric_field(tok) {
            continue;
        }
        if is_name_field(tok) && !after_name {
            after_name = true;
            continue;
        }
        return Err(Stop::Other);
    }
    Err(Stop::Other)
}

/// Where the message starts after a level token ends at `at`: past the
/// separators a header puts there (`] `, ` - `, `: `, tab).
pub(super) fn message_from(rest: &str, at: usize) -> &str {
    rest.get(at..)
        .unwrap_or("")
        .trim_start_matches([' ', '\t', ':', '-', '|', ']', '>', ')'])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lv(rest: &str) -> Option<&str> {
        level(rest, Case::Strict).ok().map(|f| f.level)
    }

    #[test]
    fn header_shapes() {
        for (rest, want) in [
            (" INFO [main] org.apache.X: Created", "INFO"),
            (" 148 INFO dfs.DataNode: x", "INFO"),
            (" - INFO  [QuorumPeer[myid=1]/0:2181:X@774] - y", "INFO"),
            (" [myid:1] - WARN  [main:Q@1] - y", "WARN"),
            (" - myapp.db - ERROR - boom", "ERROR"),
            (":ERROR:root:boom", "ERROR"),
            ("|INFO|MyApp.Program|hi", "INFO"),
            (" [1] INFO  MyApp.Program - hi", "INFO"),
            (" [4242] [INFO] Starting gunicorn", "INFO"),
            (" [INF] hello", "INF"),
            (" INF] hello", "INF"),
            ("\tINFO\tapp/main.go:42\thi", "INFO"),
            (" 0 [Warning] [MY-010068] [Server] x", "Warning"),
            ("][INFO ][o.e.n.Node] [n1] started", "INFO"),
            (", Info                  CBS    Loaded", "Info"),
            (" myapp.area1  DEBUG    Quick", "DEBUG"),
            ("  INFO 4242 --- [main] c.e.App : Started", "INFO"),
            (": INFO/MainProcess] Connected", "INFO"),
            (" CRIT Supervisor is running as root", "CRIT"),
        ] {
            assert_eq!(lv(rest), Some(want), "{rest:?}");
        }
    }

    #[test]
    fn message_words_are_not_levels() {
        for rest in [
            " error reading config",
            " Connection ERROR happened",
            " [main] Connection ERROR happened",
            " http: TLS handshake error from 1.2.3.4",
            " app something ERROR",
            " Info about the system",
        ] {
            assert_eq!(lv(rest), None, "{rest:?}");
        }
        assert_eq!(
            level(" info: started", Case::ColonToo).map(|f| f.level),
            Ok("info")
        );
        assert_eq!(lv(" info: started"), None);
        assert_eq!(
            level(" level=info msg=x", Case::Strict),
            Err(Stop::KeyValue(1))
        );
    }

    #[test]
    fn message_follows_the_level() {
        let rest = " - myapp.db - ERROR - boom";
        let f = level(rest, Case::Strict).unwrap();
        assert_eq!(message_from(rest, f.msg_at), "boom");
        let rest = " [INF] hello";
        let f = level(rest, Case::Strict).unwrap();
        assert_eq!(message_from(rest, f.msg_at), "hello");
    }
}
