//! The table of built-in line formats: one anchored regex per format, the
//! layout of its timestamp and the rule that finds its severity. Every entry
//! follows the program's own documentation and default configuration (the
//! README lists them); the table's order is the detection order, most
//! specific first, and all patterns are compiled once, together, into a
//! [`RegexSet`] so that a line that is not in its stream's remembered format
//! finds its candidates in one pass.

use super::header::{self, Case, Stop};
use super::{logfmt, ParsedLine};
use crate::class::{is_level_word, normalize_level, status_class_str, syslog_severity, UNKNOWN};
use crate::timestamp::{self, TsLayout, ZONE_ABBREVIATIONS};
use farol_common::time::Millis;
use regex::{CaptureLocations, Regex, RegexSet};
use std::collections::BTreeMap;
use std::sync::LazyLock;

/// Where a format keeps its severity.
#[derive(Clone, Copy)]
pub(super) enum LevelRule {
    /// The `status` group when it holds an HTTP status, else the `level`
    /// group in the format's own spelling, else the `pri` group.
    Group,
    /// The `level` group through a format-specific table.
    Map(fn(&str) -> Option<&'static str>),
    /// A level in the header right after the match (see [`header`]).
    Header(Case),
    /// The syslog PRI group.
    Pri,
    /// The format has no severity.
    None,
}

/// One built-in format.
pub(super) struct Format {
    /// Its name, as `format = "…"` takes it and `farol detect` shows it.
    pub name: &'static str,
    pub re: Regex,
    ts: TsLayout,
    level: LevelRule,
    /// A syslog-style envelope whose message may carry a line of another
    /// format (klog, logfmt, JSON, an access log).
    pub envelope: bool,
    groups: Groups,
}

/// A format's capture groups by index, resolved once when the table is
/// built: looking groups up by name on every line showed in profiles.
struct Groups {
    ts: Option<usize>,
    level: Option<usize>,
    pri: Option<usize>,
    status: Option<usize>,
    host: Option<usize>,
    tag: Option<usize>,
    /// The groups kept as fields: their keys and indices.
    fields: Vec<(String, usize)>,
}

impl Groups {
    fn of(re: &Regex) -> Self {
        let index = |name: &str| re.capture_names().position(|n| n == Some(name));
        let fields = re
            .capture_names()
            .enumerate()
            .filter_map(|(i, n)| Some((n?, i)))
            .filter(|(n, _)| !matches!(*n, "ts" | "level" | "pri" | "letter"))
            .map(|(n, i)| (if n == "pid2" { "pid" } else { n }.to_string(), i))
            .collect();
        Groups {
            ts: index("ts"),
            level: index("level"),
            pri: index("pri"),
            status: index("status"),
            host: index("host"),
            tag: index("tag"),
            fields,
        }
    }
}

thread_local! {
    /// Each format's capture slots, reused from line to line on this thread
    /// (`Regex::captures` allocates them for every line). A slot is taken
    /// out while in use, so a nested attempt makes its own.
    static SLOTS: std::cell::RefCell<Vec<Option<CaptureLocations>>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// The compiled table.
pub(super) struct Table {
    pub formats: Vec<Format>,
    pub set: RegexSet,
}

/// An ISO 8601 timestamp as logs write it, with any zone spelling.
pub(super) fn iso_ts() -> String {
    format!(
        r"\d{{4}}-\d{{2}}-\d{{2}}[T ]\d{{2}}:\d{{2}}:\d{{2}}(?:[.,]\d{{1,9}})?(?:Z|[+-]\d{{2}}(?::?\d{{2}})?| (?:[+-]\d{{2}}(?::?\d{{2}})?|{})\b)?",
        zones_alt()
    )
}

/// The zone abbreviations as one alternation, factored by common prefix
/// (`C(?:ET|ST|…)`): every pattern that uses it is followed by a word
/// boundary or a space, so at most one abbreviation can match at a place
/// and the factoring matches exactly what the plain list does, but no two
/// branches start with the same byte, which keeps the `log4j` header
/// regex one-pass (its groups read by the one-pass DFA, not the bounded
/// backtracker).
fn zones_alt() -> String {
    let mut words: Vec<&str> = ZONE_ABBREVIATIONS.iter().map(|(z, _)| *z).collect();
    words.sort_unstable();
    words.dedup();
    let mut out = String::new();
    prefix_tree(&words, &mut out);
    out
}

/// Writes `words` (sorted, distinct) as an alternation factored by their
/// first characters, recursively; a word that ends where others go on
/// makes the rest optional.
fn prefix_tree(words: &[&str], out: &mut String) {
    let ends_here = words.iter().any(|w| w.is_empty());
    let rest: Vec<&str> = words.iter().copied().filter(|w| !w.is_empty()).collect();
    if rest.is_empty() {
        return;
    }
    let mut branches: Vec<String> = Vec::new();
    let mut i = 0;
    while let Some(first) = rest.get(i).and_then(|w| w.chars().next()) {
        let n = rest[i..]
            .iter()
            .take_while(|w| w.starts_with(first))
            .count();
        let tails: Vec<&str> = rest[i..i + n]
            .iter()
            .map(|w| &w[first.len_utf8()..])
            .collect();
        let mut branch = regex::escape(first.encode_utf8(&mut [0u8; 4]));
        prefix_tree(&tails, &mut branch);
        branches.push(branch);
        i += n;
    }
    let group = branches.len() > 1 || ends_here;
    if group {
        out.push_str("(?:");
    }
    out.push_str(&branches.join("|"));
    if group {
        out.push(')');
    }
    if ends_here {
        out.push('?');
    }
}

/// RabbitMQ's old report headers name Erlang report kinds, not levels.
fn erlang_report(kind: &str) -> Option<&'static str> {
    match kind {
        "CRASH" | "SUPERVISOR" => Some("ERROR"),
        "PROGRESS" => Some("INFO"),
        "WARNING" => Some("WARN"),
        k => normalize_level(k),
    }
}

/// Ruby's Logger writes `ANY` for messages of unknown severity.
fn ruby_level(word: &str) -> Option<&'static str> {
    if word == "ANY" {
        None
    } else {
        normalize_level(word)
    }
}

