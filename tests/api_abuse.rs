//! The API probed as a careless user and as an attacker would (issue 8),
//! against the real `farol` binary on 127.0.0.1: every probe is refused
//! with a 4xx (or a 503 when load is shed) whose JSON body names what is
//! wrong, the process stays alive, its memory stays bounded under 40
//! parallel maximal searches, slow and idle connections are closed, admin
//! routes are guarded, and feed secrets and upstream bodies stay out of
//! logs and `/healthz`.

mod support;

use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{await_value, farol_bin};

/// Peak resident memory (VmHWM) allowed for a process that ingested the
/// test's lines and then answered 40 parallel maximal searches, five times.
const PEAK_RSS_BOUND_KIB: u64 = 256 * 1024;
/// The API's bounds, as documented in the README (src/api/limits.rs).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_SEARCH_BYTES: usize = 4 * 1024 * 1024;

/// A `farol run` whose stderr goes to a file (so it can be read, and so it
/// is not a terminal).
struct Proc {
    child: Child,
    base: String,
    addr: String,
    stderr: PathBuf,
}

impl Proc {
    fn start(dir: &Path, listen: &str, args: &[&str], env: &[(&str, &str)]) -> Proc {
        let stderr = dir.join(format!("stderr-{}.log", std::process::id()));
        let mut child = Command::new(farol_bin())
            .arg("run")
            .arg("--data-dir")
            .arg(dir.join("data"))
            .args(["--listen", listen])
            .args(args)
            .env("FAROL_LOG", "warn")
            .env_remove("FAROL_ADMIN_TOKEN")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(std::fs::File::create(&stderr).unwrap()))
            .spawn()
            .expect("farol starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.trim().strip_prefix("listening on ") {
                    let _ = tx.send(url.to_string());
                }
            }
        });
        let base = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("farol prints its address within 30 s")
            .replace("0.0.0.0", "127.0.0.1");
        let addr = base.trim_start_matches("http://").to_string();
        Proc {
            child,
            base,
            addr,
            stderr,
        }
    }

    fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn get(&self, path: &str) -> (u16, Value) {
        let r = client()
            .get(format!("{}{}", self.base, path))
            .send()
            .expect("the API answers");
        let status = r.status().as_u16();
        let text = r.text().unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    fn totals(&self, source: &str) -> BTreeMap<String, u64> {
        let (status, v) = self.get(&format!(
            "/trends?kind=log_class&from=1970-01-01T00:00:00Z&to=2100-01-01T00:00:00Z&limit=10000&source={source}"
        ));
        assert_eq!(status, 200, "{v}");
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["key"].as_str().unwrap().to_string(),
                    i["count"].as_u64().unwrap(),
                )
            })
            .collect()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// One raw HTTP/1.1 exchange (`Connection: close`): status, head, body.
fn raw(addr: &str, request: &[u8]) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    // The server may answer (and close) before reading all of a huge request.
    let _ = s.write_all(request);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

/// Asserts a refusal: `status`, and a JSON body whose error names `what`.
fn refused(probe: &str, got: (u16, Value), status: u16, what: &str) {
    let (s, v) = got;
    assert_eq!(s, status, "{probe}: {v}");
    let msg = v["error"]
        .as_str()
        .unwrap_or_else(|| panic!("{probe}: not JSON: {v}"));
    assert!(
        msg.starts_with(&format!("{what}:")),
        "{probe}: error '{msg}' should name '{what}'"
    );
}

/// Log lines in a format Farol recognizes; returns the count per class.
fn write_lines(path: &Path, from: u64, n: u64, payload: usize) -> BTreeMap<String, u64> {
    let levels = ["INFO", "WARN", "ERROR", "DEBUG"];
    let mut want = BTreeMap::new();
    let mut out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    let mut buf = String::new();
    for i in from..from + n {
        let level = levels[(i % 4) as usize];
        let word = if i % 5 == 0 { "needle" } else { "hay" };
        buf.push_str(&format!(
            "2024-06-01 12:{:02}:{:02},{:03} {level} [w] {word} {i} {}\n",
            (i / 60_000) % 60,
            (i / 1000) % 60,
            i % 1000,
            "x".repeat(payload)
        ));
        *want.entry(level.to_string()).or_insert(0) += 1;
    }
    out.write_all(buf.as_bytes()).unwrap();
    want
}

