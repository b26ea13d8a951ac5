//! Trends planning shared by every index backend: which time span a
//! `/trends` question covers. The window form takes, among the streams of
//! the sources that count the asked kind (and of the asked source), the most
//! recent closed window that still holds data ([`Window::last_closed_holding`]);
//! sources never hold each other back. Backends only sum counts over the
//! span and, for the keys that are scored ([`scored_keys`]), over the
//! baseline span before it; [`rank`] turns both into the answer's items.

use crate::query::{TrendItem, TrendSort, TrendsQuery, TrendsRange};
use farol_common::model::StreamState;
use farol_common::time::{Millis, Window};
use std::collections::HashMap;

/// The most recent closed `window` that holds data, over `streams`;
/// `counts` tells whether a source counted the asked kind.
pub fn last_closed<'a>(
    streams: impl IntoIterator<Item = &'a StreamState>,
    counts: impl Fn(&str) -> bool,
    source: Option<&str>,
    window: &Window,
) -> Option<(Millis, Millis)> {
    streams
        .into_iter()
        .filter(|s| source.is_none_or(|x| x == s.source))
        .filter(|s| counts(&s.source))
        .filter_map(|s| Some(window.last_closed_holding(s.watermark?, s.max_ts)))
        .max_by_key(|span| span.1)
}

/// The window's name (window form only) and the span `[from, to)` to sum,
/// `None` when no window has closed yet; `last_closed` is asked only for
/// the window form without `at`.
pub fn plan(
    range: &TrendsRange,
    last_closed: impl FnOnce(&Window) -> Option<(Millis, Millis)>,
) -> (Option<String>, Option<(Millis, Millis)>) {
    match range {
        TrendsRange::Between { from, to } => (None, Some((*from, *to))),
        TrendsRange::Window { window, at } => {
            let span = match at {
                Some(at) => Some(window.containing(*at)),
                None => last_closed(window),
            };
            (Some(window.name.clone()), span)
        }
    }
}

/// The keys whose baseline a backend must sum (over
/// `q.scoring.baseline_span(span)`): by count, the scored keys among the
/// top `limit`; by score, every scored key of the span.
pub fn scored_keys(q: &TrendsQuery, totals: &HashMap<String, u64>) -> Vec<String> {
    match q.sort {
        TrendSort::Count => by_count(totals)
            .into_iter()
            .take(q.limit)
            .filter(|(_, n)| q.scoring.scores(*n))
            .map(|(k, _)| k.to_string())
            .collect(),
        TrendSort::Score => totals
            .iter()
            .filter(|(_, n)| q.scoring.scores(**n))
            .map(|(k, _)| k.clone())
            .collect(),
    }
}

fn by_count(totals: &HashMap<String, u64>) -> Vec<(&str, u64)> {
    let mut v: Vec<(&str, u64)> = totals
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| (k.as_str(), *n))
        .collect();
    v.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    v
}

/// The answer's items: the span's `totals` scored against the `baseline`
/// totals of the keys [`scored_keys`] named (absent: 0), in the asked
/// order, at most `q.limit`.
pub fn rank(
    q: &TrendsQuery,
    totals: &HashMap<String, u64>,
    baseline: &HashMap<String, u64>,
) -> Vec<TrendItem> {
    let item = |key: &str, count: u64| TrendItem {
        key: key.to_string(),
        count,
        score: q
            .scoring
            .score(count, baseline.get(key).copied().unwrap_or(0)),
        template: None,
    };
    match q.sort {
        TrendSort::Count => by_count(totals)
            .into_iter()
            .take(q.limit)
            .map(|(k, n)| item(k, n))
            .collect(),
        TrendSort::Score => {
            let mut items: Vec<TrendItem> = by_count(totals)
                .into_iter()
                .map(|(k, n)| item(k, n))
                .collect();
            // Stable: equal scores keep count descending, then key ascending.
            items.sort_by(|a, b| b.score.total_cmp(&a.score));
            items.truncate(q.limit);
            items
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::score::Scoring;
    use farol_common::model::AggKind;

    fn q(sort: TrendSort, limit: usize) -> TrendsQuery {
        TrendsQuery {
            kind: AggKind::Hashtag,
            source: None,
            limit,
            range: TrendsRange::Between { from: 0, to: 10 },
            sort,
            scoring: Scoring {
                baseline_windows: 4,
                min_count: 5,
                smoothing: 1.0,
            },
        }
    }

    fn map(v: &[(&str, u64)]) -> HashMap<String, u64> {
        v.iter().map(|(k, n)| (k.to_string(), *n)).collect()
    }

    #[test]
    #[allow(clippy::approx_constant)] // 3.14 is a score here, not π
    fn by_count_scores_only_the_top_and_by_score_ranks_bursts_first() {
        let totals = map(&[("steady", 200), ("burst", 100), ("new", 6), ("rare", 2)]);
        // 4 baseline windows: steady 200 each, burst 5 each, the others unseen.
        let baseline = map(&[("steady", 800), ("burst", 20)]);
        let mut keys = scored_keys(&q(TrendSort::Count, 2), &totals);
        keys.sort();
        assert_eq!(keys, vec!["burst", "steady"]);
        let mut keys = scored_keys(&q(TrendSort::Score, 2), &totals);
        keys.sort();
        assert_eq!(
            keys,
            vec!["burst", "new", "steady"],
            "rare is below min_count"
        );

        let by_count = rank(&q(TrendSort::Count, 10), &totals, &baseline);
        let order: Vec<&str> = by_count.iter().map(|i| i.key.as_str()).collect();
        assert_eq!(order, vec!["steady", "burst", "new", "rare"]);
        let by_score = rank(&q(TrendSort::Score, 10), &totals, &baseline);
        let order: Vec<&str> = by_score.iter().map(|i| i.key.as_str()).collect();
        // burst: e = 21/5 = 4.2, z = 46.75; new: e = 0.2, z = 12.97;
        // steady: e = 801/5 = 160.2, z = 3.14; rare: unscored.
        assert_eq!(order, vec!["burst", "new", "steady", "rare"]);
        let scores: Vec<f64> = by_score.iter().map(|i| i.score).collect();
        assert_eq!(scores, vec![46.75, 12.97, 3.14, 0.0]);
        assert_eq!(rank(&q(TrendSort::Score, 1), &totals, &baseline).len(), 1);
    }

    #[test]
    fn equal_scores_keep_count_then_key_order() {
        let totals = map(&[("b", 3), ("a", 3), ("c", 4)]);
        let items = rank(&q(TrendSort::Score, 10), &totals, &HashMap::new());
        let order: Vec<&str> = items.iter().map(|i| i.key.as_str()).collect();
        assert_eq!(order, vec!["c", "a", "b"]);
    }
}
