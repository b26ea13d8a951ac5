//! Event-time bookkeeping of one stream: its highest event time, its
//! watermark (highest time minus the allowed lateness, never moving back),
//! and the idle rule that lets a quiet stream's windows close as wall time
//! passes. Counting itself happens in 10 s base buckets; windows are sums of
//! buckets (BRIEF §6).
//!
//! # The idle rule
//! A stream that has had no record for `idle_timeout` of wall time has its
//! event time *extrapolated* by the wall time elapsed since its last record:
//! `watermark = max_ts + (now − last_record_wall) − lateness`, and never more.
//! A record that then arrives in order (stamped with the writer's clock) is at
//! or after `max_ts + elapsed`, so it is never late, while the windows of a
//! quiet source still close as time passes. This is Flink's
//! `WatermarkStrategy::withIdleness` made precise: Flink marks an idle split
//! idle so that it stops holding back the combined watermark, but its own
//! watermark stays put; here each source has its own watermark (sources never
//! hold each other back), so instead of excluding the idle stream its event
//! time advances with the wall clock. The lateness plays the role of Kafka
//! Streams' grace period: records up to `lateness` behind the newest one are
//! still counted in open windows.
//!
//! A stream whose newest event was already further behind the wall clock than
//! the longest window when it went quiet is replaying history (an archive, a
//! backfill): going idle closes all its windows at once, so a finished
//! archive shows its last windows.
//!
//! Records more than `max_future` ahead of the wall clock move no watermark
//! (they are counted in their bucket and dead-lettered as `future`).

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
    /// How far ahead of the wall clock a record may be and still move a watermark.
    pub max_future: Millis,
    /// Wall time after which an idle stream's state is forgotten.
    pub retention: Millis,
    /// Sliding windows.
    pub windows: Vec<Window>,
}

fn ms(d: std::time::Duration) -> Millis {
    Millis::try_from(d.as_millis()).unwrap_or(Millis::MAX / 4)
}

impl WindowParams {
    /// From the validated config.
    pub fn from_config(c: &WindowsConfig) -> Self {
        WindowParams {
            bucket: ms(c.bucket).max(1),
            lateness: ms(c.lateness),
            idle: ms(c.idle_timeout),
            max_future: ms(c.max_future),
            retention: ms(c.stream_retention),
            windows: c
                .sliding
                .iter()
                .map(|w| Window {
                    name: w.name.clone(),
                    size: ms(w.size),
                    slide: ms(w.slide),
                })
                .collect(),
        }
    }

    /// Start of the base bucket holding `ts`.
    pub fn bucket_of(&self, ts: Millis) -> Millis {
        align_down(ts, self.bucket)
    }

    /// Length of the longest window (at least one bucket).
    pub fn longest(&self) -> Millis {
        self.windows
            .iter()
            .map(|w| w.size)
            .max()
            .unwrap_or(self.bucket)
            .max(self.bucket)
    }

    /// True when a record at `ts` belongs only to windows the watermark has
    /// already closed: the earliest-ending window containing it ends at its
    /// bucket's end.
    pub fn is_late(&self, ts: Millis, watermark: Option<Millis>) -> bool {
        watermark.is_some_and(|wm| self.bucket_of(ts).saturating_add(self.bucket) <= wm)
    }

    /// True when `ts` is too far ahead of the wall clock `now` to be trusted
    /// with a watermark.
    pub fn is_future(&self, ts: Millis, now: Millis) -> bool {
        ts > now.saturating_add(self.max_future)
    }

    /// Watermark after seeing `max_ts`, never below `current`.
    pub fn advance(&self, current: Option<Millis>, max_ts: Millis) -> Millis {
        let wm = max_ts.saturating_sub(self.lateness);
        current.map_or(wm, |c| c.max(wm))
    }

    /// Watermark of a stream idle past the timeout (see the module docs):
    /// its newest event time `max_ts`, read at wall time `last_wall`,
    /// extrapolated to the wall time `now`, less the stream's usual
    /// `arrival_delay` (a feed's polling interval: posts of the last interval
    /// only arrive with the next poll); or, for a stream that was replaying
    /// history, past its newest event by the longest window.
    pub fn idle_watermark(
        &self,
        current: Option<Millis>,
        max_ts: Millis,
        last_wall: Millis,
        now: Millis,
        arrival_delay: Millis,
    ) -> Millis {
        let behind = last_wall.saturating_sub(max_ts);
        let wm = if behind > self.longest().saturating_add(arrival_delay) {
            align_down(max_ts, self.bucket).saturating_add(self.longest())
        } else {
            max_ts
                .saturating_add(now.saturating_sub(last_wall).max(0))
                .saturating_sub(self.lateness)
                .saturating_sub(arrival_delay.max(0))
        };
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
    }

    #[test]
    fn an_idle_live_stream_follows_the_wall_clock_and_no_further() {
        let p = params();
        let t = 1_700_000_000_000; // newest event, read at wall time t + 2 s
        let wm = p.idle_watermark(None, t, t + 2_000, t + 2_000 + 15_000, 0);
        assert_eq!(wm, t + 15_000 - 30_000);
        // The writer's next line, stamped with its clock, is not late.
        assert!(!p.is_late(t + 15_000, Some(wm)));
    }

    #[test]
    fn an_idle_replay_closes_every_window() {
        let p = params();
        let old = 1_100_000_000_000;
        let wm = p.idle_watermark(None, old + 5_000, 1_700_000_000_000, 1_700_000_020_000, 0);
        assert_eq!(wm, old + 3_600_000);
    }

    #[test]
    fn a_polled_feed_waits_one_interval_longer() {
        let p = params();
        let t = 1_700_000_000_000;
        // Polled every 30 s: 40 s after the last poll, the posts of the
        // interval since then are still to come.
        let wm = p.idle_watermark(None, t, t, t + 40_000, 30_000);
        assert_eq!(wm, t + 40_000 - 30_000 - 30_000);
        assert!(!p.is_late(t + 1, Some(wm)));
    }

    #[test]
    fn future_is_relative_to_the_wall_clock() {
        let p = params();
        assert!(!p.is_future(1_000 + 300_000, 1_000));
        assert!(p.is_future(1_000 + 300_001, 1_000));
    }
}
