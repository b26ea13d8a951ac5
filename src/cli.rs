//! Command-line surface: argument types and dispatch to the subcommands.

use crate::{batch, bench, detect, index_cmd, ingest_cmd, pipeline, process_cmd, serve, sources};
use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use farol_common::config::{self, Config, ConfigError};
use std::path::PathBuf;
use std::process::ExitCode;

/// Real-time log and social-feed analytics.
#[derive(Parser, Debug)]
#[command(name = "farol", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// How log lines on stderr are written: `text` for a person, `json`
    /// (one object per line) for a log collector.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// The format of Farol's own log lines.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines (colours only at a terminal).
    Text,
    /// One JSON object per line: timestamp, level, target, fields.
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Every component in one process (embedded bus and index unless configured).
    Run(RunArgs),
    /// Only the sources, publishing raw records to Kafka (needs [kafka]).
    Ingest(IngestArgs),
    /// One member of the processor fleet: raw topics in, batches out (needs [kafka]).
    Process(ServeArgs),
    /// The processors' batches into the index, and the API over it (needs [kafka]).
    Index(ServeArgs),
    /// The API and dashboard answered from Elasticsearch alone (needs [elasticsearch]).
    Serve(ServeArgs),
    /// Re-process historical files through the same parsing and windowing.
    Batch(BatchArgs),
    /// End-to-end load generator: write → durable latency (HdrHistogram) and throughput.
    Bench(BenchArgs),
    /// Show which format, class, level and time the first lines of a file are taken for.
    Detect(DetectArgs),
    /// Validate a config file and print every problem found.
    CheckConfig {
        /// The TOML file.
        file: PathBuf,
    },
}

/// Options shared by commands that read a config.
#[derive(Args, Debug, Clone)]
pub struct CommonArgs {
    /// Config file (TOML). Every key can also be set as FAROL_SECTION__KEY.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Where checkpoints and the embedded index live [default: ./farol-data].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// API address; port 0 picks a free one (printed as `listening on http://…`).
    #[arg(long)]
    pub listen: Option<String>,
    /// Log files to tail (globs); each file is a source named after its stem.
    #[arg(long, num_args = 1.., action = clap::ArgAction::Append)]
    pub logs: Vec<String>,
    /// JSON-lines post files to tail; each file is a source named after its stem.
    #[arg(long, num_args = 1.., action = clap::ArgAction::Append)]
    pub posts: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// API address; port 0 picks a free one (printed as `listening on http://…`).
    #[arg(long)]
    pub listen: Option<String>,
}

/// Output of `farol batch`.
/// `farol ingest`
#[derive(Args, Debug)]
pub struct IngestArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Log files or globs to tail (each a source named after its file stem).
    #[arg(long, num_args = 1.., action = clap::ArgAction::Append)]
    pub logs: Vec<String>,
    /// JSON-lines post files (each a source named after its file stem).
    #[arg(long, num_args = 1.., action = clap::ArgAction::Append)]
    pub posts: Vec<String>,
    /// Address of `/healthz` and `/metrics`; port 0 picks a free one.
    #[arg(long)]
    pub listen: Option<String>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchFormat {
    /// Write events and counts into the embedded index under the data dir.
    Index,
    /// Print one JSON object per base bucket, kind, source and key on stdout.
    Json,
    /// Print every event document (what the index stores: source, file,
    /// line_no, ts, class, level, message, template, template_id, …) as
    /// one JSON line on stdout, in input order.
    Events,
}

#[derive(Args, Debug)]
pub struct BatchArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Where the aggregates go.
    #[arg(long, value_enum, default_value = "index")]
    pub format: BatchFormat,
    /// Counts classes and hashtags without mining log templates
    /// (`processor.templates = false`).
    #[arg(long)]
    pub no_templates: bool,
    /// Files, directories (read recursively, binary files skipped) or globs:
    /// log files, or JSON-lines posts (recognized by content).
    #[arg(required = true)]
    pub paths: Vec<String>,
}

#[derive(Args, Debug)]
pub struct DetectArgs {
    /// The log file.
    pub file: PathBuf,
    /// How many lines to show.
    #[arg(long, short = 'n', default_value_t = 20)]
    pub lines: usize,
    /// The format to read the file with: `auto`, `json`, `logfmt` or a
    /// built-in name (see README).
    #[arg(long, default_value = "auto")]
    pub format: String,
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// How long to write, e.g. 30s.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub duration: std::time::Duration,
    /// Lines per second; 0 writes as fast as possible.
    #[arg(long, default_value_t = 20_000)]
    pub rate: u64,
    /// Approximate bytes per line.
    #[arg(long, default_value_t = 120)]
    pub line_bytes: usize,
    /// Aggregates only: no event documents (`index.events = false`).
    #[arg(long)]
    pub no_events: bool,
    /// No template mining (`processor.templates = false`).
    #[arg(long)]
    pub no_templates: bool,
    /// Files written in turn, each its own source (and stream), so the
    /// processors of several bus partitions share the work.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub files: u32,
}

