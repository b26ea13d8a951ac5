//! Timestamp readers for the layouts log formats use. Every reader returns
//! epoch milliseconds in UTC; layouts without a zone are read as UTC.
//!
//! Layouts that leave something out take it from a *reference* time: the
//! modification time of the file the line was read from (a file's lines were
//! all written before its mtime), never the time Farol runs, so re-processing
//! the same file a year later dates it the same.
//! - Without a year (syslog, logcat, glog, Proxifier, old Redis): the latest
//!   year that puts the time at most a day after the reference. A file
//!   crossing 31 Dec → 1 Jan rolls its year over line by line.
//! - Without a date (`HH:mm:ss.SSS` of logback's and log4j2's defaults,
//!   Serilog's console): by the same rule, counted from the reference's own
//!   date backwards, which makes it the reference's (UTC) date.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use farol_common::time::Millis;

const DAY_MS: i64 = 86_400_000;

/// A timestamp layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TsLayout {
    /// ISO 8601 / RFC 3339 and their log spellings: `T` or space, `.` or `,`
    /// before the fraction, zone `Z`, `+01:00`, `+0100`, `+01`, attached or
    /// after a space, or an abbreviation (`UTC`, `CET`, `PST`…), or none.
    Iso,
    /// `17/May/2015:10:05:03 +0000` (access logs).
    Clf,
    /// `06/Feb/2009:12:14:14.655` or `05/Mar/2024 10:12:01` (HAProxy,
    /// Django's development server): CLF without a zone.
    ClfNoZone,
    /// `Sun Dec 04 04:47:44 2005` (Apache error log, ctime).
    Ctime,
    /// `Jun 14 15:16:01` (syslog, no year).
    Syslog,
    /// `17/06/09 20:10:40` (yy/MM/dd, Spark).
    YyMmDdSlash,
    /// `081109 203615` (yyMMdd HHmmss, HDFS).
    YyMmDdCompact,
    /// `240305 10:12:01` or `240305  9:12:01` (yyMMdd H:mm:ss, MySQL 5.x).
    YyMmDdTime,
    /// `2024/03/05 10:12:01` (nginx error log, Go's `log`).
    Slash,
    /// `05 Mar 2024 10:12:01.123` (Redis, log4j `%d{DATE}`); also read
    /// without the year (Redis 2.x).
    DayMonYear,
    /// `5-Mar-2024::10:12:01` (RabbitMQ before 3.8).
    DayMonYearColons,
    /// `05-Mar-2024 10:12:01.123` (Tomcat's `OneLineFormatter`).
    DayMonYearDash,
    /// `Mar 05, 2024 10:12:01 AM` (java.util.logging's `SimpleFormatter`).
    MonDayYearAmPm,
    /// `0305 16:20:31.461583` (glog/klog: MMdd, no year).
    Klog,
    /// `10:12:01.123` (a time of day only).
    TimeOnly,
    /// `20171223-22:15:29:606` (HealthApp).
    HealthApp,
    /// `10.30 16:49:06` (MM.dd, no year, Proxifier).
    MonthDotDay,
    /// `03-17 16:13:38.811` (logcat, no year); also with `-v year`
    /// (`2024-03-17 …`), `-v zone` (` +0100` after) and `-v epoch`.
    Logcat,
    /// Seconds, milliseconds, microseconds or nanoseconds since the epoch,
    /// integer or fractional (`1709633521.123`, `1.709633521123e+09`).
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
        TsLayout::Clf => fast::clf(s, true),
        TsLayout::ClfNoZone => fast::clf(s, false),
        TsLayout::Ctime => fast::ctime(s),
        TsLayout::Syslog => fast::syslog(s, year_ref),
        TsLayout::YyMmDdSlash => fast::yy_mm_dd_slash(s),
        TsLayout::YyMmDdCompact => fast::yy_mm_dd_compact(s),
        TsLayout::YyMmDdTime => {
            let norm = s.split_whitespace().collect::<Vec<_>>().join(" ");
            naive(&norm, "%y%m%d %H:%M:%S%.f")
        }
        TsLayout::Slash => fast::slash(s),
        TsLayout::DayMonYear => {
            let norm = s.replace(',', ".");
            naive(&norm, "%d %b %Y %H:%M:%S%.f")
                .or_else(|| without_year(&norm, "%d %b %H:%M:%S%.f", year_ref))
        }
        TsLayout::DayMonYearColons => naive(s, "%d-%b-%Y::%H:%M:%S%.f"),
        TsLayout::DayMonYearDash => naive(s, "%d-%b-%Y %H:%M:%S%.f"),
        TsLayout::MonDayYearAmPm => naive(s, "%b %d, %Y %I:%M:%S %p"),
        TsLayout::Klog => fast::klog(s, year_ref),
        TsLayout::TimeOnly => time_only(s, year_ref),
        TsLayout::HealthApp => health_app(s),
        TsLayout::MonthDotDay => fast::month_dot_day(s, year_ref),
        TsLayout::Logcat => logcat(s, year_ref),
        TsLayout::Epoch => epoch(s),
        TsLayout::Bgl => naive(s, "%Y-%m-%d-%H.%M.%S%.f"),
        TsLayout::Any => [
            TsLayout::Iso,
            TsLayout::Clf,
            TsLayout::ClfNoZone,
            TsLayout::Ctime,
            TsLayout::Syslog,
            TsLayout::Slash,
            TsLayout::DayMonYear,
            TsLayout::DayMonYearDash,
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
    let s = s.trim();
    DateTime::parse_from_str(s, fmt)
        .ok()
        .map(|t| t.timestamp_millis())
        .or_else(|| naive(s, fmt))
        .or_else(|| without_year(s, fmt, year_ref))
        .or_else(|| {
            NaiveTime::parse_from_str(s, fmt)
                .ok()
                .and_then(|t| on_reference_date(t, year_ref))
        })
}

