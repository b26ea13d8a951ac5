//! Typed configuration (BRIEF §1): one TOML file, every key overridable from
//! the environment (`FAROL_KAFKA__BROKERS`), unknown keys rejected. Loading
//! and validation happen once at start-up so a bad config fails before any
//! data moves, naming every key that is wrong.

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The whole configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where checkpoints and the embedded index live.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// The REST API.
    #[serde(default)]
    pub api: ApiConfig,
    /// How long SIGTERM/SIGINT may take to drain and commit before the
    /// process gives up and exits non-zero (what was not committed is read
    /// again on the next start).
    #[serde(default = "default_shutdown_timeout", with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// Kafka brokers; absent means the embedded bus.
    #[serde(default)]
    pub kafka: Option<KafkaConfig>,
    /// Elasticsearch; absent means the embedded index.
    #[serde(default)]
    pub elasticsearch: Option<ElasticsearchConfig>,
    /// Log file sources.
    #[serde(default)]
    pub logs: Vec<LogSourceConfig>,
    /// HTTP feed sources.
    #[serde(default)]
    pub feeds: Vec<FeedConfig>,
    /// JSON-lines post files.
    #[serde(default)]
    pub posts: Vec<PostsSourceConfig>,
    /// Event-time windows.
    #[serde(default)]
    pub windows: WindowsConfig,
    /// The embedded bus.
    #[serde(default)]
    pub bus: BusConfig,
    /// What the processor extracts from every record.
    #[serde(default)]
    pub processor: ProcessorConfig,
    /// The embedded index.
    #[serde(default)]
    pub index: IndexConfig,
    /// Trend scores and the memory bound of trend counts.
    #[serde(default)]
    pub trends: TrendsConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: default_data_dir(),
            api: ApiConfig::default(),
            shutdown_timeout: default_shutdown_timeout(),
            kafka: None,
            elasticsearch: None,
            logs: vec![],
            feeds: vec![],
            posts: vec![],
            windows: WindowsConfig::default(),
            bus: BusConfig::default(),
            processor: ProcessorConfig::default(),
            index: IndexConfig::default(),
            trends: TrendsConfig::default(),
        }
    }
}

fn default_shutdown_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("./farol-data")
}

/// `[api]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// Address the API binds (loopback by default).
    #[serde(default = "default_listen")]
    pub listen: String,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: default_listen(),
        }
    }
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}

/// `[kafka]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// Bootstrap servers, comma separated.
    pub brokers: String,
    /// Topic for posts.
    #[serde(default = "default_posts_topic")]
    pub posts_topic: String,
    /// Topic for log lines.
    #[serde(default = "default_logs_topic")]
    pub logs_topic: String,
    /// Dead-letter topic.
    #[serde(default = "default_deadletter_topic")]
    pub deadletter_topic: String,
    /// Topic the processors (`farol process`) hand their batches to `farol index` on.
    #[serde(default = "default_processed_topic")]
    pub processed_topic: String,
    /// Topic holding the processors' state snapshots (compacted).
    #[serde(default = "default_state_topic")]
    pub state_topic: String,
    /// Partitions of the topics Farol creates when they are missing.
    #[serde(default = "default_kafka_partitions")]
    pub partitions: u32,
    /// Replication factor of the topics Farol creates.
    #[serde(default = "default_replication")]
    pub replication_factor: u16,
    /// Consumer group of the processors.
    #[serde(default = "default_group_id")]
    pub group_id: String,
    /// Compression of produced batches.
    #[serde(default)]
    pub compression: KafkaCompression,
    /// Records a source may have published and not yet seen acknowledged by
    /// the broker: the bound within which sources pause when the broker is away.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// Consumer group session timeout (a dead member's partitions move after it).
    #[serde(default = "default_session_timeout", with = "humantime_serde")]
    pub session_timeout: Duration,
    /// Consumer group heartbeat interval.
    #[serde(default = "default_heartbeat_interval", with = "humantime_serde")]
    pub heartbeat_interval: Duration,
    /// Extra librdkafka properties for every client (security settings, ...).
    #[serde(default)]
    pub properties: std::collections::BTreeMap<String, String>,
}

/// `kafka.compression`
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KafkaCompression {
    /// LZ4 (the default: cheap on CPU).
    #[default]
    Lz4,
    /// Zstandard.
    Zstd,
    /// Snappy.
    Snappy,
    /// Gzip.
    Gzip,
    /// No compression.
    None,
}

impl KafkaCompression {
    /// librdkafka's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            KafkaCompression::Lz4 => "lz4",
            KafkaCompression::Zstd => "zstd",
            KafkaCompression::Snappy => "snappy",
            KafkaCompression::Gzip => "gzip",
            KafkaCompression::None => "none",
        }
    }
}

fn default_kafka_partitions() -> u32 {
    6
}
fn default_replication() -> u16 {
    1
}
fn default_group_id() -> String {
    "farol-process".into()
}
fn default_max_in_flight() -> usize {
    20_000
}
fn default_session_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_heartbeat_interval() -> Duration {
    Duration::from_secs(3)
}

fn default_posts_topic() -> String {
    "farol.posts".into()
}
fn default_logs_topic() -> String {
    "farol.logs".into()
}
fn default_processed_topic() -> String {
    "farol.processed".into()
}
fn default_state_topic() -> String {
    "farol.processor-state".into()
}
fn default_deadletter_topic() -> String {
    "farol.deadletter".into()
}

