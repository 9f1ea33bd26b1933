//! The printed tables: per backend and operation, each server's figures and the GraphQL
//! server's ratios to the domain-layer baseline and to the raw one, the GraphQL server's own
//! figures at each client count, then peak memory.

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
    clients: usize,
    result: RunResult,
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or_default()
}

impl Measured {
    pub fn median(
        backend: &str,
        target: Target,
        op: Op,
        clients: usize,
        runs: Vec<RunResult>,
    ) -> Self {
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
            clients,
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

    /// At the largest client count measured (the load the comparisons were made at).
    fn find(&self, backend: &str, target: Target, op: Op) -> Option<&RunResult> {
        self.measured
            .iter()
            .filter(|m| m.backend == backend && m.target == target && m.op == op)
            .max_by_key(|m| m.clients)
            .map(|m| &m.result)
    }

    pub fn print(&self, args: &Args) {
        println!();
        println!(
            "contacts-server benchmark: {} rows, {:?} clients, {} s per load after {} s warm-up, \
             median of {} run(s)",
            args.rows, args.clients, args.seconds, args.warmup, args.runs
        );
        println!();
        self.print_against_baseline(args);
        println!();
        self.print_against_raw(args);
        println!();
        self.print_graphql(args);
        println!();
        self.print_memory(args);
        for (backend, rows, per_second) in &self.imports {
            println!("import {backend}: {rows} rows at {per_second:.0} rows/s");
        }
    }

    /// GraphQL against the plain handlers on the same domain calls, every operation.
    fn print_against_baseline(&self, args: &Args) {
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
    }

    /// GraphQL against the ceiling (one raw sqlx statement per request), on the operations
    /// the raw baseline serves; the domain-layer baseline's own req/s ratio beside it shows
    /// how much of the gap is below GraphQL.
    fn print_against_raw(&self, args: &Args) {
        println!(
            "GraphQL server against the raw baseline (one prepared sqlx statement per request):"
        );
        println!();
        println!(
            "| backend | operation | GraphQL req/s | raw req/s | req/s ratio | baseline req/s ratio | GraphQL CPU µs/req | raw CPU µs/req | CPU ratio | GraphQL p99 ms | raw p99 ms | p99 ratio | errors | rows |"
        );
        println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
        for backend in &args.backends {
            for op in Op::ALL.into_iter().filter(|op| Target::Raw.serves(*op)) {
                let (Some(g), Some(r)) = (
                    self.find(backend, Target::Graphql, op),
                    self.find(backend, Target::Raw, op),
                ) else {
                    continue;
                };
                let baseline = self
                    .find(backend, Target::Baseline, op)
                    .map(|b| format!("{:.2}", ratio(b.per_second, r.per_second)))
                    .unwrap_or_default();
                let rows = match (g.rows_check, r.rows_check) {
                    (Some(true), Some(true)) => "ok",
                    (None, None) => "",
                    _ => "MISMATCH",
                };
                println!(
                    "| {backend} | {} | {:.0} | {:.0} | {:.2} | {baseline} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {rows} |",
                    op.name(),
                    g.per_second,
                    r.per_second,
                    ratio(g.per_second, r.per_second),
                    g.cpu_us_per_request,
                    r.cpu_us_per_request,
                    ratio(g.cpu_us_per_request, r.cpu_us_per_request),
                    g.p99_ms,
                    r.p99_ms,
                    ratio(g.p99_ms, r.p99_ms),
                    g.errors + r.errors,
                );
                if let Some(error) = &r.first_error {
                    println!("|   | first error (raw): {error} |");
                }
            }
        }
    }

    /// The GraphQL server alone, every operation at every client count (issue 13's size
    /// table compares these between table sizes).
    fn print_graphql(&self, args: &Args) {
        println!("GraphQL server by client count ({} rows):", args.rows);
        println!();
        println!(
            "| backend | operation | clients | req/s | p50 ms | p99 ms | CPU µs/req | errors |"
        );
        println!("|---|---|---:|---:|---:|---:|---:|---:|");
        for m in self.measured.iter().filter(|m| m.target == Target::Graphql) {
            let r = &m.result;
            println!(
                "| {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.0} | {} |",
                m.backend,
                m.op.name(),
                m.clients,
                r.per_second,
                r.p50_ms,
                r.p99_ms,
                r.cpu_us_per_request,
                r.errors
            );
            if let Some(error) = &r.first_error {
                println!("|   | first error: {error} |");
            }
        }
    }

    /// Peak RSS of each server over the whole run (the raw baseline served fewer operations),
    /// and GraphQL's ratio to the raw baseline's.
    fn print_memory(&self, args: &Args) {
        println!(
            "| backend | GraphQL peak RSS MiB | baseline peak RSS MiB | raw peak RSS MiB | GraphQL / raw |"
        );
        println!("|---|---:|---:|---:|---:|");
        for backend in &args.backends {
            let mib = |target: Target| {
                self.rss
                    .get(&(backend.clone(), target.name()))
                    .map(|kib| *kib as f64 / 1024.0)
            };
            let show = |value: Option<f64>| value.map(|v| format!("{v:.1}")).unwrap_or_default();
            let (g, b, r) = (
                mib(Target::Graphql),
                mib(Target::Baseline),
                mib(Target::Raw),
            );
            let versus = g.zip(r).map(|(g, r)| format!("{:.2}", ratio(g, r)));
            println!(
                "| {backend} | {} | {} | {} | {} |",
                show(g),
                show(b),
                show(r),
                versus.unwrap_or_default()
            );
        }
    }
}

/// `a / b`, with a zero `b` read as tiny rather than dividing by zero.
fn ratio(a: f64, b: f64) -> f64 {
    a / b.max(1e-9)
}
