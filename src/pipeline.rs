//! `farol run`: wires every component in one process.
//!
//! ```text
//! file sources ──publish──▶ embedded bus ──▶ processor tasks ──batches──▶ index sink
//!      ▲                                                                   │
//!      └──────────────── acknowledgements (after commit) ◀─────────────────┘
//! ```
//! Shutdown runs the same way data flows: sources stop, the bus drains,
//! processors flush, the sink commits a last time, acknowledgements reach the
//! checkpoints, then the process exits — within `shutdown_timeout`, or
//! non-zero without acknowledging anything more. The processors and the sink
//! are supervised: if one stops, the process stops (crash-only).
//!
//! With `[kafka]` the bus is Kafka: sources publish to the topics and their
//! checkpoints move on the broker's delivery reports; the processors read
//! every partition from the offsets the index committed with its state, and
//! on shutdown stop reading at once (what they had not read stays in the
//! topic) before the sink's last commit.

use crate::api;
use crate::supervisor::{Failure, Supervisor};
use anyhow::Context;
use farol_common::bus::kafka::{self, KafkaProducer};
use farol_common::bus::{self, AckRouter, Consumer, Producer};
use farol_common::config::{Config, ElasticsearchConfig};
use farol_common::health::Health;
use farol_common::model::RecordKind;
use farol_indexer::elasticsearch::client::EsSettings;
use farol_indexer::elasticsearch::lifecycle::IlmPolicy;
use farol_indexer::elasticsearch::ElasticsearchIndex;
use farol_indexer::embedded::EmbeddedIndex;
use farol_indexer::sink::run_sink;
use farol_indexer::Index;
use farol_ingest::feed::FeedSource;
use farol_ingest::tail::{FileSource, Multiline};
use farol_processor::processor::{Parsers, Processor};
use farol_processor::task::{run_partition, FlushPolicy};
use farol_processor::window::WindowParams;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// How often file sources match their globs and look at their files even
/// without a file system event (see `farol_ingest::tail::wake`).
const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// How long a file must stay unchanged before its unterminated last line is read.
const PARTIAL_LINE_TIMEOUT: Duration = Duration::from_secs(1);
/// How processors hand batches to the index: the clock ticks every 200 ms,
/// and a batch waits at most 5 ms for more records (what `/trends` sees
/// trails the sources by about that much plus the apply).
const FLUSH: FlushPolicy = FlushPolicy {
    tick: Duration::from_millis(200),
    linger: Duration::from_millis(5),
};

/// A source task's future, boxed so file sources and feeds share one spawner.
type SourceFuture = std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<()>> + Send>>;

/// Opens the embedded index of a data dir.
pub fn open_index(cfg: &Config) -> anyhow::Result<EmbeddedIndex> {
    let dir = cfg.data_dir.join("index");
    EmbeddedIndex::open_with(&dir, cfg.index.writer_memory_mb, count_limits(cfg)).with_context(
        || {
            format!(
                "opening the embedded index in {} (is another farol using this data dir?)",
                dir.display()
            )
        },
    )
}

/// The memory bounds of the embedded index's counters: the key budget of
/// `[trends]`, and buckets kept for the longest window plus its slide.
pub fn count_limits(cfg: &Config) -> farol_indexer::counts::CountLimits {
    let ms = |d: std::time::Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    let bucket_ms = ms(cfg.windows.bucket).max(1);
    let retain_ms = cfg
        .windows
        .sliding
        .iter()
        .map(|w| ms(w.size).saturating_add(ms(w.slide)))
        .max()
        .unwrap_or(0)
        .max(bucket_ms);
    farol_indexer::counts::CountLimits {
        key_budget: cfg.trends.key_budget,
        heavy_hitters: cfg.trends.heavy_hitters,
        retain_ms,
        bucket_ms,
    }
}

