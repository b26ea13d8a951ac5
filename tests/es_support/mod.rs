//! Elasticsearch-API servers for the indexer tests (BRIEF §8): each
//! emulator started as a child process on a free 127.0.0.1 port and stopped
//! when dropped, or the real cluster in `FAROL_TEST_ES_URL`. The emulators
//! come from `scripts/install-es-emulators.sh` (run here when the test
//! script has not exported their paths already).

#![allow(dead_code)]

pub mod proxy;

use farol_common::model::LogEvent;
use farol_indexer::elasticsearch::client::EsSettings;

/// 2001-01-01T00:00:00Z: the first event time of the indexer tests.
pub const T0: i64 = 978_307_200_000;
/// The classes test events cycle through.
pub const CLASSES: [&str; 4] = ["INFO", "WARN", "ERROR", "DEBUG"];

/// Settings with small bulks, so that a few thousand events make many
/// requests.
pub fn settings(url: &str, prefix: &str, retry_for: Duration) -> EsSettings {
    EsSettings {
        url: url.into(),
        index_prefix: prefix.into(),
        bulk_max_docs: 70,
        bulk_max_bytes: 64 * 1024,
        bulk_concurrency: 2,
        retry_for,
        request_timeout: Duration::from_secs(30),
        ..EsSettings::default()
    }
}

/// Log event `i` of `source`: one a second from [`T0`], its class cycling
/// through [`CLASSES`], message `request i done`, no template.
pub fn log_event(source: &str, i: u64, level: Option<&str>) -> LogEvent {
    LogEvent {
        id: format!("{source}:{i}"),
        source: source.into(),
        file: "app.log".into(),
        line_no: i + 1,
        offset: i * 100,
        ts: T0 + i as i64 * 1000,
        ts_from_line: true,
        class: CLASSES[(i % 4) as usize].into(),
        level: level.map(str::to_string),
        message: format!("request {i} done"),
        fields: Default::default(),
        truncated: false,
        template: None,
        template_id: None,
    }
}

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Which server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// osmem-server (OpenSearch 3.x API).
    Osmem,
    /// noida-db (reports Elasticsearch 8.15).
    Noida,
    /// `FAROL_TEST_ES_URL`.
    External,
}

/// Paths of the emulators: (osmem-server, noida-db).
fn bins() -> &'static (PathBuf, PathBuf) {
    static BINS: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    BINS.get_or_init(|| {
        if let (Some(o), Some(n)) = (
            std::env::var_os("FAROL_TEST_OSMEM_BIN"),
            std::env::var_os("FAROL_TEST_NOIDA_BIN"),
        ) {
            return (o.into(), n.into());
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/install-es-emulators.sh");
        let out = Command::new("bash")
            .arg(&script)
            .stderr(Stdio::inherit())
            .output()
            .expect("running scripts/install-es-emulators.sh");
        assert!(out.status.success(), "installing the emulators failed");
        let text = String::from_utf8_lossy(&out.stdout);
        let get = |var: &str| -> PathBuf {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("export {var}=")))
                .map(|v| PathBuf::from(v.trim_matches('\'')))
                .unwrap_or_else(|| panic!("{var} missing from the install script's output"))
        };
        (get("FAROL_TEST_OSMEM_BIN"), get("FAROL_TEST_NOIDA_BIN"))
    })
}

/// A free port on 127.0.0.1 (free when asked; the server binds it next).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A running server.
pub struct EsServer {
    /// Which one.
    pub flavor: Flavor,
    /// Base URL.
    pub url: String,
    /// Its port.
    pub port: u16,
    child: Option<Child>,
    /// Data dir (noida), kept across restarts.
    pub data_dir: Option<tempfile::TempDir>,
}