fn vm_hwm_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

#[test]
fn every_probe_is_refused_with_json_naming_the_parameter() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let want = write_lines(&log, 0, 25, 10);
    let mut f = Proc::start(
        dir.path(),
        "127.0.0.1:0",
        &["--logs", log.to_str().unwrap()],
        &[],
    );
    await_value(Duration::from_secs(60), "25 lines counted", || {
        (f.totals("app") == want).then_some(())
    });

    // 1. Nesting that used to overflow the stack, and a query too long.
    let deep = format!("/search?q={}", "(".repeat(750));
    refused("750 (", f.get(&deep), 400, "q");
    let long = format!("/search?q={}", "a%20".repeat(1500));
    refused("long q", f.get(&long), 400, "q");
    // 6. field:* and syntax errors: 400 naming q, no internal field names.
    for q in [
        "text:*",
        "source:*",
        "nosuchfield:foo",
        "text:%5Ba%20TO",
        "%22x",
        "%22unbalanced%20AND%20(",
        "body:x",
    ] {
        let got = f.get(&format!("/search?q={q}"));
        let text = got.1.to_string();
        assert!(
            !text.contains("doc_type") && !text.contains("bucket"),
            "{q}: {text}"
        );
        refused(q, got, 400, "q");
    }
    // 8. Duplicates, unknown names, bad ranges and times.
    for (probe, what) in [
        ("/trends?kind=nope&kind=log_class&window=1m", "kind"),
        ("/trends?kind=log_class&kind=log_class&window=1m", "kind"),
        ("/trends?kind=log_class&window=1m&window=5m", "window"),
        ("/search?q=a&limit=5&limit=6", "limit"),
        ("/trends?kind=log_class&window=1m&limt=5", "limt"),
        (
            "/search?q=x&from=2024-01-02T00:00:00Z&to=2024-01-01T00:00:00Z",
            "to",
        ),
        (
            "/trends?kind=log_class&from=2024-01-01T00:00:00.0001Z&to=2024-01-01T00:01:00Z",
            "from",
        ),
        (
            "/trends?kind=log_class&from=2024-01-01T00:00:00Z&to=2024-01-01T00:01:00.000001Z",
            "to",
        ),
        (
            "/trends?kind=log_class&window=1m&at=0000-01-01T00:00:00Z",
            "at",
        ),
        (
            "/trends?kind=log_class&window=1m&at=0001-01-01T00:00:00Z",
            "at",
        ),
        (
            "/trends?kind=log_class&window=1m&at=9999-12-31T23:59:59Z",
            "at",
        ),
        (
            "/trends?kind=log_class&from=0000-01-01T00:00:00Z&to=2024-01-01T00:00:00Z",
            "from",
        ),
        ("/search?from=9999-12-31T23:59:59-01:00", "from"),
        ("/search?limit=10001", "limit"),
        ("/search?kind=tweet", "kind"),
    ] {
        refused(probe, f.get(probe), 400, what);
    }
    // An unknown source: 404 naming it, not 200 with null times.
    refused(
        "source=nope",
        f.get("/trends?kind=log_class&window=1m&source=nope"),
        404,
        "source",
    );
    let (status, v) = f.get("/trends?kind=log_class&window=1h&source=app");
    assert_eq!(status, 200, "{v}");
    // The largest representable range is accepted and formats as RFC 3339.
    let (status, v) =
        f.get("/trends?kind=log_class&from=0001-01-01T00:00:00Z&to=9999-12-31T23:59:50Z");
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["from"], "0001-01-01T00:00:00Z");
    assert_eq!(v["to"], "9999-12-31T23:59:50Z");
    // `total` counts matches, not returned hits: 5 of the 25 lines say needle.
    let v = await_value(Duration::from_secs(30), "the lines searchable", || {
        let (status, v) = f.get("/search?q=needle&limit=2");
        assert_eq!(status, 200, "{v}");
        (v["total"] != 0).then_some(v)
    });
    assert_eq!(v["total"], 5, "{v}");
    assert_eq!(v["hits"].as_array().unwrap().len(), 2);
    assert_eq!(v["truncated"], false);

    // The framework's own refusals are JSON too.
    refused("404", f.get("/nope"), 404, "path");
    let r = client().post(format!("{}/trends", f.base)).send().unwrap();
    assert_eq!(r.status().as_u16(), 405);
    assert!(r.headers().get("allow").is_some(), "405 keeps Allow");
    let v: Value = r.json().unwrap();
    assert!(v["error"].as_str().unwrap().starts_with("method:"), "{v}");
    let uri = format!("/search?q={}", "a".repeat(10_000));
    refused("414", f.get(&uri), 414, "uri");
    // A head too large for the HTTP layer: refused before routing, still JSON.
    let huge = format!(
        "GET /search?q={} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
        "a".repeat(100_000)
    );
    let (status, _, body) = raw(&f.addr, huge.as_bytes());
    assert!(matches!(status, 414 | 431), "{status}");
    let v: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("not JSON: {body}"));
    assert!(v["error"].as_str().unwrap().starts_with("request:"), "{v}");
    let r = client()
        .get(format!("{}/search?q=a", f.base))
        .body(vec![b'x'; 100_000])
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);
    let v: Value = r.json().unwrap();
    assert!(v["error"].as_str().unwrap().starts_with("body:"), "{v}");

    // 4. Admin without a token: loopback peer, but a foreign Host (DNS rebinding).
    for host in ["evil.example", "evil.example:8080", "127.0.0.1.nip.io"] {
        let req = format!(
            "PUT /admin/index/write_block HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        let (status, _, body) = raw(&f.addr, req.as_bytes());
        assert_eq!(status, 403, "{host}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert!(v["error"].as_str().unwrap().starts_with("host:"), "{v}");
    }
    let (_, v) = f.get("/admin/index/write_block");
    assert_eq!(v["write_block"], false, "the block was never set");
    // A loopback Host is accepted.
    let req =
        b"GET /admin/index/write_block HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    assert_eq!(raw(&f.addr, req).0, 200);

    assert!(f.alive(), "farol survived every probe");
    let (status, v) = f.get("/healthz");
    assert_eq!(status, 200, "{v}");
    let stderr = f.stderr_text();
    assert!(
        !stderr.contains('\u{1b}'),
        "no colour codes in a file: {stderr}"
    );
}

#[test]
fn forty_parallel_maximal_searches_stay_under_the_memory_bound() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("big.log");
    // ~700-byte events: a 10 000-hit answer would be ~7 MB without the byte bound.
    let n = 20_000;
    let want = write_lines(&log, 0, n, 600);
    let mut f = Proc::start(
        dir.path(),
        "127.0.0.1:0",
        &["--logs", log.to_str().unwrap()],
        &[],
    );
    await_value(Duration::from_secs(240), "every line counted", || {
        (f.totals("big") == want).then_some(())
    });
    // Searchable (committed) too.
    await_value(Duration::from_secs(60), "every line searchable", || {
        let (_, v) = f.get("/search?limit=1");
        (v["total"] == n).then_some(())
    });
    let pid = f.child.id();
    let before = vm_hwm_kib(pid);
    let url = format!("{}/search?q=&limit=10000", f.base);
    let (mut ok, mut shed) = (0, 0);
    let c = client();
    for _round in 0..5 {
        let barrier = std::sync::Barrier::new(40);
        let answers: Vec<(u16, Option<String>, Vec<u8>)> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..40)
                .map(|_| {
                    s.spawn(|| {
                        barrier.wait();
                        let r = c.get(&url).send().expect("an answer");
                        let status = r.status().as_u16();
                        let retry = r
                            .headers()
                            .get("retry-after")
                            .map(|v| v.to_str().unwrap().to_string());
                        (status, retry, r.bytes().unwrap().to_vec())
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (status, retry, body) in answers {
            let v: Value = serde_json::from_slice(&body).expect("JSON");
            match status {
                200 => {
                    ok += 1;
                    assert_eq!(v["total"], n);
                    assert!(body.len() <= MAX_SEARCH_BYTES + 64 * 1024, "{}", body.len());
                    assert_eq!(v["truncated"], true, "the byte bound cut the answer");
                }
                503 => {
                    shed += 1;
                    assert_eq!(retry.as_deref(), Some("1"));
                    assert!(v["error"].as_str().unwrap().starts_with("request:"), "{v}");
                }
                s => panic!("unexpected {s}: {v}"),
            }
        }
    }
    let peak = vm_hwm_kib(pid);
    eprintln!(
        "40 parallel maximal searches x5: {ok} answered, {shed} shed; VmHWM {} MiB before, {} MiB after",
        before / 1024,
        peak / 1024
    );
    assert!(ok >= 5, "searches are answered under load");
    assert!(shed >= 1, "load is shed");
    assert!(f.alive());
    assert!(
        peak < PEAK_RSS_BOUND_KIB,
        "peak RSS {} MiB over the {} MiB bound",
        peak / 1024,
        PEAK_RSS_BOUND_KIB / 1024
    );
    assert_eq!(f.get("/healthz").0, 200);
}

/// Reads from `s` until the server closes it; returns how long that took.
fn time_to_close(mut s: TcpStream) -> Duration {
    let start = Instant::now();
    s.set_read_timeout(Some(HEADER_READ_TIMEOUT * 3)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return start.elapsed(),
            Ok(_) => {}
        }
    }
}

#[test]
fn slow_and_idle_connections_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let mut f = Proc::start(
        dir.path(),
        "127.0.0.1:0",
        &["--logs", "/nonexistent/*.log"],
        &[],
    );
    let addr = f.addr.clone();
    let silent = {
        let a = addr.clone();
        std::thread::spawn(move || time_to_close(TcpStream::connect(a).unwrap()))
    };
    let trickle = {
        let a = addr.clone();
        std::thread::spawn(move || {
            let mut s = TcpStream::connect(a).unwrap();
            let start = Instant::now();
            // One byte a second, never finishing the head.
            for b in b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: "
                .iter()
                .cycle()
            {
                if s.write_all(&[*b]).is_err() || start.elapsed() > HEADER_READ_TIMEOUT * 3 {
                    break;
                }
                std::thread::sleep(Duration::from_secs(1));
            }
            start.elapsed()
        })
    };
    let idle = {
        let a = addr.clone();
        std::thread::spawn(move || {
            let mut s = TcpStream::connect(a).unwrap();
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
                .unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut status = String::new();
            r.read_line(&mut status).unwrap();
            assert!(status.contains(" 200 "), "{status}");
            // The answer is read; the connection stays open, idle.
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                r.read_line(&mut line).unwrap();
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
                if line == "\r\n" {
                    break;
                }
            }
            let mut body = vec![0u8; len];
            r.read_exact(&mut body).unwrap();
            time_to_close(s)
        })
    };
    let limit = HEADER_READ_TIMEOUT + Duration::from_secs(5);
    for (what, h) in [("silent", silent), ("trickling", trickle), ("idle", idle)] {
        let took = h.join().unwrap();
        eprintln!("{what} connection closed after {took:?}");
        assert!(took < limit, "{what} connection held for {took:?}");
        assert!(
            took >= HEADER_READ_TIMEOUT - Duration::from_secs(1),
            "{what}: closed too early ({took:?})"
        );
    }
    assert!(f.alive());
}

