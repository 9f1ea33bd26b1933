//! WhatsApp identity (2026) through the API: contacts known by BSUID, phone number or both;
//! BSUID validation; lookups, filters and order; create, upsert and import by either identity.

mod common;

use common::{TestApp, code};
use serde_json::{Value, json};

const FIELDS: &str = "id phoneNumber countryCode whatsappUserId parentWhatsappUserId \
    whatsappUsername whatsappProfileName previousWhatsappUserIds metadata";

fn create_query() -> String {
    format!(
        "mutation($input: CreateContactInput!) {{ createContact(input: $input) {{ contact {{ {FIELDS} }} }} }}"
    )
}

fn upsert_query() -> String {
    format!(
        "mutation($input: CreateContactInput!) {{ upsertContact(input: $input) {{ created contact {{ {FIELDS} }} }} }}"
    )
}

async fn create(app: &TestApp, input: Value) -> Value {
    app.data(&create_query(), json!({ "input": input })).await["createContact"]["contact"].clone()
}

async fn upsert(app: &TestApp, input: Value) -> (Value, bool) {
    let data = app.data(&upsert_query(), json!({ "input": input })).await;
    let payload = &data["upsertContact"];
    (payload["contact"].clone(), payload["created"] == true)
}

async fn by_user_id(app: &TestApp, user_id: &str) -> Value {
    let query = format!(
        "query($id: String!) {{ contactByWhatsappUserId(whatsappUserId: $id) {{ {FIELDS} }} }}"
    );
    app.data(&query, json!({ "id": user_id })).await["contactByWhatsappUserId"].clone()
}

#[tokio::test]
async fn a_contact_known_by_its_bsuid_alone_has_a_null_phone_number() {
    let app = TestApp::start().await;
    let contact = create(
        &app,
        json!({
            "whatsappUserId": "US.13491208655302741918",
            "parentWhatsappUserId": "US.ENT99",
            "whatsappUsername": " ana.w ",
            "whatsappProfileName": "Ana"
        }),
    )
    .await;
    assert_eq!(contact["phoneNumber"], Value::Null);
    assert_eq!(contact["countryCode"], Value::Null);
    assert_eq!(contact["whatsappUserId"], "US.13491208655302741918");
    assert_eq!(contact["parentWhatsappUserId"], "US.ENT99");
    assert_eq!(contact["whatsappUsername"], "ana.w");
    assert_eq!(contact["whatsappProfileName"], "Ana");
    assert_eq!(contact["previousWhatsappUserIds"], json!([]));
    assert_eq!(by_user_id(&app, "US.13491208655302741918").await, contact);
    assert_eq!(by_user_id(&app, "US.1").await, Value::Null);
}

#[tokio::test]
async fn input_needs_a_phone_number_or_a_bsuid_and_a_valid_bsuid() {
    let app = TestApp::start().await;
    let cases = [
        (json!({ "metadata": { "a": "b" } }), "input.phoneNumber"),
        (
            json!({ "whatsappUserId": "us.123" }),
            "input.whatsappUserId",
        ),
        (
            json!({ "whatsappUserId": "ZZ.123" }),
            "input.whatsappUserId",
        ),
        (
            json!({ "whatsappUserId": "US.12-3" }),
            "input.whatsappUserId",
        ),
        (
            json!({ "phoneNumber": "+56912345678", "parentWhatsappUserId": "nope" }),
            "input.parentWhatsappUserId",
        ),
        (
            json!({ "whatsappUserId": "US.1", "whatsappUsername": "  " }),
            "input.whatsappUsername",
        ),
        (
            json!({ "whatsappUserId": "US.1", "countryCode": "US" }),
            "input.countryCode",
        ),
    ];
    for (input, field) in cases {
        let err = app
            .error(&create_query(), json!({ "input": input.clone() }))
            .await;
        assert_eq!(code(&err), "BAD_USER_INPUT", "{input}: {err}");
        assert_eq!(err["extensions"]["field"], field, "{input}");
    }
    let query = "{ contactByWhatsappUserId(whatsappUserId: \"123\") { id } }";
    let err = app.error(query, json!({})).await;
    assert_eq!(code(&err), "BAD_USER_INPUT");
    assert_eq!(err["extensions"]["field"], "whatsappUserId");
}

#[tokio::test]
async fn a_bsuid_is_unique() {
    let app = TestApp::start().await;
    create(&app, json!({ "whatsappUserId": "CL.777" })).await;
    let err = app
        .error(
            &create_query(),
            json!({ "input": { "whatsappUserId": "CL.777", "phoneNumber": "+56912345678" } }),
        )
        .await;
    assert_eq!(code(&err), "CONFLICT", "{err}");
    assert_eq!(err["extensions"]["field"], "input.whatsappUserId");
}

