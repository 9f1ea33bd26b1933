//! Subscriptions over real WebSockets: both protocols, a published client, the window closing
//! by the clock alone, and events crossing instances on PostgreSQL.

mod common;

use std::time::Duration;

use chrono::TimeDelta;
use common::{TestApp, at, next_event, subscribe};
use contacts_server::{contacts::ContactService, http::AppState};
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

type Subscription = graphql_ws_client::Subscription<common::Operation>;

/// `count` subscriptions to `query` sharing one WebSocket.
async fn subscribe_many(app: &TestApp, query: &str, count: usize) -> Vec<Subscription> {
    let socket = common::websocket(app, "graphql-transport-ws").await;
    // Room for the priming events that wait while other subscriptions are primed.
    let (client, actor) = graphql_ws_client::Client::build(socket)
        .subscription_buffer_size(256)
        .build()
        .await
        .expect("connection");
    tokio::spawn(std::future::IntoFuture::into_future(actor));
    let mut subscriptions = Vec::new();
    for _ in 0..count {
        let operation = common::Operation::new(query, json!({}));
        subscriptions.push(client.subscribe(operation).await.expect("subscribe"));
    }
    subscriptions
}

/// [`prime`] for many subscriptions: writes until each has reported a change.
async fn prime_all(app: &TestApp, subscriptions: &mut [Subscription], sentinel: &Value) {
    let mut waiting: Vec<&mut Subscription> = subscriptions.iter_mut().collect();
    for attempt in 0..100 {
        app.data(
            PATCH,
            json!({ "id": sentinel, "set": { "n": attempt.to_string() } }),
        )
        .await;
        let mut still = Vec::new();
        // One wait shared by all: a write that came too early costs 100 ms, not 100 ms each.
        let deadline = tokio::time::Instant::now() + Duration::from_millis(100);
        for subscription in waiting {
            match tokio::time::timeout_at(deadline, subscription.next()).await {
                Ok(Some(Ok(_))) => {}
                Ok(other) => panic!("subscription failed while priming: {other:?}"),
                Err(_) => still.push(subscription),
            }
        }
        waiting = still;
        if waiting.is_empty() {
            break;
        }
    }
    assert!(
        waiting.is_empty(),
        "{} subscriptions never reported a change",
        waiting.len()
    );
    // One last write seen by all: every instance has delivered the priming writes before it.
    let last = json!({ "n": "last" });
    app.data(PATCH, json!({ "id": sentinel, "set": last }))
        .await;
    for subscription in subscriptions {
        while next_about(subscription, sentinel).await["contact"]["metadata"] != last {}
    }
}

/// A fresh app, and its service for the counters tests read.
async fn app_and_service(first: Option<&TestApp>) -> (TestApp, ContactService) {
    let mut service = None;
    let capture = |state: AppState| {
        service = Some(state.service.clone());
        state
    };
    let app = match first {
        Some(first) => first.second_instance_configured(capture).await,
        None => TestApp::start_configured(capture).await,
    };
    (app, service.expect("the app's service"))
}

/// The finding: each subscriber read the changed row itself (50 subscribers, 50 reads). The
/// instance's fan-out reads it once and hands it to all of them.
#[tokio::test]
async fn one_write_reaches_fifty_subscribers_with_one_row_read() {
    let (app, service) = app_and_service(None).await;
    let sentinel = app.create(json!({ "phoneNumber": "+14155550100" })).await["id"].clone();
    let mut subscribers = Vec::new();
    for _ in 0..5 {
        subscribers.extend(subscribe_many(&app, EVENTS, 10).await);
    }
    prime_all(&app, &mut subscribers, &sentinel).await;

    let reads = service.event_row_reads().get();
    let created = app.create(json!({ "phoneNumber": "+56912345678" })).await;
    for subscriber in &mut subscribers {
        let event = next_about(subscriber, &created["id"]).await;
        assert_eq!(event["contact"]["phoneNumber"], "+56912345678");
    }
    assert_eq!(service.event_row_reads().get() - reads, 1);
}

/// Across instances each one reads the row once for all its own subscribers.
#[tokio::test]
async fn each_instance_reads_a_changed_row_once_on_postgres() {
    if !common::on_postgres() {
        eprintln!("single-instance backend: cross-instance events are PostgreSQL's");
        return;
    }
    let (a, service_a) = app_and_service(None).await;
    let (b, service_b) = app_and_service(Some(&a)).await;
    let sentinel = a.create(json!({ "phoneNumber": "+14155550100" })).await["id"].clone();
    let mut subscribers = subscribe_many(&a, EVENTS, 10).await;
    subscribers.extend(subscribe_many(&b, EVENTS, 10).await);
    prime_all(&a, &mut subscribers, &sentinel).await;

    let reads = [
        service_a.event_row_reads().get(),
        service_b.event_row_reads().get(),
    ];
    let created = b.create(json!({ "phoneNumber": "+56912345678" })).await;
    for subscriber in &mut subscribers {
        let event = next_about(subscriber, &created["id"]).await;
        assert_eq!(event["contact"]["phoneNumber"], "+56912345678");
    }
    let after = [
        service_a.event_row_reads().get(),
        service_b.event_row_reads().get(),
    ];
    assert_eq!([after[0] - reads[0], after[1] - reads[1]], [1, 1]);
}
