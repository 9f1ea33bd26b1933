//! Every mutation through HTTP: the happy paths, the rules and their error codes.

mod common;

use chrono::TimeDelta;
use common::{CONTACT_FIELDS, CREATE, TestApp, at, code};
use serde_json::{Map, Value, json};

fn update_query() -> String {
    format!(
        "mutation($id: ID!, $input: UpdateContactInput!) {{ updateContact(id: $id, input: $input) {{ contact {{ {CONTACT_FIELDS} }} }} }}"
    )
}

const PATCH: &str = "mutation($id: ID!, $set: Metadata, $unset: [String!]) {
    patchContactMetadata(id: $id, set: $set, unset: $unset) { contact { metadata updatedAt } } }";
const RECORD: &str = "mutation($p: String!, $c: String, $at: DateTime) {
    recordWhatsappMessage(phoneNumber: $p, countryCode: $c, receivedAt: $at) {
      contact { id phoneNumber countryCode lastWhatsappMessageAt updatedAt createdAt } } }";
const UPSERT: &str = "mutation($input: CreateContactInput!) {
    upsertContact(input: $input) { created contact { id phoneNumber countryCode metadata lastWhatsappMessageAt } } }";
const IMPORT: &str = "mutation($rows: [CreateContactInput!]!) {
    importContacts(contacts: $rows) { created updated failed { index code message } } }";

async fn create_error(app: &TestApp, input: Value) -> Value {
    app.error(CREATE, json!({ "input": input })).await
}

#[tokio::test]
async fn create_stores_e164_and_derives_the_country() {
    let app = TestApp::start().await;
    let contact = app
        .create(json!({ "phoneNumber": "+56 9 1234 5678" }))
        .await;
    assert_eq!(contact["phoneNumber"], "+56912345678");
    assert_eq!(contact["countryCode"], "CL");
    assert_eq!(contact["metadata"], json!({}));
    assert_eq!(contact["createdAt"], common::T0);
    assert_eq!(contact["updatedAt"], common::T0);
    assert_eq!(contact["id"].as_str().unwrap().len(), 36);
}

#[tokio::test]
async fn create_accepts_possible_numbers_as_typed() {
    let app = TestApp::start().await;
    let cases = [
        (
            json!({ "phoneNumber": "+56912345678" }),
            "+56912345678",
            "CL",
        ),
        (
            json!({ "phoneNumber": "+54-9-11-2345-6789" }),
            "+5491123456789",
            "AR",
        ),
        (
            json!({ "phoneNumber": "9 8765 4321", "countryCode": "CL" }),
            "+56987654321",
            "CL",
        ),
        (
            json!({ "phoneNumber": "(415) 555-0100", "countryCode": "us" }),
            "+14155550100",
            "US",
        ),
    ];
    for (input, e164, country) in cases {
        let contact = app.create(input.clone()).await;
        assert_eq!(contact["phoneNumber"], e164, "{input}");
        assert_eq!(contact["countryCode"], country, "{input}");
    }
}

#[tokio::test]
async fn create_rejects_impossible_numbers() {
    let app = TestApp::start().await;
    for phone in [
        "+5691234",
        "+999 1234 5678",
        "hello",
        "",
        "+56 9 1234 5678 9999 99",
        "9 1234 5678",
    ] {
        let err = create_error(&app, json!({ "phoneNumber": phone })).await;
        assert_eq!(code(&err), "BAD_USER_INPUT", "{phone}");
        assert_eq!(err["extensions"]["field"], "input.phoneNumber", "{phone}");
    }
}

#[tokio::test]
async fn create_rejects_a_country_code_of_another_calling_code() {
    let app = TestApp::start().await;
    for country in ["AR", "XX", "CHL"] {
        let err = create_error(
            &app,
            json!({ "phoneNumber": "+56912345678", "countryCode": country }),
        )
        .await;
        assert_eq!(code(&err), "BAD_USER_INPUT", "{country}");
        assert_eq!(err["extensions"]["field"], "input.countryCode", "{country}");
    }
}

#[tokio::test]
async fn create_conflicts_on_the_same_number_in_any_spelling() {
    let app = TestApp::start().await;
    app.create(json!({ "phoneNumber": "+56912345678" })).await;
    let err = create_error(
        &app,
        json!({ "phoneNumber": "9 1234 5678", "countryCode": "CL" }),
    )
    .await;
    assert_eq!(code(&err), "CONFLICT");
    assert_eq!(err["extensions"]["field"], "input.phoneNumber");
}

