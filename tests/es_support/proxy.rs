//! A fault-injecting HTTP proxy between Farol and a real index server.
//!
//! Every request is forwarded unchanged, except `POST /_bulk`: by the rules
//! a test gives, a whole bulk request is answered with an error status
//! (429, 503) without reaching the server, or single items are held back
//! and answered with a per-item 429 (`es_rejected_execution_exception`, what
//! a busy Elasticsearch answers for an item), while the rest of the request
//! goes to the server and the server's own answers for them are merged back
//! in request order; or a whole request is forwarded and the connection
//! is cut while its answer is sent (the server stored the documents, the
//! client never learns it). So the server stores exactly what got
//! through, and the proxy counts what it refused, what it forwarded and
//! whose answer it cut, by document id.

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Answers a whole bulk request (by its number, from 1) with this status
/// instead of forwarding it.
pub type WholeFault = Box<dyn Fn(u64) -> Option<u16> + Send + Sync>;
/// Holds one item back with a per-item 429: (bulk number, position in the
/// request, document id, how many times the id was in earlier bulks).
pub type ItemFault = Box<dyn Fn(u64, usize, &str, u32) -> bool + Send + Sync>;

/// Forwards a whole bulk request (by its number) and cuts the connection
/// halfway through the server's answer.
pub type LoseAnswer = Box<dyn Fn(u64) -> bool + Send + Sync>;

/// The rules.
pub struct Faults {
    /// Whole-request faults.
    pub whole: WholeFault,
    /// Answers lost after the server stored the request (asked only for
    /// requests not refused whole).
    pub lose_answer: LoseAnswer,
    /// Item faults (asked only for requests not refused whole).
    pub item: ItemFault,
}

/// One bulk request forwarded (partly) to the server.
#[derive(Debug, Clone, Default)]
pub struct Forwarded {
    /// Ids sent to the server.
    pub sent: Vec<String>,
    /// Ids held back with a per-item 429.
    pub withheld: Vec<String>,
    /// Ids the server itself answered with an error status (>= 300), with it.
    pub server_errors: Vec<(String, u64)>,
}

/// What the proxy saw and did.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Bulk requests received.
    pub bulks: u64,
    /// Bulk requests refused whole, by status.
    pub refused: HashMap<u16, u64>,
    /// Documents in the requests refused whole.
    pub refused_docs: u64,
    /// Documents held back with a per-item 429.
    pub withheld_docs: u64,
    /// Documents whose request reached the server but whose answer was cut.
    pub lost_docs: u64,
    /// Times each document id was in a request whose answer was cut.
    pub lost: HashMap<String, u32>,
    /// Times each document id reached the server.
    pub forwarded: HashMap<String, u32>,
    /// Every bulk request that reached the server, in order.
    pub requests: Vec<Forwarded>,
}

struct Shared {
    upstream: String,
    http: reqwest::Client,
    faults: Faults,
    stats: Mutex<Stats>,
    /// Times each id was in a bulk request so far.
    seen: Mutex<HashMap<String, u32>>,
}

