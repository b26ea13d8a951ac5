//! Who may use `/admin/...` (BRIEF §1): with `FAROL_ADMIN_TOKEN` set, only
//! requests carrying `Authorization: Bearer <token>` (compared in constant
//! time); without it, only loopback peers that also name a loopback host, so
//! neither another machine nor a web page that rebinds a DNS name to
//! 127.0.0.1 can pause the pipeline. Also the admin handlers themselves.

use super::errors::ApiError;
use super::AppState;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use std::net::{IpAddr, SocketAddr};
use subtle::ConstantTimeEq;

/// The environment variable holding the admin token.
pub const TOKEN_ENV: &str = "FAROL_ADMIN_TOKEN";

/// How admin requests are authenticated.
#[derive(Clone)]
pub enum AdminAuth {
    /// A bearer token is required.
    Token(String),
    /// No token configured: loopback peers with a loopback `Host` only.
    LoopbackOnly,
}

impl AdminAuth {
    /// From `FAROL_ADMIN_TOKEN` (unset or empty: loopback only).
    pub fn from_env() -> Self {
        match std::env::var(TOKEN_ENV) {
            Ok(t) if !t.is_empty() => AdminAuth::Token(t),
            _ => AdminAuth::LoopbackOnly,
        }
    }

    /// `Ok` when the request may use admin routes.
    pub fn check(&self, peer: Option<SocketAddr>, headers: &HeaderMap) -> Result<(), ApiError> {
        match self {
            AdminAuth::Token(want) => {
                let given = headers
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| {
                        let (scheme, token) = v.trim().split_once(' ')?;
                        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
                    });
                match given {
                    Some(t) if bool::from(t.as_bytes().ct_eq(want.as_bytes())) => Ok(()),
                    Some(_) => Err(unauthorized("the bearer token is wrong")),
                    None => Err(unauthorized(&format!(
                        "admin routes need 'Authorization: Bearer' with the token in {TOKEN_ENV}"
                    ))),
                }
            }
            AdminAuth::LoopbackOnly => {
                if !peer.is_some_and(|p| p.ip().to_canonical().is_loopback()) {
                    return Err(forbidden(
                        "only loopback clients may use admin routes unless FAROL_ADMIN_TOKEN is set",
                    ));
                }
                let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
                if !host.is_some_and(is_loopback_host) {
                    return Err(forbidden(
                        "the Host header must name a loopback address (localhost, 127.0.0.1, [::1])",
                    ));
                }
                Ok(())
            }
        }
    }
}

fn unauthorized(why: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "authorization", why)
}

fn forbidden(why: &str) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "host", why)
}

/// True for `localhost`, `127.x.y.z` and `[::1]`, with or without a port.
pub fn is_loopback_host(host: &str) -> bool {
    let Ok(authority) = host.parse::<axum::http::uri::Authority>() else {
        return false;
    };
    if authority.as_str().contains('@') {
        return false;
    }
    let name = authority.host();
    if name.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let bare = name
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(name);
    bare.parse::<IpAddr>()
        .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

/// Middleware in front of every admin route.
pub async fn require_admin(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    match s.admin.check(peer, req.headers()) {
        Ok(()) => next.run(req).await,
        Err(e) => {
            tracing::warn!(peer = ?peer, "admin request refused");
            let mut r = e.into_response();
            if r.status() == StatusCode::UNAUTHORIZED {
                r.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            r
        }
    }
}

/// `GET /admin/index/write_block`
pub async fn get_write_block(State(s): State<AppState>) -> Response {
    Json(json!({ "write_block": *s.write_block.borrow() })).into_response()
}

/// `PUT /admin/index/write_block`: the pipeline pauses until it is cleared,
/// nothing is dropped (maintenance, backups of the data dir, or testing
/// backpressure). Refused while shutting down, which clears the block.
pub async fn set_write_block(State(s): State<AppState>) -> Response {
    let stopping = s.stopping.clone();
    let mut refused = false;
    s.write_block.send_if_modified(|b| {
        // Checked under the block's lock: shutdown raises `stopping` before
        // it clears the block, so a block can never outlive a shutdown.
        if *stopping.borrow() {
            refused = true;
            return false;
        }
        let changed = !*b;
        *b = true;
        changed
    });
    if refused {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "write_block",
            "shutting down; writes are being drained",
        )
        .into_response();
    }
    Json(json!({ "write_block": true })).into_response()
}

/// `DELETE /admin/index/write_block`
pub async fn clear_write_block(State(s): State<AppState>) -> Response {
    s.write_block.send_replace(false);
    Json(json!({ "write_block": false })).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(k.clone(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn status(r: Result<(), ApiError>) -> u16 {
        match r {
            Ok(()) => 200,
            Err(e) => e.into_response().status().as_u16(),
        }
    }

    #[test]
    fn loopback_hosts() {
        for h in [
            "localhost",
            "LOCALHOST:8080",
            "127.0.0.1",
            "127.1.2.3:80",
            "[::1]",
            "[::1]:8080",
        ] {
            assert!(is_loopback_host(h), "{h}");
        }
        for h in [
            "evil.example",
            "evil.example:8080",
            "localhost.evil.example",
            "127.0.0.1.nip.io",
            "10.0.0.1",
            "[::2]",
            "user@localhost",
            "",
            "::1",
        ] {
            assert!(!is_loopback_host(h), "{h}");
        }
    }

    #[test]
    fn without_a_token_only_loopback_peers_naming_loopback() {
        let a = AdminAuth::LoopbackOnly;
        let local: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let remote: SocketAddr = "192.0.2.7:5000".parse().unwrap();
        let v6: SocketAddr = "[::ffff:127.0.0.1]:5000".parse().unwrap();
        let ok = headers(&[(header::HOST, "localhost:8080")]);
        let evil = headers(&[(header::HOST, "evil.example")]);
        assert_eq!(status(a.check(Some(local), &ok)), 200);
        assert_eq!(status(a.check(Some(v6), &ok)), 200);
        assert_eq!(status(a.check(Some(local), &evil)), 403);
        assert_eq!(status(a.check(Some(local), &HeaderMap::new())), 403);
        assert_eq!(status(a.check(Some(remote), &ok)), 403);
        assert_eq!(status(a.check(None, &ok)), 403);
    }

    #[test]
    fn with_a_token_only_that_bearer_token() {
        let a = AdminAuth::Token("s3cret".into());
        let remote: SocketAddr = "192.0.2.7:5000".parse().unwrap();
        let with = |v: &str| headers(&[(header::AUTHORIZATION, v), (header::HOST, "evil")]);
        assert_eq!(status(a.check(Some(remote), &with("Bearer s3cret"))), 200);
        assert_eq!(status(a.check(Some(remote), &with("bearer  s3cret "))), 200);
        assert_eq!(status(a.check(Some(remote), &with("Bearer s3cre"))), 401);
        assert_eq!(status(a.check(Some(remote), &with("Bearer s3cretX"))), 401);
        assert_eq!(status(a.check(Some(remote), &with("Basic s3cret"))), 401);
        assert_eq!(status(a.check(Some(remote), &HeaderMap::new())), 401);
    }
}
