//! Any bytes as the query string of `/trends` and `/search`: parameter
//! parsing must answer with a typed query or an error naming a parameter,
//! never panic, and every query it accepts must be within the API's bounds
//! (times that format as RFC 3339 with four-digit years, aligned ranges,
//! limits in range, search texts the query grammar can take safely).
#![no_main]

use farol_common::time::{rfc3339, Window};
use farol_indexer::params::{
    check_query_text, parse_search, parse_trends, END_MS, MAX_LIMIT, MAX_QUERY_BYTES, MIN_MS,
};
use farol_indexer::TrendsRange;
use libfuzzer_sys::fuzz_target;

const BUCKET: i64 = 10_000;

fn windows() -> Vec<Window> {
    [("1m", 60_000, 10_000), ("5m", 300_000, 60_000), ("1h", 3_600_000, 300_000)]
        .into_iter()
        .map(|(name, size, slide)| Window {
            name: name.into(),
            size,
            slide,
        })
        .collect()
}

fn four_digit_year(ms: i64) {
    assert!((MIN_MS..END_MS).contains(&ms), "{ms}");
    let s = rfc3339(ms);
    assert!(s.as_bytes()[0].is_ascii_digit() && s.as_bytes()[4] == b'-', "{s}");
}

fuzz_target!(|data: &[u8]| {
    let Ok(query) = std::str::from_utf8(data) else {
        return;
    };
    let windows = windows();
    match parse_trends(query, &windows, BUCKET) {
        Ok(t) => {
            assert!((1..=MAX_LIMIT).contains(&t.limit));
            assert!(t.source.as_ref().is_none_or(|s| !s.is_empty()));
            match t.range {
                TrendsRange::Between { from, to } => {
                    assert!(from < to);
                    assert_eq!(from.rem_euclid(BUCKET), 0);
                    assert_eq!(to.rem_euclid(BUCKET), 0);
                    four_digit_year(from);
                    four_digit_year(to);
                }
                TrendsRange::Window { window, at } => {
                    assert!(windows.contains(&window));
                    if let Some(at) = at {
                        let (from, to) = window.containing(at);
                        four_digit_year(from);
                        four_digit_year(to);
                    }
                }
            }
        }
        Err(e) => {
            // Named, and shortened when it echoes the request.
            assert!(e.param.chars().count() <= 65, "{}", e.param);
        }
    }
    match parse_search(query) {
        Ok(s) => {
            assert!((1..=MAX_LIMIT).contains(&s.limit));
            assert!(s.q.len() <= MAX_QUERY_BYTES);
            assert!(check_query_text(&s.q).is_ok());
            if let (Some(f), Some(t)) = (s.from, s.to) {
                assert!(f < t);
            }
            // What the embedded index does next with an accepted text.
            let _ = tantivy::query_grammar::parse_query(&s.q);
        }
        Err(e) => {
            assert!(e.param.chars().count() <= 65, "{}", e.param);
        }
    }
});
