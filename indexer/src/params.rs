//! The REST API's query strings turned into typed queries (BRIEF §2).
//!
//! Pure functions with no I/O, so that the HTTP layer stays thin, every rule
//! lives in one place, and a fuzzer can drive them directly. Each rejection
//! names the parameter it is about; values echoed back are shortened so an
//! error body stays small whatever the request.

use crate::query::{SearchQuery, TrendSort, TrendsQuery, TrendsRange};
use chrono::{DateTime, Datelike, Utc};
use farol_common::model::AggKind;
use farol_common::time::{Millis, Window};
use std::collections::BTreeMap;

/// Largest `limit` accepted.
pub const MAX_LIMIT: usize = 10_000;
/// `limit` when absent.
pub const DEFAULT_LIMIT: usize = 10;
/// Longest `q` accepted, in bytes (checked before any query parser runs).
pub const MAX_QUERY_BYTES: usize = 1024;
/// Deepest nesting of `q`: parentheses plus chained `NOT`s (checked before
/// any query parser runs; the parsers recurse once per level).
pub const MAX_QUERY_DEPTH: usize = 16;
/// Longest parameter value or name quoted back in an error.
const ECHO_CHARS: usize = 64;

/// `/trends` parameters.
pub const TRENDS_PARAMS: &[&str] = &[
    "kind", "window", "at", "from", "to", "limit", "source", "sort",
];
/// `/search` parameters.
pub const SEARCH_PARAMS: &[&str] = &["q", "kind", "from", "to", "limit", "template_id"];

/// A rejected parameter: which one, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{param}: {reason}")]
pub struct ParamError {
    /// The parameter's name (as sent, shortened, for unknown ones).
    pub param: String,
    /// What is wrong with it.
    pub reason: String,
}

impl ParamError {
    /// A rejection of `param`.
    pub fn new(param: &str, reason: impl Into<String>) -> Self {
        ParamError {
            param: echo(param),
            reason: reason.into(),
        }
    }
}

/// `s` shortened for quoting in an error message.
pub fn echo(s: &str) -> String {
    if s.chars().count() <= ECHO_CHARS {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(ECHO_CHARS).collect();
        out.push('…');
        out
    }
}

/// Decodes a query string (`application/x-www-form-urlencoded`) into the
/// allowed parameters. Unknown and repeated parameters are errors: a typo or
/// a second `kind=` must not be silently ignored.
pub fn decode<'a>(
    query: &str,
    allowed: &[&'a str],
) -> Result<BTreeMap<&'a str, String>, ParamError> {
    let mut out = BTreeMap::new();
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        if k.is_empty() && v.is_empty() {
            continue; // `a=1&&b=2`
        }
        let Some(name) = allowed.iter().find(|a| **a == k) else {
            return Err(ParamError::new(
                &k,
                format!("unknown parameter; expected one of {}", allowed.join(", ")),
            ));
        };
        if out.insert(*name, v.into_owned()).is_some() {
            return Err(ParamError::new(name, "given more than once"));
        }
    }
    Ok(out)
}

/// First instant whose RFC 3339 form has a four-digit year (0001-01-01).
pub const MIN_MS: Millis = -62_135_596_800_000;
/// First instant past year 9999 (10000-01-01), exclusive.
pub const END_MS: Millis = 253_402_300_800_000;

/// A parsed time: epoch milliseconds (floored) and what is left below them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Instant {
    ms: Millis,
    sub_ms_nanos: u32,
}

impl Instant {
    /// The first whole millisecond at or after this instant.
    fn ceil_ms(self) -> Millis {
        self.ms + Millis::from(self.sub_ms_nanos > 0)
    }
}

/// Parses an RFC 3339 time whose UTC year is 0001..=9999.
fn time(param: &str, v: &str) -> Result<Instant, ParamError> {
    let t = DateTime::parse_from_rfc3339(v)
        .map_err(|_| ParamError::new(param, format!("'{}' is not an RFC 3339 time", echo(v))))?
        .with_timezone(&Utc);
    if !(1..=9999).contains(&t.year()) {
        return Err(ParamError::new(
            param,
            format!("'{}' is outside the years 0001 to 9999 (UTC)", echo(v)),
        ));
    }
    // Leap seconds count as the next second, as chrono's millisecond form has them.
    let nanos = t.timestamp_subsec_nanos();
    Ok(Instant {
        ms: t.timestamp() * 1000 + Millis::from(nanos / 1_000_000),
        sub_ms_nanos: nanos % 1_000_000,
    })
}

