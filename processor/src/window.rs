//! Event-time bookkeeping of one stream: its highest event time, its
//! watermark (highest time minus the allowed lateness, never moving back),
//! and the idle rule that closes a quiet stream's windows. Counting itself
//! happens in 10 s base buckets; windows are sums of buckets (BRIEF §6).

use farol_common::config::WindowsConfig;
use farol_common::time::{align_down, Millis, Window};

/// Window parameters in milliseconds.
#[derive(Debug, Clone)]
pub struct WindowParams {
    /// Base bucket length.
    pub bucket: Millis,
    /// Allowed lateness.
    pub lateness: Millis,
    /// Idle timeout (wall clock).
    pub idle: Millis,
    /// Sliding windows.
    pub windows: Vec<Window>,
}

impl WindowParams {
    /// From the validated config.
    pub fn from_config(c: &WindowsConfig) -> Self {
        WindowParams {
            bucket: c.bucket.as_millis() as Millis,
            lateness: c.lateness.as_millis() as Millis,
            idle: c.idle_timeout.as_millis() as Millis,
            windows: c
                .sliding
                .iter()
                .map(|w| Window {
                    name: w.name.clone(),
                    size: w.size.as_millis() as Millis,
                    slide: w.slide.as_millis() as Millis,
                })
                .collect(),
        }
    }

    /// Start of the base bucket holding `ts`.
    pub fn bucket_of(&self, ts: Millis) -> Millis {
        align_down(ts, self.bucket)
    }

    /// True when a record at `ts` belongs only to windows the watermark has
    /// already closed: the earliest-ending window containing it ends at its
    /// bucket's end.
    pub fn is_late(&self, ts: Millis, watermark: Option<Millis>) -> bool {
        watermark.is_some_and(|wm| self.bucket_of(ts) + self.bucket <= wm)
    }

    /// Watermark after seeing `max_ts`, never below `current`.
    pub fn advance(&self, current: Option<Millis>, max_ts: Millis) -> Millis {
        let wm = max_ts - self.lateness;
        current.map_or(wm, |c| c.max(wm))
    }

    /// Watermark of a stream idle past the timeout: beyond its highest event
    /// time by the longest window, so every window holding its data closes.
    pub fn idle_watermark(&self, current: Option<Millis>, max_ts: Millis) -> Millis {
        let longest = self
            .windows
            .iter()
            .map(|w| w.size)
            .max()
            .unwrap_or(self.bucket);
        let wm = align_down(max_ts, self.bucket) + longest;
        current.map_or(wm, |c| c.max(wm))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> WindowParams {
        WindowParams::from_config(&WindowsConfig::default())
    }

    #[test]
    fn lateness_is_judged_by_bucket_end() {
        let p = params();
        let wm = p.advance(None, 100_000); // 70_000
        assert_eq!(wm, 70_000);
        assert!(p.is_late(69_999, Some(wm)));
        assert!(!p.is_late(70_000, Some(wm)));
        assert!(!p.is_late(1, None));
    }

    #[test]
    fn watermark_never_moves_back() {
        let p = params();
        assert_eq!(p.advance(Some(90_000), 100_000), 90_000);
        assert_eq!(p.idle_watermark(None, 105_000), 100_000 + 3_600_000);
    }
}