/// The servers the suite runs against: the real cluster in
/// `FAROL_TEST_ES_URL`, otherwise both emulators.
pub fn servers() -> Vec<Flavor> {
    if std::env::var_os("FAROL_TEST_ES_URL").is_some() {
        return vec![Flavor::External];
    }
    match std::env::var("FAROL_TEST_ES_ONLY").as_deref() {
        Ok("osmem") => vec![Flavor::Osmem],
        Ok("noida") => vec![Flavor::Noida],
        _ => vec![Flavor::Osmem, Flavor::Noida],
    }
}

impl EsServer {
    /// Starts a server of `flavor` on a free port.
    pub fn start(flavor: Flavor) -> EsServer {
        let mut s = EsServer {
            flavor,
            url: String::new(),
            port: 0,
            child: None,
            data_dir: match flavor {
                Flavor::Noida => Some(tempfile::tempdir().expect("tempdir")),
                _ => None,
            },
        };
        match flavor {
            Flavor::External => {
                s.url = std::env::var("FAROL_TEST_ES_URL").expect("FAROL_TEST_ES_URL");
            }
            _ => s.spawn(free_port()),
        }
        s
    }

    fn spawn(&mut self, port: u16) {
        let (osmem, noida) = bins();
        let addr = format!("127.0.0.1:{port}");
        match self.flavor {
            Flavor::Osmem => {
                let mut child = Command::new(osmem)
                    .args(["-addr", &addr, "-no-ja"])
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("starting osmem-server");
                let mut line = String::new();
                BufReader::new(child.stdout.take().expect("stdout"))
                    .read_line(&mut line)
                    .expect("osmem-server's first line");
                let v: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("osmem-server said {line:?}: {e}"));
                self.url = v["url"].as_str().expect("url").trim_end_matches('/').into();
                self.child = Some(child);
            }
            Flavor::Noida => {
                let dir = self.data_dir.as_ref().expect("data dir").path();
                let child = Command::new(noida)
                    .args(["start", "--only", "elasticsearch", "--data-dir"])
                    .arg(dir)
                    .args(["--elasticsearch-port", &port.to_string()])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("starting noida-db");
                self.url = format!("http://{addr}");
                self.child = Some(child);
            }
            Flavor::External => {}
        }
        self.port = port;
        self.await_up(Duration::from_secs(60));
    }

    fn await_up(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        let client = http();
        loop {
            if let Ok(r) = client.get(&self.url).send() {
                if r.status().is_success() {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "{:?} at {} did not come up",
                self.flavor,
                self.url
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the server (the data dir stays).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            drop(c.stdin.take()); // osmem exits when its stdin closes
                                  // A graceful stop (SIGTERM to this one process) lets noida-db
                                  // release its port and save its data; SIGKILL after 10 s.
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port (and data dir).
    pub fn restart(&mut self) {
        self.stop();
        let port = self.port;
        self.spawn(port);
    }

    /// A JSON request; returns status and body.
    pub fn req(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut r = http().request(m, format!("{}{path}", self.url));
        if let Some(b) = body {
            r = r
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let resp = r.send().expect("the index server answers");
        let status = resp.status().as_u16();
        let text = resp.text().unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Refreshes every index, so that reads see every write.
    pub fn refresh(&self) {
        let (s, v) = self.req("POST", "/_refresh", None);
        assert!(s < 300, "refresh: {s} {v}");
    }

    /// `_count` of an index pattern (after a refresh).
    pub fn count(&self, pattern: &str, query: Option<Value>) -> u64 {
        self.refresh();
        let body = query.map(|q| serde_json::json!({ "query": q }));
        let (s, v) = self.req(
            "POST",
            &format!("/{pattern}/_count?ignore_unavailable=true&allow_no_indices=true"),
            body,
        );
        assert_eq!(s, 200, "count {pattern}: {v}");
        v["count"].as_u64().expect("count")
    }
}

impl Drop for EsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .no_proxy()
        .build()
        .expect("http client")
}

/// A prefix no other test uses.
pub fn unique_prefix(name: &str) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    format!(
        "t{}-{}-{}",
        std::process::id(),
        name,
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}