fn limit(p: &BTreeMap<&str, String>) -> Result<usize, ParamError> {
    match p.get("limit") {
        None => Ok(DEFAULT_LIMIT),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            _ => Err(ParamError::new(
                "limit",
                format!("must be an integer from 1 to {MAX_LIMIT}"),
            )),
        },
    }
}

/// True when both ends of `[from, to)` can be written in RFC 3339 with
/// four-digit years.
fn representable(from: Millis, to: Millis) -> bool {
    from >= MIN_MS && to < END_MS
}

/// Parses `/trends` parameters against the configured windows and base bucket.
pub fn parse_trends(
    query: &str,
    windows: &[Window],
    bucket_ms: Millis,
) -> Result<TrendsQuery, ParamError> {
    let p = decode(query, TRENDS_PARAMS)?;
    let kind = match p.get("kind") {
        None => {
            return Err(ParamError::new(
                "kind",
                "is required (hashtag, log_class or log_template)",
            ))
        }
        Some(k) => AggKind::parse(k).ok_or_else(|| {
            ParamError::new(
                "kind",
                format!("'{}' is not hashtag, log_class or log_template", echo(k)),
            )
        })?,
    };
    let limit = limit(&p)?;
    let sort = match p.get("sort").map(String::as_str) {
        None | Some("count") => TrendSort::Count,
        Some("score") => TrendSort::Score,
        Some(v) => {
            return Err(ParamError::new(
                "sort",
                format!("'{}' is not count or score", echo(v)),
            ))
        }
    };
    let source = match p.get("source") {
        Some(s) if s.is_empty() => return Err(ParamError::new("source", "must not be empty")),
        s => s.cloned(),
    };
    let opt_time = |name: &str| p.get(name).map(|v| time(name, v)).transpose();
    let (from, to, at) = (opt_time("from")?, opt_time("to")?, opt_time("at")?);
    let range = match (p.get("window"), from, to) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            return Err(ParamError::new(
                "window",
                "use either window (with optional at) or from and to",
            ))
        }
        (Some(w), None, None) => {
            let Some(window) = windows.iter().find(|x| &x.name == w) else {
                let names: Vec<&str> = windows.iter().map(|w| w.name.as_str()).collect();
                return Err(ParamError::new(
                    "window",
                    format!("'{}' is not one of {}", echo(w), names.join(", ")),
                ));
            };
            let at = at.map(|a| a.ms);
            if let Some(a) = at {
                let (f, t) = window.containing(a);
                if !representable(f, t) {
                    return Err(ParamError::new(
                        "at",
                        "its window would reach outside the years 0001 to 9999",
                    ));
                }
            }
            TrendsRange::Window {
                window: window.clone(),
                at,
            }
        }
        (None, Some(from), Some(to)) => {
            if at.is_some() {
                return Err(ParamError::new("at", "only applies to the window form"));
            }
            for (name, v) in [("from", from), ("to", to)] {
                if v.sub_ms_nanos != 0 || v.ms.rem_euclid(bucket_ms) != 0 {
                    return Err(ParamError::new(
                        name,
                        format!(
                            "must be aligned to the {} s base bucket",
                            bucket_ms as f64 / 1000.0
                        ),
                    ));
                }
            }
            if from.ms >= to.ms {
                return Err(ParamError::new("to", "must be after from"));
            }
            TrendsRange::Between {
                from: from.ms,
                to: to.ms,
            }
        }
        (None, Some(_), None) => return Err(ParamError::new("to", "is required with from")),
        (None, None, Some(_)) => return Err(ParamError::new("from", "is required with to")),
        (None, None, None) => {
            return Err(ParamError::new("window", "is required (or from and to)"))
        }
    };
    Ok(TrendsQuery {
        kind,
        source,
        limit,
        range,
        sort,
        scoring: crate::score::Scoring::default(),
    })
}

/// Parses `/search` parameters. `q` is checked for length and nesting
/// only; its syntax is the index backend's to judge.
pub fn parse_search(query: &str) -> Result<SearchQuery, ParamError> {
    let p = decode(query, SEARCH_PARAMS)?;
    let limit = limit(&p)?;
    let kind = match p.get("kind").map(String::as_str) {
        None => None,
        Some(k @ ("post" | "log" | "deadletter")) => Some(k.to_string()),
        Some(k) => {
            return Err(ParamError::new(
                "kind",
                format!("'{}' is not post, log or deadletter", echo(k)),
            ))
        }
    };
    let opt_time = |name: &str| p.get(name).map(|v| time(name, v)).transpose();
    // Event times are whole milliseconds: `ts >= from` and `ts < to` hold
    // exactly when they hold against the bounds rounded up.
    let from = opt_time("from")?.map(Instant::ceil_ms);
    let to = opt_time("to")?.map(Instant::ceil_ms);
    if let (Some(f), Some(t)) = (from, to) {
        if f >= t {
            return Err(ParamError::new("to", "must be after from"));
        }
    }
    let q = p.get("q").cloned().unwrap_or_default();
    check_query_text(&q).map_err(|reason| ParamError::new("q", reason))?;
    // Template ids are 16 lower-case hex digits (the miner's hash).
    let template_id = match p.get("template_id") {
        None => None,
        Some(t) if t.len() == 16 && t.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) => {
            Some(t.clone())
        }
        Some(t) => {
            return Err(ParamError::new(
                "template_id",
                format!("'{}' is not a template id (16 hex digits)", echo(t)),
            ))
        }
    };
    Ok(SearchQuery {
        q,
        kind,
        from,
        to,
        limit,
        template_id,
    })
}

