//! Event storage, decided at start-up: data streams (`PREFIX-logs`,
//! `PREFIX-posts`) under the ILM policy `PREFIX-events` (rollover by age and
//! primary shard size, delete after the retention), what an Elasticsearch
//! 8 user expects; or monthly indices by event time. A server that answers
//! that it has no ILM, or no data streams, gets what it can hold instead:
//! no policy, or monthly indices. Each such fallback is a named decision,
//! logged once with the server's own words, never a failed start.
//!
//! Data streams take only `create`: a replayed event answers 409 and
//! counts as a duplicate. Their `_id` is unique per backing index, so a
//! replay straddling a rollover can store a second copy of an event
//! document (the counters in `PREFIX-trends` stay exact either way);
//! monthly indices, keyed by event time, never do.

use super::client::{short, EsClient, EsError};
use elasticsearch::http::Method;
use farol_common::config::EsEvents;
use serde_json::{json, Value};
use std::time::Duration;

/// The ILM policy of the event data streams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IlmPolicy {
    /// Delete phase: a backing index is deleted this long after its rollover.
    pub retention: Duration,
    /// Hot phase: roll over at the latest at this age.
    pub rollover_max_age: Duration,
    /// Hot phase: roll over at the latest at this primary shard size (`50gb`).
    pub rollover_max_size: String,
}

impl IlmPolicy {
    /// The policy's name.
    pub fn name(prefix: &str) -> String {
        format!("{prefix}-events")
    }

    /// The body of `PUT _ilm/policy/NAME`.
    pub fn body(&self) -> Value {
        let secs = |d: Duration| format!("{}s", d.as_secs().max(1));
        json!({"policy": {
            "_meta": {"managed_by": "farol"},
            "phases": {
                "hot": {"min_age": "0ms", "actions": {"rollover": {
                    "max_age": secs(self.rollover_max_age),
                    "max_primary_shard_size": self.rollover_max_size,
                }}},
                "delete": {"min_age": secs(self.retention), "actions": {"delete": {}}},
            },
        }})
    }
}

/// What became of the ILM policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ilm {
    /// Not asked for, or nothing to manage (monthly indices).
    Off,
    /// Installed under this name.
    Installed(String),
    /// The server has no ILM: its answer.
    Unsupported(String),
}

/// The event storage in effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// What the config asked for.
    pub requested: EsEvents,
    /// What is used.
    pub events: EsEvents,
    /// Why it differs from the request: the server's answer.
    pub fallback: Option<String>,
    /// The ILM policy.
    pub ilm: Ilm,
}

impl Layout {
    /// Monthly indices, no ILM: what needs no server support.
    pub fn monthly() -> Layout {
        Layout {
            requested: EsEvents::Monthly,
            events: EsEvents::Monthly,
            fallback: None,
            ilm: Ilm::Off,
        }
    }

    /// The ILM policy the event templates name, when installed.
    pub fn policy(&self) -> Option<&str> {
        match (&self.ilm, self.events) {
            (Ilm::Installed(name), EsEvents::DataStream) => Some(name),
            _ => None,
        }
    }
}

/// The server's answer when it says it does not have an API: no handler
/// for the path (Elasticsearch's own wording, also OpenSearch's), 404, 405,
/// 501, or an `unsupported_operation_exception`; `None` for any other answer.
pub fn unsupported(status: u16, body: &Value) -> Option<String> {
    let text = body.to_string();
    let kind = body["error"]["type"].as_str().unwrap_or("");
    let says_so = matches!(status, 404 | 405 | 501)
        || (status == 400
            && (text.contains("no handler found")
                || kind == "unsupported_operation_exception"
                || kind == "invalid_index_name_exception"));
    says_so.then(|| format!("{status} {}", short(&text)))
}

/// Installs the ILM policy; a server without ILM is a decision, not an error.
pub async fn install_policy(
    client: &EsClient,
    prefix: &str,
    policy: &IlmPolicy,
) -> Result<Ilm, EsError> {
    let name = IlmPolicy::name(prefix);
    let path = format!("/_ilm/policy/{name}");
    let body = policy.body().to_string().into_bytes();
    let (status, v) = client.raw(Method::Put, &path, Some(body), false).await?;
    if status < 300 {
        tracing::info!(policy = %name, "ILM policy installed");
        return Ok(Ilm::Installed(name));
    }
    if let Some(why) = unsupported(status, &v) {
        tracing::warn!(
            decision = "no_ilm",
            answer = %why,
            "the index server has no ILM: event retention is left to the operator"
        );
        return Ok(Ilm::Unsupported(why));
    }
    Err(EsError::Status {
        status,
        what: format!("PUT {path}"),
        body: short(&v.to_string()),
    })
}

/// Creates a data stream (its template must be installed); `Ok(None)` when
/// it exists now, `Ok(Some(answer))` when the server has no data streams.
pub async fn create_data_stream(client: &EsClient, name: &str) -> Result<Option<String>, EsError> {
    let path = format!("/_data_stream/{name}");
    let (status, v) = client.raw(Method::Put, &path, None, false).await?;
    let exists = v["error"]["type"]
        .as_str()
        .is_some_and(|t| t.contains("already_exists"));
    if status < 300 || exists {
        return Ok(None);
    }
    if let Some(why) = unsupported(status, &v) {
        return Ok(Some(why));
    }
    Err(EsError::Status {
        status,
        what: format!("PUT {path}"),
        body: short(&v.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_rolls_over_then_deletes() {
        let p = IlmPolicy {
            retention: Duration::from_secs(30 * 86_400),
            rollover_max_age: Duration::from_secs(86_400),
            rollover_max_size: "50gb".into(),
        };
        let b = p.body();
        let hot = &b["policy"]["phases"]["hot"]["actions"]["rollover"];
        assert_eq!(hot["max_age"], "86400s");
        assert_eq!(hot["max_primary_shard_size"], "50gb");
        assert_eq!(b["policy"]["phases"]["delete"]["min_age"], "2592000s");
        assert!(b["policy"]["phases"]["delete"]["actions"]["delete"].is_object());
        assert_eq!(IlmPolicy::name("farol"), "farol-events");
    }

    #[test]
    fn only_an_answer_saying_so_means_unsupported() {
        // What osmem-server and noida-db answer (seen on both).
        let no_handler =
            json!({"error": "no handler found for uri [/_ilm/policy/x] and method [PUT]"});
        assert!(unsupported(400, &no_handler).is_some());
        let osmem = json!({"error": {"type": "unsupported_operation_exception",
            "reason": "data streams are not supported by osmem"}, "status": 400});
        assert!(
            unsupported(400, &osmem).is_some_and(|w| w.contains("data streams are not supported"))
        );
        // A real refusal is not a missing feature.
        let bad = json!({"error": {"type": "x_content_parse_exception", "reason": "bad"}});
        assert_eq!(unsupported(400, &bad), None);
        assert_eq!(
            unsupported(403, &json!({"error": {"type": "security_exception"}})),
            None
        );
    }
}
