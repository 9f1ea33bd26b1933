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
    one_malloc_arena();
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

/// SQLite allocates through the C library's malloc, from the thread of each connection; glibc
/// gives each such thread an arena of its own, and freed pages stay in it. One arena: 9 MiB
/// less peak RSS under 32 clients at 1M contacts, throughput unchanged (BENCHMARKS.md).
/// Called before any connection's thread starts.
fn one_malloc_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only sets a tunable of the allocator; no pointer is passed.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
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
