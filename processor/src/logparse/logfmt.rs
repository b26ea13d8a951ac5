//! logfmt (`time=… level=info msg="…" key=value`): Go's logrus and slog
//! text handlers, go-kit, Grafana, Loki, Traefik v2, Docker's daemon. The
//! severity is the value of a `level`/`lvl`/`severity` key, and an HTTP
//! `status` key classes the line ahead of it; a level word inside a quoted
//! value (`msg="set level=debug"`) is never taken, since values are read
//! with their quotes.

use super::ParsedLine;
use crate::class::{normalize_level, status_class_str, UNKNOWN};
use crate::timestamp::{self, TsLayout};
use farol_common::time::Millis;
use std::collections::BTreeMap;

const LEVEL: &[&str] = &[
    "level",
    "lvl",
    "severity",
    "loglevel",
    "log.level",
    "@level",
];
const TIME: &[&str] = &[
    "time",
    "ts",
    "t",
    "timestamp",
    "@timestamp",
    "date",
    "datetime",
];
const MESSAGE: &[&str] = &["msg", "message"];
const STATUS: &[&str] = &["status", "status_code", "http.status", "http_status"];

/// `key=value` pairs of a logfmt text; values lose their quotes, not their
/// escapes.
pub(super) struct Pairs<'a> {
    s: &'a str,
    i: usize,
}

impl<'a> Pairs<'a> {
    pub(super) fn new(s: &'a str) -> Self {
        Pairs { s, i: 0 }
    }
}

impl<'a> Iterator for Pairs<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        let b = self.s.as_bytes();
        loop {
            while self.i < b.len() && b[self.i].is_ascii_whitespace() {
                self.i += 1;
            }
            if self.i >= b.len() {
                return None;
            }
            let start = self.i;
            while self.i < b.len() && !b[self.i].is_ascii_whitespace() && b[self.i] != b'=' {
                self.i += 1;
            }
            let key = &self.s[start..self.i];
            if self.i >= b.len() || b[self.i] != b'=' {
                // A bare word: not a pair.
                continue;
            }
            self.i += 1;
            let value = if b.get(self.i) == Some(&b'"') {
                self.i += 1;
                let vstart = self.i;
                while self.i < b.len() && b[self.i] != b'"' {
                    if b[self.i] == b'\\' {
                        self.i += 1;
                    }
                    self.i += 1;
                }
                let vend = self.i.min(b.len());
                self.i = (self.i + 1).min(b.len());
                self.s.get(vstart..vend).unwrap_or("")
            } else {
                let vstart = self.i;
                while self.i < b.len() && !b[self.i].is_ascii_whitespace() {
                    self.i += 1;
                }
                &self.s[vstart..self.i]
            };
            if key.is_empty() {
                continue;
            }
            return Some((key, value));
        }
    }
}

/// True when `text` starts like logfmt: an identifier, then `=`.
pub(super) fn looks_like(text: &str) -> bool {
    let b = text.as_bytes();
    let Some(&first) = b.first() else {
        return false;
    };
    if !(first.is_ascii_alphabetic() || first == b'@' || first == b'_') {
        return false;
    }
    let n = b
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'@' | b'-'))
        .count();
    b.get(n) == Some(&b'=')
}

/// What a logfmt text says about its line.
pub(super) struct Found<'a> {
    pub level: Option<&'a str>,
    pub class: &'static str,
    pub ts_text: Option<&'a str>,
    pub message: Option<&'a str>,
    pub status: Option<&'a str>,
    pub pairs: usize,
}

/// Reads the known keys of a logfmt text.
pub(super) fn scan(text: &str) -> Found<'_> {
    let mut f = Found {
        level: None,
        class: UNKNOWN,
        ts_text: None,
        message: None,
        status: None,
        pairs: 0,
    };
    let mut level_class = None;
    let mut status_cls = None;
    for (k, v) in Pairs::new(text) {
        f.pairs += 1;
        if f.level.is_none() && LEVEL.contains(&k) {
            if let Some(c) = normalize_level(v) {
                f.level = Some(v);
                level_class = Some(c);
            }
        } else if f.ts_text.is_none() && TIME.contains(&k) {
            f.ts_text = Some(v);
        } else if f.message.is_none() && MESSAGE.contains(&k) {
            f.message = Some(v);
        } else if status_cls.is_none() && STATUS.contains(&k) {
            if let Some(c) = status_class_str(v) {
                f.status = Some(v);
                status_cls = Some(c);
            }
        }
    }
    f.class = status_cls.or(level_class).unwrap_or(UNKNOWN);
    f
}

/// Parses a whole logfmt line; `None` unless it has at least two pairs and
/// one of them is a level, a time or a message.
pub(super) fn parse(line: &str, year_ref: Millis) -> Option<ParsedLine> {
    let f = scan(line);
    if f.pairs < 2 || (f.level.is_none() && f.ts_text.is_none() && f.message.is_none()) {
        return None;
    }
    let ts = f
        .ts_text
        .and_then(|t| timestamp::parse(t, TsLayout::Any, year_ref));
    let mut fields = BTreeMap::new();
    if let Some(s) = f.status {
        fields.insert("status".into(), s.to_string());
    }
    Some(ParsedLine {
        format: "logfmt",
        ts,
        ts_unreadable: f.ts_text.is_some() && ts.is_none(),
        level: f.level.map(str::to_string),
        class: f.class,
        message: f.message.unwrap_or(line).to_string(),
        fields,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_keep_quoted_values_whole() {
        let p: Vec<_> =
            Pairs::new(r#"time="2024-03-05T10:12:01Z" level=info msg="set level=debug \"x\"" k"#)
                .collect();
        assert_eq!(
            p,
            vec![
                ("time", "2024-03-05T10:12:01Z"),
                ("level", "info"),
                ("msg", r#"set level=debug \"x\""#),
            ]
        );
        assert!(looks_like("level=info msg=x"));
        assert!(!looks_like("=x"));
        assert!(!looks_like("2024-03-05 x=1"));
    }

    #[test]
    fn level_inside_a_value_is_not_the_level() {
        let f = scan(r#"ts=1 msg="level=error happened""#);
        assert_eq!((f.level, f.class), (None, UNKNOWN));
    }
}
