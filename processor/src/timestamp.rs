//! Timestamp readers for the layouts log formats use. Every reader returns
//! epoch milliseconds in UTC; layouts without a year take the year that puts
//! the time closest before a *reference* time (at most a day after it), and
//! layouts without a zone are read as UTC.
//!
//! The reference is the modification time of the file the line was read from
//! (a file's lines were all written before its mtime), never the time Farol
//! runs: re-processing the same file a year later dates it the same, and a
//! file crossing 31 Dec → 1 Jan rolls its year over line by line.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, TimeZone, Utc};
use farol_common::time::Millis;

/// A timestamp layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TsLayout {
    /// `2015-10-18 18:01:47,978`, `2015-10-18T18:01:47.978Z`, with or without zone.
    Iso,
    /// `17/May/2015:10:05:03 +0000` (access logs).
    Clf,
    /// `Sun Dec 04 04:47:44 2005` (Apache error log, ctime).
    Ctime,
    /// `Jun 14 15:16:01` (syslog, no year).
    Syslog,
    /// `17/06/09 20:10:40` (yy/MM/dd, Spark).
    YyMmDdSlash,
    /// `081109 203615` (yyMMdd HHmmss, HDFS).
    YyMmDdCompact,
    /// `20171223-22:15:29:606` (HealthApp).
    HealthApp,
    /// `10.30 16:49:06` (MM.dd, no year, Proxifier).
    MonthDotDay,
    /// `03-17 16:13:38.811` (logcat, no year).
    Logcat,
    /// `1077804742` seconds (or 13-digit milliseconds) since the epoch.
    Epoch,
    /// `2005-06-03-15.42.50.675872` (BGL).
    Bgl,
    /// Try every layout above.
    Any,
}

/// Reads `s` in `layout`.
pub fn parse(s: &str, layout: TsLayout, year_ref: Millis) -> Option<Millis> {
    let s = s.trim();
    match layout {
        TsLayout::Iso => iso(s),
        TsLayout::Clf => DateTime::parse_from_str(s, "%d/%b/%Y:%H:%M:%S %z")
            .ok()
            .map(|t| t.timestamp_millis()),
        TsLayout::Ctime => {
            let norm = s.split_whitespace().collect::<Vec<_>>().join(" ");
            naive(&norm, "%a %b %d %H:%M:%S%.f %Y")
        }
        TsLayout::Syslog => {
            let norm = s.split_whitespace().collect::<Vec<_>>().join(" ");
            without_year(&norm, "%b %d %H:%M:%S%.f", year_ref)
        }
        TsLayout::YyMmDdSlash => naive(s, "%y/%m/%d %H:%M:%S%.f"),
        TsLayout::YyMmDdCompact => naive(s, "%y%m%d %H%M%S"),
        TsLayout::HealthApp => health_app(s),
        TsLayout::MonthDotDay => without_year(s, "%m.%d %H:%M:%S", year_ref),
        TsLayout::Logcat => without_year(s, "%m-%d %H:%M:%S%.f", year_ref),
        TsLayout::Epoch => epoch(s),
        TsLayout::Bgl => naive(s, "%Y-%m-%d-%H.%M.%S%.f"),
        TsLayout::Any => [
            TsLayout::Iso,
            TsLayout::Clf,
            TsLayout::Ctime,
            TsLayout::Syslog,
            TsLayout::YyMmDdSlash,
            TsLayout::Bgl,
            TsLayout::HealthApp,
            TsLayout::Logcat,
            TsLayout::Epoch,
        ]
        .into_iter()
        .find_map(|l| parse(s, l, year_ref)),
    }
}

/// Reads `s` with a chrono format string (zone optional).
pub fn parse_with(s: &str, fmt: &str, year_ref: Millis) -> Option<Millis> {
    DateTime::parse_from_str(s.trim(), fmt)
        .ok()
        .map(|t| t.timestamp_millis())
        .or_else(|| naive(s.trim(), fmt))
        .or_else(|| without_year(s.trim(), fmt, year_ref))
}

fn naive(s: &str, fmt: &str) -> Option<Millis> {
    NaiveDateTime::parse_from_str(s, fmt)
        .ok()
        .map(|t| Utc.from_utc_datetime(&t).timestamp_millis())
}

fn iso(s: &str) -> Option<Millis> {
    let norm: String = s.replace(',', ".");
    if let Ok(t) = DateTime::parse_from_rfc3339(&norm.replacen(' ', "T", 1)) {
        return Some(t.timestamp_millis());
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z"] {
        if let Ok(t) = DateTime::parse_from_str(&norm, fmt) {
            return Some(t.timestamp_millis());
        }
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Some(ms) = naive(&norm, fmt) {
            return Some(ms);
        }
    }
    None
}

fn health_app(s: &str) -> Option<Millis> {
    // yyyyMMdd-H:m:s:SSS with unpadded fields.
    let (date, time) = s.split_once('-')?;
    let d = NaiveDate::parse_from_str(date, "%Y%m%d").ok()?;
    let mut parts = time.split(':').map(|p| p.parse::<u32>().ok());
    let (h, m, sec) = (parts.next()??, parts.next()??, parts.next()??);
    let ms = parts.next().flatten().unwrap_or(0);
    let t = d.and_hms_milli_opt(h, m, sec, ms.min(999))?;
    Some(Utc.from_utc_datetime(&t).timestamp_millis())
}

fn epoch(s: &str) -> Option<Millis> {
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: i64 = s.parse().ok()?;
    match s.len() {
        9 | 10 => Some(n * 1000),
        13 => Some(n),
        _ => None,
    }
}

