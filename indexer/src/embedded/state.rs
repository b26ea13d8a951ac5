//! What the embedded index holds in memory between commits: the counters,
//! the stream states (staged and durable), input offsets and template
//! texts, and the shape of the commit payload that makes them durable.

use crate::counts::Counts;
use farol_common::model::{InputOffset, Position, StreamState};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

#[derive(Default)]
pub(super) struct State {
    pub(super) counts: Counts,
    /// Sequence number making every delta document's id unique (starts at
    /// the last commit's opstamp, which grows at least once per document).
    pub(super) next_delta: u64,
    pub(super) streams: HashMap<String, StreamState>,
    pub(super) durable_streams: HashMap<String, StreamState>,
    pub(super) pending_positions: HashMap<String, Position>,
    pub(super) pending_docs: usize,
    /// Documents of batches staged while a commit held the writer; the
    /// next commit writes them before anything else.
    pub(super) deferred: Vec<super::Write>,
    /// Template id → template text, for `kind=log_template` answers.
    pub(super) template_texts: HashMap<String, String>,
    pub(super) offsets: HashMap<(String, i32), i64>,
    pub(super) durable_offsets: HashMap<(String, i32), i64>,
    pub(super) offsets_dirty: bool,
}

/// What a commit's payload holds: the per-stream state and, on the Kafka
/// bus, the next input offset of every partition whose records the commit
/// reflects. Without offsets it is written as the bare stream map, as
/// before offsets existed.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
pub(super) enum Payload {
    WithOffsets {
        farol_payload: u32,
        streams: HashMap<String, StreamState>,
        input_offsets: Vec<InputOffset>,
    },
    Streams(HashMap<String, StreamState>),
}