pub(super) static TABLE: LazyLock<Table> = LazyLock::new(|| {
    use LevelRule as L;
    use TsLayout as T;
    let iso = iso_ts();
    let zones = zones_alt();
    let req = r#""(?P<request>(?:[^"\\]|\\.)*)""#;
    let access = format!(
        r"(?P<client>\S+) (?P<ident>\S+) (?P<user>\S+) \[(?P<ts>\d{{2}}/[A-Z][a-z]{{2}}/\d{{4}}[: ]\d{{2}}:\d{{2}}:\d{{2}}(?:\.\d+)?(?: [+-]\d{{4}})?)\] {req} (?P<status>\d{{3}}) (?P<bytes>\S+)"
    );
    let defs: Vec<(&'static str, String, TsLayout, LevelRule, bool)> = vec![
        // Apache/nginx/Traefik/gunicorn access logs: common, combined,
        // vhost_combined, anything appended (`$request_time` …); also
        // Python's http.server (no zone).
        (
            "apache_access",
            format!(r"^{access}"),
            T::Clf,
            L::Group,
            false,
        ),
        // Apache `vhost_combined`: `%v:%p` first. A separate entry keeps
        // both patterns one-pass (fast to capture).
        (
            "apache_access",
            format!(r"^(?P<vhost>\S+) {access}"),
            T::Clf,
            L::Group,
            false,
        ),
        // HAProxy `option httplog`, through syslog (with or without a host:
        // `log stdout format rfc3164` has none) or raw on stdout.
        (
            "haproxy",
                            r"^(?:<(?P<pri>\d{1,3})>)?(?:(?:[A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2}|\d{4}-\d{2}-\d{2}T\S+) (?:\S+ )?[^\s:]+: )?(?P<client>[\da-fA-F.:]+):(?P<port>\d+) \[(?P<ts>\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2}(?:\.\d+)?)\] (?P<frontend>\S+) (?P<backend>\S+) (?P<timers>-?\d+/-?\d+/-?\d+/-?\d+/\+?-?\d+) (?P<status>-?\d+) ".into(),
            T::ClfNoZone,
            L::Group,
            false,
        ),
        // Django's development server and similar `[date] "request" status`.
        (
            "django_access",
            format!(
                r"^\[(?P<ts>\d{{2}}/[A-Z][a-z]{{2}}/\d{{4}} \d{{2}}:\d{{2}}:\d{{2}})\] {req} (?P<status>\d{{3}}) "
            ),
            T::ClfNoZone,
            L::Group,
            false,
        ),
        // uvicorn's access log: `INFO:     1.2.3.4:5 - "GET / HTTP/1.1" 200 OK`.
        (
            "uvicorn_access",
            format!(r"^(?P<level>[A-Z]+):\s+(?P<client>\S+) - {req} (?P<status>\d{{3}})"),
            T::Any,
            L::Group,
            false,
        ),
        // Apache 2.2/2.4 error log (`[module:level]`, trace1…trace8).
        (
            "apache_error",
            r"^\[(?P<ts>[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2}(?:\.\d+)? \d{4})\] \[(?:(?P<module>[^\]:\s]*):)?(?P<level>[A-Za-z]+\d?)\] ?".into(),
            T::Ctime,
            L::Group,
            false,
        ),
        // nginx error log.
        (
            "nginx_error",
            r"^(?P<ts>\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}) \[(?P<level>[a-z]+)\] (?P<pid>\d+)#(?P<tid>\d+): ".into(),
            T::Slash,
            L::Group,
            false,
        ),
        // Envoy's default access log: status right after the request line.
        (
            "envoy_access",
            format!(
                r"^\[(?P<ts>\d{{4}}-\d{{2}}-\d{{2}}T\d{{2}}:\d{{2}}:\d{{2}}(?:\.\d+)?(?:Z|[+-]\d{{2}}:?\d{{2}})?)\] {req} (?P<status>\d{{1,3}}) (?P<flags>\S+) "
            ),
            T::Iso,
            L::Group,
            false,
        ),
        // Envoy's application log `[%Y-%m-%d %T.%e][%t][%l][%n]`.
        (
            "envoy",
            r"^\[(?P<ts>\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3})\]\[(?P<tid>\d+)\]\[(?P<level>[a-z]+)\]\[(?P<logger>[^\]]*)\] ?".into(),
            T::Iso,
            L::Group,
            false,
        ),
        (
            "bgl",
            r"^(?P<label>\S+) (?P<epoch>\d{10}) \d{4}\.\d{2}\.\d{2} (?P<node>\S+) (?P<ts>\d{4}-\d{2}-\d{2}-\d{2}\.\d{2}\.\d{2}\.\d+) \S+ (?P<type>\S+) (?P<component>\S+) (?P<level>[A-Z]+)(?: |$)".into(),
            T::Bgl,
            L::Group,
            false,
        ),
        (
            "hpc",
            r"^(?P<logid>\d+) (?P<node>\S+) (?P<component>\S+) (?P<state>\S+) (?P<ts>\d{9,10}) (?P<flag>-?\d+)(?: |$)".into(),
            T::Epoch,
            L::None,
            false,
        ),
        // Android logcat `threadtime` (the default), with `-v year`,
        // `-v zone` or `-v epoch`.
        (
            "logcat",
            r"^(?P<ts>(?:\d{4}-)?\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3,6}(?: [+-]\d{4})?|\d{9,10}\.\d{3,6})\s+(?:(?P<uid>[a-z][\w.]*)\s+)?(?P<pid>\d+)\s+(?P<tid>\d+)\s+(?P<level>[VDIWEFA])\s+(?P<tag>[^:]*?)\s*: ?".into(),
            T::Logcat,
            L::Group,
            false,
        ),
        // logcat `-v time`.
        (
            "logcat",
            r"^(?P<ts>(?:\d{4}-)?\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3,6}(?: [+-]\d{4})?)\s+(?P<level>[VDIWEFA])/(?P<tag>[^(]*?)\s*\(\s*(?P<pid>\d+)\): ?".into(),
            T::Logcat,
            L::Group,
            false,
        ),
        // logcat `-v brief` (the old default): no time.
        (
            "logcat",
            r"^(?P<level>[VDIWEFA])/(?P<tag>[^(]*?)\s*\(\s*(?P<pid>\d+)\): ?".into(),
            T::Any,
            L::Group,
            false,
        ),
        (
            "healthapp",
            r"^(?P<ts>\d{8}-\d{1,2}:\d{1,2}:\d{1,2}:\d{1,3})\|(?P<component>[^|]*)\|(?P<pid>[^|]*)\|".into(),
            T::HealthApp,
            L::None,
            false,
        ),
        (
            "proxifier",
            // `[MM.dd HH:mm:ss] program - message`; the program may hold a
            // space (`chrome.exe *64`).
            r"^\[(?P<ts>\d{2}\.\d{2} \d{2}:\d{2}:\d{2})\] (?:(?P<program>[^\[\]]+?) - )?".into(),
            T::MonthDotDay,
            L::None,
            false,
        ),
        // Kubernetes klog / glog: `Lmmdd hh:mm:ss.uuuuuu threadid file:line]`.
        (
            "klog",
            r"^(?P<level>[IWEF])(?P<ts>\d{4} \d{2}:\d{2}:\d{2}\.\d{6})\s+(?P<tid>\d+) (?P<src>[^\]\s]+)\] ?".into(),
            T::Klog,
            L::Group,
            false,
        ),
        // Redis `pid:role dd Mon yyyy hh:mm:ss.mmm <mark>` (year since 3.x),
        // and 2.x `[pid] dd Mon hh:mm:ss.mmm <mark>`.
        (
            "redis",
            r"^(?:(?P<pid>\d+):(?P<role>[A-Z])|\[(?P<pid2>\d+)\]) (?P<ts>\d{1,2} [A-Z][a-z]{2}(?: \d{4})? \d{2}:\d{2}:\d{2}\.\d{3}) (?P<level>[.*#-])(?: |$)".into(),
            T::DayMonYear,
            L::Group,
            false,
        ),
        // Ruby's Logger (and Rails): `E, [2024-03-05T09:45:39.167007 #4242] ERROR -- prog: msg`.
        (
            "ruby",
            r"^(?P<letter>[DIWEFAU]), \[(?P<ts>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?) #(?P<pid>\d+)\]\s+(?P<level>[A-Z]+) -- (?P<progname>[^:]*?): ?".into(),
            T::Iso,
            L::Map(ruby_level),
            false,
        ),
        // RabbitMQ before 3.8: `=INFO REPORT==== 5-Mar-2024::10:12:01 ===`.
        (
            "rabbitmq_legacy",
            r"^=(?P<level>[A-Z]+) REPORT==== (?P<ts>\d{1,2}-[A-Z][a-z]{2}-\d{4}::\d{2}:\d{2}:\d{2}(?:\.\d+)?) ===".into(),
            T::DayMonYearColons,
            L::Map(erlang_report),
            false,
        ),
        // PostgreSQL with any `log_line_prefix` that starts with `%m` or `%t`.
        (
            "postgresql",
            format!(
                r"^(?P<ts>\d{{4}}-\d{{2}}-\d{{2}} \d{{2}}:\d{{2}}:\d{{2}}(?:\.\d{{1,6}})? (?:{zones}|[+-]\d{{2}}(?::?\d{{2}})?)) (?:.*? )?(?P<level>DEBUG[1-5]?|LOG|INFO|NOTICE|WARNING|ERROR|FATAL|PANIC|DETAIL|HINT|CONTEXT|STATEMENT|QUERY|LOCATION):  "
            ),
            T::Iso,
            L::Group,
            false,
        ),
        // MongoDB before 4.4: `… I NETWORK  [listener] …`.
        (
            "mongodb_legacy",
            r"^(?P<ts>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}(?:Z|[+-]\d{4}))\s+(?P<level>[FEWI]|D[1-5]?)\s+(?P<component>[A-Z_]+|-)\s+\[(?P<ctx>[^\]]+)\] ".into(),
            T::Iso,
            L::Group,
            false,
        ),
        // MySQL 5.1–5.6: `240305 10:12:01 [Note] …`.
        (
            "mysql_legacy",
            r"^(?P<ts>\d{6} [ \d]\d:\d{2}:\d{2})\b".into(),
            T::YyMmDdTime,
            L::Header(Case::Strict),
            false,
        ),
        // RFC 5424.
        (
            "syslog",
            r"^<(?P<pri>\d{1,3})>1 (?P<ts>\S+) (?P<host>\S+) (?P<app>\S+) (?P<procid>\S+) (?P<msgid>\S+)(?: |$)".into(),
            T::Iso,
            L::Pri,
            false,
        ),
        // RFC 3164 and journald `short` / `short-precise`.
        (
            "syslog",
            r"^(?:<(?P<pri>\d{1,3})>)?(?P<ts>[A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2}(?:\.\d+)?) (?P<host>\S+)(?: |$)".into(),
            T::Syslog,
            L::Pri,
            true,
        ),
        // journald `short-iso`, `short-iso-precise`; rsyslog's
        // high-precision file format.
        (
            "syslog",
            r"^(?:<(?P<pri>\d{1,3})>)?(?P<ts>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})) (?P<host>[^\s\[\]]+) (?P<tag>[^\s\[\]:]+)(?:\[\d+\])?:(?: |$)".into(),
            T::Iso,
            L::Pri,
            true,
        ),
        // journald `short-full`: `Tue 2024-03-05 10:12:01 CET host unit[pid]:`.
        (
            "syslog",
            format!(
                r"^[A-Z][a-z]{{2}} (?P<ts>\d{{4}}-\d{{2}}-\d{{2}} \d{{2}}:\d{{2}}:\d{{2}}(?:\.\d+)? (?:{zones})) (?P<host>\S+) (?P<tag>[^\s\[\]:]+)(?:\[\d+\])?:(?: |$)"
            ),
            T::Iso,
            L::Pri,
            true,
        ),
        // journald `short-unix`.
        (
            "syslog",
            r"^(?P<ts>\d{10}\.\d{6}) (?P<host>\S+) (?P<tag>[^\s\[\]:]+)(?:\[\d+\])?:(?: |$)".into(),
            T::Epoch,
            L::Pri,
            true,
        ),
        // Bitnami's container scripts (Kafka, Redis, PostgreSQL, MySQL…
        // images): `module HH:MM:SS.cc LEVEL ==> message`.
        (
            "bitnami",
            r"^(?P<module>[a-z][\w.-]*) (?P<ts>\d{2}:\d{2}:\d{2}\.\d{2}) (?P<level>[A-Z]+)\s+==> ".into(),
            T::TimeOnly,
            L::Group,
            false,
        ),
        // log4j 1 `BasicConfigurator`: `%r [%t] %p %c %x - %m`, no time.
        (
            "log4j_basic",
            r"^(?P<relative>\d+) \[(?P<thread>[^\]]+)\] (?P<level>TRACE|DEBUG|INFO|WARN|ERROR|FATAL) ".into(),
            T::Any,
            L::Group,
            false,
        ),
        // A time of day only: logback's and log4j2's default patterns,
        // Serilog's console (`[10:12:01 INF]`).
        (
            "time_only",
            r"^\[?(?P<ts>\d{2}:\d{2}:\d{2}(?:[.,]\d{1,9})?)\b".into(),
            T::TimeOnly,
            L::Header(Case::Strict),
            false,
        ),
        // An ISO timestamp, then a header with the level: log4j/logback
        // patterns, Python, Spring Boot, Kafka, ZooKeeper, MySQL 5.7/8,
        // RabbitMQ, supervisord, Serilog, zap, hclog, zerolog, gunicorn,
        // Elasticsearch's text log, Windows CBS.
        (
            "log4j",
            format!(r"^\[?(?P<ts>{iso})\]?"),
            T::Iso,
            L::Header(Case::ColonToo),
            false,
        ),
        // `yyyy/MM/dd HH:mm:ss`: Go's `log` (no level), Go's slog default
        // (`INFO msg`), HashiCorp's `[INFO]`.
        (
            "slash_date",
            r"^\[?(?P<ts>\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}(?:[.,]\d{1,9})?)\]?".into(),
            T::Slash,
            L::Header(Case::Strict),
            false,
        ),
        // `dd Mon yyyy HH:mm:ss` (log4j `%d{DATE}`).
        (
            "log4j",
            r"^\[?(?P<ts>\d{1,2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2}(?:[.,]\d{1,9})?)\]?".into(),
            T::DayMonYear,
            L::Header(Case::Strict),
            false,
        ),
        // Tomcat's `OneLineFormatter`: `05-Mar-2024 10:12:01.123 INFO [main] …`.
        (
            "tomcat",
            r"^(?P<ts>\d{2}-[A-Z][a-z]{2}-\d{4} \d{2}:\d{2}:\d{2}(?:\.\d{1,6})?)\b".into(),
            T::DayMonYearDash,
            L::Header(Case::Strict),
            false,
        ),
        // java.util.logging `SimpleFormatter` first line (its level is on
        // the next line, `INFO: msg`).
        (
            "jul",
            r"^(?P<ts>[A-Z][a-z]{2} \d{1,2}, \d{4} \d{1,2}:\d{2}:\d{2} [AP]M) ".into(),
            T::MonDayYearAmPm,
            L::None,
            false,
        ),
        (
            "spark",
            r"^(?P<ts>\d{2}/\d{2}/\d{2} \d{2}:\d{2}:\d{2})".into(),
            T::YyMmDdSlash,
            L::Header(Case::Strict),
            false,
        ),
        (
            "hdfs",
            r"^(?P<ts>\d{6} \d{6})\b".into(),
            T::YyMmDdCompact,
            L::Header(Case::Strict),
            false,
        ),
        // Epoch seconds first, then the level (zap's console encoder with
        // its production config).
        (
            "epoch",
            r"^(?P<ts>\d{10}(?:\.\d{1,9})?|\d\.\d+e\+09)\s".into(),
            T::Epoch,
            L::Header(Case::Strict),
            false,
        ),
    ];
    let mut formats = Vec::with_capacity(defs.len());
    for (name, re, ts, level, envelope) in defs {
        let re = Regex::new(&ascii_digits(&re)).expect("built-in format regex compiles");
        formats.push(Format {
            name,
            groups: Groups::of(&re),
            re,
            ts,
            level,
            envelope,
        });
    }
    let set =
        RegexSet::new(formats.iter().map(|f| f.re.as_str())).expect("built-in format set compiles");
    Table { formats, set }
});

