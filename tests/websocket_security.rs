//! The outside review's findings about what a caller can do over WebSocket and around the
//! GraphQL routes: every credential over both WebSocket protocols, rate limits and caps per
//! connection and caller, origins, deadlines, credential expiry, and the side routes.

mod common;

use std::time::Duration;

use chrono::TimeDelta;
use common::{
    TestApp, code,
    credentials::{READ_KEY, SECRET, WRITE_KEY, jwt_signed, secured},
    raw_ws::{Socket, connect, init, receive, send},
};
use contacts_server::{graphql::Limits, http::WebSocketLimits};
use futures_util::SinkExt;
use reqwest::{StatusCode, header};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const CREATE: &str =
    "mutation { createContact(input: { phoneNumber: \"+56912345678\" }) { contact { id } } }";
const PROTOCOLS: [&str; 2] = ["graphql-transport-ws", "graphql-ws"];

fn jwt(scope: &str, expires_in: i64) -> String {
    jwt_signed(SECRET, scope, expires_in)
}

async fn contacts_total(app: &TestApp) -> Value {
    let response = app
        .client
        .post(app.url("/graphql"))
        .header("x-api-key", READ_KEY)
        .json(&json!({ "query": "{ contactStats { total } }" }))
        .send()
        .await
        .unwrap();
    response.json::<Value>().await.unwrap()["data"]["contactStats"]["total"].clone()
}

/// Starts operation `id` in either protocol's words.
async fn start(socket: &mut Socket, protocol: &str, id: &str, query: &str) {
    let kind = if protocol == "graphql-ws" {
        "start"
    } else {
        "subscribe"
    };
    send(
        socket,
        json!({ "id": id, "type": kind, "payload": { "query": query } }),
    )
    .await;
}

/// The first payload or error sent for an operation (either protocol).
async fn result(socket: &mut Socket) -> Value {
    let message = receive(socket).await;
    match message["type"].as_str() {
        Some("next" | "data") => message["payload"].clone(),
        Some("error") => json!({ "errors": message["payload"] }),
        _ => message,
    }
}

fn first_error_code(result: &Value) -> String {
    let errors = &result["errors"];
    let first = if errors.is_array() {
        &errors[0]
    } else {
        errors
    };
    code(first).to_owned()
}

#[tokio::test]
async fn read_credentials_cannot_write_over_either_websocket_protocol() {
    let app = secured(|state| state).await;
    let read_jwt = format!("Bearer {}", jwt("read", 3600));
    for protocol in PROTOCOLS {
        for credential in [
            json!({ "apiKey": READ_KEY }),
            json!({ "Authorization": read_jwt }),
        ] {
            let (mut socket, ack) = init(&app, protocol, credential).await;
            assert_eq!(ack["type"], "connection_ack", "{protocol}");
            start(&mut socket, protocol, "1", CREATE).await;
            let refused = result(&mut socket).await;
            assert_eq!(
                first_error_code(&refused),
                "FORBIDDEN",
                "{protocol}: {refused}"
            );
        }
    }
    assert_eq!(contacts_total(&app).await, 0, "nothing was written");
    // The same mutation with a write credential goes through on the socket.
    let (mut socket, _) = init(&app, "graphql-transport-ws", json!({ "apiKey": WRITE_KEY })).await;
    start(&mut socket, "graphql-transport-ws", "1", CREATE).await;
    let created = result(&mut socket).await;
    assert!(
        created["data"]["createContact"]["contact"]["id"].is_string(),
        "{created}"
    );
    assert_eq!(contacts_total(&app).await, 1);
}

