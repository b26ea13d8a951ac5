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
/// lines) still spent a fifth of `farol batch` in glibc's malloc and free
/// (BENCHMARKS.md, issue 13).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Transparent huge pages off for this process: with them, each fresh
/// mimalloc page faulted in a zeroed 2 MiB page (a fifth of `farol batch`'s
/// time in the kernel's `clear_page`, and tens of MiB of resident memory
/// never used).
fn no_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl(PR_SET_THP_DISABLE) takes plain integers and changes
    // nothing but this process's huge-page policy; a failure (an old
    // kernel) only leaves the policy as it was.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

fn main() -> ExitCode {
    no_transparent_huge_pages();
    let args = cli::Cli::parse();
    let filter = || {
        tracing_subscriber::EnvFilter::try_from_env("FAROL_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
    };
    match args.log_format {
        cli::LogFormat::Text => tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            // Colour codes only for a person at a terminal, never in log files.
            .with_ansi(std::io::stderr().is_terminal())
            .with_env_filter(filter())
            .init(),
        cli::LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_writer(std::io::stderr)
            .with_env_filter(filter())
            .init(),
    }
    match cli::dispatch(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