#[test]
fn admin_token_and_the_network_warning() {
    let dir = tempfile::tempdir().unwrap();
    let mut f = Proc::start(
        dir.path(),
        "0.0.0.0:0",
        &["--logs", "/nonexistent/*.log"],
        &[("FAROL_ADMIN_TOKEN", "t0ken-for-test")],
    );
    let url = format!("{}/admin/index/write_block", f.base);
    let c = client();
    let r = c.put(&url).send().unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    let v: Value = r.json().unwrap();
    assert!(
        v["error"].as_str().unwrap().starts_with("authorization:"),
        "{v}"
    );
    let r = c.put(&url).bearer_auth("wrong").send().unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = c.put(&url).bearer_auth("t0ken-for-test").send().unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = c.delete(&url).bearer_auth("t0ken-for-test").send().unwrap();
    assert_eq!(r.status().as_u16(), 200);
    // With the token, a foreign Host is fine (the token is the credential).
    let req = b"GET /admin/index/write_block HTTP/1.1\r\nHost: farol.example\r\nAuthorization: Bearer t0ken-for-test\r\nConnection: close\r\n\r\n";
    assert_eq!(raw(&f.addr, req).0, 200);
    assert!(f.alive());
    let stderr = f.stderr_text();
    let warnings = stderr.matches("reachable from the network").count();
    assert_eq!(warnings, 1, "{stderr}");
    assert!(!stderr.contains("t0ken-for-test"), "{stderr}");
}