/// Bounds a search text before any parser sees it: at most
/// [`MAX_QUERY_BYTES`] bytes and [`MAX_QUERY_DEPTH`] levels of nesting
/// (parentheses, and `NOT`s applied to `NOT`s). Quoted phrases do not nest.
pub fn check_query_text(q: &str) -> Result<(), String> {
    if q.len() > MAX_QUERY_BYTES {
        return Err(format!(
            "is {} bytes long; at most {MAX_QUERY_BYTES} are accepted",
            q.len()
        ));
    }
    let too_deep = || format!("nests deeper than {MAX_QUERY_DEPTH} levels");
    let mut parens = 0usize;
    let mut nots = 0usize; // consecutive NOTs waiting for their operand
    let mut chars = q.char_indices().peekable();
    let mut in_phrase = false;
    let mut word_start = true;
    while let Some((i, c)) = chars.next() {
        if in_phrase {
            match c {
                '\\' => {
                    chars.next();
                }
                '"' => in_phrase = false,
                _ => {}
            }
            continue;
        }
        match c {
            '\\' => {
                chars.next();
                nots = 0;
                word_start = false;
            }
            '"' => {
                in_phrase = true;
                nots = 0;
                word_start = false;
            }
            '(' => {
                parens += 1;
                word_start = true;
            }
            ')' => {
                parens = parens.saturating_sub(1);
                nots = 0;
                word_start = false;
            }
            c if c.is_whitespace() => word_start = true,
            _ => {
                if word_start && q[i..].starts_with("NOT") {
                    let after = q[i + 3..].chars().next();
                    if after.is_some_and(char::is_whitespace) {
                        nots += 1;
                        chars.next();
                        chars.next();
                        word_start = false;
                        if parens + nots > MAX_QUERY_DEPTH {
                            return Err(too_deep());
                        }
                        continue;
                    }
                }
                nots = 0;
                word_start = false;
            }
        }
        if parens + nots > MAX_QUERY_DEPTH {
            return Err(too_deep());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn windows() -> Vec<Window> {
        vec![Window {
            name: "1m".into(),
            size: 60_000,
            slide: 10_000,
        }]
    }

    fn trends(q: &str) -> Result<TrendsQuery, ParamError> {
        parse_trends(q, &windows(), 10_000)
    }

    fn rejects(r: Result<impl std::fmt::Debug, ParamError>, param: &str) {
        match r {
            Err(e) => assert_eq!(e.param, param, "{e}"),
            Ok(v) => panic!("accepted {v:?}, expected a rejection of {param}"),
        }
    }

    #[test]
    fn repeated_and_unknown_parameters_are_rejected() {
        rejects(trends("kind=nope&kind=log_class&window=1m"), "kind");
        rejects(trends("kind=log_class&kind=log_class&window=1m"), "kind");
        rejects(trends("kind=log_class&window=1m&limt=5"), "limt");
        rejects(parse_search("q=a&q=b"), "q");
        rejects(parse_search("template_id=xyz"), "template_id");
        rejects(parse_search("template_id=0123456789ABCDEF"), "template_id");
        rejects(parse_search("template_id=0123456789abcdef0"), "template_id");
        assert_eq!(
            parse_search("template_id=0123456789abcdef")
                .unwrap()
                .template_id
                .as_deref(),
            Some("0123456789abcdef")
        );
        assert!(trends("kind=log_class&&window=1m").is_ok());
    }

    #[test]
    fn times_outside_four_digit_years_are_rejected() {
        rejects(
            trends("kind=hashtag&window=1m&at=0000-06-01T00:00:00Z"),
            "at",
        );
        // The window containing the first instant of year 1 starts in year 0.
        rejects(
            trends("kind=hashtag&window=1m&at=0001-01-01T00:00:00Z"),
            "at",
        );
        rejects(
            trends("kind=hashtag&window=1m&at=9999-12-31T23:59:59Z"),
            "at",
        );
        rejects(
            trends("kind=hashtag&from=9999-12-31T23:00:00-05:00&to=9999-12-31T23:59:50Z"),
            "from",
        );
        rejects(parse_search("from=0001-01-01T00:30:00%2B01:00"), "from");
        let ok = trends("kind=hashtag&from=0001-01-01T00:00:00Z&to=9999-12-31T23:59:50Z").unwrap();
        match ok.range {
            TrendsRange::Between { from, to } => {
                assert_eq!(from, MIN_MS);
                assert_eq!(to, END_MS - 10_000);
            }
            r => panic!("{r:?}"),
        }
        assert_eq!(
            farol_common::time::rfc3339(MIN_MS),
            "0001-01-01T00:00:00Z",
            "MIN_MS is the first instant of year 1"
        );
        assert_eq!(
            farol_common::time::rfc3339(END_MS - 1),
            "9999-12-31T23:59:59.999Z"
        );
        let ok = trends("kind=hashtag&window=1m&at=0001-01-01T00:01:00Z").unwrap();
        assert!(matches!(ok.range, TrendsRange::Window { at: Some(_), .. }));
    }

    #[test]
    fn sub_millisecond_times_are_not_aligned() {
        rejects(
            trends("kind=hashtag&from=2024-01-01T00:00:00.0001Z&to=2024-01-01T00:01:00Z"),
            "from",
        );
        rejects(
            trends("kind=hashtag&from=2024-01-01T00:00:00Z&to=2024-01-01T00:01:00.000000001Z"),
            "to",
        );
        assert!(
            trends("kind=hashtag&from=2024-01-01T00:00:00.000Z&to=2024-01-01T00:01:00Z").is_ok()
        );
    }

    #[test]
    fn search_bounds_round_up_to_whole_milliseconds() {
        let s = parse_search("from=1970-01-01T00:00:01.0000001Z&to=1970-01-01T00:00:02Z").unwrap();
        assert_eq!((s.from, s.to), (Some(1001), Some(2000)));
        rejects(
            parse_search("from=2024-01-02T00:00:00Z&to=2024-01-01T00:00:00Z"),
            "to",
        );
        rejects(
            parse_search("from=2024-01-01T00:00:00Z&to=2024-01-01T00:00:00Z"),
            "to",
        );
    }

    #[test]
    fn query_text_is_bounded_in_length_and_depth() {
        assert!(check_query_text(&"a ".repeat(512)).is_ok());
        assert!(check_query_text(&"a ".repeat(513)).is_err());
        let nested = |n: usize| format!("{}x{}", "(".repeat(n), ")".repeat(n));
        assert!(check_query_text(&nested(MAX_QUERY_DEPTH)).is_ok());
        assert!(check_query_text(&nested(MAX_QUERY_DEPTH + 1)).is_err());
        assert!(check_query_text(&"(".repeat(750)).is_err());
        let nots = |n: usize| format!("{}x", "NOT ".repeat(n));
        assert!(check_query_text(&nots(MAX_QUERY_DEPTH)).is_ok());
        assert!(check_query_text(&nots(MAX_QUERY_DEPTH + 1)).is_err());
        // Parentheses inside a phrase, and NOT as part of a word, do not nest.
        assert!(check_query_text(&format!("\"{}\"", "(".repeat(100))).is_ok());
        assert!(check_query_text(&"NOTE ".repeat(40)).is_ok());
        assert!(check_query_text(&"a NOT b ".repeat(40)).is_ok());
        rejects(parse_search(&format!("q={}", "(".repeat(750))), "q");
    }

    #[test]
    fn sort_is_count_or_score() {
        assert_eq!(
            trends("kind=hashtag&window=1m").unwrap().sort,
            TrendSort::Count
        );
        assert_eq!(
            trends("kind=hashtag&window=1m&sort=count").unwrap().sort,
            TrendSort::Count
        );
        assert_eq!(
            trends("kind=hashtag&window=1m&sort=score").unwrap().sort,
            TrendSort::Score
        );
        rejects(trends("kind=hashtag&window=1m&sort=key"), "sort");
        rejects(trends("kind=hashtag&window=1m&sort="), "sort");
        rejects(
            trends("kind=hashtag&window=1m&sort=score&sort=count"),
            "sort",
        );
    }

    #[test]
    fn errors_echo_shortened_values() {
        let long = "x".repeat(10_000);
        let e = trends(&format!("kind={long}&window=1m")).unwrap_err();
        assert!(e.to_string().len() < 200, "{e}");
    }
}
