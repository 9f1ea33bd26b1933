//! `contacts-server`: parse the command line, start logging, run the subcommand.

use std::process::ExitCode;

use clap::Parser;
use contacts_server::cli::{self, Cli};

/// A GraphQL response is many small allocations; mimalloc serves them faster than glibc's
/// malloc (the benchmark showed it: see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    contacts_server::logging::init(&cli::log_args(&cli));
    match cli::run(cli).await {
        Ok(status) => ExitCode::from(status),
        // `export | head`: the reader has all it wants; not an error.
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        let io = cause.downcast_ref::<std::io::Error>().or_else(|| {
            match cause.downcast_ref::<csv::Error>().map(csv::Error::kind) {
                Some(csv::ErrorKind::Io(io)) => Some(io),
                _ => None,
            }
        });
        io.is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