#[test]
fn feeds_report_unhealthy_without_secrets_or_upstream_bodies() {
    use farol_ingest::feed::replay::{Fault, Replay};
    let rt = tokio::runtime::Runtime::new().unwrap();
    let replay = rt
        .block_on(Replay::start(vec![], vec![]))
        .expect("replay server");
    // Every poll of the "denied" feed is refused with a 401 and a body.
    replay.inject(std::iter::repeat_n(Fault::Unauthorized, 1000));
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("farol.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[[feeds]]
name = "closed"
platform = "mastodon"
url = "http://127.0.0.1:{closed_port}/?access_token=SECRET-IN-URL"
interval = "1s"

[[feeds]]
name = "denied"
platform = "mastodon"
url = "{}"
interval = "1s"
token_env = "TEST_DENIED_TOKEN"
"#,
            replay.url()
        ),
    )
    .unwrap();
    let mut f = Proc::start(
        dir.path(),
        "127.0.0.1:0",
        &["--config", config.to_str().unwrap()],
        &[
            ("TEST_DENIED_TOKEN", "SECRET-TOKEN"),
            ("FAROL_LOG", "info,farol_ingest=debug"),
        ],
    );
    let v = await_value(Duration::from_secs(60), "both feeds failing", || {
        let (status, v) = f.get("/healthz");
        let failing = &v["failing"];
        (status == 503
            && failing["source:closed"]
                .as_str()
                .is_some_and(|r| r.contains("network"))
            && failing["source:denied"]
                .as_str()
                .is_some_and(|r| r.contains("authorization")))
        .then_some(v)
    });
    let text = v.to_string();
    assert!(!text.contains("SECRET"), "{text}");
    assert!(text.contains("access_token=REDACTED"), "{text}");
    assert!(
        !text.contains("token is invalid"),
        "no upstream body: {text}"
    );
    assert!(f.alive());
    drop(f);
    let stderr = std::fs::read_to_string(
        dir.path()
            .join(format!("stderr-{}.log", std::process::id())),
    )
    .unwrap();
    assert!(stderr.contains("access_token=REDACTED"), "{stderr}");
    assert!(!stderr.contains("SECRET"), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "no colour codes in a file");
    drop(replay);
}
