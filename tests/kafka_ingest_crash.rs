//! `farol ingest` SIGKILLed mid-file and restarted, with a `farol run` that
//! has no sources of its own consuming the topics (Kafka bus, embedded
//! index): the totals equal what the test wrote, exactly. The restarted
//! ingest publishes again what the broker took after its last checkpoint,
//! so the topic holds duplicates; they must not be counted twice.

mod support;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use support::kafka::{unique_tag, Broker};
use support::{await_totals, await_value, farol_bin, Farol};

const LINES: u64 = 60_000;
const LEVELS: [&str; 4] = ["INFO", "WARN", "ERROR", "INFO"];

fn write_log(path: &std::path::Path) -> BTreeMap<String, u64> {
    support::write_level_log(path, LINES, &LEVELS, 0)
}

/// A `farol ingest` process, killed (SIGKILL) on drop so a failing test
/// leaves nothing running.
struct Ingest(Child);

impl Drop for Ingest {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn ingest(data: &std::path::Path, log: &str, env: &[(String, String)]) -> Ingest {
    Ingest(
        Command::new(farol_bin())
            .args(["ingest", "--data-dir"])
            .arg(data)
            .args(["--logs", log])
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("FAROL_LOG", "warn")
            // A small in-flight bound paces the ingest so the kill lands mid-file.
            .env("FAROL_KAFKA__MAX_IN_FLIGHT", "500")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("farol ingest starts"),
    )
}

/// The stream position the ingest checkpoint holds for the file, if any.
fn checkpoint_end(data: &std::path::Path) -> Option<u64> {
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data.join("checkpoints/big.json")).ok()?).ok()?;
    v["streams"]
        .as_object()?
        .values()
        .filter_map(|e| e["end"].as_u64())
        .max()
}

#[test]
fn farol_ingest_sigkilled_mid_file_loses_and_repeats_nothing() {
    let broker = Broker::start();
    let env = broker.env(&unique_tag("ingest-crash"));
    let dir = tempfile::tempdir().unwrap();
    let ingest_data = dir.path().join("ingest");
    let log = dir.path().join("big.log");
    let want = write_log(&log);
    let size = std::fs::metadata(&log).unwrap().len();
    let log_arg = log.to_str().unwrap();

    // Kill the ingest once its checkpoint shows progress, before the end.
    let first = ingest(&ingest_data, log_arg, &env);
    let at_kill = await_value(Duration::from_secs(120), "an ingest checkpoint", || {
        checkpoint_end(&ingest_data).filter(|e| *e > 0)
    });
    drop(first); // SIGKILL
    assert!(at_kill < size, "killed before the end of the file");

    let _second = ingest(&ingest_data, log_arg, &env);
    await_value(
        Duration::from_secs(180),
        "the checkpoint at end of file",
        || (checkpoint_end(&ingest_data) == Some(size)).then_some(()),
    );

    // A consumer that reads no files itself: its source `big` matches none
    // (it is declared so the API knows the name).
    let cfg = dir.path().join("consumer.toml");
    let none = dir.path().join("no-such-dir/*.log");
    std::fs::write(
        &cfg,
        format!(
            "[kafka]\nbrokers = \"from-env\"\n[[logs]]\nname = \"big\"\npaths = [{:?}]\n",
            none.to_str().unwrap()
        ),
    )
    .unwrap();
    let envs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let consumer = Farol::start_with_env(
        &dir.path().join("consumer"),
        &["--config", cfg.to_str().unwrap()],
        &envs,
    );
    await_totals(
        &consumer,
        "log_class",
        "big",
        &want,
        Duration::from_secs(240),
    );
}