/// `[elasticsearch]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ElasticsearchConfig {
    /// Base URL (`http://` or `https://`).
    pub url: String,
    /// Index name prefix.
    #[serde(default = "default_index_prefix")]
    pub index_prefix: String,
    /// Basic-auth user name.
    #[serde(default)]
    pub username: Option<String>,
    /// The environment variable holding the basic-auth password (never the password itself).
    #[serde(default)]
    pub password_env: Option<String>,
    /// The environment variable holding an API key (base64 `id:key`).
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// PEM file of the CA that signed the server's certificate.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Most documents in one bulk request.
    #[serde(default = "default_bulk_max_docs")]
    pub bulk_max_docs: usize,
    /// Most bytes in one bulk request.
    #[serde(default = "default_bulk_max_bytes")]
    pub bulk_max_bytes: usize,
    /// Bulk requests in flight at once.
    #[serde(default = "default_bulk_concurrency")]
    pub bulk_concurrency: usize,
    /// How long a failing request is retried (429, 5xx, connection errors)
    /// before the pipeline stops.
    #[serde(default = "default_retry_for", with = "humantime_serde")]
    pub retry_for: Duration,
    /// Timeout of one request.
    #[serde(default = "default_request_timeout", with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Where event documents go: data streams (`PREFIX-logs`,
    /// `PREFIX-posts`), or monthly indices by event time. A server without
    /// data streams gets monthly indices (a logged decision).
    #[serde(default)]
    pub events: EsEvents,
    /// Installs the ILM policy `PREFIX-events` (rollover, then delete after
    /// `retention`) for the event data streams. Servers without ILM go
    /// without (a logged decision).
    #[serde(default = "default_ilm")]
    pub ilm: bool,
    /// How long an event backing index is kept after its rollover (ILM delete phase).
    #[serde(default = "default_retention", with = "humantime_serde")]
    pub retention: Duration,
    /// ILM rollover: at the latest after this age.
    #[serde(default = "default_rollover_max_age", with = "humantime_serde")]
    pub rollover_max_age: Duration,
    /// ILM rollover: at the latest at this primary shard size (`50gb`).
    #[serde(default = "default_rollover_max_size")]
    pub rollover_max_size: String,
}

/// `elasticsearch.events`: how event documents are stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EsEvents {
    /// Data streams `PREFIX-logs` and `PREFIX-posts` (`create` only), under ILM.
    #[default]
    DataStream,
    /// Indices `PREFIX-logs-YYYY.MM` by event time; retention by deleting indices.
    Monthly,
}

impl EsEvents {
    /// The config name.
    pub fn as_str(self) -> &'static str {
        match self {
            EsEvents::DataStream => "data_stream",
            EsEvents::Monthly => "monthly",
        }
    }
}

fn default_index_prefix() -> String {
    "farol".into()
}
fn default_bulk_max_docs() -> usize {
    2000
}
fn default_bulk_max_bytes() -> usize {
    5 * 1024 * 1024
}
fn default_bulk_concurrency() -> usize {
    2
}
fn default_retry_for() -> Duration {
    Duration::from_secs(300)
}
fn default_request_timeout() -> Duration {
    Duration::from_secs(60)
}
fn default_ilm() -> bool {
    true
}
fn default_retention() -> Duration {
    Duration::from_secs(30 * 86_400)
}
fn default_rollover_max_age() -> Duration {
    Duration::from_secs(86_400)
}
fn default_rollover_max_size() -> String {
    "50gb".into()
}

/// True for an Elasticsearch byte size (`50gb`, `512mb`, `1000b`).
fn is_byte_size(s: &str) -> bool {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    digits > 0
        && s[..digits].parse::<u64>().is_ok_and(|n| n > 0)
        && ["b", "kb", "mb", "gb", "tb", "pb"].contains(&&s[digits..])
}

fn validate_elasticsearch(es: &ElasticsearchConfig, errs: &mut Vec<ConfigError>) {
    if !(es.url.starts_with("http://") || es.url.starts_with("https://")) {
        errs.push(ConfigError::new(
            "elasticsearch.url",
            format!("'{}' is not an http:// or https:// URL", es.url),
        ));
    }
    let prefix_ok = !es.index_prefix.is_empty()
        && es
            .index_prefix
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && !es.index_prefix.starts_with(['-', '_']);
    if !prefix_ok {
        errs.push(ConfigError::new(
            "elasticsearch.index_prefix",
            "must be lower-case letters, digits, '-' or '_', not starting with '-' or '_'",
        ));
    }
    for (key, var) in [
        ("elasticsearch.password_env", &es.password_env),
        ("elasticsearch.api_key_env", &es.api_key_env),
    ] {
        if let Some(v) = var {
            if std::env::var_os(v).is_none() {
                errs.push(ConfigError::new(
                    key,
                    format!("environment variable {v} is not set"),
                ));
            }
        }
    }
    if es.password_env.is_some() && es.username.is_none() {
        errs.push(ConfigError::new(
            "elasticsearch.username",
            "is needed with password_env",
        ));
    }
    if es.api_key_env.is_some() && es.username.is_some() {
        errs.push(ConfigError::new(
            "elasticsearch.api_key_env",
            "set either an API key or a username, not both",
        ));
    }
    if let Some(ca) = &es.ca_file {
        if !ca.is_file() {
            errs.push(ConfigError::new(
                "elasticsearch.ca_file",
                format!("{} is not a readable file", ca.display()),
            ));
        }
    }
    if !is_byte_size(&es.rollover_max_size) {
        errs.push(ConfigError::new(
            "elasticsearch.rollover_max_size",
            format!(
                "'{}' is not a size like 50gb (a positive whole number and b, kb, mb, gb, tb or pb)",
                es.rollover_max_size
            ),
        ));
    }
    for (key, d) in [
        ("elasticsearch.retention", es.retention),
        ("elasticsearch.rollover_max_age", es.rollover_max_age),
    ] {
        if d.as_secs() == 0 {
            errs.push(ConfigError::new(key, "must be at least 1s"));
        }
    }
    if es.bulk_max_docs == 0 || es.bulk_concurrency == 0 || es.bulk_max_bytes < 1024 {
        errs.push(ConfigError::new(
            "elasticsearch.bulk_max_docs",
            "bulk_max_docs and bulk_concurrency must be at least 1, bulk_max_bytes at least 1024",
        ));
    }
}

