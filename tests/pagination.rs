//! Keyset pagination over every order, both ways, with ties and nulls, and while inserting.

mod common;

use std::cmp::Ordering;

use chrono::{DateTime, TimeDelta, Utc};
use common::{TestApp, at, code};
use serde_json::{Value, json};

const FIELDS: [&str; 4] = [
    "CREATED_AT",
    "UPDATED_AT",
    "LAST_WHATSAPP_MESSAGE_AT",
    "PHONE_NUMBER",
];
const PAGE: &str = "query($first: Int, $after: String, $last: Int, $before: String,
      $order: ContactOrder, $filter: ContactFilter) {
    contacts(first: $first, after: $after, last: $last, before: $before, orderBy: $order,
      filter: $filter) {
      edges { cursor node { id } }
      nodes { id phoneNumber createdAt updatedAt lastWhatsappMessageAt }
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
      totalCount } }";

/// 23 contacts with ties in every timestamp, and some never messaged.
async fn seeded() -> TestApp {
    let app = TestApp::start().await;
    for i in 0..23u32 {
        // Three contacts per creation instant: ties broken by id.
        app.clock
            .set(at(common::T0) + TimeDelta::minutes(i64::from(i / 3)));
        let last = match i % 4 {
            0 => Value::Null,
            1 => json!("2026-11-24T08:00:00Z"),
            _ => json!(format!("2026-11-24T09:{:02}:00Z", i % 5)),
        };
        // Phone numbers deliberately not in creation order.
        let phone = format!("+569{:08}", (i * 7919) % 100_000_000);
        let contact = app
            .create(json!({ "phoneNumber": phone, "lastWhatsappMessageAt": last }))
            .await;
        if i % 5 == 0 {
            app.clock.set(at(common::T0) + TimeDelta::hours(2));
            app.data(
                "mutation($id: ID!) { updateContact(id: $id, input: { metadata: { touched: \"yes\" } }) { contact { id } } }",
                json!({ "id": contact["id"] }),
            )
            .await;
        }
    }
    app
}

fn time(v: &Value) -> Option<DateTime<Utc>> {
    v.as_str().map(at)
}

fn compare(field: &str, a: &Value, b: &Value) -> Ordering {
    match field {
        "CREATED_AT" => time(&a["createdAt"]).cmp(&time(&b["createdAt"])),
        "UPDATED_AT" => time(&a["updatedAt"]).cmp(&time(&b["updatedAt"])),
        "PHONE_NUMBER" => a["phoneNumber"].as_str().cmp(&b["phoneNumber"].as_str()),
        _ => time(&a["lastWhatsappMessageAt"]).cmp(&time(&b["lastWhatsappMessageAt"])),
    }
}

