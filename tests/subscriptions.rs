//! Subscriptions over real WebSockets: both protocols, a published client, the window closing
//! by the clock alone, and events crossing instances on PostgreSQL.

mod common;

use std::time::Duration;

use chrono::TimeDelta;
use common::{TestApp, at, next_event, subscribe};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const EVENTS: &str = "subscription($id: ID) { contactEvents(id: $id) {
    kind contactId at contact { id phoneNumber metadata whatsappWindowOpen } } }";
const WINDOW: &str =
    "subscription($id: ID!) { whatsappWindow(contactId: $id) { contactId open expiresAt } }";
const PATCH: &str = "mutation($id: ID!, $set: Metadata) { patchContactMetadata(id: $id, set: $set) { contact { id } } }";
const RECORD: &str =
    "mutation($p: String!) { recordWhatsappMessage(phoneNumber: $p) { contact { id } } }";

/// Writes to `sentinel` until the subscription reports a change: from then on the server is
/// known to be listening. (There is no other signal that a subscription has started.)
async fn prime(
    app: &TestApp,
    subscription: &mut graphql_ws_client::Subscription<common::Operation>,
    sentinel: &Value,
) {
    for attempt in 0..100 {
        app.data(
            PATCH,
            json!({ "id": sentinel, "set": { "sentinel": attempt.to_string() } }),
        )
        .await;
        match tokio::time::timeout(Duration::from_millis(100), subscription.next()).await {
            Ok(Some(Ok(_))) => return,
            Ok(other) => panic!("subscription failed while priming: {other:?}"),
            Err(_) => continue,
        }
    }
    panic!("the subscription never reported a change");
}

/// The next event about `id`, skipping others (such as late priming events).
async fn next_about(
    subscription: &mut graphql_ws_client::Subscription<common::Operation>,
    id: &Value,
) -> Value {
    loop {
        let message = next_event(subscription).await;
        let event = message["data"]["contactEvents"].clone();
        if event["contactId"] == *id {
            return event;
        }
    }
}

#[tokio::test]
async fn contact_events_report_creates_updates_and_deletes() {
    let app = TestApp::start().await;
    let sentinel = app.create(json!({ "phoneNumber": "+14155550100" })).await["id"].clone();
    let mut events = subscribe(&app, EVENTS, json!({})).await;
    prime(&app, &mut events, &sentinel).await;

    let created = app.create(json!({ "phoneNumber": "+56912345678" })).await;
    let id = created["id"].clone();
    let event = next_about(&mut events, &id).await;
    assert_eq!(event["kind"], "CREATED");
    assert_eq!(event["contact"]["phoneNumber"], "+56912345678");
    assert_eq!(event["at"], common::T0);

    app.data(PATCH, json!({ "id": id, "set": { "plan": "pro" } }))
        .await;
    let event = next_about(&mut events, &id).await;
    assert_eq!(event["kind"], "UPDATED");
    assert_eq!(event["contact"]["metadata"], json!({ "plan": "pro" }));

    app.data(
        "mutation($id: ID!) { deleteContact(id: $id) { deletedContactId } }",
        json!({ "id": id }),
    )
    .await;
    let event = next_about(&mut events, &id).await;
    assert_eq!(event["kind"], "DELETED");
    assert_eq!(event["contact"], Value::Null);
}

#[tokio::test]
async fn contact_events_for_one_id_ignore_other_contacts() {
    let app = TestApp::start().await;
    let watched = app.create(json!({ "phoneNumber": "+56912345678" })).await["id"].clone();
    let other = app.create(json!({ "phoneNumber": "+56987654321" })).await["id"].clone();
    let mut events = subscribe(&app, EVENTS, json!({ "id": watched })).await;
    prime(&app, &mut events, &watched).await;
    app.data(PATCH, json!({ "id": other, "set": { "x": "1" } }))
        .await;
    app.data(
        "mutation($id: ID!) { deleteContact(id: $id) { deletedContactId } }",
        json!({ "id": watched }),
    )
    .await;
    loop {
        let event = next_event(&mut events).await["data"]["contactEvents"].clone();
        assert_eq!(
            event["contactId"], watched,
            "an event about another contact leaked in"
        );
        if event["kind"] == "DELETED" {
            break;
        }
    }
}

