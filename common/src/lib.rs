//! Shared vocabulary of Farol: the record model that travels between components,
//! the typed configuration, the bus seam, and the health/metrics registries.
//!
//! Everything here is plain data or a thin seam; the work happens in `ingest`,
//! `processor` and `indexer`.

pub mod bus;
pub mod config;
pub mod health;
pub mod metrics;
pub mod model;
pub mod time;
