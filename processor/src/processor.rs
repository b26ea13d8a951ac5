//! The processing core shared by streaming and batch: takes raw records in
//! stream order and produces events, base-bucket count increments,
//! dead-letter records and the new per-stream state. Plain synchronous code,
//! no I/O, so it can be benchmarked and fuzzed alone.

use crate::counters::{Counters, KeyRef};
use crate::logparse::{LineParser, ParsedLine};
use crate::post;
use crate::template::Miner;
use crate::window::WindowParams;
use farol_common::config::FormatSpec;
use farol_common::metrics::metrics;
use farol_common::model::{
    AggKind, Batch, BucketKey, DeadLetter, Event, LogEvent, Post, RawRecord, RecordKind,
    RecordMark, StreamState,
};
use farol_common::time::Millis;
use std::collections::HashMap;

/// A map looked up once a record: hashbrown's default hasher (foldhash),
/// not SipHash, which showed in the batch profile.
type FastMap<K, V> = hashbrown::HashMap<K, V>;
use std::sync::Arc;

/// Dead-letter payloads are capped at this many bytes.
const DEAD_LETTER_RAW_MAX: usize = 64 * 1024;

/// Leading lines without a timestamp wait for the first timestamped line of
/// their stream at most this many lines (then they take the ingest time).
pub const MAX_HELD_LINES: usize = 1_000;

struct StreamCtx {
    state: StreamState,
    hint: Option<usize>,
    /// Wall time of the last record (idleness); `now` at restore, so that a
    /// restart does not take downtime for idleness.
    last_wall: Millis,
    dirty: bool,
    /// Leading untimed lines waiting for the stream's first event time.
    held: Vec<(RawRecord, Parsed)>,
    /// Wall time the first held line arrived.
    held_since: Millis,
    /// The stream's usual arrival delay (see [`RawRecord::arrival_delay_ms`]).
    arrival_delay: Millis,
    /// The stream's log templates.
    miner: Miner,
    /// `farol_records_processed_total` of the stream's source and record
    /// kind, looked up once (a labelled lookup per record showed in the
    /// profile).
    processed: Option<(RecordKind, prometheus::IntCounter)>,
}

impl StreamCtx {
    fn new(mut state: StreamState, now: Millis) -> Self {
        // Templates travel with the state only when they changed.
        let miner = Miner::restore(state.templates.take().unwrap_or_default());
        StreamCtx {
            miner,
            state,
            hint: None,
            last_wall: now,
            dirty: false,
            held: Vec::new(),
            held_since: now,
            arrival_delay: 0,
            processed: None,
        }
    }
}

/// A record read but not yet applied (its event time may still be unknown).
enum Parsed {
    Log {
        line: ParsedLine,
        lossy: bool,
    },
    Post(Post),
    /// A post read for its counts alone (no event wanted).
    Counted(post::Counted),
    BadPost(String),
}

/// Parsers by source name, with `auto` for sources not listed.
#[derive(Clone)]
pub struct Parsers {
    by_source: FastMap<String, Arc<LineParser>>,
    auto: Arc<LineParser>,
}

impl Parsers {
    /// Parsers for the given `(source, format)` pairs.
    pub fn new<'a>(
        specs: impl IntoIterator<Item = (&'a str, &'a FormatSpec)>,
    ) -> Result<Self, crate::logparse::FormatError> {
        let mut by_source = FastMap::default();
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
    streams: FastMap<String, StreamCtx>,
    pending: Batch,
    counts: Counters,
    pending_records: usize,
    pending_bytes: usize,
    /// Per-record marks of the pending batch, when enabled.
    marks: Option<Marks>,
    /// Whether event documents are built (an index that stores events
    /// wants them; aggregates alone do not).
    events: bool,
    /// Whether log lines are mined for templates.
    templates: bool,
    /// What was applied per source, when asked for (`farol batch`'s
    /// summary, which must not depend on event documents).
    tally: Option<FastMap<String, SourceTally>>,
}

/// What a processor applied for one source.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SourceTally {
    /// Log lines.
    pub lines: u64,
    /// Posts (malformed ones are dead letters, not posts).
    pub posts: u64,
    /// Log lines per class.
    pub classes: HashMap<&'static str, u64>,
    /// Log lines without a time of their own.
    pub no_time: u64,
    /// Among those, lines whose timestamp was there but did not read.
    pub unreadable_time: u64,
}

/// The marks of the pending batch, and the counters of the record being
/// applied.
#[derive(Default)]
struct Marks {
    done: Vec<PendingMark>,
    keys: Vec<BucketKey>,
}

