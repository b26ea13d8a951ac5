//! The processing core shared by streaming and batch: takes raw records in
//! stream order and produces events, base-bucket count increments,
//! dead-letter records and the new per-stream state. Plain synchronous code,
//! no I/O, so it can be benchmarked and fuzzed alone.

use crate::logparse::LineParser;
use crate::post;
use crate::window::WindowParams;
use farol_common::config::FormatSpec;
use farol_common::metrics::metrics;
use farol_common::model::{
    AggKind, Batch, BucketKey, DeadLetter, Event, LogEvent, RawRecord, RecordKind, StreamState,
};
use farol_common::time::Millis;
use std::collections::HashMap;
use std::sync::Arc;

/// Dead-letter payloads are capped at this many bytes.
const DEAD_LETTER_RAW_MAX: usize = 64 * 1024;

struct StreamCtx {
    state: StreamState,
    hint: Option<usize>,
    last_wall: Millis,
    dirty: bool,
    idle_closed: bool,
}

/// Parsers by source name, with `auto` for sources not listed.
#[derive(Clone)]
pub struct Parsers {
    by_source: HashMap<String, Arc<LineParser>>,
    auto: Arc<LineParser>,
}

impl Parsers {
    /// Parsers for the given `(source, format)` pairs.
    pub fn new<'a>(
        specs: impl IntoIterator<Item = (&'a str, &'a FormatSpec)>,
    ) -> Result<Self, crate::logparse::FormatError> {
        let mut by_source = HashMap::new();
        for (name, spec) in specs {
            by_source.insert(name.to_string(), Arc::new(LineParser::new(spec)?));
        }
        Ok(Parsers {
            by_source,
            auto: Arc::new(LineParser::new(&FormatSpec::default())?),
        })
    }

    fn get(&self, source: &str) -> &LineParser {
        self.by_source.get(source).unwrap_or(&self.auto)
    }
}

/// Turns records into index batches.
pub struct Processor {
    params: WindowParams,
    parsers: Parsers,
    streams: HashMap<String, StreamCtx>,
    pending: Batch,
    counts: HashMap<BucketKey, u64>,
    pending_records: usize,
    pending_bytes: usize,
}

impl Processor {
    /// A processor resuming from `restored` stream states.
    pub fn new(
        params: WindowParams,
        parsers: Parsers,
        restored: &HashMap<String, StreamState>,
    ) -> Self {
        let streams = restored
            .iter()
            .map(|(k, s)| {
                (
                    k.clone(),
                    StreamCtx {
                        state: s.clone(),
                        hint: None,
                        last_wall: farol_common::time::now_ms(),
                        dirty: false,
                        idle_closed: false,
                    },
                )
            })
            .collect();
        Processor {
            params,
            parsers,
            streams,
            pending: Batch::default(),
            counts: HashMap::new(),
            pending_records: 0,
            pending_bytes: 0,
        }
    }

    /// Records handled since the last [`flush`](Self::flush).
    pub fn pending_records(&self) -> usize {
        self.pending_records
    }

    /// Payload bytes of the records handled since the last flush.
    pub fn pending_bytes(&self) -> usize {
        self.pending_bytes
    }