fn naive(s: &str, fmt: &str) -> Option<Millis> {
    NaiveDateTime::parse_from_str(s, fmt)
        .ok()
        .map(|t| Utc.from_utc_datetime(&t).timestamp_millis())
}

/// Reads `n` ASCII digits at `at` as a number.
fn digits(b: &[u8], at: usize, n: usize) -> Option<u32> {
    let part = b.get(at..at.checked_add(n)?)?;
    let mut v = 0u32;
    for &c in part {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(c - b'0');
    }
    Some(v)
}

/// Zone abbreviations PostgreSQL and other programs print, with their
/// offset east of UTC in minutes (the common reading where one is ambiguous:
/// `CST` is US Central, `IST` India, `AST` Atlantic).
pub const ZONE_ABBREVIATIONS: &[(&str, i32)] = &[
    ("UTC", 0),
    ("GMT", 0),
    ("UT", 0),
    ("WET", 0),
    ("BST", 60),
    ("CET", 60),
    ("MET", 60),
    ("WEST", 60),
    ("WAT", 60),
    ("CEST", 120),
    ("MEST", 120),
    ("EET", 120),
    ("SAST", 120),
    ("CAT", 120),
    ("EEST", 180),
    ("MSK", 180),
    ("EAT", 180),
    ("TRT", 180),
    ("GST", 240),
    ("PKT", 300),
    ("IST", 330),
    ("ICT", 420),
    ("WIB", 420),
    ("SGT", 480),
    ("HKT", 480),
    ("AWST", 480),
    ("PHT", 480),
    ("JST", 540),
    ("KST", 540),
    ("ACST", 570),
    ("AEST", 600),
    ("ACDT", 630),
    ("AEDT", 660),
    ("NZST", 720),
    ("NZDT", 780),
    ("NST", -210),
    ("NDT", -150),
    ("ADT", -180),
    ("AST", -240),
    ("EDT", -240),
    ("EST", -300),
    ("CDT", -300),
    ("CST", -360),
    ("MDT", -360),
    ("MST", -420),
    ("PDT", -420),
    ("PST", -480),
    ("AKDT", -480),
    ("AKST", -540),
    ("HST", -600),
];

/// Offset east of UTC, in minutes, of a zone abbreviation.
pub fn zone_abbreviation(z: &str) -> Option<i32> {
    ZONE_ABBREVIATIONS
        .iter()
        .find(|(name, _)| *name == z)
        .map(|(_, m)| *m)
}