/// The pattern with every `\d` as `[0-9]`. Timestamps, pids and status
/// codes are written with ASCII digits, and only ASCII digits are read from
/// them (`timestamp`); Unicode `\d` (64 ranges, each a UTF-8 automaton)
/// appears about 250 times in the table and made the compiled table, its
/// set and its caches about 24 MiB of every process's memory, against
/// under 5 MiB with ASCII digits.
fn ascii_digits(re: &str) -> String {
    re.replace(r"\d", "[0-9]")
}

/// Names of the built-in formats, each once, in detection order.
pub(super) fn names() -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for f in &TABLE.formats {
        if !out.contains(&f.name) {
            out.push(f.name);
        }
    }
    out
}

/// The outcome of trying one format on a line.
pub(super) enum Attempt {
    /// The format matched and its timestamp (if it has one) read.
    Parsed(ParsedLine),
    /// The format matched but its timestamp did not read.
    Unreadable(ParsedLine),
    /// Not this format.
    NoMatch,
}

/// A syslog-style host or tag that is an upper-case level word is a leveled
/// line, not syslog (`… INF msg: x`).
fn rejects<'a>(f: &Format, group: impl Fn(Option<usize>) -> Option<&'a str>) -> bool {
    f.envelope
        && [f.groups.host, f.groups.tag]
            .into_iter()
            .any(|g| group(g).is_some_and(|m| is_level_word(m) && m == m.to_uppercase()))
}

