//! The 24-hour window through the API, with a pinned clock: the field, the filter and the
//! stats agree on both sides of the boundary.

mod common;

use chrono::TimeDelta;
use common::{TestApp, at};
use serde_json::{Value, json};

const LAST: &str = "2026-11-24T10:00:00Z";

async fn window_view(app: &TestApp) -> (Value, Value, Value) {
    let data = app
        .data(
            "{ contacts { nodes { whatsappWindowOpen whatsappWindowExpiresAt } }
               open: contactStats(filter: { whatsappWindowOpen: true }) { total }
               stats: contactStats { whatsappWindowOpen }
               openList: contacts(filter: { whatsappWindowOpen: true }) { totalCount }
               closedList: contacts(filter: { whatsappWindowOpen: false }) { totalCount } }",
            json!({}),
        )
        .await;
    let node = data["contacts"]["nodes"][0].clone();
    let open_by_filter = json!([
        data["openList"]["totalCount"],
        data["closedList"]["totalCount"]
    ]);
    let stats = json!([data["open"]["total"], data["stats"]["whatsappWindowOpen"]]);
    (node, open_by_filter, stats)
}

async fn app_with_message_at(last: &str) -> TestApp {
    let app = TestApp::start().await;
    app.create(json!({ "phoneNumber": "+56912345678", "lastWhatsappMessageAt": last }))
        .await;
    app
}

#[tokio::test]
async fn window_open_one_microsecond_before_24h() {
    let app = app_with_message_at(LAST).await;
    app.clock
        .set(at(LAST) + TimeDelta::hours(24) - TimeDelta::microseconds(1));
    let (node, by_filter, stats) = window_view(&app).await;
    assert_eq!(node["whatsappWindowOpen"], true);
    assert_eq!(by_filter, json!([1, 0]));
    assert_eq!(stats, json!([1, 1]));
}

#[tokio::test]
async fn window_closes_at_exactly_24h() {
    let app = app_with_message_at(LAST).await;
    app.clock.set(at(LAST) + TimeDelta::hours(24));
    let (node, by_filter, stats) = window_view(&app).await;
    assert_eq!(node["whatsappWindowOpen"], false);
    assert_eq!(node["whatsappWindowExpiresAt"], "2026-11-25T10:00:00Z");
    assert_eq!(by_filter, json!([0, 1]));
    assert_eq!(stats, json!([0, 0]));
}

#[tokio::test]
async fn never_messaged_contact_has_a_closed_window_and_no_expiry() {
    let app = TestApp::start().await;
    let contact = app.create(json!({ "phoneNumber": "+56912345678" })).await;
    assert_eq!(contact["whatsappWindowOpen"], false);
    assert_eq!(contact["whatsappWindowExpiresAt"], Value::Null);
    assert_eq!(contact["lastWhatsappMessageAt"], Value::Null);
    let (_, by_filter, stats) = window_view(&app).await;
    assert_eq!(by_filter, json!([0, 1]));
    assert_eq!(stats, json!([0, 0]));
}

#[tokio::test]
async fn inbound_message_reopens_a_closed_window() {
    let app = app_with_message_at(LAST).await;
    app.clock.set(at(LAST) + TimeDelta::hours(30));
    assert_eq!(window_view(&app).await.0["whatsappWindowOpen"], false);
    let data = app
        .data(
            "mutation { recordWhatsappMessage(phoneNumber: \"+56912345678\") {
                contact { whatsappWindowOpen lastWhatsappMessageAt whatsappWindowExpiresAt } } }",
            json!({}),
        )
        .await;
    let contact = &data["recordWhatsappMessage"]["contact"];
    assert_eq!(contact["whatsappWindowOpen"], true);
    assert_eq!(contact["lastWhatsappMessageAt"], "2026-11-25T16:00:00Z");
    assert_eq!(contact["whatsappWindowExpiresAt"], "2026-11-26T16:00:00Z");
}

#[tokio::test]
async fn datetimes_are_utc_with_z_and_keep_microseconds() {
    let app = app_with_message_at("2026-11-24T12:37:00.123456+02:00").await;
    let (node, _, _) = window_view(&app).await;
    assert_eq!(
        node["whatsappWindowExpiresAt"],
        "2026-11-25T10:37:00.123456Z"
    );
    let data = app
        .data(
            "{ contacts { nodes { lastWhatsappMessageAt createdAt } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        data["contacts"]["nodes"][0]["lastWhatsappMessageAt"],
        "2026-11-24T10:37:00.123456Z"
    );
    assert_eq!(
        data["contacts"]["nodes"][0]["createdAt"],
        "2026-11-24T12:00:00Z"
    );
}

#[tokio::test]
async fn window_filter_splits_a_mixed_population() {
    let app = TestApp::start().await;
    let now = at(common::T0);
    let cases = [
        ("+56911111111", Some(now - TimeDelta::hours(1))),
        ("+56922222222", Some(now - TimeDelta::hours(24))),
        (
            "+56933333333",
            Some(now - TimeDelta::hours(23) - TimeDelta::minutes(59)),
        ),
        ("+56944444444", None),
    ];
    for (phone, last) in cases {
        let last = last.map(|t| t.to_rfc3339());
        app.create(json!({ "phoneNumber": phone, "lastWhatsappMessageAt": last }))
            .await;
    }
    let data = app
        .data(
            "{ open: contacts(filter: { whatsappWindowOpen: true }, orderBy: { field: PHONE_NUMBER, direction: ASC }) {
                 nodes { phoneNumber whatsappWindowOpen } }
               closed: contacts(filter: { whatsappWindowOpen: false }, orderBy: { field: PHONE_NUMBER, direction: ASC }) {
                 nodes { phoneNumber whatsappWindowOpen } } }",
            json!({}),
        )
        .await;
    let phones = |list: &Value| -> Vec<String> {
        list["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["phoneNumber"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(phones(&data["open"]), ["+56911111111", "+56933333333"]);
    assert_eq!(phones(&data["closed"]), ["+56922222222", "+56944444444"]);
    assert!(
        data["open"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["whatsappWindowOpen"] == true)
    );
    assert!(
        data["closed"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["whatsappWindowOpen"] == false)
    );
}
