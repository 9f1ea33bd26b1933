//! Attacks on the late changes: the closed-window filter on `+column` (SQLite), the page of
//! open windows on a business number read from the number's windows, and the bound on
//! marketing choices that drops resumes before opt-outs.

mod common;

use chrono::TimeDelta;
use common::{T0, TestApp};
use serde_json::{Value, json};

const B: &str = "7000001";
const C: &str = "7000002";

/// `T0` minus `seconds`, as RFC 3339.
fn before_t0(seconds: i64) -> String {
    (common::at(T0) - TimeDelta::seconds(seconds)).to_rfc3339()
}

async fn inbound(app: &TestApp, phone: &str, number: Option<&str>, seconds_before: i64) -> Value {
    let input = match number {
        Some(n) => json!({ "phoneNumber": phone, "businessPhoneNumberId": n,
                           "receivedAt": before_t0(seconds_before) }),
        None => json!({ "phoneNumber": phone, "receivedAt": before_t0(seconds_before) }),
    };
    let data = app
        .data(
            "mutation($input: RecordWhatsappInboundInput!) { recordWhatsappInbound(input: $input) \
             { contact { id } } }",
            json!({ "input": input }),
        )
        .await;
    data["recordWhatsappInbound"]["contact"]["id"].clone()
}

/// Never messaged, closed at exactly 24 h, open by a second, open elsewhere, blocked while
/// open, closed on B but open elsewhere, open on no number.
async fn mixed_contacts(app: &TestApp) {
    for phone in ["+56911000001", "+56911000002"] {
        app.create(json!({ "phoneNumber": phone })).await;
    }
    inbound(app, "+56911000003", Some(B), 24 * 3600).await;
    inbound(app, "+56911000004", Some(B), 24 * 3600 - 1).await;
    inbound(app, "+56911000005", Some(C), 3600).await;
    let blocked = inbound(app, "+56911000006", Some(B), 2 * 3600).await;
    app.data(
        "mutation($id: ID!) { setContactBlocked(id: $id, blocked: true) { contact { id } } }",
        json!({ "id": blocked }),
    )
    .await;
    inbound(app, "+56911000007", Some(B), 30 * 3600).await;
    inbound(app, "+56911000007", Some(C), 3 * 3600).await;
    inbound(app, "+56911000008", None, 5 * 3600).await;
    inbound(app, "+56911000009", Some(B), 100 * 3600).await;
}

const PAGE: &str = "query($first: Int, $last: Int, $after: String, $before: String, \
    $filter: ContactFilter, $order: ContactOrder) { contacts(first: $first, last: $last, \
    after: $after, before: $before, filter: $filter, orderBy: $order) { totalCount \
    nodes { id } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }";