fn report(errs: &[ConfigError]) {
    for e in errs {
        eprintln!("config error: {e}");
    }
}

/// Loads the config file (if any) with environment overrides and CLI flags.
pub fn load_config(common: &CommonArgs) -> Result<Config, ExitCode> {
    let mut cfg = config::load(common.config.as_deref()).map_err(|errs| {
        report(&errs);
        ExitCode::FAILURE
    })?;
    if let Some(d) = &common.data_dir {
        cfg.data_dir = d.clone();
    }
    Ok(cfg)
}

/// Runs a subcommand; `Ok(code)` for handled outcomes, `Err` for failures.
pub fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::CheckConfig { file } => match config::load(Some(&file)) {
            Ok(cfg) => {
                println!(
                    "{}: ok ({} log sources, {} feeds, {} post sources)",
                    file.display(),
                    cfg.logs.len(),
                    cfg.feeds.len(),
                    cfg.posts.len()
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(errs) => {
                report(&errs);
                Ok(ExitCode::FAILURE)
            }
        },
        Command::Run(args) => {
            let mut cfg = match load_config(&args.common) {
                Ok(c) => c,
                Err(code) => return Ok(code),
            };
            if let Some(l) = &args.listen {
                cfg.api.listen = l.clone();
            }
            let demo =
                args.common.config.is_none() && args.logs.is_empty() && args.posts.is_empty();
            if demo {
                sources::install_demo(&mut cfg).context("preparing the demo data")?;
            } else {
                sources::add_cli_sources(&mut cfg, &args.logs, &args.posts);
            }
            let errs = config::validate(&cfg);
            if !errs.is_empty() {
                report(&errs);
                return Ok(ExitCode::FAILURE);
            }
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            let outcome = rt.block_on(pipeline::run(cfg, demo));
            // A task stuck in a blocking call (a hung disk past the shutdown
            // deadline) must not keep the process alive.
            rt.shutdown_timeout(std::time::Duration::from_secs(1));
            outcome?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Ingest(args) => {
            let mut cfg = match load_config(&args.common) {
                Ok(c) => c,
                Err(code) => return Ok(code),
            };
            sources::add_cli_sources(&mut cfg, &args.logs, &args.posts);
            if let Some(l) = &args.listen {
                cfg.api.listen = l.clone();
            }
            run_validated(cfg, ingest_cmd::run)
        }
        Command::Serve(args) => match listening_config(&args) {
            Ok(cfg) => run_validated(cfg, serve::run),
            Err(code) => Ok(code),
        },
        Command::Process(args) => match listening_config(&args) {
            Ok(cfg) => run_validated(cfg, process_cmd::run),
            Err(code) => Ok(code),
        },
        Command::Index(args) => match listening_config(&args) {
            Ok(cfg) => run_validated(cfg, index_cmd::run),
            Err(code) => Ok(code),
        },
        Command::Bench(args) => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            rt.block_on(bench::run(bench::BenchOptions {
                duration: args.duration,
                rate: args.rate,
                line_bytes: args.line_bytes,
                events: !args.no_events,
                templates: !args.no_templates,
                files: args.files as usize,
            }))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Batch(args) => {
            let mut cfg = match load_config(&args.common) {
                Ok(c) => c,
                Err(code) => return Ok(code),
            };
            if args.no_templates {
                cfg.processor.templates = false;
            }
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            let all_read = rt.block_on(batch::run(cfg, args.format, &args.paths))?;
            Ok(if all_read {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Detect(args) => {
            let spec = config::FormatSpec::Named(args.format);
            let mut out = std::io::stdout().lock();
            match detect::report(&args.file, args.lines, &spec, &mut out) {
                Ok(()) => Ok(ExitCode::SUCCESS),
                Err(e) => {
                    eprintln!("error: {e}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
    }
}

/// The config of a component with an API address, `--listen` applied.
fn listening_config(args: &ServeArgs) -> Result<Config, ExitCode> {
    let mut cfg = load_config(&args.common)?;
    if let Some(l) = &args.listen {
        cfg.api.listen = l.clone();
    }
    Ok(cfg)
}

/// Validates `cfg` (every problem reported, exit 1 on any), then runs one
/// long-lived component on a fresh runtime until it ends.
fn run_validated<F, Fut>(cfg: Config, component: F) -> anyhow::Result<ExitCode>
where
    F: FnOnce(Config) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let errs = config::validate(&cfg);
    if !errs.is_empty() {
        report(&errs);
        return Ok(ExitCode::FAILURE);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let outcome = rt.block_on(component(cfg));
    // A task stuck in a blocking call must not keep the process alive.
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    outcome?;
    Ok(ExitCode::SUCCESS)
}
