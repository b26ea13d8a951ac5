//! Drops the effects of records the index already holds.
//!
//! A processor fleet delivers at least once: after a failover the new owner
//! of a partition resumes from its last state snapshot and processes again
//! records whose effects an earlier owner already handed on, in batches cut
//! at other places. Batches from `farol process` therefore carry one
//! [`RecordMark`] per record (its stream, its stream position and exactly
//! what it added). The sink keeps the highest stream position applied per
//! stream, starting from the index's durable stream states, and lets a
//! record's events, dead letters and count increments through only when its
//! position is past that: each record counts once, whatever the batching.
//! Stream positions strictly increase within a stream and a stream's records
//! are processed in order, so "past the highest applied" is exactly "not yet
//! applied". Batches without marks (the in-process pipeline, which never
//! sends a record twice) pass unchanged.

use farol_common::model::{Batch, BucketKey, RecordMark, StreamState};
use std::collections::HashMap;

/// The highest stream position applied per stream.
#[derive(Debug, Default)]
pub struct Applied {
    ends: HashMap<String, u64>,
    skipped: u64,
}

impl Applied {
    /// Starts from the index's durable stream states.
    pub fn from_states(states: &HashMap<String, StreamState>) -> Self {
        Applied {
            ends: states
                .iter()
                .map(|(id, s)| (id.clone(), s.applied_end))
                .collect(),
            skipped: 0,
        }
    }

    /// Records dropped so far because the index already held them.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// What of `b` the index does not hold yet.
    pub fn filter(&mut self, mut b: Batch) -> Batch {
        if b.records.is_empty() {
            for (id, s) in &b.streams {
                let e = self.ends.entry(id.clone()).or_insert(0);
                *e = (*e).max(s.applied_end);
            }
            for id in &b.retired {
                self.ends.remove(id);
            }
            return b;
        }
        let marks = std::mem::take(&mut b.records);
        let mut events = std::mem::take(&mut b.events).into_iter();
        let mut dead = std::mem::take(&mut b.dead_letters).into_iter();
        let keys: Vec<BucketKey> = std::mem::take(&mut b.counts)
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        let mut added = vec![0u64; keys.len()];
        let (mut ev_at, mut dl_at) = (0usize, 0usize);
        let mut kept_ends: HashMap<usize, u64> = HashMap::new();
        for RecordMark {
            stream,
            end,
            events_end,
            dead_letters_end,
            counts,
        } in marks
        {
            let n_ev = (events_end as usize).saturating_sub(ev_at);
            let n_dl = (dead_letters_end as usize).saturating_sub(dl_at);
            ev_at += n_ev;
            dl_at += n_dl;
            let applied = b
                .streams
                .get(stream as usize)
                .and_then(|(id, _)| self.ends.get(id))
                .copied()
                .unwrap_or(0);
            let last_kept = kept_ends.get(&(stream as usize)).copied().unwrap_or(0);
            if end <= applied.max(last_kept) {
                self.skipped += 1;
                if let Some((_, st)) = b.streams.get(stream as usize) {
                    farol_common::metrics::metrics()
                        .index_duplicates_skipped
                        .with_label_values(&[&st.source])
                        .inc();
                }
                events.by_ref().take(n_ev).for_each(drop);
                dead.by_ref().take(n_dl).for_each(drop);
                continue;
            }
            kept_ends.insert(stream as usize, end);
            b.events.extend(events.by_ref().take(n_ev));
            b.dead_letters.extend(dead.by_ref().take(n_dl));
            for i in counts {
                if let Some(a) = added.get_mut(i as usize) {
                    *a += 1;
                }
            }
        }
        b.counts = keys
            .into_iter()
            .zip(added)
            .filter(|(_, n)| *n > 0)
            .collect();
        b.streams.retain(|(id, s)| self.advance(id, s));
        for id in &b.retired {
            self.ends.remove(id);
        }
        b
    }

    /// True when `s` is not older than what was applied for stream `id`
    /// (then it is the stream's newest state and is remembered).
    fn advance(&mut self, id: &str, s: &StreamState) -> bool {
        match self.ends.get_mut(id) {
            Some(e) if s.applied_end < *e => false,
            Some(e) => {
                *e = s.applied_end;
                true
            }
            None => {
                self.ends.insert(id.to_string(), s.applied_end);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use farol_common::model::{AggKind, DeadLetter};

    fn key(k: &str) -> BucketKey {
        BucketKey {
            bucket_start: 0,
            kind: AggKind::LogClass,
            source: "s".into(),
            key: k.into(),
        }
    }

    fn dl(id: &str) -> DeadLetter {
        DeadLetter {
            id: id.into(),
            source: "s".into(),
            reason: "late".into(),
            detail: String::new(),
            raw: String::new(),
            ts: 0,
        }
    }

    fn state(end: u64) -> StreamState {
        StreamState {
            source: "s".into(),
            applied_end: end,
            ..StreamState::default()
        }
    }

    /// Records ending at 10, 20, 30 of stream "f": INFO, ERROR (with a dead
    /// letter), INFO.
    fn batch() -> Batch {
        Batch {
            counts: vec![(key("INFO"), 2), (key("ERROR"), 1)],
            dead_letters: vec![dl("d20")],
            streams: vec![("f".into(), state(30))],
            records: vec![
                RecordMark {
                    stream: 0,
                    end: 10,
                    events_end: 0,
                    dead_letters_end: 0,
                    counts: vec![0],
                },
                RecordMark {
                    stream: 0,
                    end: 20,
                    events_end: 0,
                    dead_letters_end: 1,
                    counts: vec![1],
                },
                RecordMark {
                    stream: 0,
                    end: 30,
                    events_end: 0,
                    dead_letters_end: 1,
                    counts: vec![0],
                },
            ],
            ..Batch::default()
        }
    }

    #[test]
    fn a_fresh_stream_takes_everything() {
        let mut a = Applied::default();
        let b = a.filter(batch());
        assert_eq!(b.counts, vec![(key("INFO"), 2), (key("ERROR"), 1)]);
        assert_eq!(b.dead_letters.len(), 1);
        assert_eq!(b.streams.len(), 1);
        assert_eq!(a.skipped(), 0);
        // The same batch again adds nothing.
        let again = a.filter(batch());
        assert!(again.counts.is_empty() && again.dead_letters.is_empty());
        assert!(again.streams.iter().all(|(_, s)| s.applied_end == 30));
        assert_eq!(a.skipped(), 3);
    }

    #[test]
    fn a_batch_cut_elsewhere_adds_only_the_records_past_the_applied_end() {
        let mut a = Applied::from_states(&HashMap::from([("f".to_string(), state(15))]));
        let b = a.filter(batch());
        assert_eq!(b.counts, vec![(key("INFO"), 1), (key("ERROR"), 1)]);
        assert_eq!(b.dead_letters.len(), 1);
        assert_eq!(a.skipped(), 1);
    }

    #[test]
    fn an_older_state_never_replaces_a_newer_one() {
        let mut a = Applied::from_states(&HashMap::from([("f".to_string(), state(40))]));
        let b = a.filter(batch());
        assert!(b.is_empty() || (b.counts.is_empty() && b.streams.is_empty()));
    }
}