fn ids(page: &Value) -> Vec<Value> {
    page["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| n["id"].clone())
        .collect()
}

/// Every page of `filter` in `order`, two at a time, forward then backward.
async fn walk(app: &TestApp, filter: &Value, order: &Value) -> (Vec<Value>, Vec<Value>, Value) {
    let mut forward = Vec::new();
    let mut after = Value::Null;
    let mut total = Value::Null;
    loop {
        let vars = json!({ "first": 2, "after": after, "filter": filter, "order": order });
        let page = app.data(PAGE, vars).await["contacts"].clone();
        total = page["totalCount"].clone();
        forward.extend(ids(&page));
        if page["pageInfo"]["hasNextPage"] != json!(true) {
            break;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
    let mut backward = Vec::new();
    let mut before = Value::Null;
    loop {
        let vars = json!({ "last": 2, "before": before, "filter": filter, "order": order });
        let page = app.data(PAGE, vars).await["contacts"].clone();
        let mut got = ids(&page);
        got.extend(backward);
        backward = got;
        if page["pageInfo"]["hasPreviousPage"] != json!(true) {
            break;
        }
        before = page["pageInfo"]["startCursor"].clone();
    }
    (forward, backward, total)
}

/// Each window and free-form filter, with and without a business number, in every order
/// both ways, at T0 and a second later (the window opened 24 h minus 1 s ago then closes):
/// the pages list exactly the contacts whose fields say so, in the unfiltered order, and
/// `totalCount` and `contactStats` count them.
#[tokio::test]
async fn window_filters_agree_with_the_fields_in_every_order_both_ways() {
    let app = TestApp::start().await;
    mixed_contacts(&app).await;
    let fields = "query($order: ContactOrder, $b: String) { contacts(first: 100, orderBy: $order) \
        { nodes { id open: whatsappWindowOpen(businessPhoneNumberId: $b) \
        messaging(businessPhoneNumberId: $b) { freeForm } } } }";
    for step in 0..2 {
        app.clock.advance(TimeDelta::seconds(step));
        for field in [
            "CREATED_AT",
            "UPDATED_AT",
            "LAST_WHATSAPP_MESSAGE_AT",
            "PHONE_NUMBER",
        ] {
            for direction in ["ASC", "DESC"] {
                let order = json!({ "field": field, "direction": direction });
                for number in [None, Some(B)] {
                    let all = app
                        .data(fields, json!({ "order": order, "b": number }))
                        .await;
                    let nodes = all["contacts"]["nodes"].as_array().expect("nodes").clone();
                    for (name, wanted) in [
                        ("whatsappWindowOpen", false),
                        ("whatsappWindowOpen", true),
                        ("messagingFreeForm", false),
                        ("messagingFreeForm", true),
                    ] {
                        let expected: Vec<Value> = nodes
                            .iter()
                            .filter(|n| {
                                let value = if name == "whatsappWindowOpen" {
                                    &n["open"]
                                } else {
                                    &n["messaging"]["freeForm"]
                                };
                                *value == json!(wanted)
                            })
                            .map(|n| n["id"].clone())
                            .collect();
                        let mut filter = json!({ name: wanted });
                        if let Some(n) = number {
                            filter["businessPhoneNumberId"] = json!(n);
                        }
                        let (forward, backward, total) = walk(&app, &filter, &order).await;
                        let context = format!("{filter} {order} +{step}s");
                        // The fields themselves: p3 closed at exactly 24 h, p4 closes at +1 s.
                        let sizes = match (number, name, wanted) {
                            (None, "whatsappWindowOpen", false) => [4, 5],
                            (Some(_), "whatsappWindowOpen", true) => [2, 1],
                            (Some(_), "messagingFreeForm", true) => [1, 0],
                            _ => [expected.len(); 2],
                        };
                        assert_eq!(expected.len(), sizes[step as usize], "fields {context}");
                        assert_eq!(forward, expected, "forward {context}");
                        assert_eq!(backward, expected, "backward {context}");
                        assert_eq!(total, json!(expected.len()), "totalCount {context}");
                        let stats = app
                            .data(
                                "query($filter: ContactFilter) { contactStats(filter: $filter) \
                                 { total } }",
                                json!({ "filter": filter }),
                            )
                            .await;
                        assert_eq!(
                            stats["contactStats"]["total"],
                            json!(expected.len()),
                            "contactStats {context}"
                        );
                    }
                }
            }
        }
    }
}

/// The bound on choices keeps opt-outs first; SECURITY.md says the bound never drops the
/// latest choice. With 100 opt-outs stored, a resume on another number, the contact's latest
/// choice, is dropped as soon as it is stored: the contact stays opted out on that number
/// although its last word there was "resume", and the mutation reported success.
#[tokio::test]
async fn past_the_bound_the_latest_choice_a_resume_is_kept() {
    let app = TestApp::start().await;
    let record = |number: Option<u64>, opted_out: bool, minute: u64| {
        let scope = number.map_or(String::new(), |n| {
            format!("businessPhoneNumberId: \"{n}\", ")
        });
        format!(
            "m{minute}: recordMarketingPreference(phoneNumber: \"+56912345678\", {scope}\
             optedOut: {opted_out}, at: \"2026-11-24T{:02}:{:02}:00Z\") {{ contact {{ id }} }}",
            minute / 60,
            minute % 60
        )
    };
    let mut calls = vec![record(None, true, 0)];
    calls.extend((1..=100).map(|i| record(Some(5_000_000 + i), true, i)));
    calls.push(record(Some(5_000_101), false, 101));
    for batch in calls.chunks(10) {
        let (status, body) = app
            .post(&format!("mutation {{ {} }}", batch.join(" ")), json!({}))
            .await;
        assert_eq!(status, 200, "{body}");
        assert!(body.get("errors").is_none(), "{body}");
    }
    let data = app
        .data(
            "{ contacts { nodes { latest: marketingOptedOut(businessPhoneNumberId: \"5000101\") \
             newest_out: marketingOptedOut(businessPhoneNumberId: \"5000100\") } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        data["contacts"]["nodes"][0],
        json!({ "latest": false, "newest_out": true }),
        "the latest choice (a resume on 5000101) must count"
    );
}