/// A [`RecordMark`] before its stream and counters have batch indices.
struct PendingMark {
    stream: std::sync::Arc<str>,
    end: u64,
    events_end: usize,
    dead_letters_end: usize,
    keys: Vec<BucketKey>,
}

impl Processor {
    /// A processor resuming from `restored` stream states.
    pub fn new(
        params: WindowParams,
        parsers: Parsers,
        restored: &HashMap<String, StreamState>,
    ) -> Self {
        let now = farol_common::time::now_ms();
        let streams = restored
            .iter()
            .map(|(k, s)| (k.clone(), StreamCtx::new(s.clone(), now)))
            .collect();
        Processor {
            params,
            parsers,
            streams,
            pending: Batch::default(),
            counts: Counters::default(),
            pending_records: 0,
            pending_bytes: 0,
            marks: None,
            events: true,
            templates: true,
            tally: None,
        }
    }

    /// Makes every flushed batch say what each record contributed
    /// ([`Batch::records`]), so that an index receiving the batch a second
    /// time, or cut differently after a failover, can drop what it holds.
    pub fn mark_records(mut self) -> Self {
        self.marks = Some(Marks::default());
        self
    }

    /// Whether event documents are built (the default). Without them
    /// batches carry counters, dead letters and stream states only: for
    /// outputs that want aggregates alone (`farol batch --format json`,
    /// `index.events = false`).
    pub fn events(mut self, on: bool) -> Self {
        self.events = on;
        self
    }

    /// Whether log lines are mined for templates (the default). Without
    /// it a line counts its class alone, and its event has no template
    /// (`processor.templates = false`).
    pub fn templates(mut self, on: bool) -> Self {
        self.templates = on;
        self
    }

    /// Whether event documents are built (a record's file path is read
    /// only for them).
    pub fn wants_events(&self) -> bool {
        self.events
    }

    /// Keeps a [`SourceTally`] per source of what is applied.
    pub fn tally_sources(mut self) -> Self {
        self.tally = Some(FastMap::default());
        self
    }

    /// The tallies kept since the last call (empty unless
    /// [`tally_sources`](Self::tally_sources) was asked for).
    pub fn take_tally(&mut self) -> HashMap<String, SourceTally> {
        self.tally
            .as_mut()
            .map(|t| t.drain().collect())
            .unwrap_or_default()
    }

    /// Every stream's complete state, templates included: what a snapshot
    /// stores so that a processor restored from it resumes exactly here.
    pub fn snapshot_states(&self) -> HashMap<String, StreamState> {
        self.streams
            .iter()
            .map(|(id, ctx)| {
                let mut st = ctx.state.clone();
                st.templates = Some(ctx.miner.snapshot());
                (id.clone(), st)
            })
            .collect()
    }

    /// Records handled since the last [`flush`](Self::flush).
    pub fn pending_records(&self) -> usize {
        self.pending_records
    }

    /// True while some stream holds leading lines without a timestamp back
    /// (they are in no batch yet, so no input offset may pass them).
    pub fn holding(&self) -> bool {
        self.streams.values().any(|c| !c.held.is_empty())
    }

    /// Payload bytes of the records handled since the last flush.
    pub fn pending_bytes(&self) -> usize {
        self.pending_bytes
    }

