//! Every filter alone and combined, lookups by id and phone number.

mod common;

use common::{TestApp, at, code};
use serde_json::{Value, json};

const LIST: &str = "query($filter: ContactFilter) {
    contacts(first: 100, filter: $filter, orderBy: { field: PHONE_NUMBER, direction: ASC }) { nodes { phoneNumber } totalCount }
    contactStats(filter: $filter) { total } }";

/// Five contacts across countries, created an hour apart, with different metadata and windows.
async fn seeded() -> TestApp {
    let app = TestApp::start().await;
    let rows = [
        (
            "+56911111111",
            json!({ "tier": "gold", "city": "Santiago" }),
            json!("2026-11-24T11:00:00Z"),
        ),
        (
            "+56922222222",
            json!({ "tier": "silver" }),
            json!("2026-11-23T11:00:00Z"),
        ),
        (
            "+5491123456789",
            json!({ "tier": "gold", "a.b\"c": "odd" }),
            Value::Null,
        ),
        ("+14155550101", json!({}), json!("2026-11-24T06:00:00Z")),
        (
            "+442071838750",
            json!({ "tier": "gold" }),
            json!("2026-11-20T00:00:00Z"),
        ),
    ];
    for (hour, (phone, metadata, last)) in rows.into_iter().enumerate() {
        app.clock
            .set(at("2026-11-24T12:00:00Z") + chrono::TimeDelta::hours(hour as i64));
        app.create(
            json!({ "phoneNumber": phone, "metadata": metadata, "lastWhatsappMessageAt": last }),
        )
        .await;
    }
    app.clock.set(at("2026-11-24T18:00:00Z"));
    app
}

