//! Log classes (BRIEF §5): a severity as written, normalized to one of six
//! levels, or an HTTP status folded into its class.
//!
//! Every spelling a supported program writes in its severity position maps
//! here, so that formats only have to find the position: syslog names,
//! log4j/logback, Python, PostgreSQL (`LOG`, `DEBUG1`…`DEBUG5`), MySQL
//! (`Note`, `System`), Serilog and zerolog three-letter codes, supervisord's
//! four-letter codes, logrus' terminal codes, log15's (`eror`, `dbug`),
//! Elasticsearch's `DEPRECATION` (a level between WARN and INFO), Apache's `trace1`…`trace8`,
//! MongoDB's `D1`…`D5`, Redis' marks and the single letters of logcat, glog
//! and Ruby.

/// Class of a line with neither a severity nor a status.
pub const UNKNOWN: &str = "UNKNOWN";

/// Normalizes a severity word; `None` when it is not one.
///
/// Single letters (`E`, `W`, `I`, `D`, `V`, `F`, `A`) and Redis' marks
/// (`#`, `*`, `-`, `.`) are accepted here because some formats put them in
/// their severity position; only those formats pass them in (see
/// [`is_level_word`] for what a format-agnostic header may take).
pub fn normalize_level(level: &str) -> Option<&'static str> {
    let l = level.trim();
    if l.is_empty() || l.len() > 16 {
        return None;
    }
    // Go's slog writes levels between the named ones as `INFO+2`, `DEBUG-4`.
    let l = match l.find(['+', '-']) {
        Some(i) if i > 0 && l[i + 1..].bytes().all(|b| b.is_ascii_digit()) && i + 1 < l.len() => {
            &l[..i]
        }
        _ => l,
    };
    let mut buf = [0u8; 16];
    let lower = &mut buf[..l.len()];
    lower.copy_from_slice(l.as_bytes());
    lower.make_ascii_lowercase();
    let lower = std::str::from_utf8(lower).ok()?;
    let class = match lower {
        "emerg" | "emergency" | "alert" | "crit" | "critical" | "fatal" | "panic" | "severe"
        | "ftl" | "fata" | "pani" | "pnc" | "dpanic" | "f" | "a" => "FATAL",
        "err" | "error" | "erro" | "eror" | "e" => "ERROR",
        "warn" | "warning" | "wrn" | "w" | "deprecation" | "#" => "WARN",
        "info" | "notice" | "informational" | "information" | "inf" | "i" | "log" | "note"
        | "system" | "*" => "INFO",
        "debug" | "fine" | "dbg" | "debg" | "debu" | "dbug" | "d" | "debug1" | "debug2"
        | "debug3" | "debug4" | "debug5" | "d1" | "d2" | "d3" | "d4" | "d5" | "-" => "DEBUG",
        "trace" | "finer" | "finest" | "verbose" | "vrb" | "trc" | "trac" | "blat" | "v"
        | "trace1" | "trace2" | "trace3" | "trace4" | "trace5" | "trace6" | "trace7" | "trace8"
        | "." => "TRACE",
        _ => return None,
    };
    Some(class)
}

/// True when `word` is a severity word a format-agnostic header may take:
/// at least two letters (no single letters, no Redis marks) and not
/// MongoDB's `D1`…`D5`, which only mean something in MongoDB's position.
pub fn is_level_word(word: &str) -> bool {
    let w = word.trim();
    w.len() > 1
        && w.as_bytes()[0].is_ascii_alphabetic()
        && !(w.len() == 2 && w.as_bytes()[1].is_ascii_digit())
        && normalize_level(w).is_some()
}

/// `1xx` … `5xx` for a valid HTTP status.
pub fn status_class(status: u16) -> Option<&'static str> {
    match status {
        100..=199 => Some("1xx"),
        200..=299 => Some("2xx"),
        300..=399 => Some("3xx"),
        400..=499 => Some("4xx"),
        500..=599 => Some("5xx"),
        _ => None,
    }
}