    /// Processes one record; `now` is the wall clock (for idleness, for
    /// records from the future, and as the event time of a stream's first
    /// untimed lines when no timestamped line follows them).
    pub fn handle(&mut self, rec: RawRecord, now: Millis) {
        // By reference: the stream id is cloned once per stream, not once
        // per record.
        let ctx = self.streams.entry_ref(&*rec.stream).or_insert_with(|| {
            let state = StreamState {
                source: rec.source.to_string(),
                ..StreamState::default()
            };
            StreamCtx::new(state, now)
        });
        if rec.end <= ctx.state.applied_end || ctx.held.iter().any(|(h, _)| rec.end <= h.end) {
            metrics()
                .replays_skipped
                .with_label_values(&[&rec.source])
                .inc();
            return;
        }
        self.pending_records += 1;
        self.pending_bytes += rec.payload.len();
        ctx.last_wall = now;
        ctx.arrival_delay = rec.arrival_delay_ms.unwrap_or(0).max(0);
        let parsed = match rec.kind {
            RecordKind::Log => {
                let (text, lossy) = decode(&rec);
                let year_ref = rec.file_mtime.unwrap_or(rec.ingest_ms);
                let line = self
                    .parsers
                    .get(&rec.source)
                    .parse(&text, &mut ctx.hint, year_ref);
                Parsed::Log { line, lossy }
            }
            RecordKind::Post => {
                let platform = rec.platform.as_deref().unwrap_or("jsonl");
                let payload = decode(&rec).0;
                let read = if self.events {
                    post::parse(&rec.source, platform, &payload).map(Parsed::Post)
                } else {
                    post::parse_counted(platform, &payload).map(Parsed::Counted)
                };
                read.unwrap_or_else(|e| Parsed::BadPost(e.to_string()))
            }
        };
        let own_ts = match &parsed {
            Parsed::Log { line, .. } => line.ts,
            Parsed::Post(p) => Some(p.created_at),
            Parsed::Counted(c) => Some(c.created_at),
            Parsed::BadPost(_) => None,
        };
        let mut out = Out {
            params: &self.params,
            pending: &mut self.pending,
            counts: &mut self.counts,
            marks: self.marks.as_mut(),
            events: self.events,
            templates: self.templates,
            tally: self.tally.as_mut(),
            now,
        };
        if own_ts.is_none() && ctx.state.last_ts.is_none() && rec.kind == RecordKind::Log {
            // A leading line without a timestamp (a banner): it takes the
            // time of the first timestamped line that follows it.
            if ctx.held.is_empty() {
                ctx.held_since = now;
            }
            ctx.held.push((rec, parsed));
            if ctx.held.len() >= MAX_HELD_LINES {
                out.release_held(ctx, None);
            }
            return;
        }
        if let Some(ts) = own_ts {
            out.release_held(ctx, Some(ts));
        }
        out.apply(ctx, rec, parsed);
    }

    /// Lets the watermarks of idle streams follow the wall clock, releases
    /// held leading lines that waited too long, and retires streams idle past
    /// the retention.
    pub fn tick(&mut self, now: Millis) {
        let mut out = Out {
            params: &self.params,
            pending: &mut self.pending,
            counts: &mut self.counts,
            marks: self.marks.as_mut(),
            events: self.events,
            templates: self.templates,
            tally: self.tally.as_mut(),
            now,
        };
        let mut retired = Vec::new();
        for (id, ctx) in self.streams.iter_mut() {
            let idle_for = now.saturating_sub(ctx.last_wall);
            if !ctx.held.is_empty() && now.saturating_sub(ctx.held_since) >= out.params.idle {
                out.release_held(ctx, None);
            }
            if idle_for < out.params.idle {
                continue;
            }
            let seen = ctx
                .state
                .wall_ms
                .unwrap_or(ctx.last_wall)
                .max(ctx.last_wall);
            if ctx.held.is_empty() && !ctx.dirty && now.saturating_sub(seen) > out.params.retention
            {
                retired.push(id.clone());
                continue;
            }
            if let Some(max_ts) = ctx.state.max_ts {
                let before = ctx.state.watermark;
                let wm = out.params.idle_watermark(
                    before,
                    max_ts,
                    ctx.last_wall,
                    now,
                    ctx.arrival_delay,
                );
                ctx.state.watermark = Some(wm);
                // Windows only close at bucket boundaries: persist (and
                // acknowledge) the moved watermark once per bucket.
                if before.map(|b| out.params.bucket_of(b)) != Some(out.params.bucket_of(wm)) {
                    ctx.dirty = true;
                }
            }
        }
        for id in retired {
            self.streams.remove(&id);
            self.pending.retired.push(id);
        }
    }

    /// The input is finite and has ended (batch): held leading lines are
    /// released and every stream's windows close, as for a replay gone idle.
    pub fn end_of_input(&mut self) {
        let mut out = Out {
            params: &self.params,
            pending: &mut self.pending,
            counts: &mut self.counts,
            marks: self.marks.as_mut(),
            events: self.events,
            templates: self.templates,
            tally: self.tally.as_mut(),
            now: farol_common::time::now_ms(),
        };
        for ctx in self.streams.values_mut() {
            out.release_held(ctx, None);
            if let Some(max_ts) = ctx.state.max_ts {
                let end = out
                    .params
                    .bucket_of(max_ts)
                    .saturating_add(out.params.longest());
                let wm = ctx.state.watermark.map_or(end, |w| w.max(end));
                if ctx.state.watermark != Some(wm) {
                    ctx.state.watermark = Some(wm);
                    ctx.dirty = true;
                }
            }
        }
    }

