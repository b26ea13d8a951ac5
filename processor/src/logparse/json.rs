//! JSON lines: structured loggers write one object per line and name their
//! fields differently. This module knows the names the common ones use for
//! the level (logrus, zap, pino/bunyan and Nextcloud numbers, Serilog's CLEF `@l`,
//! MongoDB's `s`, ECS `log.level`, journald's `PRIORITY`, GELF…), the time
//! (RFC 3339 strings, epoch numbers in any unit, MongoDB's `{"$date":…}`,
//! log4j2's `instant`), the message, and an HTTP status (Caddy, Traefik,
//! Kibana), which classes the line ahead of any level (BRIEF §5).

use super::ParsedLine;
use crate::class::{normalize_level, status_class, status_class_str, syslog_severity, UNKNOWN};
use crate::timestamp::{self, TsLayout};
use farol_common::time::Millis;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Level fields, first found wins. `s` (MongoDB) only counts when it
/// holds a severity.
const LEVEL: &[&str] = &[
    "level",
    "lvl",
    "severity",
    "levelname",
    "level_name",
    "loglevel",
    "log_level",
    "log.level",
    "@l",
    "@level",
    "Level",
    "LogLevel",
    "Severity",
    "severity_text",
    "SeverityText",
    "error_severity",
    "s",
];
/// Syslog-numbered severity fields (journald JSON export).
const PRIORITY: &[&str] = &["PRIORITY", "priority"];
const TIME: &[&str] = &[
    "@timestamp",
    "timestamp",
    "time",
    "ts",
    "t",
    "@t",
    "Timestamp",
    "datetime",
    "date",
    "timeMillis",
    "instant",
    "__REALTIME_TIMESTAMP",
    "asctime",
    "created",
    "eventTime",
    "time_local",
    "time_iso8601",
    "start_time",
    "StartUTC",
];
const MESSAGE: &[&str] = &[
    "message",
    "msg",
    "@m",
    "@message",
    "MESSAGE",
    "short_message",
    "Message",
    "@mt",
    "log",
    "text",
];
/// HTTP status fields of JSON access logs (nginx/Apache JSON formats,
/// Caddy, Traefik, Envoy/Istio's `response_code`, Kibana, GCP).
const STATUS: &[&str] = &[
    "status",
    "status_code",
    "statusCode",
    "http_status",
    "http.status_code",
    "http.response.status_code",
    "httpRequest.status",
    "res.statusCode",
    "response.status",
    "response_code",
    "http_status_code",
    "DownstreamStatus",
];

/// Looks a key up as written, then as a dotted path into nested objects.
pub(super) fn get<'a>(v: &'a Map<String, Value>, dotted: &str) -> Option<&'a Value> {
    if let Some(x) = v.get(dotted) {
        return Some(x);
    }
    if !dotted.contains('.') {
        return None;
    }
    let mut parts = dotted.split('.');
    let mut cur = v.get(parts.next()?)?;
    for part in parts {
        cur = cur.as_object()?.get(part)?;
    }
    Some(cur)
}

/// How a JSON object numbers its levels.
#[derive(Clone, Copy)]
enum Numbering {
    /// pino/bunyan: 10 trace … 60 fatal.
    Pino,
    /// GELF: syslog severities 0–7.
    Syslog,
    /// Nextcloud: 0 debug, 1 info, 2 warn, 3 error, 4 fatal.
    Nextcloud,
}

fn numbering(o: &Map<String, Value>) -> Numbering {
    if o.contains_key("short_message") {
        Numbering::Syslog
    } else if o.contains_key("reqId") {
        Numbering::Nextcloud
    } else {
        Numbering::Pino
    }
}

/// A JSON level value as a class: words in any spelling, numbers as the
/// logger that wrote them numbers them.
fn level_class(v: &Value, numbers: Numbering) -> Option<(String, &'static str)> {
    match v {
        Value::String(s) => normalize_level(s).map(|c| (s.clone(), c)),
        Value::Number(n) => {
            let n = n.as_u64()?;
            let class = match (numbers, n) {
                (Numbering::Syslog, 0..=7) => syslog_severity(n as u8),
                (Numbering::Nextcloud, 0) => "DEBUG",
                (Numbering::Nextcloud, 1) => "INFO",
                (Numbering::Nextcloud, 2) => "WARN",
                (Numbering::Nextcloud, 3) => "ERROR",
                (Numbering::Nextcloud, 4) => "FATAL",
                (Numbering::Pino, 10) => "TRACE",
                (Numbering::Pino, 20) => "DEBUG",
                (Numbering::Pino, 30) => "INFO",
                (Numbering::Pino, 40) => "WARN",
                (Numbering::Pino, 50) => "ERROR",
                (Numbering::Pino, 60) => "FATAL",
                _ => return None,
            };
            Some((n.to_string(), class))
        }
        _ => None,
    }
}