#[tokio::test]
async fn window_closes_when_the_clock_passes_expiry_and_reopens_on_a_message() {
    let app = TestApp::start().await;
    let last = at(common::T0) - TimeDelta::hours(23) - TimeDelta::minutes(59);
    let contact = app
        .create(
            json!({ "phoneNumber": "+56912345678", "lastWhatsappMessageAt": last.to_rfc3339() }),
        )
        .await;
    let id = contact["id"].clone();
    let mut window = subscribe(&app, WINDOW, json!({ "id": id })).await;

    let first = next_event(&mut window).await["data"]["whatsappWindow"].clone();
    assert_eq!(
        first,
        json!({ "contactId": id, "open": true, "expiresAt": "2026-11-24T12:01:00Z" })
    );

    // No write: only time moves.
    app.clock.advance(TimeDelta::seconds(59));
    app.clock.advance(TimeDelta::seconds(1));
    let closed = next_event(&mut window).await["data"]["whatsappWindow"].clone();
    assert_eq!(
        closed,
        json!({ "contactId": id, "open": false, "expiresAt": "2026-11-24T12:01:00Z" })
    );

    app.data(RECORD, json!({ "p": "+56912345678" })).await;
    let reopened = next_event(&mut window).await["data"]["whatsappWindow"].clone();
    assert_eq!(
        reopened,
        json!({ "contactId": id, "open": true, "expiresAt": "2026-11-25T12:01:00Z" })
    );
}

#[tokio::test]
async fn window_of_an_unknown_contact_is_not_found() {
    let app = TestApp::start().await;
    let mut window = subscribe(
        &app,
        WINDOW,
        json!({ "id": "01a21129-9a1f-76f2-812b-f8c0d93f783d" }),
    )
    .await;
    let message = next_event(&mut window).await;
    assert_eq!(
        message["errors"][0]["extensions"]["code"], "NOT_FOUND",
        "{message}"
    );
}

/// The legacy `graphql-ws` protocol (subscriptions-transport-ws), spoken by hand.
#[tokio::test]
async fn legacy_graphql_ws_protocol_streams_window_changes() {
    let app = TestApp::start().await;
    let contact = app.create(json!({ "phoneNumber": "+56912345678" })).await;
    let mut socket = common::websocket(&app, "graphql-ws").await;
    let send = |value: Value| Message::Text(value.to_string().into());
    socket
        .send(send(json!({ "type": "connection_init", "payload": {} })))
        .await
        .unwrap();
    let start = json!({ "id": "1", "type": "start", "payload": { "query": WINDOW, "variables": { "id": contact["id"] } } });
    socket.send(send(start)).await.unwrap();

    let mut data = Vec::new();
    while data.len() < 2 {
        let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a message in time");
        let Message::Text(text) = message.expect("open socket").expect("message") else {
            continue;
        };
        let message: Value = serde_json::from_str(&text).unwrap();
        match message["type"].as_str() {
            Some("connection_ack") | Some("ka") => {}
            Some("data") => {
                data.push(message["payload"]["data"]["whatsappWindow"].clone());
                if data.len() == 1 {
                    app.data(RECORD, json!({ "p": "+56912345678" })).await;
                }
            }
            other => panic!("unexpected {other:?}: {message}"),
        }
    }
    assert_eq!(data[0]["open"], false);
    assert_eq!(data[1]["open"], true);
    assert_eq!(data[1]["expiresAt"], "2026-11-25T12:00:00Z");
    socket
        .send(send(json!({ "id": "1", "type": "stop" })))
        .await
        .unwrap();
}

#[tokio::test]
async fn websocket_without_a_known_protocol_is_refused() {
    let app = TestApp::start().await;
    let response = app
        .client
        .get(app.url("/graphql/ws"))
        .send()
        .await
        .expect("request");
    assert!(response.status().is_client_error(), "{}", response.status());
}

/// Two instances behind a load balancer on one PostgreSQL: a write through one reaches
/// subscribers on the other, for both subscriptions. (SQLite is one instance per file, and its
/// events stay in-process, so there is nothing to cross.)
#[tokio::test]
async fn events_cross_instances_on_postgres() {
    if !common::on_postgres() {
        eprintln!("single-instance backend: cross-instance events are PostgreSQL's");
        return;
    }
    let a = TestApp::start().await;
    let b = a.second_instance().await;
    let contact = a.create(json!({ "phoneNumber": "+56912345678" })).await;
    let id = contact["id"].clone();

    let mut window_on_b = subscribe(&b, WINDOW, json!({ "id": id })).await;
    assert_eq!(
        next_event(&mut window_on_b).await["data"]["whatsappWindow"]["open"],
        false
    );
    let mut events_on_b = subscribe(&b, EVENTS, json!({ "id": id })).await;
    prime(&a, &mut events_on_b, &id).await;

    a.data(RECORD, json!({ "p": "+56912345678" })).await;
    let state = next_event(&mut window_on_b).await["data"]["whatsappWindow"].clone();
    assert_eq!(state["open"], true);
    loop {
        let event = next_about(&mut events_on_b, &id).await;
        if event["contact"]["whatsappWindowOpen"] == true {
            assert_eq!(event["kind"], "UPDATED");
            break;
        }
    }
}
