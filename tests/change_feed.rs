//! The change feed (`contactChanges`): every committed change exactly once in commit order,
//! opaque cursors, polling from an empty page, retention and `CURSOR_EXPIRED`.

mod common;

use std::sync::{Arc, Mutex};

use chrono::TimeDelta;
use common::{TestApp, code};
use contacts_server::contacts::ContactService;
use serde_json::{Value, json};

const CHANGES: &str = "query($after: String, $first: Int) { contactChanges(after: $after, first: $first) {
    edges { cursor node { cursor kind contactId mergedContactId at contact { id phoneNumber metadata } } }
    nodes { contactId }
    pageInfo { hasNextPage endCursor } } }";
/// A page of changes without the contacts' metadata: 1,000 changes fit the complexity limit.
const LIGHT: &str =
    "query($after: String, $first: Int) { contactChanges(after: $after, first: $first) {
    nodes { cursor kind contactId mergedContactId at contact { id phoneNumber } }
    pageInfo { hasNextPage endCursor } } }";
const PATCH: &str = "mutation($id: ID!, $set: Metadata) { patchContactMetadata(id: $id, set: $set) { contact { id } } }";
const DELETE: &str = "mutation($id: ID!) { deleteContact(id: $id) { deletedContactId } }";

/// One page: its edges' nodes and its end cursor.
async fn page(app: &TestApp, after: &Value, first: Option<i64>) -> (Vec<Value>, Value, bool) {
    let data = app
        .data(CHANGES, json!({ "after": after, "first": first }))
        .await;
    let connection = &data["contactChanges"];
    let edges = connection["edges"].as_array().expect("edges").clone();
    for edge in &edges {
        assert_eq!(edge["cursor"], edge["node"]["cursor"]);
    }
    assert_eq!(
        connection["nodes"].as_array().map(Vec::len),
        Some(edges.len())
    );
    let nodes = edges.into_iter().map(|edge| edge["node"].clone()).collect();
    let info = &connection["pageInfo"];
    (
        nodes,
        info["endCursor"].clone(),
        info["hasNextPage"] == json!(true),
    )
}

#[tokio::test]
async fn creates_updates_and_deletes_appear_once_in_order_with_the_contact_as_of_each() {
    let app = TestApp::start().await;
    let (empty, start, more) = page(&app, &Value::Null, None).await;
    assert!(empty.is_empty() && !more);
    assert!(
        start.is_string(),
        "an empty log still gives a cursor to poll from"
    );

    let id = app.create(json!({ "phoneNumber": "+56912345678" })).await["id"].clone();
    app.data(PATCH, json!({ "id": id, "set": { "plan": "pro" } }))
        .await;
    app.data(DELETE, json!({ "id": id })).await;

    let (changes, end, more) = page(&app, &start, None).await;
    assert!(!more);
    let kinds: Vec<&Value> = changes.iter().map(|change| &change["kind"]).collect();
    assert_eq!(
        kinds,
        [&json!("CREATED"), &json!("UPDATED"), &json!("DELETED")]
    );
    assert!(changes.iter().all(|change| change["contactId"] == id));
    assert_eq!(changes[0]["contact"]["metadata"], json!({}));
    assert_eq!(changes[1]["contact"]["metadata"], json!({ "plan": "pro" }));
    assert_eq!(changes[2]["contact"], Value::Null);
    assert_eq!(changes[0]["at"], common::T0);
    assert_eq!(changes[0]["mergedContactId"], Value::Null);

    // Paging by one gives the same changes; an empty page says where to poll from.
    let (first, cursor, more) = page(&app, &start, Some(1)).await;
    assert_eq!((first.len(), more), (1, true));
    let (rest, _, _) = page(&app, &cursor, None).await;
    assert_eq!(rest.len(), 2);
    assert_eq!(rest[0]["kind"], "UPDATED");
    let (nothing, poll_from, _) = page(&app, &end, None).await;
    assert!(nothing.is_empty());
    assert_eq!(poll_from, end);
    app.create(json!({ "phoneNumber": "+56912345679" })).await;
    let (next, _, _) = page(&app, &poll_from, None).await;
    assert_eq!(next.len(), 1);
    assert_eq!(next[0]["contact"]["phoneNumber"], "+56912345679");
}

#[tokio::test]
async fn bad_arguments_are_bad_user_input_naming_the_field() {
    let app = TestApp::start().await;
    for (variables, field) in [
        (json!({ "first": 0 }), "first"),
        (json!({ "first": 1001 }), "first"),
        (json!({ "after": "not-a-cursor" }), "after"),
        // A `contacts` cursor is not a change-feed cursor.
        (json!({ "after": "WyJDUkVBVEVEX0FUIl0" }), "after"),
    ] {
        let error = app.error(LIGHT, variables.clone()).await;
        assert_eq!(code(&error), "BAD_USER_INPUT", "{variables}");
        assert_eq!(error["extensions"]["field"], field, "{variables}");
    }
    let (_, body) = app.post(LIGHT, json!({ "first": 1000 })).await;
    assert!(
        body.get("errors").is_none(),
        "first: 1000 is allowed: {body}"
    );
    // 1,000 contacts' metadata is charged per contact, as in `contacts`: over the limit.
    let error = app.error(CHANGES, json!({ "first": 1000 })).await;
    assert_eq!(code(&error), "GRAPHQL_VALIDATION_FAILED", "{error}");
    assert_eq!(error["message"], "Query is too complex.", "{error}");
}

