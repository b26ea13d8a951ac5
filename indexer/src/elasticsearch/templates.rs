//! Index names, index templates and mappings, installed at start-up.
//!
//! Events go to the data streams `PREFIX-logs` and `PREFIX-posts`, or to
//! monthly indices by event time (`PREFIX-logs-YYYY.MM`, so the same event
//! always lands in the same index and a rewrite replaces it): see
//! [`super::lifecycle`] for which, and why. Dead letters go to monthly
//! indices (`PREFIX-deadletter-YYYY.MM`); per-partition partial aggregates
//! to `PREFIX-trends`, and the durable stream state of each partition to
//! `PREFIX-state`. Reads name `PREFIX-logs*`, which covers both layouts.
//! Templates are (re)installed at every start; an existing index whose
//! mapping differs from its template is reported by name (it keeps its
//! mapping until it rolls over: Elasticsearch cannot change a field's type
//! in place).

use super::client::{EsClient, EsError};
use super::lifecycle::{self, Ilm, IlmPolicy, Layout};
use elasticsearch::http::Method;
use farol_common::config::EsEvents;
use farol_common::time::Millis;
use serde_json::{json, Value};

/// The index kinds Farol writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexKind {
    /// Parsed log lines.
    Logs,
    /// Parsed posts.
    Posts,
    /// Dead-lettered records.
    DeadLetter,
    /// Per-partition base-bucket counts.
    Trends,
    /// Per-partition stream state.
    State,
}

impl IndexKind {
    /// Every kind.
    pub const ALL: [IndexKind; 5] = [
        IndexKind::Logs,
        IndexKind::Posts,
        IndexKind::DeadLetter,
        IndexKind::Trends,
        IndexKind::State,
    ];

    fn suffix(self) -> &'static str {
        match self {
            IndexKind::Logs => "logs",
            IndexKind::Posts => "posts",
            IndexKind::DeadLetter => "deadletter",
            IndexKind::Trends => "trends",
            IndexKind::State => "state",
        }
    }

    fn time_based(self) -> bool {
        matches!(
            self,
            IndexKind::Logs | IndexKind::Posts | IndexKind::DeadLetter
        )
    }

    /// True for the kinds that become data streams.
    pub fn data_stream(self) -> bool {
        matches!(self, IndexKind::Logs | IndexKind::Posts)
    }

    /// What reads name: `farol-logs*` (the data stream and the monthly
    /// indices alike), or the index itself.
    pub fn pattern(self, prefix: &str) -> String {
        if self.time_based() {
            format!("{prefix}-{}*", self.suffix())
        } else {
            format!("{prefix}-{}", self.suffix())
        }
    }

    /// The monthly indices' pattern (`farol-logs-*`).
    fn monthly_pattern(self, prefix: &str) -> String {
        format!("{prefix}-{}-*", self.suffix())
    }

    /// The data stream's name (`farol-logs`).
    pub fn data_stream_name(self, prefix: &str) -> String {
        format!("{prefix}-{}", self.suffix())
    }

    /// Where a document with event time `ts` is written under `events`.
    pub fn target(self, prefix: &str, events: EsEvents, ts: Millis) -> String {
        match events {
            EsEvents::DataStream if self.data_stream() => self.data_stream_name(prefix),
            _ => self.index_for(prefix, ts),
        }
    }

    /// The index a document with event time `ts` goes to.
    pub fn index_for(self, prefix: &str, ts: Millis) -> String {
        if !self.time_based() {
            return self.pattern(prefix);
        }
        let month = chrono::DateTime::from_timestamp_millis(ts)
            .map(|d| d.format("%Y.%m").to_string())
            .unwrap_or_else(|| "0000.00".into());
        format!("{prefix}-{}-{month}", self.suffix())
    }

    /// The template's name.
    pub fn template_name(self, prefix: &str) -> String {
        format!("{prefix}-{}", self.suffix())
    }

    /// The mapping of this kind's indices.
    pub fn mappings(self) -> Value {
        let date = json!({"type": "date", "format": "epoch_millis"});
        let kw = json!({"type": "keyword"});
        let common = |mut props: serde_json::Map<String, Value>| {
            props.insert("@timestamp".into(), date.clone());
            props.insert("id".into(), kw.clone());
            props.insert("type".into(), kw.clone());
            props.insert("source".into(), kw.clone());
            json!({"dynamic": false, "properties": props})
        };
        let props = |v: Value| match v {
            Value::Object(m) => m,
            _ => serde_json::Map::new(),
        };
        match self {
            IndexKind::Logs => common(props(json!({
                "file": kw, "line_no": {"type": "long"}, "offset": {"type": "long"},
                "ts": date, "ts_from_line": {"type": "boolean"}, "class": kw,
                "level": kw, "message": {"type": "text"},
                "fields": {"type": "object", "enabled": false},
                "truncated": {"type": "boolean"},
                "template": {"type": "text"}, "template_id": kw,
            }))),
            IndexKind::Posts => common(props(json!({
                "platform": kw, "created_at": date, "author": kw,
                "text": {"type": "text"}, "lang": kw, "hashtags": kw,
                "url": {"type": "keyword", "index": false},
            }))),
            IndexKind::DeadLetter => common(props(json!({
                "reason": kw, "detail": {"type": "text"}, "raw": {"type": "text"},
                "ts": date,
            }))),
            IndexKind::Trends => json!({"dynamic": "strict", "properties": {
                "@timestamp": date, "kind": kw, "source": kw, "key": kw,
                "partition": {"type": "integer"}, "bucket_start": date,
                "count": {"type": "long"},
            }}),
            IndexKind::State => json!({"dynamic": false, "properties": {
                "partition": {"type": "integer"}, "updated": date,
                "generation": {"type": "long"},
                "streams": {"type": "object", "enabled": false},
                "journal": {"type": "object", "enabled": false},
            }}),
        }
    }

    /// The whole composable index template, for monthly indices (or the
    /// fixed index).
    pub fn template(self, prefix: &str) -> Value {
        let pattern = if self.time_based() {
            self.monthly_pattern(prefix)
        } else {
            self.pattern(prefix)
        };
        json!({
            "index_patterns": [pattern],
            "priority": 200,
            "template": {
                "settings": {"number_of_shards": 1, "number_of_replicas": 0},
                "mappings": self.mappings(),
            },
            "_meta": {"managed_by": "farol"},
        })
    }

    /// The template of this kind's data stream, under the ILM `policy`.
    pub fn data_stream_template(self, prefix: &str, policy: Option<&str>) -> Value {
        let mut settings = json!({"number_of_shards": 1, "number_of_replicas": 0});
        if let Some(p) = policy {
            settings["index.lifecycle.name"] = p.into();
        }
        json!({
            "index_patterns": [self.data_stream_name(prefix)],
            "data_stream": {},
            "priority": 200,
            "template": {"settings": settings, "mappings": self.mappings()},
            "_meta": {"managed_by": "farol"},
        })
    }
}

