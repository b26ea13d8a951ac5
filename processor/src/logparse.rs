//! Log line parsing (BRIEF §5–6): finds a line's timestamp and its severity
//! *in the position its format puts it*, never a word that merely appears in
//! the message. Known formats are recognized without configuration; users
//! add their own as a regex with named groups `ts`, `level`, `status`, `msg`.
//!
//! Auto-detection tries each built-in format in a fixed order and remembers,
//! per stream, the one that matched last, so a file costs one regex per line.

use crate::class::{is_level_word, normalize_level, status_class, syslog_severity, UNKNOWN};
use crate::timestamp::{self, TsLayout};
use farol_common::config::FormatSpec;
use farol_common::time::Millis;
use regex::{Captures, Regex};
use std::collections::BTreeMap;
use std::sync::LazyLock;

/// What a line says about itself.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedLine {
    /// Name of the format that matched (`unstructured` when none did).
    pub format: &'static str,
    /// Event time read from the line.
    pub ts: Option<Millis>,
    /// Severity as written.
    pub level: Option<String>,
    /// Normalized class.
    pub class: &'static str,
    /// The message part.
    pub message: String,
    /// Other named parts.
    pub fields: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy)]
enum LevelRule {
    /// The `level` (or `status`) group.
    Group,
    /// A level word in the header right after the match.
    Header,
    /// The syslog PRI group.
    Pri,
    /// The format has no severity.
    None,
}

struct Format {
    name: &'static str,
    re: Regex,
    ts: TsLayout,
    level: LevelRule,
}

fn fmt(name: &'static str, re: &str, ts: TsLayout, level: LevelRule) -> Format {
    Format {
        name,
        re: Regex::new(re).expect("built-in format regex compiles"),
        ts,
        level,
    }
}

/// Built-in formats in detection order (most specific first).
static BUILTIN: LazyLock<Vec<Format>> = LazyLock::new(|| {
    use LevelRule as L;
    use TsLayout as T;
    vec![
        fmt(
            "apache_access",
            r#"^(?P<client>\S+) (?P<ident>\S+) (?P<user>\S+) \[(?P<ts>[^\]]+)\] "(?P<request>[^"]*)" (?P<status>\d{3}) (?P<bytes>\S+)(?: "(?P<referrer>[^"]*)" "(?P<agent>[^"]*)")?"#,
            T::Clf,
            L::Group,
        ),
        fmt(
            "apache_error",
            r"^\[(?P<ts>[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2}(?:\.\d+)? \d{4})\] \[(?:[^\]:]*:)?(?P<level>[A-Za-z]+)\] (?P<msg>.*)$",
            T::Ctime,
            L::Group,
        ),
        fmt(
            "bgl",
            r"^(?P<label>\S+) (?P<epoch>\d{10}) \d{4}\.\d{2}\.\d{2} (?P<node>\S+) (?P<ts>\d{4}-\d{2}-\d{2}-\d{2}\.\d{2}\.\d{2}\.\d+) \S+ (?P<type>\S+) (?P<component>\S+) (?P<level>[A-Z]+) (?P<msg>.*)$",
            T::Bgl,
            L::Group,
        ),
        fmt(
            "hpc",
            r"^(?P<logid>\d+) (?P<node>\S+) (?P<component>\S+) (?P<state>\S+) (?P<ts>\d{9,10}) (?P<flag>\d+) (?P<msg>.*)$",
            T::Epoch,
            L::None,
        ),
        fmt(
            "logcat",
            r"^(?P<ts>\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3})\s+(?P<pid>\d+)\s+(?P<tid>\d+)\s+(?P<level>[VDIWEFA])\s+(?P<tag>[^:]*?)\s*: ?(?P<msg>.*)$",
            T::Logcat,
            L::Group,
        ),
        fmt(
            "healthapp",
            r"^(?P<ts>\d{8}-\d{1,2}:\d{1,2}:\d{1,2}:\d{1,3})\|(?P<component>[^|]*)\|(?P<pid>[^|]*)\|(?P<msg>.*)$",
            T::HealthApp,
            L::None,
        ),
        fmt(
            "proxifier",
            r"^\[(?P<ts>\d{2}\.\d{2} \d{2}:\d{2}:\d{2})\] (?P<msg>.*)$",
            T::MonthDotDay,
            L::None,
        ),
        fmt(
            "syslog",
            r"^<(?P<pri>\d{1,3})>1 (?P<ts>\S+) (?P<host>\S+) (?P<app>\S+) (?P<procid>\S+) (?P<msgid>\S+) (?P<msg>.*)$",
            T::Iso,
            L::Pri,
        ),
        fmt(
            "syslog",
            r"^(?:<(?P<pri>\d{1,3})>)?(?P<ts>[A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2}(?:\.\d+)?) (?P<host>\S+) (?P<msg>.*)$",
            T::Syslog,
            L::Pri,
        ),
        fmt(
            "log4j",
            r"^\[?(?P<ts>\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d{1,9})?(?:Z|[+-]\d{2}:?\d{2})?)\]?",
            T::Iso,
            L::Header,
        ),
        fmt(
            "spark",
            r"^(?P<ts>\d{2}/\d{2}/\d{2} \d{2}:\d{2}:\d{2})",
            T::YyMmDdSlash,
            L::Header,
        ),
        fmt(
            "hdfs",
            r"^(?P<ts>\d{6} \d{6})\b",
            T::YyMmDdCompact,
            L::Header,
        ),
    ]
});