/// The trend-score settings of a config.
pub fn scoring(t: &farol_common::config::TrendsConfig) -> farol_indexer::score::Scoring {
    farol_indexer::score::Scoring {
        baseline_windows: t.baseline_windows,
        min_count: t.min_count,
        smoothing: t.smoothing,
    }
}

/// The Elasticsearch settings of a config, with credentials read from the
/// variables it names.
pub fn es_settings(es: &ElasticsearchConfig) -> anyhow::Result<EsSettings> {
    let var = |name: &Option<String>| -> anyhow::Result<Option<String>> {
        match name {
            Some(n) => std::env::var(n)
                .map(Some)
                .with_context(|| format!("reading the environment variable {n}")),
            None => Ok(None),
        }
    };
    Ok(EsSettings {
        url: es.url.clone(),
        index_prefix: es.index_prefix.clone(),
        username: es.username.clone(),
        password: var(&es.password_env)?,
        api_key: var(&es.api_key_env)?,
        ca_file: es.ca_file.clone(),
        bulk_max_docs: es.bulk_max_docs,
        bulk_max_bytes: es.bulk_max_bytes,
        bulk_concurrency: es.bulk_concurrency,
        retry_for: es.retry_for,
        request_timeout: es.request_timeout,
        events: es.events,
        ilm: es.ilm.then(|| IlmPolicy {
            retention: es.retention,
            rollover_max_age: es.rollover_max_age,
            rollover_max_size: es.rollover_max_size.clone(),
        }),
    })
}

/// Opens the configured index: Elasticsearch when `[elasticsearch]` is
/// set, otherwise the embedded index of the data dir.
pub async fn open_configured_index(cfg: &Config) -> anyhow::Result<Arc<dyn Index>> {
    match &cfg.elasticsearch {
        Some(es) => {
            let settings = es_settings(es)?;
            let index = ElasticsearchIndex::open(&settings)
                .await
                .with_context(|| format!("opening the Elasticsearch index at {}", es.url))?;
            tracing::info!(url = %es.url, prefix = %es.index_prefix, "using the Elasticsearch index");
            Ok(Arc::new(index))
        }
        None => Ok(Arc::new(open_index(cfg)?)),
    }
}

/// Binds the API address and says where on stdout (`listening on http://…`,
/// what scripts and tests wait for).
pub async fn bind_api(listen: &str) -> anyhow::Result<tokio::net::TcpListener> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding the API to {listen}"))?;
    announce(listener.local_addr()?)?;
    Ok(listener)
}

/// Prints `listening on http://ADDR` on stdout.
pub fn announce(addr: std::net::SocketAddr) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on http://{addr}")?;
    out.flush()?;
    Ok(())
}

