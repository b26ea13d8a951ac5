//! The broker unreachable for 20 s mid-stream: a TCP proxy between Farol and
//! Tansu cuts every connection and refuses new ones, then lets them through
//! again. Sources must pause within their in-flight bound while it is down,
//! resume by themselves, and lose nothing: the totals equal what the test wrote.

mod support;

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};
use support::kafka::{free_port, unique_tag, Broker, Proxy};
use support::{await_totals, await_value, Farol};

const LINES: u64 = 200_000;
const LEVELS: [&str; 3] = ["INFO", "WARN", "ERROR"];
const MAX_IN_FLIGHT: f64 = 2_000.0;

#[test]
fn broker_outage_pauses_sources_and_loses_nothing() {
    if std::env::var("FAROL_TEST_KAFKA_BROKERS").is_ok() {
        eprintln!("SKIPPED: the outage test needs the broker it starts itself");
        return;
    }
    let (proxy_port, broker_port) = (free_port(), free_port());
    let broker = Broker::start_tansu(broker_port, proxy_port);
    let proxy = Proxy::start(proxy_port, broker_port);
    let mut env = broker.env(&unique_tag("outage"));
    env.push(("FAROL_KAFKA__MAX_IN_FLIGHT".into(), "2000".into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();

    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("steady.log");
    let mut want = BTreeMap::new();
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&log).unwrap());
        for i in 0..LINES {
            let ms = i * 10;
            let level = LEVELS[(i % 3) as usize];
            writeln!(
                f,
                "2024-05-01 {:02}:{:02}:{:02},{:03} {level} [w] request {i}",
                12 + ms / 3_600_000,
                (ms / 60_000) % 60,
                (ms / 1000) % 60,
                ms % 1000,
            )
            .unwrap();
            *want.entry(level.to_string()).or_insert(0u64) += 1;
        }
        f.flush().unwrap();
    }
    let f = Farol::start_with_env(
        &dir.path().join("data"),
        &["--logs", log.to_str().unwrap()],
        &env,
    );
    await_value(
        Duration::from_secs(120),
        "progress before the outage",
        || (f.metric_sum("farol_kafka_delivered_total", "") >= 5_000.0).then_some(()),
    );
    proxy.cut();
    let cut_at = Instant::now();
    // While the broker is away the source publishes at most its in-flight
    // bound past what was delivered, then waits.
    await_value(Duration::from_secs(15), "the source paused", || {
        (f.metric_sum("farol_kafka_in_flight", "") >= MAX_IN_FLIGHT - 1.0).then_some(())
    });
    while cut_at.elapsed() < Duration::from_secs(20) {
        let produced = f.metric_sum("farol_kafka_produced_total", "");
        let delivered = f.metric_sum("farol_kafka_delivered_total", "");
        assert!(
            produced <= delivered + MAX_IN_FLIGHT + 1.0,
            "published {produced} with {delivered} delivered: past the in-flight bound"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    proxy.restore();
    await_totals(&f, "log_class", "steady", &want, Duration::from_secs(240));
}
