//! `contactEvents` backed by the change log: bursts larger than any buffer arrive complete,
//! a subscriber resumes from its last cursor, and an expired cursor is refused.

mod common;

use std::{collections::HashSet, sync::Arc, time::Duration};

use chrono::TimeDelta;
use common::{Operation, TestApp, feed, next_event, on_postgres, subscribe};
use contacts_server::{contacts::ContactService, http::AppState};
use futures_util::StreamExt;
use serde_json::{Value, json};

type Subscription = graphql_ws_client::Subscription<Operation>;

const EVENTS: &str = "subscription($after: String) { contactEvents(after: $after) {
    cursor kind contactId contact { phoneNumber } } }";
const PATCH: &str = "mutation($id: ID!, $set: Metadata) { patchContactMetadata(id: $id, set: $set) { contact { id } } }";
const IMPORT: &str =
    "mutation($rows: [CreateContactInput!]!) { importContacts(contacts: $rows) { created } }";

/// Writes to `sentinel` until the subscription reports a change (it is then listening);
/// returns that event.
async fn prime(app: &TestApp, subscription: &mut Subscription, sentinel: &Value) -> Value {
    for attempt in 0..100 {
        let set = json!({ "sentinel": attempt.to_string() });
        app.data(PATCH, json!({ "id": sentinel, "set": set })).await;
        match tokio::time::timeout(Duration::from_millis(100), subscription.next()).await {
            Ok(Some(Ok(message))) => return message["data"]["contactEvents"].clone(),
            Ok(other) => panic!("subscription failed while priming: {other:?}"),
            Err(_) => continue,
        }
    }
    panic!("the subscription never reported a change");
}

