//! Bad input is counted or dead-lettered, never fatal: malformed lines,
//! unreadable timestamps, invalid UTF-8, a 10 MB line, broken post JSON.

mod support;

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;
use support::{await_totals, await_value, Farol};

#[test]
fn malformed_lines_and_posts_are_counted_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("messy.log");
    let mut f = std::fs::File::create(&log).unwrap();
    f.write_all(b"2024-01-01 00:00:00 ERROR first line\n")
        .unwrap();
    f.write_all(b"garbage without a time or a level\n").unwrap();
    f.write_all(b"\xff\xfe\xfd not utf-8 at all\n").unwrap();
    f.write_all(&vec![b'x'; 10 * 1024 * 1024]).unwrap();
    f.write_all(b"\n").unwrap();
    f.write_all(b"2024-13-45 99:99:99 INFO unreadable timestamp\n")
        .unwrap();
    f.write_all(b"\x00\x01\x02 binary junk\n").unwrap();
    f.write_all(b"2024-01-01 00:00:05 WARN last line\n")
        .unwrap();
    drop(f);
    let posts = dir.path().join("mixed.jsonl");
    std::fs::write(
        &posts,
        concat!(
            r##"{"id":"1","created_at":"2024-01-01T00:00:00Z","text":"#ok"}"##,
            "\n{\"id\": \"2\", \"created_at\": \n",
            r#"{"delete":{"status":{"id":7}}}"#,
            "\n",
            r##"{"id":"3","created_at":"2024-01-01T00:00:09Z","text":"#ok again"}"##,
            "\n"
        ),
    )
    .unwrap();

    let data = dir.path().join("data");
    let farol = Farol::start(
        &data,
        &[
            "--logs",
            log.to_str().unwrap(),
            "--posts",
            posts.to_str().unwrap(),
        ],
    );
    let want: BTreeMap<String, u64> = [("ERROR", 1), ("WARN", 1), ("INFO", 1), ("UNKNOWN", 4)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    await_totals(&farol, "log_class", "messy", &want, Duration::from_secs(60));
    let want: BTreeMap<String, u64> = [("ok".to_string(), 2)].into();
    await_totals(&farol, "hashtag", "mixed", &want, Duration::from_secs(30));

    assert_eq!(
        farol.metric_sum("farol_truncated_lines_total", "messy"),
        1.0
    );
    assert_eq!(farol.metric_sum("farol_invalid_utf8_total", "messy"), 1.0);
    assert_eq!(
        farol.metric_sum("farol_dead_letters_total", "reason=\"malformed_post\""),
        2.0
    );
    let hits = await_value(Duration::from_secs(30), "dead letters searchable", || {
        let (status, v) = farol.get("/search?kind=deadletter&limit=100");
        assert_eq!(status, 200);
        let hits = v["hits"].as_array()?.clone();
        (hits.len() == 2).then_some(hits)
    });
    assert!(
        hits.iter().all(|h| h["reason"] == "malformed_post"),
        "{hits:?}"
    );
    let (status, _) = farol.get("/healthz");
    assert_eq!(status, 200, "bad input must not take a component down");
}

#[test]
fn bad_parameters_are_400_naming_the_parameter() {
    let dir = tempfile::tempdir().unwrap();
    let farol = Farol::start(&dir.path().join("data"), &["--logs", "/nonexistent/*.log"]);
    for (q, param) in [
        ("/trends?window=1h", "kind"),
        ("/trends?kind=nope&window=1h", "kind"),
        ("/trends?kind=hashtag&window=2h", "window"),
        ("/trends?kind=hashtag", "window"),
        ("/trends?kind=hashtag&window=1h&limit=0", "limit"),
        ("/trends?kind=hashtag&window=1h&limit=10001", "limit"),
        ("/trends?kind=hashtag&window=1h&at=yesterday", "at"),
        (
            "/trends?kind=hashtag&from=2024-01-01T00:00:05Z&to=2024-01-01T00:01:00Z",
            "from",
        ),
        (
            "/trends?kind=hashtag&from=2024-01-01T00:01:00Z&to=2024-01-01T00:00:00Z",
            "to",
        ),
        ("/trends?kind=hashtag&from=2024-01-01T00:00:00Z", "to"),
        ("/search?q=x&kind=tweet", "kind"),
        ("/search?q=x&from=never", "from"),
    ] {
        let (status, v) = farol.get(q);
        assert_eq!(status, 400, "{q}: {v}");
        let msg = v["error"].as_str().unwrap_or_default();
        assert!(
            msg.starts_with(param),
            "{q}: error '{msg}' should name '{param}'"
        );
    }
    // Query syntax errors in q are the user's to fix: 400 naming q, not a guess.
    let (status, v) = farol.get("/search?q=%22unbalanced%20AND%20(");
    assert_eq!(status, 400, "{v}");
    assert!(
        v["error"].as_str().unwrap_or_default().starts_with("q:"),
        "{v}"
    );
    let (status, v) = farol.get("/trends?kind=hashtag&window=1h&limit=10000");
    assert_eq!(status, 200, "{v}");
}