#[tokio::test]
async fn update_changes_only_given_fields_and_null_clears() {
    let app = TestApp::start().await;
    let input = json!({ "phoneNumber": "+56912345678", "metadata": { "a": "1" }, "lastWhatsappMessageAt": "2026-11-24T11:00:00Z" });
    let contact = app.create(input).await;
    app.clock.advance(TimeDelta::minutes(5));
    let updated = app
        .data(
            &update_query(),
            json!({ "id": contact["id"], "input": { "metadata": { "b": "2" } } }),
        )
        .await;
    let updated = &updated["updateContact"]["contact"];
    assert_eq!(updated["metadata"], json!({ "b": "2" }));
    assert_eq!(updated["phoneNumber"], "+56912345678");
    assert_eq!(updated["countryCode"], "CL");
    assert_eq!(updated["lastWhatsappMessageAt"], "2026-11-24T11:00:00Z");
    assert_eq!(updated["updatedAt"], "2026-11-24T12:05:00Z");
    assert_eq!(updated["createdAt"], common::T0);
    let cleared = app
        .data(
            &update_query(),
            json!({ "id": contact["id"], "input": { "countryCode": null, "lastWhatsappMessageAt": null, "metadata": null } }),
        )
        .await;
    let cleared = &cleared["updateContact"]["contact"];
    assert_eq!(cleared["countryCode"], Value::Null);
    assert_eq!(cleared["lastWhatsappMessageAt"], Value::Null);
    assert_eq!(cleared["whatsappWindowOpen"], false);
    assert_eq!(cleared["metadata"], json!({}));
}

#[tokio::test]
async fn update_of_the_number_derives_the_country_again() {
    let app = TestApp::start().await;
    let contact = app.create(json!({ "phoneNumber": "+56912345678" })).await;
    let data = app
        .data(
            &update_query(),
            json!({ "id": contact["id"], "input": { "phoneNumber": "+44 20 7183 8750" } }),
        )
        .await;
    assert_eq!(
        data["updateContact"]["contact"]["phoneNumber"],
        "+442071838750"
    );
    assert_eq!(data["updateContact"]["contact"]["countryCode"], "GB");
}

#[tokio::test]
async fn update_rejects_bad_values_and_conflicts() {
    let app = TestApp::start().await;
    let first = app.create(json!({ "phoneNumber": "+56912345678" })).await;
    app.create(json!({ "phoneNumber": "+56987654321" })).await;
    let cases = [
        (
            json!({ "phoneNumber": "+56987654321" }),
            "CONFLICT",
            "input.phoneNumber",
        ),
        (
            json!({ "phoneNumber": null }),
            "BAD_USER_INPUT",
            "input.phoneNumber",
        ),
        (
            json!({ "phoneNumber": "nope" }),
            "BAD_USER_INPUT",
            "input.phoneNumber",
        ),
        (
            json!({ "countryCode": "US" }),
            "BAD_USER_INPUT",
            "input.countryCode",
        ),
        (
            json!({ "metadata": { "k": "v".repeat(501) } }),
            "BAD_USER_INPUT",
            "input.metadata",
        ),
        (
            json!({ "lastWhatsappMessageAt": "2026-11-24T12:05:00.000001Z" }),
            "BAD_USER_INPUT",
            "input.lastWhatsappMessageAt",
        ),
    ];
    for (input, expected, field) in cases {
        let err = app
            .error(
                &update_query(),
                json!({ "id": first["id"], "input": input }),
            )
            .await;
        assert_eq!(code(&err), expected, "{input}");
        assert_eq!(err["extensions"]["field"], field, "{input}");
    }
    let unchanged = app
        .data(
            "query($id: ID!) { contact(id: $id) { phoneNumber metadata } }",
            json!({ "id": first["id"] }),
        )
        .await;
    assert_eq!(
        unchanged["contact"],
        json!({ "phoneNumber": "+56912345678", "metadata": {} })
    );
}