/// Reads a zone: `Z`, `+01:00`, `+0100`, `+01`, or an abbreviation.
/// Returns the offset in minutes east of UTC.
fn zone(z: &str) -> Option<i32> {
    let b = z.as_bytes();
    match b.first()? {
        b'Z' | b'z' if b.len() == 1 => Some(0),
        sign @ (b'+' | b'-') => {
            let h = digits(b, 1, 2)?;
            let m = match b.len() {
                3 => 0,
                5 => digits(b, 3, 2)?,
                6 if b[3] == b':' => digits(b, 4, 2)?,
                _ => return None,
            };
            if h > 18 || m > 59 {
                return None;
            }
            let total = i32::try_from(h * 60 + m).ok()?;
            Some(if *sign == b'-' { -total } else { total })
        }
        _ => zone_abbreviation(z),
    }
}

/// ISO 8601 in its log spellings (see [`TsLayout::Iso`]), read by hand: it
/// is on the hot path of most formats.
fn iso(s: &str) -> Option<Millis> {
    let b = s.as_bytes();
    let year = digits(b, 0, 4)?;
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    let month = digits(b, 5, 2)?;
    let day = digits(b, 8, 2)?;
    if !matches!(b.get(10), Some(b'T' | b't' | b' ')) || b.get(13) != Some(&b':') {
        return None;
    }
    let hour = digits(b, 11, 2)?;
    let min = digits(b, 14, 2)?;
    let mut i = 16;
    let mut sec = 0;
    if b.get(i) == Some(&b':') {
        sec = digits(b, i + 1, 2)?;
        i += 3;
    }
    let mut nanos = 0u32;
    if matches!(b.get(i), Some(b'.' | b',')) {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 9 {
                nanos = nanos * 10 + u32::from(b[i] - b'0');
            }
            i += 1;
        }
        let n = i - start;
        if n == 0 {
            return None;
        }
        for _ in n..9 {
            nanos *= 10;
        }
    }
    let rest = s.get(i..)?;
    let rest = rest.strip_prefix(' ').unwrap_or(rest);
    let offset_min = if rest.is_empty() { 0 } else { zone(rest)? };
    let date = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)?;
    let t = date.and_hms_nano_opt(hour, min, sec, nanos)?;
    Utc.from_utc_datetime(&t)
        .timestamp_millis()
        .checked_sub(i64::from(offset_min) * 60_000)
}

fn logcat(s: &str, year_ref: Millis) -> Option<Millis> {
    let b = s.as_bytes();
    if b.get(4) == Some(&b'-') {
        return iso(s);
    }
    if b.get(2) != Some(&b'-') {
        return epoch(s);
    }
    fast::logcat(s, year_ref)
}

fn health_app(s: &str) -> Option<Millis> {
    // yyyyMMdd-H:m:s:SSS with unpadded fields.
    let (date, time) = s.split_once('-')?;
    let b = date.as_bytes();
    if b.len() != 8 {
        return None;
    }
    let (y, mo, d) = (digits(b, 0, 4)?, digits(b, 4, 2)?, digits(b, 6, 2)?);
    let mut parts = time.split(':').map(|p| {
        (!p.is_empty() && p.len() <= 3 && p.bytes().all(|c| c.is_ascii_digit()))
            .then(|| p.parse::<u32>().ok())
            .flatten()
    });
    let (h, m, sec) = (parts.next()??, parts.next()??, parts.next()??);
    let ms = parts.next().flatten().unwrap_or(0);
    let t = NaiveDate::from_ymd_opt(i32::try_from(y).ok()?, mo, d)?.and_hms_milli_opt(
        h,
        m,
        sec,
        ms.min(999),
    )?;
    Some(Utc.from_utc_datetime(&t).timestamp_millis())
}

/// Epoch time in any unit, told apart by magnitude (seconds until the year
/// 5138, then milliseconds, microseconds, nanoseconds). At least nine digits
/// before any fraction, so that small numbers are never taken for times.
fn epoch(s: &str) -> Option<Millis> {
    let b = s.as_bytes();
    if b.is_empty() || !b[0].is_ascii_digit() {
        return None;
    }
    let int_len = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if int_len == b.len() {
        if !(9..=19).contains(&int_len) {
            return None;
        }
        let n: i64 = s.parse().ok()?;
        return if n < 100_000_000_000 {
            n.checked_mul(1000)
        } else if n < 100_000_000_000_000 {
            Some(n)
        } else if n < 100_000_000_000_000_000 {
            Some(n / 1000)
        } else {
            Some(n / 1_000_000)
        };
    }
    // Fractional: `1709633521.123456` or `1.709633521123e+09`.
    let exp = b.iter().any(|c| matches!(c, b'e' | b'E'));
    if !exp && int_len < 9 {
        return None;
    }
    if !b
        .iter()
        .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return None;
    }
    let f: f64 = s.parse().ok()?;
    epoch_f64(f)
}

