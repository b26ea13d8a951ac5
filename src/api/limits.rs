//! What one client, or many, may cost the process: connection and request
//! timeouts, request size limits, and concurrency limits that shed load
//! (503 + `Retry-After`) instead of queueing it, so memory and sockets stay
//! bounded whatever arrives. The numbers are documented in the README's API
//! section; change them together.

use super::errors::ApiError;
use axum::error_handling::HandleErrorLayer;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use std::time::Duration;
use tower::limit::ConcurrencyLimitLayer;
use tower::load_shed::LoadShedLayer;
use tower::{BoxError, ServiceBuilder};

/// A client must send a whole request head within this time; it is also
/// how long an idle keep-alive connection is kept open waiting for the next
/// request (hyper's header-read timer starts as soon as it waits for one).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// A request body must arrive within this time.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// A request must be answered within this time (503 otherwise).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Request heads larger than this are refused at the connection (431 with a
/// JSON body, before the request reaches the router).
pub const MAX_HEAD_BYTES: usize = 48 * 1024;
/// Longest path and query accepted (414 with a JSON body).
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// Largest request body accepted (the API takes no bodies; 413).
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// Open connections at most; further clients wait in the listen backlog.
pub const MAX_CONNECTIONS: usize = 512;
/// Requests in progress at most, over all routes; more are shed.
pub const MAX_IN_FLIGHT: usize = 256;
/// `/search` requests in progress at most; more are shed. Each holds up to
/// `MAX_SEARCH_BYTES` of documents, so this bounds search memory.
pub const MAX_CONCURRENT_SEARCHES: usize = 4;
/// `/trends` requests in progress at most; more are shed.
pub const MAX_CONCURRENT_TRENDS: usize = 16;
/// What a shed request is told to wait.
pub const RETRY_AFTER_S: u64 = 1;

/// `route` running at most `limit` requests at once; the rest are answered
/// at once with 503 and `Retry-After`.
pub fn shed<S>(route: MethodRouter<S>, limit: usize, what: &'static str) -> MethodRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    route.layer(
        ServiceBuilder::new()
            .layer(HandleErrorLayer::new(move |e: BoxError| async move {
                overloaded(what, limit, e)
            }))
            .layer(LoadShedLayer::new())
            .layer(ConcurrencyLimitLayer::new(limit)),
    )
}

/// The answer to a request refused by a concurrency limit.
pub fn overloaded(what: &str, limit: usize, e: BoxError) -> Response {
    if e.is::<tower::load_shed::error::Overloaded>() {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "request",
            format!("{limit} {what} requests are already running; retry after {RETRY_AFTER_S} s"),
        )
        .retry_after(RETRY_AFTER_S)
        .into_response()
    } else {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "request", e).into_response()
    }
}

/// Refuses paths and queries longer than [`MAX_URI_BYTES`] with a 414.
pub async fn uri_limit(req: Request, next: Next) -> Response {
    let len = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if len > MAX_URI_BYTES {
        return ApiError::new(
            StatusCode::URI_TOO_LONG,
            "uri",
            format!("{len} bytes; at most {MAX_URI_BYTES} are accepted"),
        )
        .into_response();
    }
    next.run(req).await
}