#[tokio::test]
async fn update_of_an_absent_contact_is_not_found() {
    let app = TestApp::start().await;
    let err = app
        .error(
            &update_query(),
            json!({ "id": "01a21129-9a1f-76f2-812b-f8c0d93f783d", "input": {} }),
        )
        .await;
    assert_eq!(code(&err), "NOT_FOUND");
}

#[tokio::test]
async fn delete_returns_the_id_then_not_found() {
    let app = TestApp::start().await;
    let contact = app.create(json!({ "phoneNumber": "+56912345678" })).await;
    let query = "mutation($id: ID!) { deleteContact(id: $id) { deletedContactId } }";
    let data = app.data(query, json!({ "id": contact["id"] })).await;
    assert_eq!(data["deleteContact"]["deletedContactId"], contact["id"]);
    let err = app.error(query, json!({ "id": contact["id"] })).await;
    assert_eq!(code(&err), "NOT_FOUND");
    let gone = app
        .data(
            "query($id: ID!) { contact(id: $id) { id } }",
            json!({ "id": contact["id"] }),
        )
        .await;
    assert_eq!(gone["contact"], Value::Null);
}

#[tokio::test]
async fn upsert_creates_then_updates_keeping_absent_fields() {
    let app = TestApp::start().await;
    let input = json!({ "phoneNumber": "+56912345678", "metadata": { "a": "1" }, "lastWhatsappMessageAt": "2026-11-24T11:00:00Z" });
    let first = app.data(UPSERT, json!({ "input": input })).await["upsertContact"].clone();
    assert_eq!(first["created"], true);
    let second = app
        .data(
            UPSERT,
            json!({ "input": { "phoneNumber": "+56 9 1234 5678" } }),
        )
        .await["upsertContact"]
        .clone();
    assert_eq!(second["created"], false);
    assert_eq!(second["contact"]["id"], first["contact"]["id"]);
    assert_eq!(second["contact"]["metadata"], json!({ "a": "1" }));
    assert_eq!(
        second["contact"]["lastWhatsappMessageAt"],
        "2026-11-24T11:00:00Z"
    );
    let third = app
        .data(
            UPSERT,
            json!({ "input": { "phoneNumber": "+56912345678", "metadata": { "b": "2" } } }),
        )
        .await;
    assert_eq!(
        third["upsertContact"]["contact"]["metadata"],
        json!({ "b": "2" })
    );
}

#[tokio::test]
async fn patch_merges_and_unsets_keys() {
    let app = TestApp::start().await;
    let contact = app
        .create(json!({ "phoneNumber": "+56912345678", "metadata": { "a": "1", "b": "2" } }))
        .await;
    app.clock.advance(TimeDelta::seconds(1));
    let data = app
        .data(PATCH, json!({ "id": contact["id"], "set": { "b": "20", "c": "3" }, "unset": ["a", "missing"] }))
        .await;
    assert_eq!(
        data["patchContactMetadata"]["contact"]["metadata"],
        json!({ "b": "20", "c": "3" })
    );
    assert_eq!(
        data["patchContactMetadata"]["contact"]["updatedAt"],
        "2026-11-24T12:00:01Z"
    );
}

#[tokio::test]
async fn patch_rejects_set_and_unset_of_one_key() {
    let app = TestApp::start().await;
    let contact = app.create(json!({ "phoneNumber": "+56912345678" })).await;
    let err = app
        .error(
            PATCH,
            json!({ "id": contact["id"], "set": { "a": "1" }, "unset": ["a"] }),
        )
        .await;
    assert_eq!(code(&err), "BAD_USER_INPUT");
    assert_eq!(err["extensions"]["field"], "unset");
}

#[tokio::test]
async fn patch_beyond_50_keys_is_rejected_and_changes_nothing() {
    let app = TestApp::start().await;
    let full: Map<String, Value> = (0..50).map(|i| (format!("k{i}"), json!("v"))).collect();
    let contact = app
        .create(json!({ "phoneNumber": "+56912345678", "metadata": full }))
        .await;
    let err = app
        .error(
            PATCH,
            json!({ "id": contact["id"], "set": { "one-more": "v" } }),
        )
        .await;
    assert_eq!(code(&err), "BAD_USER_INPUT");
    let stored = app
        .data(
            "query($id: ID!) { contact(id: $id) { metadata } }",
            json!({ "id": contact["id"] }),
        )
        .await;
    assert_eq!(stored["contact"]["metadata"].as_object().unwrap().len(), 50);
    assert!(stored["contact"]["metadata"].get("one-more").is_none());
    let replaced = app
        .data(
            PATCH,
            json!({ "id": contact["id"], "set": { "one-more": "v" }, "unset": ["k0"] }),
        )
        .await;
    assert_eq!(
        replaced["patchContactMetadata"]["contact"]["metadata"]
            .as_object()
            .unwrap()
            .len(),
        50
    );
}