/// How log lines are parsed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FormatSpec {
    /// `"auto"` or a named built-in format.
    Named(String),
    /// A user regex with named groups `ts`, `level`, `status`, `msg`.
    Regex {
        /// The pattern.
        regex: String,
        /// chrono format of the `ts` group; RFC 3339 and common forms are tried when absent.
        #[serde(default)]
        ts_format: Option<String>,
    },
}

impl Default for FormatSpec {
    fn default() -> Self {
        FormatSpec::Named("auto".into())
    }
}

/// Names of the built-in log formats (besides `auto`); the processor's
/// `logparse::format_names()` plus `json` and `logfmt` (a test keeps them equal).
pub const BUILTIN_FORMATS: &[&str] = &[
    "json",
    "logfmt",
    "apache_access",
    "haproxy",
    "django_access",
    "uvicorn_access",
    "apache_error",
    "nginx_error",
    "envoy_access",
    "envoy",
    "bgl",
    "hpc",
    "logcat",
    "healthapp",
    "proxifier",
    "klog",
    "redis",
    "ruby",
    "rabbitmq_legacy",
    "postgresql",
    "mongodb_legacy",
    "mysql_legacy",
    "syslog",
    "bitnami",
    "log4j_basic",
    "time_only",
    "log4j",
    "slash_date",
    "tomcat",
    "jul",
    "spark",
    "hdfs",
    "epoch",
];

/// Where a new file is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReadFrom {
    /// Existing content first (the default).
    #[default]
    Beginning,
    /// Only lines appended after the file was found.
    End,
}

/// `[[logs]]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSourceConfig {
    /// Source name.
    pub name: String,
    /// Glob patterns.
    pub paths: Vec<String>,
    /// Glob patterns of paths to skip (e.g. rotated `*.gz` files).
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Line format.
    #[serde(default)]
    pub format: FormatSpec,
    /// Where newly found files start.
    #[serde(default)]
    pub read_from: ReadFrom,
    /// Longer lines are cut, flagged and counted.
    #[serde(default = "default_max_line_bytes")]
    pub max_line_bytes: usize,
    /// Join continuation lines (stack traces) onto the line that starts a record.
    #[serde(default)]
    pub multiline: Option<MultilineConfig>,
}

/// `[logs.multiline]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MultilineConfig {
    /// A line matching this regex starts a new record; others continue the previous one.
    pub start_pattern: String,
    /// The last record of a file is emitted after the file is quiet this long.
    #[serde(default = "default_multiline_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

fn default_multiline_timeout() -> Duration {
    Duration::from_secs(1)
}

fn default_max_line_bytes() -> usize {
    1024 * 1024
}

/// Social platform of a feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    /// X API v2.
    X,
    /// Mastodon.
    Mastodon,
}

/// `[[feeds]]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedConfig {
    /// Source name.
    pub name: String,
    /// Platform.
    pub platform: Platform,
    /// Base URL of the API.
    pub url: String,
    /// Mastodon timeline: `public`, `public/local`, `tag/NAME`.
    #[serde(default)]
    pub timeline: Option<String>,
    /// X search query.
    #[serde(default)]
    pub query: Option<String>,
    /// Poll interval.
    #[serde(default = "default_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// Environment variable holding the token.
    #[serde(default)]
    pub token_env: Option<String>,
}

fn default_interval() -> Duration {
    Duration::from_secs(30)
}

/// `[[posts]]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostsSourceConfig {
    /// Source name.
    pub name: String,
    /// Glob patterns of JSON-lines files.
    pub paths: Vec<String>,
    /// Glob patterns of paths to skip.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Where newly found files start.
    #[serde(default)]
    pub read_from: ReadFrom,
}

/// One sliding window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowSpec {
    /// Name used in the API (`1m`).
    pub name: String,
    /// Window length.
    #[serde(with = "humantime_serde")]
    pub size: Duration,
    /// Slide.
    #[serde(with = "humantime_serde")]
    pub slide: Duration,
}