/// A leading severity before anything else: `[WARN] …`, `ERROR: …`, `INFO:root:…`.
static LEADING_LEVEL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[\[<]?(?P<level>[A-Za-z]{3,13})[\]>]?(?:[\s:]|$)").expect("regex compiles")
});

/// An ISO timestamp near the start of an otherwise unknown line.
static ISO_ANYWHERE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d{1,9})?(?:Z|[+-]\d{2}:?\d{2})?")
        .expect("regex compiles")
});

/// Finds a level word in the header right after a timestamp: skips
/// separators, up to two numeric or bracketed tokens (pid, thread), then
/// expects the level (optionally bracketed). Returns the level and where the
/// message starts.
fn header_level(rest: &str) -> Option<(&str, usize)> {
    let bytes = rest.as_bytes();
    let mut i = 0;
    let skip_seps = |mut i: usize| {
        while i < bytes.len() && matches!(bytes[i], b' ' | b'\t' | b'-' | b',' | b'|' | b':') {
            i += 1;
        }
        i
    };
    for _ in 0..3 {
        i = skip_seps(i);
        if i >= bytes.len() {
            return None;
        }
        let start = i;
        let end = if bytes[i] == b'[' {
            match rest[i..].find(']') {
                Some(j) => i + j + 1,
                None => return None,
            }
        } else {
            rest[i..]
                .find(|c: char| c.is_whitespace())
                .map_or(rest.len(), |j| i + j)
        };
        let tok = &rest[start..end];
        let inner = tok
            .trim_start_matches(['[', '<', '('])
            .trim_end_matches([']', '>', ')', ':', ','])
            .rsplit(':')
            .next()
            .unwrap_or("");
        if is_level_word(inner) {
            return Some((inner, end));
        }
        let numeric = !tok.is_empty() && tok.bytes().all(|b| b.is_ascii_digit());
        if !(numeric || tok.starts_with('[')) {
            return None;
        }
        i = end;
    }
    None
}

/// A compiled user format.
struct Custom {
    re: Regex,
    ts_format: Option<String>,
}

/// Parses lines of one source according to its configured format.
pub struct LineParser {
    custom: Option<Custom>,
    /// Indices into BUILTIN allowed for this source (all for `auto`).
    allowed: Vec<usize>,
    json: bool,
}

/// A format spec that cannot be compiled.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// Unknown built-in name.
    #[error("unknown format '{0}'")]
    Unknown(String),
    /// The user regex does not compile.
    #[error("invalid regex: {0}")]
    Regex(#[from] regex::Error),
}