/// Epoch time given as a JSON number, in any unit (see [`epoch`]).
pub fn epoch_f64(f: f64) -> Option<Millis> {
    if !f.is_finite() || f < 1e8 {
        return None;
    }
    let ms = if f < 1e11 {
        f * 1e3
    } else if f < 1e14 {
        f
    } else if f < 1e17 {
        f / 1e3
    } else {
        f / 1e6
    };
    // Round to the millisecond at or below, guarding against float noise
    // (`1709633521.123` is 1709633521122.9999…).
    let ms = (ms + 1e-4).floor();
    (ms < 9.0e15).then_some(ms as i64)
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
        if ms <= year_ref.saturating_add(DAY_MS) {
            return Some(ms);
        }
    }
    None
}

/// A time of day dated by the reference: the latest date, counting back from
/// the reference's own, that puts it at most a day after the reference —
/// which is the reference's UTC date.
fn time_only(s: &str, year_ref: Millis) -> Option<Millis> {
    let norm = s.replace(',', ".");
    let t = NaiveTime::parse_from_str(&norm, "%H:%M:%S%.f").ok()?;
    on_reference_date(t, year_ref)
}

fn on_reference_date(t: NaiveTime, year_ref: Millis) -> Option<Millis> {
    let reference = Utc.timestamp_millis_opt(year_ref).single()?;
    let mut date = reference.date_naive();
    for _ in 0..2 {
        let ms = Utc.from_utc_datetime(&date.and_time(t)).timestamp_millis();
        if ms <= year_ref.saturating_add(DAY_MS) {
            return Some(ms);
        }
        date = date.pred_opt()?;
    }
    None
}

/// Hand-written readers for the layouts on the hot path of the common
/// formats (chrono's format-string parser, and the year search through it,
/// cost more than the rest of a line's parsing).
mod fast {
    use super::{zone, DAY_MS};
    use chrono::{Datelike, NaiveDate, TimeZone, Utc};
    use farol_common::time::Millis;

