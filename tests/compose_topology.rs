//! The compose topology without Docker: the services of `compose.yaml` run
//! as plain processes, each with the environment the compose file gives it,
//! only the addresses rewritten to local servers (Tansu instead of the
//! `kafka` service, one Elasticsearch emulator instead of `elasticsearch`,
//! temporary directories instead of volumes and mounts). The `kafka-topics`
//! one-shot's topics are created as its script says; `ingest`, the
//! `process` replicas, `index` and `serve` are started in the compose
//! start order, each awaited on the health check the compose file gives it;
//! then `/trends` from `serve` must equal the counts of the log written into
//! the mounted log directory.
//!
//! Needs `farol process` and `farol index`: says SKIPPED until the binary
//! has them.

mod compose_support;
mod es_support;
mod support;

use compose_support as cs;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use support::{await_value, farol_bin, Farol};

const LEVELS: [&str; 6] = ["INFO", "WARN", "ERROR", "DEBUG", "INFO", "FATAL"];
const LINES: u64 = 20_000;

fn subcommand_available(sub: &str) -> bool {
    Command::new(farol_bin())
        .args([sub, "--help"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn tansu_bin() -> PathBuf {
    if let Some(b) = std::env::var_os("FAROL_TANSU_BIN") {
        return b.into();
    }
    let out = Command::new(cs::root().join("scripts/install-tansu.sh"))
        .stderr(Stdio::inherit())
        .output()
        .expect("scripts/install-tansu.sh runs");
    assert!(out.status.success(), "installing tansu failed");
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// The topics the `kafka-topics` one-shot creates: `create NAME …` lines.
fn compose_topics(doc: &Value) -> Vec<String> {
    let script = cs::command(&doc["services"]["kafka-topics"]).join("\n");
    script
        .lines()
        .filter_map(|l| l.trim().strip_prefix("create "))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// The container → host path of each bind mount and volume of a service.
fn mounts(service: &Value, volumes_root: &Path, name: &str) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for v in service["volumes"].as_array().into_iter().flatten() {
        let mut parts = v.as_str().expect("short syntax").split(':');
        let (_source, target) = (parts.next().unwrap(), parts.next().unwrap());
        let local = volumes_root.join(name).join(target.trim_start_matches('/'));
        std::fs::create_dir_all(&local).unwrap();
        out.push((target.to_string(), local));
    }
    out
}

/// A service's compose environment with the addresses and paths rewritten.
fn local_env(
    doc: &Value,
    service: &str,
    replica: usize,
    rewrite: &[(String, String)],
    root: &Path,
    listen: &str,
) -> BTreeMap<String, String> {
    let s = &doc["services"][service];
    let mut env = cs::environment(s);
    let name = format!("{service}-{replica}");
    let mut paths: Vec<(String, String)> = mounts(s, root, &name)
        .into_iter()
        .map(|(t, l)| (t, l.to_string_lossy().into_owned()))
        .collect();
    // A service without a data volume still gets a data dir of its own.
    let data = root.join(&name).join("data");
    std::fs::create_dir_all(&data).unwrap();
    if !paths.iter().any(|(t, _)| t == "/var/lib/farol") {
        paths.push(("/var/lib/farol".into(), data.to_string_lossy().into_owned()));
    }
    for v in env.values_mut() {
        for (from, to) in rewrite.iter().chain(paths.iter()) {
            *v = v.replace(from.as_str(), to.as_str());
        }
    }
    env.insert("FAROL_API__LISTEN".into(), listen.into());
    env
}

/// Stderr of each started process, shown when the test fails.
struct Logs(Vec<(String, PathBuf)>);

impl Drop for Logs {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for (name, path) in &self.0 {
                let text = std::fs::read_to_string(path).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(30).collect();
                eprintln!("--- {name} (last lines of stderr) ---");
                for l in tail.into_iter().rev() {
                    eprintln!("{l}");
                }
            }
        }
    }
}

#[test]
fn the_compose_topology_runs_as_processes_and_trends_are_exact() {
    if !(subcommand_available("process") && subcommand_available("index")) {
        eprintln!("SKIPPED: farol process/index not available");
        return;
    }
    let doc = cs::resolved_with_defaults();
    let dir = tempfile::tempdir().unwrap();

    // kafka + kafka-topics.
    let broker = support::kafka::Broker::start();
    let partitions = cs::environment(&doc["services"]["kafka-topics"])["PARTITIONS"].clone();
    if std::env::var_os("FAROL_TEST_KAFKA_BROKERS").is_none() {
        for topic in compose_topics(&doc) {
            let status = Command::new(tansu_bin())
                .args(["topic", "create", &topic, "--broker"])
                .arg(format!("tcp://{}", broker.brokers))
                .args(["--partitions", &partitions])
                .stdout(Stdio::null())
                .status()
                .expect("tansu topic create");
            assert!(status.success(), "creating topic {topic}");
        }
    }

    // elasticsearch: one emulator (or FAROL_TEST_ES_URL).
    let es = es_support::EsServer::start(es_support::servers()[0]);

    // Compose's names for the servers → the local ones.
    let serve_env = cs::environment(&doc["services"]["serve"]);
    let rewrite = vec![
        (
            serve_env["FAROL_KAFKA__BROKERS"].clone(),
            broker.brokers.clone(),
        ),
        (
            serve_env["FAROL_ELASTICSEARCH__URL"].clone(),
            es.url.clone(),
        ),
    ];
    // What differs from compose on purpose (BRIEF §9: Tansu's group joins
    // and a fresh group per run).
    let tag = support::kafka::unique_tag("compose");
    let extra = [
        ("FAROL_KAFKA__SESSION_TIMEOUT", "6s".to_string()),
        ("FAROL_KAFKA__HEARTBEAT_INTERVAL", "1s".to_string()),
        ("FAROL_KAFKA__GROUP_ID", format!("{tag}.group")),
        ("FAROL_LOG", "warn".to_string()),
    ];

    // The log the ingest service tails: into its mounted log directory.
    let ingest = &doc["services"]["ingest"];
    let log_mount = mounts(ingest, dir.path(), "ingest-0")
        .into_iter()
        .find(|(t, _)| t == "/var/log/farol")
        .expect("ingest mounts the log directory at /var/log/farol")
        .1;
    let want = support::write_level_log(&log_mount.join("app.log"), LINES, &LEVELS, 3);
    let source = {
        let env = cs::environment(ingest);
        let cfg: String = env["FAROL_LOGS"].clone();
        // FAROL_LOGS is `[{name="logs",paths=[…]}]` by default.
        let name = cfg
            .split("name=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .expect("a source name in FAROL_LOGS")
            .to_string();
        name
    };

    // The farol services in compose's order, each awaited on its health check.
    let replicas = doc["services"]["process"]["deploy"]["replicas"]
        .as_u64()
        .expect("process replicas") as usize;
    let mut order: Vec<(&str, usize)> = vec![("ingest", 0)];
    order.extend((0..replicas).map(|i| ("process", i)));
    order.extend([("index", 0), ("serve", 0)]);
    let mut procs: Vec<Farol> = Vec::new();
    let mut logs = Logs(Vec::new());
    for (service, replica) in order {
        let port = support::kafka::free_port();
        let listen = format!("127.0.0.1:{port}");
        let mut env = local_env(&doc, service, replica, &rewrite, dir.path(), &listen);
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
        let stderr = dir.path().join(format!("{service}-{replica}.stderr"));
        let child = Command::new(farol_bin())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(&env)
            .args(cs::command(&doc["services"][service]))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {service}: {e}"));
        logs.0.push((format!("{service}-{replica}"), stderr));
        let base = format!("http://{listen}");
        let mut f = Farol { child, base };
        // The compose health check: GET /healthz on FAROL_API__LISTEN.
        let health = format!("{}/healthz", f.base);
        await_value(
            Duration::from_secs(120),
            &format!("{service}-{replica} healthy"),
            || {
                if let Ok(Some(status)) = f.child.try_wait() {
                    panic!("{service}-{replica} exited: {status}");
                }
                reqwest::blocking::get(&health)
                    .ok()
                    .filter(|r| r.status().as_u16() == 200)
                    .map(|_| ())
            },
        );
        procs.push(f);
    }

    // /trends from serve: the exact counts of the file.
    // Until `index` has written its first batch there is no index to ask
    // (503); after that the totals grow until they equal the truth.
    let serve = procs.last().expect("serve");
    let range = format!(
        "/trends?kind=log_class&from=1970-01-01T00:00:00Z&to=2100-01-01T00:00:00Z&limit=10000&source={source}"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    loop {
        let last = serve.get(&range);
        if last.0 == 200 && support::items(&last.1) == want {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "/trends never equalled the truth {want:?}; last answer {} {}",
            last.0,
            last.1
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Read once more after they matched: two processors and the indexer
    // did not go on counting past the truth.
    assert_eq!(serve.totals("log_class", &source), want);
    drop(procs);
    drop(logs);
}
