//! A local stand-in for the social APIs, serving real recorded responses the
//! way the real endpoints page them: Mastodon timelines (`min_id`,
//! `since_id`, `max_id`, `Link` headers, `X-RateLimit-*`) and X v2 recent
//! search (`since_id`, `next_token`, `meta`, `x-rate-limit-*`, bearer auth).
//!
//! The demo uses it to replay bundled recordings through the real pollers;
//! tests use it to inject the faults real APIs produce (429, 503, 401,
//! truncated bodies, errors inside a 200) and to reveal posts over time.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A fault the next request gets instead of (or on top of) its page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// 429 with rate-limit headers resetting after this long.
    RateLimited(Duration),
    /// 503.
    Unavailable,
    /// A 200 whose body is cut in half.
    Truncated,
    /// 401.
    Unauthorized,
    /// A 200 with an `errors` array besides the data (X only).
    ErrorInBody,
    /// Served normally (so that a later fault hits a later request).
    Pass,
    /// A page whose `Link` header points at this origin instead of the
    /// server's own (Mastodon only).
    LinkTo(String),
}

struct Inner {
    /// Statuses and tweets, ascending by id.
    statuses: Vec<Value>,
    tweets: Vec<Value>,
    /// How many of the oldest posts of each list are visible (all when None).
    visible: Option<usize>,
    faults: VecDeque<Fault>,
    requests: u64,
}

/// A running replay server.
pub struct Replay {
    addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    task: tokio::task::JoinHandle<()>,
}

fn id_of(v: &Value) -> u64 {
    super::http::post_id(v).unwrap_or(0)
}