/// Reads a layout without a year: the year is the latest one (at most eight
/// back, so that 29 Feb finds a leap year) that puts the time at most a day
/// after `year_ref`. December lines of a file last written in January land in
/// the year before; its January lines in the reference's year.
fn without_year(s: &str, fmt: &str, year_ref: Millis) -> Option<Millis> {
    let reference = Utc.timestamp_millis_opt(year_ref).single()?;
    let with_fmt = format!("%Y {fmt}");
    for back in 0..=8 {
        let year = reference.year().checked_sub(back)?;
        // A failure here is either not this layout or 29 Feb of a common
        // year: the next years back tell which.
        let Ok(t) = NaiveDateTime::parse_from_str(&format!("{year} {s}"), &with_fmt) else {
            continue;
        };
        let ms = Utc.from_utc_datetime(&t).timestamp_millis();
        if ms <= year_ref.saturating_add(86_400_000) {
            return Some(ms);
        }
    }
    None
}

/// Reads the `created_at` forms of social APIs: RFC 3339 (X v2, Mastodon)
/// and `Wed Aug 27 13:08:45 +0000 2008` (X v1.1).
pub fn parse_created_at(s: &str) -> Option<Millis> {
    iso(s).or_else(|| {
        DateTime::parse_from_str(s, "%a %b %d %H:%M:%S %z %Y")
            .ok()
            .map(|t| t.timestamp_millis())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use farol_common::time::parse_rfc3339;

    fn at(s: &str) -> Millis {
        parse_rfc3339(s).unwrap()
    }

    #[test]
    fn every_layout_reads_its_sample() {
        let cases = [
            (
                "2015-10-18 18:01:47,978",
                TsLayout::Iso,
                "2015-10-18T18:01:47.978Z",
            ),
            (
                "2015-10-18T18:01:47+02:00",
                TsLayout::Iso,
                "2015-10-18T16:01:47Z",
            ),
            (
                "17/May/2015:10:05:03 +0200",
                TsLayout::Clf,
                "2015-05-17T08:05:03Z",
            ),
            (
                "Sun Dec 04 04:47:44 2005",
                TsLayout::Ctime,
                "2005-12-04T04:47:44Z",
            ),
            (
                "17/06/09 20:10:40",
                TsLayout::YyMmDdSlash,
                "2017-06-09T20:10:40Z",
            ),
            (
                "081109 203615",
                TsLayout::YyMmDdCompact,
                "2008-11-09T20:36:15Z",
            ),
            (
                "20171223-22:15:29:606",
                TsLayout::HealthApp,
                "2017-12-23T22:15:29.606Z",
            ),
            (
                "20171224-1:2:3:4",
                TsLayout::HealthApp,
                "2017-12-24T01:02:03.004Z",
            ),
            ("1077804742", TsLayout::Epoch, "2004-02-26T14:12:22Z"),
            (
                "2005-06-03-15.42.50.675872",
                TsLayout::Bgl,
                "2005-06-03T15:42:50.675Z",
            ),
        ];
        for (s, l, want) in cases {
            assert_eq!(parse(s, l, 0), Some(at(want)), "{s}");
        }
    }

    #[test]
    fn yearless_layouts_land_in_the_year_before_the_reference() {
        let reference = at("2024-03-01T12:00:00Z");
        for (s, l, want) in [
            ("Jun 14 15:16:01", TsLayout::Syslog, "2023-06-14T15:16:01Z"),
            ("Jul  1 09:00:55", TsLayout::Syslog, "2023-07-01T09:00:55Z"),
            ("Feb 29 10:00:00", TsLayout::Syslog, "2024-02-29T10:00:00Z"),
            ("Mar  2 11:00:00", TsLayout::Syslog, "2024-03-02T11:00:00Z"),
            (
                "10.30 16:49:06",
                TsLayout::MonthDotDay,
                "2023-10-30T16:49:06Z",
            ),
            (
                "03-17 16:13:38.811",
                TsLayout::Logcat,
                "2023-03-17T16:13:38.811Z",
            ),
        ] {
            assert_eq!(parse(s, l, reference), Some(at(want)), "{s}");
        }
    }

    #[test]
    fn a_file_crossing_new_year_rolls_over_and_leap_days_find_their_year() {
        let written = at("2025-01-01T00:00:30Z");
        assert_eq!(
            parse("Dec 31 23:59:59", TsLayout::Syslog, written),
            Some(at("2024-12-31T23:59:59Z"))
        );
        assert_eq!(
            parse("Jan  1 00:00:01", TsLayout::Syslog, written),
            Some(at("2025-01-01T00:00:01Z"))
        );
        // 2025 is no leap year: 29 Feb goes back to 2024.
        assert_eq!(
            parse(
                "Feb 29 08:00:00",
                TsLayout::Syslog,
                at("2025-06-01T00:00:00Z")
            ),
            Some(at("2024-02-29T08:00:00Z"))
        );
        assert_eq!(parse("Feb 30 08:00:00", TsLayout::Syslog, written), None);
    }

    #[test]
    fn garbage_is_none() {
        assert_eq!(parse("not a time", TsLayout::Any, 0), None);
        assert_eq!(parse("123", TsLayout::Epoch, 0), None);
    }

    #[test]
    fn created_at_forms() {
        assert_eq!(
            parse_created_at("Wed Aug 27 13:08:45 +0000 2008"),
            Some(at("2008-08-27T13:08:45Z"))
        );
        assert_eq!(
            parse_created_at("2022-11-07T10:00:00.000Z"),
            Some(at("2022-11-07T10:00:00Z"))
        );
    }
}
