//! Timestamp readers for the layouts log formats use. Every reader returns
//! epoch milliseconds in UTC; layouts without a year take the year that puts
//! the time closest before "now" (as syslog readers conventionally do), and
//! layouts without a zone are read as UTC.

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
pub fn parse(s: &str, layout: TsLayout) -> Option<Millis> {
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
            without_year(&norm, "%b %d %H:%M:%S%.f")
        }
        TsLayout::YyMmDdSlash => naive(s, "%y/%m/%d %H:%M:%S%.f"),
        TsLayout::YyMmDdCompact => naive(s, "%y%m%d %H%M%S"),
        TsLayout::HealthApp => health_app(s),
        TsLayout::MonthDotDay => without_year(s, "%m.%d %H:%M:%S"),
        TsLayout::Logcat => without_year(s, "%m-%d %H:%M:%S%.f"),
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
        .find_map(|l| parse(s, l)),
    }
}

/// Reads `s` with a chrono format string (zone optional).
pub fn parse_with(s: &str, fmt: &str) -> Option<Millis> {
    DateTime::parse_from_str(s.trim(), fmt)
        .ok()
        .map(|t| t.timestamp_millis())
        .or_else(|| naive(s.trim(), fmt))
        .or_else(|| without_year(s.trim(), fmt))
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

/// Reads a layout without a year: the year is the one that puts the time
/// at most a day after now (so December lines read in January land last year).
fn without_year(s: &str, fmt: &str) -> Option<Millis> {
    let now = Utc::now();
    for year in [now.year(), now.year() - 1] {
        let with_year = format!("{year} {s}");
        if let Ok(t) = NaiveDateTime::parse_from_str(&with_year, &format!("%Y {fmt}")) {
            let ms = Utc.from_utc_datetime(&t).timestamp_millis();
            if ms <= now.timestamp_millis() + 86_400_000 {
                return Some(ms);
            }
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
            assert_eq!(parse(s, l), Some(at(want)), "{s}");
        }
    }

    #[test]
    fn yearless_layouts_land_in_the_past_year() {
        let now = farol_common::time::now_ms();
        for (s, l) in [
            ("Jun 14 15:16:01", TsLayout::Syslog),
            ("Jul  1 09:00:55", TsLayout::Syslog),
            ("10.30 16:49:06", TsLayout::MonthDotDay),
            ("03-17 16:13:38.811", TsLayout::Logcat),
        ] {
            let t = parse(s, l).unwrap_or_else(|| panic!("{s}"));
            assert!(t <= now + 86_400_000 && t > now - 367 * 86_400_000, "{s}");
        }
    }

    #[test]
    fn garbage_is_none() {
        assert_eq!(parse("not a time", TsLayout::Any), None);
        assert_eq!(parse("123", TsLayout::Epoch), None);
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
