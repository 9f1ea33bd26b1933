//! 20 concurrent writers hammer one SQLite file over HTTP for a while (10 s by default;
//! `SOAK_SECONDS` changes it). No "database is locked", no 5xx, and every acknowledged write
//! is in the database afterwards.

mod common;

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use common::TestApp;
use serde_json::{Value, json};

const WRITERS: usize = 20;

fn soak_duration() -> Duration {
    let seconds = std::env::var("SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    Duration::from_secs(seconds)
}

/// What one writer had acknowledged: phone number → metadata value it last wrote.
async fn writer(
    app: &TestApp,
    writer: usize,
    until: Instant,
) -> Result<HashMap<String, String>, String> {
    let mut acknowledged = HashMap::new();
    let mut n = 0u32;
    while Instant::now() < until {
        // Distinct numbers per writer: +1 415 55x xxxx is possible for every x.
        let phone = format!("+1415{:03}{:04}", 500 + writer, n % 2000);
        let value = format!("w{writer}-{n}");
        let (status, body) = app
            .post(
                "mutation($p: String!, $v: String!) {
                    upsertContact(input: { phoneNumber: $p, metadata: { last: $v } }) { contact { id } }
                    recordWhatsappMessage(phoneNumber: $p) { contact { id } }
                }",
                json!({ "p": phone, "v": value }),
            )
            .await;
        if status != 200 || body.get("errors").is_some() {
            return Err(format!("writer {writer} request {n}: {status} {body}"));
        }
        acknowledged.insert(phone, value);
        n += 1;
    }
    Ok(acknowledged)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_writers_lose_nothing_and_never_see_locked() {
    let app = std::sync::Arc::new(TestApp::start().await);
    let until = Instant::now() + soak_duration();
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| {
            let app = app.clone();
            tokio::spawn(async move { writer(&app, w, until).await })
        })
        .collect();
    let mut expected = HashMap::new();
    for task in tasks {
        let acknowledged = task
            .await
            .expect("writer task")
            .unwrap_or_else(|err| panic!("{err}"));
        expected.extend(acknowledged);
    }
    assert!(
        expected.len() >= WRITERS,
        "too few writes: {}",
        expected.len()
    );
    for (phone, value) in &expected {
        let data = app
            .data(
                "query($p: String!) { contactByPhoneNumber(phoneNumber: $p) { metadata whatsappWindowOpen } }",
                json!({ "p": phone }),
            )
            .await;
        let contact = &data["contactByPhoneNumber"];
        assert_eq!(
            contact["metadata"]["last"],
            Value::from(value.as_str()),
            "{phone}"
        );
        assert_eq!(contact["whatsappWindowOpen"], true, "{phone}");
    }
    println!(
        "soak: {} contacts, every acknowledged write present",
        expected.len()
    );
}
