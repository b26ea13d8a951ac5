//! Conventions for lines of formats nobody listed: a leading severity
//! (`[WARN] …`, `ERROR: …`, `WARNING:root:…`, logrus' `INFO[0000] …`), or a
//! timestamp near the start (ISO 8601, `yyyy/MM/dd`, CLF, `dd Mon yyyy`,
//! syslog) followed by a header with a level or by logfmt pairs. What is found is only ever in such a position; a line with
//! none is `UNKNOWN` and keeps its message whole.

use super::header::{self, Case, Stop};
use super::{builtin, logfmt, ParsedLine};
use crate::class::{is_level_word, normalize_level, UNKNOWN};
use crate::timestamp::{self, TsLayout};
use farol_common::time::Millis;
use regex::Regex;
use std::collections::BTreeMap;
use std::sync::LazyLock;

/// A timestamp anywhere (searched for near the start of a line): ISO 8601,
/// `yyyy/MM/dd`, CLF, `dd Mon yyyy`, syslog; one group per layout.
static TS_ANYWHERE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"(?P<iso>{})|(?P<slash>\d{{4}}/\d{{2}}/\d{{2}} \d{{2}}:\d{{2}}:\d{{2}}(?:[.,]\d{{1,9}})?)|(?P<clf>\d{{2}}/[A-Z][a-z]{{2}}/\d{{4}}:\d{{2}}:\d{{2}}:\d{{2}}(?:\.\d+)?(?: [+-]\d{{4}})?)|(?P<dmy>\d{{1,2}} [A-Z][a-z]{{2}} \d{{4}} \d{{2}}:\d{{2}}:\d{{2}}(?:[.,]\d{{1,9}})?)|(?P<syslog>\b[A-Z][a-z]{{2}} [ \d]\d \d{{2}}:\d{{2}}:\d{{2}}(?:\.\d+)?)",
        builtin::iso_ts()
    ))
    .expect("timestamp regex compiles")
});

/// The first timestamp in `text` starting at most `within` bytes in: its
/// span and its reading (`None` when it does not read).
fn find_ts(text: &str, within: usize, year_ref: Millis) -> Option<(usize, usize, Option<Millis>)> {
    let caps = TS_ANYWHERE.captures(text)?;
    let m = caps.get(0)?;
    if m.start() > within {
        return None;
    }
    let layout = if caps.name("iso").is_some() {
        TsLayout::Iso
    } else if caps.name("slash").is_some() {
        TsLayout::Slash
    } else if caps.name("clf").is_some() {
        TsLayout::Clf
    } else if caps.name("dmy").is_some() {
        TsLayout::DayMonYear
    } else {
        TsLayout::Syslog
    };
    Some((
        m.start(),
        m.end(),
        timestamp::parse(m.as_str(), layout, year_ref),
    ))
}

/// How far into a line a timestamp is looked for.
const HEAD: usize = 64;

/// A line nothing was recognized in.
pub(super) fn unstructured(line: &str) -> ParsedLine {
    ParsedLine {
        format: "unstructured",
        ts: None,
        ts_unreadable: false,
        level: None,
        class: UNKNOWN,
        message: line.to_string(),
        fields: BTreeMap::new(),
    }
}

fn all_upper(s: &str) -> bool {
    !s.bytes().any(|b| b.is_ascii_lowercase())
}

/// A severity as the line's first token: bracketed in any case
/// (`[warn]`, `<ERROR>`), upper case before a space, colon, bracket or the
/// end (`INFO msg`, `WARNING:root:msg`, `INFO[0000]`), or any case before a
/// colon (`error: …`, `warning: …`). A timestamp right after it is read.
pub(super) fn leading_level(line: &str, year_ref: Millis) -> Option<ParsedLine> {
    let b = line.as_bytes();
    let close = match b.first()? {
        b'[' => Some(b']'),
        b'<' => Some(b'>'),
        b'(' => Some(b')'),
        _ => None,
    };
    let mut i = usize::from(close.is_some());
    let start = i;
    while i < b.len() && b[i].is_ascii_alphabetic() {
        i += 1;
    }
    if i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let word = &line[start..i];
    if !is_level_word(word) {
        return None;
    }
    if let Some(c) = close {
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        if b.get(i) != Some(&c) {
            return None;
        }
        i += 1;
    } else {
        let next = b.get(i).copied();
        let ok = match next {
            Some(b':') => true,
            None | Some(b' ' | b'\t' | b'[' | b'|') => all_upper(word),
            _ => false,
        };
        if !ok {
            return None;
        }
    }
    let rest = &line[i..];
    let mut ts = None;
    let mut ts_unreadable = false;
    let mut msg = rest;
    if let Some((_, end, t)) = find_ts(rest, 8, year_ref) {
        ts = t;
        ts_unreadable = ts.is_none();
        msg = &rest[end..];
    }
    Some(ParsedLine {
        format: "leveled",
        ts,
        ts_unreadable,
        level: Some(word.to_string()),
        class: normalize_level(word).unwrap_or(UNKNOWN),
        message: msg
            .trim_start_matches([' ', '\t', ':', ']', '-', '|'])
            .to_string(),
        fields: BTreeMap::new(),
    })
}

/// A timestamp in the first bytes of the line (after a file name, a host,
/// a component…), then a header level or logfmt pairs.
pub(super) fn timestamped(line: &str, year_ref: Millis) -> Option<ParsedLine> {
    let (_, end, ts) = find_ts(line, HEAD, year_ref)?;
    let rest = &line[end..];
    let mut p = ParsedLine {
        format: "generic",
        ts,
        // The header stands even when its timestamp does not read
        // (`2024-13-45 …`): the line keeps its level and inherits a time.
        ts_unreadable: ts.is_none(),
        level: None,
        class: UNKNOWN,
        message: rest.trim_start().to_string(),
        fields: BTreeMap::new(),
    };
    let rest = rest.trim_start_matches(']');
    match header::level(rest, Case::Strict) {
        Ok(found) => {
            p.level = Some(found.level.to_string());
            p.class = normalize_level(found.level).unwrap_or(UNKNOWN);
            p.message = header::message_from(rest, found.msg_at).to_string();
        }
        Err(Stop::KeyValue(at)) => {
            let f = logfmt::scan(&rest[at..]);
            p.level = f.level.map(str::to_string);
            p.class = f.class;
            if let Some(s) = f.status {
                p.fields.insert("status".into(), s.to_string());
            }
            if let Some(msg) = f.message {
                p.message = msg.to_string();
            }
        }
        Err(Stop::Other) => {}
    }
    Some(p)
}