/// Every configured source name (logs, feeds, posts).
pub fn source_names(cfg: &Config) -> std::collections::HashSet<String> {
    cfg.logs
        .iter()
        .map(|l| l.name.clone())
        .chain(cfg.feeds.iter().map(|f| f.name.clone()))
        .chain(cfg.posts.iter().map(|p| p.name.clone()))
        .collect()
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

/// The components of one running process, wired and started.
pub struct Running {
    /// The index.
    pub index: Arc<dyn Index>,
    /// Component health.
    pub health: Health,
    /// Window parameters.
    pub params: WindowParams,
    /// Acknowledgement routing (tap it to observe durability).
    pub acks: AckRouter,
    /// The index write block.
    pub write_block: Arc<watch::Sender<bool>>,
    /// Turns true when shutting down.
    pub stop_rx: watch::Receiver<bool>,
    stop_tx: watch::Sender<bool>,
    /// The processors and the sink.
    supervisor: Supervisor,
    sources: Vec<tokio::task::JoinHandle<()>>,
    kafka: Option<KafkaProducer>,
}

/// Opens the index and starts the sink, the processors and every source.
pub async fn start(cfg: &Config) -> anyhow::Result<Running> {
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("creating data dir {}", cfg.data_dir.display()))?;
    let index = open_configured_index(cfg).await?;
    let health = Health::default();
    let params = WindowParams::from_config(&cfg.windows);
    let parsers = Parsers::new(cfg.logs.iter().map(|l| (l.name.as_str(), &l.format)))
        .context("compiling log formats")?;
    // Feeds are set up (tokens read) before anything starts moving data.
    let feeds = setup_feeds(cfg)?;
    let restored = index.stream_states();
    let acks = AckRouter::default();
    let (stop_tx, stop_rx) = watch::channel(false);
    let bus = open_bus(cfg, index.as_ref(), &acks, stop_rx.clone()).await?;

    // One batch in flight per partition: with the processors' flush limits
    // (records and bytes) this bounds the memory between bus and index.
    let (sink_tx, sink_rx) = mpsc::channel(bus.consumers.len().max(1));
    let (write_block, write_block_rx) = watch::channel(false);
    let mut supervisor = Supervisor::new(health.clone());
    supervisor.spawn(
        farol_indexer::sink::COMPONENT,
        farol_indexer::sink::COMPONENT.into(),
        run_sink(
            index.clone(),
            sink_rx,
            bus.index_acks.clone(),
            cfg.index.commit_interval,
            health.clone(),
            write_block_rx,
        ),
    );
    for c in bus.consumers {
        let name = match c.topic() {
            Some(t) => format!("{t}/{}", c.partition()),
            None => format!("partition {}", c.partition()),
        };
        let proc = Processor::new(params.clone(), parsers.clone(), &restored);
        let proc = proc
            .events(cfg.index.events)
            .templates(cfg.processor.templates);
        let task = run_partition(c, proc, sink_tx.clone(), FLUSH);
        supervisor.spawn("processor", name, async move {
            task.await;
            Ok(())
        });
    }
    drop(sink_tx);
    health.up("processor");

    let sources = spawn_sources(cfg, feeds, bus.producer, &acks, &stop_rx, &health);
    Ok(Running {
        index,
        health,
        params,
        acks,
        write_block: Arc::new(write_block),
        stop_rx,
        stop_tx,
        supervisor,
        sources,
        kafka: bus.kafka,
    })
}

/// Sets up every configured feed (reads its token) without starting it.
pub(crate) fn setup_feeds(cfg: &Config) -> anyhow::Result<Vec<FeedSource>> {
    cfg.feeds
        .iter()
        .map(|f| {
            FeedSource::from_config(f, cfg.data_dir.clone())
                .with_context(|| format!("setting up feed '{}'", f.name))
        })
        .collect()
}

/// Starts every file, posts and feed source publishing through `producer`;
/// each receives its acknowledgements through `acks` and stops when `stop`
/// turns true. A source that fails is marked down in `health`.
pub(crate) fn spawn_sources(
    cfg: &Config,
    feeds: Vec<FeedSource>,
    producer: Arc<dyn Producer>,
    acks: &AckRouter,
    stop_rx: &watch::Receiver<bool>,
    health: &Health,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut sources = Vec::new();
    let file_sources = cfg
        .logs
        .iter()
        .map(|l| {
            let multiline = l.multiline.as_ref().map(|m| Multiline {
                start: regex::bytes::Regex::new(&m.start_pattern).expect("validated at start-up"),
                timeout: m.timeout,
            });
            FileSource {
                multiline,
                name: l.name.clone(),
                patterns: l.paths.clone(),
                exclude: l.exclude.clone(),
                kind: RecordKind::Log,
                platform: None,
                read_from: l.read_from,
                max_line_bytes: l.max_line_bytes,
                poll_interval: POLL_INTERVAL,
                partial_line_timeout: PARTIAL_LINE_TIMEOUT,
                data_dir: cfg.data_dir.clone(),
            }
        })
        .chain(cfg.posts.iter().map(|p| FileSource {
            name: p.name.clone(),
            patterns: p.paths.clone(),
            exclude: p.exclude.clone(),
            kind: RecordKind::Post,
            platform: Some("jsonl".into()),
            multiline: None,
            read_from: p.read_from,
            max_line_bytes: 1024 * 1024,
            poll_interval: POLL_INTERVAL,
            partial_line_timeout: PARTIAL_LINE_TIMEOUT,
            data_dir: cfg.data_dir.clone(),
        }));
    let spawn = |name: String, fut: SourceFuture| {
        let h = health.clone();
        tokio::spawn(async move {
            if let Err(e) = fut.await {
                tracing::error!(source = %name, error = %e, "source stopped");
                h.down(&format!("source:{name}"), e.to_string());
            }
        })
    };
    for src in file_sources {
        let rx = acks.register(&src.name);
        let name = src.name.clone();
        let fut = src.run(producer.clone(), rx, stop_rx.clone(), health.clone());
        sources.push(spawn(name, Box::pin(fut)));
    }
    for src in feeds {
        let rx = acks.register(&src.name);
        let name = src.name.clone();
        let fut = src.run(producer.clone(), rx, stop_rx.clone(), health.clone());
        sources.push(spawn(name, Box::pin(fut)));
    }
    sources
}

