//! Prometheus metrics shared by every component, registered once in a
//! process-wide registry that `/metrics` renders.

use prometheus::{
    CounterVec, Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use std::sync::OnceLock;

/// All of Farol's metrics.
pub struct Metrics {
    /// The registry `/metrics` renders.
    pub registry: Registry,
    /// Records read by sources, by source.
    pub records_read: IntCounterVec,
    /// Bytes read by sources, by source.
    pub bytes_read: IntCounterVec,
    /// Records processed, by source and kind.
    pub records_processed: IntCounterVec,
    /// Replayed records skipped because their effects were already durable.
    pub replays_skipped: IntCounterVec,
    /// Records whose effects reached the index a second time (a processor
    /// failover) and were dropped there, by source.
    pub index_duplicates_skipped: IntCounterVec,
    /// Records later than a closed window, by source.
    pub late_records: IntCounterVec,
    /// Records further ahead of the wall clock than `windows.max_future`, by source.
    pub future_records: IntCounterVec,
    /// Dead-letter records, by source and reason.
    pub dead_letters: IntCounterVec,
    /// Lines without a readable timestamp, by source.
    pub untimed_lines: IntCounterVec,
    /// Lines whose format has a timestamp that did not read (a subset of
    /// `untimed_lines`), by source: a sign the format was not recognized.
    pub unparsed_timestamps: IntCounterVec,
    /// Lines that were not valid UTF-8, by source.
    pub invalid_utf8: IntCounterVec,
    /// Lines cut at the maximum line length, by source.
    pub truncated_lines: IntCounterVec,
    /// Source read errors, by source.
    pub source_errors: IntCounterVec,
    /// Feed poll errors, by source and kind (auth, rate_limited, server, network, body, api, status).
    pub feed_errors: IntCounterVec,
    /// Current depth of each bus partition queue.
    pub bus_depth: IntGaugeVec,
    /// 1 while a source waits for room on the bus.
    pub source_paused: IntGaugeVec,
    /// Seconds each source spent waiting for room on the bus (completed waits).
    pub source_paused_seconds: CounterVec,
    /// Unix time the current wait began (0 when not waiting): how long a
    /// source has been paused is `time() - farol_source_paused_since_seconds`.
    pub source_paused_since: IntGaugeVec,
    /// Index commits.
    pub index_commits: IntCounterVec,
    /// Index commit latency in seconds.
    pub index_commit_seconds: HistogramVec,
    /// Documents in the index's pending (uncommitted) batch.
    pub index_pending: IntGauge,
    /// Watermark per source (epoch seconds).
    pub watermark_seconds: IntGaugeVec,
    /// Records handed to the Kafka producer, by topic.
    pub kafka_produced: IntCounterVec,
    /// Records the broker acknowledged, by topic.
    pub kafka_delivered: IntCounterVec,
    /// Records the broker did not take (delivery reports with an error), by topic.
    pub kafka_delivery_errors: IntCounterVec,
    /// Records published and not yet acknowledged by the broker.
    pub kafka_in_flight: IntGauge,
    /// Records consumed from Kafka, by topic and partition.
    pub kafka_consumed: IntCounterVec,
    /// Consumer errors reported by the Kafka client, by topic.
    pub kafka_consume_errors: IntCounterVec,
    /// Consumer lag (high watermark minus next offset to consume), by topic and partition.
    pub kafka_consumer_lag: IntGaugeVec,
}

/// Registers a metric built by `make` and returns it.
fn register<M: prometheus::core::Collector + Clone + 'static>(
    r: &Registry,
    make: prometheus::Result<M>,
) -> M {
    let m = make.expect("valid metric definition");
    r.register(Box::new(m.clone()))
        .expect("metric registered once");
    m
}

fn counter(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    register(r, IntCounterVec::new(Opts::new(name, help), labels))
}

fn gauge(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    register(r, IntGaugeVec::new(Opts::new(name, help), labels))
}

