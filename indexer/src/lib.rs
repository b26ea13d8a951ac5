//! The index seam of Farol: write events, dead letters and base-bucket
//! counts idempotently and durably, then answer trends and search queries.
//! [`embedded`] is the in-process implementation on tantivy, [`elasticsearch`]
//! the one on an Elasticsearch-API server; the sink task
//! in [`sink`] drives any implementation and acknowledges what is durable.

pub mod counts;
pub mod dedupe;
pub mod elasticsearch;
pub mod embedded;
pub mod heavy;
pub mod params;
pub mod query;
pub mod score;
pub mod sink;
pub mod trends;

use async_trait::async_trait;
use farol_common::model::{Batch, Position, StreamState};
use std::collections::HashMap;

pub use query::{SearchHits, SearchQuery, TrendItem, TrendSort, Trends, TrendsQuery, TrendsRange};

/// Index failures.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The backend failed or refused a request: the search library of the
    /// embedded index, or an Elasticsearch server.
    #[error("{backend}: {source}")]
    Backend {
        /// Which backend (`embedded`, `elasticsearch`).
        backend: &'static str,
        /// What it said.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The index directory could not be opened.
    #[error("index directory: {0}")]
    Directory(String),
    /// Stored state could not be decoded.
    #[error("index state is corrupt: {0}")]
    Corrupt(String),
    /// The search text is not a valid query; the message is for the user.
    #[error("{0}")]
    Query(String),
    /// A background task failed.
    #[error("index task: {0}")]
    Task(String),
}

impl From<tantivy::TantivyError> for IndexError {
    fn from(e: tantivy::TantivyError) -> Self {
        IndexError::Backend {
            backend: "embedded",
            source: Box::new(e),
        }
    }
}

impl From<elasticsearch::client::EsError> for IndexError {
    fn from(e: elasticsearch::client::EsError) -> Self {
        IndexError::Backend {
            backend: "elasticsearch",
            source: Box::new(e),
        }
    }
}

/// What every index backend offers.
#[async_trait]
pub trait Index: Send + Sync {
    /// Stages a batch (visible to trends at once, durable after [`commit`](Self::commit)).
    async fn apply(&self, batch: Batch) -> Result<(), IndexError>;
    /// Makes everything staged durable; returns the stream positions now durable.
    async fn commit(&self) -> Result<Vec<Position>, IndexError>;
    /// True when something is staged and not yet committed.
    fn has_pending(&self) -> bool;
    /// True when [`apply`](Self::apply) may run while a
    /// [`commit`](Self::commit) is in progress, the batches applied then
    /// becoming durable with the commit after. The sink then commits in
    /// the background and keeps counts visible through a commit's pause.
    fn applies_during_commit(&self) -> bool {
        false
    }
    /// The durable per-stream state a processor resumes from.
    fn stream_states(&self) -> HashMap<String, StreamState>;
    /// The next input offset of each Kafka topic partition, stored in the
    /// same commit as the state it produced (see `farol_common::bus::kafka`):
    /// a consumer resumes from exactly these. Backends that do not store
    /// offsets with their state return none (the default).
    fn input_offsets(&self) -> HashMap<(String, i32), i64> {
        HashMap::new()
    }
    /// Answers `/trends`.
    async fn trends(&self, q: TrendsQuery) -> Result<Trends, IndexError>;
    /// Answers `/search`: matching events as JSON, newest first, and how
    /// many match. An invalid query text is [`IndexError::Query`].
    async fn search(&self, q: SearchQuery) -> Result<SearchHits, IndexError>;
}