impl LineParser {
    /// Builds the parser for a format spec.
    pub fn new(spec: &FormatSpec) -> Result<Self, FormatError> {
        match spec {
            FormatSpec::Named(n) if n == "auto" => Ok(LineParser {
                custom: None,
                allowed: (0..BUILTIN.len()).collect(),
                json: true,
            }),
            FormatSpec::Named(n) if n == "json" => Ok(LineParser {
                custom: None,
                allowed: vec![],
                json: true,
            }),
            FormatSpec::Named(n) => {
                let allowed: Vec<usize> = BUILTIN
                    .iter()
                    .enumerate()
                    .filter(|(_, f)| f.name == n)
                    .map(|(i, _)| i)
                    .collect();
                if allowed.is_empty() {
                    return Err(FormatError::Unknown(n.clone()));
                }
                Ok(LineParser {
                    custom: None,
                    allowed,
                    json: false,
                })
            }
            FormatSpec::Regex { regex, ts_format } => Ok(LineParser {
                custom: Some(Custom {
                    re: Regex::new(regex)?,
                    ts_format: ts_format.clone(),
                }),
                allowed: vec![],
                json: false,
            }),
        }
    }

    /// Parses one line. `hint` remembers the last matching format of the
    /// stream (pass the same one for every line of a stream); `year_ref` is
    /// the reference year-less timestamps are dated against (the file's
    /// modification time, see [`timestamp`]).
    pub fn parse(&self, line: &str, hint: &mut Option<usize>, year_ref: Millis) -> ParsedLine {
        if let Some(c) = &self.custom {
            if let Some(caps) = c.re.captures(line) {
                return from_custom(c, &caps, line, year_ref);
            }
            return unstructured(line);
        }
        if self.json && line.trim_start().starts_with('{') {
            if let Some(p) = parse_json(line, year_ref) {
                return p;
            }
        }
        if let Some(h) = *hint {
            if let Some(p) = try_builtin(h, line, year_ref) {
                return p;
            }
        }
        for &i in &self.allowed {
            if Some(i) == *hint {
                continue;
            }
            if let Some(p) = try_builtin(i, line, year_ref) {
                *hint = Some(i);
                return p;
            }
        }
        generic(line, year_ref)
    }
}

fn try_builtin(i: usize, line: &str, year_ref: Millis) -> Option<ParsedLine> {
    let f = &BUILTIN[i];
    let caps = f.re.captures(line)?;
    let ts = caps
        .name("ts")
        .and_then(|m| timestamp::parse(m.as_str(), f.ts, year_ref));
    // A format whose timestamp does not read is not this format.
    ts?;
    let mut fields = BTreeMap::new();
    for name in f.re.capture_names().flatten() {
        if matches!(name, "ts" | "level" | "msg" | "pri") {
            continue;
        }
        if let Some(m) = caps.name(name) {
            fields.insert(name.to_string(), m.as_str().to_string());
        }
    }
    let (level, class, message): (Option<String>, &'static str, String) = match f.level {
        LevelRule::Group => {
            if let Some(s) = caps.name("status") {
                let class = s
                    .as_str()
                    .parse::<u16>()
                    .ok()
                    .and_then(status_class)
                    .unwrap_or(UNKNOWN);
                (None, class, line.to_string())
            } else {
                let lv = caps.name("level").map(|m| m.as_str().to_string());
                let class = lv.as_deref().and_then(normalize_level).unwrap_or(UNKNOWN);
                let msg = caps.name("msg").map_or(line, |m| m.as_str()).to_string();
                (lv, class, msg)
            }
        }
        LevelRule::Header => {
            let end = caps.get(0).map_or(0, |m| m.end());
            let rest = &line[end..];
            match header_level(rest) {
                Some((lv, msg_at)) => (
                    Some(lv.to_string()),
                    normalize_level(lv).unwrap_or(UNKNOWN),
                    rest[msg_at..].trim_start().to_string(),
                ),
                None => (None, UNKNOWN, rest.trim_start().to_string()),
            }
        }
        LevelRule::Pri => {
            let msg = caps.name("msg").map_or(line, |m| m.as_str()).to_string();
            match caps.name("pri").and_then(|m| m.as_str().parse::<u8>().ok()) {
                Some(pri) => (Some(pri.to_string()), syslog_severity(pri), msg),
                None => (None, UNKNOWN, msg),
            }
        }
        LevelRule::None => (
            None,
            UNKNOWN,
            caps.name("msg").map_or(line, |m| m.as_str()).to_string(),
        ),
    };
    Some(ParsedLine {
        format: f.name,
        ts,
        level,
        class,
        message,
        fields,
    })
}

