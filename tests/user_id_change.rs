//! `recordWhatsappUserIdChange`: the BSUID moves, the old one keeps finding the contact, a
//! replay or a late change moves nothing, and a contact already holding the new BSUID is
//! merged.

mod common;

use chrono::TimeDelta;
use common::{TestApp, code};
use serde_json::{Value, json};

const FIELDS: &str = "id phoneNumber whatsappUserId previousWhatsappUserIds lastWhatsappMessageAt updatedAt metadata";

fn change_query() -> String {
    format!(
        "mutation($prev: String!, $next: String!, $phone: String, $at: DateTime) {{
         recordWhatsappUserIdChange(previousWhatsappUserId: $prev, whatsappUserId: $next,
         phoneNumber: $phone, at: $at) {{ contact {{ {FIELDS} }} }} }}"
    )
}

async fn change(app: &TestApp, prev: &str, next: &str, phone: Value) -> Value {
    let vars = json!({ "prev": prev, "next": next, "phone": phone });
    app.data(&change_query(), vars).await["recordWhatsappUserIdChange"]["contact"].clone()
}

async fn inbound(app: &TestApp, input: Value) -> Value {
    let query = format!(
        "mutation($input: RecordWhatsappInboundInput!) {{ recordWhatsappInbound(input: $input) {{ contact {{ {FIELDS} }} }} }}"
    );
    app.data(&query, json!({ "input": input })).await["recordWhatsappInbound"]["contact"].clone()
}

async fn by_user_id(app: &TestApp, id: &str) -> Value {
    let query = format!(
        "query($id: String!) {{ contactByWhatsappUserId(whatsappUserId: $id) {{ {FIELDS} }} }}"
    );
    app.data(&query, json!({ "id": id })).await["contactByWhatsappUserId"].clone()
}

async fn count(app: &TestApp) -> i64 {
    app.data("{ contacts { totalCount } }", json!({})).await["contacts"]["totalCount"]
        .as_i64()
        .unwrap()
}

#[tokio::test]
async fn the_bsuid_moves_and_the_old_one_still_finds_the_contact() {
    let app = TestApp::start().await;
    let before = inbound(
        &app,
        json!({ "whatsappUserId": "US.1", "phoneNumber": "+14155550101",
                "receivedAt": "2026-11-24T10:00:00Z" }),
    )
    .await;
    app.clock.advance(TimeDelta::minutes(1));
    let moved = change(&app, "US.1", "US.2", json!("+14155550102")).await;
    assert_eq!(moved["id"], before["id"]);
    assert_eq!(moved["whatsappUserId"], "US.2");
    assert_eq!(moved["phoneNumber"], "+14155550102");
    assert_eq!(moved["previousWhatsappUserIds"], json!(["US.1"]));
    assert_eq!(by_user_id(&app, "US.1").await["id"], before["id"]);
    assert_eq!(by_user_id(&app, "US.2").await["id"], before["id"]);

    // A replay changes nothing, not even updatedAt.
    app.clock.advance(TimeDelta::minutes(1));
    let replay = change(&app, "US.1", "US.2", json!("+14155550102")).await;
    assert_eq!(replay, moved);

    // A late webhook carrying the old BSUID finds the contact.
    let late = inbound(
        &app,
        json!({ "whatsappUserId": "US.1", "receivedAt": "2026-11-24T11:00:00Z" }),
    )
    .await;
    assert_eq!(late["id"], before["id"]);
    assert_eq!(late["whatsappUserId"], "US.2");
    assert_eq!(late["lastWhatsappMessageAt"], "2026-11-24T11:00:00Z");
    assert_eq!(count(&app).await, 1);
}

#[tokio::test]
async fn a_change_to_a_bsuid_already_left_behind_moves_nothing() {
    let app = TestApp::start().await;
    inbound(&app, json!({ "whatsappUserId": "CL.1" })).await;
    change(&app, "CL.1", "CL.2", Value::Null).await;
    app.clock.advance(TimeDelta::minutes(1));
    let latest = change(&app, "CL.2", "CL.3", Value::Null).await;
    let late = change(&app, "CL.1", "CL.2", Value::Null).await;
    assert_eq!(late, latest);
    assert_eq!(late["whatsappUserId"], "CL.3");
    assert_eq!(late["previousWhatsappUserIds"], json!(["CL.1", "CL.2"]));
}

