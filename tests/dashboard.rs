//! The dashboard in a real browser: headless Chromium (Debian's `chromium`)
//! driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`,
//! NUL-separated JSON on file descriptors 3 and 4, no extra crate), against
//! the real `farol run` fed with known posts and log lines. Checks that the
//! top hashtag and its count appear, that a burst appended later appears
//! without a reload, that a search deep link lists a known line, that the
//! console stays free of errors, and writes `docs/dashboard.png`. Also checks
//! that the bundled demo fills both panels within 15 s. Without Chromium it
//! says `SKIPPED: chromium not available`.

mod support;

use base64::Engine;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};
use support::Farol;

const CHROMIUM: &str = "/usr/bin/chromium";

/// A headless Chromium with one page, spoken to over the DevTools pipe.
struct Browser {
    child: Child,
    to: std::io::PipeWriter,
    from: Receiver<Value>,
    next_id: u64,
    session: String,
    /// Console errors and uncaught exceptions seen so far.
    errors: Vec<String>,
}

impl Browser {
    /// Starts Chromium, opens a blank page with console reporting on.
    fn start(profile: &Path) -> Option<Browser> {
        if !Path::new(CHROMIUM).exists() {
            return None;
        }
        let (their_in, to) = std::io::pipe().expect("pipe");
        let (from_r, their_out) = std::io::pipe().expect("pipe");
        let (fd_in, fd_out): (OwnedFd, OwnedFd) = (their_in.into(), their_out.into());
        let (raw_in, raw_out) = (fd_in.as_raw_fd(), fd_out.as_raw_fd());
        let mut cmd = Command::new(CHROMIUM);
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--hide-scrollbars",
            "--no-first-run",
            "--remote-debugging-pipe",
            "--window-size=1280,900",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        // SAFETY: only async-signal-safe fcntl/dup2 calls between fork and
        // exec. Both ends are first copied above 10, so that neither is lost
        // nor left close-on-exec when one already sits on 3 or 4.
        unsafe {
            cmd.pre_exec(move || {
                let a = libc::fcntl(raw_in, libc::F_DUPFD, 10);
                let b = libc::fcntl(raw_out, libc::F_DUPFD, 10);
                if a < 0 || b < 0 || libc::dup2(a, 3) < 0 || libc::dup2(b, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("chromium starts");
        drop((fd_in, fd_out));
        let (tx, from) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut r = from_r;
            let mut buf = Vec::new();
            let mut chunk = [0u8; 65536];
            while let Ok(n) = r.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                while let Some(end) = buf.iter().position(|&b| b == 0) {
                    let msg: Vec<u8> = buf.drain(..=end).collect();
                    if let Ok(v) = serde_json::from_slice(&msg[..end]) {
                        if tx.send(v).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        let mut b = Browser {
            child,
            to,
            from,
            next_id: 0,
            session: String::new(),
            errors: Vec::new(),
        };
        let target = b.call("Target.createTarget", json!({"url": "about:blank"}));
        let target_id = target["targetId"].as_str().expect("target id").to_string();
        let attached = b.call(
            "Target.attachToTarget",
            json!({"targetId": target_id, "flatten": true}),
        );
        b.session = attached["sessionId"]
            .as_str()
            .expect("session id")
            .to_string();
        for domain in ["Runtime.enable", "Log.enable", "Page.enable"] {
            b.call(domain, json!({}));
        }
        b.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": 1280, "height": 1350, "deviceScaleFactor": 1, "mobile": false}),
        );
        Some(b)
    }

    /// Sends one command (to the page once attached) and waits for its answer.
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if !self.session.is_empty() {
            msg["sessionId"] = json!(self.session);
        }
        let mut bytes = serde_json::to_vec(&msg).expect("json");
        bytes.push(0);
        self.to.write_all(&bytes).expect("write to chromium");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let v = match self.from.recv_timeout(left) {
                Ok(v) => v,
                Err(RecvTimeoutError::Timeout) => panic!("chromium did not answer {method}"),
                Err(RecvTimeoutError::Disconnected) => panic!("chromium exited during {method}"),
            };
            if v["id"].as_u64() == Some(id) {
                assert!(v.get("error").is_none(), "{method} failed: {v}");
                return v["result"].clone();
            }
            self.note_event(&v);
        }
    }

    /// Keeps console errors and uncaught exceptions.
    fn note_event(&mut self, v: &Value) {
        let p = &v["params"];
        match v["method"].as_str() {
            Some("Runtime.exceptionThrown") => self
                .errors
                .push(format!("uncaught: {}", p["exceptionDetails"])),
            Some("Runtime.consoleAPICalled")
                if matches!(p["type"].as_str(), Some("error" | "assert")) =>
            {
                self.errors.push(format!("console.error: {}", p["args"]))
            }
            Some("Log.entryAdded") if p["entry"]["level"] == "error" => self
                .errors
                .push(format!("log error: {}", p["entry"]["text"])),
            _ => {}
        }
    }

    fn navigate(&mut self, url: &str) {
        self.call("Page.navigate", json!({"url": url}));
    }

    /// Evaluates a JavaScript expression in the page and returns its value.
    fn eval(&mut self, expr: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expr, "returnByValue": true}),
        );
        r["result"]["value"].clone()
    }

