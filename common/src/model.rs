//! The records that flow through Farol: raw records published by sources,
//! the parsed events the processor derives from them, and the aggregates it
//! counts. Shapes follow BRIEF §3.

use crate::time::Millis;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// How the processor must read a raw record's payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordKind {
    /// One line of a log file.
    Log,
    /// One post as JSON (a JSON-lines file or a feed page item).
    Post,
}

/// What a source publishes on the bus: the unparsed payload and where it came from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RawRecord {
    /// Configured source name (`[[logs]] name`, `[[feeds]] name`, file stem).
    /// Shared by every record of the source (a copy a line showed in the
    /// profile of `farol batch`).
    pub source: Arc<str>,
    /// Ordering unit inside a source (one file identity, one feed). Records of
    /// one stream share a partition and are processed in order. Shared as
    /// `source` is.
    pub stream: Arc<str>,
    /// How to parse `payload`.
    pub kind: RecordKind,
    /// Platform hint for posts (`jsonl`, `x`, `mastodon`).
    pub platform: Option<String>,
    /// Path of the file the record was read from, if any.
    pub file: Option<String>,
    /// 1-based line number within the file (0 for non-file sources); of
    /// the first line for a multiline record.
    pub line_no: u64,
    /// How many more lines a multiline record spans after its first.
    #[serde(default)]
    pub line_span: u64,
    /// Byte offset of the record's first byte in its stream.
    pub offset: u64,
    /// Stream position just past this record: strictly increasing within a
    /// stream, so it doubles as the record's sequence number.
    pub end: u64,
    /// The raw bytes (without the line terminator).
    pub payload: Vec<u8>,
    /// True when the payload was cut at the maximum record size.
    pub truncated: bool,
    /// When the source read the record.
    pub ingest_ms: Millis,
    /// Modification time of the file when the record was read: the
    /// reference year-less timestamps are dated against (never the time
    /// Farol runs, so re-processing a file dates it the same).
    #[serde(default)]
    pub file_mtime: Option<Millis>,
    /// How long after its event time a record of this stream may reach the
    /// bus in normal operation (a feed's polling interval): the idle rule
    /// extrapolates a quiet stream's event time that much more cautiously.
    #[serde(default)]
    pub arrival_delay_ms: Option<Millis>,
}

/// A position a source can resume from, acknowledged once durable downstream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// Source the stream belongs to.
    pub source: String,
    /// Stream identity.
    pub stream: String,
    /// Byte position just past the last durable record.
    pub end: u64,
    /// Line number of the last durable record.
    pub line_no: u64,
}

/// A parsed log line (BRIEF §3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogEvent {
    /// Stable id: the same line re-processed gets the same id.
    pub id: String,
    /// Source name.
    pub source: String,
    /// File the line came from.
    pub file: String,
    /// 1-based line number.
    pub line_no: u64,
    /// Byte offset of the line.
    pub offset: u64,
    /// Event time (epoch ms).
    pub ts: Millis,
    /// False when the line had no readable timestamp and inherited one.
    pub ts_from_line: bool,
    /// Normalized class: FATAL/ERROR/WARN/INFO/DEBUG/TRACE, 1xx..5xx or UNKNOWN.
    pub class: String,
    /// Severity as written in the line, if any.
    pub level: Option<String>,
    /// The message part of the line (whole line when the format has no message group).
    pub message: String,
    /// Other parsed fields (format name, status, host, ...).
    pub fields: BTreeMap<String, String>,
    /// Set when the line was cut at the maximum line length.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    /// The log template the message is an instance of (variables as `<*>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// Stable id of that template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_id: Option<String>,
}

/// A parsed social post (BRIEF §3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Post {
    /// Stable id (`platform:native id` scoped by source).
    pub id: String,
    /// Feed or file source name.
    pub source: String,
    /// `x`, `mastodon` or `jsonl`.
    pub platform: String,
    /// Event time (epoch ms).
    pub created_at: Millis,
    /// Author handle or id.
    pub author: Option<String>,
    /// Plain text.
    pub text: String,
    /// Language tag, if known.
    pub lang: Option<String>,
    /// Normalized hashtag keys, distinct.
    pub hashtags: Vec<String>,
    /// Link to the post, if known.
    pub url: Option<String>,
}

/// A parsed record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Event {
    /// A log line.
    Log(LogEvent),
    /// A post.
    Post(Post),
}

impl Event {
    /// The event's stable id.
    pub fn id(&self) -> &str {
        match self {
            Event::Log(e) => &e.id,
            Event::Post(p) => &p.id,
        }
    }
    /// The event time.
    pub fn ts(&self) -> Millis {
        match self {
            Event::Log(e) => e.ts,
            Event::Post(p) => p.created_at,
        }
    }
    /// The source name.
    pub fn source(&self) -> &str {
        match self {
            Event::Log(e) => &e.source,
            Event::Post(p) => &p.source,
        }
    }
    /// The document an index stores for the event: its fields (`type`
    /// `log` or `post`, times in epoch ms) plus `@timestamp`, the event time.
    /// `farol batch --format events` prints exactly this.
    pub fn document(&self) -> serde_json::Value {
        let mut body = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        if let serde_json::Value::Object(m) = &mut body {
            m.insert("@timestamp".into(), self.ts().into());
        }
        body
    }
}