/// The status class of a status written as text (`"404"`), if it is one.
pub fn status_class_str(s: &str) -> Option<&'static str> {
    let s = s.trim();
    if s.len() != 3 {
        return None;
    }
    s.parse::<u16>().ok().and_then(status_class)
}

/// Syslog PRI severity (the low three bits) as a class.
pub fn syslog_severity(pri: u8) -> &'static str {
    match pri & 7 {
        0..=2 => "FATAL",
        3 => "ERROR",
        4 => "WARN",
        5 | 6 => "INFO",
        _ => "DEBUG",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brief_normalization_table() {
        for (w, c) in [
            ("emerg", "FATAL"),
            ("ALERT", "FATAL"),
            ("crit", "FATAL"),
            ("Critical", "FATAL"),
            ("fatal", "FATAL"),
            ("panic", "FATAL"),
            ("SEVERE", "FATAL"),
            ("err", "ERROR"),
            ("error", "ERROR"),
            ("E", "ERROR"),
            ("warn", "WARN"),
            ("Warning", "WARN"),
            ("W", "WARN"),
            ("info", "INFO"),
            ("notice", "INFO"),
            ("informational", "INFO"),
            ("I", "INFO"),
            ("debug", "DEBUG"),
            ("fine", "DEBUG"),
            ("D", "DEBUG"),
            ("trace", "TRACE"),
            ("finer", "TRACE"),
            ("finest", "TRACE"),
            ("verbose", "TRACE"),
            ("V", "TRACE"),
        ] {
            assert_eq!(normalize_level(w), Some(c), "{w}");
        }
        assert_eq!(normalize_level("combo"), None);
        assert!(!is_level_word("E"));
    }

    #[test]
    fn issue_9_additions() {
        for (w, c) in [
            ("LOG", "INFO"),
            ("NOTE", "INFO"),
            ("Note", "INFO"),
            ("SYSTEM", "INFO"),
            ("System", "INFO"),
            ("INF", "INFO"),
            ("WRN", "WARN"),
            ("ERR", "ERROR"),
            ("FTL", "FATAL"),
            ("DBG", "DEBUG"),
            ("VRB", "TRACE"),
            ("ERRO", "ERROR"),
            ("DEBG", "DEBUG"),
            ("TRAC", "TRACE"),
            ("CRIT", "FATAL"),
            ("EMERG", "FATAL"),
            ("BLAT", "TRACE"),
            ("F", "FATAL"),
            ("A", "FATAL"),
            ("DEBUG1", "DEBUG"),
            ("DEBUG5", "DEBUG"),
            ("D1", "DEBUG"),
            ("D5", "DEBUG"),
            ("trace1", "TRACE"),
            ("trace8", "TRACE"),
            ("#", "WARN"),
            ("*", "INFO"),
            ("-", "DEBUG"),
            (".", "TRACE"),
            ("INFO+2", "INFO"),
            ("DEBUG-4", "DEBUG"),
            ("Information", "INFO"),
            ("eror", "ERROR"),
            ("dbug", "DEBUG"),
            ("DEPRECATION", "WARN"),
        ] {
            assert_eq!(normalize_level(w), Some(c), "{w}");
        }
        for w in ["trace9", "DEBUG6", "D6", "LOGS", "", "INFO+", "x-1"] {
            assert_eq!(normalize_level(w), None, "{w}");
        }
        for w in ["D1", "#", "*", "F", "A", "I"] {
            assert!(!is_level_word(w), "{w}");
        }
        for w in ["INF", "ERRO", "DEBUG3", "Note", "warn"] {
            assert!(is_level_word(w), "{w}");
        }
    }

    #[test]
    fn status_classes() {
        assert_eq!(status_class(200), Some("2xx"));
        assert_eq!(status_class(404), Some("4xx"));
        assert_eq!(status_class(600), None);
        assert_eq!(status_class_str("503"), Some("5xx"));
        assert_eq!(status_class_str("-"), None);
        assert_eq!(syslog_severity(3), "ERROR");
        assert_eq!(syslog_severity(8 + 4), "WARN");
    }
}
