//! Event-time arithmetic: base buckets and sliding windows, all aligned to
//! multiples of their length since the Unix epoch, in milliseconds.

use chrono::{DateTime, TimeZone, Utc};

/// Milliseconds since the Unix epoch, the unit every event time is kept in.
pub type Millis = i64;

/// Start of the bucket of length `len` that contains `ts`.
pub fn align_down(ts: Millis, len: Millis) -> Millis {
    ts.div_euclid(len) * len
}

/// Formats epoch milliseconds as RFC 3339 with a `Z` suffix.
pub fn rfc3339(ms: Millis) -> String {
    match Utc.timestamp_millis_opt(ms).single() {
        Some(t) => t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        None => ms.to_string(),
    }
}

/// Parses an RFC 3339 timestamp into epoch milliseconds.
pub fn parse_rfc3339(s: &str) -> Option<Millis> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc).timestamp_millis())
}

/// Wall-clock now in epoch milliseconds.
pub fn now_ms() -> Millis {
    Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_negative_and_positive_times() {
        assert_eq!(align_down(12_345, 10_000), 10_000);
        assert_eq!(align_down(-1, 10_000), -10_000);
        assert_eq!(align_down(20_000, 10_000), 20_000);
    }

    #[test]
    fn rfc3339_round_trips() {
        let s = "2015-05-17T10:05:00Z";
        let ms = parse_rfc3339(s).unwrap();
        assert_eq!(rfc3339(ms), s);
    }
}

/// A sliding window in milliseconds: `[start, start + size)`, starts aligned
/// to multiples of `slide`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// API name (`1m`).
    pub name: String,
    /// Length.
    pub size: Millis,
    /// Slide.
    pub slide: Millis,
}

impl Window {
    /// The most recent window whose end is at or before `watermark`.
    pub fn last_closed(&self, watermark: Millis) -> (Millis, Millis) {
        let end = align_down(watermark, self.slide);
        (end - self.size, end)
    }

    /// The most recent window closed by `watermark` that still holds the
    /// newest event `max_ts`: a source that went quiet keeps showing its last
    /// data instead of ever-newer empty windows.
    pub fn last_closed_holding(
        &self,
        watermark: Millis,
        max_ts: Option<Millis>,
    ) -> (Millis, Millis) {
        let mut end = align_down(watermark, self.slide);
        if let Some(t) = max_ts {
            // The latest window containing `t` ends at the last slide
            // boundary at or before `t + size`.
            end = end.min(align_down(t.saturating_add(self.size), self.slide));
        }
        (end.saturating_sub(self.size), end)
    }

    /// The most recent window containing `at` (the one ending at the first
    /// slide boundary after `at`).
    pub fn containing(&self, at: Millis) -> (Millis, Millis) {
        let end = align_down(at, self.slide) + self.slide;
        (end - self.size, end)
    }
}

#[cfg(test)]
mod window_tests {
    use super::*;

    #[test]
    fn closed_and_containing_windows() {
        let w = Window {
            name: "1m".into(),
            size: 60_000,
            slide: 10_000,
        };
        assert_eq!(w.last_closed(125_000), (60_000, 120_000));
        assert_eq!(w.containing(125_000), (70_000, 130_000));
        assert_eq!(w.containing(120_000), (70_000, 130_000));
        // Watermark far past the newest event: the last window holding it.
        assert_eq!(
            w.last_closed_holding(1_000_000, Some(125_000)),
            (120_000, 180_000)
        );
        assert_eq!(
            w.last_closed_holding(125_000, Some(150_000)),
            (60_000, 120_000)
        );
    }
}