/// The bus a process uses: its producer, its consumers, and where the
/// index sink sends the positions a commit made durable.
struct Bus {
    producer: Arc<dyn Producer>,
    consumers: Vec<Box<dyn Consumer>>,
    /// The embedded bus acknowledges sources after the index commit; with
    /// Kafka the broker's delivery report did, so the sink acknowledges nothing.
    index_acks: AckRouter,
    kafka: Option<KafkaProducer>,
}

/// The embedded bus, or Kafka when `[kafka]` is configured: topics created
/// when missing, every partition read from the offsets the index stored with
/// its state (see `farol_common::bus::kafka` for why that is exact).
async fn open_bus(
    cfg: &Config,
    index: &dyn Index,
    acks: &AckRouter,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<Bus> {
    let Some(k) = &cfg.kafka else {
        let (producer, consumers) =
            bus::embedded(cfg.bus.partitions, cfg.bus.capacity, cfg.bus.max_bytes);
        return Ok(Bus {
            producer: Arc::new(producer),
            consumers: consumers
                .into_iter()
                .map(|c| Box::new(c) as Box<dyn Consumer>)
                .collect(),
            index_acks: acks.clone(),
            kafka: None,
        });
    };
    let topics = [k.logs_topic.as_str(), k.posts_topic.as_str()];
    kafka::ensure_topics(k, &topics)
        .await
        .with_context(|| format!("creating the Kafka topics on {}", k.brokers))?;
    let offsets = index.input_offsets();
    let consumers = kafka::assign(k, &topics, &offsets, stop)
        .await
        .with_context(|| format!("consuming from Kafka at {}", k.brokers))?;
    let producer = KafkaProducer::new(k, Arc::new(acks.clone()))
        .with_context(|| format!("creating the Kafka producer for {}", k.brokers))?;
    Ok(Bus {
        producer: Arc::new(producer.clone()),
        consumers: consumers
            .into_iter()
            .map(|c| Box::new(c) as Box<dyn Consumer>)
            .collect(),
        index_acks: AckRouter::default(),
        kafka: Some(producer),
    })
}

impl Running {
    /// Waits until a processor or the sink stops on its own (a failure);
    /// it is then marked down in the health registry.
    pub async fn failed(&mut self) -> Failure {
        self.supervisor.first_failure().await
    }

    /// Shuts down the way data flows: sources stop, any write block is
    /// lifted, the bus drains, processors flush, the sink commits a last
    /// time, acknowledgements reach the checkpoints.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.stop_tx.send(true);
        // After `stop` (the admin handler checks it under this lock).
        self.write_block.send_replace(false);
        let outcome = self.supervisor.join_all().await;
        drop(self.acks);
        for s in self.sources {
            let _ = s.await;
        }
        if let Some(k) = self.kafka {
            // Delivery reports move checkpoints; what misses this is read again.
            if let Err(e) = k.flush(Duration::from_secs(5)).await {
                tracing::warn!(error = %e, "kafka producer flush at shutdown");
            }
        }
        outcome
    }
}