/// `[windows]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowsConfig {
    /// Base bucket length.
    #[serde(default = "default_bucket", with = "humantime_serde")]
    pub bucket: Duration,
    /// Allowed lateness behind the highest event time.
    #[serde(default = "default_lateness", with = "humantime_serde")]
    pub lateness: Duration,
    /// A stream idle this long closes its open windows.
    #[serde(default = "default_idle", with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// The windows served by `/trends`.
    #[serde(default = "default_windows")]
    pub sliding: Vec<WindowSpec>,
    /// Records further ahead of the wall clock than this move no watermark
    /// (they are counted, and dead-lettered as `future`).
    #[serde(default = "default_max_future", with = "humantime_serde")]
    pub max_future: Duration,
    /// A stream idle (wall clock) longer than this leaves the processor's
    /// memory and the persisted state, like the checkpoint registry.
    #[serde(default = "default_stream_retention", with = "humantime_serde")]
    pub stream_retention: Duration,
}

impl Default for WindowsConfig {
    fn default() -> Self {
        WindowsConfig {
            bucket: default_bucket(),
            lateness: default_lateness(),
            idle_timeout: default_idle(),
            sliding: default_windows(),
            max_future: default_max_future(),
            stream_retention: default_stream_retention(),
        }
    }
}

fn default_max_future() -> Duration {
    Duration::from_secs(300)
}
fn default_stream_retention() -> Duration {
    Duration::from_secs(7 * 24 * 3600)
}

fn default_bucket() -> Duration {
    Duration::from_secs(10)
}
fn default_lateness() -> Duration {
    Duration::from_secs(30)
}
fn default_idle() -> Duration {
    Duration::from_secs(10)
}
fn default_windows() -> Vec<WindowSpec> {
    let w = |name: &str, size: u64, slide: u64| WindowSpec {
        name: name.into(),
        size: Duration::from_secs(size),
        slide: Duration::from_secs(slide),
    };
    vec![w("1m", 60, 10), w("5m", 300, 60), w("1h", 3600, 300)]
}

/// `[bus]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusConfig {
    /// Partitions of the embedded bus (processor tasks).
    #[serde(default = "default_partitions")]
    pub partitions: u32,
    /// Records each partition holds before publishers wait.
    #[serde(default = "default_capacity")]
    pub capacity: usize,
    /// Payload bytes each partition holds before publishers wait.
    #[serde(default = "default_bus_bytes")]
    pub max_bytes: usize,
}

impl Default for BusConfig {
    fn default() -> Self {
        BusConfig {
            partitions: default_partitions(),
            capacity: default_capacity(),
            max_bytes: default_bus_bytes(),
        }
    }
}

fn default_partitions() -> u32 {
    4
}
fn default_capacity() -> usize {
    4096
}
fn default_bus_bytes() -> usize {
    16 * 1024 * 1024
}

/// `[processor]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessorConfig {
    /// Whether log lines get a template (counted as `log_template`, and
    /// carried by events). Mining is about a third of the work on a log
    /// line; `false` leaves classes and hashtags exactly as they are.
    #[serde(default = "default_true")]
    pub templates: bool,
}

impl Default for ProcessorConfig {
    fn default() -> Self {
        ProcessorConfig { templates: true }
    }
}

/// `[index]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexConfig {
    /// How often the embedded index commits (and acknowledges).
    #[serde(default = "default_commit_interval", with = "humantime_serde")]
    pub commit_interval: Duration,
    /// Writer memory budget in MiB.
    #[serde(default = "default_writer_mb")]
    pub writer_memory_mb: usize,
    /// Whether event documents (every post and log line) are indexed;
    /// `false` keeps aggregates only: `/trends` answers as before, `/search`
    /// finds nothing new (fastest).
    #[serde(default = "default_true")]
    pub events: bool,
}

impl Default for IndexConfig {
    fn default() -> Self {
        IndexConfig {
            commit_interval: default_commit_interval(),
            writer_memory_mb: default_writer_mb(),
            events: true,
        }
    }
}

fn default_true() -> bool {
    true
}

fn default_commit_interval() -> Duration {
    Duration::from_millis(500)
}
fn default_writer_mb() -> usize {
    64
}

/// `[trends]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrendsConfig {
    /// How many previous windows (or ranges) of the same length form a
    /// key's baseline for its trend score.
    #[serde(default = "default_baseline_windows")]
    pub baseline_windows: u32,
    /// Keys counted fewer times than this in a window get score 0.
    #[serde(default = "default_min_count")]
    pub min_count: u64,
    /// Pseudo-counts added to every baseline, so that a key never seen
    /// before has a small positive expected rate.
    #[serde(default = "default_smoothing")]
    pub smoothing: f64,
    /// Distinct (source, key) counters one base bucket of one kind keeps
    /// exactly in memory (embedded index); beyond it a heavy-hitters
    /// summary answers windows approximately.
    #[serde(default = "default_key_budget")]
    pub key_budget: usize,
    /// Counters of that heavy-hitters (Space-Saving) summary per bucket.
    #[serde(default = "default_heavy_hitters")]
    pub heavy_hitters: usize,
}

impl Default for TrendsConfig {
    fn default() -> Self {
        TrendsConfig {
            baseline_windows: default_baseline_windows(),
            min_count: default_min_count(),
            smoothing: default_smoothing(),
            key_budget: default_key_budget(),
            heavy_hitters: default_heavy_hitters(),
        }
    }
}

fn default_baseline_windows() -> u32 {
    6
}
fn default_min_count() -> u64 {
    5
}
fn default_smoothing() -> f64 {
    1.0
}
fn default_key_budget() -> usize {
    4096
}
fn default_heavy_hitters() -> usize {
    1024
}