#[tokio::test]
async fn upsert_matches_by_bsuid_first_then_by_phone_number() {
    let app = TestApp::start().await;
    let (first, created) = upsert(&app, json!({ "whatsappUserId": "BR.42" })).await;
    assert!(created);
    // Found by BSUID: the phone number is filled in, with its derived country.
    let (same, created) = upsert(
        &app,
        json!({ "whatsappUserId": "BR.42", "phoneNumber": "+5511987654321", "whatsappUsername": "joao" }),
    )
    .await;
    assert!(!created);
    assert_eq!(same["id"], first["id"]);
    assert_eq!(same["phoneNumber"], "+5511987654321");
    assert_eq!(same["countryCode"], "BR");
    assert_eq!(same["whatsappUsername"], "joao");
    // Found by phone number: the BSUID is filled in.
    let phone_only = create(&app, json!({ "phoneNumber": "+56911111111" })).await;
    let (filled, created) = upsert(
        &app,
        json!({ "whatsappUserId": "CL.9", "phoneNumber": "+56911111111" }),
    )
    .await;
    assert!(!created);
    assert_eq!(filled["id"], phone_only["id"]);
    assert_eq!(filled["whatsappUserId"], "CL.9");
    // Absent fields keep what is stored.
    let (kept, _) = upsert(&app, json!({ "whatsappUserId": "BR.42" })).await;
    assert_eq!(kept, same);
}

#[tokio::test]
async fn upsert_never_joins_two_contacts_or_replaces_a_bsuid() {
    let app = TestApp::start().await;
    create(&app, json!({ "whatsappUserId": "CL.1" })).await;
    create(
        &app,
        json!({ "phoneNumber": "+56922222222", "whatsappUserId": "CL.2" }),
    )
    .await;
    create(&app, json!({ "phoneNumber": "+56933333333" })).await;
    let cases = [
        (
            json!({ "whatsappUserId": "CL.1", "phoneNumber": "+56933333333" }),
            "input.phoneNumber",
        ),
        (
            json!({ "whatsappUserId": "CL.3", "phoneNumber": "+56922222222" }),
            "input.whatsappUserId",
        ),
    ];
    for (input, field) in cases {
        let err = app.error(&upsert_query(), json!({ "input": input })).await;
        assert_eq!(code(&err), "CONFLICT", "{err}");
        assert_eq!(err["extensions"]["field"], field);
    }
}

