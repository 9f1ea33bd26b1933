//! The printed table: per backend and operation, each server's figures and the GraphQL
//! server's ratio to the baseline.

use std::collections::BTreeMap;

use crate::{
    Args,
    load::{Op, RunResult, Target},
};

/// The median over runs of one operation on one server.
#[derive(Debug, Clone)]
pub struct Measured {
    backend: String,
    target: Target,
    op: Op,
    result: RunResult,
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or_default()
}

impl Measured {
    pub fn median(backend: &str, target: Target, op: Op, runs: Vec<RunResult>) -> Self {
        let pick = |f: fn(&RunResult) -> f64| median(runs.iter().map(f).collect());
        let result = RunResult {
            requests: runs.iter().map(|r| r.requests).sum(),
            errors: runs.iter().map(|r| r.errors).sum(),
            first_error: runs.iter().find_map(|r| r.first_error.clone()),
            per_second: pick(|r| r.per_second),
            p50_ms: pick(|r| r.p50_ms),
            p99_ms: pick(|r| r.p99_ms),
            cpu_us_per_request: pick(|r| r.cpu_us_per_request),
            rows_check: runs
                .iter()
                .filter_map(|r| r.rows_check)
                .reduce(|a, b| a && b),
        };
        Self {
            backend: backend.to_owned(),
            target,
            op,
            result,
        }
    }
}

#[derive(Debug, Default)]
pub struct Table {
    measured: Vec<Measured>,
    imports: Vec<(String, usize, f64)>,
    rss: BTreeMap<(String, &'static str), u64>,
}

impl Table {
    pub fn add(&mut self, measured: Vec<Measured>) {
        self.measured.extend(measured);
    }

    pub fn import(&mut self, backend: &str, rows: usize, per_second: f64) {
        self.imports.push((backend.to_owned(), rows, per_second));
    }

    pub fn peak_rss(&mut self, backend: &str, target: Target, kib: u64) {
        self.rss.insert((backend.to_owned(), target.name()), kib);
    }

    pub fn errors(&self) -> u64 {
        self.measured.iter().map(|m| m.result.errors).sum::<u64>()
            + self
                .measured
                .iter()
                .filter(|m| m.result.rows_check == Some(false))
                .count() as u64
    }

    fn find(&self, backend: &str, target: Target, op: Op) -> Option<&RunResult> {
        self.measured
            .iter()
            .find(|m| m.backend == backend && m.target == target && m.op == op)
            .map(|m| &m.result)
    }

    pub fn print(&self, args: &Args) {
        println!();
        println!(
            "contacts-server benchmark: {} rows, {} clients, {} s per load after {} s warm-up, \
             median of {} run(s)",
            args.rows, args.concurrency, args.seconds, args.warmup, args.runs
        );
        println!();
        println!(
            "| backend | operation | GraphQL req/s | baseline req/s | req/s ratio | GraphQL p50 / p99 ms | baseline p50 / p99 ms | GraphQL CPU µs/req | baseline CPU µs/req | CPU ratio | errors | rows |"
        );
        println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
        for backend in &args.backends {
            for op in Op::ALL {
                let (Some(g), Some(b)) = (
                    self.find(backend, Target::Graphql, op),
                    self.find(backend, Target::Baseline, op),
                ) else {
                    continue;
                };
                let rows = match (g.rows_check, b.rows_check) {
                    (Some(true), Some(true)) => "ok",
                    (None, None) => "",
                    _ => "MISMATCH",
                };
                println!(
                    "| {backend} | {} | {:.0} | {:.0} | {:.2} | {:.2} / {:.2} | {:.2} / {:.2} | {:.0} | {:.0} | {:.2} | {} | {rows} |",
                    op.name(),
                    g.per_second,
                    b.per_second,
                    g.per_second / b.per_second.max(1e-9),
                    g.p50_ms,
                    g.p99_ms,
                    b.p50_ms,
                    b.p99_ms,
                    g.cpu_us_per_request,
                    b.cpu_us_per_request,
                    g.cpu_us_per_request / b.cpu_us_per_request.max(1e-9),
                    g.errors + b.errors,
                );
                for error in [&g.first_error, &b.first_error].into_iter().flatten() {
                    println!("|   | first error: {error} |");
                }
            }
        }
        println!();
        for ((backend, target), kib) in &self.rss {
            println!(
                "peak RSS {backend} {target}: {:.1} MiB",
                *kib as f64 / 1024.0
            );
        }
        for (backend, rows, per_second) in &self.imports {
            println!("import {backend}: {rows} rows at {per_second:.0} rows/s");
        }
    }
}