fn from_custom(c: &Custom, caps: &Captures, line: &str, year_ref: Millis) -> ParsedLine {
    let ts = caps.name("ts").and_then(|m| match &c.ts_format {
        Some(f) => timestamp::parse_with(m.as_str(), f, year_ref),
        None => timestamp::parse(m.as_str(), TsLayout::Any, year_ref),
    });
    let level = caps.name("level").map(|m| m.as_str().to_string());
    let status_cls = caps
        .name("status")
        .and_then(|m| m.as_str().parse::<u16>().ok())
        .and_then(status_class);
    let class = status_cls
        .or_else(|| level.as_deref().and_then(normalize_level))
        .unwrap_or(UNKNOWN);
    let mut fields = BTreeMap::new();
    if let Some(s) = caps.name("status") {
        fields.insert("status".into(), s.as_str().to_string());
    }
    ParsedLine {
        format: "custom",
        ts,
        level,
        class,
        message: caps.name("msg").map_or(line, |m| m.as_str()).to_string(),
        fields,
    }
}

fn unstructured(line: &str) -> ParsedLine {
    ParsedLine {
        format: "unstructured",
        ts: None,
        level: None,
        class: UNKNOWN,
        message: line.to_string(),
        fields: BTreeMap::new(),
    }
}

/// Last resort for lines no format matched: a leading level word, or an ISO
/// timestamp in the first 64 bytes followed by a header level.
fn generic(line: &str, year_ref: Millis) -> ParsedLine {
    let mut p = unstructured(line);
    if let Some(c) = LEADING_LEVEL.captures(line) {
        if let Some(lv) = c.name("level").filter(|m| is_level_word(m.as_str())) {
            p.level = Some(lv.as_str().to_string());
            p.class = normalize_level(lv.as_str()).unwrap_or(UNKNOWN);
            p.format = "leveled";
            let rest = &line[c.get(0).map_or(0, |m| m.end())..];
            if let Some(m) = ISO_ANYWHERE.find(rest).filter(|m| m.start() < 8) {
                p.ts = timestamp::parse(m.as_str(), TsLayout::Iso, year_ref);
            }
            return p;
        }
    }
    let head_end = line
        .char_indices()
        .map(|(i, _)| i)
        .find(|&i| i >= 64)
        .unwrap_or(line.len());
    if let Some(m) = ISO_ANYWHERE.find(&line[..head_end]) {
        // The header stands even when its timestamp does not read
        // (`2024-13-45 …`): the line keeps its level and inherits a time.
        p.ts = timestamp::parse(m.as_str(), TsLayout::Iso, year_ref);
        p.format = "log4j";
        if let Some((lv, at)) = header_level(&line[m.end()..]) {
            p.level = Some(lv.to_string());
            p.class = normalize_level(lv).unwrap_or(UNKNOWN);
            p.message = line[m.end() + at..].trim_start().to_string();
        }
    }
    p
}

const JSON_LEVEL: &[&str] = &[
    "level",
    "severity",
    "log.level",
    "lvl",
    "loglevel",
    "levelname",
];
const JSON_TS: &[&str] = &["@timestamp", "timestamp", "time", "ts", "datetime", "date"];
const JSON_MSG: &[&str] = &["message", "msg", "log", "text"];
const JSON_STATUS: &[&str] = &["status", "status_code", "http.response.status_code"];

fn json_get<'a>(v: &'a serde_json::Value, dotted: &str) -> Option<&'a serde_json::Value> {
    if let Some(x) = v.get(dotted) {
        return Some(x);
    }
    let mut cur = v;
    for part in dotted.split('.') {
        cur = cur.get(part)?;
    }
    Some(cur)
}

