//! HTTP plumbing shared by the feed clients: one configured client, typed
//! errors, retries with exponential backoff for server and network errors,
//! rate-limit headers turned into a wait, and URL redaction: a feed URL may
//! carry a secret (`?access_token=`, `user:password@`), so no URL is ever
//! logged or shown unredacted, and no upstream body reaches an error message
//! (they end up in `/healthz`).

use chrono::DateTime;
use reqwest::header::HeaderMap;
use std::time::Duration;

/// Attempts per request for retryable failures (5xx, network).
pub const ATTEMPTS: u32 = 3;
/// First backoff; doubles per attempt.
pub const BACKOFF: Duration = Duration::from_millis(250);
/// Longest wait a rate-limit header can impose.
pub const MAX_RATE_WAIT: Duration = Duration::from_secs(15 * 60);

/// A fetched page.
#[derive(Debug, Default)]
pub struct Page {
    /// `(id, raw JSON)` of each post, in any order.
    pub posts: Vec<(u64, Vec<u8>)>,
    /// Token or URL of the next page of this poll, if any.
    pub next: Option<String>,
    /// Wait before the next poll demanded by rate-limit headers.
    pub wait: Option<Duration>,
    /// Errors the API reported inside a successful response.
    pub warnings: Vec<String>,
}

/// Why a poll failed.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// The feed cannot be set up.
    #[error("{0}")]
    Config(String),
    /// 401/403: the token is missing, wrong or lacks access.
    #[error("authorization failed: {0}")]
    Auth(String),
    /// A server-provided URL points away from the configured origin.
    #[error("refused to follow a link to another origin: {0}")]
    ForeignLink(String),
    /// 429: wait this long.
    #[error("rate limited; waiting {0:?}")]
    RateLimited(Duration),
    /// 5xx after every retry.
    #[error("server error after {ATTEMPTS} attempts: {0}")]
    Server(String),
    /// Connection or timeout after every retry.
    #[error("network error after {ATTEMPTS} attempts: {0}")]
    Network(String),
    /// Another unexpected status.
    #[error("unexpected HTTP status: {0}")]
    Status(String),
    /// The body is not the JSON expected (truncated, wrong shape).
    #[error("unreadable response body: {0}")]
    Body(String),
}

impl FeedError {
    /// Label for `farol_feed_errors_total`.
    pub fn kind(&self) -> &'static str {
        match self {
            FeedError::Config(_) => "config",
            FeedError::Auth(_) => "auth",
            FeedError::ForeignLink(_) => "foreign_link",
            FeedError::RateLimited(_) => "rate_limited",
            FeedError::Server(_) => "server",
            FeedError::Network(_) => "network",
            FeedError::Status(_) => "status",
            FeedError::Body(_) => "body",
        }
    }
}

/// The HTTP client every feed uses. Redirects are followed only within the
/// origin they start from (reqwest would drop the token on a cross-origin
/// redirect, but the feed should not wander to another host at all).
pub fn client() -> Result<reqwest::Client, FeedError> {
    let policy = reqwest::redirect::Policy::custom(|attempt| {
        let same_origin = attempt
            .previous()
            .first()
            .is_some_and(|first| first.origin() == attempt.url().origin());
        if attempt.previous().len() > 5 {
            attempt.error("too many redirects")
        } else if same_origin {
            attempt.follow()
        } else {
            attempt.stop()
        }
    });
    reqwest::Client::builder()
        .user_agent(concat!("farol/", env!("CARGO_PKG_VERSION")))
        .timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(10))
        .redirect(policy)
        .build()
        .map_err(|e| FeedError::Config(format!("HTTP client: {e}")))
}

/// Query parameter names whose values are secrets (compared lower-cased;
/// any name containing `token`, `secret`, `password` or `key` is one too).
const SECRET_PARAMS: &[&str] = &[
    "auth",
    "authorization",
    "code",
    "pass",
    "passwd",
    "sig",
    "signature",
];

