//! Liveness of components. Each long-running task registers under a name and
//! reports whether it is healthy; `/healthz` answers 503 naming the failing ones.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// A shared registry of component states.
#[derive(Clone, Default)]
pub struct Health {
    inner: Arc<Mutex<BTreeMap<String, Result<(), String>>>>,
}

impl Health {
    /// Marks `component` healthy.
    pub fn up(&self, component: &str) {
        if let Ok(mut m) = self.inner.lock() {
            m.insert(component.to_string(), Ok(()));
        }
    }

    /// Marks `component` failing with a reason.
    pub fn down(&self, component: &str, reason: impl Into<String>) {
        if let Ok(mut m) = self.inner.lock() {
            m.insert(component.to_string(), Err(reason.into()));
        }
    }

    /// Every component with its state.
    pub fn snapshot(&self) -> BTreeMap<String, Result<(), String>> {
        self.inner.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_failures_by_name() {
        let h = Health::default();
        h.up("index");
        h.down("bus", "closed");
        let s = h.snapshot();
        assert_eq!(s["index"], Ok(()));
        assert_eq!(s["bus"], Err("closed".to_string()));
    }
}
