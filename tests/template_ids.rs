//! Log template ids over the whole pipeline (`farol run`): `/search` filters
//! by `template_id` (400 for a malformed one), and ids survive a SIGKILL and
//! restart — the same lines keep their ids, and new lines of a template
//! learned before the kill get its old id. The truth is the generator's:
//! it knows which kind of message every line holds.

mod support;

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;
use std::time::Duration;
use support::{await_value, Farol};

const KINDS: usize = 3;

/// Appends `n` lines starting at line `from`; returns each line's kind.
/// The variable parts include plain words (user and host names) that are
/// new after the restart, so a miner that forgot what it learned would
/// start new templates for them.
fn append(path: &Path, from: usize, n: usize, names: &[&str]) -> Vec<usize> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    let mut kinds = Vec::new();
    for i in from..from + n {
        let kind = (i * 7 + i / 11) % KINDS;
        let name = names[i % names.len()];
        let msg = match kind {
            0 => format!("session opened for user {name} by uid {}", i % 9),
            1 => format!("connection from {name} port {} accepted", 1000 + i),
            _ => format!("job {i} of {name} finished in {} ms", i % 97),
        };
        let s = i as u64;
        writeln!(
            f,
            "2024-05-01 {:02}:{:02}:{:02},000 INFO [w-{}] {msg}",
            12 + s / 3600,
            (s / 60) % 60,
            s % 60,
            i % 3
        )
        .unwrap();
        kinds.push(kind);
    }
    kinds
}

/// Template id → count, from `/trends?kind=log_template` (all time).
fn template_totals(f: &Farol) -> BTreeMap<String, u64> {
    f.totals("log_template", "app")
}

/// Event id → template id of every indexed event of `source`.
fn event_templates(f: &Farol, limit: usize) -> BTreeMap<String, String> {
    let (status, v) = f.get(&format!("/search?kind=log&limit={limit}"));
    assert_eq!(status, 200, "{v}");
    hits(&v)
}

fn hits(v: &Value) -> BTreeMap<String, String> {
    v["hits"]
        .as_array()
        .expect("hits")
        .iter()
        .map(|h| {
            (
                h["id"].as_str().unwrap().to_string(),
                h["template_id"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Kind → the one template id its lines got (panics if a kind got two).
fn ids_by_kind(kinds: &[usize], f: &Farol, total: usize) -> BTreeMap<usize, String> {
    let v = await_value(Duration::from_secs(60), "every event searchable", || {
        let (status, v) = f.get(&format!("/search?kind=log&limit={}", total + 10));
        (status == 200 && v["hits"].as_array()?.len() == total).then_some(v)
    });
    let mut out: BTreeMap<usize, BTreeSet<String>> = BTreeMap::new();
    for h in v["hits"].as_array().unwrap() {
        let line = h["line_no"].as_u64().unwrap() as usize;
        out.entry(kinds[line - 1])
            .or_default()
            .insert(h["template_id"].as_str().unwrap().to_string());
    }
    out.into_iter()
        .map(|(k, ids)| {
            assert_eq!(ids.len(), 1, "kind {k} got {ids:?}");
            (k, ids.into_iter().next().unwrap())
        })
        .collect()
}

fn count_by_kind(kinds: &[usize], ids: &BTreeMap<usize, String>) -> BTreeMap<String, u64> {
    let mut want = BTreeMap::new();
    for k in kinds {
        *want.entry(ids[k].clone()).or_insert(0) += 1;
    }
    want
}

#[test]
fn template_ids_filter_search_and_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log = dir.path().join("app.log");
    const FIRST: usize = 600;
    const LATER: usize = 300;
    let mut kinds = append(&log, 0, FIRST, &["alice", "bob", "carol", "dave"]);
    let arg = log.to_str().unwrap();

    let f = Farol::start(&data, &["--logs", arg]);
    let ids = ids_by_kind(&kinds, &f, FIRST);
    assert_eq!(
        ids.values().collect::<BTreeSet<_>>().len(),
        KINDS,
        "one id per kind"
    );
    let want = count_by_kind(&kinds, &ids);
    support::await_totals(&f, "log_template", "app", &want, Duration::from_secs(60));

    // `/search` filtered by template id: exactly that kind's lines.
    for (k, id) in &ids {
        let (status, v) = f.get(&format!("/search?kind=log&limit=1000&template_id={id}"));
        assert_eq!(status, 200, "{v}");
        let n = kinds.iter().filter(|x| *x == k).count() as u64;
        assert_eq!(v["total"].as_u64(), Some(n), "kind {k}");
        assert!(hits(&v).values().all(|t| t == id));
    }
    for bad in ["xyz", "0123456789ABCDEF", "%27%20OR%201%3D1"] {
        let (status, v) = f.get(&format!("/search?template_id={bad}"));
        assert_eq!(status, 400, "{bad}: {v}");
        assert!(v["error"].as_str().unwrap().contains("template_id"), "{v}");
    }
    let before = event_templates(&f, FIRST + 10);

    // SIGKILL, new lines with names never seen, restart on the same data.
    f.kill();
    kinds.extend(append(&log, FIRST, LATER, &["erin", "frank", "grace"]));
    let f = Farol::start(&data, &["--logs", arg]);
    let want = count_by_kind(&kinds, &ids);
    support::await_totals(&f, "log_template", "app", &want, Duration::from_secs(90));
    assert_eq!(
        template_totals(&f),
        want,
        "no new template after the restart"
    );
    let after = ids_by_kind(&kinds, &f, FIRST + LATER);
    assert_eq!(after, ids, "new lines got the ids learned before the kill");
    let all = event_templates(&f, FIRST + LATER + 10);
    for (event, t) in &before {
        assert_eq!(all.get(event), Some(t), "{event} kept its template id");
    }
}