    /// The visible text of the element with this id.
    fn text(&mut self, id: &str) -> String {
        // Table bodies read one line per row, cells separated by spaces.
        self.eval(&format!(
            "(e => !e ? '' : e.querySelector('tr') \
               ? [...e.querySelectorAll('tr')].map(r => [...r.cells].map(c => c.textContent.trim()).join(' ')).join('\\n') \
               : e.innerText)(document.getElementById({id:?}))"
        ))
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    /// Polls `id`'s text until `ok` holds; panics showing the last text.
    fn await_text(&mut self, id: &str, limit: Duration, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let t = self.text(id);
            if ok(&t) {
                return t;
            }
            assert!(
                Instant::now() < deadline,
                "#{id} never showed what was expected; last:\n{t}"
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    fn screenshot(&mut self, path: &Path) {
        let r = self.call("Page.captureScreenshot", json!({"format": "png"}));
        let png = base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().expect("png data"))
            .expect("base64");
        std::fs::write(path, png).expect("screenshot written");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn chromium_or_skip(profile: &Path) -> Option<Browser> {
    let b = Browser::start(profile);
    if b.is_none() {
        eprintln!("SKIPPED: chromium not available");
    }
    b
}

fn rfc3339(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64;
    chrono_like(secs)
}

/// Formats Unix seconds as RFC 3339 UTC (civil-from-days, no extra crate).
fn chrono_like(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Appends posts, one per hashtag given, stamped `at`.
fn append_posts(path: &Path, first_id: usize, tags: &[&str], at: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("posts file");
    for (i, tag) in tags.iter().enumerate() {
        let line = json!({"id": format!("p{}", first_id + i), "created_at": at, "text": format!("watching the lighthouse #{tag}")});
        writeln!(f, "{line}").expect("post written");
    }
}

/// The row of a top table that names `#key`, if any.
fn row_with<'a>(table: &'a str, key: &str) -> Option<&'a str> {
    table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(key))
}

fn docs_png() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/dashboard.png")
}

#[test]
fn dashboard_shows_known_data_live_in_chromium() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(mut browser) = chromium_or_skip(&dir.path().join("profile")) else {
        return;
    };
    // Known data: 7 × #lighthouse, 4 × #harbour, 2 × #tide, a few seconds old.
    let now = std::time::SystemTime::now();
    let at = rfc3339(now - Duration::from_secs(3));
    let posts = dir.path().join("coast.jsonl");
    let mut tags = vec!["lighthouse"; 7];
    tags.extend(["harbour"; 4]);
    tags.extend(["tide"; 2]);
    append_posts(&posts, 0, &tags, &at);
    let logs = dir.path().join("keeper.log");
    let stamp = at.replace('T', " ").replace('Z', ",000");
    std::fs::write(
        &logs,
        format!(
            "{stamp} INFO [lamp] beam rotating normally\n\
             {stamp} ERROR [lamp] kraken sighted near the <b>rocks</b>\n\
             {stamp} WARN [fog] horn pressure low\n"
        ),
    )
    .expect("log file");
    // Short lateness and idle timeout so that the 1-minute window closes in seconds.
    let farol = Farol::start_with_env(
        &dir.path().join("data"),
        &[
            "--posts",
            posts.to_str().expect("utf-8 path"),
            "--logs",
            logs.to_str().expect("utf-8 path"),
        ],
        &[
            ("FAROL_WINDOWS__LATENESS", "1s"),
            ("FAROL_WINDOWS__IDLE_TIMEOUT", "1s"),
        ],
    );
    browser.navigate(&format!("{}/#window=1m&q=kraken", farol.base));
    browser.eval("window.__sameDocument = 42");

    // The top hashtag with the count the test wrote.
    let table = browser.await_text("rows-hashtag", Duration::from_secs(45), |t| {
        row_with(t, "#lighthouse").is_some()
    });
    let row = row_with(&table, "#lighthouse").unwrap_or_default();
    assert!(
        row.split_whitespace().any(|w| w == "7"),
        "top hashtag row shows its count 7: {row:?}\n{table}"
    );
    assert!(
        table
            .lines()
            .next()
            .unwrap_or_default()
            .starts_with("#lighthouse"),
        "#lighthouse is listed first:\n{table}"
    );
    browser.await_text("rows-log_class", Duration::from_secs(30), |t| {
        t.contains("ERROR") && t.contains("WARN")
    });
    // Log templates: the lines' messages (no variables in them) as text.
    browser.await_text("rows-log_template", Duration::from_secs(30), |t| {
        t.contains("horn pressure low") && t.contains("kraken sighted near the <b>rocks</b>")
    });