async fn phones(app: &TestApp, filter: Value) -> Vec<String> {
    let data = app.data(LIST, json!({ "filter": filter })).await;
    let phones: Vec<String> = data["contacts"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["phoneNumber"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        data["contacts"]["totalCount"],
        phones.len(),
        "totalCount for {filter}"
    );
    assert_eq!(
        data["contactStats"]["total"],
        phones.len(),
        "contactStats for {filter}"
    );
    phones
}

#[tokio::test]
async fn window_filter_alone() {
    let app = seeded().await;
    assert_eq!(
        phones(&app, json!({ "whatsappWindowOpen": true })).await,
        ["+14155550101", "+56911111111"]
    );
    assert_eq!(
        phones(&app, json!({ "whatsappWindowOpen": false })).await,
        ["+442071838750", "+5491123456789", "+56922222222"]
    );
}

#[tokio::test]
async fn country_code_filter_matches_any_of() {
    let app = seeded().await;
    assert_eq!(
        phones(&app, json!({ "countryCode": ["CL"] })).await,
        ["+56911111111", "+56922222222"]
    );
    assert_eq!(
        phones(&app, json!({ "countryCode": ["ar", "GB"] })).await,
        ["+442071838750", "+5491123456789"]
    );
    assert!(phones(&app, json!({ "countryCode": [] })).await.is_empty());
}

#[tokio::test]
async fn phone_prefix_filter() {
    let app = seeded().await;
    assert_eq!(
        phones(&app, json!({ "phoneNumberPrefix": "+569" })).await,
        ["+56911111111", "+56922222222"]
    );
    assert_eq!(
        phones(&app, json!({ "phoneNumberPrefix": "+5692" })).await,
        ["+56922222222"]
    );
    assert_eq!(
        phones(&app, json!({ "phoneNumberPrefix": "+1" })).await,
        ["+14155550101"]
    );
}

/// Every prefix of every stored number finds exactly the numbers starting with it, whatever its
/// last digit, and the `PHONE_NUMBER` order is byte order. The range for `+569` ends at `+56:`,
/// which a linguistic collation (ICU `en-US`, glibc `en_US.UTF-8`) sorts before the digits:
/// before the phone column had byte-order collation, PostgreSQL found nothing there.
#[tokio::test]
async fn every_prefix_finds_the_numbers_starting_with_it() {
    let app = seeded().await;
    let all = phones(&app, json!({})).await;
    let mut bytewise = all.clone();
    bytewise.sort();
    assert_eq!(all, bytewise, "PHONE_NUMBER order is byte order");
    for phone in &all {
        for end in 2..=phone.len() {
            let prefix = &phone[..end];
            let expected: Vec<&String> = all.iter().filter(|p| p.starts_with(prefix)).collect();
            let found = phones(&app, json!({ "phoneNumberPrefix": prefix })).await;
            assert_eq!(
                found.iter().collect::<Vec<_>>(),
                expected,
                "prefix {prefix}"
            );
        }
    }
}

/// The migration that gave the phone column byte-order collation keeps the stored contacts,
/// and rolls back and applies again cleanly.
#[tokio::test]
async fn collation_migration_keeps_stored_contacts() {
    use migration::MigratorTrait;
    let app = seeded().await;
    let db = sea_orm::Database::connect(&app.database_url).await.unwrap();
    migration::Migrator::down(&db, Some(2)).await.unwrap();
    db.close().await.unwrap();
    // Rolls back the identity migration too (it comes later); start-up applies both again.
    let again = app.second_instance().await;
    assert_eq!(phones(&again, json!({})).await.len(), 5);
    assert_eq!(
        phones(&again, json!({ "phoneNumberPrefix": "+569" })).await,
        ["+56911111111", "+56922222222"]
    );
}

#[tokio::test]
async fn metadata_filter_needs_every_pair() {
    let app = seeded().await;
    assert_eq!(
        phones(&app, json!({ "metadata": { "tier": "gold" } })).await,
        ["+442071838750", "+5491123456789", "+56911111111"]
    );
    assert_eq!(
        phones(
            &app,
            json!({ "metadata": { "tier": "gold", "city": "Santiago" } })
        )
        .await,
        ["+56911111111"]
    );
    assert!(
        phones(&app, json!({ "metadata": { "tier": "bronze" } }))
            .await
            .is_empty()
    );
    assert_eq!(
        phones(&app, json!({ "metadata": { "a.b\"c": "odd" } })).await,
        ["+5491123456789"]
    );
}

/// The metadata filter follows every write path (on SQLite it reads entries that triggers keep
/// beside the contacts): update, patch and unset, upsert, import, merge and delete.
async fn id_of(app: &TestApp, phone: &str) -> String {
    let query = "query($p: String!) { contactByPhoneNumber(phoneNumber: $p) { id } }";
    let data = app.data(query, json!({ "p": phone })).await;
    data["contactByPhoneNumber"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn metadata_filter_follows_every_write() {
    let app = seeded().await;
    let santiago = phones(&app, json!({ "metadata": { "city": "Santiago" } })).await;
    assert_eq!(santiago, ["+56911111111"]);
    // updateContact replaces the metadata: gold leaves the first contact.
    let first = id_of(&app, "+56911111111").await;
    app.data(
        "mutation($id: ID!) { updateContact(id: $id, input: { metadata: { tier: \"silver\" } }) { contact { id } } }",
        json!({ "id": first }),
    )
    .await;
    assert!(
        phones(&app, json!({ "metadata": { "city": "Santiago" } }))
            .await
            .is_empty()
    );
    // patchContactMetadata sets one key and removes another.
    let argentina = id_of(&app, "+5491123456789").await;
    app.data(
        "mutation($id: ID!) { patchContactMetadata(id: $id, set: { city: \"Rosario\" }, unset: [\"tier\"]) { contact { id } } }",
        json!({ "id": argentina }),
    )
    .await;
    assert_eq!(
        phones(&app, json!({ "metadata": { "tier": "gold" } })).await,
        ["+442071838750"]
    );
    assert_eq!(
        phones(&app, json!({ "metadata": { "city": "Rosario" } })).await,
        ["+5491123456789"]
    );
    // upsertContact and importContacts write through the bulk engine.
    app.data(
        "mutation { upsertContact(input: { phoneNumber: \"+14155550101\", metadata: { tier: \"gold\" } }) { contact { id } } }",
        json!({}),
    )
    .await;
    app.data(
        "mutation { importContacts(contacts: [{ phoneNumber: \"+14155550199\", metadata: { tier: \"gold\" } }]) { created } }",
        json!({}),
    )
    .await;
    assert_eq!(
        phones(&app, json!({ "metadata": { "tier": "gold" } })).await,
        ["+14155550101", "+14155550199", "+442071838750"]
    );
    // A merge keeps the survivor's values and takes the absorbed contact's other keys.
    app.data(
        "mutation { createContact(input: { whatsappUserId: \"US.merge1\", metadata: { team: \"blue\", tier: \"bronze\" } }) { contact { id } } }",
        json!({}),
    )
    .await;
    app.data(
        "mutation { recordWhatsappInbound(input: { phoneNumber: \"+442071838750\", whatsappUserId: \"US.merge1\" }) { contact { id } } }",
        json!({}),
    )
    .await;
    assert_eq!(
        phones(&app, json!({ "metadata": { "team": "blue" } })).await,
        ["+442071838750"]
    );
    assert!(
        phones(&app, json!({ "metadata": { "tier": "bronze" } }))
            .await
            .is_empty()
    );
    // deleteContact removes the contact's entries.
    let uk = id_of(&app, "+442071838750").await;
    app.data(
        "mutation($id: ID!) { deleteContact(id: $id) { deletedContactId } }",
        json!({ "id": uk }),
    )
    .await;
    assert!(
        phones(&app, json!({ "metadata": { "team": "blue" } }))
            .await
            .is_empty()
    );
    assert_eq!(
        phones(&app, json!({ "metadata": { "tier": "gold" } })).await,
        ["+14155550101", "+14155550199"]
    );
}

#[tokio::test]
async fn created_bounds_are_exclusive() {
    let app = seeded().await;
    let filter =
        json!({ "createdAfter": "2026-11-24T13:00:00Z", "createdBefore": "2026-11-24T15:00:00Z" });
    assert_eq!(phones(&app, filter).await, ["+5491123456789"]);
    assert_eq!(
        phones(&app, json!({ "createdAfter": "2026-11-24T15:00:00Z" })).await,
        ["+442071838750"]
    );
    assert_eq!(
        phones(&app, json!({ "createdBefore": "2026-11-24T13:00:00Z" })).await,
        ["+56911111111"]
    );
}

#[tokio::test]
async fn last_message_bounds_are_exclusive_and_skip_never_messaged() {
    let app = seeded().await;
    let after = json!({ "lastWhatsappMessageAfter": "2026-11-24T06:00:00Z" });
    assert_eq!(phones(&app, after).await, ["+56911111111"]);
    let before = json!({ "lastWhatsappMessageBefore": "2026-11-24T06:00:00Z" });
    assert_eq!(
        phones(&app, before).await,
        ["+442071838750", "+56922222222"]
    );
}

#[tokio::test]
async fn filters_combine_with_and() {
    let app = seeded().await;
    let filter = json!({ "metadata": { "tier": "gold" }, "whatsappWindowOpen": false, "countryCode": ["GB", "CL", "AR"] });
    assert_eq!(
        phones(&app, filter).await,
        ["+442071838750", "+5491123456789"]
    );
    let filter = json!({ "phoneNumberPrefix": "+56", "whatsappWindowOpen": true, "createdBefore": "2026-11-24T12:30:00Z" });
    assert_eq!(phones(&app, filter).await, ["+56911111111"]);
}

#[tokio::test]
async fn stats_count_open_windows_under_a_filter() {
    let app = seeded().await;
    let data = app
        .data("{ all: contactStats { total whatsappWindowOpen } cl: contactStats(filter: { countryCode: [\"CL\"] }) { total whatsappWindowOpen } }", json!({}))
        .await;
    assert_eq!(data["all"], json!({ "total": 5, "whatsappWindowOpen": 2 }));
    assert_eq!(data["cl"], json!({ "total": 2, "whatsappWindowOpen": 1 }));
}

#[tokio::test]
async fn bad_filter_values_name_their_field() {
    let app = seeded().await;
    let cases = [
        (
            json!({ "phoneNumberPrefix": "569" }),
            "filter.phoneNumberPrefix",
        ),
        (json!({ "countryCode": ["ZZZ"] }), "filter.countryCode"),
        (json!({ "metadata": { "k": 1 } }), "filter.metadata"),
        (
            json!({ "createdAfter": "yesterday" }),
            "filter.createdAfter",
        ),
    ];
    for (filter, field) in cases {
        let err = app.error(LIST, json!({ "filter": filter })).await;
        assert_eq!(code(&err), "BAD_USER_INPUT", "{filter}");
        assert_eq!(err["extensions"]["field"], field, "{filter}");
    }
}

#[tokio::test]
async fn contact_by_id_is_null_when_absent_and_an_error_when_malformed() {
    let app = seeded().await;
    let absent = app
        .data(
            "{ contact(id: \"01a21129-9a1f-76f2-812b-f8c0d93f783d\") { id } }",
            json!({}),
        )
        .await;
    assert_eq!(absent["contact"], Value::Null);
    let err = app
        .error("{ contact(id: \"not-a-uuid\") { id } }", json!({}))
        .await;
    assert_eq!(code(&err), "BAD_USER_INPUT");
    assert_eq!(err["extensions"]["field"], "id");
}

#[tokio::test]
async fn node_resolves_a_contact() {
    let app = TestApp::start().await;
    let created = app.create(json!({ "phoneNumber": "+56912345678" })).await;
    let data = app
        .data(
            "query($id: ID!) { node(id: $id) { __typename id ... on Contact { phoneNumber } } }",
            json!({ "id": created["id"] }),
        )
        .await;
    assert_eq!(
        data["node"],
        json!({ "__typename": "Contact", "id": created["id"], "phoneNumber": "+56912345678" })
    );
}

#[tokio::test]
async fn contact_by_phone_number_accepts_any_spelling() {
    let app = TestApp::start().await;
    let created = app.create(json!({ "phoneNumber": "+56912345678" })).await;
    let query = "query($p: String!, $c: String) { contactByPhoneNumber(phoneNumber: $p, countryCode: $c) { id } }";
    for (phone, country) in [
        ("+56 9 1234 5678", None),
        ("+56-9-1234-5678", None),
        ("9 1234 5678", Some("CL")),
    ] {
        let data = app.data(query, json!({ "p": phone, "c": country })).await;
        assert_eq!(data["contactByPhoneNumber"]["id"], created["id"], "{phone}");
    }
    let none = app.data(query, json!({ "p": "+56987654321" })).await;
    assert_eq!(none["contactByPhoneNumber"], Value::Null);
    let err = app.error(query, json!({ "p": "garbage" })).await;
    assert_eq!(code(&err), "BAD_USER_INPUT");
    assert_eq!(err["extensions"]["field"], "phoneNumber");
}
