//! Helpers of the WhatsApp webhook tests: an app with the webhook on, Meta's example payloads
//! (tests/fixtures/meta), and deliveries signed as Meta signs them.

use contacts_server::http::whatsapp::signature;
use reqwest::StatusCode;
use serde_json::json;

use super::TestApp;

pub const SECRET: &str = "test-app-secret";
pub const VERIFY_TOKEN: &str = "test-verify-token";

/// An app with `/webhooks/whatsapp` on.
pub async fn app() -> TestApp {
    TestApp::start_configured(|state| state.with_whatsapp(SECRET, Some(VERIFY_TOKEN))).await
}

/// A fixture's JSON: the file without its `//` source comment.
pub fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/meta/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("fixture");
    assert!(text.starts_with("// Source:"), "{name} names no source");
    let json: Vec<&str> = text.lines().filter(|l| !l.starts_with("//")).collect();
    json.join("\n")
}

/// POSTs `body` with `signature` (the header value, if any).
pub async fn post_raw(app: &TestApp, body: &str, signature: Option<String>) -> StatusCode {
    let mut request = app
        .client
        .post(app.url("/webhooks/whatsapp"))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(value) = signature {
        request = request.header("x-hub-signature-256", value);
    }
    request.send().await.expect("request").status()
}

/// POSTs `body` signed as Meta signs it.
pub async fn deliver(app: &TestApp, body: &str) -> StatusCode {
    let header = signature::sign(SECRET.as_bytes(), body.as_bytes());
    post_raw(app, body, Some(header)).await
}

pub async fn metrics(app: &TestApp) -> String {
    let response = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("metrics");
    response.text().await.expect("text")
}

/// The value of the metric line `series` (0 when absent).
pub fn metric(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0)
}

/// Contacts stored.
pub async fn contact_count(app: &TestApp) -> u64 {
    let data = app.data("{ contacts { totalCount } }", json!({})).await;
    data["contacts"]["totalCount"].as_u64().expect("count")
}