/// A running proxy (stopped when dropped).
pub struct Proxy {
    /// Its base URL.
    pub url: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Starts a proxy to `upstream` on a free 127.0.0.1 port, on the
    /// current tokio runtime.
    pub async fn start(upstream: &str, faults: Faults) -> Proxy {
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_string(),
            http: reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("http client"),
            faults,
            stats: Mutex::default(),
            seen: Mutex::default(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the proxy");
        let url = format!("http://{}", listener.local_addr().expect("proxy address"));
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Proxy { url, shared, task }
    }

    /// A copy of the counters so far.
    pub fn stats(&self) -> Stats {
        self.shared.stats.lock().expect("stats").clone()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn json_response(status: u16, body: &Value) -> Response {
    let mut r = Response::new(Body::from(body.to_string()));
    *r.status_mut() = StatusCode::from_u16(status).expect("status");
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// The body Elasticsearch gives a whole request it refuses.
fn refusal(status: u16) -> Value {
    let (ty, reason) = match status {
        429 => (
            "es_rejected_execution_exception",
            "rejected execution of coordinating operation (injected by the test proxy)",
        ),
        _ => (
            "unavailable_shards_exception",
            "primary shard is not active (injected by the test proxy)",
        ),
    };
    json!({"error": {"root_cause": [{"type": ty, "reason": reason}], "type": ty, "reason": reason}, "status": status})
}

/// One bulk item: its action line, its source line (none for `delete`).
struct Item {
    op: String,
    index: String,
    id: String,
    lines: Vec<u8>,
}

fn parse_bulk(body: &[u8]) -> Option<Vec<Item>> {
    let mut lines = body
        .split(|b| *b == b'\n')
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace));
    let mut items = Vec::new();
    while let Some(action) = lines.next() {
        let v: Value = serde_json::from_slice(action).ok()?;
        let (op, meta) = v.as_object()?.iter().next()?;
        let mut raw = action.to_vec();
        raw.push(b'\n');
        if op != "delete" {
            raw.extend_from_slice(lines.next()?);
            raw.push(b'\n');
        }
        items.push(Item {
            op: op.clone(),
            index: meta["_index"].as_str().unwrap_or("").to_string(),
            id: meta["_id"].as_str().unwrap_or("").to_string(),
            lines: raw,
        });
    }
    Some(items)
}

async fn forward(
    s: &Shared,
    method: Method,
    path: &str,
    content_type: Option<HeaderValue>,
    body: Vec<u8>,
) -> Result<(u16, Vec<u8>, Option<HeaderValue>), String> {
    let m = reqwest::Method::from_bytes(method.as_str().as_bytes()).map_err(|e| e.to_string())?;
    let mut r = s.http.request(m, format!("{}{path}", s.upstream));
    if let Some(ct) = content_type {
        r = r.header("content-type", ct.as_bytes());
    }
    if !body.is_empty() {
        r = r.body(body);
    }
    let resp = r.send().await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok());
    let bytes = resp.bytes().await.map_err(|e| e.to_string())?;
    Ok((status, bytes.to_vec(), ct))
}

async fn handle(State(s): State<Arc<Shared>>, req: Request) -> Response {
    let method = req.method().clone();
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let ct = req.headers().get(header::CONTENT_TYPE).cloned();
    let body = match to_bytes(req.into_body(), usize::MAX).await {
        Ok(b) => b.to_vec(),
        Err(e) => return json_response(400, &json!({"error": e.to_string()})),
    };
    let is_bulk = method == Method::POST && req_path_is_bulk(&path);
    let answer = if is_bulk {
        bulk(&s, method, &path, ct, body).await
    } else {
        forward(&s, method, &path, ct, body)
            .await
            .map(|(st, b, ct)| (st, b, ct, false))
    };
    match answer {
        Ok((status, mut bytes, ct, cut)) => {
            let body = if cut {
                // Half the answer, then a failed body: hyper drops the
                // connection mid-answer.
                bytes.truncate(bytes.len() / 2);
                Body::new(CutBody(Some(bytes.into())))
            } else {
                Body::from(bytes)
            };
            let mut r = Response::new(body);
            *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            if let Some(ct) = ct {
                r.headers_mut().insert(header::CONTENT_TYPE, ct);
            }
            r
        }
        Err(e) => json_response(502, &json!({"error": format!("test proxy: {e}")})),
    }
}

/// A body that sends its bytes, then fails, so that the connection is
/// dropped before the answer is complete.
struct CutBody(Option<axum::body::Bytes>);

impl hyper::body::Body for CutBody {
    type Data = axum::body::Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        std::task::Poll::Ready(Some(match self.0.take() {
            Some(b) => Ok(hyper::body::Frame::data(b)),
            None => Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                "answer cut by the test proxy",
            )),
        }))
    }
}

fn req_path_is_bulk(path: &str) -> bool {
    let p = path.split('?').next().unwrap_or("");
    p == "/_bulk" || p.ends_with("/_bulk")
}

/// An answer: status, body, content type, and whether to cut it.
type Answer = (u16, Vec<u8>, Option<HeaderValue>, bool);