/// Runs until SIGINT/SIGTERM or a fatal component error.
pub async fn run(mut cfg: Config, demo: bool) -> anyhow::Result<()> {
    // The demo replays recorded Mastodon responses through the real poller.
    let _replay = if demo {
        Some(crate::sources::start_demo_feed(&mut cfg).await?)
    } else {
        None
    };
    let mut running = start(&cfg).await?;
    let listener = tokio::net::TcpListener::bind(&cfg.api.listen)
        .await
        .with_context(|| format!("binding the API to {}", cfg.api.listen))?;
    let addr = listener.local_addr()?;
    let admin = api::AdminAuth::from_env();
    if !api::serve::is_loopback(&addr) {
        let admin_note = match admin {
            api::AdminAuth::Token(_) => {
                "admin routes require the bearer token in FAROL_ADMIN_TOKEN"
            }
            api::AdminAuth::LoopbackOnly => {
                "admin routes answer loopback clients only (set FAROL_ADMIN_TOKEN to allow others)"
            }
        };
        eprintln!(
            "warning: the API listens on {addr} and is reachable from the network; /trends, /search, /metrics and /healthz need no authentication, and {admin_note}"
        );
    }
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on http://{addr}")?;
        if demo {
            writeln!(
                out,
                "demo: tailing the bundled access log from {} and polling recorded Mastodon timelines replayed on a local endpoint\n  dashboard: http://{addr}/\n  trends:    curl 'http://{addr}/trends?kind=log_class&window=1h'\n             curl 'http://{addr}/trends?kind=hashtag&window=1h'\n  search:    curl 'http://{addr}/search?q=kibana&kind=log'\n  stop with Ctrl-C",
                cfg.data_dir.join("demo").display()
            )?;
        }
        out.flush()?;
    }
    let sources = source_names(&cfg);
    let app = api::router(api::AppState {
        index: running.index.clone(),
        health: running.health.clone(),
        windows: running.params.windows.clone(),
        bucket_ms: running.params.bucket,
        write_block: running.write_block.clone(),
        stopping: running.stop_rx.clone(),
        sources: Arc::new(sources),
        scoring: crate::pipeline::scoring(&cfg.trends),
        admin,
    });
    // The API stays up while the pipeline drains (health stays visible) and
    // stops once it is done.
    let (api_stop, api_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(api::serve::serve(
        listener,
        app,
        async move {
            let _ = api_stopped.await;
        },
        Duration::from_secs(1),
    ));

    let failed = tokio::select! {
        _ = shutdown_signal() => None,
        f = running.failed() => Some(f),
    };
    let deadline = cfg.shutdown_timeout;
    let stopping_since = tokio::time::Instant::now();
    match &failed {
        None => {
            tracing::info!("shutting down (at most {deadline:?}; a second signal exits at once)")
        }
        Some(f) => tracing::error!("{f}; shutting down"),
    }
    let drained = tokio::select! {
        r = tokio::time::timeout(deadline, running.shutdown()) => match r {
            Ok(r) => r,
            Err(_) => Err(anyhow::anyhow!(
                "shutdown did not finish within {deadline:?} (shutdown_timeout); what was not committed is read again on the next start"
            )),
        },
        _ = shutdown_signal() => Err(anyhow::anyhow!(
            "a second signal arrived during shutdown; what was not committed is read again on the next start"
        )),
    };
    // Requests in progress may finish, within what is left of the deadline.
    let _ = api_stop.send(());
    let left = deadline.saturating_sub(stopping_since.elapsed());
    let _ = tokio::time::timeout(left.min(Duration::from_secs(2)), server).await;
    match failed {
        Some(f) => Err(anyhow::Error::new(f)),
        None => drained,
    }
}
