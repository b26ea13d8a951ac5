//! Query shapes of the REST API (BRIEF §2), independent of the backend.

use crate::score::Scoring;
use farol_common::model::AggKind;
use farol_common::time::{Millis, Window};
use serde::Serialize;

/// Which time span `/trends` covers.
#[derive(Debug, Clone)]
pub enum TrendsRange {
    /// The most recent closed window of this size, or the one containing `at`.
    Window {
        /// The window.
        window: Window,
        /// A time inside the wanted window.
        at: Option<Millis>,
    },
    /// Exact totals over `[from, to)`.
    Between {
        /// Inclusive start.
        from: Millis,
        /// Exclusive end.
        to: Millis,
    },
}

/// A `/trends` question.
#[derive(Debug, Clone)]
pub struct TrendsQuery {
    /// What is counted.
    pub kind: AggKind,
    /// Only this source.
    pub source: Option<String>,
    /// Top N.
    pub limit: usize,
    /// Time span.
    pub range: TrendsRange,
    /// Order of the items.
    pub sort: TrendSort,
    /// How scores are computed (the API fills in the configured settings).
    pub scoring: Scoring,
}

/// How `/trends` items are ordered (`&sort=`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TrendSort {
    /// Count descending, then key ascending (the default).
    #[default]
    Count,
    /// Trend score descending, then count descending, then key ascending.
    Score,
}

/// One key, its count and its trend score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrendItem {
    /// Hashtag or class.
    pub key: String,
    /// Occurrences.
    pub count: u64,
    /// How unusual `count` is against the key's own baseline (see
    /// [`crate::score`]); 0 for keys below the configured minimum count.
    pub score: f64,
    /// The template text, for `kind=log_template`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
}

/// A `/trends` answer.
#[derive(Debug, Clone, Serialize)]
pub struct Trends {
    /// What was counted.
    pub kind: &'static str,
    /// Window name, for the window form.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
    /// Start of the span (RFC 3339), absent when no window has closed yet.
    pub from: Option<String>,
    /// End of the span (RFC 3339).
    pub to: Option<String>,
    /// Top keys, count descending then key ascending (or by score).
    pub items: Vec<TrendItem>,
    /// True when a bounded heavy-hitters summary answered instead of exact
    /// counts (counts may then be off by up to `max_error`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub approximate: bool,
    /// Largest possible difference between a returned count and the exact
    /// one, when `approximate`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_error: Option<u64>,
}

/// Most bytes of stored documents one `/search` answer carries: hits stop
/// there even below `limit` (the answer then says `truncated`).
pub const MAX_SEARCH_BYTES: usize = 4 * 1024 * 1024;

/// A `/search` question.
#[derive(Debug, Clone)]
pub struct SearchQuery {
    /// Query text (tantivy query syntax; empty matches everything).
    pub q: String,
    /// `post`, `log` or `deadletter`; both events kinds when absent.
    pub kind: Option<String>,
    /// Inclusive start.
    pub from: Option<Millis>,
    /// Exclusive end.
    pub to: Option<Millis>,
    /// Maximum hits.
    pub limit: usize,
    /// Only log events of this template id (`&template_id=`).
    pub template_id: Option<String>,
}

/// A `/search` answer.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SearchHits {
    /// Documents matching the query (all of them, not only those returned).
    pub total: u64,
    /// True when fewer hits are returned than `limit` and `total` allow,
    /// because the answer reached [`MAX_SEARCH_BYTES`].
    pub truncated: bool,
    /// The newest matching events, newest first.
    pub hits: Vec<serde_json::Value>,
}
