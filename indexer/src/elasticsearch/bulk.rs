//! Bulk writes: documents cut into requests bounded by count and bytes, a
//! bounded number of requests in flight, and retries with jittered
//! exponential backoff (429, 5xx and connection errors). Every item of every
//! bulk answer is looked at: only the items that failed for a retryable
//! reason are sent again; items rejected for good (mapping errors, other
//! 4xx) are handed back to the caller with their reason; a 409 (a `create`
//! of a document that exists, or an external-version conflict) is a
//! duplicate or a stale replay and counts as written.

use super::client::{short, EsClient, EsError};
use backon::{BackoffBuilder, ExponentialBuilder};
use elasticsearch::http::Method;
use farol_common::time::Millis;
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// The bulk action of one document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Create or replace.
    Index,
    /// Create only; an existing document is a duplicate (409).
    Create,
}

/// One document to write.
#[derive(Debug, Clone)]
pub struct BulkOp {
    /// Create or replace.
    pub action: Action,
    /// Target index.
    pub index: String,
    /// Deterministic document id.
    pub id: String,
    /// The document, serialized.
    pub body: String,
    /// Event time, for dead-lettering a rejected document.
    pub ts: Millis,
    /// Source name, for dead-lettering a rejected document.
    pub source: String,
}

impl BulkOp {
    fn header(&self) -> String {
        let action = match self.action {
            Action::Index => "index",
            Action::Create => "create",
        };
        serde_json::json!({ action: {"_index": self.index, "_id": self.id} }).to_string()
    }

    fn bytes(&self) -> usize {
        self.body.len() + self.index.len() + self.id.len() + 40
    }
}

/// What the server said about one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemOutcome {
    /// Written.
    Written,
    /// Already there (409): a duplicate or a stale replay.
    Duplicate,
    /// Failed for a reason worth retrying (429, 5xx).
    Retry(String),
    /// Rejected for good: `type: reason`.
    Rejected(String),
}

/// Classifies one item of a bulk answer (`{"index": {...}}`).
pub fn classify(item: &Value) -> ItemOutcome {
    let Some(inner) = item.as_object().and_then(|o| o.values().next()) else {
        return ItemOutcome::Retry("item missing from the bulk answer".into());
    };
    let status = inner["status"].as_u64().unwrap_or(0);
    let reason = || {
        let e = &inner["error"];
        format!(
            "{}: {}",
            e["type"].as_str().unwrap_or("error"),
            short(e["reason"].as_str().unwrap_or(""))
        )
    };
    match status {
        200..=299 => ItemOutcome::Written,
        409 => ItemOutcome::Duplicate,
        429 | 500..=599 => ItemOutcome::Retry(reason()),
        _ => ItemOutcome::Rejected(reason()),
    }
}

/// Limits of bulk writing.
#[derive(Debug, Clone, Copy)]
pub struct BulkLimits {
    /// Most documents per request.
    pub max_docs: usize,
    /// Most bytes per request.
    pub max_bytes: usize,
    /// Requests in flight.
    pub concurrency: usize,
    /// How long one request keeps being retried.
    pub retry_for: Duration,
}

/// The outcome of writing a set of documents.
#[derive(Debug, Default)]
pub struct BulkReport {
    /// Documents written.
    pub written: usize,
    /// Documents that already existed.
    pub duplicates: usize,
    /// Documents sent again after a retryable failure of their item or of
    /// their whole request (each resend of each document counts).
    pub retried: usize,
    /// Documents rejected for good, with the reason.
    pub rejected: Vec<(BulkOp, String)>,
}

/// Cuts `ops` into requests within the limits (a single document larger
/// than `max_bytes` still goes alone).
pub fn chunks(ops: Vec<BulkOp>, limits: &BulkLimits) -> Vec<Vec<BulkOp>> {
    let mut out = Vec::new();
    let mut cur = Vec::new();
    let mut bytes = 0;
    for op in ops {
        let b = op.bytes();
        if !cur.is_empty() && (cur.len() >= limits.max_docs || bytes + b > limits.max_bytes) {
            out.push(std::mem::take(&mut cur));
            bytes = 0;
        }
        bytes += b;
        cur.push(op);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Writes every document; fails only when a request kept failing for
/// longer than `retry_for` or failed for a reason that retrying cannot fix.
pub async fn write_all(
    client: &EsClient,
    ops: Vec<BulkOp>,
    limits: &BulkLimits,
) -> Result<BulkReport, EsError> {
    let sem = Arc::new(Semaphore::new(limits.concurrency.max(1)));
    let mut set = tokio::task::JoinSet::new();
    for chunk in chunks(ops, limits) {
        let permit = sem
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| EsError::Transport(e.to_string()))?;
        let client = client.clone();
        let limits = *limits;
        set.spawn(async move {
            let r = write_chunk(&client, chunk, &limits).await;
            drop(permit);
            r
        });
    }
    let mut report = BulkReport::default();
    let mut first_err = None;
    while let Some(r) = set.join_next().await {
        match r {
            Ok(Ok(r)) => {
                report.written += r.written;
                report.duplicates += r.duplicates;
                report.retried += r.retried;
                report.rejected.extend(r.rejected);
            }
            Ok(Err(e)) => {
                first_err.get_or_insert(e);
            }
            Err(e) => {
                first_err.get_or_insert(EsError::Transport(format!("bulk task: {e}")));
            }
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(report),
    }
}

fn backoff() -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_jitter()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(5))
        .without_max_times()
        .build()
}

