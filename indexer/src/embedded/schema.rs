//! How documents map to tantivy fields: one schema for events, dead
//! letters and counter documents, and the deterministic ids that make
//! rewrites replace instead of duplicate.

use super::Inner;
use farol_common::model::{BucketKey, DeadLetter, Event};
use tantivy::schema::{Field, Schema, FAST, INDEXED, STORED, STRING, TEXT};
use tantivy::TantivyDocument;

#[derive(Clone, Copy)]
pub(super) struct Fields {
    pub(super) id: Field,
    pub(super) doc_type: Field,
    pub(super) source: Field,
    pub(super) ts: Field,
    pub(super) text: Field,
    pub(super) class: Field,
    pub(super) tags: Field,
    pub(super) body: Field,
    pub(super) kind: Field,
    pub(super) key: Field,
    pub(super) bucket: Field,
    pub(super) count: Field,
}

pub(super) fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let f = Fields {
        id: b.add_text_field("id", STRING | STORED),
        doc_type: b.add_text_field("doc_type", STRING | STORED),
        source: b.add_text_field("source", STRING | STORED),
        ts: b.add_i64_field("ts", INDEXED | FAST | STORED),
        text: b.add_text_field("text", TEXT),
        class: b.add_text_field("class", STRING),
        tags: b.add_text_field("tags", STRING),
        body: b.add_text_field("body", STORED),
        kind: b.add_text_field("kind", STRING | STORED),
        key: b.add_text_field("key", STRING | STORED),
        bucket: b.add_i64_field("bucket", STORED),
        count: b.add_u64_field("count", STORED),
    };
    (b.build(), f)
}

pub(super) fn bucket_id(k: &BucketKey) -> String {
    format!(
        "bucket:{}:{}:{}:{}",
        k.kind.as_str(),
        k.source,
        k.key,
        k.bucket_start
    )
}

impl Inner {
    pub(super) fn event_doc(&self, e: &Event) -> TantivyDocument {
        let f = self.f;
        let mut d = TantivyDocument::default();
        d.add_text(f.id, e.id());
        d.add_text(f.source, e.source());
        d.add_i64(f.ts, e.ts());
        match e {
            Event::Log(l) => {
                d.add_text(f.doc_type, "log");
                d.add_text(f.text, &l.message);
                d.add_text(f.class, &l.class);
                // A log event's `key` is its log_template key (`&template_id=`).
                if let Some(t) = &l.template_id {
                    d.add_text(f.key, t);
                }
            }
            Event::Post(p) => {
                d.add_text(f.doc_type, "post");
                d.add_text(f.text, &p.text);
                for h in &p.hashtags {
                    d.add_text(f.tags, h);
                }
            }
        }
        d.add_text(f.body, serde_json::to_string(e).unwrap_or_default());
        d
    }

    pub(super) fn dead_letter_doc(&self, dl: &DeadLetter) -> TantivyDocument {
        let f = self.f;
        let mut d = TantivyDocument::default();
        d.add_text(f.id, &dl.id);
        d.add_text(f.doc_type, "deadletter");
        d.add_text(f.source, &dl.source);
        d.add_i64(f.ts, dl.ts);
        d.add_text(f.text, &dl.raw);
        d.add_text(f.class, &dl.reason);
        let mut body = serde_json::to_value(dl).unwrap_or_default();
        body["type"] = "deadletter".into();
        d.add_text(f.body, body.to_string());
        d
    }
}
