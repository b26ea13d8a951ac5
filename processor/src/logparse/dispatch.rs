//! Detection: which format a line is in, cheaply. The order is
//! 1. container wrappers (Docker `json-file`, CRI), whose inner line goes
//!    through this same detection;
//! 2. JSON objects;
//! 3. the format the stream's last line was in (the per-stream hint), so a
//!    file costs one anchored regex per line;
//! 4. the built-in table, all at once through its `RegexSet`, taking the
//!    first candidate (in table order) whose timestamp reads;
//! 5. the generic conventions (logfmt, a leading level, a timestamp near the
//!    start), then `unstructured`.
//!
//! Syslog envelopes get a second look at their message: a klog, logfmt,
//! JSON or access-log line inside (kubelet, containerd, haproxy and nginx
//! through syslog) gives the severity its own format puts in its own
//! position — unless the envelope has a PRI, which only a status outranks.
//!
//! A stream remembered in a broad format (an ISO timestamp and a header)
//! lets the more specific formats before it look at a line it found no
//! level in, so one odd line does not leave a PostgreSQL file read as
//! generic log4j.

use super::builtin::{self, Attempt, TABLE};
use super::{container, generic, json, logfmt, LineParser, ParsedLine};
use crate::class::UNKNOWN;
use farol_common::time::Millis;
use regex::RegexSet;
use serde_json::Value;
use std::sync::LazyLock;

/// The formats an envelope's message is tried against: their indices in
/// the table, and a set of their patterns to find candidates in one pass.
static EMBEDDED: LazyLock<(Vec<usize>, RegexSet)> = LazyLock::new(|| {
    let idx: Vec<usize> = TABLE
        .formats
        .iter()
        .enumerate()
        .filter(|(_, f)| matches!(f.name, "apache_access" | "haproxy" | "klog"))
        .map(|(i, _)| i)
        .collect();
    let set = RegexSet::new(idx.iter().map(|&i| TABLE.formats[i].re.as_str()))
        .expect("embedded format set compiles");
    (idx, set)
});

/// Parses `line` with the detection of `p` (see the module doc). `nested`
/// is true for the inner line of a container wrapper.
pub(super) fn detect(
    p: &LineParser,
    line: &str,
    hint: &mut Option<usize>,
    year_ref: Millis,
    nested: bool,
) -> ParsedLine {
    let line = line.strip_suffix('\r').unwrap_or(line);
    // A byte-order mark in front of a file's first line is not part of it.
    let line = line.strip_prefix('\u{feff}').unwrap_or(line);
    // Terminal colours (logrus, uvicorn, zap's colour encoder, containers
    // run with a TTY) are not part of any format. (Searched with SIMD:
    // `str::contains` was 4 % of parsing a line.)
    if memchr::memchr(0x1b, line.as_bytes()).is_some() {
        let plain = strip_ansi(line);
        return detect(p, &plain, hint, year_ref, nested);
    }
    let trimmed = line.trim_start();
    if p.json && trimmed.starts_with('{') {
        if let Ok(Value::Object(o)) = serde_json::from_str::<Value>(trimmed) {
            if p.auto && !nested {
                if let Some(u) = container::docker(&o, year_ref) {
                    return unwrap(p, u, hint, year_ref);
                }
            }
            return json::from_object(&o, line, year_ref);
        }
    }
    if p.auto && !nested {
        if let Some(u) = container::cri(line) {
            return unwrap(p, u, hint, year_ref);
        }
    }
    let mut fallback: Option<(usize, ParsedLine)> = None;
    // A line a broad remembered format found no level in: only the more
    // specific formats before it in the table may do better.
    let mut levelless: Option<(usize, ParsedLine)> = None;
    if let Some(h) = (*hint).filter(|h| p.allows(*h)) {
        match builtin::attempt(h, line, year_ref) {
            Attempt::Parsed(x) if x.class == UNKNOWN && builtin::is_broad(h) => {
                levelless = Some((h, x));
            }
            Attempt::Parsed(x) => return finish(h, x, year_ref),
            Attempt::Unreadable(x) => fallback = Some((h, x)),
            Attempt::NoMatch => {}
        }
    }
    if p.any_builtin() {
        for i in TABLE.set.matches(line).iter() {
            if Some(i) == *hint || !p.allows(i) {
                continue;
            }
            if let Some((h, _)) = &levelless {
                if i > *h {
                    break;
                }
            }
            match builtin::attempt(i, line, year_ref) {
                Attempt::Parsed(x) if levelless.is_some() && x.class == UNKNOWN => {}
                Attempt::Parsed(x) => {
                    *hint = Some(i);
                    return finish(i, x, year_ref);
                }
                Attempt::Unreadable(x) => {
                    if fallback.is_none() {
                        fallback = Some((i, x));
                    }
                }
                Attempt::NoMatch => {}
            }
        }
    }
    if let Some((i, x)) = levelless.or(fallback) {
        return finish(i, x, year_ref);
    }
    if p.logfmt && logfmt::looks_like(line) {
        if let Some(x) = logfmt::parse(line, year_ref) {
            return x;
        }
    }
    if p.auto {
        if let Some(x) = generic::leading_level(line, year_ref) {
            return x;
        }
        if let Some(x) = generic::timestamped(line, year_ref) {
            return x;
        }
    }
    generic::unstructured(line)
}

