//! Crash-only supervision of the tasks the pipeline cannot run without (the
//! processors and the index sink). If one of them ends before shutdown —
//! by an error, a panic, or just returning — the others would wait forever
//! on a full partition; instead it is marked down in `/healthz` by name and
//! the process stops and exits non-zero, so that a restart resumes from the
//! last durable state.

use farol_common::health::Health;
use std::collections::HashMap;
use std::future::Future;
use tokio::task::{Id, JoinSet};

/// A supervised task that ended before shutdown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{component} stopped: {reason}")]
pub struct Failure {
    /// The health component it reports as.
    pub component: String,
    /// Why it ended.
    pub reason: String,
}

/// The supervised tasks.
pub struct Supervisor {
    tasks: JoinSet<anyhow::Result<()>>,
    names: HashMap<Id, (String, String)>,
    health: Health,
}

impl Supervisor {
    /// An empty supervisor reporting to `health`.
    pub fn new(health: Health) -> Self {
        Supervisor {
            tasks: JoinSet::new(),
            names: HashMap::new(),
            health,
        }
    }

    /// Spawns `task`, reported as health component `component` and named
    /// `what` in messages (e.g. `processor`, `partition 3`).
    pub fn spawn(
        &mut self,
        component: &str,
        what: String,
        task: impl Future<Output = anyhow::Result<()>> + Send + 'static,
    ) {
        let h = self.tasks.spawn(task);
        self.names.insert(h.id(), (component.to_string(), what));
    }

    /// Waits until a task ends (which, before shutdown, is a failure), marks
    /// its component down and returns why. Never returns with no tasks.
    pub async fn first_failure(&mut self) -> Failure {
        let Some(joined) = self.tasks.join_next_with_id().await else {
            return std::future::pending().await;
        };
        let (id, why) = match joined {
            Ok((id, Ok(()))) => (id, "ended unexpectedly".to_string()),
            Ok((id, Err(e))) => (id, format!("{e:#}")),
            Err(e) => (
                e.id(),
                if e.is_panic() {
                    format!("panicked: {}", panic_message(e.into_panic()))
                } else {
                    "was cancelled".to_string()
                },
            ),
        };
        let (component, what) = self
            .names
            .remove(&id)
            .unwrap_or_else(|| ("pipeline".into(), "a task".into()));
        let reason = if what == component {
            why
        } else {
            format!("{what} {why}")
        };
        self.health.down(&component, reason.clone());
        tracing::error!(%component, %reason, "a pipeline task stopped; shutting down");
        Failure { component, reason }
    }

    /// Waits for every remaining task (at shutdown); the first error wins.
    pub async fn join_all(mut self) -> anyhow::Result<()> {
        let mut first: Option<anyhow::Error> = None;
        while let Some(joined) = self.tasks.join_next_with_id().await {
            let err = match joined {
                Ok((_, Ok(()))) => continue,
                Ok((id, Err(e))) => e.context(self.describe(id)),
                Err(e) => anyhow::anyhow!("{} panicked", self.describe(e.id())),
            };
            first.get_or_insert(err);
        }
        first.map_or(Ok(()), Err)
    }

    fn describe(&self, id: Id) -> String {
        self.names
            .get(&id)
            .map_or_else(|| "a task".into(), |(_, what)| what.clone())
    }
}

fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_panicking_task_is_named_in_health() {
        let health = Health::default();
        let mut s = Supervisor::new(health.clone());
        s.spawn("index", "index".into(), std::future::pending());
        s.spawn("processor", "partition 2".into(), async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            panic!("boom")
        });
        let f = s.first_failure().await;
        assert_eq!(f.component, "processor");
        assert_eq!(f.reason, "partition 2 panicked: boom");
        assert_eq!(
            health.snapshot()["processor"],
            Err("partition 2 panicked: boom".to_string())
        );
    }

    #[tokio::test]
    async fn errors_and_early_returns_are_failures() {
        let health = Health::default();
        let mut s = Supervisor::new(health.clone());
        s.spawn("index", "index".into(), async {
            Err(anyhow::anyhow!("disk gone"))
        });
        let f = s.first_failure().await;
        assert_eq!(
            (f.component.as_str(), f.reason.as_str()),
            ("index", "disk gone")
        );
        let mut s = Supervisor::new(health.clone());
        s.spawn("processor", "partition 0".into(), async { Ok(()) });
        let f = s.first_failure().await;
        assert_eq!(f.reason, "partition 0 ended unexpectedly");
        assert!(health.snapshot()["processor"].is_err());
    }

    #[tokio::test]
    async fn join_all_reports_the_first_error_after_waiting_for_all() {
        let mut s = Supervisor::new(Health::default());
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let d = done.clone();
        s.spawn("processor", "partition 0".into(), async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            d.store(true, std::sync::atomic::Ordering::SeqCst);
            Ok(())
        });
        s.spawn("index", "index".into(), async {
            Err(anyhow::anyhow!("commit failed"))
        });
        let e = s.join_all().await.unwrap_err();
        assert_eq!(format!("{e:#}"), "index: commit failed");
        assert!(done.load(std::sync::atomic::Ordering::SeqCst));
    }
}
