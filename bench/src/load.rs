//! The operations and the load loop: `concurrency` clients, each sending as fast as answers
//! come, for a warm-up and then a measured period.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use hdrhistogram::Histogram;
use serde_json::{Value, json};

pub use crate::op::{Op, Target};
use crate::{
    scale::{self, Walk},
    seed::{self, Plan},
    server::Server,
};

pub const CONTACT: &str = "id phoneNumber countryCode lastWhatsappMessageAt whatsappWindowOpen \
    whatsappWindowExpiresAt metadata createdAt updatedAt";

pub fn graphql(query: &str, variables: Value) -> (&'static str, Value) {
    (
        "/graphql",
        json!({ "query": query, "variables": variables }),
    )
}

/// What the loads of one server need: the cursors of the deep pages to read, and where its
/// created phone numbers start (so the servers never create the same number).
#[derive(Clone)]
pub struct Context {
    plan: Plan,
    page_cursor: Option<String>,
    /// The deep page's cursor in `LAST_WHATSAPP_MESSAGE_AT DESC` order (GraphQL only).
    last_cursor: Option<String>,
    next_created: Arc<AtomicU64>,
}

/// Contacts per page of the keyset walk.
const PAGE_SIZE: usize = 50;
/// The page "page-2000" reads (or the last one, with fewer rows).
const DEEP_PAGE: usize = 2000;
/// Numbers each server may create per backend: six blocks within the 10^8 of `+5255`.
const CREATED_BLOCK: u64 = 16_000_000;

impl Context {
    /// Walks to the deep pages once (in creation order, and by last message on GraphQL),
    /// through the server under test, when one of `ops` reads them: a walk is thousands of
    /// requests, which would otherwise run before every load (and into a profile of it).
    pub async fn prepare(
        server: &Server,
        plan: &Plan,
        backend: &str,
        target: Target,
        ops: &[Op],
    ) -> anyhow::Result<Self> {
        // The raw baseline reads no pages beyond the first.
        let pages = match target {
            Target::Raw => 1,
            _ => DEEP_PAGE.min(plan.rows.div_ceil(PAGE_SIZE)).max(1),
        };
        let cursor = if ops.contains(&Op::Page2000) {
            walk(server, pages, |after| page_request(target, after)).await?
        } else {
            None
        };
        let last_cursor = match target {
            Target::Graphql if ops.contains(&Op::PageByLast2000) => {
                walk(server, pages, |after| scale::page(Walk::LastMessage, after)).await?
            }
            _ => None,
        };
        // Created numbers: Mexican ones, a block per backend and server, none seeded.
        let server = match target {
            Target::Graphql => 0,
            Target::Baseline => 1,
            Target::Raw => 2,
        };
        let block = if backend == "sqlite" {
            server
        } else {
            3 + server
        };
        Ok(Self {
            plan: *plan,
            page_cursor: cursor,
            last_cursor,
            next_created: Arc::new(AtomicU64::new(block * CREATED_BLOCK)),
        })
    }

