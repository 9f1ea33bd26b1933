//! One read cannot build a response of hundreds of megabytes: `metadata` (and every other
//! field whose answer may be large) is charged by what it may weigh, so the largest document
//! the complexity limit admits has a bounded answer, while a full page of contacts with their
//! metadata still answers.

mod common;

use common::{CONTACT_FIELDS, TestApp, code};
use contacts_server::{
    contacts::metadata::{MAX_KEY_CHARS, MAX_KEYS, MAX_VALUE_CHARS},
    graphql::{Limits, limits::cost},
};
use serde_json::{Map, Value, json};

/// The most JSON one operation may answer at the default limits (see SECURITY.md).
const BOUND_BYTES: usize = 28_000_000;

/// Metadata at the limits, as large as its JSON can be: keys of four-byte characters, values
/// of U+0001, which JSON escapes to six bytes (`\u0001`).
fn heaviest_metadata() -> Value {
    let value = "\u{1}".repeat(MAX_VALUE_CHARS);
    let entries: Map<String, Value> = (0..MAX_KEYS)
        .map(|i| {
            let lead = char::from_u32(0x1F600 + i as u32).expect("an emoji");
            let key = format!("{lead}{}", "𝔸".repeat(MAX_KEY_CHARS - 1));
            (key, Value::String(value.clone()))
        })
        .collect();
    Value::Object(entries)
}

/// `aliases` aliased pages of 100 contacts, each selecting `selection` on its nodes.
fn pages(aliases: usize, selection: &str) -> String {
    let pages: String = (0..aliases)
        .map(|i| format!("p{i}: contacts(first: 100) {{ nodes {{ {selection} }} }} "))
        .collect();
    format!("{{ {pages} }}")
}

/// A refusal by the complexity limit, before anything runs: no `data` at all.
async fn assert_too_complex(app: &TestApp, query: &str) {
    let (_, body) = app.post(query, json!({})).await;
    let error = &body["errors"][0];
    assert_eq!(code(error), "GRAPHQL_VALIDATION_FAILED", "{body}");
    assert_eq!(error["message"], "Query is too complex.", "{body}");
    assert!(body.get("data").is_none_or(Value::is_null), "{body}");
}

/// The review's document: 15 aliases of a 100-contact page of metadata (228 MB at the
/// metadata limits) is refused; so is the change feed's page of 1,000 contacts' metadata,
/// which the feed's per-ten-changes count once let through at a tenth of the cost.
#[tokio::test]
async fn pages_of_metadata_beyond_the_bound_are_refused_before_they_run() {
    let app = TestApp::start().await;
    app.create(json!({ "phoneNumber": "+56911111111", "metadata": { "a": "b" } }))
        .await;
    assert_too_complex(&app, &pages(15, "metadata")).await;
    assert_too_complex(&app, &pages(2, "metadata")).await;
    let feed = "{ contactChanges(first: 1000) { nodes { contact { metadata } } } }";
    assert_too_complex(&app, feed).await;
    // One page of each still answers.
    let data = app.data(&pages(1, "metadata"), json!({})).await;
    assert_eq!(data["p0"]["nodes"][0]["metadata"], json!({ "a": "b" }));
    let feed = "{ contactChanges(first: 100) { nodes { contact { id phoneNumber metadata } } } }";
    let data = app.data(feed, json!({})).await;
    assert_eq!(
        data["contactChanges"]["nodes"][0]["contact"]["metadata"]["a"],
        "b"
    );
}

/// A name longer than the limit (an alias is repeated in the answer once per row) is
/// refused, whatever the document costs.
#[tokio::test]
async fn long_aliases_are_refused() {
    let app = TestApp::start().await;
    let alias = |n: usize| {
        format!(
            "{{ contacts(first: 1) {{ nodes {{ {}: id }} }} }}",
            "a".repeat(n)
        )
    };
    let error = app.error(&alias(cost::MAX_NAME_BYTES + 1), json!({})).await;
    assert_eq!(code(&error), "GRAPHQL_VALIDATION_FAILED", "{error}");
    app.data(&alias(cost::MAX_NAME_BYTES), json!({})).await;
}

/// The bench's page (100 contacts, every scalar field, metadata at its limits) still answers,
/// and its answer shows the metadata's JSON is as large as the bound's arithmetic says.
#[tokio::test]
async fn a_full_page_at_the_metadata_limits_answers_within_the_bound() {
    let app = TestApp::start().await;
    let metadata = heaviest_metadata();
    for i in 0..100 {
        let phone = format!("+569{:08}", 10_000_000 + i);
        app.create(json!({ "phoneNumber": phone, "metadata": metadata }))
            .await;
    }
    let query = format!("{{ contacts(first: 100) {{ nodes {{ {CONTACT_FIELDS} }} }} }}");
    let response = app
        .client
        .post(app.url("/graphql"))
        .json(&json!({ "query": query }))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let text = response.text().await.expect("body");
    let body: Value = serde_json::from_str(&text).expect("JSON");
    assert!(
        body.get("errors").is_none(),
        "{}",
        &text[..text.len().min(500)]
    );
    let nodes = body["data"]["contacts"]["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), 100);
    // The bound's metadata size is the real one, to the byte (less the last entry's comma).
    let one = serde_json::to_string(&nodes[0]["metadata"])
        .expect("JSON")
        .len();
    assert_eq!(one, cost::METADATA_JSON_BYTES - 1);
    assert!(text.len() > 100 * one, "{}", text.len());
    assert!(text.len() <= cost::worst_case_response_bytes(5_000));
}

/// The worst case, computed from the limits in code: every unit of complexity spent on
/// `metadata` at its limits (keys of four-byte characters, values of six-byte escapes). Raising
/// a metadata limit or the default complexity without raising the charge fails it.
#[test]
fn the_largest_admitted_document_answers_under_the_bound() {
    let max_complexity = Limits::default().max_complexity;
    let metadata_bytes = 2 + MAX_KEYS * (MAX_KEY_CHARS * 4 + MAX_VALUE_CHARS * 6 + 6);
    assert_eq!(metadata_bytes, cost::METADATA_JSON_BYTES);
    // Each `metadata` costs its charge, so the limit admits at most this many of them, each
    // under a response key of at most `MAX_NAME_BYTES`.
    let admitted = max_complexity / cost::METADATA;
    let worst = admitted * (metadata_bytes + cost::MAX_NAME_BYTES + 4);
    assert!(worst <= BOUND_BYTES, "{admitted} metadata: {worst} bytes");
    // No other field buys more per unit than metadata does (checked when `cost` compiles).
    let worst = cost::worst_case_response_bytes(max_complexity);
    assert!(worst <= BOUND_BYTES, "{worst} bytes");
    // And the bench's page fits under the limit: 100 × (nodes + 8 fields + metadata).
    assert!(100 * (1 + 8 + cost::METADATA) <= max_complexity);
}
