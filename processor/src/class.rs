//! Log classes (BRIEF §5): a severity as written, normalized to one of six
//! levels, or an HTTP status folded into its class.

/// Class of a line with neither a severity nor a status.
pub const UNKNOWN: &str = "UNKNOWN";

/// Normalizes a severity word; `None` when it is not one.
pub fn normalize_level(level: &str) -> Option<&'static str> {
    let l = level.trim();
    // Single letters are only severities where a format puts them (logcat, glog).
    let class = match l.to_ascii_lowercase().as_str() {
        "emerg" | "emergency" | "alert" | "crit" | "critical" | "fatal" | "panic" | "severe" => {
            "FATAL"
        }
        "err" | "error" | "e" => "ERROR",
        "warn" | "warning" | "w" => "WARN",
        "info" | "notice" | "informational" | "information" | "i" => "INFO",
        "debug" | "fine" | "d" => "DEBUG",
        "trace" | "finer" | "finest" | "verbose" | "v" => "TRACE",
        _ => return None,
    };
    Some(class)
}

/// True when `word` is a multi-letter severity word (safe to look for in a
/// header position of an unknown format).
pub fn is_level_word(word: &str) -> bool {
    word.len() > 1 && normalize_level(word).is_some()
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
    fn status_classes() {
        assert_eq!(status_class(200), Some("2xx"));
        assert_eq!(status_class(404), Some("4xx"));
        assert_eq!(status_class(600), None);
        assert_eq!(syslog_severity(3), "ERROR");
        assert_eq!(syslog_severity(8 + 4), "WARN");
    }
}
