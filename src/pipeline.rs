//! `farol run`: wires every component in one process.
//!
//! ```text
//! file sources ──publish──▶ embedded bus ──▶ processor tasks ──batches──▶ index sink
//!      ▲                                                                   │
//!      └──────────────── acknowledgements (after commit) ◀─────────────────┘
//! ```
//! Shutdown runs the same way data flows: sources stop, the bus drains,
//! processors flush, the sink commits a last time, acknowledgements reach the
//! checkpoints, then the process exits.

use crate::api;
use anyhow::{bail, Context};
use farol_common::bus::{self, AckRouter, Producer};
use farol_common::config::Config;
use farol_common::health::Health;
use farol_common::model::RecordKind;
use farol_indexer::embedded::EmbeddedIndex;
use farol_indexer::sink::run_sink;
use farol_indexer::Index;
use farol_ingest::feed::FeedSource;
use farol_ingest::tail::{FileSource, Multiline};
use farol_processor::processor::{Parsers, Processor};
use farol_processor::task::run_partition;
use farol_processor::window::WindowParams;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// How often file sources look for new files and new lines.
const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// How long a file must stay unchanged before its unterminated last line is read.
const PARTIAL_LINE_TIMEOUT: Duration = Duration::from_secs(1);
/// How often processors flush to the index.
const FLUSH_INTERVAL: Duration = Duration::from_millis(200);

/// A source task's future, boxed so file sources and feeds share one spawner.
type SourceFuture = std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<()>> + Send>>;

/// Opens the embedded index of a data dir.
pub fn open_index(cfg: &Config) -> anyhow::Result<EmbeddedIndex> {
    let dir = cfg.data_dir.join("index");
    EmbeddedIndex::open(&dir, cfg.index.writer_memory_mb).with_context(|| {
        format!(
            "opening the embedded index in {} (is another farol using this data dir?)",
            dir.display()
        )
    })
}

async fn shutdown_signal() {
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
    pub index: Arc<EmbeddedIndex>,
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
    /// `None` once it has been awaited.
    sink: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    processors: Vec<tokio::task::JoinHandle<()>>,
    sources: Vec<tokio::task::JoinHandle<()>>,
}

/// Opens the index and starts the sink, the processors and every source.
pub async fn start(cfg: &Config) -> anyhow::Result<Running> {
    if cfg.kafka.is_some() || cfg.elasticsearch.is_some() {
        bail!("the Kafka bus and the Elasticsearch index are not part of this build yet; remove [kafka] and [elasticsearch] to use the embedded bus and index");
    }
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("creating data dir {}", cfg.data_dir.display()))?;
    let index = Arc::new(open_index(cfg)?);
    let health = Health::default();
    let params = WindowParams::from_config(&cfg.windows);
    let parsers = Parsers::new(cfg.logs.iter().map(|l| (l.name.as_str(), &l.format)))
        .context("compiling log formats")?;
    // Feeds are set up (tokens read) before anything starts moving data.
    let feeds = cfg
        .feeds
        .iter()
        .map(|f| {
            FeedSource::from_config(f, cfg.data_dir.clone())
                .with_context(|| format!("setting up feed '{}'", f.name))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let restored = index.stream_states();
    let (producer, consumers) =
        bus::embedded(cfg.bus.partitions, cfg.bus.capacity, cfg.bus.max_bytes);
    let acks = AckRouter::default();

    // One batch in flight per partition: with the processors' flush limits
    // (records and bytes) this bounds the memory between bus and index.
    let (sink_tx, sink_rx) = mpsc::channel(cfg.bus.partitions as usize);
    let (write_block, write_block_rx) = watch::channel(false);
    let sink = tokio::spawn(run_sink(
        index.clone() as Arc<dyn Index>,
        sink_rx,
        acks.clone(),
        cfg.index.commit_interval,
        health.clone(),
        write_block_rx,
    ));
    let mut processors = Vec::new();
    for c in consumers {
        let proc = Processor::new(params.clone(), parsers.clone(), &restored);
        processors.push(tokio::spawn(run_partition(
            Box::new(c),
            proc,
            sink_tx.clone(),
            FLUSH_INTERVAL,
        )));
    }
    drop(sink_tx);
    health.up("processor");

    let (stop_tx, stop_rx) = watch::channel(false);
    let producer: Arc<dyn Producer> = Arc::new(producer);
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
    drop(producer);
    Ok(Running {
        index,
        health,
        params,
        acks,
        write_block: Arc::new(write_block),
        stop_rx,
        stop_tx,
        sink: Some(sink),
        processors,
        sources,
    })
}

impl Running {
    /// Waits until the sink stops on its own (a failure) and returns its outcome.
    pub async fn sink_failed(&mut self) -> anyhow::Result<()> {
        let Some(handle) = self.sink.as_mut() else {
            return std::future::pending().await;
        };
        let outcome = handle.await;
        self.sink = None;
        outcome.context("index sink task")??;
        bail!("the index sink stopped unexpectedly")
    }

    /// Shuts down the way data flows: sources stop, the bus drains,
    /// processors flush, the sink commits a last time, acknowledgements reach
    /// the checkpoints.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.stop_tx.send(true);
        for p in self.processors {
            let _ = p.await;
        }
        let sink = match self.sink {
            Some(h) => h.await.context("index sink task")?,
            None => Ok(()),
        };
        drop(self.acks);
        for s in self.sources {
            let _ = s.await;
        }
        sink
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
    let app = api::router(api::AppState {
        index: running.index.clone() as Arc<dyn Index>,
        health: running.health.clone(),
        windows: running.params.windows.clone(),
        bucket_ms: running.params.bucket,
        write_block: running.write_block.clone(),
    });
    let mut server_stop = running.stop_rx.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = server_stop.wait_for(|s| *s).await;
            })
            .await
    });

    let failed = tokio::select! {
        _ = shutdown_signal() => None,
        r = running.sink_failed() => Some(r),
    };
    tracing::info!("shutting down");
    let outcome = match failed {
        Some(e) => {
            let _ = running.shutdown().await;
            e
        }
        None => running.shutdown().await,
    };
    let _ = server.await;
    outcome
}