fn parse_json(line: &str, year_ref: Millis) -> Option<ParsedLine> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    if !v.is_object() {
        return None;
    }
    let first = |keys: &[&str]| keys.iter().find_map(|k| json_get(&v, k));
    let ts = first(JSON_TS).and_then(|t| match t {
        serde_json::Value::String(s) => timestamp::parse(s, TsLayout::Any, year_ref),
        serde_json::Value::Number(n) => n.as_f64().map(|f| {
            if f > 1e11 {
                f as i64
            } else {
                (f * 1000.0) as i64
            }
        }),
        _ => None,
    });
    let level = first(JSON_LEVEL).and_then(|l| match l {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    });
    let status = first(JSON_STATUS).and_then(|s| match s {
        serde_json::Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
        serde_json::Value::String(s) => s.parse().ok(),
        _ => None,
    });
    let class = level
        .as_deref()
        .and_then(normalize_level)
        .or_else(|| status.and_then(status_class))
        .unwrap_or(UNKNOWN);
    let message = first(JSON_MSG)
        .map(|m| match m {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .unwrap_or_else(|| line.to_string());
    let mut fields = BTreeMap::new();
    if let Some(s) = status {
        fields.insert("status".into(), s.to_string());
    }
    Some(ParsedLine {
        format: "json",
        ts,
        level,
        class,
        message,
        fields,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use farol_common::time::parse_rfc3339;

    fn auto(line: &str) -> ParsedLine {
        LineParser::new(&FormatSpec::default())
            .unwrap()
            .parse(line, &mut None, 0)
    }

    #[test]
    fn known_formats_without_configuration() {
        let cases: &[(&str, &str, &str, Option<&str>)] = &[
            (
                "[Sun Dec 04 04:47:44 2005] [error] mod_jk child workerEnv in error state 6",
                "apache_error",
                "ERROR",
                Some("2005-12-04T04:47:44Z"),
            ),
            (
                "[Wed Oct 11 14:32:52.123456 2000] [core:warn] [pid 1] msg",
                "apache_error",
                "WARN",
                Some("2000-10-11T14:32:52.123Z"),
            ),
            (
                r#"83.149.9.216 - - [17/May/2015:10:05:03 +0000] "GET /x HTTP/1.1" 404 203 "-" "UA""#,
                "apache_access",
                "4xx",
                Some("2015-05-17T10:05:03Z"),
            ),
            (
                "081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 terminating",
                "hdfs",
                "INFO",
                Some("2008-11-09T20:36:15Z"),
            ),
            (
                "2015-10-18 18:01:47,978 WARN [main] org.apache.hadoop.X: Created",
                "log4j",
                "WARN",
                Some("2015-10-18T18:01:47.978Z"),
            ),
            (
                "2015-07-29 17:41:44,747 - ERROR [QuorumPeer[myid=1]/0:0:0:0:0:0:0:0:2181:FastLeaderElection@774] - x",
                "log4j",
                "ERROR",
                Some("2015-07-29T17:41:44.747Z"),
            ),
            (
                "17/06/09 20:10:40 INFO executor.CoarseGrainedExecutorBackend: Registered",
                "spark",
                "INFO",
                Some("2017-06-09T20:10:40Z"),
            ),
            (
                "134681 node-246 unix.hw state_change.unavailable 1077804742 1 Component State Change: error",
                "hpc",
                "UNKNOWN",
                Some("2004-02-26T14:12:22Z"),
            ),
            (
                "20171223-22:15:29:606|Step_LSC|30002312|onStandStepChanged 3579",
                "healthapp",
                "UNKNOWN",
                Some("2017-12-23T22:15:29.606Z"),
            ),
            (
                "- 1117838570 2005.06.03 R02-M1-N0-C:J12-U11 2005-06-03-15.42.50.675872 R02-M1-N0-C:J12-U11 RAS KERNEL FATAL instruction cache parity error corrected",
                "bgl",
                "FATAL",
                Some("2005-06-03T15:42:50.675Z"),
            ),
            (
                "2016-09-28 04:30:30, Info                  CBS    Loaded Servicing Stack",
                "log4j",
                "INFO",
                Some("2016-09-28T04:30:30Z"),
            ),
            (
                r#"{"@timestamp":"2020-01-02T03:04:05Z","level":"warning","message":"disk"}"#,
                "json",
                "WARN",
                Some("2020-01-02T03:04:05Z"),
            ),
            (
                "2020-01-02T03:04:05.5+01:00 [DEBUG] something",
                "log4j",
                "DEBUG",
                Some("2020-01-02T02:04:05.5Z"),
            ),
            ("[WARN] no time here", "leveled", "WARN", None),
            (
                "nova-api.log.1.2017-05-16_13:53:08 2017-05-16 00:00:00.008 25746 INFO nova.osapi",
                "log4j",
                "INFO",
                Some("2017-05-16T00:00:00.008Z"),
            ),
        ];
        for (line, format, class, ts) in cases {
            let p = auto(line);
            assert_eq!(p.format, *format, "{line}");
            assert_eq!(p.class, *class, "{line}");
            assert_eq!(p.ts, ts.map(|t| parse_rfc3339(t).unwrap()), "{line}");
        }
    }

    #[test]
    fn syslog_has_no_severity_unless_pri_says() {
        let p = auto("Jun 14 15:16:01 combo sshd(pam_unix)[19939]: error: authentication failure");
        assert_eq!((p.format, p.class), ("syslog", "UNKNOWN"));
        assert!(p.ts.is_some());
        let p = auto("<11>Jun 14 15:16:01 combo app: x");
        assert_eq!(p.class, "ERROR");
        let p = auto("<165>1 2003-10-11T22:14:15.003Z mymachine evntslog - ID47 msg");
        assert_eq!(
            (p.class, p.ts),
            ("INFO", parse_rfc3339("2003-10-11T22:14:15.003Z"))
        );
    }

    #[test]
    fn level_words_in_the_message_are_not_severities() {
        let p = auto("[10.30 16:49:06] chrome.exe - error connecting ERROR");
        assert_eq!((p.format, p.class), ("proxifier", "UNKNOWN"));
        let p = auto("just some text with ERROR inside");
        assert_eq!((p.format, p.class, p.ts), ("unstructured", "UNKNOWN", None));
    }

    #[test]
    fn logcat_single_letter_levels() {
        let p = auto("03-17 16:13:38.811  1702  2395 D WindowManager: printFreezingDisplayLogs");
        assert_eq!((p.format, p.class), ("logcat", "DEBUG"));
    }

    #[test]
    fn user_regex_with_named_groups() {
        let spec = FormatSpec::Regex {
            regex: r"^(?P<ts>\S+) \| (?P<level>\w+) \| (?P<msg>.*)$".into(),
            ts_format: None,
        };
        let p = LineParser::new(&spec).unwrap().parse(
            "2021-03-04T05:06:07Z | crit | boom",
            &mut None,
            0,
        );
        assert_eq!((p.class, p.message.as_str()), ("FATAL", "boom"));
        assert_eq!(p.ts, parse_rfc3339("2021-03-04T05:06:07Z"));
        let spec = FormatSpec::Regex {
            regex: r"^(?P<ts>\d+/\d+/\d+) code=(?P<status>\d+)".into(),
            ts_format: Some("%d/%m/%Y".into()),
        };
        let p = LineParser::new(&spec).unwrap().parse("x", &mut None, 0);
        assert_eq!((p.format, p.class), ("unstructured", "UNKNOWN"));
    }

    #[test]
    fn unreadable_timestamp_keeps_the_header_level() {
        let p = auto("2024-13-45 99:99:99 INFO bad timestamp");
        assert_eq!((p.class, p.ts), ("INFO", None));
    }

    #[test]
    fn broken_json_falls_back_to_text() {
        let p = auto(r#"{"level":"error", "msg": "#);
        assert_eq!(p.class, "UNKNOWN");
    }
}
