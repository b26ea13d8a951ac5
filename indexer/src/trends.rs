//! Trends planning shared by every index backend: which time span a
//! `/trends` question covers. The window form takes, among the streams of
//! the sources that count the asked kind (and of the asked source), the most
//! recent closed window that still holds data ([`Window::last_closed_holding`]);
//! sources never hold each other back. Backends only sum counts over the span.

use crate::query::TrendsRange;
use farol_common::model::StreamState;
use farol_common::time::{Millis, Window};

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