    /// Processes one record; `now` is the wall clock (for idle detection and
    /// as the event time of a stream's first untimed line).
    pub fn handle(&mut self, rec: RawRecord, now: Millis) {
        let params = &self.params;
        let ctx = self.streams.entry(rec.stream.clone()).or_insert(StreamCtx {
            state: StreamState {
                source: rec.source.clone(),
                ..StreamState::default()
            },
            hint: None,
            last_wall: now,
            dirty: false,
            idle_closed: false,
        });
        if rec.end <= ctx.state.applied_end {
            metrics()
                .replays_skipped
                .with_label_values(&[&rec.source])
                .inc();
            return;
        }
        let m = metrics();
        let (text, lossy) = match std::str::from_utf8(&rec.payload) {
            Ok(s) => (std::borrow::Cow::Borrowed(s), false),
            Err(_) => {
                m.invalid_utf8.with_label_values(&[&rec.source]).inc();
                (String::from_utf8_lossy(&rec.payload), true)
            }
        };
        let mut keys: Vec<(AggKind, String)> = Vec::new();
        let event: Option<Event>;
        let ts: Millis;
        match rec.kind {
            RecordKind::Log => {
                let p = self.parsers.get(&rec.source).parse(&text, &mut ctx.hint);
                let from_line = p.ts.is_some();
                if !from_line {
                    m.untimed_lines.with_label_values(&[&rec.source]).inc();
                }
                ts = p.ts.or(ctx.state.last_ts).unwrap_or(rec.ingest_ms);
                keys.push((AggKind::LogClass, p.class.to_string()));
                let mut fields = p.fields;
                fields.insert("format".into(), p.format.to_string());
                if lossy {
                    fields.insert("invalid_utf8".into(), "true".into());
                }
                event = Some(Event::Log(LogEvent {
                    id: format!("log:{}:{}", rec.stream, rec.offset),
                    source: rec.source.clone(),
                    file: rec.file.clone().unwrap_or_default(),
                    line_no: rec.line_no,
                    offset: rec.offset,
                    ts,
                    ts_from_line: from_line,
                    class: p.class.to_string(),
                    level: p.level,
                    message: p.message,
                    fields,
                    truncated: rec.truncated,
                }));
            }
            RecordKind::Post => {
                let platform = rec.platform.as_deref().unwrap_or("jsonl");
                match post::parse(&rec.source, platform, &text) {
                    Ok(p) => {
                        ts = p.created_at;
                        for h in &p.hashtags {
                            keys.push((AggKind::Hashtag, h.clone()));
                        }
                        event = Some(Event::Post(p));
                    }
                    Err(e) => {
                        ts = ctx.state.last_ts.unwrap_or(rec.ingest_ms);
                        dead_letter(
                            &mut self.pending,
                            &rec,
                            "malformed_post",
                            e.to_string(),
                            ts,
                            &text,
                        );
                        event = None;
                    }
                }
            }
        }
        if event.is_some() {
            if params.is_late(ts, ctx.state.watermark) {
                m.late_records.with_label_values(&[&rec.source]).inc();
                let detail = format!(
                    "event time {} is behind the watermark {}",
                    farol_common::time::rfc3339(ts),
                    ctx.state
                        .watermark
                        .map(farol_common::time::rfc3339)
                        .unwrap_or_default()
                );
                dead_letter(&mut self.pending, &rec, "late", detail, ts, &text);
            }
            let max_ts = ctx.state.max_ts.map_or(ts, |x| x.max(ts));
            ctx.state.max_ts = Some(max_ts);
            ctx.state.watermark = Some(params.advance(ctx.state.watermark, max_ts));
            let bucket_start = params.bucket_of(ts);
            for (kind, key) in keys {
                *self
                    .counts
                    .entry(BucketKey {
                        bucket_start,
                        kind,
                        source: rec.source.clone(),
                        key,
                    })
                    .or_insert(0) += 1;
            }
        }
        let kind_label = match rec.kind {
            RecordKind::Log => "log",
            RecordKind::Post => "post",
        };
        m.records_processed
            .with_label_values(&[&rec.source, kind_label])
            .inc();
        ctx.state.last_ts = Some(ts);
        ctx.state.applied_end = rec.end;
        ctx.state.line_no = rec.line_no;
        ctx.last_wall = now;
        ctx.dirty = true;
        ctx.idle_closed = false;
        if let Some(e) = event {
            self.pending.events.push(e);
        }
        self.pending_records += 1;
        self.pending_bytes += rec.payload.len();
    }

    /// Closes the windows of streams idle past the timeout.
    pub fn tick(&mut self, now: Millis) {
        for ctx in self.streams.values_mut() {
            if ctx.idle_closed || now - ctx.last_wall < self.params.idle {
                continue;
            }
            if let Some(max_ts) = ctx.state.max_ts {
                ctx.state.watermark = Some(self.params.idle_watermark(ctx.state.watermark, max_ts));
                ctx.dirty = true;
            }
            ctx.idle_closed = true;
        }
    }

    /// Takes everything produced since the last flush.
    pub fn flush(&mut self) -> Batch {
        let mut b = std::mem::take(&mut self.pending);
        b.counts = self.counts.drain().collect();
        for (id, ctx) in self.streams.iter_mut() {
            if ctx.dirty {
                b.streams.push((id.clone(), ctx.state.clone()));
                ctx.dirty = false;
            }
        }
        self.pending_records = 0;
        self.pending_bytes = 0;
        b
    }
}