    fn request(&self, target: Target, op: Op, i: u64) -> (&'static str, Value) {
        let seeded = seed::phone((i as usize).wrapping_mul(7919) % self.plan.rows.max(1));
        match (op, target) {
            (Op::Lookup, Target::Graphql) => graphql(
                &format!(
                    "query($p: String!) {{ contactByPhoneNumber(phoneNumber: $p) {{ {CONTACT} }} }}"
                ),
                json!({ "p": seeded }),
            ),
            (Op::Lookup, _) => ("/lookup", json!({ "phone": seeded })),
            (Op::OpenWindows, Target::Graphql) => graphql(
                &format!(
                    "{{ contacts(first: 50, filter: {{ whatsappWindowOpen: true }}, orderBy: \
                     {{ field: LAST_WHATSAPP_MESSAGE_AT, direction: DESC }}) {{ nodes {{ {CONTACT} }} \
                     pageInfo {{ hasNextPage endCursor }} }} }}"
                ),
                json!({}),
            ),
            (Op::OpenWindows, _) => ("/open-windows", json!({})),
            // The same page on one business number, with that number's window per contact.
            (Op::OpenWindowsOnNumber, Target::Graphql) => graphql(
                &format!(
                    "query($n: String!) {{ contacts(first: 50, filter: {{ businessPhoneNumberId: $n, \
                     whatsappWindowOpen: true }}, orderBy: {{ field: LAST_WHATSAPP_MESSAGE_AT, \
                     direction: DESC }}) {{ nodes {{ {CONTACT} \
                     openOnNumber: whatsappWindowOpen(businessPhoneNumberId: $n) }} \
                     pageInfo {{ hasNextPage endCursor }} }} }}"
                ),
                json!({ "n": seed::BUSINESS_NUMBERS[0] }),
            ),
            (Op::OpenWindowsOnNumber, _) => (
                "/open-windows-number",
                json!({ "number": seed::BUSINESS_NUMBERS[0] }),
            ),
            (Op::Page1, _) => page_request(target, None),
            (Op::Page2000, _) => page_request(target, self.page_cursor.clone()),
            (Op::Stats, Target::Graphql) => {
                graphql("{ contactStats { total whatsappWindowOpen } }", json!({}))
            }
            (Op::Stats, _) => ("/stats", json!({})),
            (Op::Create, _) => {
                let n = self.next_created.fetch_add(1, Ordering::Relaxed);
                let phone = format!("+5255{:08}", n % 100_000_000);
                match target {
                    Target::Graphql => graphql(
                        &format!(
                            "mutation($p: String!) {{ createContact(input: {{ phoneNumber: $p }}) \
                             {{ contact {{ {CONTACT} }} }} }}"
                        ),
                        json!({ "p": phone }),
                    ),
                    Target::Baseline | Target::Raw => ("/create", json!({ "phone": phone })),
                }
            }
            // 90% lookups, 10% inbound messages on seeded contacts.
            (Op::Mix, _) if !i.is_multiple_of(10) => self.request(target, Op::Lookup, i),
            (Op::Mix, Target::Graphql) => graphql(
                &format!(
                    "mutation($p: String!) {{ recordWhatsappMessage(phoneNumber: $p) \
                     {{ contact {{ {CONTACT} }} }} }}"
                ),
                json!({ "p": seeded }),
            ),
            (Op::Mix, _) => ("/record", json!({ "phone": seeded })),
            (Op::PageByLast1, _) => scale::page(Walk::LastMessage, None),
            (Op::PageByLast2000, _) => scale::page(Walk::LastMessage, self.last_cursor.clone()),
            (Op::ClosedWindows, _) => scale::closed_windows(),
            (Op::MetadataMatch, _) => scale::metadata(true),
            (Op::MetadataNone, _) => scale::metadata(false),
            (Op::Prefix, _) => scale::prefix(),
            (Op::Count, _) => scale::total_count(false),
            (Op::CountFiltered, _) => scale::total_count(true),
        }
    }
}

fn page_request(target: Target, after: Option<String>) -> (&'static str, Value) {
    match target {
        Target::Graphql => scale::page(Walk::Created, after),
        Target::Baseline | Target::Raw => ("/page", json!({ "after": after })),
    }
}

