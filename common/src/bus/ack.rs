//! Acknowledgements: a source's checkpoint moves only once what it read is
//! durable downstream. [`Acknowledge`] is the seam; [`AckRouter`] is the
//! in-process implementation that routes positions to the source that
//! published them (the embedded bus acknowledges after the index commit, the
//! Kafka producer after the broker's delivery report).

use crate::model::Position;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Something that takes positions that became durable downstream.
pub trait Acknowledge: Send + Sync {
    /// Acknowledges positions whose records are durable downstream.
    fn acknowledge(&self, positions: Vec<Position>);
}

/// Routes acknowledged positions back to the source that produced them.
#[derive(Clone, Default)]
pub struct AckRouter {
    routes: Arc<Mutex<HashMap<String, mpsc::UnboundedSender<Position>>>>,
    taps: Arc<Mutex<Vec<mpsc::UnboundedSender<Position>>>>,
}

impl AckRouter {
    /// Registers a source; its acknowledged positions arrive on the returned receiver.
    pub fn register(&self, source: &str) -> mpsc::UnboundedReceiver<Position> {
        let (tx, rx) = mpsc::unbounded_channel();
        if let Ok(mut r) = self.routes.lock() {
            r.insert(source.to_string(), tx);
        }
        rx
    }

    /// A copy of every acknowledgement, for observers (the end-to-end bench).
    pub fn tap(&self) -> mpsc::UnboundedReceiver<Position> {
        let (tx, rx) = mpsc::unbounded_channel();
        if let Ok(mut t) = self.taps.lock() {
            t.push(tx);
        }
        rx
    }

    /// Acknowledges positions whose records are durable downstream.
    pub fn ack(&self, positions: impl IntoIterator<Item = Position>) {
        let Ok(routes) = self.routes.lock() else {
            return;
        };
        let taps = self.taps.lock().map(|t| t.clone()).unwrap_or_default();
        for p in positions {
            for t in &taps {
                let _ = t.send(p.clone());
            }
            if let Some(tx) = routes.get(&p.source) {
                // A source that has shut down no longer needs its acks.
                let _ = tx.send(p);
            }
        }
    }
}

impl Acknowledge for AckRouter {
    fn acknowledge(&self, positions: Vec<Position>) {
        self.ack(positions);
    }
}
