//! Concurrent writers through HTTP: uniqueness, atomic merges, and monotonic message times.

mod common;

use std::sync::Arc;

use common::{TestApp, code};
use serde_json::{Value, json};

async fn concurrently<F, Fut>(n: usize, make: F) -> Vec<(reqwest::StatusCode, Value)>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = (reqwest::StatusCode, Value)> + Send + 'static,
{
    let tasks: Vec<_> = (0..n).map(|i| tokio::spawn(make(i))).collect();
    let mut results = Vec::with_capacity(n);
    for task in tasks {
        results.push(task.await.expect("task"));
    }
    results
}

/// How many of `results` created a contact; every other one must be a CONFLICT on `field`.
fn created_or_conflicted(results: &[(reqwest::StatusCode, Value)], field: &str) -> usize {
    let mut created = 0;
    for (status, body) in results {
        assert_eq!(*status, 200, "{body}");
        match body.get("errors") {
            None => created += 1,
            Some(errors) => {
                assert_eq!(code(&errors[0]), "CONFLICT", "{body}");
                assert_eq!(errors[0]["extensions"]["field"], field, "{body}");
            }
        }
    }
    created
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_concurrent_creates_of_one_number_one_wins_the_rest_conflict() {
    let app = Arc::new(TestApp::start().await);
    let results = concurrently(10, |i| {
        let app = app.clone();
        // Different spellings of the same number.
        let phone = if i % 2 == 0 {
            "+56912345678"
        } else {
            "+56 9 1234 5678"
        };
        async move {
            app.post(common::CREATE, json!({ "input": { "phoneNumber": phone } }))
                .await
        }
    })
    .await;
    assert_eq!(created_or_conflicted(&results, "input.phoneNumber"), 1);
    let stats = app.data("{ contactStats { total } }", json!({})).await;
    assert_eq!(stats["contactStats"]["total"], 1);
    // The losers logged nothing: one change, the winner's creation.
    let feed = app
        .data(
            "{ contactChanges { nodes { kind contact { phoneNumber } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        feed["contactChanges"]["nodes"],
        json!([{ "kind": "CREATED", "contact": { "phoneNumber": "+56912345678" } }])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_of_one_whatsapp_user_id_name_that_field_in_the_conflict() {
    let app = Arc::new(TestApp::start().await);
    let results = concurrently(8, |i| {
        let app = app.clone();
        let input = json!({ "phoneNumber": format!("+5691234{i:04}"), "whatsappUserId": "US.13491208655302741918" });
        async move { app.post(common::CREATE, json!({ "input": input })).await }
    })
    .await;
    assert_eq!(created_or_conflicted(&results, "input.whatsappUserId"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_concurrent_metadata_patches_lose_no_key() {
    let app = Arc::new(TestApp::start().await);
    let contact = app
        .create(json!({ "phoneNumber": "+56912345678", "metadata": { "kept": "yes" } }))
        .await;
    let id = contact["id"].clone();
    let results = concurrently(30, |i| {
        let (app, id) = (app.clone(), id.clone());
        async move {
            let set = json!({ format!("key{i}"): format!("value{i}") });
            app.post(
                "mutation($id: ID!, $set: Metadata) { patchContactMetadata(id: $id, set: $set) { contact { id } } }",
                json!({ "id": id, "set": set }),
            )
            .await
        }
    })
    .await;
    for (status, body) in &results {
        assert_eq!(*status, 200);
        assert!(body.get("errors").is_none(), "{body}");
    }
    let stored = app
        .data(
            "query($id: ID!) { contact(id: $id) { metadata } }",
            json!({ "id": id }),
        )
        .await;
    let metadata = stored["contact"]["metadata"].as_object().unwrap().clone();
    assert_eq!(metadata.len(), 31);
    for i in 0..30 {
        assert_eq!(metadata[&format!("key{i}")], format!("value{i}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_out_of_order_deliveries_keep_the_latest_time() {
    let app = Arc::new(TestApp::start().await);
    // Minutes 0..40 before now, delivered in a scrambled order, all at once.
    let minutes: Vec<i64> = (0..40).map(|i| (i * 17) % 40).collect();
    let results = concurrently(minutes.len(), |i| {
        let app = app.clone();
        let at = common::at(common::T0) - chrono::TimeDelta::minutes(minutes[i]);
        async move {
            app.post(
                "mutation($at: DateTime) { recordWhatsappMessage(phoneNumber: \"+56912345678\", receivedAt: $at) { contact { id } } }",
                json!({ "at": at.to_rfc3339() }),
            )
            .await
        }
    })
    .await;
    let ids: Vec<&Value> = results
        .iter()
        .map(|(status, body)| {
            assert_eq!(*status, 200);
            assert!(body.get("errors").is_none(), "{body}");
            &body["data"]["recordWhatsappMessage"]["contact"]["id"]
        })
        .collect();
    assert!(
        ids.windows(2).all(|w| w[0] == w[1]),
        "every delivery must land on one contact"
    );
    let data = app
        .data(
            "{ contacts { totalCount nodes { lastWhatsappMessageAt whatsappWindowOpen } } }",
            json!({}),
        )
        .await;
    assert_eq!(data["contacts"]["totalCount"], 1);
    assert_eq!(
        data["contacts"]["nodes"][0]["lastWhatsappMessageAt"],
        common::T0
    );
    assert_eq!(data["contacts"]["nodes"][0]["whatsappWindowOpen"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mixed_concurrent_writes_never_fail() {
    let app = Arc::new(TestApp::start().await);
    let results = concurrently(60, |i| {
        let app = app.clone();
        async move {
            let phone = format!("+1415555{:04}", i % 20);
            match i % 3 {
                0 => {
                    app.post(
                        "mutation($p: String!) { upsertContact(input: { phoneNumber: $p, metadata: { n: \"x\" } }) { created } }",
                        json!({ "p": phone }),
                    )
                    .await
                }
                1 => {
                    app.post(
                        "mutation($p: String!) { recordWhatsappMessage(phoneNumber: $p) { contact { id } } }",
                        json!({ "p": phone }),
                    )
                    .await
                }
                _ => app.post("{ contacts(first: 50) { totalCount nodes { id } } }", json!({})).await,
            }
        }
    })
    .await;
    for (status, body) in &results {
        assert_eq!(*status, 200, "{body}");
        assert!(body.get("errors").is_none(), "{body}");
    }
    let stats = app.data("{ contactStats { total } }", json!({})).await;
    assert_eq!(stats["contactStats"]["total"], 20);
}