    // The search deep link lists the known line, escaped as text.
    let results = browser.await_text("results", Duration::from_secs(20), |t| {
        t.contains("kraken sighted")
    });
    assert!(
        results.contains("<b>rocks</b>"),
        "markup in data is shown as text: {results}"
    );
    let bold = browser.eval("document.querySelectorAll('#results b').length");
    assert_eq!(bold, json!(0), "no element was made from data");

    // Per-source panel and health.
    browser.await_text("rows-sources", Duration::from_secs(20), |t| {
        t.contains("coast") && t.contains("keeper")
    });
    browser.await_text("health", Duration::from_secs(10), |t| !t.is_empty());

    // A new burst appears without a reload.
    let later = rfc3339(std::time::SystemTime::now());
    append_posts(&posts, 100, &["squall"; 9], &later);
    let table = browser.await_text("rows-hashtag", Duration::from_secs(60), |t| {
        row_with(t, "#squall").is_some()
    });
    let row = row_with(&table, "#squall").unwrap_or_default();
    assert!(
        row.split_whitespace().any(|w| w == "9"),
        "the burst's count: {row:?}\n{table}"
    );
    assert_eq!(
        browser.eval("window.__sameDocument"),
        json!(42),
        "the page was not reloaded"
    );
    browser.await_text("rows-sources", Duration::from_secs(10), |t| {
        t.contains("coast")
    });

    let png = docs_png();
    std::fs::create_dir_all(png.parent().expect("docs dir")).expect("docs dir");
    browser.screenshot(&png);
    assert!(std::fs::metadata(&png)
        .map(|m| m.len() > 10_000)
        .unwrap_or(false));
    // The dark scheme too (kept beside the test's data, for a look).
    browser.call(
        "Emulation.setEmulatedMedia",
        json!({"features": [{"name": "prefers-color-scheme", "value": "dark"}]}),
    );
    std::thread::sleep(Duration::from_millis(500));
    browser.screenshot(&std::env::temp_dir().join("farol-dashboard-dark.png"));

    // Drain events that arrived after the last answer, then: no errors.
    std::thread::sleep(Duration::from_millis(300));
    browser.eval("1");
    assert!(
        browser.errors.is_empty(),
        "console errors: {:#?}",
        browser.errors
    );
}

#[test]
fn demo_fills_hashtag_and_log_panels_within_15_s() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(mut browser) = chromium_or_skip(&dir.path().join("profile")) else {
        return;
    };
    let started = Instant::now();
    let farol = Farol::start(&dir.path().join("data"), &[]);
    browser.navigate(&format!("{}/", farol.base));
    let left = Duration::from_secs(15).saturating_sub(started.elapsed());
    browser.await_text("rows-hashtag", left, |t| t.starts_with('#'));
    let left = Duration::from_secs(15).saturating_sub(started.elapsed());
    browser.await_text("rows-log_class", left, |t| {
        !t.is_empty() && !t.contains("nothing counted yet")
    });
    // The same through the API the page uses.
    for kind in ["hashtag", "log_class"] {
        let (status, v) = farol.get(&format!("/trends?kind={kind}&window=1h&limit=5"));
        assert_eq!(status, 200);
        assert!(
            v["items"].as_array().is_some_and(|a| !a.is_empty()),
            "{kind}: {v}"
        );
    }
    browser.eval("1");
    assert!(
        browser.errors.is_empty(),
        "console errors: {:#?}",
        browser.errors
    );
}

#[test]
fn overview_answers_304_to_its_own_etag() {
    let dir = tempfile::tempdir().expect("tempdir");
    let posts = dir.path().join("p.jsonl");
    append_posts(&posts, 0, &["one"], "2024-03-01T10:00:00Z");
    let farol = Farol::start(
        &dir.path().join("data"),
        &["--posts", posts.to_str().expect("utf-8 path")],
    );
    let url = format!("{}/api/overview", farol.base);
    let client = reqwest::blocking::Client::new();
    let body: Value = support::await_value(Duration::from_secs(20), "source p read", || {
        let v: Value = client.get(&url).send().ok()?.json().ok()?;
        (v["sources"]["p"]["records"] == 1).then_some(v)
    });
    assert!(body["health"].is_object(), "{body}");
    // Nothing changes any more, so the page's conditional GET gets a 304.
    support::await_value(Duration::from_secs(20), "a 304", || {
        let r = client.get(&url).send().ok()?;
        let etag = r.headers().get("etag")?.to_str().ok()?.to_string();
        let again = client
            .get(&url)
            .header("If-None-Match", &etag)
            .send()
            .ok()?;
        (again.status().as_u16() == 304).then_some(())
    });
    let other = client
        .get(&url)
        .header("If-None-Match", "\"nope\"")
        .send()
        .expect("answer");
    assert_eq!(other.status().as_u16(), 200);
}
