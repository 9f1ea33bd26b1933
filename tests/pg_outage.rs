//! PostgreSQL stops and starts again under load: requests fail fast with a clean error,
//! `/readyz` goes 503 then 200, and queries and subscriptions work again without a restart.
//!
//! Needs `TEST_PG_STOP` and `TEST_PG_START` (set by `scripts/with-postgres`) when the suite
//! runs on PostgreSQL; SQLite is embedded and has no outage to survive.

mod common;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use common::{TestApp, next_event, subscribe};
use serde_json::{Value, json};

/// Words that would mean driver or SQL internals leaked into a response.
const LEAKS: [&str; 8] = [
    "sqlx",
    "Connection refused",
    "pool",
    "SELECT",
    "INSERT",
    "postgres",
    "io error",
    "os error",
];

fn run(command: &str) {
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .status()
        .expect("run pg_ctl");
    assert!(status.success(), "{command} failed");
}

/// Polls `/readyz` until it answers `want` (an external process decides when: PostgreSQL).
async fn wait_for_readyz(app: &TestApp, want: u16) {
    for _ in 0..300 {
        let response = app
            .client
            .get(app.url("/readyz"))
            .send()
            .await
            .expect("readyz");
        if response.status().as_u16() == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("/readyz never answered {want}");
}

/// Requests in a loop until `stop`; returns every (status, body) that was not a success.
async fn load(
    app: Arc<TestApp>,
    worker: usize,
    stop: Arc<AtomicBool>,
) -> (usize, Vec<(u16, Value)>) {
    let mut failures = Vec::new();
    let mut sent = 0;
    while !stop.load(Ordering::Relaxed) {
        let phone = format!("+1415555{:04}", worker * 1000 + sent % 1000);
        let (status, body) = if sent % 2 == 0 {
            app.post("mutation($p: String!) { recordWhatsappMessage(phoneNumber: $p) { contact { id } } }", json!({ "p": phone }))
                .await
        } else {
            app.post(
                "{ contacts(first: 5) { totalCount nodes { id } } }",
                json!({}),
            )
            .await
        };
        if status != 200 || body.get("errors").is_some() {
            failures.push((status.as_u16(), body));
        }
        sent += 1;
    }
    (sent, failures)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn survives_a_postgres_restart_under_load() {
    if !common::on_postgres() {
        eprintln!("SQLite is embedded: no database outage to test");
        return;
    }
    let stop_cmd = std::env::var("TEST_PG_STOP")
        .expect("TEST_PG_STOP must be set on PostgreSQL (scripts/with-postgres)");
    let start_cmd =
        std::env::var("TEST_PG_START").expect("TEST_PG_START must be set on PostgreSQL");

    let app = Arc::new(TestApp::start_with_acquire_timeout(Duration::from_secs(2)).await);
    let contact = app.create(json!({ "phoneNumber": "+56912345678" })).await;
    let mut window = subscribe(
        &app,
        "subscription($id: ID!) { whatsappWindow(contactId: $id) { open } }",
        json!({ "id": contact["id"] }),
    )
    .await;
    assert_eq!(
        next_event(&mut window).await["data"]["whatsappWindow"]["open"],
        false
    );

    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..4)
        .map(|w| tokio::spawn(load(app.clone(), w, stop.clone())))
        .collect();

    run(&stop_cmd);
    wait_for_readyz(&app, 503).await;
    let (status, body) = app.post("{ contactStats { total } }", json!({})).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "SERVICE_UNAVAILABLE",
        "{body}"
    );

    run(&start_cmd);
    wait_for_readyz(&app, 200).await;
    stop.store(true, Ordering::Relaxed);
    let mut failures = Vec::new();
    let mut sent = 0;
    for worker in workers {
        let (n, mut failed) = worker.await.expect("worker");
        sent += n;
        failures.append(&mut failed);
    }
    assert!(
        sent > failures.len(),
        "no request succeeded during the test"
    );
    println!(
        "outage: {sent} requests, {} answered 503 SERVICE_UNAVAILABLE",
        failures.len()
    );
    for (status, body) in &failures {
        let text = body.to_string();
        assert!(
            *status == 503 || *status == 200,
            "unexpected status {status}: {text}"
        );
        let codes: Vec<&str> = body["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["extensions"]["code"].as_str())
            .collect();
        assert!(
            codes.iter().all(|c| *c == "SERVICE_UNAVAILABLE"),
            "{status}: {text}"
        );
        for leak in LEAKS {
            assert!(!text.contains(leak), "driver text {leak:?} leaked: {text}");
        }
    }

    // Back without a restart: queries, mutations and the open subscription all work.
    let stats = app.data("{ contactStats { total } }", json!({})).await;
    assert!(stats["contactStats"]["total"].as_i64().unwrap() >= 1);
    app.data(
        "mutation { recordWhatsappMessage(phoneNumber: \"+56912345678\") { contact { id } } }",
        json!({}),
    )
    .await;
    loop {
        let state = next_event(&mut window).await;
        if state["data"]["whatsappWindow"]["open"] == true {
            break;
        }
    }
}
