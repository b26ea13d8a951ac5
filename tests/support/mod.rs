//! Helpers for whole-pipeline tests: start the real `farol` binary on a
//! random port, query its API, and await conditions with deadlines.

#![allow(dead_code)]

pub mod kafka;

use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `../shared/data` beside the repository, if present. Tests that need it
/// skip (saying so) when it is absent, as it is outside the Farol team.
pub fn shared_data() -> Option<PathBuf> {
    let p = std::env::var_os("FAROL_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data"));
    if p.join("loghub").is_dir() {
        Some(p)
    } else {
        eprintln!(
            "SKIPPED: {} is absent (the shared team data is not redistributable)",
            p.display()
        );
        None
    }
}

/// A running `farol` process; killed on drop.
pub struct Farol {
    pub child: Child,
    pub base: String,
}

pub fn farol_bin() -> &'static str {
    env!("CARGO_BIN_EXE_farol")
}

impl Farol {
    /// Starts `farol run --data-dir D --listen 127.0.0.1:0 ARGS…` and waits
    /// for its `listening on` line.
    pub fn start(data_dir: &Path, args: &[&str]) -> Farol {
        Farol::start_with_env(data_dir, args, &[])
    }

    /// [`Farol::start`] with extra environment variables.
    pub fn start_with_env(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Farol {
        Farol::start_logging(data_dir, args, env, None)
    }

    /// [`Farol::start_with_env`] writing stderr to `stderr` (inherited when `None`).
    pub fn start_logging(
        data_dir: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        stderr: Option<&Path>,
    ) -> Farol {
        Farol::start_command("run", data_dir, args, env, stderr)
    }

    /// Starts `farol COMMAND --data-dir D --listen 127.0.0.1:0 ARGS…` (any
    /// subcommand that prints `listening on`) and waits for that line.
    pub fn start_command(
        command: &str,
        data_dir: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        stderr: Option<&Path>,
    ) -> Farol {
        let stderr = match stderr {
            Some(p) => Stdio::from(std::fs::File::create(p).expect("stderr file")),
            None => Stdio::inherit(),
        };
        let mut child = Command::new(farol_bin())
            .envs(env.iter().copied())
            .arg(command)
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .env("FAROL_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("farol starts");
        let stdout = child.stdout.take().expect("stdout piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            let mut line = String::new();
            while r.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                if let Some(url) = line.trim().strip_prefix("listening on ") {
                    let _ = tx.send(url.to_string());
                }
                line.clear();
            }
        });
        let base = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("farol prints its address within 30 s");
        Farol { child, base }
    }

    pub fn get(&self, path_and_query: &str) -> (u16, Value) {
        let r = reqwest::blocking::get(format!("{}{}", self.base, path_and_query))
            .expect("API answers");
        let status = r.status().as_u16();
        let body = r.text().unwrap_or_default();
        (
            status,
            serde_json::from_str(&body).unwrap_or(Value::String(body)),
        )
    }

    pub fn metrics(&self) -> String {
        reqwest::blocking::get(format!("{}/metrics", self.base))
            .and_then(|r| r.text())
            .unwrap_or_default()
    }

    /// Sum of a metric over all its label sets matching `filter`.
    pub fn metric_sum(&self, name: &str, filter: &str) -> f64 {
        self.metrics()
            .lines()
            .filter(|l| l.starts_with(name) && l.contains(filter))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// Exact totals per key over all time for a source.
    pub fn totals(&self, kind: &str, source: &str) -> BTreeMap<String, u64> {
        let (status, v) = self.get(&format!(
            "/trends?kind={kind}&from=1970-01-01T00:00:00Z&to=2100-01-01T00:00:00Z&limit=10000&source={source}"
        ));
        assert_eq!(status, 200, "{v}");
        v["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|i| {
                (
                    i["key"].as_str().unwrap().to_string(),
                    i["count"].as_u64().unwrap(),
                )
            })
            .collect()
    }

    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Farol {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `f` until it returns `Some`, or panics with `what` after `limit`.
pub fn await_value<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until `source`'s totals equal `want`; on timeout shows the difference.
pub fn await_totals(
    f: &Farol,
    kind: &str,
    source: &str,
    want: &BTreeMap<String, u64>,
    limit: Duration,
) {
    let deadline = Instant::now() + limit;
    loop {
        let got = f.totals(kind, source);
        if &got == want {
            return;
        }
        if Instant::now() > deadline {
            panic!(
                "{source}: {kind} totals differ from ground truth\n  want {want:?}\n  got  {got:?}"
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The `items` of a `/trends` answer as key → count.
pub fn items(v: &Value) -> BTreeMap<String, u64> {
    v["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| {
            (
                i["key"].as_str().expect("key").to_string(),
                i["count"].as_u64().expect("count"),
            )
        })
        .collect()
}

/// Writes a config file `farol.toml` into `dir` and returns its path.
pub fn write_config(dir: &Path, body: &str) -> PathBuf {
    let p = dir.join("farol.toml");
    std::fs::write(&p, body).expect("config written");
    p
}

/// Runs `farol batch --format json` over `paths`; its JSON lines.
pub fn batch_json_lines(paths: &[&Path]) -> Vec<Value> {
    let out = Command::new(farol_bin())
        .args(["batch", "--format", "json"])
        .args(paths)
        .output()
        .expect("farol batch runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("UTF-8 output")
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object a line"))
        .collect()
}

/// Writes `lines` log4j-style lines (10 ms apart from 2024-05-01 12:00:00)
/// whose levels cycle through `levels` starting at `salt`, and returns how
/// many lines of each level the file holds: the truth the tests compare with.
pub fn write_level_log(
    path: &Path,
    lines: u64,
    levels: &[&str],
    salt: u64,
) -> BTreeMap<String, u64> {
    use std::io::Write;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).expect("log file"));
    let mut want = BTreeMap::new();
    for i in 0..lines {
        let ms = i * 10;
        let level = levels[((i + salt) % levels.len() as u64) as usize];
        writeln!(
            f,
            "2024-05-01 {:02}:{:02}:{:02},{:03} {level} [worker-{}] request {i} done",
            12 + ms / 3_600_000,
            (ms / 60_000) % 60,
            (ms / 1000) % 60,
            ms % 1000,
            i % 4
        )
        .expect("log line written");
        *want.entry(level.to_string()).or_insert(0) += 1;
    }
    f.flush().expect("log file flushed");
    want
}
