//! Load on `POST /webhooks/whatsapp`: 1,000 signed deliveries of 10 messages each from 16
//! concurrent senders, every tenth delivery posted twice (Meta's retries); every message
//! must be recorded once and none lost. Prints the throughput and latency it measured
//! (`cargo test --test webhook_load -- --nocapture`; see BENCHMARKS.md).
//! `WEBHOOK_LOAD_DELIVERIES` changes the number of deliveries.

mod common;

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use chrono::{DateTime, TimeDelta, Utc};
use common::{T0, TestApp, at};
use contacts_server::http::whatsapp::signature;
use serde_json::{Value, json};

const SECRET: &str = "load-app-secret";
const MESSAGES_PER_DELIVERY: usize = 10;
const SENDERS: usize = 16;
/// WhatsApp users writing; each writes in many deliveries, so senders contend for rows.
const USERS: usize = 2_000;

fn deliveries() -> usize {
    std::env::var("WEBHOOK_LOAD_DELIVERIES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000)
}

fn base() -> DateTime<Utc> {
    at(T0) - TimeDelta::days(1)
}

fn phone(user: usize) -> String {
    format!("1650555{user:04}")
}

/// Delivery `i`: messages `i*10 .. i*10+10`, message `k` from user `k % USERS` at `base + k s`.
fn delivery(i: usize) -> String {
    let messages: Vec<Value> = (0..MESSAGES_PER_DELIVERY)
        .map(|j| {
            let k = i * MESSAGES_PER_DELIVERY + j;
            let time = (base() + TimeDelta::seconds(k as i64)).timestamp();
            json!({ "from": phone(k % USERS), "id": format!("wamid.load.{k}"),
                    "timestamp": time.to_string(), "type": "text", "text": { "body": "hi" } })
        })
        .collect();
    json!({ "object": "whatsapp_business_account", "entry": [{ "id": "102290129340398",
        "changes": [{ "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": { "display_phone_number": "15550783881", "phone_number_id": "106540352242922" },
            "messages": messages } }] }] })
    .to_string()
}

/// Posts every delivery (and every tenth twice) from `SENDERS` tasks; the latencies.
async fn run(app: &TestApp, count: usize) -> Vec<Duration> {
    let bodies: Arc<Vec<String>> = Arc::new(
        (0..count)
            .chain((0..count).step_by(10))
            .map(delivery)
            .collect(),
    );
    let next = Arc::new(AtomicUsize::new(0));
    let tasks = (0..SENDERS).map(|_| {
        let (bodies, next) = (bodies.clone(), next.clone());
        let (client, url) = (app.client.clone(), app.url("/webhooks/whatsapp"));
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            while let Some(body) = bodies.get(next.fetch_add(1, Ordering::Relaxed)) {
                let header = signature::sign(SECRET.as_bytes(), body.as_bytes());
                let started = Instant::now();
                let response = client
                    .post(&url)
                    .header("x-hub-signature-256", header)
                    .body(body.clone())
                    .send()
                    .await
                    .expect("request");
                assert_eq!(
                    response.status(),
                    200,
                    "{}",
                    response.text().await.unwrap_or_default()
                );
                latencies.push(started.elapsed());
            }
            latencies
        })
    });
    let mut all = Vec::new();
    for task in futures_util::future::join_all(tasks).await {
        all.extend(task.expect("sender"));
    }
    all
}

/// Every contact's last message time, by phone number, read page by page.
async fn last_messages(app: &TestApp) -> Vec<(String, String)> {
    let query = "query($after: String) { contacts(first: 100, after: $after, \
        orderBy: { field: PHONE_NUMBER, direction: ASC }) { nodes { phoneNumber \
        lastWhatsappMessageAt } pageInfo { hasNextPage endCursor } } }";
    let (mut rows, mut after) = (Vec::new(), Value::Null);
    loop {
        let data = app.data(query, json!({ "after": after })).await;
        let page = &data["contacts"];
        for node in page["nodes"].as_array().expect("nodes") {
            let field = |name: &str| node[name].as_str().unwrap_or("").to_owned();
            rows.push((field("phoneNumber"), field("lastWhatsappMessageAt")));
        }
        if page["pageInfo"]["hasNextPage"] != true {
            return rows;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
}

fn metric(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deliveries_from_concurrent_senders_record_every_message_once() {
    let app = TestApp::start_configured(|state| state.with_whatsapp(SECRET, None)).await;
    let count = deliveries();
    let started = Instant::now();
    let mut latencies = run(&app, count).await;
    let elapsed = started.elapsed();

    let messages = count * MESSAGES_PER_DELIVERY;
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("metrics");
    let text = text.text().await.expect("text");
    let recorded =
        r#"whatsapp_webhook_events_total{field="messages",kind="text",outcome="recorded"}"#;
    assert_eq!(
        metric(&text, recorded),
        messages as u64,
        "every message recorded once"
    );
    let duplicates = metric(&text, "whatsapp_webhook_duplicates_total");
    assert_eq!(
        duplicates,
        (count.div_ceil(10) * MESSAGES_PER_DELIVERY) as u64
    );
    // None lost: each user's contact holds the time of the last message it sent.
    let rows = last_messages(&app).await;
    let users = USERS.min(messages);
    assert_eq!(rows.len(), users);
    for user in 0..users {
        let last = (user..messages)
            .step_by(USERS)
            .next_back()
            .expect("a message");
        let when = base() + TimeDelta::seconds(last as i64);
        let expected = (
            format!("+{}", phone(user)),
            when.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        );
        assert!(rows.contains(&expected), "{expected:?} missing");
    }

    latencies.sort_unstable();
    let percentile = |p: usize| latencies[(latencies.len() * p / 100).min(latencies.len() - 1)];
    let posts = latencies.len() as f64;
    eprintln!(
        "webhook load ({}): {} posts ({count} deliveries + {} redeliveries, {messages} messages) \
         from {SENDERS} senders in {:.2} s: {:.0} deliveries/s, {:.0} messages/s (redeliveries included), \
         p50 {:.1} ms, p99 {:.1} ms, {duplicates} duplicate messages skipped",
        if common::on_postgres() {
            "postgres"
        } else {
            "sqlite"
        },
        latencies.len(),
        count.div_ceil(10),
        elapsed.as_secs_f64(),
        posts / elapsed.as_secs_f64(),
        posts * MESSAGES_PER_DELIVERY as f64 / elapsed.as_secs_f64(),
        percentile(50).as_secs_f64() * 1e3,
        percentile(99).as_secs_f64() * 1e3,
    );
}
