//! The server's own log, read from the real binary: JSON lines, a request id on every request
//! (the client's when sane, generated otherwise, always returned), one line per operation
//! with its name, type and outcome, and no phone number or metadata value anywhere.

mod common;

use std::process::Command;

use common::process::{command, wait_until_listening};
use serde_json::{Value, json};

const PHONE_DIGITS: &str = "12345678";
const METADATA_VALUE: &str = "private-note-value";

fn request_id(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("x-request-id")
        .expect("x-request-id on every response")
        .to_str()
        .expect("ASCII")
        .to_owned()
}

#[tokio::test]
async fn requests_are_logged_as_json_with_ids_and_without_personal_data() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = common::fresh_database_url(&dir).await;
    let mut child = command(Some(&url)).spawn().expect("start server");
    let started = wait_until_listening(&mut child);
    let base = started.base;
    let client = reqwest::Client::new();

    // The client's id is kept and returned.
    let created = client
        .post(format!("{base}/graphql"))
        .header("x-request-id", "req-abc-123")
        .json(&json!({
            "query": "mutation CreateIt($input: CreateContactInput!) { createContact(input: $input) { contact { id } } }",
            "variables": { "input": { "phoneNumber": "+56 9 1234 5678", "metadata": { "note": METADATA_VALUE } } },
        }))
        .send()
        .await
        .expect("create");
    assert_eq!(request_id(&created), "req-abc-123");
    let body: Value = created.json().await.expect("JSON");
    assert!(body.get("errors").is_none(), "{body}");

    // Without one (or with an unusable one) the server makes one up.
    let query = format!("{{ contactByPhoneNumber(phoneNumber: \"+569{PHONE_DIGITS}\") {{ id }} }}");
    let looked_up = client
        .get(format!("{base}/graphql"))
        .query(&[("query", query.as_str())])
        .send()
        .await
        .expect("lookup");
    let generated = request_id(&looked_up);
    assert!(uuid::Uuid::parse_str(&generated).is_ok(), "{generated}");
    let odd = client
        .get(format!("{base}/healthz"))
        .header("x-request-id", "has spaces and \"quotes\"")
        .send()
        .await
        .expect("healthz");
    assert!(uuid::Uuid::parse_str(&request_id(&odd)).is_ok());
    let missing = client
        .get(format!("{base}/contacts/+569{PHONE_DIGITS}"))
        .send()
        .await
        .expect("404");
    assert_eq!(missing.status(), 404);

    // SIGTERM: the server finishes, flushes its log and closes its output.
    let stopped = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(stopped.success());
    child.wait().expect("reap");
    let lines: Vec<String> = started.later.iter().collect();

    let entries: Vec<Value> = lines
        .iter()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    for line in &lines {
        assert!(
            !line.contains(PHONE_DIGITS),
            "phone number in the log: {line}"
        );
        assert!(
            !line.contains(METADATA_VALUE),
            "metadata value in the log: {line}"
        );
    }
    let operation = entries
        .iter()
        .find(|entry| {
            entry["fields"]["message"] == "operation finished"
                && spans_have(entry, "request_id", "req-abc-123")
        })
        .expect("an `operation finished` line for the create");
    assert!(
        spans_have(operation, "operation_name", "CreateIt"),
        "{operation}"
    );
    assert!(spans_have(operation, "kind", "mutation"), "{operation}");
    assert!(spans_have(operation, "outcome", "ok"), "{operation}");
    let lookup = entries
        .iter()
        .find(|entry| {
            entry["fields"]["message"] == "request finished"
                && spans_have(entry, "request_id", &generated)
        })
        .expect("a `request finished` line for the lookup");
    assert!(
        spans_have(lookup, "path", "/graphql"),
        "query string logged: {lookup}"
    );
    assert!(
        entries
            .iter()
            .any(|entry| spans_have(entry, "path", "/contacts/+*********78")),
        "the 404 path is logged masked"
    );
}

/// True when one of the entry's spans has `field` equal to `value`.
fn spans_have(entry: &Value, field: &str, value: &str) -> bool {
    entry["spans"]
        .as_array()
        .is_some_and(|spans| spans.iter().any(|span| span[field] == value))
}