/// What is being counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AggKind {
    /// Hashtag keys of posts.
    Hashtag,
    /// Log classes of log lines.
    LogClass,
    /// Template ids of log lines.
    LogTemplate,
}

impl AggKind {
    /// The name used in the API and in documents.
    pub fn as_str(self) -> &'static str {
        match self {
            AggKind::Hashtag => "hashtag",
            AggKind::LogClass => "log_class",
            AggKind::LogTemplate => "log_template",
        }
    }
    /// Parses the API name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "hashtag" => Some(AggKind::Hashtag),
            "log_class" => Some(AggKind::LogClass),
            "log_template" => Some(AggKind::LogTemplate),
            _ => None,
        }
    }
}

/// Identity of one base-bucket counter.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BucketKey {
    /// Start of the base bucket (epoch ms).
    pub bucket_start: Millis,
    /// What is counted.
    pub kind: AggKind,
    /// Source name.
    pub source: String,
    /// Hashtag or class.
    pub key: String,
}

/// A record that could not be processed normally, kept for inspection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Stable id (derived from the record's stream position).
    pub id: String,
    /// Source name.
    pub source: String,
    /// Why it is here: `late`, `malformed_post`, ...
    pub reason: String,
    /// Human-readable detail.
    pub detail: String,
    /// The payload, lossily decoded (and capped).
    pub raw: String,
    /// Event time when known, otherwise ingest time.
    pub ts: Millis,
}

/// Per-stream processing state, persisted with the index so a restart resumes
/// exactly where the durable state ends.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StreamState {
    /// Source name.
    pub source: String,
    /// Position just past the last applied record (records at or below are replays).
    pub applied_end: u64,
    /// Line number of the last applied record.
    pub line_no: u64,
    /// Highest event time seen.
    pub max_ts: Option<Millis>,
    /// Event time of the last record (inherited by lines without a timestamp).
    pub last_ts: Option<Millis>,
    /// Current watermark (epoch ms).
    pub watermark: Option<Millis>,
    /// Wall-clock time of the stream's last record, for retention.
    #[serde(default)]
    pub wall_ms: Option<Millis>,
    /// The stream's learned log templates, present when they changed since
    /// the last state handed on (absent: unchanged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub templates: Option<Vec<Template>>,
}

/// One learned log template (see the processor's template miner).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Template {
    /// Stable id (hex of a hash of the template the cluster started as).
    pub id: String,
    /// Current template tokens (`<*>` for variables).
    pub tokens: Vec<String>,
}

impl Template {
    /// The template text.
    pub fn text(&self) -> String {
        self.tokens.join(" ")
    }
}

/// Everything one processor flush hands the index: applied atomically, then
/// acknowledged back to the sources through the positions in `streams`.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Batch {
    /// Parsed events to store. A post replaces an earlier copy of its id;
    /// a log event is named by its stream position, which an index receives
    /// once (replays are dropped before it by the stream's `applied_end`).
    pub events: Vec<Event>,
    /// Base-bucket count increments.
    pub counts: Vec<(BucketKey, u64)>,
    /// Records routed to the dead-letter output.
    pub dead_letters: Vec<DeadLetter>,
    /// New state of every stream the batch touched, by stream id.
    pub streams: Vec<(String, StreamState)>,
    /// Streams idle past the retention: their state leaves the index.
    pub retired: Vec<String>,
    /// Where each input partition the batch came from continues: every
    /// record before these offsets is reflected in this batch or an earlier
    /// one. Stored with the batch's effects in one commit, so a restart
    /// consumes from exactly the durable offsets (empty on the embedded bus).
    #[serde(default)]
    pub offsets: Vec<InputOffset>,
    /// What each applied record contributed, in order (only when the
    /// processor marks records, as `farol process` does): lets the index
    /// drop the effects of records it already holds, one record at a time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub records: Vec<RecordMark>,
}

/// One applied record's share of a [`Batch`]: its events and dead letters
/// are the ones after the previous mark's up to this mark's ends, its count
/// increments are one for each listed index into [`Batch::counts`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordMark {
    /// Index of the record's stream in [`Batch::streams`].
    pub stream: u32,
    /// The record's stream position ([`RawRecord::end`]).
    pub end: u64,
    /// `Batch::events.len()` once this record's event was added.
    pub events_end: u32,
    /// `Batch::dead_letters.len()` once this record's dead letters were added.
    pub dead_letters_end: u32,
    /// Indices into `Batch::counts`, one per increment of this record.
    pub counts: Vec<u32>,
}

/// The next offset to consume from one input partition (a Kafka topic partition).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct InputOffset {
    /// Topic.
    pub topic: String,
    /// Partition within the topic.
    pub partition: i32,
    /// First offset not yet reflected in the index.
    pub next: i64,
}

impl Batch {
    /// True when the batch carries nothing.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
            && self.counts.is_empty()
            && self.dead_letters.is_empty()
            && self.streams.is_empty()
            && self.retired.is_empty()
            && self.offsets.is_empty()
            && self.records.is_empty()
    }
}