fn validate_trends(t: &TrendsConfig, errs: &mut Vec<ConfigError>) {
    if !(1..=1000).contains(&t.baseline_windows) {
        errs.push(ConfigError::new(
            "trends.baseline_windows",
            "must be 1 to 1000",
        ));
    }
    if !(t.smoothing.is_finite() && t.smoothing > 0.0 && t.smoothing <= 1e9) {
        errs.push(ConfigError::new(
            "trends.smoothing",
            "must be a number above 0 (and at most 1e9)",
        ));
    }
    if t.key_budget == 0 {
        errs.push(ConfigError::new("trends.key_budget", "must be at least 1"));
    }
    if !(10..=10_000_000).contains(&t.heavy_hitters) {
        errs.push(ConfigError::new(
            "trends.heavy_hitters",
            "must be 10 to 10000000",
        ));
    }
}

/// One problem found in a configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct ConfigError {
    /// The offending key, dotted (`logs[0].format.regex`).
    pub key: String,
    /// What is wrong with it.
    pub reason: String,
}

impl ConfigError {
    fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// Top-level keys the environment may override. The source lists take a
/// whole array, e.g. `FAROL_FEEDS='[{name="rust",platform="mastodon",url="…"}]'`
/// (what the compose stack's `.env` sets).
const ENV_ROOTS: &[&str] = &[
    "data_dir",
    "shutdown_timeout",
    "api",
    "kafka",
    "elasticsearch",
    "windows",
    "bus",
    "index",
    "trends",
    "logs",
    "feeds",
    "posts",
];

/// Loads a config file (or the defaults) with `FAROL_*` environment overrides.
/// Syntax errors and unknown keys are reported as one [`ConfigError`].
pub fn load(path: Option<&Path>) -> Result<Config, Vec<ConfigError>> {
    let mut fig = Figment::from(Serialized::defaults(Config::default()));
    if let Some(p) = path {
        if !p.exists() {
            return Err(vec![ConfigError::new(
                "config",
                format!("file {} does not exist", p.display()),
            )]);
        }
        fig = fig.merge(Toml::file(p));
    }
    fig = fig.merge(
        Env::prefixed("FAROL_")
            .split("__")
            // Keys arrive as written (`SHUTDOWN_TIMEOUT`); roots are lower case.
            .filter(|k| {
                let k = k.as_str().to_ascii_lowercase();
                // Filters see keys after `split` has turned `__` into `.`.
                ENV_ROOTS.iter().any(|r| {
                    k == *r || k.starts_with(&format!("{r}__")) || k.starts_with(&format!("{r}."))
                })
            }),
    );
    extract(fig)
}

/// Parses config text alone (no file, no environment): what `load` does
/// with a file's contents. Used by the fuzzer.
pub fn parse_toml(text: &str) -> Result<Config, Vec<ConfigError>> {
    extract(Figment::from(Serialized::defaults(Config::default())).merge(Toml::string(text)))
}

fn extract(fig: Figment) -> Result<Config, Vec<ConfigError>> {
    let cfg: Config = fig.extract().map_err(|e| {
        e.into_iter()
            .map(|err| {
                let key = if err.path.is_empty() {
                    "config".to_string()
                } else {
                    err.path.join(".")
                };
                ConfigError::new(key, err.kind.to_string())
            })
            .collect::<Vec<_>>()
    })?;
    let problems = validate(&cfg);
    if problems.is_empty() {
        Ok(cfg)
    } else {
        Err(problems)
    }
}

fn validate_kafka(k: &KafkaConfig, errs: &mut Vec<ConfigError>) {
    if k.brokers.split(',').all(|b| b.trim().is_empty()) {
        errs.push(ConfigError::new(
            "kafka.brokers",
            "must name at least one host:port",
        ));
    }
    let topics = [
        ("kafka.posts_topic", &k.posts_topic),
        ("kafka.logs_topic", &k.logs_topic),
        ("kafka.deadletter_topic", &k.deadletter_topic),
        ("kafka.processed_topic", &k.processed_topic),
        ("kafka.state_topic", &k.state_topic),
    ];
    for (i, (key, t)) in topics.iter().enumerate() {
        let valid = !t.is_empty()
            && t.len() <= 249
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !valid {
            errs.push(ConfigError::new(
                *key,
                format!("'{t}' is not a Kafka topic name (1-249 of a-z A-Z 0-9 . _ -)"),
            ));
        }
        if topics[..i].iter().any(|(_, o)| o == t) {
            errs.push(ConfigError::new(*key, format!("topic '{t}' is used twice")));
        }
    }
    if k.partitions == 0 || k.partitions > 10_000 {
        errs.push(ConfigError::new("kafka.partitions", "must be 1 to 10000"));
    }
    if k.replication_factor == 0 {
        errs.push(ConfigError::new(
            "kafka.replication_factor",
            "must be at least 1",
        ));
    }
    if k.group_id.trim().is_empty() {
        errs.push(ConfigError::new("kafka.group_id", "must not be empty"));
    }
    if k.max_in_flight == 0 || k.max_in_flight > 1_000_000 {
        errs.push(ConfigError::new(
            "kafka.max_in_flight",
            "must be 1 to 1000000",
        ));
    }
    if k.heartbeat_interval.is_zero() || k.heartbeat_interval >= k.session_timeout {
        errs.push(ConfigError::new(
            "kafka.heartbeat_interval",
            "must be longer than 0 s and shorter than kafka.session_timeout",
        ));
    }
    if k.session_timeout < Duration::from_secs(1) || k.session_timeout > Duration::from_secs(3600) {
        errs.push(ConfigError::new(
            "kafka.session_timeout",
            "must be 1 s to 1 h",
        ));
    }
}

/// Checks everything serde cannot: names, globs, regexes, window arithmetic.
pub fn validate(cfg: &Config) -> Vec<ConfigError> {
    let mut errs = Vec::new();
    if cfg.api.listen.parse::<SocketAddr>().is_err() {
        errs.push(ConfigError::new(
            "api.listen",
            format!("'{}' is not an address like 127.0.0.1:8080", cfg.api.listen),
        ));
    }
    if let Some(es) = &cfg.elasticsearch {
        validate_elasticsearch(es, &mut errs);
    }
    if cfg.shutdown_timeout.is_zero() {
        errs.push(ConfigError::new(
            "shutdown_timeout",
            "must be longer than 0 s",
        ));
    }
    let mut names = std::collections::HashSet::new();
    let mut check_name = |errs: &mut Vec<ConfigError>, key: String, name: &str| {
        if name.trim().is_empty() {
            errs.push(ConfigError::new(key, "must not be empty"));
        } else if !names.insert(name.to_string()) {
            errs.push(ConfigError::new(
                key,
                format!("source name '{name}' is used twice"),
            ));
        }
    };
    let check_globs = |errs: &mut Vec<ConfigError>, key: String, paths: &[String]| {
        for (j, p) in paths.iter().enumerate() {
            if let Err(e) = glob::Pattern::new(p) {
                errs.push(ConfigError::new(
                    format!("{key}[{j}]"),
                    format!("bad glob '{p}': {e}"),
                ));
            }
        }
    };
    let check_paths = |errs: &mut Vec<ConfigError>, key: String, paths: &[String]| {
        if paths.is_empty() {
            errs.push(ConfigError::new(key.clone(), "needs at least one path"));
        }
        for (j, p) in paths.iter().enumerate() {
            if let Err(e) = glob::Pattern::new(p) {
                errs.push(ConfigError::new(
                    format!("{key}[{j}]"),
                    format!("bad glob '{p}': {e}"),
                ));
            }
        }
    };
    for (i, l) in cfg.logs.iter().enumerate() {
        check_name(&mut errs, format!("logs[{i}].name"), &l.name);
        check_paths(&mut errs, format!("logs[{i}].paths"), &l.paths);
        check_globs(&mut errs, format!("logs[{i}].exclude"), &l.exclude);
        if let Some(m) = &l.multiline {
            if let Err(e) = regex::bytes::Regex::new(&m.start_pattern) {
                errs.push(ConfigError::new(
                    format!("logs[{i}].multiline.start_pattern"),
                    format!("invalid regex: {e}"),
                ));
            }
        }
        if l.max_line_bytes < 64 {
            errs.push(ConfigError::new(
                format!("logs[{i}].max_line_bytes"),
                "must be at least 64",
            ));
        }
        match &l.format {
            FormatSpec::Named(n) => {
                if n != "auto" && !BUILTIN_FORMATS.contains(&n.as_str()) {
                    errs.push(ConfigError::new(
                        format!("logs[{i}].format"),
                        format!(
                            "unknown format '{n}'; use \"auto\", one of {}, or {{ regex = \"...\" }}",
                            BUILTIN_FORMATS.join(", ")
                        ),
                    ));
                }
            }
            FormatSpec::Regex { regex, .. } => match regex::Regex::new(regex) {
                Err(e) => errs.push(ConfigError::new(
                    format!("logs[{i}].format.regex"),
                    format!("invalid regex: {e}"),
                )),
                Ok(re) => {
                    let groups: Vec<&str> = re.capture_names().flatten().collect();
                    if let Some(bad) = groups
                        .iter()
                        .find(|g| !["ts", "level", "status", "msg"].contains(*g))
                    {
                        errs.push(ConfigError::new(
                            format!("logs[{i}].format.regex"),
                            format!("unknown named group '{bad}'; allowed: ts, level, status, msg"),
                        ));
                    }
                }
            },
        }
    }
    for (i, p) in cfg.posts.iter().enumerate() {
        check_name(&mut errs, format!("posts[{i}].name"), &p.name);
        check_paths(&mut errs, format!("posts[{i}].paths"), &p.paths);
        check_globs(&mut errs, format!("posts[{i}].exclude"), &p.exclude);
    }
    for (i, f) in cfg.feeds.iter().enumerate() {
        check_name(&mut errs, format!("feeds[{i}].name"), &f.name);
        if !(f.url.starts_with("http://") || f.url.starts_with("https://")) {
            errs.push(ConfigError::new(
                format!("feeds[{i}].url"),
                // Not echoed: a feed URL may carry a secret.
                "is not an http(s) URL".to_string(),
            ));
        }
        match f.platform {
            Platform::Mastodon => {
                let ok = match f.timeline.as_deref() {
                    None | Some("public") | Some("public/local") | Some("public/remote") => true,
                    Some(t) => t.strip_prefix("tag/").is_some_and(|n| !n.is_empty()),
                };
                if !ok {
                    errs.push(ConfigError::new(
                        format!("feeds[{i}].timeline"),
                        "must be \"public\", \"public/local\", \"public/remote\" or \"tag/NAME\"",
                    ));
                }
            }
            Platform::X => {
                if f.query.as_deref().is_none_or(|q| q.trim().is_empty()) {
                    errs.push(ConfigError::new(
                        format!("feeds[{i}].query"),
                        "an X feed needs a search query",
                    ));
                }
            }
        }
        if f.interval < Duration::from_secs(1) {
            errs.push(ConfigError::new(
                format!("feeds[{i}].interval"),
                "must be at least 1s",
            ));
        }
    }
    let w = &cfg.windows;
    // Bounded so that event-time arithmetic on them can never overflow.
    const YEAR: Duration = Duration::from_secs(366 * 24 * 3600);
    let mut bounded: Vec<(String, Duration, Duration)> = vec![
        ("windows.bucket".into(), w.bucket, YEAR),
        ("windows.lateness".into(), w.lateness, YEAR),
        ("windows.idle_timeout".into(), w.idle_timeout, YEAR),
        ("windows.max_future".into(), w.max_future, YEAR),
        (
            "windows.stream_retention".into(),
            w.stream_retention,
            YEAR * 10,
        ),
    ];
    for (i, s) in w.sliding.iter().enumerate() {
        bounded.push((format!("windows.sliding[{i}].size"), s.size, YEAR));
        bounded.push((format!("windows.sliding[{i}].slide"), s.slide, YEAR));
    }
    for (key, d, max) in bounded {
        if d > max {
            errs.push(ConfigError::new(
                key,
                format!("must be at most {}", humantime::format_duration(max)),
            ));
        }
    }
    let bucket = w.bucket.as_millis();
    if bucket == 0 {
        errs.push(ConfigError::new("windows.bucket", "must be positive"));
    } else {
        for (i, s) in w.sliding.iter().enumerate() {
            let (size, slide) = (s.size.as_millis(), s.slide.as_millis());
            if slide == 0 || slide % bucket != 0 {
                errs.push(ConfigError::new(
                    format!("windows.sliding[{i}].slide"),
                    "must be a positive multiple of windows.bucket",
                ));
            } else if size == 0 || size % slide != 0 {
                errs.push(ConfigError::new(
                    format!("windows.sliding[{i}].size"),
                    "must be a positive multiple of its slide",
                ));
            }
        }
    }
    if let Some(k) = &cfg.kafka {
        validate_kafka(k, &mut errs);
    }
    if cfg.bus.partitions == 0 {
        errs.push(ConfigError::new("bus.partitions", "must be at least 1"));
    }
    if cfg.bus.capacity == 0 {
        errs.push(ConfigError::new("bus.capacity", "must be at least 1"));
    }
    if cfg.bus.max_bytes < 1024 * 1024 {
        errs.push(ConfigError::new(
            "bus.max_bytes",
            "must be at least 1048576 (one maximum-length line)",
        ));
    }
    validate_trends(&cfg.trends, &mut errs);
    if cfg.index.writer_memory_mb < 15 {
        errs.push(ConfigError::new(
            "index.writer_memory_mb",
            "must be at least 15 (tantivy's minimum)",
        ));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn load_str(s: &str) -> Result<Config, Vec<ConfigError>> {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(s.as_bytes()).unwrap();
        load(Some(f.path()))
    }

    /// Serializes the tests that read or set `FAROL_KAFKA__*` (tests run in threads).
    static KAFKA_ENV: std::sync::Mutex<()> = std::sync::Mutex::new(());

    #[test]
    fn elasticsearch_event_storage_has_defaults_and_is_validated() {
        let cfg = load_str("[elasticsearch]\nurl = \"http://127.0.0.1:9200\"\n").unwrap();
        let es = cfg.elasticsearch.expect("[elasticsearch]");
        assert_eq!(
            (es.events, es.ilm, es.rollover_max_size.as_str()),
            (EsEvents::DataStream, true, "50gb")
        );
        assert_eq!(
            (es.retention, es.rollover_max_age),
            (
                Duration::from_secs(30 * 86_400),
                Duration::from_secs(86_400)
            )
        );
        let cfg = load_str(
            "[elasticsearch]\nurl = \"http://127.0.0.1:9200\"\nevents = \"monthly\"\n\
             ilm = false\nretention = \"7d\"\nrollover_max_size = \"512mb\"\n",
        )
        .unwrap();
        let es = cfg.elasticsearch.expect("[elasticsearch]");
        assert_eq!((es.events, es.ilm), (EsEvents::Monthly, false));
        assert_eq!(es.retention, Duration::from_secs(7 * 86_400));
        let errs = load_str(
            "[elasticsearch]\nurl = \"http://127.0.0.1:9200\"\nrollover_max_size = \"50 gigs\"\n",
        )
        .unwrap_err();
        assert!(
            errs.iter()
                .any(|e| e.key == "elasticsearch.rollover_max_size"),
            "{errs:?}"
        );
        let errs =
            load_str("[elasticsearch]\nurl = \"http://127.0.0.1:9200\"\nevents = \"daily\"\n")
                .unwrap_err();
        assert!(
            errs.iter()
                .any(|e| e.key.contains("events") || e.reason.contains("daily")),
            "{errs:?}"
        );
    }

    #[test]
    fn nested_keys_come_from_the_environment() {
        let _env = KAFKA_ENV.lock().unwrap_or_else(|p| p.into_inner());
        std::env::set_var("FAROL_KAFKA__BROKERS", "10.0.0.1:9092");
        std::env::set_var("FAROL_KAFKA__PARTITIONS", "3");
        let cfg = load(None);
        std::env::remove_var("FAROL_KAFKA__BROKERS");
        std::env::remove_var("FAROL_KAFKA__PARTITIONS");
        let k = cfg.unwrap().kafka.expect("[kafka] from the environment");
        assert_eq!((k.brokers.as_str(), k.partitions), ("10.0.0.1:9092", 3));
    }

    #[test]
    fn kafka_section_has_defaults_and_is_validated() {
        let _env = KAFKA_ENV.lock().unwrap_or_else(|p| p.into_inner());
        let cfg = load_str("[kafka]\nbrokers = \"127.0.0.1:9092\"\n").unwrap();
        let k = cfg.kafka.as_ref().unwrap();
        assert_eq!(
            (k.logs_topic.as_str(), k.posts_topic.as_str(), k.partitions),
            ("farol.logs", "farol.posts", 6)
        );
        assert_eq!(k.compression, KafkaCompression::Lz4);
        assert!(validate(&cfg).is_empty());
        let bad = load_str(
            "[kafka]\nbrokers = \" \"\nlogs_topic = \"a b\"\nposts_topic = \"farol.dead\"\ndeadletter_topic = \"farol.dead\"\npartitions = 0\nmax_in_flight = 0\nsession_timeout = \"2s\"\nheartbeat_interval = \"3s\"\n",
        )
        .unwrap_err();
        let mut keys: Vec<String> = bad.into_iter().map(|e| e.key).collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "kafka.brokers",
                "kafka.deadletter_topic",
                "kafka.heartbeat_interval",
                "kafka.logs_topic",
                "kafka.max_in_flight",
                "kafka.partitions"
            ]
        );
        assert!(load_str("[kafka]\nbrokers = \"b:1\"\nbogus = 1\n").is_err());
        assert!(load_str("[kafka]\nbrokers = \"b:1\"\ncompression = \"lzma\"\n").is_err());
    }