impl Metrics {
    fn new() -> Self {
        let r = Registry::new_custom(Some("farol".into()), None).expect("valid registry prefix");
        let bus_depth = gauge(
            &r,
            "bus_queue_depth",
            "Records waiting in a bus partition",
            &["partition"],
        );
        let index_commit_seconds = register(
            &r,
            HistogramVec::new(
                HistogramOpts::new("index_commit_seconds", "Index commit latency"),
                &["backend"],
            ),
        );
        let index_pending = register(
            &r,
            IntGauge::new("index_pending_docs", "Documents not yet committed"),
        );
        let watermark_seconds = gauge(
            &r,
            "watermark_seconds",
            "Event-time watermark per source",
            &["source"],
        );
        let source_paused = gauge(
            &r,
            "source_paused",
            "1 while the source waits for room on the bus",
            &["source"],
        );
        let source_paused_seconds = register(
            &r,
            CounterVec::new(
                Opts::new(
                    "source_paused_seconds_total",
                    "Seconds the source waited for room on the bus",
                ),
                &["source"],
            ),
        );
        let source_paused_since = gauge(
            &r,
            "source_paused_since_seconds",
            "Unix time the source's current wait for room on the bus began (0: not waiting)",
            &["source"],
        );
        Metrics {
            source_paused_since,
            source_paused,
            source_paused_seconds,
            records_read: counter(
                &r,
                "records_read_total",
                "Records read by sources",
                &["source"],
            ),
            bytes_read: counter(&r, "bytes_read_total", "Bytes read by sources", &["source"]),
            records_processed: counter(
                &r,
                "records_processed_total",
                "Records processed",
                &["source", "kind"],
            ),
            replays_skipped: counter(
                &r,
                "replays_skipped_total",
                "Re-read records skipped because already durable",
                &["source"],
            ),
            index_duplicates_skipped: counter(
                &r,
                "index_duplicate_records_skipped_total",
                "Records handed to the index again after a processor failover and dropped there",
                &["source"],
            ),
            late_records: counter(
                &r,
                "late_records_total",
                "Records later than a closed window",
                &["source"],
            ),
            future_records: counter(
                &r,
                "future_records_total",
                "Records too far ahead of the wall clock to move a watermark",
                &["source"],
            ),
            dead_letters: counter(
                &r,
                "dead_letters_total",
                "Records routed to the dead-letter output",
                &["source", "reason"],
            ),
            untimed_lines: counter(
                &r,
                "untimed_lines_total",
                "Lines without a readable timestamp",
                &["source"],
            ),
            unparsed_timestamps: counter(
                &r,
                "unparsed_timestamps_total",
                "Lines whose timestamp is where their format puts one but does not read",
                &["source"],
            ),
            invalid_utf8: counter(
                &r,
                "invalid_utf8_total",
                "Lines not valid UTF-8",
                &["source"],
            ),
            truncated_lines: counter(
                &r,
                "truncated_lines_total",
                "Lines cut at the maximum line length",
                &["source"],
            ),
            source_errors: counter(&r, "source_errors_total", "Source read errors", &["source"]),
            feed_errors: counter(
                &r,
                "feed_errors_total",
                "Feed poll errors by kind",
                &["source", "kind"],
            ),
            index_commits: counter(&r, "index_commits_total", "Index commits", &["backend"]),
            kafka_produced: counter(
                &r,
                "kafka_produced_total",
                "Records handed to the Kafka producer",
                &["topic"],
            ),
            kafka_delivered: counter(
                &r,
                "kafka_delivered_total",
                "Records acknowledged by the Kafka broker",
                &["topic"],
            ),
            kafka_delivery_errors: counter(
                &r,
                "kafka_delivery_errors_total",
                "Records the Kafka broker did not take",
                &["topic"],
            ),
            kafka_in_flight: register(
                &r,
                IntGauge::new(
                    "kafka_in_flight",
                    "Records published to Kafka and not yet acknowledged",
                ),
            ),
            kafka_consumed: counter(
                &r,
                "kafka_consumed_total",
                "Records consumed from Kafka",
                &["topic", "partition"],
            ),
            kafka_consume_errors: counter(
                &r,
                "kafka_consume_errors_total",
                "Errors reported by the Kafka consumer",
                &["topic"],
            ),
            kafka_consumer_lag: gauge(
                &r,
                "kafka_consumer_lag",
                "High watermark minus the next offset to consume",
                &["topic", "partition"],
            ),
            bus_depth,
            index_commit_seconds,
            index_pending,
            watermark_seconds,
            registry: r,
        }
    }

    /// Renders every metric in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let enc = TextEncoder::new();
        if enc.encode(&self.registry.gather(), &mut buf).is_err() {
            return String::new();
        }
        String::from_utf8_lossy(&buf).into_owned()
    }
}

/// The process-wide metrics.
pub fn metrics() -> &'static Metrics {
    static M: OnceLock<Metrics> = OnceLock::new();
    M.get_or_init(Metrics::new)
}