/// An app whose service the test can reach (to prune), on a fresh database.
async fn app_with_service() -> (TestApp, ContactService) {
    let slot: Arc<Mutex<Option<ContactService>>> = Arc::default();
    let keep = slot.clone();
    let app = TestApp::start_configured(move |state| {
        *keep.lock().unwrap() = Some(state.service.clone());
        state
    })
    .await;
    let service = slot.lock().unwrap().take().expect("service");
    (app, service)
}

#[tokio::test]
async fn a_cursor_older_than_the_retention_is_expired_and_newer_ones_are_not() {
    let (app, service) = app_with_service().await;
    assert_eq!(service.change_retention(), TimeDelta::days(30));
    let (_, start, _) = page(&app, &Value::Null, None).await;
    app.create(json!({ "phoneNumber": "+56912345678" })).await;
    let (_, old, _) = page(&app, &start, None).await;

    app.clock.advance(TimeDelta::days(20));
    app.create(json!({ "phoneNumber": "+56912345679" })).await;
    let (_, recent, _) = page(&app, &old, None).await;
    assert_eq!(
        service.prune_changes().await.unwrap(),
        0,
        "nothing is old yet"
    );

    app.clock.advance(TimeDelta::days(11));
    assert_eq!(service.prune_changes().await.unwrap(), 1);
    let error = app.error(CHANGES, json!({ "after": start })).await;
    assert_eq!(code(&error), "CURSOR_EXPIRED", "{error}");
    // The cursor right after the pruned change still lacks nothing.
    let (changes, _, _) = page(&app, &old, None).await;
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0]["contact"]["phoneNumber"], "+56912345679");
    let (nothing, _, _) = page(&app, &recent, None).await;
    assert!(nothing.is_empty());
    // Without a cursor the feed starts at the oldest change kept.
    let (kept, _, _) = page(&app, &Value::Null, None).await;
    assert_eq!(kept.len(), 1);

    // With every change pruned, positions still grow (never reused), so a cursor taken
    // before the prune still sees what follows it.
    app.clock.advance(TimeDelta::days(31));
    assert_eq!(service.prune_changes().await.unwrap(), 1);
    let (none, head, _) = page(&app, &Value::Null, None).await;
    assert!(none.is_empty());
    assert_eq!(
        head, recent,
        "an empty log resumes from the newest position pruned"
    );
    app.create(json!({ "phoneNumber": "+56912345670" })).await;
    let (after_prune, _, _) = page(&app, &recent, None).await;
    assert_eq!(after_prune.len(), 1);
    assert_eq!(after_prune[0]["contact"]["phoneNumber"], "+56912345670");
}

const INBOUND: &str =
    "mutation($input: RecordWhatsappInboundInput!) { recordWhatsappInbound(input: $input) {
    contact { id } } }";

#[tokio::test]
async fn a_merge_is_one_merged_change_naming_both_contacts() {
    let app = TestApp::start().await;
    let inbound = |input: Value| {
        let app = &app;
        async move {
            app.data(INBOUND, json!({ "input": input })).await["recordWhatsappInbound"]["contact"]
                ["id"]
                .clone()
        }
    };
    let older =
        inbound(json!({ "whatsappUserId": "CL.77", "receivedAt": "2026-11-24T09:00:00Z" })).await;
    let newer = app.create(json!({ "phoneNumber": "+56933333333" })).await["id"].clone();
    let (before, cursor, _) = page(&app, &Value::Null, None).await;
    assert_eq!(before.len(), 2);

    let merged = inbound(
        json!({ "whatsappUserId": "CL.77", "phoneNumber": "+56933333333",
        "receivedAt": "2026-11-24T12:00:00Z" }),
    )
    .await;
    assert_eq!(merged, older);
    let (changes, _, _) = page(&app, &cursor, None).await;
    let merges: Vec<&Value> = changes.iter().filter(|c| c["kind"] == "MERGED").collect();
    assert_eq!(merges.len(), 1, "{changes:?}");
    assert_eq!(merges[0]["contactId"], older);
    assert_eq!(merges[0]["mergedContactId"], newer);
    assert_eq!(merges[0]["contact"]["phoneNumber"], "+56933333333");
    assert!(
        changes.iter().all(|c| c["kind"] != "DELETED"),
        "a merge sends no separate DELETED: {changes:?}"
    );
}
