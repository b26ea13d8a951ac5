//! `farol`: one binary, one subcommand per role (BRIEF §1).

mod api;
mod batch;
mod batch_counts;
mod batch_inputs;
mod batch_summary;
mod batch_worker;
mod bench;
mod cli;
mod detect;
mod health_server;
mod index_cmd;
mod ingest_cmd;
mod pipeline;
mod process_cmd;
mod serve;
mod sources;
mod supervisor;

use clap::Parser;
use std::io::IsTerminal;
use std::process::ExitCode;

/// mimalloc instead of the system allocator: after the per-record
/// allocations were taken out, the rest (short-lived strings of parsed
/// lines) still spent a fifth of `farol batch` in glibc's malloc and free,
/// and its per-thread arenas held memory the workers had freed
/// (BENCHMARKS.md, issue 13).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, never in log files.
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FAROL_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match cli::dispatch(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