#[tokio::test]
async fn read_credentials_cannot_write_over_get_either() {
    let app = secured(|state| state).await;
    let response = app
        .client
        .get(app.url("/graphql"))
        .query(&[("query", CREATE)])
        .header("x-api-key", READ_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = app
        .client
        .get(app.url("/graphql"))
        .query(&[("query", CREATE)])
        .header("x-api-key", WRITE_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()[header::ALLOW], "POST");
    assert_eq!(contacts_total(&app).await, 0);
}

#[tokio::test]
async fn every_websocket_operation_counts_against_the_callers_rate_limit() {
    let app = secured(|state| state.with_rate_limit(60, 3)).await;
    let (mut socket, ack) =
        init(&app, "graphql-transport-ws", json!({ "apiKey": WRITE_KEY })).await;
    assert_eq!(ack["type"], "connection_ack");
    let mut codes = Vec::new();
    for id in 0..6 {
        let query = format!(
            "mutation {{ createContact(input: {{ phoneNumber: \"+5691234567{id}\" }}) {{ contact {{ id }} }} }}"
        );
        start(&mut socket, "graphql-transport-ws", &id.to_string(), &query).await;
        let answer = result(&mut socket).await;
        codes.push(if answer["errors"].is_null() {
            "ok".to_owned()
        } else {
            first_error_code(&answer)
        });
        assert_eq!(receive(&mut socket).await["type"], "complete");
    }
    assert_eq!(&codes[..3], ["ok", "ok", "ok"], "{codes:?}");
    assert!(codes[3..].iter().all(|c| c == "RATE_LIMITED"), "{codes:?}");
    // The bucket is the credential's: HTTP with the same key is refused as well.
    let response = app
        .client
        .post(app.url("/graphql"))
        .header("x-api-key", WRITE_KEY)
        .json(&json!({ "query": "{ contactStats { total } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key(header::RETRY_AFTER));
}

#[tokio::test]
async fn a_connection_runs_at_most_its_cap_of_operations() {
    let limits = WebSocketLimits::new(64 * 1024, Duration::from_secs(10), 3, 100);
    let app = secured(|state| state.with_websocket_limits(limits)).await;
    let (mut socket, _) = init(&app, "graphql-transport-ws", json!({ "apiKey": READ_KEY })).await;
    for id in 0..3 {
        start(
            &mut socket,
            "graphql-transport-ws",
            &id.to_string(),
            "subscription { contactEvents { kind } }",
        )
        .await;
    }
    start(
        &mut socket,
        "graphql-transport-ws",
        "3",
        "subscription { contactEvents { kind } }",
    )
    .await;
    let refused = result(&mut socket).await;
    assert_eq!(first_error_code(&refused), "RATE_LIMITED", "{refused}");
    assert_eq!(receive(&mut socket).await["type"], "complete");
    // Completing one frees its place (the server drops it before reading the next message).
    send(&mut socket, json!({ "id": "0", "type": "complete" })).await;
    assert_eq!(receive(&mut socket).await["type"], "complete");
    start(
        &mut socket,
        "graphql-transport-ws",
        "q",
        "{ contactStats { total } }",
    )
    .await;
    let answered = result(&mut socket).await;
    assert_eq!(answered["data"]["contactStats"]["total"], 0, "{answered}");
}

#[tokio::test]
async fn connections_per_caller_are_capped() {
    let limits = WebSocketLimits::new(64 * 1024, Duration::from_secs(10), 100, 2);
    let app = secured(|state| state.with_websocket_limits(limits)).await;
    let (_first, one) = init(&app, "graphql-transport-ws", json!({ "apiKey": READ_KEY })).await;
    let (second, two) = init(&app, "graphql-ws", json!({ "apiKey": READ_KEY })).await;
    assert_eq!(
        (one["type"].as_str(), two["type"].as_str()),
        (Some("connection_ack"), Some("connection_ack"))
    );
    let (_third, three) = init(&app, "graphql-transport-ws", json!({ "apiKey": READ_KEY })).await;
    assert_ne!(three["type"], "connection_ack", "{three}");
    // Another caller is not affected, and a closed connection frees its place.
    let (_other, other) = init(&app, "graphql-transport-ws", json!({ "apiKey": WRITE_KEY })).await;
    assert_eq!(other["type"], "connection_ack");
    drop(second);
    let mut reopened = Value::Null;
    for _ in 0..50 {
        let (_socket, reply) =
            init(&app, "graphql-transport-ws", json!({ "apiKey": READ_KEY })).await;
        reopened = reply;
        if reopened["type"] == "connection_ack" {
            break;
        }
    }
    assert_eq!(reopened["type"], "connection_ack", "{reopened}");
}

#[tokio::test]
async fn oversized_websocket_messages_close_the_connection() {
    let app = secured(|state| state).await;
    let mut socket = connect(&app, "graphql-transport-ws").await;
    let huge = json!({ "type": "connection_init", "payload": { "x": "a".repeat(300 * 1024) } });
    let _ = socket.send(Message::Text(huge.to_string().into())).await;
    let reply = receive(&mut socket).await;
    assert!(
        reply["closed"] == 1009 || reply["ended"] == true,
        "the server must close on a message over the cap: {reply}"
    );
}

#[tokio::test]
async fn an_oversized_connection_init_payload_is_refused() {
    let app = secured(|state| state).await;
    let payload = json!({ "apiKey": READ_KEY, "padding": "p".repeat(20 * 1024) });
    let (_socket, reply) = init(&app, "graphql-transport-ws", payload).await;
    assert_ne!(reply["type"], "connection_ack", "{reply}");
}

#[tokio::test]
async fn a_connection_without_connection_init_is_closed_at_the_deadline() {
    let limits = WebSocketLimits::new(64 * 1024, Duration::from_millis(300), 100, 100);
    let app = secured(|state| state.with_websocket_limits(limits)).await;
    // Opened first, so it is past the deadline once the idle ones below are closed.
    let (mut authenticated, _) =
        init(&app, "graphql-transport-ws", json!({ "apiKey": READ_KEY })).await;
    let subscription = "subscription { contactEvents { kind } }";
    start(
        &mut authenticated,
        "graphql-transport-ws",
        "1",
        subscription,
    )
    .await;
    for protocol in PROTOCOLS {
        let mut idle = connect(&app, protocol).await;
        let reply = receive(&mut idle).await;
        assert!(
            reply["closed"].is_number() || reply["ended"] == true,
            "{protocol}: {reply}"
        );
    }
    // The connection that did authenticate is still served.
    app.client
        .post(app.url("/graphql"))
        .header("x-api-key", WRITE_KEY)
        .json(&json!({ "query": CREATE }))
        .send()
        .await
        .unwrap();
    let event = result(&mut authenticated).await;
    assert_eq!(event["data"]["contactEvents"]["kind"], "CREATED", "{event}");
}

#[tokio::test]
async fn websocket_upgrades_from_foreign_origins_are_refused() {
    let app = secured(|state| {
        state
            .with_cors(&["https://app.example.com".to_owned()])
            .unwrap()
    })
    .await;
    let upgrade = |origin: &'static str| {
        let request = app
            .client
            .get(app.url("/graphql/ws"))
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-version", "13")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
            .header("sec-websocket-protocol", "graphql-transport-ws")
            .header("origin", origin);
        async move { request.send().await.unwrap().status() }
    };
    assert_eq!(upgrade("https://evil.example").await, StatusCode::FORBIDDEN);
    assert_eq!(upgrade("null").await, StatusCode::FORBIDDEN);
    assert_eq!(
        upgrade("https://app.example.com").await,
        StatusCode::SWITCHING_PROTOCOLS
    );
    let own = app.base.clone();
    let own: &'static str = Box::leak(own.into_boxed_str());
    assert_eq!(upgrade(own).await, StatusCode::SWITCHING_PROTOCOLS);
    // Clients that are not browsers send no Origin.
    let (_socket, ack) = init(&app, "graphql-transport-ws", json!({ "apiKey": READ_KEY })).await;
    assert_eq!(ack["type"], "connection_ack");
}

#[tokio::test]
async fn a_websocket_closes_when_its_jwt_expires() {
    let app = secured(|state| state).await;
    let token = format!("Bearer {}", jwt("read", 60));
    let (mut socket, ack) = init(
        &app,
        "graphql-transport-ws",
        json!({ "Authorization": token }),
    )
    .await;
    assert_eq!(ack["type"], "connection_ack");
    start(
        &mut socket,
        "graphql-transport-ws",
        "1",
        "{ contactStats { total } }",
    )
    .await;
    assert_eq!(
        result(&mut socket).await["data"]["contactStats"]["total"],
        0
    );
    assert_eq!(receive(&mut socket).await["type"], "complete");
    // exp is T0 + 60 s; with the 30 s leeway the credential ends at T0 + 90 s.
    app.clock.advance(TimeDelta::seconds(91));
    let closed = receive(&mut socket).await;
    assert!(
        closed["closed"].is_number() || closed["ended"] == true,
        "{closed}"
    );
}

#[tokio::test]
async fn connection_init_finds_credentials_among_other_entries_in_any_case() {
    let app = secured(|state| state).await;
    // Keys are read in order: "agent", an object, comes before the credential (the old reader
    // stopped at the first value that was not a string), and the scheme is lower case.
    let payload = json!({ "agent": { "name": "urql" }, "retries": 3, "authorization": format!("bearer {WRITE_KEY}") });
    let (_socket, ack) = init(&app, "graphql-ws", payload).await;
    assert_eq!(ack["type"], "connection_ack");
}

#[tokio::test]
async fn refused_credentials_are_rate_limited_per_address() {
    let app = secured(|state| state.with_address_limit(60, 5)).await;
    let call = |key: &'static str| {
        let request = app
            .client
            .post(app.url("/graphql"))
            .header("x-api-key", key)
            .json(&json!({ "query": "{ contactStats { total } }" }));
        async move { request.send().await.unwrap() }
    };
    for _ in 0..5 {
        assert_eq!(call("guess").await.status(), StatusCode::UNAUTHORIZED);
    }
    let limited = call("guess").await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.headers().contains_key(header::RETRY_AFTER));
    // Failures cost nothing to a caller with a valid credential.
    assert_eq!(call(READ_KEY).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn schema_and_metrics_need_credentials_and_the_schema_follows_introspection() {
    let app = secured(|state| state).await;
    for path in ["/schema.graphql", "/metrics"] {
        let anonymous = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED, "{path}");
        let with_key = app
            .client
            .get(app.url(path))
            .header("x-api-key", READ_KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(with_key.status(), StatusCode::OK, "{path}");
        if path == "/metrics" {
            let text = with_key.text().await.unwrap();
            assert!(text.contains("contact_event_row_reads_total"), "{text}");
        }
    }
    let closed = TestApp::start_configured(|state| {
        state.with_limits(Limits {
            introspection: false,
            ..Limits::default()
        })
    })
    .await;
    let schema = closed
        .client
        .get(closed.url("/schema.graphql"))
        .send()
        .await
        .unwrap();
    assert_eq!(schema.status(), StatusCode::NOT_FOUND);
    let (_, introspection) = closed
        .post("{ __schema { types { name } } }", json!({}))
        .await;
    assert!(
        introspection["data"]["__schema"].is_null(),
        "{introspection}"
    );
}

#[tokio::test]
async fn a_subscription_selects_exactly_one_root_field() {
    let app = secured(|state| state).await;
    let (mut socket, _) = init(&app, "graphql-transport-ws", json!({ "apiKey": READ_KEY })).await;
    let fan_out = "subscription { a: contactEvents { kind } b: contactEvents { kind } }";
    start(&mut socket, "graphql-transport-ws", "1", fan_out).await;
    let refused = result(&mut socket).await;
    assert_eq!(
        first_error_code(&refused),
        "GRAPHQL_VALIDATION_FAILED",
        "{refused}"
    );
    assert_eq!(receive(&mut socket).await["type"], "complete");
    let through_fragment = "subscription { ...F } fragment F on Subscription { a: contactEvents { kind } b: contactEvents { kind } }";
    start(&mut socket, "graphql-transport-ws", "2", through_fragment).await;
    let refused = result(&mut socket).await;
    assert_eq!(
        first_error_code(&refused),
        "GRAPHQL_VALIDATION_FAILED",
        "{refused}"
    );
}

#[tokio::test]
async fn a_declared_body_over_the_limit_is_refused_before_it_arrives() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = secured(|state| state).await;
    let address = app.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "POST /graphql HTTP/1.1\r\nHost: {address}\r\nX-API-Key: {READ_KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: 2147483648\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0; 1024];
    // Answered without the body: the read returns while the 2 GB never come.
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut answer))
        .await
        .expect("an answer without the body")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..read]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
}
