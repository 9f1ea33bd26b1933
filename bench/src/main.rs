//! `bench`: the real server against plain axum handlers, on SQLite and on PostgreSQL: one
//! making the same domain calls, so running the same SQL (`bench-baseline`), and the ceiling,
//! one raw prepared sqlx statement per request (`bench-raw-baseline`: lookup, open windows,
//! create). Seeds through `contacts-server import`, then, per operation, a warm-up and a
//! fixed-duration, fixed-concurrency load against each server in turn; prints req/s, p50,
//! p99, server CPU time per request and peak RSS, with the GraphQL server's ratios to each
//! baseline. Every response is checked for errors, and row counts after write loads.
//!
//!   scripts/bench                      # 100,000 rows, both backends
//!   scripts/bench --rows 1000000 --runs 3
//!   scripts/bench --rows 10000000 --targets graphql --clients 1,32   # issue 13's size table

mod load;
mod op;
mod report;
mod scale;
mod seed;
mod server;

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context, bail};
use clap::Parser;

use crate::{
    load::{Op, Target},
    report::{Measured, Table},
    server::Server,
};

#[derive(Debug, Parser)]
#[command(about = "Load benchmark: contacts-server against a plain handler on the same SQL")]
pub struct Args {
    /// Contacts seeded before the loads.
    #[arg(long, default_value_t = 100_000)]
    rows: usize,
    /// Seconds each load is measured.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Seconds of warm-up before each measurement.
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// Concurrent clients; several (`--clients 1,32`) measure every load at each.
    #[arg(
        long = "clients",
        alias = "concurrency",
        value_delimiter = ',',
        default_value = "32"
    )]
    clients: Vec<usize>,
    /// Measure every load this many times; the table shows medians.
    #[arg(long, default_value_t = 1)]
    runs: usize,
    /// Backends to run, among sqlite and postgres.
    #[arg(long, value_delimiter = ',', default_value = "sqlite,postgres")]
    backends: Vec<String>,
    /// PostgreSQL server to use (a fresh schema is made and dropped); scripts/bench starts a
    /// throwaway one and passes it as TEST_DATABASE_URL.
    #[arg(long, env = "TEST_DATABASE_URL")]
    postgres_url: Option<String>,
    /// Only these operations (lookup, open-windows, open-windows-number, page-1, page-2000, stats,
    /// page-1-last, page-2000-last, closed-windows, metadata-match, metadata-none, prefix,
    /// count, count-filtered, create, mix).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Servers to load, among graphql, baseline (domain-layer handlers) and raw (one sqlx
    /// statement per request).
    #[arg(long, value_delimiter = ',', default_value = "graphql,baseline,raw")]
    targets: Vec<String>,
    /// Keep each backend's database afterwards (SQLite file, PostgreSQL schema) and print
    /// where it is, to inspect query plans at that size.
    #[arg(long)]
    keep: bool,
    /// Measure a database kept by `--keep` (seeded with `--rows` contacts) instead of
    /// seeding a new one: one backend, its URL as printed.
    #[arg(long)]
    reuse: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let bin_dir = std::env::current_exe()?
        .parent()
        .map(PathBuf::from)
        .context("locating the binaries")?;
    let ops: Vec<Op> = Op::ALL
        .into_iter()
        .filter(|op| args.only.is_empty() || args.only.iter().any(|name| name == op.name()))
        .collect();
    let targets = args
        .targets
        .iter()
        .map(|name| Target::parse(name).with_context(|| format!("unknown target {name}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut table = Table::default();
    for backend in &args.backends {
        let work = tempfile::tempdir()?;
        let (url, plan) = match &args.reuse {
            Some(url) => (url.clone(), seed::Plan { rows: args.rows }),
            None => {
                let url = database(&args, backend, work.path()).await?;
                let plan = seed_database(&args, &bin_dir, backend, &url, work.path()).await?;
                table.import(backend, args.rows, plan.1);
                (url, plan.0)
            }
        };
        // Every server up at once, loaded one at a time, operation by operation: each
        // operation meets the same data on all (the write loads come last).
        let mut servers = Vec::new();
        for target in &targets {
            let server = Server::start(&bin_dir, *target, &url).await?;
            let context = load::Context::prepare(&server, &plan, backend, *target, &ops).await?;
            servers.push((server, context));
        }
        table.add(measure(&args, backend, &ops, &servers).await?);
        for (server, _) in servers {
            let kib = server.peak_rss_kib()?;
            eprintln!("   {backend} {} peak RSS {} KiB", server.target.name(), kib);
            table.peak_rss(backend, server.target, kib);
            server.stop().await;
        }
        if args.keep {
            eprintln!("   kept {backend}: {url}");
            let _ = work.keep();
        } else if args.reuse.is_none() && backend == "postgres" {
            seed::drop_postgres_schema(args.postgres_url.as_deref().unwrap_or_default(), &url)
                .await?;
        }
    }
    table.print(&args);
    if table.errors() > 0 {
        bail!("{} responses had errors", table.errors());
    }
    Ok(())
}

/// The database URL for `backend`: a file in `work` on SQLite, a fresh schema on PostgreSQL.
async fn database(args: &Args, backend: &str, work: &Path) -> anyhow::Result<String> {
    match backend {
        "sqlite" => Ok(format!(
            "sqlite://{}?mode=rwc",
            work.join("bench.db").display()
        )),
        "postgres" => {
            let server = args.postgres_url.as_deref().context(
                "postgres needs TEST_DATABASE_URL or --postgres-url (scripts/bench starts one)",
            )?;
            seed::fresh_postgres_schema(server).await
        }
        other => bail!("unknown backend {other}; use sqlite or postgres"),
    }
}

/// Writes the seed's CSV and imports it; the plan and the import's rows per second.
async fn seed_database(
    args: &Args,
    bin_dir: &Path,
    backend: &str,
    url: &str,
    work: &Path,
) -> anyhow::Result<(seed::Plan, f64)> {
    eprintln!(
        "== {backend}: seeding {} contacts through import",
        args.rows
    );
    let csv = work.join("seed.csv");
    let plan = seed::write_csv(&csv, args.rows)?;
    let import = seed::import(bin_dir, url, &csv, &plan).await?;
    // The CSV is as large as the table at 10M rows: not kept beside it.
    std::fs::remove_file(&csv)?;
    eprintln!("   import {backend}: {import:.0} rows/s");
    Ok((plan, import))
}

/// Every operation on every server that serves it, at each client count, `runs` times.
async fn measure(
    args: &Args,
    backend: &str,
    ops: &[Op],
    servers: &[(Server, load::Context)],
) -> anyhow::Result<Vec<Measured>> {
    let mut measured = Vec::new();
    for op in ops {
        for (server, context) in servers.iter().filter(|(s, _)| s.target.serves(*op)) {
            for &clients in &args.clients {
                let mut runs = Vec::new();
                for run in 0..args.runs {
                    eprintln!(
                        "   {backend} {} {} x{clients} run {}",
                        server.target.name(),
                        op.name(),
                        run + 1
                    );
                    let warmup = Duration::from_secs(args.warmup);
                    let seconds = Duration::from_secs(args.seconds);
                    let result = load::run(server, context, *op, clients, warmup, seconds).await?;
                    runs.push(result);
                }
                measured.push(Measured::median(backend, server.target, *op, clients, runs));
            }
        }
    }
    Ok(measured)
}
