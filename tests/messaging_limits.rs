//! The messaging policy's edges (from an outside review): the new mutations under read and
//! missing credentials on every transport, bad business numbers everywhere, and the bound
//! on windows per contact.

mod common;

use std::time::{Duration, Instant};

use common::{TestApp, code};
use contacts_server::auth::{Authenticator, JwtSettings};
use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest, http::HeaderValue};

const READ_KEY: &str = "read-key-0123456789abcdef0123456789abcdef";
const WRITE_KEY: &str = "write-key-0123456789abcdef0123456789abcdef";
const PHONE: &str = "+56912345678";

fn hashed(key: &str, scope: &str) -> String {
    format!("{}:{scope}", hex::encode(Sha256::digest(key.as_bytes())))
}

async fn secured() -> TestApp {
    let auth = Authenticator::new(
        &[hashed(READ_KEY, "read"), hashed(WRITE_KEY, "write")],
        JwtSettings::default(),
    )
    .unwrap();
    TestApp::start_with_auth(auth).await
}

async fn post(app: &TestApp, key: Option<&str>, query: &str) -> (StatusCode, Value) {
    let mut request = app
        .client
        .post(app.url("/graphql"))
        .json(&json!({ "query": query }));
    if let Some(key) = key {
        request = request.header("x-api-key", key);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn state(app: &TestApp) -> Value {
    post(
        app,
        Some(READ_KEY),
        "{ contacts { nodes { blocked marketingOptedOut } } }",
    )
    .await
    .1["data"]["contacts"]["nodes"]
        .clone()
}

/// One operation over a raw WebSocket speaking `protocol`, authenticated with `key`; every
/// frame the server sends until it completes, errors or closes.
async fn over_ws(app: &TestApp, protocol: &str, key: &str, query: &str) -> Vec<Value> {
    let mut request = app.ws_url().into_client_request().unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_str(protocol).unwrap(),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let init = json!({ "type": "connection_init", "payload": { "X-API-Key": key } });
    socket
        .send(Message::Text(init.to_string().into()))
        .await
        .unwrap();
    let start_type = if protocol == "graphql-ws" {
        "start"
    } else {
        "subscribe"
    };
    let start = json!({ "id": "1", "type": start_type, "payload": { "query": query } });
    socket
        .send(Message::Text(start.to_string().into()))
        .await
        .unwrap();
    let mut frames = vec![];
    while let Ok(Some(Ok(message))) =
        tokio::time::timeout(Duration::from_secs(5), socket.next()).await
    {
        match message {
            Message::Text(text) => {
                let frame: Value = serde_json::from_str(&text).unwrap();
                let kind = frame["type"].as_str().unwrap_or("").to_owned();
                frames.push(frame);
                if ["complete", "error", "connection_error"].contains(&kind.as_str()) {
                    break;
                }
            }
            Message::Close(frame) => {
                frames.push(json!({ "closed": format!("{frame:?}") }));
                break;
            }
            _ => {}
        }
    }
    frames
}

#[tokio::test]
async fn read_credentials_cannot_block_or_record_preferences_on_any_transport() {
    let app = secured().await;
    let (_, made) = post(
        &app,
        Some(WRITE_KEY),
        &format!(
            "mutation {{ recordWhatsappInbound(input: {{ phoneNumber: \"{PHONE}\" }}) {{ contact {{ id }} }} }}"
        ),
    )
    .await;
    let id = made["data"]["recordWhatsappInbound"]["contact"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = state(&app).await;
    assert_eq!(
        before,
        json!([{ "blocked": false, "marketingOptedOut": false }])
    );
    let block = format!(
        "mutation {{ setContactBlocked(id: \"{id}\", blocked: true) {{ contact {{ blocked }} }} }}"
    );
    let opt_out = format!(
        "mutation {{ recordMarketingPreference(phoneNumber: \"{PHONE}\", optedOut: true, at: \"2026-11-24T11:00:00Z\") {{ contact {{ id }} }} }}"
    );
    for mutation in [&block, &opt_out] {
        // HTTP POST: read key, no key.
        for key in [Some(READ_KEY), None] {
            let (status, body) = post(&app, key, mutation).await;
            assert!(status.is_client_error(), "{key:?} {status} {body}");
        }
        // HTTP GET, even with the write key.
        for key in [READ_KEY, WRITE_KEY] {
            let response = app
                .client
                .get(app.url("/graphql"))
                .query(&[("query", mutation.as_str())])
                .header("x-api-key", key)
                .send()
                .await
                .unwrap();
            assert!(
                response.status().is_client_error(),
                "GET {}",
                response.status()
            );
        }
        // Both WebSocket protocols with the read key.
        for protocol in ["graphql-transport-ws", "graphql-ws"] {
            let frames = over_ws(&app, protocol, READ_KEY, mutation).await;
            assert!(
                !frames.iter().any(|f| f["payload"]["data"].is_object()
                    && !f["payload"]["data"].as_object().unwrap().is_empty()),
                "{protocol}: {frames:?}"
            );
        }
        assert_eq!(
            state(&app).await,
            before,
            "a refused {mutation} changed data"
        );
    }
}

/// Every place a business number goes, with `$n` the bad value.
const PLACES: [(&str, &str); 8] = [
    (
        "query($n: String) { contacts { nodes { whatsappWindowOpen(businessPhoneNumberId: $n) } } }",
        "businessPhoneNumberId",
    ),
    (
        "query($n: String) { contacts { nodes { whatsappWindowExpiresAt(businessPhoneNumberId: $n) } } }",
        "businessPhoneNumberId",
    ),
    (
        "query($n: String) { contacts { nodes { marketingOptedOut(businessPhoneNumberId: $n) } } }",
        "businessPhoneNumberId",
    ),
    (
        "query($n: String) { contacts { nodes { messaging(businessPhoneNumberId: $n) { freeForm } } } }",
        "businessPhoneNumberId",
    ),
    (
        "query($n: String) { contacts(filter: { businessPhoneNumberId: $n }) { totalCount } }",
        "filter.businessPhoneNumberId",
    ),
    (
        "query($n: String) { contactStats(filter: { businessPhoneNumberId: $n }) { total } }",
        "filter.businessPhoneNumberId",
    ),
    (
        "mutation($n: String) { recordWhatsappInbound(input: { phoneNumber: \"+56912345678\", businessPhoneNumberId: $n }) { contact { id } } }",
        "input.businessPhoneNumberId",
    ),
    (
        "mutation($n: String) { recordMarketingPreference(phoneNumber: \"+56912345678\", businessPhoneNumberId: $n, optedOut: true, at: \"2026-11-24T11:00:00Z\") { contact { id } } }",
        "businessPhoneNumberId",
    ),
];

#[tokio::test]
async fn bad_business_numbers_are_bad_user_input_naming_the_field_everywhere() {
    let app = TestApp::start().await;
    app.data(
        "mutation { recordWhatsappInbound(input: { phoneNumber: \"+56912345678\", businessPhoneNumberId: \"1\" }) { contact { id } } }",
        json!({}),
    )
    .await;
    let long = "9".repeat(33);
    let huge = "9".repeat(1_000_000);
    let bad = [
        "",
        " 123",
        "123 ",
        "12a",
        "+123",
        "١٢٣",
        "１２３",
        "-1",
        "1.0",
        &long,
        &huge,
        "\u{0}",
    ];
    for (query, field) in PLACES {
        for value in bad {
            let (status, body) = app.post(query, json!({ "n": value })).await;
            let err = &body["errors"][0];
            let short: String = value.chars().take(40).collect();
            assert!(
                status.as_u16() < 500,
                "{status} for {short:?} in {query}: {body}"
            );
            assert_eq!(code(err), "BAD_USER_INPUT", "{short:?} in {query}: {body}");
            assert_eq!(
                err["extensions"]["field"], field,
                "{short:?} in {query}: {body}"
            );
        }
        // Wrong type: a number where a string is expected.
        let (status, body) = app.post(query, json!({ "n": 106540352242922u64 })).await;
        assert!(status.as_u16() < 500, "{status}: {body}");
        assert_eq!(
            code(&body["errors"][0]),
            "BAD_USER_INPUT",
            "{query}: {body}"
        );
    }
    // The subscription.
    let id =
        app.data("{ contacts { nodes { id } } }", json!({})).await["contacts"]["nodes"][0]["id"]
            .clone();
    let mut sub = common::subscribe(
        &app,
        "subscription($id: ID!, $n: String) { whatsappWindow(contactId: $id, businessPhoneNumberId: $n) { open } }",
        json!({ "id": id, "n": "١٢٣" }),
    )
    .await;
    let first = common::next_event(&mut sub).await;
    assert_eq!(code(&first["errors"][0]), "BAD_USER_INPUT", "{first}");
}

/// A writer spraying distinct business numbers at a few contacts: rows per contact are
/// unbounded, and one page of contacts selecting `whatsappWindows` returns all of them.
#[tokio::test]
async fn windows_per_contact_are_bounded() {
    let app = TestApp::start().await;
    // 150 numbers, ten aliased events per request, each a minute later than the one before.
    for batch in 0..15 {
        let mut query = String::from("mutation {");
        for j in 0..10 {
            let n = batch * 10 + j;
            query.push_str(&format!(
                " m{j}: recordWhatsappInbound(input: {{ phoneNumber: \"{PHONE}\", \
                 businessPhoneNumberId: \"{}\", receivedAt: \"2026-11-24T{:02}:{:02}:00Z\" }}) \
                 {{ contact {{ id }} }}",
                1_000_000 + n,
                9 + n / 60,
                n % 60
            ));
        }
        query.push('}');
        let (status, body) = app.post(&query, json!({})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body.get("errors").is_none(), "{body}");
    }
    let started = Instant::now();
    let data = app
        .data(
            "{ contacts(first: 100) { nodes { lastWhatsappMessageAt
                 whatsappWindows { businessPhoneNumberId } } } }",
            json!({}),
        )
        .await;
    let node = &data["contacts"]["nodes"][0];
    let windows: Vec<&str> = node["whatsappWindows"]
        .as_array()
        .expect("windows")
        .iter()
        .filter_map(|w| w["businessPhoneNumberId"].as_str())
        .collect();
    // The newest 100 are kept, newest first; the 50 oldest are gone.
    assert_eq!(windows.len(), 100);
    assert_eq!(windows.first(), Some(&"1000149"));
    assert_eq!(windows.last(), Some(&"1000050"));
    assert_eq!(node["lastWhatsappMessageAt"], "2026-11-24T11:29:00Z");
    assert!(started.elapsed() < Duration::from_secs(10));
}