    /// Takes everything produced since the last flush.
    pub fn flush(&mut self) -> Batch {
        let mut b = std::mem::take(&mut self.pending);
        b.counts = self.counts.drain();
        for (id, ctx) in self.streams.iter_mut() {
            if ctx.dirty {
                let mut st = ctx.state.clone();
                if ctx.miner.take_dirty() {
                    st.templates = Some(ctx.miner.snapshot());
                }
                b.streams.push((id.clone(), st));
                ctx.dirty = false;
            }
        }
        if let Some(marks) = self.marks.as_mut() {
            b.records = resolve_marks(std::mem::take(&mut marks.done), &b);
        }
        self.pending_records = 0;
        self.pending_bytes = 0;
        b
    }
}

/// Gives pending marks their indices into the flushed batch.
fn resolve_marks(marks: Vec<PendingMark>, b: &Batch) -> Vec<RecordMark> {
    let streams: HashMap<&str, u32> = b
        .streams
        .iter()
        .enumerate()
        .map(|(i, (id, _))| (id.as_str(), i as u32))
        .collect();
    let counts: HashMap<&BucketKey, u32> = b
        .counts
        .iter()
        .enumerate()
        .map(|(i, (k, _))| (k, i as u32))
        .collect();
    marks
        .into_iter()
        .filter_map(|m| {
            Some(RecordMark {
                // Every applied record's stream is dirty, so it is in the batch.
                stream: *streams.get(&*m.stream)?,
                end: m.end,
                events_end: m.events_end as u32,
                dead_letters_end: m.dead_letters_end as u32,
                counts: m
                    .keys
                    .iter()
                    .filter_map(|k| counts.get(k).copied())
                    .collect(),
            })
        })
        .collect()
}

/// The record's text. Validated with SIMD (`simdutf8`): std's check was
/// 5 % of a batch's time on short lines.
fn decode(rec: &RawRecord) -> (std::borrow::Cow<'_, str>, bool) {
    match simdutf8::basic::from_utf8(&rec.payload) {
        Ok(s) => (std::borrow::Cow::Borrowed(s), false),
        Err(_) => {
            metrics()
                .invalid_utf8
                .with_label_values(&[&rec.source])
                .inc();
            (String::from_utf8_lossy(&rec.payload), true)
        }
    }
}

/// Where applied records go: the pending batch and its counters.
struct Out<'a> {
    params: &'a WindowParams,
    pending: &'a mut Batch,
    counts: &'a mut Counters,
    marks: Option<&'a mut Marks>,
    events: bool,
    templates: bool,
    tally: Option<&'a mut FastMap<String, SourceTally>>,
    now: Millis,
}