fn is_secret_param(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    SECRET_PARAMS.contains(&n.as_str())
        || ["token", "secret", "password", "key"]
            .iter()
            .any(|w| n.contains(w))
}

/// `url` with its secrets replaced by `REDACTED`: user name and password,
/// and the values of secret-looking query parameters. Anything that does
/// not parse as a URL is not shown at all.
pub fn redact(url: &str) -> String {
    let Ok(mut u) = url::Url::parse(url) else {
        return "<unparseable URL>".into();
    };
    if !u.username().is_empty() {
        let _ = u.set_username("REDACTED");
    }
    if u.password().is_some() {
        let _ = u.set_password(Some("REDACTED"));
    }
    if u.query().is_some() {
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, v)| {
                let v = if is_secret_param(&k) {
                    "REDACTED".to_string()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        u.query_pairs_mut().clear().extend_pairs(pairs);
    }
    u.set_fragment(None);
    u.to_string()
}

/// A reqwest error without the URL it carries (which may hold a secret),
/// with its causes, followed by the redacted URL.
fn describe(e: reqwest::Error, url: &str) -> String {
    let e = e.without_url();
    let mut msg = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        msg.push_str(": ");
        msg.push_str(&c.to_string());
        cause = c.source();
    }
    format!("{msg} ({})", redact(url))
}

/// Reads a rate-limit reset header: epoch seconds (X) or RFC 3339 (Mastodon).
fn reset_wait(v: &str, now_ms: i64) -> Option<Duration> {
    let at_ms = match v.trim().parse::<i64>() {
        Ok(secs) => secs * 1000,
        Err(_) => DateTime::parse_from_rfc3339(v.trim())
            .ok()?
            .timestamp_millis(),
    };
    let ms = (at_ms - now_ms).max(0) as u64;
    Some(Duration::from_millis(ms).min(MAX_RATE_WAIT))
}

fn header<'a>(h: &'a HeaderMap, names: &[&str]) -> Option<&'a str> {
    names
        .iter()
        .find_map(|n| h.get(*n).and_then(|v| v.to_str().ok()))
}

/// The wait demanded by rate-limit headers, when the remaining quota is 0
/// (or always, for a 429).
pub fn rate_wait(h: &HeaderMap, limited: bool) -> Option<Duration> {
    let remaining = header(h, &["x-rate-limit-remaining", "x-ratelimit-remaining"])
        .and_then(|v| v.trim().parse::<i64>().ok());
    if !limited && remaining != Some(0) {
        return None;
    }
    let now = farol_common::time::now_ms();
    header(h, &["x-rate-limit-reset", "x-ratelimit-reset"])
        .and_then(|v| reset_wait(v, now))
        .or_else(|| {
            header(h, &["retry-after"])
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs)
        })
        .or(limited.then_some(Duration::from_secs(60)))
}

/// A successful response: body and headers.
pub struct Fetched {
    /// The body bytes.
    pub body: Vec<u8>,
    /// The headers.
    pub headers: HeaderMap,
}

/// Logs and counts one failed attempt of `feed` (each failure once).
fn report(feed: &str, kind: &'static str, detail: &str, attempt: u32) {
    farol_common::metrics::metrics()
        .feed_errors
        .with_label_values(&[feed, kind])
        .inc();
    tracing::warn!(%feed, error = %detail, attempt = attempt + 1, "request failed");
}