    #[test]
    fn brief_example_loads() {
        let cfg = load_str(
            r#"
data_dir = "./d"
[api]
listen = "127.0.0.1:8080"
[[logs]]
name = "web"
paths = ["/var/log/nginx/*.log"]
format = "auto"
[[logs]]
name = "app"
paths = ["/tmp/a.log"]
format = { regex = '^(?P<ts>\S+) (?P<level>\w+) (?P<msg>.*)$' }
[[feeds]]
name = "rust-tag"
platform = "mastodon"
url = "https://mastodon.social"
timeline = "tag/rust"
interval = "30s"
token_env = "MASTODON_TOKEN"
[[posts]]
name = "archive"
paths = ["posts/*.jsonl"]
"#,
        )
        .unwrap();
        assert_eq!(cfg.logs.len(), 2);
        assert_eq!(cfg.feeds[0].interval, Duration::from_secs(30));
        assert_eq!(cfg.windows.sliding.len(), 3);
    }

    #[test]
    fn trends_section_has_defaults_and_is_validated() {
        let cfg = load_str("").unwrap();
        assert_eq!((cfg.trends.baseline_windows, cfg.trends.min_count), (6, 5));
        let cfg =
            load_str("[trends]\nbaseline_windows = 12\nmin_count = 2\nsmoothing = 0.5\n").unwrap();
        assert_eq!(
            (
                cfg.trends.baseline_windows,
                cfg.trends.min_count,
                cfg.trends.smoothing
            ),
            (12, 2, 0.5)
        );
        let bad = load_str(
            "[trends]\nbaseline_windows = 0\nsmoothing = -1.0\nkey_budget = 0\nheavy_hitters = 5\n",
        )
        .unwrap_err();
        let mut keys: Vec<String> = bad.into_iter().map(|e| e.key).collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "trends.baseline_windows",
                "trends.heavy_hitters",
                "trends.key_budget",
                "trends.smoothing"
            ]
        );
        assert!(load_str("[trends]\nbaseline = 3\n").is_err());
    }

    #[test]
    fn templates_are_mined_unless_switched_off() {
        assert!(load_str("").unwrap().processor.templates);
        let off = load_str("[processor]\ntemplates = false\n").unwrap();
        assert!(!off.processor.templates);
        let errs = load_str("[processor]\ntemplate = false\n").unwrap_err();
        assert!(errs[0].to_string().contains("template"), "{errs:?}");
    }

    #[test]
    fn unknown_key_is_named() {
        let errs = load_str("[api]\nlisten = \"127.0.0.1:1\"\nlisen = 3\n").unwrap_err();
        assert!(errs[0].to_string().contains("lisen"), "{errs:?}");
    }

    #[test]
    fn every_semantic_problem_is_reported() {
        let errs = load_str(
            r#"
[api]
listen = "nowhere"
[[logs]]
name = "a"
paths = []
format = "klingon"
[[logs]]
name = "a"
paths = ["x"]
format = { regex = "(?P<when>x" }
"#,
        )
        .unwrap_err();
        let keys: Vec<&str> = errs.iter().map(|e| e.key.as_str()).collect();
        assert!(keys.contains(&"api.listen"), "{keys:?}");
        assert!(keys.contains(&"logs[0].paths"), "{keys:?}");
        assert!(keys.contains(&"logs[0].format"), "{keys:?}");
        assert!(keys.contains(&"logs[1].name"), "{keys:?}");
        assert!(keys.contains(&"logs[1].format.regex"), "{keys:?}");
    }
}