fn status_of(v: &Value) -> Option<(String, &'static str)> {
    match v {
        Value::Number(n) => {
            let n = n.as_u64().and_then(|n| u16::try_from(n).ok())?;
            status_class(n).map(|c| (n.to_string(), c))
        }
        Value::String(s) => status_class_str(s).map(|c| (s.clone(), c)),
        _ => None,
    }
}

/// Reads a time value: a string in any known layout, an epoch number in
/// any unit, `{"$date": …}` (MongoDB), `{"epochSecond", "nanoOfSecond"}`
/// (log4j2's `instant`).
pub(super) fn time_of(v: &Value, year_ref: Millis) -> Option<Millis> {
    match v {
        Value::String(s) => timestamp::parse(s, TsLayout::Any, year_ref),
        Value::Number(n) => timestamp::epoch_f64(n.as_f64()?),
        Value::Object(o) => {
            if let Some(d) = o.get("$date") {
                return match d {
                    Value::Object(inner) => inner.get("$numberLong").and_then(|x| match x {
                        Value::String(s) => s.parse::<i64>().ok(),
                        Value::Number(n) => n.as_i64(),
                        _ => None,
                    }),
                    other => time_of(other, year_ref),
                };
            }
            let secs = o.get("epochSecond")?.as_i64()?;
            let nanos = o.get("nanoOfSecond").and_then(Value::as_i64).unwrap_or(0);
            secs.checked_mul(1000)?.checked_add(nanos / 1_000_000)
        }
        _ => None,
    }
}

fn first<'a>(o: &'a Map<String, Value>, keys: &[&str]) -> Option<&'a Value> {
    keys.iter().find_map(|k| get(o, k))
}

/// Parses a JSON object line; `None` when it is not one.
pub(super) fn parse(line: &str, year_ref: Millis) -> Option<ParsedLine> {
    let v: Value = serde_json::from_str(line).ok()?;
    let Value::Object(o) = v else { return None };
    Some(from_object(&o, line, year_ref))
}

/// Reads a parsed JSON object.
pub(super) fn from_object(o: &Map<String, Value>, line: &str, year_ref: Millis) -> ParsedLine {
    let (ts, ts_unreadable) = match first(o, TIME) {
        Some(v) => {
            let ts = time_of(v, year_ref);
            (ts, ts.is_none())
        }
        None => (None, false),
    };
    let mut level = LEVEL
        .iter()
        .filter_map(|k| get(o, k).map(|v| (*k, v)))
        // MongoDB's `s` is a severity only as a string (`"I"`, `"D2"`).
        .filter(|(k, v)| *k != "s" || v.is_string())
        .find_map(|(_, v)| level_class(v, numbering(o)))
        .or_else(|| {
            PRIORITY.iter().filter_map(|k| get(o, k)).find_map(|v| {
                let n = match v {
                    Value::String(s) => s.parse::<u8>().ok(),
                    Value::Number(n) => n.as_u64().and_then(|n| u8::try_from(n).ok()),
                    _ => None,
                }?;
                (n <= 7).then(|| (n.to_string(), syslog_severity(n)))
            })
        });
    // Serilog's compact format (CLEF) leaves `@l` out for Information.
    if level.is_none() && o.contains_key("@t") && (o.contains_key("@mt") || o.contains_key("@m")) {
        level = Some(("Information".into(), "INFO"));
    }
    // Kibana 7 puts the level among its `tags`.
    if level.is_none() {
        if let Some(Value::Array(tags)) = o.get("tags") {
            level = tags.iter().find_map(|t| match t {
                Value::String(s) if crate::class::is_level_word(s) => {
                    normalize_level(s).map(|c| (s.clone(), c))
                }
                _ => None,
            });
        }
    }
    let status = STATUS.iter().filter_map(|k| get(o, k)).find_map(status_of);
    let class = status
        .as_ref()
        .map(|(_, c)| *c)
        .or(level.as_ref().map(|(_, c)| *c))
        .unwrap_or(UNKNOWN);
    let message = first(o, MESSAGE)
        .map(|m| match m {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .unwrap_or_else(|| line.to_string());
    let mut fields = BTreeMap::new();
    if let Some((s, _)) = &status {
        fields.insert("status".into(), s.clone());
    }
    ParsedLine {
        format: "json",
        ts,
        ts_unreadable,
        level: level.map(|(l, _)| l),
        class,
        message,
        fields,
    }
}