#[tokio::test]
async fn patch_of_an_absent_contact_is_not_found() {
    let app = TestApp::start().await;
    let err = app
        .error(
            PATCH,
            json!({ "id": "01a21129-9a1f-76f2-812b-f8c0d93f783d", "set": { "a": "1" } }),
        )
        .await;
    assert_eq!(code(&err), "NOT_FOUND");
}

#[tokio::test]
async fn record_creates_the_contact_at_now() {
    let app = TestApp::start().await;
    let data = app.data(RECORD, json!({ "p": "+56 9 1234 5678" })).await;
    let contact = &data["recordWhatsappMessage"]["contact"];
    assert_eq!(contact["phoneNumber"], "+56912345678");
    assert_eq!(contact["countryCode"], "CL");
    assert_eq!(contact["lastWhatsappMessageAt"], common::T0);
    assert_eq!(contact["createdAt"], common::T0);
}

#[tokio::test]
async fn record_never_moves_the_last_message_backwards() {
    let app = TestApp::start().await;
    app.data(
        RECORD,
        json!({ "p": "+56912345678", "at": "2026-11-24T11:00:00Z" }),
    )
    .await;
    app.clock.advance(TimeDelta::minutes(1));
    let late = app
        .data(
            RECORD,
            json!({ "p": "+56912345678", "at": "2026-11-24T10:00:00Z" }),
        )
        .await;
    let contact = &late["recordWhatsappMessage"]["contact"];
    assert_eq!(contact["lastWhatsappMessageAt"], "2026-11-24T11:00:00Z");
    assert_eq!(
        contact["updatedAt"],
        common::T0,
        "a stale delivery must not touch updatedAt"
    );
    let newer = app
        .data(
            RECORD,
            json!({ "p": "+56912345678", "at": "2026-11-24T11:30:00Z" }),
        )
        .await;
    assert_eq!(
        newer["recordWhatsappMessage"]["contact"]["lastWhatsappMessageAt"],
        "2026-11-24T11:30:00Z"
    );
    assert_eq!(
        newer["recordWhatsappMessage"]["contact"]["updatedAt"],
        "2026-11-24T12:01:00Z"
    );
}

#[tokio::test]
async fn record_accepts_five_minutes_ahead_and_rejects_more() {
    let app = TestApp::start().await;
    let limit = (at(common::T0) + TimeDelta::minutes(5)).to_rfc3339();
    app.data(RECORD, json!({ "p": "+56912345678", "at": limit }))
        .await;
    let beyond = (at(common::T0) + TimeDelta::minutes(5) + TimeDelta::microseconds(1)).to_rfc3339();
    let err = app
        .error(RECORD, json!({ "p": "+56912345678", "at": beyond }))
        .await;
    assert_eq!(code(&err), "BAD_USER_INPUT");
    assert_eq!(err["extensions"]["field"], "receivedAt");
}

#[tokio::test]
async fn record_rejects_bad_numbers() {
    let app = TestApp::start().await;
    let err = app.error(RECORD, json!({ "p": "+999 1" })).await;
    assert_eq!(code(&err), "BAD_USER_INPUT");
    assert_eq!(err["extensions"]["field"], "phoneNumber");
}