/// GETs `url` for `feed`, retrying 5xx and network errors with backoff;
/// every failed attempt is logged once and counted in `farol_feed_errors_total`.
pub async fn get(
    client: &reqwest::Client,
    feed: &str,
    url: &str,
    token: Option<&str>,
) -> Result<Fetched, FeedError> {
    let mut last: Option<FeedError> = None;
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(BACKOFF * 2u32.pow(attempt - 1)).await;
        }
        let mut req = client.get(url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                let msg = describe(e, url);
                report(feed, "network", &msg, attempt);
                last = Some(FeedError::Network(msg));
                continue;
            }
        };
        let status = resp.status();
        let headers = resp.headers().clone();
        if status.as_u16() == 429 {
            return Err(FeedError::RateLimited(
                rate_wait(&headers, true).unwrap_or(Duration::from_secs(60)),
            ));
        }
        if status.as_u16() == 401 || status.as_u16() == 403 {
            debug_body(feed, url, resp).await;
            return Err(FeedError::Auth(status.to_string()));
        }
        if status.is_server_error() {
            report(feed, "server", status.as_str(), attempt);
            last = Some(FeedError::Server(status.to_string()));
            continue;
        }
        if !status.is_success() {
            debug_body(feed, url, resp).await;
            return Err(FeedError::Status(status.to_string()));
        }
        match resp.bytes().await {
            Ok(b) => {
                return Ok(Fetched {
                    body: b.to_vec(),
                    headers,
                })
            }
            Err(e) => {
                let msg = describe(e, url);
                report(feed, "network", &msg, attempt);
                last = Some(FeedError::Network(msg));
            }
        }
    }
    Err(last.unwrap_or_else(|| FeedError::Network("no attempt made".into())))
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Logs the start of an error response's body at DEBUG: the upstream's
/// words are useful when debugging, but never part of an error message.
async fn debug_body(feed: &str, url: &str, resp: reqwest::Response) {
    if tracing::enabled!(tracing::Level::DEBUG) {
        let body = resp.text().await.unwrap_or_default();
        let snippet: String = body.chars().take(200).collect();
        tracing::debug!(%feed, url = %redact(url), body = ?snippet, "error response");
    }
}

/// The numeric id of a post object (`id` as string or number).
pub fn post_id(v: &serde_json::Value) -> Option<u64> {
    match v.get("id")? {
        serde_json::Value::String(s) => s.parse().ok(),
        serde_json::Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderName, HeaderValue};

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn secrets_in_urls_are_redacted() {
        assert_eq!(
            redact("https://m.s/api/v1/timelines/public?access_token=abc&limit=40"),
            "https://m.s/api/v1/timelines/public?access_token=REDACTED&limit=40"
        );
        assert_eq!(
            redact("https://user:pw@x.example:8443/2/tweets?api_key=k&Client_Secret=s&q=a+b#frag"),
            "https://REDACTED:REDACTED@x.example:8443/2/tweets?api_key=REDACTED&Client_Secret=REDACTED&q=a+b"
        );
        assert_eq!(
            redact("http://h/p?sig=1&x=2"),
            "http://h/p?sig=REDACTED&x=2"
        );
        assert_eq!(redact("not a url ?access_token=abc"), "<unparseable URL>");
    }

    #[tokio::test]
    async fn network_errors_name_no_secret() {
        // A port nothing listens on: connection refused.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}/api?access_token=SECRET123");
        let Err(e) = get(&client().unwrap(), "f", &url, Some("TOKEN456")).await else {
            panic!("nothing listens on {port}");
        };
        let text = e.to_string();
        assert!(matches!(e, FeedError::Network(_)), "{text}");
        assert!(
            !text.contains("SECRET123") && !text.contains("TOKEN456"),
            "{text}"
        );
        assert!(text.contains("access_token=REDACTED"), "{text}");
    }

    #[test]
    fn reset_headers_in_both_styles() {
        assert_eq!(reset_wait("100", 90_000), Some(Duration::from_secs(10)));
        assert_eq!(
            reset_wait("1970-01-01T00:01:40Z", 95_000),
            Some(Duration::from_secs(5))
        );
        assert_eq!(reset_wait("50", 90_000), Some(Duration::ZERO));
    }

    #[test]
    fn waits_only_when_exhausted_or_limited() {
        let h = headers(&[("x-rate-limit-remaining", "3"), ("x-rate-limit-reset", "1")]);
        assert_eq!(rate_wait(&h, false), None);
        let h = headers(&[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "1")]);
        assert_eq!(rate_wait(&h, false), Some(Duration::ZERO));
        assert_eq!(
            rate_wait(&headers(&[("retry-after", "7")]), true),
            Some(Duration::from_secs(7))
        );
    }
}