/// An existing index whose mapping differs from Farol's template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingConflict {
    /// The index.
    pub index: String,
    /// The field.
    pub field: String,
    /// What the index has.
    pub found: String,
    /// What the template says.
    pub expected: String,
}

impl std::fmt::Display for MappingConflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "index {} maps field '{}' as {} where Farol's template says {}",
            self.index, self.field, self.found, self.expected
        )
    }
}

/// What the start-up asks of the server.
#[derive(Debug, Clone)]
pub struct Wanted {
    /// Data streams or monthly indices.
    pub events: EsEvents,
    /// The ILM policy of the data streams (`None`: none).
    pub ilm: Option<IlmPolicy>,
}

async fn put_template(client: &EsClient, name: &str, body: &Value) -> Result<(), EsError> {
    client
        .request(Method::Put, &format!("/_index_template/{name}"), Some(body))
        .await
        .map(|_| ())
}

/// Decides the event storage ([`lifecycle`]), installs the ILM policy and
/// every template, creates the data streams and the fixed indices; returns
/// the layout in effect and the existing indices whose mapping differs
/// (each also logged by name).
pub async fn install(
    client: &EsClient,
    prefix: &str,
    wanted: &Wanted,
) -> Result<(Layout, Vec<MappingConflict>), EsError> {
    let mut layout = Layout {
        requested: wanted.events,
        events: wanted.events,
        fallback: None,
        ilm: Ilm::Off,
    };
    if wanted.events == EsEvents::DataStream {
        if let Some(policy) = &wanted.ilm {
            layout.ilm = lifecycle::install_policy(client, prefix, policy).await?;
        }
    } else if wanted.ilm.is_some() {
        tracing::info!(
            "ILM manages the event data streams only; monthly indices are deleted by name"
        );
    }
    for kind in IndexKind::ALL {
        let name = kind.template_name(prefix);
        if kind.data_stream() && layout.events == EsEvents::DataStream {
            put_template(
                client,
                &name,
                &kind.data_stream_template(prefix, layout.policy()),
            )
            .await?;
            let stream = kind.data_stream_name(prefix);
            if let Some(why) = lifecycle::create_data_stream(client, &stream).await? {
                tracing::warn!(
                    decision = "monthly_indices",
                    answer = %why,
                    "the index server has no data streams: events go to monthly indices {}",
                    kind.monthly_pattern(prefix)
                );
                layout.events = EsEvents::Monthly;
                layout.fallback = Some(why);
                // Templates already installed for a data stream become monthly ones.
                for k in IndexKind::ALL.into_iter().filter(|k| k.data_stream()) {
                    put_template(client, &k.template_name(prefix), &k.template(prefix)).await?;
                }
            } else {
                tracing::info!(stream = %stream, policy = ?layout.policy(), "data stream ready");
            }
        } else {
            put_template(client, &name, &kind.template(prefix)).await?;
        }
        if !kind.time_based() {
            let (status, body) = client
                .raw(
                    Method::Put,
                    &format!("/{}", kind.pattern(prefix)),
                    None,
                    false,
                )
                .await?;
            let exists = body["error"]["type"]
                .as_str()
                .is_some_and(|t| t.contains("already_exists"));
            if status >= 300 && !exists {
                return Err(EsError::Status {
                    status,
                    what: format!("creating index {}", kind.pattern(prefix)),
                    body: super::client::short(&body.to_string()),
                });
            }
        }
    }
    let mut conflicts = Vec::new();
    for kind in IndexKind::ALL {
        conflicts.extend(check_existing(client, prefix, kind).await?);
    }
    for c in &conflicts {
        tracing::warn!(index = %c.index, field = %c.field, "{c}");
    }
    Ok((layout, conflicts))
}

