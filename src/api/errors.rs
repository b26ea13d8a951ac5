//! Every answer that is not a success is JSON: `{"error": "<what>: <why>"}`
//! (plus `"param"` when a request parameter is at fault). The handlers
//! build [`ApiError`]s; the framework's own refusals (404, 405, 408, 413,
//! load shedding) get the same shape from [`json_errors`], so a client never
//! has to guess how to read a failure.

use axum::extract::Request;
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use farol_indexer::params::{echo, ParamError};
use farol_indexer::IndexError;
use serde_json::json;

/// A refused or failed request.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    /// The request parameter at fault, if one is.
    param: Option<String>,
    /// `<what>: <why>`.
    message: String,
    retry_after_s: Option<u64>,
}

impl ApiError {
    /// An error about `what` (a parameter, the path, the method…).
    pub fn new(status: StatusCode, what: &str, why: impl std::fmt::Display) -> Self {
        ApiError {
            status,
            param: None,
            message: format!("{what}: {why}"),
            retry_after_s: None,
        }
    }

    /// An error about the request parameter `param`.
    pub fn param(status: StatusCode, param: &str, why: impl std::fmt::Display) -> Self {
        let mut e = ApiError::new(status, &echo(param), why);
        e.param = Some(echo(param));
        e
    }

    /// Adds a `Retry-After` header.
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after_s = Some(seconds);
        self
    }

    /// An index failure: a bad query text is the user's (400 naming `q`);
    /// anything else is ours, logged in full and answered without detail.
    pub fn index(e: IndexError) -> Self {
        match e {
            IndexError::Query(why) => ApiError::param(StatusCode::BAD_REQUEST, "q", why),
            other => {
                tracing::error!(error = %other, "index query failed");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "index",
                    "unavailable; see the server log",
                )
            }
        }
    }
}

impl From<ParamError> for ApiError {
    fn from(e: ParamError) -> Self {
        ApiError::param(StatusCode::BAD_REQUEST, &e.param, e.reason)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = match &self.param {
            Some(p) => json!({ "error": self.message, "param": p }),
            None => json!({ "error": self.message }),
        };
        let mut r = (self.status, Json(body)).into_response();
        if let Some(s) = self.retry_after_s {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        r
    }
}

/// The router's fallback: no such route.
pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "path",
        format!("no route for '{}'", echo(uri.path())),
    )
}

/// A route exists, but not for this method (axum adds `Allow`).
pub async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method",
        format!(
            "{} is not allowed on '{}'",
            echo(method.as_str()),
            echo(uri.path())
        ),
    )
}

/// Gives every error response that is not already JSON a JSON body saying
/// what went wrong, keeping its status and headers (`Allow`, `Retry-After`).
pub async fn json_errors(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return resp;
    }
    let (what, why) = match status {
        StatusCode::REQUEST_TIMEOUT => ("request", "the request was not received in time"),
        StatusCode::PAYLOAD_TOO_LARGE => ("body", "the request body is too large"),
        StatusCode::SERVICE_UNAVAILABLE => ("request", "not answered in time; try again"),
        s => ("request", s.canonical_reason().unwrap_or("refused")),
    };
    let (mut parts, _) = resp.into_parts();
    let mut fresh = ApiError::new(status, what, why).into_response();
    parts.headers.remove(header::CONTENT_LENGTH);
    if let Some(ct) = fresh.headers().get(header::CONTENT_TYPE).cloned() {
        parts.headers.insert(header::CONTENT_TYPE, ct);
    }
    *fresh.headers_mut() = parts.headers;
    fresh
}