    struct Cur<'a> {
        b: &'a [u8],
        i: usize,
    }

    impl<'a> Cur<'a> {
        fn new(s: &'a str) -> Self {
            Cur {
                b: s.as_bytes(),
                i: 0,
            }
        }

        /// `min..=max` digits.
        fn num(&mut self, min: usize, max: usize) -> Option<u32> {
            let start = self.i;
            let mut v = 0u32;
            while self.i < self.b.len() && self.i - start < max && self.b[self.i].is_ascii_digit() {
                v = v * 10 + u32::from(self.b[self.i] - b'0');
                self.i += 1;
            }
            (self.i - start >= min).then_some(v)
        }

        fn lit(&mut self, c: u8) -> Option<()> {
            (self.b.get(self.i) == Some(&c)).then(|| self.i += 1)
        }

        fn spaces(&mut self) -> usize {
            let start = self.i;
            while self.b.get(self.i) == Some(&b' ') {
                self.i += 1;
            }
            self.i - start
        }

        fn month(&mut self) -> Option<u32> {
            let m = self.b.get(self.i..self.i + 3)?;
            let mut l = [0u8; 3];
            l.copy_from_slice(m);
            l.make_ascii_lowercase();
            let n = match &l {
                b"jan" => 1,
                b"feb" => 2,
                b"mar" => 3,
                b"apr" => 4,
                b"may" => 5,
                b"jun" => 6,
                b"jul" => 7,
                b"aug" => 8,
                b"sep" => 9,
                b"oct" => 10,
                b"nov" => 11,
                b"dec" => 12,
                _ => return None,
            };
            self.i += 3;
            Some(n)
        }

        /// `HH:MM:SS` and an optional `.fff`/`,fff` fraction, as nanoseconds.
        fn time(&mut self) -> Option<(u32, u32, u32, u32)> {
            let h = self.num(2, 2)?;
            self.lit(b':')?;
            let m = self.num(2, 2)?;
            self.lit(b':')?;
            let s = self.num(2, 2)?;
            Some((h, m, s, self.frac()?))
        }

        fn frac(&mut self) -> Option<u32> {
            if !matches!(self.b.get(self.i), Some(b'.' | b',')) {
                return Some(0);
            }
            self.i += 1;
            let start = self.i;
            let mut nanos = 0u32;
            while self.i < self.b.len() && self.b[self.i].is_ascii_digit() {
                if self.i - start < 9 {
                    nanos = nanos * 10 + u32::from(self.b[self.i] - b'0');
                }
                self.i += 1;
            }
            let n = self.i - start;
            if n == 0 {
                return None;
            }
            for _ in n..9 {
                nanos *= 10;
            }
            Some(nanos)
        }

        fn rest(&self) -> &'a [u8] {
            &self.b[self.i.min(self.b.len())..]
        }

        fn end(&self) -> Option<()> {
            (self.i >= self.b.len()).then_some(())
        }
    }

    fn make(y: i32, mo: u32, d: u32, (h, mi, s, ns): (u32, u32, u32, u32)) -> Option<Millis> {
        let t = NaiveDate::from_ymd_opt(y, mo, d)?.and_hms_nano_opt(h, mi, s, ns)?;
        Some(Utc.from_utc_datetime(&t).timestamp_millis())
    }

    /// The latest year (at most eight back) that puts the time at most a
    /// day after the reference (see [`super::without_year`]).
    fn yearless(mo: u32, d: u32, t: (u32, u32, u32, u32), year_ref: Millis) -> Option<Millis> {
        let ref_year = Utc.timestamp_millis_opt(year_ref).single()?.year();
        let limit = year_ref.saturating_add(DAY_MS);
        (0..=8)
            .filter_map(|back| make(ref_year.checked_sub(back)?, mo, d, t))
            .find(|ms| *ms <= limit)
    }

    /// Applies an optional ` ±hhmm` zone left in the cursor.
    fn with_zone(c: &mut Cur<'_>, ms: Millis, required: bool) -> Option<Millis> {
        if c.spaces() == 0 {
            c.end()?;
            return (!required).then_some(ms);
        }
        let z = std::str::from_utf8(c.rest()).ok()?;
        let off = zone(z)?;
        ms.checked_sub(i64::from(off) * 60_000)
    }

    /// `17/May/2015:10:05:03 +0200` (CLF), `06/Feb/2009:12:14:14.655`
    /// (HAProxy), `05/Mar/2024 10:12:01` (Python's http.server).
    pub fn clf(s: &str, zone_allowed: bool) -> Option<Millis> {
        let mut c = Cur::new(s);
        let d = c.num(1, 2)?;
        c.lit(b'/')?;
        let mo = c.month()?;
        c.lit(b'/')?;
        let y = c.num(4, 4)?;
        if c.lit(b':').is_none() {
            c.lit(b' ')?;
        }
        let ms = make(i32::try_from(y).ok()?, mo, d, c.time()?)?;
        if zone_allowed {
            with_zone(&mut c, ms, false)
        } else {
            c.end().map(|()| ms)
        }
    }

    /// `Sun Dec 04 04:47:44 2005`, `Tue Mar 05 10:12:01.123456 2024`.
    pub fn ctime(s: &str) -> Option<Millis> {
        let mut c = Cur::new(s);
        c.i = 3;
        if c.spaces() == 0 {
            return None;
        }
        let mo = c.month()?;
        c.spaces();
        let d = c.num(1, 2)?;
        c.spaces();
        let t = c.time()?;
        if c.spaces() == 0 {
            return None;
        }
        let y = c.num(4, 4)?;
        c.end()?;
        make(i32::try_from(y).ok()?, mo, d, t)
    }

    /// `Jun 14 15:16:01`, `Jul  1 09:00:55`, `Mar 05 10:12:07.123456`.
    pub fn syslog(s: &str, year_ref: Millis) -> Option<Millis> {
        let mut c = Cur::new(s);
        let mo = c.month()?;
        if c.spaces() == 0 {
            return None;
        }
        let d = c.num(1, 2)?;
        if c.spaces() == 0 {
            return None;
        }
        let t = c.time()?;
        c.end()?;
        yearless(mo, d, t, year_ref)
    }

    /// `17/06/09 20:10:40` (yy/MM/dd; years 69–99 are the 1900s, as
    /// strftime's `%y`).
    pub fn yy_mm_dd_slash(s: &str) -> Option<Millis> {
        let mut c = Cur::new(s);
        let yy = c.num(2, 2)?;
        c.lit(b'/')?;
        let mo = c.num(2, 2)?;
        c.lit(b'/')?;
        let d = c.num(2, 2)?;
        c.lit(b' ')?;
        let t = c.time()?;
        c.end()?;
        make(century(yy), mo, d, t)
    }

    fn century(yy: u32) -> i32 {
        // yy < 100 by construction.
        let yy = i32::try_from(yy).unwrap_or(0);
        if yy < 69 {
            2000 + yy
        } else {
            1900 + yy
        }
    }

    /// `081109 203615` (yyMMdd HHmmss).
    pub fn yy_mm_dd_compact(s: &str) -> Option<Millis> {
        let mut c = Cur::new(s);
        let yy = c.num(2, 2)?;
        let mo = c.num(2, 2)?;
        let d = c.num(2, 2)?;
        c.lit(b' ')?;
        let h = c.num(2, 2)?;
        let mi = c.num(2, 2)?;
        let sec = c.num(2, 2)?;
        c.end()?;
        make(century(yy), mo, d, (h, mi, sec, 0))
    }

    /// `2024/03/05 10:12:01`, with an optional fraction.
    pub fn slash(s: &str) -> Option<Millis> {
        let mut c = Cur::new(s);
        let y = c.num(4, 4)?;
        c.lit(b'/')?;
        let mo = c.num(2, 2)?;
        c.lit(b'/')?;
        let d = c.num(2, 2)?;
        c.lit(b' ')?;
        let t = c.time()?;
        c.end()?;
        make(i32::try_from(y).ok()?, mo, d, t)
    }

    /// Hour, minute, second and millisecond, as `Cur::time` reads them.
    type Hms = (u32, u32, u32, u32);

    /// Month, day (joined by `sep`, if any), a space and a time of day.
    fn month_day_time(c: &mut Cur<'_>, sep: Option<u8>) -> Option<(u32, u32, Hms)> {
        let mo = c.num(2, 2)?;
        if let Some(b) = sep {
            c.lit(b)?;
        }
        let d = c.num(2, 2)?;
        c.lit(b' ')?;
        Some((mo, d, c.time()?))
    }

    /// `0305 16:20:31.461583` (klog's MMdd, no year).
    pub fn klog(s: &str, year_ref: Millis) -> Option<Millis> {
        let mut c = Cur::new(s);
        let (mo, d, t) = month_day_time(&mut c, None)?;
        c.end()?;
        yearless(mo, d, t, year_ref)
    }

    /// `10.30 16:49:06` (MM.dd, no year).
    pub fn month_dot_day(s: &str, year_ref: Millis) -> Option<Millis> {
        let mut c = Cur::new(s);
        let (mo, d, t) = month_day_time(&mut c, Some(b'.'))?;
        c.end()?;
        yearless(mo, d, t, year_ref)
    }

    /// `03-17 16:13:38.811`, optionally followed by ` +0100` (no year).
    pub fn logcat(s: &str, year_ref: Millis) -> Option<Millis> {
        let mut c = Cur::new(s);
        let (mo, d, t) = month_day_time(&mut c, Some(b'-'))?;
        let ms = yearless(mo, d, t, year_ref)?;
        with_zone(&mut c, ms, false)
    }
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
                "06/Feb/2009:12:14:14.655",
                TsLayout::ClfNoZone,
                "2009-02-06T12:14:14.655Z",
            ),
            (
                "05/Mar/2024 10:12:01",
                TsLayout::ClfNoZone,
                "2024-03-05T10:12:01Z",
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
                "240305  9:12:01",
                TsLayout::YyMmDdTime,
                "2024-03-05T09:12:01Z",
            ),
            (
                "2024/03/05 10:12:01",
                TsLayout::Slash,
                "2024-03-05T10:12:01Z",
            ),
            (
                "05 Mar 2024 10:12:01.123",
                TsLayout::DayMonYear,
                "2024-03-05T10:12:01.123Z",
            ),
            (
                "5-Mar-2024::10:12:01",
                TsLayout::DayMonYearColons,
                "2024-03-05T10:12:01Z",
            ),
            (
                "05-Mar-2024 10:12:01.123",
                TsLayout::DayMonYearDash,
                "2024-03-05T10:12:01.123Z",
            ),
            (
                "Mar 05, 2024 1:12:01 PM",
                TsLayout::MonDayYearAmPm,
                "2024-03-05T13:12:01Z",
            ),
            (
                "2024-03-05 10:12:01.123",
                TsLayout::Logcat,
                "2024-03-05T10:12:01.123Z",
            ),
            (
                "1709633521.123",
                TsLayout::Logcat,
                "2024-03-05T10:12:01.123Z",
            ),
            (
                "05/Mar/2024:10:12:01",
                TsLayout::Clf,
                "2024-03-05T10:12:01Z",
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
    fn iso_spellings() {
        for (s, want) in [
            ("2024-03-05T10:12:01Z", "2024-03-05T10:12:01Z"),
            ("2024-03-05T10:12:01.123456789Z", "2024-03-05T10:12:01.123Z"),
            ("2024-03-05 10:12:01.123 UTC", "2024-03-05T10:12:01.123Z"),
            ("2024-03-05 10:12:01 CET", "2024-03-05T09:12:01Z"),
            ("2024-03-05 10:12:01.5 PST", "2024-03-05T18:12:01.5Z"),
            ("2024-03-05 10:12:01 +0100", "2024-03-05T09:12:01Z"),
            ("2024-03-05 10:12:01.123 +01:00", "2024-03-05T09:12:01.123Z"),
            ("2024-03-05T10:12:01.123+0530", "2024-03-05T04:42:01.123Z"),
            ("2024-03-05 10:12:01.123 -03", "2024-03-05T13:12:01.123Z"),
            ("2024-03-05T10:12:01,123Z", "2024-03-05T10:12:01.123Z"),
            ("2024-03-05T10:12", "2024-03-05T10:12:00Z"),
        ] {
            assert_eq!(parse(s, TsLayout::Iso, 0), Some(at(want)), "{s}");
        }
        for s in [
            "2024-13-05 10:12:01",
            "2024-03-05 10:12:01 INFO",
            "2024-03-05 25:12:01",
            "2024-03-05 10:12:01.",
            "2024-03-05 10:12:01 +2500",
        ] {
            assert_eq!(parse(s, TsLayout::Iso, 0), None, "{s}");
        }
    }

    #[test]
    fn epochs_in_every_unit() {
        for (s, want) in [
            ("1709633521", "2024-03-05T10:12:01Z"),
            ("1709633521123", "2024-03-05T10:12:01.123Z"),
            ("1709633521123456", "2024-03-05T10:12:01.123Z"),
            ("1709633521123456789", "2024-03-05T10:12:01.123Z"),
            ("1709633521.123", "2024-03-05T10:12:01.123Z"),
            ("1709633521.5241024", "2024-03-05T10:12:01.524Z"),
            ("1.709633521123e+09", "2024-03-05T10:12:01.123Z"),
        ] {
            assert_eq!(parse(s, TsLayout::Epoch, 0), Some(at(want)), "{s}");
        }
        for s in ["123", "12.5", "1709633521x", "-1709633521"] {
            assert_eq!(parse(s, TsLayout::Epoch, 0), None, "{s}");
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
            (
                "03-17 16:13:38.811 +0100",
                TsLayout::Logcat,
                "2023-03-17T15:13:38.811Z",
            ),
            (
                "0229 16:20:31.461583",
                TsLayout::Klog,
                "2024-02-29T16:20:31.461Z",
            ),
            (
                "14 Nov 07:01:22.119",
                TsLayout::DayMonYear,
                "2023-11-14T07:01:22.119Z",
            ),
        ] {
            assert_eq!(parse(s, l, reference), Some(at(want)), "{s}");
        }
    }

    #[test]
    fn time_of_day_takes_the_reference_date() {
        let reference = at("2024-03-05T15:30:00Z");
        for (s, want) in [
            ("10:12:01.123", "2024-03-05T10:12:01.123Z"),
            ("15:30:00", "2024-03-05T15:30:00Z"),
            ("23:59:59,999", "2024-03-05T23:59:59.999Z"),
            ("00:00:00", "2024-03-05T00:00:00Z"),
        ] {
            assert_eq!(parse(s, TsLayout::TimeOnly, reference), Some(at(want)));
        }
        assert_eq!(parse("25:00:00", TsLayout::TimeOnly, reference), None);
        assert_eq!(
            parse_with("10:12", "%H:%M", reference),
            Some(at("2024-03-05T10:12:00Z"))
        );
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
