//! Social feed sources: pollers for X API v2 recent search and Mastodon
//! timelines. Each poll fetches every page newer than the feed's cursor,
//! publishes the posts in id order (oldest first, each id once), and the
//! cursor — the highest post id whose effects are durable — is persisted
//! only when the bus acknowledges it.
//!
//! A post's id doubles as its stream position, so a replay after a restart is
//! recognized downstream exactly like a re-read log line.

pub mod http;
pub mod mastodon;
pub mod replay;
pub mod x;

use crate::checkpoint::{path_for, Registry};
use farol_common::bus::{publish_paced, Producer};
use farol_common::config::{FeedConfig, Platform};
use farol_common::health::Health;
use farol_common::metrics::metrics;
use farol_common::model::{Position, RawRecord, RecordKind};
use farol_common::time::{now_ms, Millis};
use http::{FeedError, Page};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Pages fetched at most in one poll (the rest comes next poll).
pub const MAX_PAGES_PER_POLL: usize = 20;
/// Failed polls in a row after which a feed that did connect is reported down.
pub const FAILED_POLLS_DOWN: u32 = 3;

/// Posts of an unfinished paging chain held at most; beyond it the newest
/// are let go (the next chain, starting above what was published, fetches
/// them again).
pub const MAX_CHAIN_POSTS: usize = 10_000;

/// The pages fetched so far of one paging chain (all the pages newer than
/// the cursor). X recent search pages run newest to oldest, so nothing of a
/// chain is published before its last page: publishing part of it and
/// moving the cursor would skip the older posts never fetched. A chain cut
/// by an error or the page cap is resumed by the next poll from its paging
/// token; a token the API refuses starts the chain again from the cursor.
#[derive(Default)]
struct Chain {
    posts: std::collections::BTreeMap<u64, Vec<u8>>,
    next: Option<String>,
}

impl Chain {
    fn add(&mut self, id: u64, raw: Vec<u8>) {
        self.posts.insert(id, raw);
        if self.posts.len() > MAX_CHAIN_POSTS {
            self.posts.pop_last();
        }
    }
}

/// One platform's way of fetching the pages newer than a cursor.
#[async_trait::async_trait]
pub trait Fetcher: Send + Sync {
    /// Fetches the next page. `cursor` is the highest id already emitted;
    /// `next` is the paging token the previous page returned in this poll.
    async fn page(&self, cursor: Option<u64>, next: Option<&str>) -> Result<Page, FeedError>;
}

/// A configured feed, ready to run.
pub struct FeedSource {
    /// Source name.
    pub name: String,
    /// Poll interval.
    pub interval: Duration,
    /// Platform label recorded on posts.
    pub platform: &'static str,
    /// The platform client.
    pub fetcher: Box<dyn Fetcher>,
    /// The data dir holding cursors.
    pub data_dir: PathBuf,
}

impl FeedSource {
    /// Builds a feed from config; the token is read from `token_env`.
    pub fn from_config(cfg: &FeedConfig, data_dir: PathBuf) -> Result<Self, FeedError> {
        let token = match &cfg.token_env {
            Some(var) => Some(std::env::var(var).map_err(|_| {
                FeedError::Config(format!(
                    "feed '{}': environment variable {var} (token_env) is not set",
                    cfg.name
                ))
            })?),
            None => None,
        };
        let client = http::client()?;
        let (platform, fetcher): (&'static str, Box<dyn Fetcher>) = match cfg.platform {
            Platform::Mastodon => (
                "mastodon",
                Box::new(mastodon::Mastodon::new(
                    client,
                    &cfg.name,
                    &cfg.url,
                    cfg.timeline.as_deref().unwrap_or("public"),
                    token,
                )?),
            ),
            Platform::X => {
                let token = token.ok_or_else(|| {
                    FeedError::Config(format!(
                        "feed '{}': X needs a bearer token (token_env)",
                        cfg.name
                    ))
                })?;
                (
                    "x",
                    Box::new(x::X::new(
                        client,
                        &cfg.name,
                        &cfg.url,
                        cfg.query.as_deref().unwrap_or_default(),
                        token,
                    )?),
                )
            }
        };
        Ok(FeedSource {
            name: cfg.name.clone(),
            interval: cfg.interval,
            platform,
            fetcher,
            data_dir,
        })
    }

    /// The stream id of this feed.
    pub fn stream(&self) -> String {
        format!("feed:{}", self.name)
    }