/// The contract's order: the field in `direction`, ties by id in `direction`, nulls last.
fn expected_order(all: &[Value], field: &str, direction: &str) -> Vec<String> {
    let mut rows = all.to_vec();
    rows.sort_by(|a, b| {
        let nulls =
            |v: &Value| field == "LAST_WHATSAPP_MESSAGE_AT" && v["lastWhatsappMessageAt"].is_null();
        nulls(a).cmp(&nulls(b)).then_with(|| {
            let key = compare(field, a, b).then_with(|| a["id"].as_str().cmp(&b["id"].as_str()));
            if direction == "DESC" {
                key.reverse()
            } else {
                key
            }
        })
    });
    rows.iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn page(app: &TestApp, vars: Value) -> Value {
    app.data(PAGE, vars).await["contacts"].clone()
}

fn ids(connection: &Value) -> Vec<String> {
    connection["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn all_contacts(app: &TestApp) -> Vec<Value> {
    page(app, json!({ "first": 100 })).await["nodes"]
        .as_array()
        .unwrap()
        .clone()
}

async fn walk_forward(app: &TestApp, order: &Value, size: i32) -> Vec<String> {
    let mut seen = Vec::new();
    let mut after = Value::Null;
    loop {
        let conn = page(
            app,
            json!({ "first": size, "after": after, "order": order }),
        )
        .await;
        seen.extend(ids(&conn));
        let info = &conn["pageInfo"];
        assert_eq!(info["hasPreviousPage"], !after.is_null(), "{order}");
        if info["hasNextPage"] == false {
            return seen;
        }
        after = info["endCursor"].clone();
    }
}

async fn walk_backward(app: &TestApp, order: &Value, size: i32) -> Vec<String> {
    let mut seen = Vec::new();
    let mut before = Value::Null;
    loop {
        let conn = page(
            app,
            json!({ "last": size, "before": before, "order": order }),
        )
        .await;
        let mut chunk = ids(&conn);
        chunk.extend(seen);
        seen = chunk;
        let info = &conn["pageInfo"];
        assert_eq!(info["hasNextPage"], !before.is_null(), "{order}");
        if info["hasPreviousPage"] == false {
            return seen;
        }
        before = info["startCursor"].clone();
    }
}

#[tokio::test]
async fn forward_walk_visits_every_contact_once_in_every_order() {
    let app = seeded().await;
    let all = all_contacts(&app).await;
    assert_eq!(all.len(), 23);
    for field in FIELDS {
        for direction in ["ASC", "DESC"] {
            let order = json!({ "field": field, "direction": direction });
            assert_eq!(
                walk_forward(&app, &order, 5).await,
                expected_order(&all, field, direction),
                "{order}"
            );
        }
    }
}

#[tokio::test]
async fn backward_walk_visits_every_contact_once_in_every_order() {
    let app = seeded().await;
    let all = all_contacts(&app).await;
    for field in FIELDS {
        for direction in ["ASC", "DESC"] {
            let order = json!({ "field": field, "direction": direction });
            assert_eq!(
                walk_backward(&app, &order, 4).await,
                expected_order(&all, field, direction),
                "{order}"
            );
        }
    }
}

/// Pages in `PHONE_NUMBER` order under a prefix filter ending in 9: the range's upper bound
/// (`+56:`), the ORDER BY and the cursor seeks must all compare in the same (byte) order, also
/// on a PostgreSQL cluster whose default collation is linguistic.
#[tokio::test]
async fn phone_order_pages_through_a_prefix_filter_both_ways() {
    let app = seeded().await;
    for phone in [
        "+14155550101",
        "+442071838750",
        "+5491123456789",
        "+56221234567",
    ] {
        app.create(json!({ "phoneNumber": phone })).await;
    }
    let all = all_contacts(&app).await;
    let chilean: Vec<Value> = all
        .iter()
        .filter(|c| c["phoneNumber"].as_str().unwrap().starts_with("+569"))
        .cloned()
        .collect();
    assert_eq!(chilean.len(), 23);
    let filter = json!({ "phoneNumberPrefix": "+569" });
    for direction in ["ASC", "DESC"] {
        let order = json!({ "field": "PHONE_NUMBER", "direction": direction });
        let expected = expected_order(&chilean, "PHONE_NUMBER", direction);
        let (mut forward, mut after) = (Vec::new(), Value::Null);
        loop {
            let vars = json!({ "first": 5, "after": after, "order": order, "filter": filter });
            let conn = page(&app, vars).await;
            assert_eq!(conn["totalCount"], 23, "{order}");
            forward.extend(ids(&conn));
            if conn["pageInfo"]["hasNextPage"] == false {
                break;
            }
            after = conn["pageInfo"]["endCursor"].clone();
        }
        assert_eq!(forward, expected, "forward {order}");
        let (mut backward, mut before) = (Vec::new(), Value::Null);
        loop {
            let vars = json!({ "last": 5, "before": before, "order": order, "filter": filter });
            let conn = page(&app, vars).await;
            backward.splice(0..0, ids(&conn));
            if conn["pageInfo"]["hasPreviousPage"] == false {
                break;
            }
            before = conn["pageInfo"]["startCursor"].clone();
        }
        assert_eq!(backward, expected, "backward {order}");
    }
}

#[tokio::test]
async fn never_messaged_contacts_sort_last_in_both_directions() {
    let app = seeded().await;
    for direction in ["ASC", "DESC"] {
        let order = json!({ "field": "LAST_WHATSAPP_MESSAGE_AT", "direction": direction });
        let conn = page(&app, json!({ "first": 100, "order": order })).await;
        let nodes = conn["nodes"].as_array().unwrap();
        let first_null = nodes
            .iter()
            .position(|n| n["lastWhatsappMessageAt"].is_null())
            .unwrap();
        assert!(
            nodes[first_null..]
                .iter()
                .all(|n| n["lastWhatsappMessageAt"].is_null()),
            "{direction}"
        );
        assert_eq!(nodes.len() - first_null, 6, "{direction}");
    }
}

#[tokio::test]
async fn default_page_is_first_twenty_by_creation() {
    let app = seeded().await;
    let all = all_contacts(&app).await;
    let conn = app
        .data(
            "{ contacts { nodes { id } pageInfo { hasNextPage hasPreviousPage } } }",
            json!({}),
        )
        .await;
    let got = ids(&conn["contacts"]);
    assert_eq!(
        got,
        expected_order(&all, "CREATED_AT", "ASC")[..20].to_vec()
    );
    assert_eq!(
        conn["contacts"]["pageInfo"],
        json!({ "hasNextPage": true, "hasPreviousPage": false })
    );
}

#[tokio::test]
async fn edges_nodes_and_page_info_agree() {
    let app = seeded().await;
    let conn = page(&app, json!({ "first": 3 })).await;
    let edges = conn["edges"].as_array().unwrap();
    let edge_ids: Vec<String> = edges
        .iter()
        .map(|e| e["node"]["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(edge_ids, ids(&conn));
    assert_eq!(conn["pageInfo"]["startCursor"], edges[0]["cursor"]);
    assert_eq!(conn["pageInfo"]["endCursor"], edges[2]["cursor"]);
    assert_eq!(conn["totalCount"], 23);
}

#[tokio::test]
async fn empty_result_has_no_cursors() {
    let app = TestApp::start().await;
    let conn = page(&app, json!({ "first": 5 })).await;
    assert_eq!(conn["nodes"], json!([]));
    assert_eq!(
        conn["pageInfo"],
        json!({ "hasNextPage": false, "hasPreviousPage": false, "startCursor": null, "endCursor": null })
    );
    assert_eq!(conn["totalCount"], 0);
}

#[tokio::test]
async fn first_zero_returns_no_rows_but_knows_more_exist() {
    let app = seeded().await;
    let conn = page(&app, json!({ "first": 0 })).await;
    assert_eq!(conn["nodes"], json!([]));
    assert_eq!(conn["pageInfo"]["hasNextPage"], true);
}

#[tokio::test]
async fn page_sizes_outside_0_to_100_are_bad_user_input() {
    let app = TestApp::start().await;
    for (arg, value) in [("first", 101), ("first", -1), ("last", 101), ("last", -1)] {
        let err = app.error(PAGE, json!({ arg: value })).await;
        assert_eq!(code(&err), "BAD_USER_INPUT", "{arg}={value}");
        assert_eq!(err["extensions"]["field"], arg);
    }
    let ok = page(&app, json!({ "first": 100 })).await;
    assert_eq!(ok["nodes"], json!([]));
}

#[tokio::test]
async fn first_and_last_together_are_rejected() {
    let app = TestApp::start().await;
    let err = app.error(PAGE, json!({ "first": 1, "last": 1 })).await;
    assert_eq!(code(&err), "BAD_USER_INPUT");
}

#[tokio::test]
async fn malformed_cursors_are_bad_user_input() {
    let app = TestApp::start().await;
    for cursor in ["garbage", "", "W10", "WyJDUkVBVEVEX0FUIiwxLCJ4Il0"] {
        let err = app.error(PAGE, json!({ "after": cursor })).await;
        assert_eq!(code(&err), "BAD_USER_INPUT", "{cursor}");
        assert_eq!(err["extensions"]["field"], "after");
    }
    let err = app.error(PAGE, json!({ "before": "garbage" })).await;
    assert_eq!(err["extensions"]["field"], "before");
}

#[tokio::test]
async fn cursor_of_another_order_is_rejected() {
    let app = seeded().await;
    let conn = page(&app, json!({ "first": 2 })).await;
    let cursor = conn["pageInfo"]["endCursor"].clone();
    let order = json!({ "field": "PHONE_NUMBER", "direction": "ASC" });
    let err = app
        .error(PAGE, json!({ "first": 2, "after": cursor, "order": order }))
        .await;
    assert_eq!(code(&err), "BAD_USER_INPUT");
}

#[tokio::test]
async fn walk_is_stable_while_contacts_are_inserted() {
    let app = seeded().await;
    let original: Vec<String> = all_contacts(&app)
        .await
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect();
    let order = json!({ "field": "PHONE_NUMBER", "direction": "ASC" });
    let mut seen = Vec::new();
    let mut after = Value::Null;
    for round in 0u32.. {
        let conn = page(&app, json!({ "first": 4, "after": after, "order": order })).await;
        seen.extend(ids(&conn));
        // Inserted between page requests, before and after the cursor in phone order.
        for n in 0..2 {
            app.create(json!({ "phoneNumber": format!("+5691{:03}{:04}", round, n * 9999) }))
                .await;
        }
        if conn["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = conn["pageInfo"]["endCursor"].clone();
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "a contact was returned twice");
    for id in &original {
        assert!(
            seen.contains(id),
            "contact {id} present from the start was skipped"
        );
    }
}

#[tokio::test]
async fn total_count_ignores_pagination_and_follows_the_filter() {
    let app = seeded().await;
    let data = app
        .data(
            "{ all: contacts(first: 1) { totalCount }
               never: contacts(first: 1, filter: { lastWhatsappMessageBefore: \"2026-11-24T08:30:00Z\" }) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(data["all"]["totalCount"], 23);
    // i % 4 == 1 are the 08:00 messages: i = 1, 5, 9, 13, 17, 21.
    assert_eq!(data["never"]["totalCount"], 6);
}

#[tokio::test]
async fn forged_cursors_with_values_never_written_are_bad_user_input() {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    let app = TestApp::start().await;
    app.create(json!({ "phoneNumber": "+56912345678" })).await;
    let id = uuid::Uuid::now_v7().to_string();
    let forged = [
        ("PHONE_NUMBER", json!("+569\u{0}"), "PHONE_NUMBER"),
        (
            "CREATED_AT",
            json!("0001-01-01T00:00:00+01:00"),
            "CREATED_AT",
        ),
    ];
    for (field, value, order) in forged {
        let cursor = URL_SAFE_NO_PAD.encode(json!([field, value, id]).to_string());
        let query = "query($after: String, $order: ContactOrderField!) { \
            contacts(first: 5, after: $after, orderBy: { field: $order, direction: ASC }) { totalCount } }";
        let (status, body) = app
            .post(query, json!({ "after": cursor, "order": order }))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            code(&body["errors"][0]),
            "BAD_USER_INPUT",
            "{field}: {body}"
        );
    }
}
