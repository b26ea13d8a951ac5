//! Container runtimes wrap every line a program writes: Docker's `json-file`
//! driver as `{"log":"…\n","stream":"stdout","time":"…"}`, the CRI
//! (containerd, CRI-O, what Kubernetes nodes keep under /var/log/pods) as
//! `2024-03-05T10:12:01.123456789Z stdout F …`. The wrapper's time is the
//! runtime's (UTC, nanoseconds) and is the event time; the level comes from
//! the inner line, which is parsed as its own format.

use super::json;
use crate::timestamp::{self, TsLayout};
use farol_common::time::Millis;
use regex::Regex;
use serde_json::{Map, Value};
use std::sync::LazyLock;

/// A wrapped line, unwrapped.
pub(super) struct Unwrapped<'a> {
    /// `docker` or `cri`.
    pub wrapper: &'static str,
    /// The program's own line.
    pub inner: std::borrow::Cow<'a, str>,
    /// The runtime's timestamp, when it reads.
    pub ts: Option<Millis>,
    /// `stdout` or `stderr`.
    pub stream: String,
    /// CRI `P`: a fragment of a longer line.
    pub partial: bool,
}

static CRI: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(?P<ts>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})) (?P<stream>stdout|stderr) (?P<tag>[FP])(?::\S*)?(?: |$)",
    )
    .expect("CRI regex compiles")
});

/// Unwraps a CRI log line.
pub(super) fn cri(line: &str) -> Option<Unwrapped<'_>> {
    if line.as_bytes().get(10) != Some(&b'T') {
        return None;
    }
    let caps = CRI.captures(line)?;
    let end = caps.get(0)?.end();
    Some(Unwrapped {
        wrapper: "cri",
        inner: std::borrow::Cow::Borrowed(&line[end..]),
        ts: caps
            .name("ts")
            .and_then(|m| timestamp::parse(m.as_str(), TsLayout::Iso, 0)),
        stream: caps
            .name("stream")
            .map_or_else(String::new, |m| m.as_str().to_string()),
        partial: caps.name("tag").is_some_and(|m| m.as_str() == "P"),
    })
}

/// Unwraps a Docker `json-file` object: it has a string `log` and a
/// `stream` or a `time`, and nothing a structured logger would write
/// instead of them (no level field).
pub(super) fn docker<'a>(o: &Map<String, Value>, year_ref: Millis) -> Option<Unwrapped<'a>> {
    let Some(Value::String(log)) = o.get("log") else {
        return None;
    };
    if !(o.contains_key("stream") || o.contains_key("time")) || o.contains_key("level") {
        return None;
    }
    let inner = log.trim_end_matches(['\n', '\r']).to_string();
    Some(Unwrapped {
        wrapper: "docker",
        inner: std::borrow::Cow::Owned(inner),
        ts: o.get("time").and_then(|t| json::time_of(t, year_ref)),
        stream: o
            .get("stream")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        partial: false,
    })
}
