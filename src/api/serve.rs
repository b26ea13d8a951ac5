//! The HTTP/1 connection loop. `axum::serve` offers no connection-level
//! limits, so connections are served with hyper directly: a header-read
//! timeout (which also ends idle keep-alive connections), a cap on the
//! request head size (answered in JSON by [`HeadGuard`], where hyper would
//! answer with an empty body), a cap on open connections, the peer address
//! for admin checks, and a graceful stop that lets requests in progress finish.

use super::limits::{HEADER_READ_TIMEOUT, MAX_CONNECTIONS, MAX_HEAD_BYTES};
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// Serves `app` on `listener` until `stop` completes, then stops accepting
/// and waits up to `grace` for requests in progress.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    stop: impl Future<Output = ()>,
    grace: Duration,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        // Above the guard's limit, so the guard always answers first.
        .max_buf_size(MAX_HEAD_BYTES + 16 * 1024)
        .keep_alive(true);
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::pin!(stop);
    loop {
        let slot = tokio::select! {
            s = slots.clone().acquire_owned() => match s {
                Ok(s) => s,
                Err(_) => break,
            },
            _ = &mut stop => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before
                    // it was accepted: wait a little instead of spinning.
                    tracing::warn!(error = %e, "accepting an API connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        let svc = app
            .clone()
            .map_request(move |mut req: axum::http::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                req
            });
        let conn = http.serve_connection(
            TokioIo::new(HeadGuard::new(stream)),
            TowerToHyperService::new(svc),
        );
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "API connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("API connections still open after {grace:?}; closing them");
    }
}

/// True when `addr` can only be reached from this machine.
pub fn is_loopback(addr: &SocketAddr) -> bool {
    addr.ip().to_canonical().is_loopback()
}

/// Watches the bytes a client sends: more than [`MAX_HEAD_BYTES`] since the
/// end of the last request head (`\r\n\r\n`) without another is a head too
/// large. The guard then answers 431 with a JSON body itself and ends the
/// connection; hyper, which would otherwise answer with an empty 431 or 414,
/// sees only the end of the stream (and answers nothing).
pub struct HeadGuard<T> {
    inner: T,
    /// Bytes since the last `\r\n\r\n` (request bodies included).
    since_head: usize,
    /// The last four bytes seen.
    window: u32,
    /// Set once tripped: how much of the reply is written.
    replied: Option<usize>,
}

const CRLFCRLF: u32 = u32::from_be_bytes(*b"\r\n\r\n");

impl<T> HeadGuard<T> {
    /// Guards `inner`.
    pub fn new(inner: T) -> Self {
        HeadGuard {
            inner,
            since_head: 0,
            window: 0,
            replied: None,
        }
    }

    fn reply() -> &'static [u8] {
        static REPLY: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        REPLY.get_or_init(|| {
            let body = serde_json::json!({
                "error": format!(
                    "request: the request head is larger than {MAX_HEAD_BYTES} bytes"
                )
            })
            .to_string();
            format!(
                "HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )
            .into_bytes()
        })
    }

    /// Counts `bytes`; true when the limit is passed.
    fn scan(&mut self, bytes: &[u8]) -> bool {
        for b in bytes {
            self.window = (self.window << 8) | u32::from(*b);
            if self.window == CRLFCRLF {
                self.since_head = 0;
            } else {
                self.since_head += 1;
                if self.since_head > MAX_HEAD_BYTES {
                    return true;
                }
            }
        }
        false
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncRead for HeadGuard<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        if this.replied.is_none() {
            let before = buf.filled().len();
            ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
            if !this.scan(&buf.filled()[before..]) {
                return Poll::Ready(Ok(()));
            }
            // Withhold what was read: hyper sees the end of the stream.
            buf.set_filled(before);
            this.replied = Some(0);
            tracing::debug!("request head too large; answered 431");
        }
        let reply = Self::reply();
        while let Some(done) = this.replied.filter(|d| *d < reply.len()) {
            match ready!(Pin::new(&mut this.inner).poll_write(cx, &reply[done..])) {
                Ok(0) | Err(_) => break,
                Ok(n) => this.replied = Some(done + n),
            }
        }
        let _ = Pin::new(&mut this.inner).poll_flush(cx);
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for HeadGuard<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_head_over_the_limit_gets_a_json_431_and_the_end_of_the_stream() {
        let (client, server) = tokio::io::duplex(1 << 20);
        let mut guard = HeadGuard::new(server);
        let (mut c_read, mut c_write) = tokio::io::split(client);
        let ok = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        c_write.write_all(ok).await.unwrap();
        let mut got = vec![0u8; ok.len()];
        guard.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, ok);
        // Under the limit since the last head end: passed through.
        let line = vec![b'a'; MAX_HEAD_BYTES];
        c_write.write_all(&line).await.unwrap();
        let mut seen = vec![0u8; MAX_HEAD_BYTES];
        guard.read_exact(&mut seen).await.unwrap();
        // One byte more: withheld, and the guard answers.
        c_write.write_all(b"a").await.unwrap();
        let mut rest = Vec::new();
        assert_eq!(guard.read_to_end(&mut rest).await.unwrap(), 0);
        drop(guard);
        let mut reply = String::new();
        c_read.read_to_string(&mut reply).await.unwrap();
        assert!(reply.starts_with("HTTP/1.1 431 "), "{reply}");
        let body: serde_json::Value =
            serde_json::from_str(reply.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        assert!(body["error"].as_str().unwrap().starts_with("request:"));
    }
}