/// Removes ANSI escape sequences (`ESC [ … letter`, and a lone ESC).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'[') {
            chars.next();
            // Parameters and intermediates, then one final byte.
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) {
                    break;
                }
            }
        }
    }
    out
}

fn unwrap(
    p: &LineParser,
    u: container::Unwrapped<'_>,
    hint: &mut Option<usize>,
    year_ref: Millis,
) -> ParsedLine {
    let mut x = detect(p, &u.inner, hint, year_ref, true);
    if u.ts.is_some() {
        x.ts = u.ts;
        x.ts_unreadable = false;
    } else if x.ts.is_none() {
        // The wrapper always has a time: if it did not read, say so.
        x.ts_unreadable = true;
    }
    x.fields.insert("wrapper".into(), u.wrapper.into());
    if !u.stream.is_empty() {
        x.fields.insert("stream".into(), u.stream);
    }
    if u.partial {
        x.fields.insert("partial".into(), "true".into());
    }
    x
}

/// Post-processing of a built-in match: the second look into syslog
/// envelopes.
fn finish(i: usize, mut x: ParsedLine, year_ref: Millis) -> ParsedLine {
    if !builtin::is_envelope(i) {
        return x;
    }
    let pri = builtin::has_pri(&x);
    let msg = x.message.as_str();
    let host_is_tag = x.fields.get("host").is_some_and(|h| h.ends_with(':'));
    let body = if x.fields.contains_key("tag") || host_is_tag {
        // The tag was already taken (`short-iso`), or the sender wrote no
        // host and the tag stands in its place (`haproxy[8]:`).
        msg
    } else {
        // RFC 3164: `tag[pid]: body`, the tag without spaces.
        match msg.find(": ") {
            Some(k) if k < 128 && !msg[..k].contains(' ') => &msg[k + 2..],
            _ => return x,
        }
    };
    let inner = if body.starts_with('{') {
        json::parse(body, year_ref)
    } else if logfmt::looks_like(body) {
        logfmt::parse(body, year_ref)
    } else {
        let (idx, set) = &*EMBEDDED;
        set.matches(body)
            .iter()
            .find_map(|k| match builtin::attempt(idx[k], body, year_ref) {
                Attempt::Parsed(y) => Some(y),
                _ => None,
            })
    };
    // A PRI is the envelope's own severity: only a status (an access log
    // inside) outranks it.
    let Some(inner) =
        inner.filter(|y| y.class != UNKNOWN && (!pri || y.fields.contains_key("status")))
    else {
        return x;
    };
    x.level = inner.level;
    x.class = inner.class;
    x.fields
        .insert("embedded_format".into(), inner.format.to_string());
    if let Some(s) = inner.fields.get("status") {
        x.fields.insert("status".into(), s.clone());
    }
    // A time with a year inside (access logs, JSON, logfmt) is better than
    // the envelope's year-less one; klog's is year-less too.
    if inner.format != "klog" && inner.ts.is_some() {
        x.ts = inner.ts;
        x.ts_unreadable = false;
    }
    x
}
