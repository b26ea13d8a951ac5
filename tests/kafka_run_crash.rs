//! `farol run` with Kafka as its bus (a Tansu broker started by the test),
//! SIGKILLed twice mid-stream and restarted: the totals equal what the test
//! wrote, exactly. Between the kills, records the broker took but whose
//! delivery reports never reached a checkpoint are published again, and
//! records whose effects the index had not committed are consumed again;
//! neither may be counted twice nor lost.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;
use support::kafka::{unique_tag, Broker};
use support::{await_totals, await_value, Farol};

const LINES: u64 = 120_000;
const LEVELS: [&str; 5] = ["INFO", "WARN", "ERROR", "DEBUG", "INFO"];

fn write_log(path: &std::path::Path, lines: u64, salt: u64) -> BTreeMap<String, u64> {
    support::write_level_log(path, lines, &LEVELS, salt)
}

#[test]
fn farol_run_on_kafka_sigkilled_mid_stream_counts_every_line_once() {
    let broker = Broker::start();
    let env_owned = broker.env(&unique_tag("run-crash"));
    let env: Vec<(&str, &str)> = env_owned
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let alpha = dir.path().join("alpha.log");
    let beta = dir.path().join("beta.log");
    let want_alpha = write_log(&alpha, LINES, 0);
    let want_beta = write_log(&beta, LINES / 2, 3);
    let args = ["--logs", alpha.to_str().unwrap(), beta.to_str().unwrap()];

    for (round, at_least) in [(1, 20_000.0), (2, 50_000.0)] {
        let f = Farol::start_with_env(&data, &args, &env);
        await_value(Duration::from_secs(120), "progress before the kill", || {
            (f.metric_sum("farol_records_processed_total", "alpha") >= at_least).then_some(())
        });
        let delivered = f.metric_sum("farol_kafka_delivered_total", "");
        assert!(delivered > 0.0, "round {round}: records went through Kafka");
        let before: u64 = f.totals("log_class", "alpha").values().sum();
        assert!(
            before < LINES,
            "round {round}: killed before the end ({before} counted)"
        );
        f.kill(); // SIGKILL
    }

    let f = Farol::start_with_env(&data, &args, &env);
    await_totals(
        &f,
        "log_class",
        "alpha",
        &want_alpha,
        Duration::from_secs(240),
    );
    await_totals(&f, "log_class", "beta", &want_beta, Duration::from_secs(60));
    // Settle: one more commit interval and nothing may have moved.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(f.totals("log_class", "alpha"), want_alpha);
    assert_eq!(f.totals("log_class", "beta"), want_beta);
}
