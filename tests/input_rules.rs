//! Input the outside review broke the API with, through HTTP on either backend: text
//! PostgreSQL cannot store, a database error in one imported row, country codes an upsert
//! overwrote or that are not ISO 3166-1, Italian landlines, digits of other scripts, and
//! timestamps outside what both backends order alike.

mod common;

use common::{CREATE, TestApp, code};
use serde_json::{Value, json};

const UPSERT: &str = "mutation($input: CreateContactInput!) {
    upsertContact(input: $input) { created contact { countryCode } } }";
const IMPORT: &str = "mutation($rows: [CreateContactInput!]!) {
    importContacts(contacts: $rows) { created updated failed { index code message } } }";
const PATCH: &str = "mutation($id: ID!, $set: Metadata, $unset: [String!]) {
    patchContactMetadata(id: $id, set: $set, unset: $unset) { contact { metadata } } }";
const RECORD: &str = "mutation($p: String!, $c: String, $at: DateTime) {
    recordWhatsappMessage(phoneNumber: $p, countryCode: $c, receivedAt: $at) { contact { id } } }";
const LIST: &str = "query($filter: ContactFilter) { contacts(first: 10, filter: $filter) {
    nodes { phoneNumber countryCode } } }";
const BY_PHONE: &str =
    "query($p: String!) { contactByPhoneNumber(phoneNumber: $p) { countryCode } }";
const UPDATE: &str = "mutation($id: ID!, $input: UpdateContactInput!) {
    updateContact(id: $id, input: $input) { contact { countryCode } } }";

/// Asserts `error` is `BAD_USER_INPUT` on `field`.
fn assert_bad_input(error: &Value, field: &str) {
    assert_eq!(code(error), "BAD_USER_INPUT", "{error}");
    assert_eq!(error["extensions"]["field"], field, "{error}");
}

async fn total(app: &TestApp) -> Value {
    app.data("{ contactStats { total } }", json!({})).await["contactStats"]["total"].clone()
}

#[tokio::test]
async fn nul_in_metadata_is_bad_user_input_everywhere_metadata_goes() {
    let app = TestApp::start().await;
    for metadata in [json!({ "k\u{0}": "v" }), json!({ "k": "v\u{0}" })] {
        let input = json!({ "phoneNumber": "+56912345678", "metadata": metadata });
        let error = app.error(CREATE, json!({ "input": input })).await;
        assert_bad_input(&error, "input.metadata");
        let filter = json!({ "filter": { "metadata": metadata } });
        assert_bad_input(&app.error(LIST, filter).await, "filter.metadata");
    }
    let id = app.create(json!({ "phoneNumber": "+56912345678" })).await["id"].clone();
    let set = app
        .error(PATCH, json!({ "id": id, "set": { "k": "\u{0}" } }))
        .await;
    assert_bad_input(&set, "set");
    let unset = app
        .error(PATCH, json!({ "id": id, "unset": ["\u{0}"] }))
        .await;
    assert_bad_input(&unset, "unset");
    let key = app
        .error(
            CREATE,
            json!({ "input": { "phoneNumber": "+56912345679", "metadata": { "a\nb": "v" } } }),
        )
        .await;
    assert_bad_input(&key, "input.metadata");
    // Values keep line breaks and tabs.
    let notes = json!({ "notes": "one\n\ttwo\r\n" });
    let contact = app
        .create(json!({ "phoneNumber": "+56912345670", "metadata": notes }))
        .await;
    assert_eq!(contact["metadata"], notes);
}

