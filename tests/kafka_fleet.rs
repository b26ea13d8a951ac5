//! The distributed pipeline against a real Kafka-protocol broker (Tansu):
//! `farol ingest` publishes six log files and two post files, a fleet of
//! `farol process` members shares the six partitions through one consumer
//! group, and `farol index` (embedded index) serves the totals. The truth is
//! what the test itself wrote. The second test SIGKILLs a member
//! mid-stream and starts a fourth later: the totals stay exact and the
//! survivors take the dead member's partitions over.

mod support;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use support::kafka::{unique_tag, Broker};
use support::{await_totals, await_value, farol_bin, write_level_log, Farol};

const LOG_FILES: u64 = 6;
const POST_FILES: u64 = 2;
/// Seven levels, so the six files (salts 0..6) all differ: identical files
/// would be one file to the tailer (same fingerprint), as in Vector.
const LEVELS: [&str; 7] = ["INFO", "WARN", "ERROR", "INFO", "DEBUG", "INFO", "WARN"];

/// Writes `n` JSON-lines posts whose hashtags follow a pattern of the
/// test's own, and counts them (a post counts once per distinct tag).
fn write_posts(path: &Path, n: u64, salt: u64, truth: &mut BTreeMap<String, u64>) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for i in 0..n {
        let a = format!("tag{}", (i + salt) % 7);
        let mut tags = vec![a.clone()];
        let mut text = format!("post {i} about #{a}");
        if i % 2 == 0 {
            let b = format!("extra{}", i % 3);
            text.push_str(&format!(" and #{b} and #{}", a.to_uppercase()));
            tags.push(b);
        }
        for t in tags {
            *truth.entry(t).or_insert(0) += 1;
        }
        let secs = i / 10;
        let line = serde_json::json!({
            "id": format!("{salt}-{i}"),
            "created_at": format!("2024-05-01T12:{:02}:{:02}.{:03}Z", (secs / 60) % 60, secs % 60, (i % 10) * 100),
            "text": text,
        });
        writeln!(f, "{line}").unwrap();
    }
    f.flush().unwrap();
}

struct Inputs {
    config: std::path::PathBuf,
    logs: BTreeMap<String, u64>,
    posts: BTreeMap<String, u64>,
}

/// Six log files of one source `app` and two post files of one source
/// `social`, in a config every component shares.
fn inputs(dir: &Path, log_lines: u64, posts: u64) -> Inputs {
    let logs_dir = dir.join("logs");
    let posts_dir = dir.join("posts");
    std::fs::create_dir_all(&logs_dir).unwrap();
    std::fs::create_dir_all(&posts_dir).unwrap();
    let mut logs = BTreeMap::new();
    for i in 0..LOG_FILES {
        let t = write_level_log(
            &logs_dir.join(format!("app-{i}.log")),
            log_lines / LOG_FILES,
            &LEVELS,
            i,
        );
        for (k, v) in t {
            *logs.entry(k).or_insert(0) += v;
        }
    }
    let mut post_truth = BTreeMap::new();
    for i in 0..POST_FILES {
        write_posts(
            &posts_dir.join(format!("p{i}.jsonl")),
            posts / POST_FILES,
            i,
            &mut post_truth,
        );
    }
    let config = dir.join("farol.toml");
    std::fs::write(
        &config,
        format!(
            "[kafka]\nbrokers = \"from-env\"\n[[logs]]\nname = \"app\"\npaths = [{:?}]\n[[posts]]\nname = \"social\"\npaths = [{:?}]\n",
            logs_dir.join("*.log").to_str().unwrap(),
            posts_dir.join("*.jsonl").to_str().unwrap(),
        ),
    )
    .unwrap();
    Inputs {
        config,
        logs,
        posts: post_truth,
    }
}

/// A `farol ingest`, killed on drop.
struct Ingest(Child);

