//! The trend score: how unusual a key's count in a span is against the same
//! key's own recent baseline, so that `/trends?sort=score` ranks what is
//! bursting now above what is always frequent.
//!
//! Method: a Poisson burst score in the spirit of Kleinberg, "Bursty and
//! Hierarchical Structure in Streams" (KDD 2002) and of the per-term
//! Poisson/z-score trend detectors used for Twitter (e.g. Mathioudakis &
//! Koudas, "TwitterMonitor: trend detection over the Twitter stream",
//! SIGMOD 2010; Becker, Naaman & Gravano, ICWSM 2011). A key's counts per
//! span are modelled as Poisson with the rate of its own baseline: the
//! previous `N` spans of the same length, immediately before the scored one.
//! The expected count is the baseline mean, smoothed with one pseudo-span
//! holding `smoothing` counts (a Gamma prior), so that a key never seen
//! before has a small positive rate instead of zero:
//!
//! ```text
//! expected = (sum of the key's counts in the N previous spans + smoothing) / (N + 1)
//! score    = (count - expected) / sqrt(expected)
//! ```
//!
//! That is the Poisson z-score: 0 when the key is as frequent as usual,
//! positive when it is above its usual rate, negative when below. Keys
//! whose count in the span is below `min_count` are not scored (score 0),
//! because a handful of mentions of a new key would otherwise outrank real
//! bursts. The same formula serves windows (`window=`, `at=`) and ranges
//! (`from`/`to`): a range is scored against the `N` preceding ranges of the
//! same length.

use farol_common::time::Millis;

/// Scoring settings (`[trends]` in the configuration).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scoring {
    /// How many previous spans of the same length form the baseline.
    pub baseline_windows: u32,
    /// Keys counted fewer times than this in the span get score 0.
    pub min_count: u64,
    /// Counts of the pseudo-span added to the baseline (must be > 0).
    pub smoothing: f64,
}

impl Default for Scoring {
    fn default() -> Self {
        Scoring {
            baseline_windows: DEFAULT_BASELINE_WINDOWS,
            min_count: DEFAULT_MIN_COUNT,
            smoothing: DEFAULT_SMOOTHING,
        }
    }
}

/// Default of [`Scoring::baseline_windows`].
pub const DEFAULT_BASELINE_WINDOWS: u32 = 6;
/// Default of [`Scoring::min_count`].
pub const DEFAULT_MIN_COUNT: u64 = 5;
/// Default of [`Scoring::smoothing`].
pub const DEFAULT_SMOOTHING: f64 = 1.0;

impl Scoring {
    /// The baseline span of `[from, to)`: the `N` spans of the same length
    /// right before it, as one span `[from - N·len, from)`. Saturates at
    /// the ends of the time line.
    pub fn baseline_span(&self, (from, to): (Millis, Millis)) -> (Millis, Millis) {
        let len = to.saturating_sub(from).max(0);
        let back = len.saturating_mul(Millis::from(self.baseline_windows));
        (from.saturating_sub(back), from)
    }

    /// True when a key counted `count` times is scored at all.
    pub fn scores(&self, count: u64) -> bool {
        count > 0 && count >= self.min_count
    }

    /// The score of a key counted `count` times in the span and
    /// `baseline_total` times in the whole baseline span.
    pub fn score(&self, count: u64, baseline_total: u64) -> f64 {
        if !self.scores(count) {
            return 0.0;
        }
        let n = f64::from(self.baseline_windows);
        let expected = (baseline_total as f64 + self.smoothing) / (n + 1.0);
        let z = (count as f64 - expected) / expected.sqrt();
        // Two decimals are plenty to rank by and keep answers stable.
        (z * 100.0).round() / 100.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: u32, min: u64, smoothing: f64) -> Scoring {
        Scoring {
            baseline_windows: n,
            min_count: min,
            smoothing,
        }
    }

    #[test]
    fn steady_key_scores_about_zero() {
        // 6 windows of 100 each, 100 now: expected (600 + 1) / 7 = 85.857…
        let sc = s(6, 5, 1.0);
        let e: f64 = 601.0 / 7.0;
        let want = ((100.0 - e) / e.sqrt() * 100.0).round() / 100.0;
        assert_eq!(sc.score(100, 600), want);
        assert_eq!(want, 1.53);
    }

    #[test]
    fn burst_outscores_a_bigger_steady_key() {
        let sc = s(6, 5, 1.0);
        // Usually 5 per window, now 100; the other key always 150.
        let burst = sc.score(100, 30);
        let steady = sc.score(150, 900);
        assert!(burst > steady, "{burst} <= {steady}");
        // expected = 31/7 = 4.428…, z = (100 - 4.428…)/sqrt(4.428…) = 45.41…
        assert_eq!(burst, 45.41);
    }

    #[test]
    fn unseen_keys_are_smoothed_and_small_counts_unscored() {
        let sc = s(6, 5, 1.0);
        // expected = 1/7, z = (5 - 1/7) * sqrt(7)
        let want = ((5.0 - 1.0 / 7.0) * 7f64.sqrt() * 100.0).round() / 100.0;
        assert_eq!(sc.score(5, 0), want);
        assert_eq!(sc.score(4, 0), 0.0);
        assert_eq!(
            s(6, 0, 1.0).score(0, 0),
            0.0,
            "absent keys are never scored"
        );
        assert!(sc.score(5, 0).is_finite());
    }

    #[test]
    fn a_key_below_its_usual_rate_scores_negative() {
        assert!(s(4, 1, 1.0).score(10, 400) < 0.0);
    }

    #[test]
    fn baseline_span_is_the_n_previous_equal_spans() {
        let sc = s(3, 5, 1.0);
        assert_eq!(sc.baseline_span((600, 900)), (-300, 600));
        assert_eq!(
            sc.baseline_span((Millis::MIN + 5, Millis::MIN + 10)),
            (Millis::MIN, Millis::MIN + 5)
        );
    }
}