async fn bulk(
    s: &Shared,
    method: Method,
    path: &str,
    ct: Option<HeaderValue>,
    body: Vec<u8>,
) -> Result<Answer, String> {
    let Some(items) = parse_bulk(&body) else {
        return forward(s, method, path, ct, body)
            .await
            .map(|(st, b, ct)| (st, b, ct, false));
    };
    let n = {
        let mut st = s.stats.lock().map_err(|e| e.to_string())?;
        st.bulks += 1;
        st.bulks
    };
    // How often each id was seen before this request.
    let before: Vec<u32> = {
        let mut seen = s.seen.lock().map_err(|e| e.to_string())?;
        items
            .iter()
            .map(|i| {
                let c = seen.entry(i.id.clone()).or_insert(0);
                *c += 1;
                *c - 1
            })
            .collect()
    };
    if let Some(status) = (s.faults.whole)(n) {
        let mut st = s.stats.lock().map_err(|e| e.to_string())?;
        *st.refused.entry(status).or_insert(0) += 1;
        st.refused_docs += items.len() as u64;
        let ct = HeaderValue::from_static("application/json");
        return Ok((
            status,
            refusal(status).to_string().into_bytes(),
            Some(ct),
            false,
        ));
    }
    if (s.faults.lose_answer)(n) {
        let (status, bytes, rct) = forward(s, method, path, ct, body).await?;
        let mut st = s.stats.lock().map_err(|e| e.to_string())?;
        st.lost_docs += items.len() as u64;
        for i in &items {
            *st.forwarded.entry(i.id.clone()).or_insert(0) += 1;
            *st.lost.entry(i.id.clone()).or_insert(0) += 1;
        }
        return Ok((status, bytes, rct, true));
    }
    let withheld: Vec<bool> = items
        .iter()
        .enumerate()
        .map(|(k, i)| (s.faults.item)(n, k, &i.id, before[k]))
        .collect();
    let mut sent_body = Vec::with_capacity(body.len());
    for (i, w) in items.iter().zip(&withheld) {
        if !*w {
            sent_body.extend_from_slice(&i.lines);
        }
    }
    let mut upstream_items: Vec<Value> = Vec::new();
    let mut took = 0;
    if !sent_body.is_empty() {
        let (status, bytes, rct) = forward(s, method, path, ct, sent_body).await?;
        let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let got = v["items"].as_array().cloned().unwrap_or_default();
        let sent = withheld.iter().filter(|w| !**w).count();
        if status >= 300 || got.len() != sent {
            // Not an answer to merge into: passed on as it is.
            return Ok((status, bytes, rct, false));
        }
        took = v["took"].as_u64().unwrap_or(0);
        upstream_items = got;
    }
    let mut record = Forwarded::default();
    let mut merged = Vec::with_capacity(items.len());
    let mut from_server = upstream_items.into_iter();
    for (i, w) in items.iter().zip(&withheld) {
        if *w {
            record.withheld.push(i.id.clone());
            merged.push(json!({ i.op.clone(): {
                "_index": i.index, "_id": i.id, "status": 429,
                "error": {"type": "es_rejected_execution_exception",
                          "reason": "rejected execution of write operation (injected by the test proxy)"}}}));
        } else {
            record.sent.push(i.id.clone());
            let item = from_server.next().unwrap_or(Value::Null);
            let status = item
                .as_object()
                .and_then(|o| o.values().next())
                .and_then(|x| x["status"].as_u64())
                .unwrap_or(0);
            if status >= 300 {
                record.server_errors.push((i.id.clone(), status));
            }
            merged.push(item);
        }
    }
    let errors = merged.iter().any(|m| {
        m.as_object()
            .and_then(|o| o.values().next())
            .and_then(|x| x["status"].as_u64())
            .is_some_and(|s| s >= 300)
    });
    {
        let mut st = s.stats.lock().map_err(|e| e.to_string())?;
        st.withheld_docs += record.withheld.len() as u64;
        for id in &record.sent {
            *st.forwarded.entry(id.clone()).or_insert(0) += 1;
        }
        st.requests.push(record);
    }
    let answer = json!({"took": took, "errors": errors, "items": merged});
    let ct = HeaderValue::from_static("application/json");
    Ok((200, answer.to_string().into_bytes(), Some(ct), false))
}