impl Out<'_> {
    /// Applies the held leading lines of `ctx` with the event time `ts`
    /// (the first timestamped line's), or each with its ingest time.
    fn release_held(&mut self, ctx: &mut StreamCtx, ts: Option<Millis>) {
        for (rec, parsed) in std::mem::take(&mut ctx.held) {
            if ctx.state.last_ts.is_none() {
                ctx.state.last_ts = ts.or(Some(rec.ingest_ms));
            }
            self.apply(ctx, rec, parsed);
        }
    }

    /// Counts one record, moves its stream's event time and watermark, and
    /// queues its event (when events are kept) and dead letters.
    fn apply(&mut self, ctx: &mut StreamCtx, rec: RawRecord, parsed: Parsed) {
        let m = metrics();
        let inherited = ctx.state.last_ts.unwrap_or(rec.ingest_ms);
        // The event time, and the template of a log line.
        let (ts, template) = match &parsed {
            Parsed::Log { line, .. } => {
                if line.ts.is_none() {
                    m.untimed_lines.with_label_values(&[&rec.source]).inc();
                }
                if line.ts_unreadable {
                    m.unparsed_timestamps
                        .with_label_values(&[&rec.source])
                        .inc();
                }
                (
                    line.ts.unwrap_or(inherited),
                    self.templates.then(|| ctx.miner.learn(&line.message)),
                )
            }
            Parsed::Post(p) => (p.created_at, None),
            Parsed::Counted(c) => (c.created_at, None),
            Parsed::BadPost(why) => {
                dead_letter(self.pending, &rec, "malformed_post", why.clone(), inherited);
                (inherited, None)
            }
        };
        if !matches!(parsed, Parsed::BadPost(_)) {
            self.judge_time(ctx, &rec, ts);
            let bucket_start = self.params.bucket_of(ts);
            let mut count = |kind: AggKind, key: &str| {
                let k = KeyRef {
                    bucket_start,
                    kind,
                    source: &rec.source,
                    key,
                };
                if let Some(marks) = self.marks.as_deref_mut() {
                    marks.keys.push(k.to_key());
                }
                self.counts.increment(k);
            };
            match &parsed {
                Parsed::Log { line, .. } => {
                    count(AggKind::LogClass, line.class);
                    if let Some(t) = template {
                        count(AggKind::LogTemplate, ctx.miner.id(t));
                    }
                }
                Parsed::Post(Post { hashtags, .. })
                | Parsed::Counted(post::Counted { hashtags, .. }) => {
                    for h in hashtags {
                        count(AggKind::Hashtag, h);
                    }
                }
                Parsed::BadPost(_) => {}
            }
        }
        match &ctx.processed {
            Some((kind, counter)) if *kind == rec.kind => counter.inc(),
            _ => {
                let label = match rec.kind {
                    RecordKind::Log => "log",
                    RecordKind::Post => "post",
                };
                let counter = m.records_processed.with_label_values(&[&rec.source, label]);
                counter.inc();
                ctx.processed = Some((rec.kind, counter));
            }
        }
        ctx.state.last_ts = Some(ts);
        ctx.state.applied_end = rec.end;
        ctx.state.line_no = rec.line_no.saturating_add(rec.line_span);
        ctx.state.wall_ms = Some(self.now);
        ctx.dirty = true;
        if let Some(t) = self.tally.as_deref_mut() {
            tally(t, &rec.source, &parsed);
        }
        if self.events {
            if let Some(e) = event_of(&rec, parsed, ts, template.map(|t| (&ctx.miner, t))) {
                self.pending.events.push(e);
            }
        }
        if let Some(marks) = self.marks.as_deref_mut() {
            let keys = std::mem::take(&mut marks.keys);
            marks.done.push(PendingMark {
                stream: rec.stream,
                end: rec.end,
                events_end: self.pending.events.len(),
                dead_letters_end: self.pending.dead_letters.len(),
                keys,
            });
        }
    }

    /// Dead-letters a record from the future or one later than its
    /// stream's watermark, and moves the stream's event time and watermark
    /// (a record from the future moves neither).
    fn judge_time(&mut self, ctx: &mut StreamCtx, rec: &RawRecord, ts: Millis) {
        let m = metrics();
        let params = self.params;
        if params.is_future(ts, self.now) {
            m.future_records.with_label_values(&[&rec.source]).inc();
            let detail = format!(
                "event time {} is more than {} s ahead of the wall clock {}",
                farol_common::time::rfc3339(ts),
                params.max_future / 1000,
                farol_common::time::rfc3339(self.now)
            );
            dead_letter(self.pending, rec, "future", detail, ts);
            return;
        }
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
            dead_letter(self.pending, rec, "late", detail, ts);
        }
        let max_ts = ctx.state.max_ts.map_or(ts, |x| x.max(ts));
        ctx.state.max_ts = Some(max_ts);
        ctx.state.watermark = Some(params.advance(ctx.state.watermark, max_ts));
    }
}

/// Adds an applied record to its source's tally.
fn tally(t: &mut FastMap<String, SourceTally>, source: &str, parsed: &Parsed) {
    let s = t.entry_ref(source).or_default();
    match parsed {
        Parsed::Log { line, .. } => {
            s.lines += 1;
            *s.classes.entry(line.class).or_default() += 1;
            if line.ts.is_none() {
                s.no_time += 1;
            }
            if line.ts_unreadable {
                s.unreadable_time += 1;
            }
        }
        Parsed::Post(_) | Parsed::Counted(_) => s.posts += 1,
        Parsed::BadPost(_) => {}
    }
}

/// The event document of an applied record (none for a malformed post).
/// `miner` is the stream's, when the record is a log line with template
/// `template`.
fn event_of(
    rec: &RawRecord,
    parsed: Parsed,
    ts: Millis,
    template: Option<(&Miner, usize)>,
) -> Option<Event> {
    match parsed {
        Parsed::Log { line, lossy } => {
            let mut fields = line.fields;
            fields.insert("format".into(), line.format.to_string());
            if lossy {
                fields.insert("invalid_utf8".into(), "true".into());
            }
            Some(Event::Log(LogEvent {
                id: format!("log:{}:{}", rec.stream, rec.offset),
                source: rec.source.to_string(),
                file: rec.file.clone().unwrap_or_default(),
                line_no: rec.line_no,
                offset: rec.offset,
                ts,
                ts_from_line: line.ts.is_some(),
                class: line.class.to_string(),
                level: line.level,
                message: line.message,
                fields,
                truncated: rec.truncated,
                template: template.map(|(m, t)| m.text(t)),
                template_id: template.map(|(m, t)| m.id(t).to_string()),
            }))
        }
        Parsed::Post(p) => Some(Event::Post(p)),
        Parsed::Counted(_) | Parsed::BadPost(_) => None,
    }
}