impl Drop for Ingest {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn ingest(data: &Path, config: &Path, env: &[(&str, &str)]) -> Ingest {
    Ingest(
        Command::new(farol_bin())
            .args(["ingest", "--data-dir"])
            .arg(data)
            .arg("--config")
            .arg(config)
            .envs(env.iter().copied())
            .env("FAROL_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("farol ingest starts"),
    )
}

fn component(cmd: &str, dir: &Path, name: &str, config: &Path, env: &[(&str, &str)]) -> Farol {
    Farol::start_command(
        cmd,
        &dir.join(name),
        &["--config", config.to_str().unwrap()],
        env,
        Some(&dir.join(format!("{name}.stderr"))),
    )
}

/// Records this member consumed, by partition of the logs topic.
fn consumed_by_partition(member: &Farol, logs_topic: &str) -> BTreeMap<u32, f64> {
    let mut out = BTreeMap::new();
    for l in member.metrics().lines() {
        if !l.starts_with("farol_kafka_consumed_total{") || !l.contains(logs_topic) {
            continue;
        }
        let Some(p) = l
            .split("partition=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .and_then(|p| p.parse().ok())
        else {
            continue;
        };
        let n: f64 = l
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        out.insert(p, n);
    }
    out
}

#[test]
fn three_processors_share_the_partitions_and_the_totals_are_exact() {
    let broker = Broker::start();
    let tag = unique_tag("fleet");
    let env = broker.env(&tag);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let dir = tempfile::tempdir().unwrap();
    let inp = inputs(dir.path(), 200_004, 100_000);

    let _ingest = ingest(&dir.path().join("ingest"), &inp.config, &env);
    let members: Vec<Farol> = (0..3)
        .map(|i| {
            component(
                "process",
                dir.path(),
                &format!("process-{i}"),
                &inp.config,
                &env,
            )
        })
        .collect();
    let index = component("index", dir.path(), "index", &inp.config, &env);

    let started = std::time::Instant::now();
    await_totals(
        &index,
        "log_class",
        "app",
        &inp.logs,
        Duration::from_secs(600),
    );
    await_totals(
        &index,
        "hashtag",
        "social",
        &inp.posts,
        Duration::from_secs(300),
    );
    eprintln!("exact after {:?}", started.elapsed());

    // The group spread the partitions: more than one member did work.
    let logs_topic = format!("{tag}.logs");
    let busy = members
        .iter()
        .filter(|m| consumed_by_partition(m, &logs_topic).values().sum::<f64>() > 0.0)
        .count();
    assert!(
        busy >= 2,
        "the partitions were shared, {busy} member(s) consumed"
    );
}

#[test]
fn a_killed_processor_is_replaced_and_the_totals_stay_exact() {
    let broker = Broker::start();
    let tag = unique_tag("fleet-kill");
    let env = broker.env(&tag);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let dir = tempfile::tempdir().unwrap();
    let inp = inputs(dir.path(), 120_000, 40_000);
    let logs_topic = format!("{tag}.logs");

    let mut members: Vec<Farol> = (0..3)
        .map(|i| {
            component(
                "process",
                dir.path(),
                &format!("process-{i}"),
                &inp.config,
                &env,
            )
        })
        .collect();
    let index = component("index", dir.path(), "index", &inp.config, &env);
    let _ingest = ingest(&dir.path().join("ingest"), &inp.config, &env);

    // Kill a member that owns log partitions once it has done some work.
    let (victim, owned) = await_value(Duration::from_secs(180), "a member consuming", || {
        members.iter().enumerate().find_map(|(i, m)| {
            let c = consumed_by_partition(m, &logs_topic);
            (c.values().sum::<f64>() >= 2_000.0).then(|| (i, c.keys().copied().collect::<Vec<_>>()))
        })
    });
    members.remove(victim).kill(); // SIGKILL

    // Its partitions move to the survivors (after the session timeout).
    await_value(
        Duration::from_secs(120),
        "the dead member's partitions taken over",
        || {
            let taken: Vec<u32> = members
                .iter()
                .flat_map(|m| consumed_by_partition(m, &logs_topic).into_keys())
                .collect();
            owned.iter().all(|p| taken.contains(p)).then_some(())
        },
    );
    // A fourth member joins later.
    members.push(component(
        "process",
        dir.path(),
        "process-3",
        &inp.config,
        &env,
    ));

    await_totals(
        &index,
        "log_class",
        "app",
        &inp.logs,
        Duration::from_secs(600),
    );
    await_totals(
        &index,
        "hashtag",
        "social",
        &inp.posts,
        Duration::from_secs(300),
    );
}
