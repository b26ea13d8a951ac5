//! Log line parsing (BRIEF §5–6): finds a line's timestamp and its severity
//! *in the position its format puts it*, never a word that merely appears in
//! the message. Known formats are recognized without configuration (the
//! README's format list is the table in [`builtin`] plus the conventions in
//! [`json`], [`logfmt`], [`container`] and [`generic`]); users add their own
//! as a regex with named groups `ts`, `level`, `status`, `msg`.
//!
//! Auto-detection ([`dispatch`]) remembers, per stream, the built-in format
//! that matched last, so a file costs one regex per line.

mod builtin;
mod container;
mod dispatch;
mod generic;
mod header;
mod json;
mod logfmt;

use crate::class::{normalize_level, status_class_str, UNKNOWN};
use crate::timestamp::{self, TsLayout};
use farol_common::config::FormatSpec;
use farol_common::time::Millis;
use regex::{Captures, Regex};
use std::collections::BTreeMap;

/// What a line says about itself.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedLine {
    /// Name of the format that matched (`unstructured` when none did).
    pub format: &'static str,
    /// Event time read from the line.
    pub ts: Option<Millis>,
    /// The line has a timestamp where its format puts one, but it does not
    /// read (`2024-13-45 99:99:99`): `ts` is `None` and the line should be
    /// counted in `farol_unparsed_timestamps_total{source}`. False for
    /// lines whose format has no timestamp at all.
    pub ts_unreadable: bool,
    /// Severity as written.
    pub level: Option<String>,
    /// Normalized class.
    pub class: &'static str,
    /// The message part.
    pub message: String,
    /// Other named parts (`wrapper` and `stream` for container lines,
    /// `status` for access logs…).
    pub fields: BTreeMap<String, String>,
}

/// A compiled user format.
struct Custom {
    re: Regex,
    ts_format: Option<String>,
}

/// Parses lines of one source according to its configured format.
pub struct LineParser {
    custom: Option<Custom>,
    /// Which built-in formats (by index) are allowed for this source.
    allowed: Vec<bool>,
    /// JSON objects are read.
    json: bool,
    /// logfmt lines are read.
    logfmt: bool,
    /// Full detection: containers and the generic conventions too.
    auto: bool,
}

/// A format spec that cannot be compiled.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// Unknown built-in name.
    #[error("unknown format '{0}' (known: auto, json, logfmt, {known})", known = format_names().join(", "))]
    Unknown(String),
    /// The user regex does not compile.
    #[error("invalid regex: {0}")]
    Regex(#[from] regex::Error),
}

/// Names `format = "…"` accepts besides `auto`, `json` and `logfmt`: the
/// built-in formats, in detection order.
pub fn format_names() -> Vec<&'static str> {
    builtin::names()
}

impl LineParser {
    /// Builds the parser for a format spec.
    pub fn new(spec: &FormatSpec) -> Result<Self, FormatError> {
        let n = builtin::TABLE.formats.len();
        let base = LineParser {
            custom: None,
            allowed: vec![false; n],
            json: false,
            logfmt: false,
            auto: false,
        };
        match spec {
            FormatSpec::Named(name) if name == "auto" => Ok(LineParser {
                allowed: vec![true; n],
                json: true,
                logfmt: true,
                auto: true,
                ..base
            }),
            FormatSpec::Named(name) if name == "json" => Ok(LineParser { json: true, ..base }),
            FormatSpec::Named(name) if name == "logfmt" => Ok(LineParser {
                logfmt: true,
                ..base
            }),
            FormatSpec::Named(name) => {
                let allowed: Vec<bool> = builtin::TABLE
                    .formats
                    .iter()
                    .map(|f| f.name == name)
                    .collect();
                if !allowed.contains(&true) {
                    return Err(FormatError::Unknown(name.clone()));
                }
                Ok(LineParser { allowed, ..base })
            }
            FormatSpec::Regex { regex, ts_format } => Ok(LineParser {
                custom: Some(Custom {
                    re: Regex::new(regex)?,
                    ts_format: ts_format.clone(),
                }),
                ..base
            }),
        }
    }

    fn allows(&self, i: usize) -> bool {
        self.allowed.get(i).copied().unwrap_or(false)
    }

    fn any_builtin(&self) -> bool {
        self.allowed.contains(&true)
    }