    /// Polls until `shutdown`; acknowledged cursors arrive on `acks`.
    pub async fn run(
        self,
        producer: Arc<dyn Producer>,
        mut acks: mpsc::UnboundedReceiver<Position>,
        mut shutdown: watch::Receiver<bool>,
        health: Health,
    ) -> anyhow::Result<()> {
        let ckpt = path_for(&self.data_dir.join("cursors"), &self.name);
        let mut registry = Registry::load(&ckpt)?;
        let stream = self.stream();
        let mut cursor: Option<u64> = registry.streams.get(&stream).map(|e| e.end);
        let mut seq = registry.streams.get(&stream).map_or(0, |e| e.line_no);
        let component = format!("source:{}", self.name);
        // Unhealthy until a poll succeeds: a feed that can never connect
        // must not report ok.
        health.down(&component, "connecting: no successful poll yet");
        let mut connected = false;
        let mut failed_polls = 0u32;
        let writer = {
            let stream = stream.clone();
            let health = health.clone();
            let component = component.clone();
            tokio::spawn(async move {
                // Applies acks and writes the cursor file; ends when the router drops.
                while let Some(p) = acks.recv().await {
                    registry.advance(&stream, "", p.end, p.line_no, now_ms());
                    while let Ok(p) = acks.try_recv() {
                        registry.advance(&stream, "", p.end, p.line_no, now_ms());
                    }
                    let r = registry.clone();
                    let path = ckpt.clone();
                    match tokio::task::spawn_blocking(move || r.save(&path)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => health.down(&component, e.to_string()),
                        Err(e) => health.down(&component, e.to_string()),
                    }
                }
            })
        };
        let mut chain = Chain::default();
        'polls: loop {
            let mut wait = self.interval;
            let mut complete = false;
            for _ in 0..MAX_PAGES_PER_POLL {
                let fetched = tokio::select! {
                    r = self.fetcher.page(cursor, chain.next.as_deref()) => r,
                    _ = shutdown.changed() => break 'polls,
                };
                match fetched {
                    Ok(page) => {
                        health.up(&component);
                        connected = true;
                        failed_polls = 0;
                        for w in &page.warnings {
                            metrics()
                                .feed_errors
                                .with_label_values(&[&self.name, "api"])
                                .inc();
                            tracing::warn!(feed = %self.name, error = %w, "API reported an error in a 200 response");
                        }
                        if let Some(w) = page.wait {
                            wait = wait.max(w);
                        }
                        for (id, raw) in page.posts {
                            if cursor.is_none_or(|c| id > c) {
                                chain.add(id, raw);
                            }
                        }
                        match page.next {
                            Some(n) => chain.next = Some(n),
                            None => {
                                complete = true;
                                break;
                            }
                        }
                    }
                    Err(e) => {
                        metrics()
                            .source_errors
                            .with_label_values(&[&self.name])
                            .inc();
                        if !matches!(e, FeedError::Server(_) | FeedError::Network(_)) {
                            // Server and network failures were counted per attempt.
                            metrics()
                                .feed_errors
                                .with_label_values(&[&self.name, e.kind()])
                                .inc();
                            tracing::warn!(feed = %self.name, error = %e, "poll failed");
                        }
                        if let FeedError::RateLimited(w) = &e {
                            wait = wait.max(*w);
                        }
                        if let FeedError::RateLimited(_) = e {
                            connected = true; // it answered; it asks us to wait
                        } else {
                            failed_polls += 1;
                        }
                        // Down when the credentials are refused, when it never
                        // answered, or after several failed polls in a row.
                        if matches!(e, FeedError::Auth(_))
                            || !connected
                            || failed_polls >= FAILED_POLLS_DOWN
                        {
                            health.down(&component, e.to_string());
                        }
                        if matches!(e, FeedError::Status(_)) && chain.next.is_some() {
                            // The paging token was refused: start over from
                            // the cursor (nothing of the chain was published).
                            chain = Chain::default();
                        }
                        break;
                    }
                }
            }
            if !complete {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.changed() => break,
                }
                continue;
            }
            let batch = std::mem::take(&mut chain).posts;
            // Oldest first, so event-time windows see the feed in order.
            for (id, raw) in batch {
                seq += 1;
                let rec = RawRecord {
                    source: self.name.as_str().into(),
                    stream: stream.as_str().into(),
                    kind: RecordKind::Post,
                    platform: Some(self.platform.to_string()),
                    file: None,
                    line_no: seq,
                    line_span: 0,
                    offset: id,
                    end: id,
                    payload: raw,
                    truncated: false,
                    ingest_ms: now_ms(),
                    file_mtime: None,
                    arrival_delay_ms: Millis::try_from(self.interval.as_millis()).ok(),
                };
                tokio::select! {
                    r = publish_paced(producer.as_ref(), rec) => if r.is_err() { break 'polls },
                    _ = shutdown.changed() => break 'polls,
                }
                metrics()
                    .records_read
                    .with_label_values(&[&self.name])
                    .inc();
                cursor = Some(id);
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => break,
            }
        }
        drop(producer);
        let _ = writer.await;
        Ok(())
    }
}