fn dead_letter(out: &mut Batch, rec: &RawRecord, reason: &str, detail: String, ts: Millis) {
    metrics()
        .dead_letters
        .with_label_values(&[&rec.source, reason])
        .inc();
    let mut raw = String::from_utf8_lossy(&rec.payload).into_owned();
    if raw.len() > DEAD_LETTER_RAW_MAX {
        let mut cut = DEAD_LETTER_RAW_MAX;
        while !raw.is_char_boundary(cut) {
            cut -= 1;
        }
        raw.truncate(cut);
    }
    out.dead_letters.push(DeadLetter {
        id: format!("dl:{reason}:{}:{}", rec.stream, rec.offset),
        source: rec.source.to_string(),
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

    /// A wall clock after every event time the tests use.
    const NOW: Millis = 1_800_000_000_000;

    fn rec(kind: RecordKind, end: u64, payload: &[u8]) -> RawRecord {
        RawRecord {
            source: "s".into(),
            stream: "s:1".into(),
            kind,
            platform: None,
            file: Some("f".into()),
            line_no: end,
            line_span: 0,
            offset: end * 100,
            end: end * 100 + 99,
            payload: payload.to_vec(),
            truncated: false,
            ingest_ms: 5_000_000,
            file_mtime: None,
            arrival_delay_ms: None,
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
        p.handle(rec(RecordKind::Log, 1, b"2020-01-01 00:10:00 ERROR a"), NOW);
        p.handle(rec(RecordKind::Log, 2, b"   at stack.frame(x)"), NOW);
        p.handle(rec(RecordKind::Log, 3, b"\xff\xfe bad utf8"), NOW);
        p.handle(
            rec(RecordKind::Log, 4, b"2020-01-01 00:00:00 WARN way back"),
            NOW,
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
    fn without_events_the_counters_dead_letters_and_states_are_the_same() {
        let input: [(RecordKind, &[u8]); 5] = [
            (RecordKind::Log, b"2020-01-01 00:10:00 ERROR a 1"),
            (RecordKind::Log, b"2020-01-01 00:10:01 ERROR a 2"),
            (RecordKind::Log, b"2020-01-01 00:00:00 WARN way back"),
            (
                RecordKind::Post,
                br##"{"id":"1","created_at":"2020-01-01T00:10:02Z","text":"#Rust #go #rust"}"##,
            ),
            (RecordKind::Post, b"{broken"),
        ];
        let run = |events: bool| {
            let mut p = proc(&HashMap::new()).events(events).tally_sources();
            for (i, (kind, payload)) in input.iter().enumerate() {
                p.handle(rec(*kind, i as u64 + 1, payload), NOW);
            }
            let mut b = p.flush();
            b.counts.sort();
            (b, p.take_tally())
        };
        let ((with, tally_with), (without, tally)) = (run(true), run(false));
        // The tally does not depend on events: 3 lines, 1 post (the broken
        // one is a dead letter), classes as written.
        assert_eq!(tally, tally_with);
        let s = &tally["s"];
        assert_eq!((s.lines, s.posts, s.no_time), (3, 1, 0));
        assert_eq!(s.classes, HashMap::from([("ERROR", 2), ("WARN", 1)]));
        assert_eq!(with.events.len(), 4);
        assert!(without.events.is_empty());
        assert_eq!(with.counts, without.counts);
        assert_eq!(count(&without, "ERROR"), 2);
        assert_eq!(count(&without, "rust"), 1);
        let reasons = |b: &Batch| -> Vec<String> {
            b.dead_letters.iter().map(|d| d.reason.clone()).collect()
        };
        assert_eq!(reasons(&without), ["late", "malformed_post"]);
        assert_eq!(reasons(&with), reasons(&without));
        assert_eq!(with.streams, without.streams);
    }

    #[test]
    fn without_templates_lines_count_their_class_alone() {
        let input: [&[u8]; 3] = [
            b"2020-01-01 00:10:00 ERROR disk 1 failed",
            b"2020-01-01 00:10:01 ERROR disk 2 failed",
            b"2020-01-01 00:10:02 INFO all good",
        ];
        let run = |templates: bool| {
            let mut p = proc(&HashMap::new()).templates(templates);
            for (i, payload) in input.iter().enumerate() {
                p.handle(rec(RecordKind::Log, i as u64 + 1, payload), NOW);
            }
            p.flush()
        };
        let (with, without) = (run(true), run(false));
        let kinds = |b: &Batch, kind: AggKind| -> u64 {
            b.counts
                .iter()
                .filter(|(k, _)| k.kind == kind)
                .map(|(_, c)| c)
                .sum()
        };
        // With templates on, every line counts one: the two disk lines
        // share one template, the third has its own. None without; the
        // classes as written either way.
        assert_eq!(kinds(&with, AggKind::LogTemplate), 3);
        let templates: std::collections::HashSet<&str> = with
            .counts
            .iter()
            .filter(|(k, _)| k.kind == AggKind::LogTemplate)
            .map(|(k, _)| k.key.as_str())
            .collect();
        assert_eq!(templates.len(), 2);
        assert_eq!(kinds(&without, AggKind::LogTemplate), 0);
        for b in [&with, &without] {
            assert_eq!((count(b, "ERROR"), count(b, "INFO")), (2, 1));
            assert_eq!(kinds(b, AggKind::LogClass), 3);
        }
        let Event::Log(e) = &without.events[0] else {
            panic!("a log event")
        };
        assert_eq!(e.template_id, None);
        let Event::Log(e) = &with.events[0] else {
            panic!("a log event")
        };
        assert!(e.template_id.is_some());
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
            p.handle(rec(RecordKind::Log, i, b"2020-01-01 00:10:00 INFO x"), NOW);
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
            NOW,
        );
        p.handle(rec(RecordKind::Post, 2, b"{broken"), NOW);
        let b = p.flush();
        assert_eq!((count(&b, "a"), count(&b, "b")), (1, 1));
        assert_eq!(b.dead_letters[0].reason, "malformed_post");
        assert_eq!(b.events.len(), 1);
    }

    fn live(end: u64, ts: Millis, level: &str) -> RawRecord {
        let line = format!("{} {level} live line", farol_common::time::rfc3339(ts));
        rec(RecordKind::Log, end, line.as_bytes())
    }

    #[test]
    fn a_live_stream_that_pauses_loses_nothing_to_lateness() {
        let mut p = proc(&HashMap::new());
        let t0: Millis = 1_800_000_000_000;
        // One line a second for 20 s, stamped with the wall clock.
        for i in 0..20 {
            p.handle(
                live(i + 1, t0 + i as Millis * 1000, "INFO"),
                t0 + i as Millis * 1000,
            );
        }
        // A 15 s pause, ticking every 200 ms, then the writer goes on.
        let mut now = t0 + 19_000;
        while now < t0 + 34_000 {
            now += 200;
            p.tick(now);
        }
        let wm = p.flush().streams[0].1.watermark.unwrap();
        assert!(wm <= now - 30_000, "extrapolated, minus lateness: {wm}");
        assert!(
            wm >= t0 + 19_000 + 14_000 - 30_000,
            "followed the clock: {wm}"
        );
        for i in 0..5 {
            p.handle(
                live(100 + i, now + i as Millis * 1000, "WARN"),
                now + i as Millis * 1000,
            );
        }
        let b = p.flush();
        assert!(b.dead_letters.is_empty(), "{:?}", b.dead_letters);
        assert_eq!(count(&b, "WARN"), 5);
    }

    #[test]
    fn an_archive_gone_idle_closes_all_its_windows() {
        let mut p = proc(&HashMap::new());
        p.handle(rec(RecordKind::Log, 1, b"2020-01-01 00:10:00 INFO x"), NOW);
        let before = p.flush().streams[0].1.watermark.unwrap();
        let wall = 1_800_000_000_000;
        p.handle(rec(RecordKind::Log, 2, b"2020-01-01 00:10:05 INFO x"), wall);
        p.tick(wall + 20_000);
        let after = p.flush().streams[0].1.watermark.unwrap();
        assert!(after >= before + 3_600_000);
    }

    #[test]
    fn a_line_from_the_future_moves_no_watermark_but_is_counted() {
        let mut p = proc(&HashMap::new());
        let now: Millis = 1_800_000_000_000;
        p.handle(live(1, now, "INFO"), now);
        p.handle(live(2, now + 86_400_000, "ERROR"), now);
        let b = p.flush();
        assert_eq!(b.streams[0].1.watermark, Some(now - 30_000));
        assert_eq!(b.streams[0].1.max_ts, Some(now));
        assert_eq!(count(&b, "ERROR"), 1, "range totals still include it");
        assert_eq!(b.dead_letters.len(), 1);
        assert_eq!(b.dead_letters[0].reason, "future");
    }

    #[test]
    fn leading_untimed_lines_take_the_time_of_the_first_timestamped_one() {
        let mut p = proc(&HashMap::new());
        p.handle(rec(RecordKind::Log, 1, b"--------- beginning of main"), NOW);
        p.handle(rec(RecordKind::Log, 2, b"==> Starting agent..."), NOW);
        assert!(p.flush().events.is_empty(), "held until a time is known");
        p.handle(rec(RecordKind::Log, 3, b"2020-01-01 00:10:00 INFO up"), NOW);
        let b = p.flush();
        let ts: Vec<Millis> = b.events.iter().map(Event::ts).collect();
        let want = farol_common::time::parse_rfc3339("2020-01-01T00:10:00Z").unwrap();
        assert_eq!(ts, vec![want; 3]);
        assert_eq!(b.streams[0].1.applied_end, 399);
    }

    #[test]
    fn held_lines_fall_back_to_ingest_time_after_the_timeout() {
        let mut p = proc(&HashMap::new());
        p.handle(rec(RecordKind::Log, 1, b"banner"), 0);
        p.tick(5_000);
        assert!(p.flush().events.is_empty());
        p.tick(10_000);
        let b = p.flush();
        assert_eq!(b.events.len(), 1);
        assert_eq!(b.events[0].ts(), 5_000_000, "the ingest time");
    }

    #[test]
    fn year_less_lines_are_dated_from_the_file_not_the_clock() {
        let mtime = farol_common::time::parse_rfc3339("2025-01-01T00:05:00Z").unwrap();
        let run = |now: Millis| {
            let mut p = proc(&HashMap::new());
            for (i, line) in ["Dec 31 23:59:58 gw app: a", "Jan  1 00:00:03 gw app: b"]
                .iter()
                .enumerate()
            {
                let mut r = rec(RecordKind::Log, i as u64 + 1, line.as_bytes());
                r.file_mtime = Some(mtime);
                p.handle(r, now);
            }
            p.end_of_input();
            let mut b = p.flush();
            b.counts.sort();
            b.counts
        };
        let year = 366 * 86_400_000;
        let today = run(NOW);
        assert_eq!(today, run(NOW + year), "the clock moved by a year");
        let starts: Vec<String> = today
            .iter()
            .filter(|(k, _)| k.kind == AggKind::LogClass)
            .map(|(k, _)| farol_common::time::rfc3339(k.bucket_start))
            .collect();
        assert_eq!(starts, ["2024-12-31T23:59:50Z", "2025-01-01T00:00:00Z"]);
    }

    #[test]
    fn template_ids_survive_a_restart_from_the_persisted_state() {
        let template_of = |b: &Batch| -> Vec<String> {
            b.events
                .iter()
                .filter_map(|e| match e {
                    Event::Log(l) => l.template_id.clone(),
                    Event::Post(_) => None,
                })
                .collect()
        };
        let mut p = proc(&HashMap::new());
        p.handle(
            rec(
                RecordKind::Log,
                1,
                b"2020-01-01 00:10:00 INFO Connection from 10.0.0.1 closed",
            ),
            NOW,
        );
        let b = p.flush();
        let first = template_of(&b);
        let (id, state) = b.streams[0].clone();
        assert!(
            state.templates.is_some(),
            "new templates travel with the state"
        );
        let restored: HashMap<String, StreamState> = [(id, state)].into_iter().collect();
        let mut again = proc(&restored);
        again.handle(
            rec(
                RecordKind::Log,
                2,
                b"2020-01-01 00:10:01 INFO Connection from 10.9.9.9 closed",
            ),
            NOW,
        );
        let b2 = again.flush();
        assert_eq!(template_of(&b2), first);
        assert!(
            b2.streams[0].1.templates.is_none(),
            "unchanged templates stay home"
        );
    }

    #[test]
    fn streams_idle_past_the_retention_are_forgotten() {
        let mut p = proc(&HashMap::new());
        p.handle(rec(RecordKind::Log, 1, b"2020-01-01 00:10:00 INFO x"), NOW);
        p.flush();
        p.tick(NOW + 8 * 24 * 3_600_000);
        let b = p.flush();
        assert_eq!(b.retired, vec!["s:1".to_string()]);
        // Its records are new to a processor that forgot it.
        p.handle(rec(RecordKind::Log, 1, b"2020-01-01 00:10:00 INFO x"), NOW);
        assert_eq!(count(&p.flush(), "INFO"), 1);
    }
}