/// The posts in recorded bodies (`[{"request_uri", "body"}]`, as in
/// `social/extracted/`): Mastodon status arrays and X `data` arrays.
pub fn posts_from_bodies(json: &str) -> Result<Vec<Value>, serde_json::Error> {
    let entries: Vec<Value> = serde_json::from_str(json)?;
    let mut out = Vec::new();
    for e in entries {
        match &e["body"] {
            Value::Array(a) => out.extend(a.iter().cloned()),
            Value::Object(o) => {
                if let Some(Value::Array(a)) = o.get("data") {
                    out.extend(a.iter().cloned());
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

fn sorted_unique(mut v: Vec<Value>) -> Vec<Value> {
    v.sort_by_key(id_of);
    v.dedup_by_key(|x| id_of(x));
    v
}

impl Replay {
    /// Starts serving on 127.0.0.1 (random port).
    pub async fn start(statuses: Vec<Value>, tweets: Vec<Value>) -> std::io::Result<Replay> {
        let inner = Arc::new(Mutex::new(Inner {
            statuses: sorted_unique(statuses),
            tweets: sorted_unique(tweets),
            visible: None,
            faults: VecDeque::new(),
            requests: 0,
        }));
        let app = Router::new()
            .route("/api/v1/timelines/public", get(public))
            .route("/api/v1/timelines/tag/{tag}", get(tag))
            .route("/2/tweets/search/recent", get(search))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Replay { addr, inner, task })
    }

    /// Base URL (`http://127.0.0.1:PORT`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Queues faults for the next requests, in order.
    pub fn inject(&self, faults: impl IntoIterator<Item = Fault>) {
        if let Ok(mut i) = self.inner.lock() {
            i.faults.extend(faults);
        }
    }

    /// Shows only the `n` oldest posts of each list (`None`: all), as if
    /// the rest had not been posted yet.
    pub fn set_visible(&self, n: Option<usize>) {
        if let Ok(mut i) = self.inner.lock() {
            i.visible = n;
        }
    }

    /// A handle that controls visibility from another task.
    pub fn handle(&self) -> ReplayHandle {
        ReplayHandle {
            inner: self.inner.clone(),
        }
    }

    /// Requests served so far.
    pub fn requests(&self) -> u64 {
        self.inner.lock().map(|i| i.requests).unwrap_or(0)
    }
}

/// Controls a [`Replay`] from another task.
#[derive(Clone)]
pub struct ReplayHandle {
    inner: Arc<Mutex<Inner>>,
}

impl ReplayHandle {
    /// See [`Replay::set_visible`].
    pub fn set_visible(&self, n: Option<usize>) {
        if let Ok(mut i) = self.inner.lock() {
            i.visible = n;
        }
    }
}

impl Drop for Replay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Shared = State<Arc<Mutex<Inner>>>;

/// Which API's header style a response uses.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Api {
    Mastodon,
    X,
}

fn fault_response(f: &Fault, api: Api) -> Option<Response> {
    match f {
        Fault::RateLimited(d) => {
            let reset = chrono::Utc::now() + chrono::Duration::milliseconds(d.as_millis() as i64);
            let mut h = HeaderMap::new();
            let (remaining, reset_name, reset_value) = match api {
                // X: epoch seconds, rounded up so the wait is never short.
                Api::X => (
                    "x-rate-limit-remaining",
                    "x-rate-limit-reset",
                    (reset.timestamp() + 1).to_string(),
                ),
                Api::Mastodon => (
                    "x-ratelimit-remaining",
                    "x-ratelimit-reset",
                    reset.to_rfc3339(),
                ),
            };
            h.insert(remaining, HeaderValue::from_static("0"));
            if let Ok(v) = HeaderValue::from_str(&reset_value) {
                h.insert(reset_name, v);
            }
            Some(
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    h,
                    r#"{"error":"Too many requests"}"#,
                )
                    .into_response(),
            )
        }
        Fault::Unavailable => {
            Some((StatusCode::SERVICE_UNAVAILABLE, "upstream unavailable").into_response())
        }
        Fault::Unauthorized => Some(
            (
                StatusCode::UNAUTHORIZED,
                r#"{"error":"The access token is invalid"}"#,
            )
                .into_response(),
        ),
        Fault::Truncated | Fault::ErrorInBody | Fault::Pass | Fault::LinkTo(_) => None,
    }
}

fn finish(body: Value, headers: HeaderMap, fault: Option<Fault>) -> Response {
    let mut text = body.to_string();
    if fault == Some(Fault::Truncated) {
        let mut cut = text.len() / 2;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    let mut headers = headers;
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    (StatusCode::OK, headers, text).into_response()
}

fn take(inner: &Arc<Mutex<Inner>>) -> (Option<Fault>, Vec<Value>, Vec<Value>) {
    let Ok(mut i) = inner.lock() else {
        return (None, vec![], vec![]);
    };
    i.requests += 1;
    let fault = i.faults.pop_front();
    let n = i.visible.unwrap_or(usize::MAX);
    let s = i.statuses.iter().take(n).cloned().collect();
    let t = i.tweets.iter().take(n).cloned().collect();
    (fault, s, t)
}

fn param_u64(p: &HashMap<String, String>, k: &str) -> Option<u64> {
    p.get(k).and_then(|v| v.parse().ok())
}

async fn public(
    State(s): Shared,
    headers: HeaderMap,
    Query(p): Query<HashMap<String, String>>,
) -> Response {
    timeline(s, headers, p, None, "/api/v1/timelines/public".to_string())
}

async fn tag(
    State(s): Shared,
    headers: HeaderMap,
    Path(tag): Path<String>,
    Query(p): Query<HashMap<String, String>>,
) -> Response {
    let path = format!("/api/v1/timelines/tag/{tag}");
    timeline(s, headers, p, Some(tag), path)
}

fn timeline(
    inner: Arc<Mutex<Inner>>,
    req_headers: HeaderMap,
    p: HashMap<String, String>,
    tag: Option<String>,
    path: String,
) -> Response {
    let (fault, statuses, _) = take(&inner);
    if let Some(r) = fault
        .as_ref()
        .and_then(|f| fault_response(f, Api::Mastodon))
    {
        return r;
    }
    let limit = param_u64(&p, "limit").unwrap_or(20).clamp(1, 40) as usize;
    let all: Vec<Value> = statuses
        .into_iter()
        .filter(|s| {
            tag.as_ref().is_none_or(|t| {
                s["tags"].as_array().is_some_and(|a| {
                    a.iter().any(|x| {
                        x["name"]
                            .as_str()
                            .is_some_and(|n| n.eq_ignore_ascii_case(t))
                    })
                })
            })
        })
        .collect();
    let page: Vec<Value> = if let Some(min) = param_u64(&p, "min_id") {
        let mut v: Vec<Value> = all
            .into_iter()
            .filter(|s| id_of(s) > min)
            .take(limit)
            .collect();
        v.reverse();
        v
    } else {
        let since = param_u64(&p, "since_id").unwrap_or(0);
        let max = param_u64(&p, "max_id").unwrap_or(u64::MAX);
        all.into_iter()
            .rev()
            .filter(|s| id_of(s) > since && id_of(s) < max)
            .take(limit)
            .collect()
    };
    let mut h = HeaderMap::new();
    h.insert("x-ratelimit-limit", HeaderValue::from_static("300"));
    h.insert("x-ratelimit-remaining", HeaderValue::from_static("299"));
    let reset = (chrono::Utc::now() + chrono::Duration::minutes(5)).to_rfc3339();
    if let Ok(v) = HeaderValue::from_str(&reset) {
        h.insert("x-ratelimit-reset", v);
    }
    if let (Some(newest), Some(oldest)) = (page.first(), page.last()) {
        let host = req_headers
            .get("host")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("127.0.0.1");
        let origin = match &fault {
            Some(Fault::LinkTo(o)) => o.trim_end_matches('/').to_string(),
            _ => format!("http://{host}"),
        };
        let link = format!(
            "<{origin}{path}?limit={limit}&max_id={}>; rel=\"next\", <{origin}{path}?limit={limit}&min_id={}>; rel=\"prev\"",
            id_of(oldest),
            id_of(newest)
        );
        if let Ok(v) = HeaderValue::from_str(&link) {
            h.insert("link", v);
        }
    }
    finish(Value::Array(page), h, fault)
}

async fn search(
    State(s): Shared,
    headers: HeaderMap,
    Query(p): Query<HashMap<String, String>>,
) -> Response {
    let authorized = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("Bearer ") && v.len() > 7);
    let (fault, _, tweets) = take(&s);
    if !authorized {
        return fault_response(&Fault::Unauthorized, Api::X)
            .unwrap_or_else(|| StatusCode::UNAUTHORIZED.into_response());
    }
    if let Some(r) = fault.as_ref().and_then(|f| fault_response(f, Api::X)) {
        return r;
    }
    let max = param_u64(&p, "max_results").unwrap_or(10).clamp(10, 100) as usize;
    let since = param_u64(&p, "since_id").unwrap_or(0);
    let skip = p
        .get("next_token")
        .and_then(|t| t.strip_prefix('p'))
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(0);
    let matching: Vec<Value> = tweets
        .into_iter()
        .rev()
        .filter(|t| id_of(t) > since)
        .collect();
    let page: Vec<Value> = matching.iter().skip(skip).take(max).cloned().collect();
    let mut meta = json!({ "result_count": page.len() });
    if let (Some(n), Some(o)) = (matching.first(), matching.last()) {
        meta["newest_id"] = id_of(n).to_string().into();
        meta["oldest_id"] = id_of(o).to_string().into();
    }
    if skip + max < matching.len() {
        meta["next_token"] = format!("p{}", skip + max).into();
    }
    let mut body = json!({ "meta": meta });
    if !page.is_empty() {
        body["data"] = Value::Array(page);
    }
    if fault == Some(Fault::ErrorInBody) {
        body["errors"] = json!([{
            "title": "Not Found Error",
            "detail": "Could not find tweet with referenced_tweets.id: [1].",
            "type": "https://api.twitter.com/2/problems/resource-not-found"
        }]);
    }
    let mut h = HeaderMap::new();
    h.insert("x-rate-limit-limit", HeaderValue::from_static("450"));
    h.insert("x-rate-limit-remaining", HeaderValue::from_static("449"));
    let reset = (chrono::Utc::now() + chrono::Duration::minutes(15)).timestamp();
    if let Ok(v) = HeaderValue::from_str(&reset.to_string()) {
        h.insert("x-rate-limit-reset", v);
    }
    finish(body, h, fault)
}