/// The next event; fails on an error (such as `SUBSCRIBER_LAGGED`).
async fn next(subscription: &mut Subscription) -> Value {
    let message = next_event(subscription).await;
    assert!(message.get("errors").is_none(), "{message}");
    message["data"]["contactEvents"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_parallel_thousand_row_imports_reach_a_subscriber_completely() {
    let app = Arc::new(TestApp::start().await);
    // On PostgreSQL the imports go through another instance.
    let writer = app.other_instance_on_postgres().await;
    let sentinel = app.create(json!({ "phoneNumber": "+14155550100" })).await["id"].clone();
    let mut events = subscribe(&app, EVENTS, json!({})).await;
    let primed = prime(&app, &mut events, &sentinel).await;

    let imports: Vec<_> = (0..3)
        .map(|batch| {
            let writer = writer.clone();
            tokio::spawn(async move {
                let rows: Vec<Value> = (0..1000)
                    .map(|i| json!({ "phoneNumber": format!("+5691{batch}{i:06}") }))
                    .collect();
                let data = writer.data(IMPORT, json!({ "rows": rows })).await;
                assert_eq!(data["importContacts"]["created"], 1000, "{data}");
            })
        })
        .collect();
    for import in imports {
        import.await.expect("import");
    }
    // Every created row exactly once, in log order (late priming events aside).
    let mut phones = HashSet::new();
    let mut last = feed::position(&primed["cursor"]);
    while phones.len() < 3000 {
        let event = next(&mut events).await;
        let at = feed::position(&event["cursor"]);
        assert!(at > last, "out of order or repeated");
        last = at;
        if event["kind"] == "CREATED" {
            let phone = event["contact"]["phoneNumber"].as_str().expect("phone");
            assert!(phones.insert(phone.to_owned()), "{phone} twice");
        }
    }
}

#[tokio::test]
async fn a_subscriber_that_reconnects_with_its_last_cursor_receives_what_it_missed() {
    let app = TestApp::start().await;
    let sentinel = app.create(json!({ "phoneNumber": "+14155550100" })).await["id"].clone();
    let mut events = subscribe(&app, EVENTS, json!({})).await;
    prime(&app, &mut events, &sentinel).await;
    let first = app.create(json!({ "phoneNumber": "+56912345678" })).await["id"].clone();
    let mut seen = next(&mut events).await;
    while seen["contactId"] != first {
        seen = next(&mut events).await;
    }
    drop(events);

    // Missed while disconnected.
    let second = app.create(json!({ "phoneNumber": "+56912345679" })).await["id"].clone();
    app.data(PATCH, json!({ "id": second, "set": { "plan": "pro" } }))
        .await;
    app.data(
        "mutation($id: ID!) { deleteContact(id: $id) { deletedContactId } }",
        json!({ "id": first }),
    )
    .await;

    let mut resumed = subscribe(&app, EVENTS, json!({ "after": seen["cursor"] })).await;
    let replayed: Vec<(Value, Value)> = [
        next(&mut resumed).await,
        next(&mut resumed).await,
        next(&mut resumed).await,
    ]
    .into_iter()
    .map(|event| (event["kind"].clone(), event["contactId"].clone()))
    .collect();
    assert_eq!(
        replayed,
        [
            (json!("CREATED"), second.clone()),
            (json!("UPDATED"), second),
            (json!("DELETED"), first),
        ]
    );
    // Then live, without a gap.
    let third = app.create(json!({ "phoneNumber": "+56912345670" })).await["id"].clone();
    assert_eq!(next(&mut resumed).await["contactId"], third);
}

#[tokio::test]
async fn a_cursor_older_than_the_retention_is_cursor_expired() {
    let mut service = None;
    let app = TestApp::start_configured(|state: AppState| {
        service = Some(state.service.clone());
        state
    })
    .await;
    let service: ContactService = service.expect("service");
    app.create(json!({ "phoneNumber": "+56912345678" })).await;
    app.create(json!({ "phoneNumber": "+56912345679" })).await;
    let page = app
        .data("{ contactChanges { edges { cursor } } }", json!({}))
        .await;
    let old = page["contactChanges"]["edges"][0]["cursor"].clone();
    app.clock.advance(TimeDelta::days(31));
    assert_eq!(service.prune_changes().await.expect("prune"), 2);

    let mut events = subscribe(&app, EVENTS, json!({ "after": old })).await;
    let message = next_event(&mut events).await;
    assert_eq!(
        message["errors"][0]["extensions"]["code"], "CURSOR_EXPIRED",
        "{message}"
    );
}

/// Terminates this app's LISTEN connection (found by its channel, named after the schema);
/// returns how many backends were ended.
async fn kill_listener(database_url: &str) -> usize {
    use sea_orm::{ConnectionTrait, Statement};
    let db = sea_orm::Database::connect(database_url)
        .await
        .expect("connect");
    let sql = "SELECT pg_terminate_backend(pid) AS ended FROM pg_stat_activity \
               WHERE query LIKE 'LISTEN %' AND query LIKE '%contact_events:' || current_schema() || '%'";
    let rows = db
        .query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .expect("terminate");
    db.close().await.expect("close");
    rows.len()
}

#[tokio::test]
async fn killing_the_listen_connection_on_postgres_loses_no_event() {
    if !on_postgres() {
        eprintln!("SQLite has no LISTEN connection");
        return;
    }
    let app = TestApp::start().await;
    let sentinel = app.create(json!({ "phoneNumber": "+14155550100" })).await["id"].clone();
    let mut events = subscribe(&app, EVENTS, json!({})).await;
    prime(&app, &mut events, &sentinel).await;

    // Each write lands while the listener is down or reconnecting.
    let mut killed = 0;
    let mut created = HashSet::new();
    for i in 0..20 {
        killed += kill_listener(&app.database_url).await;
        let phone = format!("+569120000{i:02}");
        app.create(json!({ "phoneNumber": phone })).await;
        created.insert(phone);
    }
    assert!(killed > 0, "no LISTEN connection was found to kill");
    while !created.is_empty() {
        let event = next(&mut events).await;
        if let Some(phone) = event["contact"]["phoneNumber"].as_str() {
            created.remove(phone);
        }
    }
}