async fn check_existing(
    client: &EsClient,
    prefix: &str,
    kind: IndexKind,
) -> Result<Vec<MappingConflict>, EsError> {
    let path = format!(
        "/{}/_mapping?allow_no_indices=true&ignore_unavailable=true",
        kind.pattern(prefix)
    );
    let (status, found) = client.raw(Method::Get, &path, None, false).await?;
    if status == 404 {
        return Ok(vec![]);
    }
    let expected = kind.mappings();
    let mut out = Vec::new();
    let Some(indices) = found.as_object() else {
        return Ok(out);
    };
    for (index, m) in indices {
        let props = &m["mappings"]["properties"];
        for (field, want) in expected["properties"].as_object().into_iter().flatten() {
            let want_t = want["type"].as_str().unwrap_or("object");
            let have = &props[field];
            if have.is_null() {
                continue; // added lazily by the first document that has it
            }
            let have_t = have["type"].as_str().unwrap_or("object");
            if have_t != want_t {
                out.push(MappingConflict {
                    index: index.clone(),
                    field: field.clone(),
                    found: have_t.into(),
                    expected: want_t.into(),
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_indices_are_monthly_by_event_time() {
        assert_eq!(
            IndexKind::Logs.index_for("farol", 1_700_000_000_000),
            "farol-logs-2023.11"
        );
        assert_eq!(IndexKind::Trends.index_for("x", 0), "x-trends");
        assert_eq!(IndexKind::Posts.pattern("farol"), "farol-posts*");
        assert_eq!(
            IndexKind::Posts.template("farol")["index_patterns"],
            json!(["farol-posts-*"])
        );
    }

    #[test]
    fn events_go_to_their_data_stream_or_month() {
        let ts = 1_700_000_000_000;
        assert_eq!(
            IndexKind::Logs.target("farol", EsEvents::DataStream, ts),
            "farol-logs"
        );
        assert_eq!(
            IndexKind::Logs.target("farol", EsEvents::Monthly, ts),
            "farol-logs-2023.11"
        );
        // Dead letters stay monthly.
        assert_eq!(
            IndexKind::DeadLetter.target("farol", EsEvents::DataStream, ts),
            "farol-deadletter-2023.11"
        );
        let t = IndexKind::Posts.data_stream_template("farol", Some("farol-events"));
        assert_eq!(t["index_patterns"], json!(["farol-posts"]));
        assert!(t["data_stream"].is_object());
        assert_eq!(
            t["template"]["settings"]["index.lifecycle.name"],
            "farol-events"
        );
        let t = IndexKind::Posts.data_stream_template("farol", None);
        assert!(t["template"]["settings"]
            .get("index.lifecycle.name")
            .is_none());
    }
}