    /// Parses one line. `hint` remembers the last matching format of the
    /// stream (pass the same one for every line of a stream); `year_ref` is
    /// the reference that dates layouts without a year or a date (the
    /// file's modification time, see [`timestamp`]).
    pub fn parse(&self, line: &str, hint: &mut Option<usize>, year_ref: Millis) -> ParsedLine {
        let mut p = match &self.custom {
            Some(c) => match c.re.captures(line) {
                Some(caps) => from_custom(c, &caps, line, year_ref),
                None => generic::unstructured(line),
            },
            None => dispatch::detect(self, line, hint, year_ref, false),
        };
        if p.ts_unreadable {
            p.fields.insert("ts_unreadable".into(), "true".into());
        }
        p
    }
}

fn from_custom(c: &Custom, caps: &Captures, line: &str, year_ref: Millis) -> ParsedLine {
    let region = caps.name("ts");
    let ts = region.and_then(|m| match &c.ts_format {
        Some(f) => timestamp::parse_with(m.as_str(), f, year_ref),
        None => timestamp::parse(m.as_str(), TsLayout::Any, year_ref),
    });
    let level = caps.name("level").map(|m| m.as_str().to_string());
    let status_cls = caps
        .name("status")
        .and_then(|m| status_class_str(m.as_str()));
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
        ts_unreadable: region.is_some() && ts.is_none(),
        level,
        class,
        message: caps.name("msg").map_or(line, |m| m.as_str()).to_string(),
        fields,
    }
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
                "generic",
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
    fn a_broad_remembered_format_lets_specific_ones_find_a_level() {
        let parser = LineParser::new(&FormatSpec::default()).unwrap();
        let mut hint = None;
        let p = parser.parse("2024-03-05 11:12:01.000 CET [1] INFO x", &mut hint, 0);
        assert_eq!((p.format, p.class), ("log4j", "INFO"));
        let p = parser.parse(
            "2024-03-05 11:12:02.000 CET [4242] postgres@mydb ERROR:  duplicate key",
            &mut hint,
            0,
        );
        assert_eq!((p.format, p.class), ("postgresql", "ERROR"));
        // And a line no format finds a level in stays with the broad one.
        let p = parser.parse("2024-03-05 11:12:03.000 CET plain words", &mut hint, 0);
        assert_eq!((p.format, p.class), ("log4j", "UNKNOWN"));
    }

    #[test]
    fn byte_order_mark_and_crlf() {
        let p = auto("\u{feff}2024-03-05 10:12:01,123 WARN [main] x\r");
        assert_eq!((p.format, p.class), ("log4j", "WARN"));
        assert_eq!(p.ts, parse_rfc3339("2024-03-05T10:12:01.123Z"));
    }

    #[test]
    fn the_readme_regex_example_works() {
        let spec = FormatSpec::Regex {
            regex:
                r"^(?P<ts>\d{2}\.\d{2}\.\d{4} \d{2}:\d{2}:\d{2}) \| (?P<level>\w+) \| (?P<msg>.*)$"
                    .into(),
            ts_format: Some("%d.%m.%Y %H:%M:%S".into()),
        };
        let p = LineParser::new(&spec).unwrap().parse(
            "05.03.2024 10:12:01 | W | payment timed out",
            &mut None,
            0,
        );
        assert_eq!(
            (p.class, p.ts, p.message.as_str()),
            (
                "WARN",
                parse_rfc3339("2024-03-05T10:12:01Z"),
                "payment timed out"
            )
        );
    }

    #[test]
    fn the_config_knows_every_built_in_name() {
        let mut ours: Vec<&str> = vec!["json", "logfmt"];
        ours.extend(format_names());
        let mut theirs: Vec<&str> = farol_common::config::BUILTIN_FORMATS.to_vec();
        ours.sort_unstable();
        theirs.sort_unstable();
        assert_eq!(ours, theirs);
        for n in farol_common::config::BUILTIN_FORMATS {
            assert!(
                LineParser::new(&FormatSpec::Named((*n).into())).is_ok(),
                "{n}"
            );
        }
    }

    #[test]
    fn broken_json_falls_back_to_text() {
        let p = auto(r#"{"level":"error", "msg": "#);
        assert_eq!(p.class, "UNKNOWN");
    }
}