#[tokio::test]
async fn filters_by_bsuid_and_by_having_a_phone_number_and_orders_phone_less_last() {
    let app = TestApp::start().await;
    create(&app, json!({ "whatsappUserId": "US.1" })).await;
    create(&app, json!({ "phoneNumber": "+56911111111" })).await;
    create(
        &app,
        json!({ "phoneNumber": "+56922222222", "whatsappUserId": "US.2" }),
    )
    .await;
    create(&app, json!({ "whatsappUserId": "US.3" })).await;
    let list = |filter: Value, direction: &str| {
        let query = format!(
            "query($filter: ContactFilter) {{ contacts(first: 10, filter: $filter, \
             orderBy: {{ field: PHONE_NUMBER, direction: {direction} }}) \
             {{ nodes {{ phoneNumber whatsappUserId }} totalCount }} }}"
        );
        let app = &app;
        async move {
            let data = app.data(&query, json!({ "filter": filter })).await;
            let nodes = data["contacts"]["nodes"].as_array().cloned().unwrap();
            assert_eq!(data["contacts"]["totalCount"], nodes.len());
            nodes
                .iter()
                .map(|n| {
                    n["phoneNumber"]
                        .as_str()
                        .or(n["whatsappUserId"].as_str())
                        .unwrap()
                        .to_owned()
                })
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        list(json!({}), "ASC").await,
        ["+56911111111", "+56922222222", "US.1", "US.3"]
    );
    assert_eq!(
        list(json!({}), "DESC").await,
        ["+56922222222", "+56911111111", "US.3", "US.1"]
    );
    assert_eq!(
        list(json!({ "hasPhoneNumber": false }), "ASC").await,
        ["US.1", "US.3"]
    );
    assert_eq!(
        list(json!({ "hasPhoneNumber": true }), "ASC").await,
        ["+56911111111", "+56922222222"]
    );
    assert_eq!(
        list(json!({ "whatsappUserId": "US.2" }), "ASC").await,
        ["+56922222222"]
    );
    let err = app
        .error(
            "{ contacts(filter: { whatsappUserId: \"2\" }) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&err), "BAD_USER_INPUT");
    assert_eq!(err["extensions"]["field"], "filter.whatsappUserId");
}

#[tokio::test]
async fn phone_less_contacts_page_with_cursors_in_phone_order() {
    let app = TestApp::start().await;
    for n in 1..=3 {
        create(&app, json!({ "whatsappUserId": format!("US.{n}") })).await;
    }
    create(&app, json!({ "phoneNumber": "+56911111111" })).await;
    let page = |after: Value| {
        let app = &app;
        async move {
            let query = "query($after: String) { contacts(first: 2, after: $after, \
                orderBy: { field: PHONE_NUMBER, direction: ASC }) { \
                nodes { phoneNumber whatsappUserId } pageInfo { endCursor hasNextPage } } }";
            app.data(query, json!({ "after": after })).await["contacts"].clone()
        }
    };
    let first = page(Value::Null).await;
    let second = page(first["pageInfo"]["endCursor"].clone()).await;
    let ids: Vec<Value> = [first["nodes"].clone(), second["nodes"].clone()]
        .iter()
        .flat_map(|nodes| nodes.as_array().cloned().unwrap())
        .map(|n| n["whatsappUserId"].clone())
        .collect();
    assert_eq!(
        ids,
        [Value::Null, json!("US.1"), json!("US.2"), json!("US.3")]
    );
    assert_eq!(second["pageInfo"]["hasNextPage"], false);
}

#[tokio::test]
async fn import_accepts_either_identity_and_reports_bad_rows() {
    let app = TestApp::start().await;
    let query = "mutation($rows: [CreateContactInput!]!) { importContacts(contacts: $rows) { \
        created updated failed { index code message } } }";
    let rows = json!([
        { "whatsappUserId": "MX.5", "whatsappUsername": "lupe" },
        { "phoneNumber": "+525512345678" },
        { "metadata": {} },
        { "whatsappUserId": "MX5" }
    ]);
    let data = app.data(query, json!({ "rows": rows })).await;
    let report = &data["importContacts"];
    assert_eq!(report["created"], 2);
    assert_eq!(report["updated"], 0);
    let failed: Vec<(i64, &str)> = report["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["index"].as_i64().unwrap(), f["code"].as_str().unwrap()))
        .collect();
    assert_eq!(failed, [(2, "BAD_USER_INPUT"), (3, "BAD_USER_INPUT")]);
    // Imported again with the phone number: the BSUID row is found and completed.
    let rows = json!([{ "whatsappUserId": "MX.5", "phoneNumber": "+525598765432" }]);
    let data = app.data(query, json!({ "rows": rows })).await;
    assert_eq!(data["importContacts"]["updated"], 1);
    let contact = by_user_id(&app, "MX.5").await;
    assert_eq!(contact["phoneNumber"], "+525598765432");
    assert_eq!(contact["whatsappUsername"], "lupe");
}

#[tokio::test]
async fn update_clears_the_phone_number_only_of_a_contact_with_a_bsuid() {
    let app = TestApp::start().await;
    let update = "mutation($id: ID!) { updateContact(id: $id, input: { phoneNumber: null }) {
        contact { phoneNumber countryCode whatsappUserId } } }";
    let both = create(
        &app,
        json!({ "phoneNumber": "+56911111111", "whatsappUserId": "CL.1" }),
    )
    .await;
    let cleared = app.data(update, json!({ "id": both["id"] })).await;
    assert_eq!(
        cleared["updateContact"]["contact"],
        json!({ "phoneNumber": null, "countryCode": null, "whatsappUserId": "CL.1" })
    );
    let phone_only = create(&app, json!({ "phoneNumber": "+56922222222" })).await;
    let err = app.error(update, json!({ "id": phone_only["id"] })).await;
    assert_eq!(code(&err), "BAD_USER_INPUT");
    assert_eq!(err["extensions"]["field"], "input.phoneNumber");
}

#[tokio::test]
async fn concurrent_upserts_of_one_new_bsuid_all_succeed_as_one_contact() {
    let app = TestApp::start().await;
    let other = if common::on_postgres() {
        Some(app.second_instance().await)
    } else {
        None
    };
    let calls = (0..8).map(|i| {
        let target = match (&other, i % 2) {
            (Some(second), 1) => second,
            _ => &app,
        };
        let (query, input) = (
            upsert_query(),
            json!({ "input": { "whatsappUserId": "BR.777" } }),
        );
        async move { target.post(&query, input).await }
    });
    for (status, body) in futures_util::future::join_all(calls).await {
        assert_eq!(status, 200, "{body}");
        assert!(body.get("errors").is_none(), "{body}");
    }
    let total = app.data("{ contacts { totalCount } }", json!({})).await;
    assert_eq!(total["contacts"]["totalCount"], 1);
}