/// Tries format `i` on `line`.
pub(super) fn attempt(i: usize, line: &str, year_ref: Millis) -> Attempt {
    let Some(f) = TABLE.formats.get(i) else {
        return Attempt::NoMatch;
    };
    let mut slots = SLOTS
        .with_borrow_mut(|s| s.get_mut(i).and_then(Option::take))
        .unwrap_or_else(|| f.re.capture_locations());
    let out = attempt_with(f, &mut slots, line, year_ref);
    SLOTS.with_borrow_mut(|s| {
        if s.len() <= i {
            s.resize_with(TABLE.formats.len().max(i + 1), || None);
        }
        s[i] = Some(slots);
    });
    out
}

fn attempt_with(f: &Format, slots: &mut CaptureLocations, line: &str, year_ref: Millis) -> Attempt {
    let Some(whole) = f.re.captures_read(slots, line) else {
        return Attempt::NoMatch;
    };
    let group = |g: Option<usize>| {
        g.and_then(|g| slots.get(g))
            .and_then(|(s, e)| line.get(s..e))
    };
    if rejects(f, group) {
        return Attempt::NoMatch;
    }
    let region = group(f.groups.ts);
    let ts = region.and_then(|m| timestamp::parse(m, f.ts, year_ref));
    let unreadable = region.is_some() && ts.is_none();
    let mut fields = BTreeMap::new();
    for (key, g) in &f.groups.fields {
        if let Some(m) = group(Some(*g)) {
            fields.insert(key.clone(), m.to_string());
        }
    }
    let rest = &line[whole.end()..];
    let pri = group(f.groups.pri).and_then(|m| m.parse::<u8>().ok());
    let (level, class, message): (Option<String>, &'static str, &str) = match f.level {
        LevelRule::Group | LevelRule::Map(_) => {
            let lv = group(f.groups.level);
            let status = group(f.groups.status).and_then(status_class_str);
            let by_level = lv.and_then(|l| match f.level {
                LevelRule::Map(map) => map(l),
                _ => normalize_level(l),
            });
            let class = status
                .or(by_level)
                .or(pri.map(syslog_severity))
                .unwrap_or(UNKNOWN);
            let message = if status.is_some() { line } else { rest };
            (lv.map(str::to_string), class, message)
        }
        LevelRule::Header(case) => match header::level(rest, case) {
            Ok(found) => (
                Some(found.level.to_string()),
                normalize_level(found.level).unwrap_or(UNKNOWN),
                header::message_from(rest, found.msg_at),
            ),
            Err(Stop::KeyValue(at)) => {
                let f = logfmt::scan(&rest[at..]);
                if let Some(s) = f.status {
                    fields.insert("status".into(), s.to_string());
                }
                (
                    f.level.map(str::to_string),
                    f.class,
                    f.message.unwrap_or(rest.trim_start()),
                )
            }
            Err(Stop::Other) => (None, UNKNOWN, rest.trim_start()),
        },
        LevelRule::Pri => match pri {
            Some(p) => (Some(p.to_string()), syslog_severity(p), rest),
            None => (None, UNKNOWN, rest),
        },
        LevelRule::None => (None, UNKNOWN, rest),
    };
    let parsed = ParsedLine {
        format: f.name,
        ts,
        ts_unreadable: unreadable,
        level,
        class,
        message: message.to_string(),
        fields,
    };
    if unreadable {
        Attempt::Unreadable(parsed)
    } else {
        Attempt::Parsed(parsed)
    }
}