#[tokio::test]
async fn an_import_row_with_nul_fails_alone() {
    let app = TestApp::start().await;
    let rows = json!([
        { "phoneNumber": "+56911111111" },
        { "phoneNumber": "+56922222222", "metadata": { "k": "a\u{0}b" } },
        { "phoneNumber": "+56933333333", "metadata": { "ok": "yes" } }
    ]);
    let report = app.data(IMPORT, json!({ "rows": rows })).await["importContacts"].clone();
    assert_eq!(report["created"], 2, "{report}");
    assert_eq!(report["failed"].as_array().unwrap().len(), 1, "{report}");
    assert_eq!(report["failed"][0]["index"], 1);
    assert_eq!(report["failed"][0]["code"], "BAD_USER_INPUT");
    assert!(
        report["failed"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("contacts.1.metadata: ")
    );
    assert_eq!(total(&app).await, 2);
}

#[tokio::test]
async fn a_row_the_database_refuses_fails_alone_and_the_others_are_imported() {
    let app = TestApp::start().await;
    app.create(json!({ "phoneNumber": "+56911111111" })).await;
    common::refuse_in_database(&app.database_url, "+56922222222").await;
    let rows = json!([
        { "phoneNumber": "+56911111111", "metadata": { "from": "import" } },
        { "phoneNumber": "+56922222222" },
        { "phoneNumber": "+56933333333" },
        { "phoneNumber": "not a number" }
    ]);
    let report = app.data(IMPORT, json!({ "rows": rows })).await["importContacts"].clone();
    assert_eq!(report["created"], 1, "{report}");
    assert_eq!(report["updated"], 1, "{report}");
    let failed: Vec<(i64, &str)> = report["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["index"].as_i64().unwrap(), f["code"].as_str().unwrap()))
        .collect();
    assert_eq!(
        failed,
        [(1, "INTERNAL_SERVER_ERROR"), (3, "BAD_USER_INPUT")],
        "{report}"
    );
    // The database's message stays in the log.
    assert_eq!(report["failed"][0]["message"], "internal server error");
    assert_eq!(total(&app).await, 2);
    let updated = app.data(BY_PHONE, json!({ "p": "+56911111111" })).await;
    assert!(updated["contactByPhoneNumber"].is_object());
}

#[tokio::test]
async fn phone_numbers_with_control_characters_are_bad_user_input() {
    let app = TestApp::start().await;
    for raw in [
        "+56912345678\u{0}",
        "+5691234\u{0}5678",
        "+56912345678\n",
        "+56\t912345678",
    ] {
        let create = app
            .error(CREATE, json!({ "input": { "phoneNumber": raw } }))
            .await;
        assert_bad_input(&create, "input.phoneNumber");
        assert_bad_input(&app.error(RECORD, json!({ "p": raw })).await, "phoneNumber");
        assert_bad_input(
            &app.error(BY_PHONE, json!({ "p": raw })).await,
            "phoneNumber",
        );
    }
    assert_eq!(total(&app).await, 0);
}

#[tokio::test]
async fn upsert_and_import_without_country_code_keep_the_stored_one() {
    let app = TestApp::start().await;
    // A US-range number the caller says is Canadian, and a British one whose code was cleared.
    let us = "+14155550100";
    app.create(json!({ "phoneNumber": us, "countryCode": "CA" }))
        .await;
    let gb = app.create(json!({ "phoneNumber": "+442071838750" })).await;
    let cleared = app
        .data(
            UPDATE,
            json!({ "id": gb["id"], "input": { "countryCode": null } }),
        )
        .await;
    assert_eq!(
        cleared["updateContact"]["contact"]["countryCode"],
        Value::Null
    );
    let upsert =
        |phone: &str| json!({ "input": { "phoneNumber": phone, "metadata": { "a": "1" } } });
    let kept = app.data(UPSERT, upsert(us)).await;
    assert_eq!(kept["upsertContact"]["contact"]["countryCode"], "CA");
    let kept = app.data(UPSERT, upsert("+44 20 7183 8750")).await;
    assert_eq!(kept["upsertContact"]["contact"]["countryCode"], Value::Null);
    let rows = json!([{ "phoneNumber": us }, { "phoneNumber": "+442071838750" }]);
    let report = app.data(IMPORT, json!({ "rows": rows })).await;
    // Rows equal to what is stored: kept, and reported neither created nor updated.
    assert_eq!(report["importContacts"]["updated"], 0);
    assert_eq!(report["importContacts"]["created"], 0);
    for (phone, expected) in [(us, json!("CA")), ("+442071838750", Value::Null)] {
        let stored = app.data(BY_PHONE, json!({ "p": phone })).await;
        assert_eq!(
            stored["contactByPhoneNumber"]["countryCode"], expected,
            "{phone}"
        );
    }
    // A given code is written; a new contact still gets the derived one.
    let given = json!({ "input": { "phoneNumber": us, "countryCode": "US" } });
    let given = app.data(UPSERT, given).await;
    assert_eq!(given["upsertContact"]["contact"]["countryCode"], "US");
    let new = app.data(UPSERT, upsert("+56912345678")).await;
    assert_eq!(new["upsertContact"]["created"], true);
    assert_eq!(new["upsertContact"]["contact"]["countryCode"], "CL");
}

#[tokio::test]
async fn italian_landlines_are_it_and_shared_calling_codes_resolve() {
    let app = TestApp::start().await;
    for (raw, e164, country) in [
        ("+39 02 1234 5678", "+390212345678", "IT"),
        ("+39 06 4991 1234", "+390649911234", "IT"),
        ("+39 312 345 6789", "+393123456789", "IT"),
        ("+1 416 555 0100", "+14165550100", "CA"),
        ("+1 415 555 0100", "+14155550100", "US"),
        ("+44 20 7183 8750", "+442071838750", "GB"),
        ("+7 495 123 4567", "+74951234567", "RU"),
        ("+7 717 212 3456", "+77172123456", "KZ"),
    ] {
        let contact = app.create(json!({ "phoneNumber": raw })).await;
        assert_eq!(contact["phoneNumber"], e164, "{raw}");
        assert_eq!(contact["countryCode"], country, "{raw}");
    }
    let italian = app
        .data(LIST, json!({ "filter": { "countryCode": ["IT"] } }))
        .await;
    assert_eq!(italian["contacts"]["nodes"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn country_codes_must_be_iso_3166_regions() {
    let app = TestApp::start().await;
    for (phone, code) in [
        ("+383 44 123 456", "XK"),
        ("+247 62889", "AC"),
        ("+290 8999", "TA"),
    ] {
        let input = json!({ "phoneNumber": phone, "countryCode": code });
        let error = app.error(CREATE, json!({ "input": input })).await;
        assert_bad_input(&error, "input.countryCode");
        let filter = json!({ "filter": { "countryCode": [code] } });
        assert_bad_input(&app.error(LIST, filter).await, "filter.countryCode");
        // Without a code the number is stored, with none derived.
        let contact = app.create(json!({ "phoneNumber": phone })).await;
        assert_eq!(contact["countryCode"], Value::Null, "{phone}");
    }
}

#[tokio::test]
async fn digits_of_other_scripts_are_read_as_ascii_digits() {
    let app = TestApp::start().await;
    let contact = app
        .create(json!({ "phoneNumber": "+５６９１２３４５６７８" }))
        .await;
    assert_eq!(contact["phoneNumber"], "+56912345678");
    assert_eq!(contact["countryCode"], "CL");
    for raw in ["+٥٦٩١٢٣٤٥٦٧٨", "+۵۶۹ ۱۲۳۴ ۵۶۷۸", "٩١٢٣٤٥٦٧٨"] {
        let country = if raw.starts_with('+') {
            Value::Null
        } else {
            json!("CL")
        };
        let query = "query($p: String!, $c: String) { contactByPhoneNumber(phoneNumber: $p, countryCode: $c) { phoneNumber } }";
        let found = app.data(query, json!({ "p": raw, "c": country })).await;
        assert_eq!(
            found["contactByPhoneNumber"]["phoneNumber"], "+56912345678",
            "{raw}"
        );
    }
}

#[tokio::test]
async fn timestamps_beyond_four_digit_utc_years_or_on_leap_seconds_are_refused() {
    let app = TestApp::start().await;
    for bad in [
        "9999-12-31T23:30:00-01:00",
        "0001-01-01T00:30:00+01:00",
        "2016-12-31T23:59:60Z",
    ] {
        let filter = json!({ "filter": { "createdAfter": bad } });
        let error = app.error(LIST, filter).await;
        assert_eq!(code(&error), "BAD_USER_INPUT", "{bad}: {error}");
        let record = app
            .error(RECORD, json!({ "p": "+56912345678", "at": bad }))
            .await;
        assert_bad_input(&record, "receivedAt");
        let literal = format!(
            "{{ contacts(first: 1, filter: {{ createdBefore: \"{bad}\" }}) {{ totalCount }} }}"
        );
        assert_eq!(
            code(&app.error(&literal, json!({})).await),
            "BAD_USER_INPUT",
            "{bad}"
        );
    }
    let widest = json!({ "filter": { "createdAfter": "0001-01-01T00:00:00Z", "createdBefore": "9999-12-31T23:59:59.999999Z" } });
    assert!(app.data(LIST, widest).await["contacts"]["nodes"].is_array());
    assert_eq!(total(&app).await, 0);
}