/// Walks `pages - 1` pages through the server; the cursor the `pages`th page starts after.
async fn walk(
    server: &Server,
    pages: usize,
    request: impl Fn(Option<String>) -> (&'static str, Value),
) -> anyhow::Result<Option<String>> {
    let mut cursor: Option<String> = None;
    for _ in 1..pages {
        let (path, body) = request(cursor.clone());
        let answer = send(server, path, &body).await?;
        cursor = answer
            .pointer("/data/contacts/pageInfo/endCursor")
            .or_else(|| answer.pointer("/contacts/pageInfo/endCursor"))
            .and_then(Value::as_str)
            .map(str::to_owned);
    }
    Ok(cursor)
}

/// Sends one request; the answer's JSON, or why it failed.
async fn send(server: &Server, path: &str, body: &Value) -> anyhow::Result<Value> {
    let response = server
        .client
        .post(format!("{}{path}", server.base))
        .json(body)
        .send()
        .await?;
    let status = response.status();
    let answer: Value = response.json().await.context("answer is not JSON")?;
    if !status.is_success() || answer.get("errors").is_some() {
        bail!("{status}: {answer}");
    }
    Ok(answer)
}

/// One measured load.
#[derive(Debug, Clone)]
pub struct RunResult {
    pub requests: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub cpu_us_per_request: f64,
    /// After a write load: whether the row count moved by exactly the acknowledged creates.
    pub rows_check: Option<bool>,
}

async fn total(server: &Server) -> anyhow::Result<i64> {
    let (path, body) = match server.target {
        Target::Graphql => graphql("{ contactStats { total } }", json!({})),
        Target::Baseline | Target::Raw => ("/stats", json!({})),
    };
    let answer = send(server, path, &body).await?;
    answer
        .pointer("/data/contactStats/total")
        .or_else(|| answer.pointer("/contactStats/total"))
        .and_then(Value::as_i64)
        .context("no total")
}

pub async fn run(
    server: &Server,
    context: &Context,
    op: Op,
    concurrency: usize,
    warmup: Duration,
    measure: Duration,
) -> anyhow::Result<RunResult> {
    let before = total(server).await?;
    let started = Instant::now();
    let measuring_from = started + warmup;
    let until = measuring_from + measure;
    let counter = Arc::new(AtomicU64::new(0));
    let created = Arc::new(AtomicU64::new(0));
    let mut clients = Vec::with_capacity(concurrency);
    // The context is shared read-only; each client owns its histogram.
    let context = Arc::new(context.clone());
    for _ in 0..concurrency {
        let server_client = server.client.clone();
        let base = server.base.clone();
        let context = context.clone();
        let counter = counter.clone();
        let created = created.clone();
        let target = server.target;
        clients.push(tokio::spawn(async move {
            let mut latencies = Histogram::<u64>::new(3).expect("histogram");
            let mut errors = 0u64;
            let mut first_error = None;
            loop {
                let now = Instant::now();
                if now >= until {
                    break;
                }
                let i = counter.fetch_add(1, Ordering::Relaxed);
                let (path, body) = context.request(target, op, i);
                let sent = Instant::now();
                let answer = async {
                    let response = server_client
                        .post(format!("{base}{path}"))
                        .json(&body)
                        .send()
                        .await?;
                    let status = response.status();
                    let answer: Value = response.json().await?;
                    anyhow::Ok((status, answer))
                }
                .await;
                let done = Instant::now();
                let ok = match &answer {
                    Ok((status, answer)) => status.is_success() && answer.get("errors").is_none(),
                    Err(_) => false,
                };
                if ok && op == Op::Create {
                    created.fetch_add(1, Ordering::Relaxed);
                }
                if sent < measuring_from || done > until {
                    continue;
                }
                if ok {
                    let micros = done.duration_since(sent).as_micros() as u64;
                    let _ = latencies.record(micros.max(1));
                } else {
                    errors += 1;
                    if first_error.is_none() {
                        first_error = Some(format!("{answer:?}").chars().take(300).collect());
                    }
                }
            }
            (latencies, errors, first_error)
        }));
    }
    tokio::time::sleep_until(measuring_from.into()).await;
    let cpu_start = server.cpu_time()?;
    tokio::time::sleep_until(until.into()).await;
    let cpu_end = server.cpu_time()?;
    let mut latencies = Histogram::<u64>::new(3)?;
    let mut errors = 0;
    let mut first_error = None;
    for client in clients {
        let (histogram, client_errors, client_first) = client.await?;
        latencies.add(histogram)?;
        errors += client_errors;
        first_error = first_error.or(client_first);
    }
    let requests = latencies.len();
    let rows_check = match op {
        Op::Create => Some(total(server).await? - before == created.load(Ordering::Relaxed) as i64),
        Op::Mix => Some(total(server).await? == before),
        _ => None,
    };
    let cpu = cpu_end.saturating_sub(cpu_start);
    Ok(RunResult {
        requests,
        errors,
        first_error,
        per_second: requests as f64 / measure.as_secs_f64(),
        p50_ms: latencies.value_at_quantile(0.5) as f64 / 1000.0,
        p99_ms: latencies.value_at_quantile(0.99) as f64 / 1000.0,
        cpu_us_per_request: cpu.as_secs_f64() * 1e6 / requests.max(1) as f64,
        rows_check,
    })
}