#[tokio::test]
async fn a_contact_already_holding_the_new_bsuid_is_merged_into_the_older() {
    let app = TestApp::start().await;
    let older = inbound(&app, json!({ "whatsappUserId": "BR.1" })).await;
    app.clock.advance(TimeDelta::minutes(1));
    let newer = app
        .create(json!({ "phoneNumber": "+5511987654321", "metadata": { "tier": "gold" } }))
        .await;
    inbound(
        &app,
        json!({ "whatsappUserId": "BR.2", "phoneNumber": "+5511987654321" }),
    )
    .await;
    let merged = change(&app, "BR.1", "BR.2", Value::Null).await;
    assert_eq!(merged["id"], older["id"]);
    assert_eq!(merged["whatsappUserId"], "BR.2");
    assert_eq!(merged["phoneNumber"], "+5511987654321");
    assert_eq!(merged["metadata"], json!({ "tier": "gold" }));
    assert_eq!(merged["previousWhatsappUserIds"], json!(["BR.1"]));
    assert_eq!(count(&app).await, 1);
    let gone = app
        .data(
            "query($id: ID!) { node(id: $id) { id } }",
            json!({ "id": newer["id"] }),
        )
        .await;
    assert_eq!(gone["node"], Value::Null);
}

#[tokio::test]
async fn an_unknown_user_becomes_a_contact_and_bad_ids_name_their_argument() {
    let app = TestApp::start().await;
    let created = change(&app, "MX.8", "MX.9", json!("+525512345678")).await;
    assert_eq!(created["whatsappUserId"], "MX.9");
    assert_eq!(created["previousWhatsappUserIds"], json!(["MX.8"]));
    assert_eq!(by_user_id(&app, "MX.8").await["id"], created["id"]);
    for (prev, next, field) in [
        ("MX.9", "MX.9", "whatsappUserId"),
        ("MX9", "MX.10", "previousWhatsappUserId"),
        ("MX.9", "mx.10", "whatsappUserId"),
    ] {
        let err = app
            .error(&change_query(), json!({ "prev": prev, "next": next }))
            .await;
        assert_eq!(code(&err), "BAD_USER_INPUT", "{err}");
        assert_eq!(err["extensions"]["field"], field);
    }
}

#[tokio::test]
async fn an_older_change_delivered_late_does_not_undo_a_newer_one() {
    let app = TestApp::start().await;
    inbound(&app, json!({ "whatsappUserId": "US.70" })).await;
    let at = |day: &str| json!(format!("2026-11-{day}T10:00:00Z"));
    let vars = |next: &str, day: &str| json!({ "prev": "US.70", "next": next, "phone": null, "at": at(day) });
    let newer = app.data(&change_query(), vars("US.71", "23")).await;
    assert_eq!(
        newer["recordWhatsappUserIdChange"]["contact"]["whatsappUserId"],
        "US.71"
    );
    let late = app.data(&change_query(), vars("US.72", "22")).await;
    let contact = &late["recordWhatsappUserIdChange"]["contact"];
    assert_eq!(contact["whatsappUserId"], "US.71", "{late}");
    assert_eq!(by_user_id(&app, "US.72").await, Value::Null);
    assert_eq!(count(&app).await, 1);
}

#[tokio::test]
async fn a_change_after_a_merge_moves_to_the_bsuid_the_merge_made_current() {
    let app = TestApp::start().await;
    let first = inbound(
        &app,
        json!({ "whatsappUserId": "US.80", "phoneNumber": "+14155550180" }),
    )
    .await;
    app.clock.advance(TimeDelta::minutes(1));
    inbound(&app, json!({ "whatsappUserId": "US.81" })).await;
    app.clock.advance(TimeDelta::minutes(1));
    // One event names both: the older contact survives, holding the identities it names.
    let merged = inbound(
        &app,
        json!({ "whatsappUserId": "US.81", "phoneNumber": "+14155550180" }),
    )
    .await;
    assert_eq!(merged["id"], first["id"]);
    assert_eq!(merged["whatsappUserId"], "US.81");
    assert_eq!(merged["previousWhatsappUserIds"], json!(["US.80"]));
    app.clock.advance(TimeDelta::minutes(1));
    let changed = change(&app, "US.80", "US.81", json!("+14155550180")).await;
    assert_eq!(changed["id"], first["id"]);
    assert_eq!(changed["whatsappUserId"], "US.81");
    assert_eq!(by_user_id(&app, "US.81").await["id"], first["id"]);
    assert_eq!(by_user_id(&app, "US.80").await["id"], first["id"]);
    assert_eq!(count(&app).await, 1);
}