async fn write_chunk(
    client: &EsClient,
    mut ops: Vec<BulkOp>,
    limits: &BulkLimits,
) -> Result<BulkReport, EsError> {
    let started = Instant::now();
    let mut delays = backoff();
    let mut report = BulkReport::default();
    loop {
        let mut body = Vec::with_capacity(ops.iter().map(BulkOp::bytes).sum());
        for op in &ops {
            body.extend_from_slice(op.header().as_bytes());
            body.push(b'\n');
            body.extend_from_slice(op.body.as_bytes());
            body.push(b'\n');
        }
        let answer = match client.raw(Method::Post, "/_bulk", Some(body), true).await {
            Ok((status, v)) if status < 300 => Ok(v),
            Ok((status, v)) => Err(EsError::Status {
                status,
                what: "POST /_bulk".into(),
                body: short(&v.to_string()),
            }),
            Err(e) => Err(e),
        };
        let retry: Vec<BulkOp> = match answer {
            Ok(v) => {
                let items = v["items"].as_array().cloned().unwrap_or_default();
                if items.len() != ops.len() {
                    return Err(EsError::Answer(
                        "POST /_bulk".into(),
                        format!("{} items for {} documents", items.len(), ops.len()),
                    ));
                }
                let mut retry = Vec::new();
                for (op, item) in ops.into_iter().zip(items.iter()) {
                    match classify(item) {
                        ItemOutcome::Written => report.written += 1,
                        ItemOutcome::Duplicate => report.duplicates += 1,
                        ItemOutcome::Retry(why) => {
                            tracing::debug!(id = %op.id, reason = %why, "bulk item retried");
                            retry.push(op);
                        }
                        ItemOutcome::Rejected(why) => report.rejected.push((op, why)),
                    }
                }
                retry
            }
            Err(e) if e.retryable() => {
                tracing::warn!(error = %e, documents = ops.len(), "bulk request failed; retrying");
                if started.elapsed() >= limits.retry_for {
                    return Err(e);
                }
                // Every document of the request is sent again.
                ops
            }
            Err(e) => return Err(e),
        };
        if retry.is_empty() {
            return Ok(report);
        }
        if started.elapsed() >= limits.retry_for {
            return Err(EsError::Transport(format!(
                "{} documents still failing after {:?}",
                retry.len(),
                limits.retry_for
            )));
        }
        // Counted as they are sent again.
        report.retried += retry.len();
        super::es_metrics().retried.inc_by(retry.len() as u64);
        ops = retry;
        let d = delays.next().unwrap_or(Duration::from_secs(5));
        tokio::time::sleep(d).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn op(id: &str, body_len: usize) -> BulkOp {
        BulkOp {
            action: Action::Index,
            index: "i".into(),
            id: id.into(),
            body: "x".repeat(body_len),
            ts: 0,
            source: "s".into(),
        }
    }

    #[test]
    fn items_are_classified_by_status() {
        let ok = json!({"index": {"status": 201}});
        let dup = json!({"create": {"status": 409, "error": {"type": "version_conflict_engine_exception"}}});
        let busy = json!({"index": {"status": 429, "error": {"type": "es_rejected_execution_exception", "reason": "queue full"}}});
        let down = json!({"index": {"status": 503, "error": {"type": "unavailable_shards_exception", "reason": "x"}}});
        let bad = json!({"index": {"status": 400, "error": {"type": "document_parsing_exception", "reason": "failed to parse field [level]"}}});
        assert_eq!(classify(&ok), ItemOutcome::Written);
        assert_eq!(classify(&dup), ItemOutcome::Duplicate);
        assert!(matches!(classify(&busy), ItemOutcome::Retry(_)));
        assert!(matches!(classify(&down), ItemOutcome::Retry(_)));
        assert_eq!(
            classify(&bad),
            ItemOutcome::Rejected(
                "document_parsing_exception: failed to parse field [level]".into()
            )
        );
    }

    #[test]
    fn chunks_respect_count_and_bytes() {
        let limits = BulkLimits {
            max_docs: 3,
            max_bytes: 1000,
            concurrency: 1,
            retry_for: Duration::from_secs(1),
        };
        let ops: Vec<BulkOp> = (0..7).map(|i| op(&i.to_string(), 10)).collect();
        let sizes: Vec<usize> = chunks(ops, &limits).iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![3, 3, 1]);
        let ops: Vec<BulkOp> = (0..4).map(|i| op(&i.to_string(), 400)).collect();
        let sizes: Vec<usize> = chunks(ops, &limits).iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![2, 2]);
        let sizes: Vec<usize> = chunks(vec![op("big", 5000)], &limits)
            .iter()
            .map(Vec::len)
            .collect();
        assert_eq!(sizes, vec![1]);
    }
}