/// True when format `i` is one of the broad "timestamp, then a header"
/// entries that more specific formats (PostgreSQL, nginx's error log, Envoy,
/// MongoDB…) also match: a stream remembered in one of them lets the
/// specific formats look at a line it found no level in.
pub(super) fn is_broad(i: usize) -> bool {
    TABLE
        .formats
        .get(i)
        .is_some_and(|f| matches!(f.name, "log4j" | "slash_date" | "time_only" | "epoch"))
}

/// True when format `i` is a syslog-style envelope (see [`Format::envelope`]).
pub(super) fn is_envelope(i: usize) -> bool {
    TABLE.formats.get(i).is_some_and(|f| f.envelope)
}

/// True when format `i` carries a syslog PRI in this line's match.
pub(super) fn has_pri(p: &ParsedLine) -> bool {
    p.level.as_deref().is_some_and(|l| l.parse::<u8>().is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The factored zone alternation matches each listed abbreviation as a
    /// whole word, and nothing else: no prefix, no extension, no other
    /// word.
    #[test]
    fn the_factored_zones_match_exactly_the_listed_ones() {
        let re = Regex::new(&format!(r"^(?:{})$", zones_alt())).unwrap();
        for (z, _) in ZONE_ABBREVIATIONS {
            assert!(re.is_match(z), "{z}");
            for bad in [
                format!("{z}X"),
                z[..z.len() - 1].to_string(),
                z.to_lowercase(),
            ] {
                let listed = ZONE_ABBREVIATIONS.iter().any(|(y, _)| *y == bad);
                assert_eq!(re.is_match(&bad), listed, "{bad}");
            }
        }
        for word in ["", "U", "CE", "UTCC", "XYZ", "INFO"] {
            assert!(!re.is_match(word), "{word}");
        }
    }

    /// The ISO-timestamp header (`log4j`: log4j, logback, Python,
    /// ZooKeeper, …) stays one-pass, so its groups are read by the
    /// one-pass DFA instead of the bounded backtracker (BENCHMARKS.md,
    /// round 5): two zone branches starting with the same letter would
    /// break that.
    #[test]
    fn the_iso_header_is_one_pass() {
        let iso = TABLE
            .formats
            .iter()
            .find(|f| f.name == "log4j" && f.re.as_str().contains("[T ]"))
            .expect("the ISO log4j format");
        assert!(regex_automata::dfa::onepass::DFA::new(iso.re.as_str()).is_ok());
    }
}
