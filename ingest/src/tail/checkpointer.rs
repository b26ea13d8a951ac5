//! The checkpointer task: moves the source's checkpoint to acknowledged
//! positions only, in batched atomic writes.

use super::*;

/// Applies acknowledged positions to the registry and writes it, batching
/// whatever arrived together into one atomic write.
pub(super) async fn checkpointer(
    path: PathBuf,
    mut registry: Registry,
    mut acks: mpsc::UnboundedReceiver<Position>,
    health: Health,
    component: String,
) {
    registry.expire(now_ms(), CHECKPOINT_MAX_AGE_MS);
    while let Some(first) = acks.recv().await {
        let mut batch = vec![first];
        while let Ok(p) = acks.try_recv() {
            batch.push(p);
        }
        let now = now_ms();
        for p in batch {
            let path_hint = registry
                .streams
                .get(&p.stream)
                .map(|e| e.path.clone())
                .unwrap_or_default();
            registry.advance(&p.stream, &path_hint, p.end, p.line_no, now);
        }
        let r = registry.clone();
        let p = path.clone();
        match tokio::task::spawn_blocking(move || r.save(&p)).await {
            Ok(Ok(())) => health.up(&component),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "checkpoint write failed");
                health.down(&component, e.to_string());
            }
            Err(e) => tracing::error!(error = %e, "checkpoint task failed"),
        }
    }
}