#[tokio::test]
async fn import_reports_bad_rows_and_imports_the_rest() {
    let app = TestApp::start().await;
    app.create(json!({ "phoneNumber": "+56911111111" })).await;
    let rows = json!([
        { "phoneNumber": "+56911111111", "metadata": { "from": "import" } },
        { "phoneNumber": "not a number" },
        { "phoneNumber": "+56922222222" },
        { "phoneNumber": "+56933333333", "metadata": { "": "empty key" } },
        { "phoneNumber": "+56944444444", "countryCode": "US" },
        { "phoneNumber": "+44 20 7183 8750" }
    ]);
    let data = app.data(IMPORT, json!({ "rows": rows })).await;
    let report = &data["importContacts"];
    assert_eq!(report["created"], 2);
    assert_eq!(report["updated"], 1);
    let failed = report["failed"].as_array().unwrap();
    let indexes: Vec<i64> = failed
        .iter()
        .map(|f| f["index"].as_i64().unwrap())
        .collect();
    assert_eq!(indexes, [1, 3, 4]);
    assert!(
        failed
            .iter()
            .all(|f| f["code"] == "BAD_USER_INPUT" && !f["message"].as_str().unwrap().is_empty())
    );
    assert!(
        failed[0]["message"]
            .as_str()
            .unwrap()
            .contains("contacts.1.phoneNumber")
    );
    let stats = app.data("{ contactStats { total } contactByPhoneNumber(phoneNumber: \"+56911111111\") { metadata } }", json!({})).await;
    assert_eq!(stats["contactStats"]["total"], 3);
    assert_eq!(
        stats["contactByPhoneNumber"]["metadata"],
        json!({ "from": "import" })
    );
}

#[tokio::test]
async fn import_takes_at_most_1000_rows() {
    let app = TestApp::start().await;
    let rows: Vec<Value> = (0..1001)
        .map(|i| json!({ "phoneNumber": format!("+1415555{:04}", i) }))
        .collect();
    let err = app.error(IMPORT, json!({ "rows": rows })).await;
    assert_eq!(code(&err), "BAD_USER_INPUT");
    assert_eq!(err["extensions"]["field"], "contacts");
    let ok = app.data(IMPORT, json!({ "rows": rows[..1000] })).await;
    assert_eq!(ok["importContacts"]["created"], 1000);
}

#[tokio::test]
async fn metadata_limits_are_enforced() {
    let app = TestApp::start().await;
    let keys = |n: usize| -> Map<String, Value> {
        (0..n).map(|i| (format!("k{i}"), json!("v"))).collect()
    };
    let ok = [
        json!(keys(50)),
        json!({ "k".repeat(40): "v" }),
        json!({ "k": "é".repeat(500) }),
        json!({}),
    ];
    for (i, metadata) in ok.into_iter().enumerate() {
        app.create(json!({ "phoneNumber": format!("+5691111111{i}"), "metadata": metadata }))
            .await;
    }
    let bad = [
        json!(keys(51)),
        json!({ "k".repeat(41): "v" }),
        json!({ "": "v" }),
        json!({ "k": "v".repeat(501) }),
        json!({ "k": 1 }),
        json!({ "k": null }),
        json!({ "k": ["v"] }),
    ];
    for metadata in bad {
        let err = create_error(
            &app,
            json!({ "phoneNumber": "+56922222222", "metadata": metadata }),
        )
        .await;
        assert_eq!(code(&err), "BAD_USER_INPUT", "{metadata}");
        assert_eq!(err["extensions"]["field"], "input.metadata", "{metadata}");
    }
    for metadata in [json!("a string"), json!([1, 2])] {
        let err = create_error(
            &app,
            json!({ "phoneNumber": "+56922222222", "metadata": metadata }),
        )
        .await;
        assert_eq!(code(&err), "BAD_USER_INPUT", "{metadata}");
    }
}

#[tokio::test]
async fn invalid_datetimes_are_bad_user_input_as_literals_and_variables() {
    let app = TestApp::start().await;
    let literal = app
        .error("mutation { recordWhatsappMessage(phoneNumber: \"+56912345678\", receivedAt: \"yesterday\") { contact { id } } }", json!({}))
        .await;
    assert_eq!(code(&literal), "BAD_USER_INPUT");
    assert_eq!(literal["extensions"]["field"], "receivedAt");
    let variable = app
        .error(
            RECORD,
            json!({ "p": "+56912345678", "at": "2026-13-01T00:00:00Z" }),
        )
        .await;
    assert_eq!(code(&variable), "BAD_USER_INPUT");
    assert_eq!(variable["extensions"]["field"], "receivedAt");
    let nested = create_error(
        &app,
        json!({ "phoneNumber": "+56912345678", "lastWhatsappMessageAt": "noon" }),
    )
    .await;
    assert_eq!(code(&nested), "BAD_USER_INPUT");
    assert_eq!(nested["extensions"]["field"], "input.lastWhatsappMessageAt");
}