fn dead_letter(
    out: &mut Batch,
    rec: &RawRecord,
    reason: &str,
    detail: String,
    ts: Millis,
    text: &str,
) {
    metrics()
        .dead_letters
        .with_label_values(&[&rec.source, reason])
        .inc();
    let mut raw = text.to_string();
    if raw.len() > DEAD_LETTER_RAW_MAX {
        let mut cut = DEAD_LETTER_RAW_MAX;
        while !raw.is_char_boundary(cut) {
            cut -= 1;
        }
        raw.truncate(cut);
    }
    out.dead_letters.push(DeadLetter {
        id: format!("dl:{reason}:{}:{}", rec.stream, rec.offset),
        source: rec.source.clone(),
        reason: reason.to_string(),
        detail,
        raw,
        ts,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use farol_common::config::WindowsConfig;

    fn rec(kind: RecordKind, end: u64, payload: &[u8]) -> RawRecord {
        RawRecord {
            source: "s".into(),
            stream: "s:1".into(),
            kind,
            platform: None,
            file: Some("f".into()),
            line_no: end,
            offset: end * 100,
            end: end * 100 + 99,
            payload: payload.to_vec(),
            truncated: false,
            ingest_ms: 5_000_000,
        }
    }

    fn proc(restored: &HashMap<String, StreamState>) -> Processor {
        Processor::new(
            WindowParams::from_config(&WindowsConfig::default()),
            Parsers::new([]).unwrap(),
            restored,
        )
    }

    fn count(b: &Batch, key: &str) -> u64 {
        b.counts
            .iter()
            .filter(|(k, _)| k.key == key)
            .map(|(_, c)| c)
            .sum()
    }

    #[test]
    fn untimed_lines_inherit_and_late_lines_still_count() {
        let mut p = proc(&HashMap::new());
        p.handle(rec(RecordKind::Log, 1, b"2020-01-01 00:10:00 ERROR a"), 0);
        p.handle(rec(RecordKind::Log, 2, b"   at stack.frame(x)"), 0);
        p.handle(rec(RecordKind::Log, 3, b"\xff\xfe bad utf8"), 0);
        p.handle(
            rec(RecordKind::Log, 4, b"2020-01-01 00:00:00 WARN way back"),
            0,
        );
        let b = p.flush();
        assert_eq!(count(&b, "ERROR"), 1);
        assert_eq!(count(&b, "UNKNOWN"), 2);
        assert_eq!(count(&b, "WARN"), 1, "late lines are still counted");
        let Event::Log(second) = &b.events[1] else {
            panic!()
        };
        assert!(!second.ts_from_line);
        assert_eq!(second.ts, b.events[0].ts());
        assert_eq!(b.dead_letters.len(), 1);
        assert_eq!(b.dead_letters[0].reason, "late");
        assert_eq!(b.streams[0].1.applied_end, 499);
    }

    #[test]
    fn replays_below_the_restored_position_are_skipped() {
        let mut restored = HashMap::new();
        restored.insert(
            "s:1".to_string(),
            StreamState {
                source: "s".into(),
                applied_end: 299,
                ..StreamState::default()
            },
        );
        let mut p = proc(&restored);
        for i in 1..=4 {
            p.handle(rec(RecordKind::Log, i, b"2020-01-01 00:10:00 INFO x"), 0);
        }
        assert_eq!(count(&p.flush(), "INFO"), 2, "records 3 and 4 only");
    }

    #[test]
    fn posts_count_hashtags_and_bad_posts_go_to_dead_letter() {
        let mut p = proc(&HashMap::new());
        p.handle(
            rec(
                RecordKind::Post,
                1,
                br##"{"id":"1","created_at":"2024-01-01T00:00:00Z","text":"#A #a #b"}"##,
            ),
            0,
        );
        p.handle(rec(RecordKind::Post, 2, b"{broken"), 0);
        let b = p.flush();
        assert_eq!((count(&b, "a"), count(&b, "b")), (1, 1));
        assert_eq!(b.dead_letters[0].reason, "malformed_post");
        assert_eq!(b.events.len(), 1);
    }

    #[test]
    fn idle_streams_close_their_windows() {
        let mut p = proc(&HashMap::new());
        p.handle(rec(RecordKind::Log, 1, b"2020-01-01 00:10:00 INFO x"), 0);
        let before = p.flush().streams[0].1.watermark.unwrap();
        p.tick(20_000);
        let after = p.flush().streams[0].1.watermark.unwrap();
        assert!(after > before + 3_000_000);
    }
}
