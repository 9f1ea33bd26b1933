//! The messaging policy through the API, with a pinned clock, on the backend the suite runs
//! on: windows per business number, marketing opt-out, blocking, and `messaging`, with the
//! field, the filters, `contactStats` and the subscription agreeing at each boundary.

mod common;

use chrono::TimeDelta;
use common::{T0, TestApp, at, code, next_event, subscribe};
use serde_json::{Value, json};

const PHONE: &str = "+56912345678";
const SALES: &str = "106540352242922";
const SUPPORT: &str = "106540352242923";

const INBOUND: &str = "mutation($p: String, $u: String, $n: String, $at: DateTime) {
    recordWhatsappInbound(input: { phoneNumber: $p, whatsappUserId: $u,
        businessPhoneNumberId: $n, receivedAt: $at }) { contact { id } } }";
const PREFERENCE: &str = "mutation($p: String, $n: String, $out: Boolean!, $at: DateTime!) {
    recordMarketingPreference(phoneNumber: $p, businessPhoneNumberId: $n, optedOut: $out,
        at: $at) { contact { id } } }";
const BLOCK: &str = "mutation($id: ID!, $b: Boolean!) {
    setContactBlocked(id: $id, blocked: $b) { contact { blocked } } }";

/// An inbound message from `PHONE` on `number` at `when`; the contact's id.
async fn message(app: &TestApp, number: Option<&str>, when: &str) -> Value {
    let data = app
        .data(INBOUND, json!({ "p": PHONE, "n": number, "at": when }))
        .await;
    data["recordWhatsappInbound"]["contact"]["id"].clone()
}

async fn preference(app: &TestApp, number: Option<&str>, opted_out: bool, when: &str) {
    app.data(
        PREFERENCE,
        json!({ "p": PHONE, "n": number, "out": opted_out, "at": when }),
    )
    .await;
}

/// Everything the API says about the window on `number` (or any): the field, the expiry,
/// `messaging`, the filter's two sides, and `contactStats`, at the request's instant.
async fn window_on(app: &TestApp, number: Option<&str>) -> Value {
    let data = app
        .data(
            "query($n: String) {
               contacts { nodes {
                 whatsappWindowOpen(businessPhoneNumberId: $n)
                 whatsappWindowExpiresAt(businessPhoneNumberId: $n)
                 messaging(businessPhoneNumberId: $n) { freeForm template marketingTemplate reasons }
               } }
               open: contacts(filter: { businessPhoneNumberId: $n, whatsappWindowOpen: true }) { totalCount }
               closed: contacts(filter: { businessPhoneNumberId: $n, whatsappWindowOpen: false }) { totalCount }
               freeForm: contacts(filter: { businessPhoneNumberId: $n, messagingFreeForm: true }) { totalCount }
               notFreeForm: contacts(filter: { businessPhoneNumberId: $n, messagingFreeForm: false }) { totalCount }
               stats: contactStats(filter: { businessPhoneNumberId: $n }) { total whatsappWindowOpen }
             }",
            json!({ "n": number }),
        )
        .await;
    let node = &data["contacts"]["nodes"][0];
    json!({
        "field": node["whatsappWindowOpen"],
        "expiresAt": node["whatsappWindowExpiresAt"],
        "freeForm": node["messaging"]["freeForm"],
        "reasons": node["messaging"]["reasons"],
        "filter": [data["open"]["totalCount"], data["closed"]["totalCount"]],
        "freeFormFilter": [data["freeForm"]["totalCount"], data["notFreeForm"]["totalCount"]],
        "statsOpen": data["stats"]["whatsappWindowOpen"],
    })
}

fn open_view(expires_at: &str) -> Value {
    json!({ "field": true, "expiresAt": expires_at, "freeForm": true, "reasons": [],
            "filter": [1, 0], "freeFormFilter": [1, 0], "statsOpen": 1 })
}

fn closed_view(expires_at: Value) -> Value {
    json!({ "field": false, "expiresAt": expires_at, "freeForm": false,
            "reasons": ["WINDOW_CLOSED"], "filter": [0, 1], "freeFormFilter": [0, 1],
            "statsOpen": 0 })
}

#[tokio::test]
async fn a_message_to_one_number_opens_that_number_only() {
    let app = TestApp::start().await;
    message(&app, Some(SALES), T0).await;
    assert_eq!(
        window_on(&app, Some(SALES)).await,
        open_view("2026-11-25T12:00:00Z")
    );
    assert_eq!(
        window_on(&app, Some(SUPPORT)).await,
        closed_view(Value::Null)
    );
    assert_eq!(
        window_on(&app, None).await,
        open_view("2026-11-25T12:00:00Z")
    );
    let windows = app
        .data(
            "{ contacts { nodes { lastWhatsappMessageAt whatsappWindows {
                 businessPhoneNumberId lastInboundAt open expiresAt } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        windows["contacts"]["nodes"][0],
        json!({ "lastWhatsappMessageAt": T0, "whatsappWindows": [{
            "businessPhoneNumberId": SALES, "lastInboundAt": T0, "open": true,
            "expiresAt": "2026-11-25T12:00:00Z" }] })
    );
}

#[tokio::test]
async fn each_number_closes_at_exactly_24_hours_and_the_contact_while_any_is_open() {
    let app = TestApp::start().await;
    message(&app, Some(SALES), "2026-11-24T10:00:00Z").await;
    message(&app, Some(SUPPORT), "2026-11-24T11:00:00Z").await;
    // A late delivery on the sales number moves nothing back.
    message(&app, Some(SALES), "2026-11-24T09:00:00Z").await;
    app.clock
        .set(at("2026-11-25T10:00:00Z") - TimeDelta::microseconds(1));
    assert_eq!(
        window_on(&app, Some(SALES)).await,
        open_view("2026-11-25T10:00:00Z")
    );
    app.clock.set(at("2026-11-25T10:00:00Z"));
    assert_eq!(
        window_on(&app, Some(SALES)).await,
        closed_view(json!("2026-11-25T10:00:00Z"))
    );
    assert_eq!(
        window_on(&app, Some(SUPPORT)).await,
        open_view("2026-11-25T11:00:00Z")
    );
    assert_eq!(
        window_on(&app, None).await,
        open_view("2026-11-25T11:00:00Z")
    );
    app.clock.set(at("2026-11-25T11:00:00Z"));
    assert_eq!(
        window_on(&app, Some(SUPPORT)).await,
        closed_view(json!("2026-11-25T11:00:00Z"))
    );
    assert_eq!(
        window_on(&app, None).await,
        closed_view(json!("2026-11-25T11:00:00Z"))
    );
}

#[tokio::test]
async fn the_subscription_on_one_number_closes_at_its_boundary_with_no_write() {
    let app = TestApp::start().await;
    let id = message(&app, Some(SALES), "2026-11-24T11:30:00Z").await;
    message(&app, Some(SUPPORT), T0).await;
    let query = "subscription($id: ID!, $n: String) {
        whatsappWindow(contactId: $id, businessPhoneNumberId: $n) { contactId open expiresAt } }";
    let mut sales = subscribe(&app, query, json!({ "id": id, "n": SALES })).await;
    let mut any = subscribe(&app, query, json!({ "id": id })).await;
    let first = next_event(&mut sales).await;
    assert_eq!(
        first["data"]["whatsappWindow"],
        json!({ "contactId": id, "open": true, "expiresAt": "2026-11-25T11:30:00Z" })
    );
    let first_any = next_event(&mut any).await;
    assert_eq!(
        first_any["data"]["whatsappWindow"]["expiresAt"],
        "2026-11-25T12:00:00Z"
    );
    app.clock.set(at("2026-11-25T11:30:00Z"));
    let closed = next_event(&mut sales).await;
    assert_eq!(
        closed["data"]["whatsappWindow"],
        json!({ "contactId": id, "open": false, "expiresAt": "2026-11-25T11:30:00Z" })
    );
    // At that instant the field, the filters and the counts say the same.
    assert_eq!(
        window_on(&app, Some(SALES)).await,
        closed_view(json!("2026-11-25T11:30:00Z"))
    );
    assert_eq!(
        window_on(&app, None).await,
        open_view("2026-11-25T12:00:00Z")
    );
    // The window on any number closes at its own boundary.
    app.clock.set(at("2026-11-25T12:00:00Z"));
    let closed_any = next_event(&mut any).await;
    assert_eq!(
        closed_any["data"]["whatsappWindow"],
        json!({ "contactId": id, "open": false, "expiresAt": "2026-11-25T12:00:00Z" })
    );
}

/// `marketingOptedOut` and `messaging.marketingTemplate` on `number`, and the two sides of
/// the `marketingAllowed` filter.
async fn marketing_on(app: &TestApp, number: Option<&str>) -> Value {
    let data = app
        .data(
            "query($n: String) {
               contacts { nodes { marketingOptedOut(businessPhoneNumberId: $n)
                 messaging(businessPhoneNumberId: $n) { marketingTemplate reasons } } }
               allowed: contacts(filter: { businessPhoneNumberId: $n, marketingAllowed: true }) { totalCount }
               refused: contacts(filter: { businessPhoneNumberId: $n, marketingAllowed: false }) { totalCount }
             }",
            json!({ "n": number }),
        )
        .await;
    let node = &data["contacts"]["nodes"][0];
    json!([
        node["marketingOptedOut"],
        node["messaging"]["marketingTemplate"],
        data["allowed"]["totalCount"],
        data["refused"]["totalCount"],
        node["messaging"]["reasons"]
            .as_array()
            .is_some_and(|r| r.contains(&json!("MARKETING_OPT_OUT"))),
    ])
}

fn marketing(opted_out: bool) -> Value {
    if opted_out {
        json!([true, false, 0, 1, true])
    } else {
        json!([false, true, 1, 0, false])
    }
}

#[tokio::test]
async fn the_later_choice_wins_whatever_order_it_arrives_in() {
    let app = TestApp::start().await;
    message(&app, Some(SALES), T0).await;
    assert_eq!(marketing_on(&app, Some(SALES)).await, marketing(false));
    preference(&app, Some(SALES), true, "2026-11-24T11:00:00Z").await;
    assert_eq!(marketing_on(&app, Some(SALES)).await, marketing(true));
    // A resume made before the stop, delivered after it: changes nothing.
    preference(&app, Some(SALES), false, "2026-11-24T10:00:00Z").await;
    assert_eq!(marketing_on(&app, Some(SALES)).await, marketing(true));
    // A later resume wins.
    preference(&app, Some(SALES), false, "2026-11-24T11:30:00Z").await;
    assert_eq!(marketing_on(&app, Some(SALES)).await, marketing(false));
    // The choice was about the sales number only.
    preference(&app, Some(SALES), true, "2026-11-24T11:45:00Z").await;
    assert_eq!(marketing_on(&app, Some(SUPPORT)).await, marketing(false));
    assert_eq!(marketing_on(&app, None).await, marketing(false));
    assert_eq!(marketing_on(&app, Some(SALES)).await, marketing(true));
}

#[tokio::test]
async fn a_stop_for_all_numbers_and_a_resume_on_one_combine_by_time() {
    let app = TestApp::start().await;
    preference(&app, None, true, "2026-11-24T10:00:00Z").await;
    for number in [Some(SALES), Some(SUPPORT), None] {
        assert_eq!(
            marketing_on(&app, number).await,
            marketing(true),
            "{number:?}"
        );
    }
    // A later resume on the sales number: that number only.
    preference(&app, Some(SALES), false, "2026-11-24T11:00:00Z").await;
    assert_eq!(marketing_on(&app, Some(SALES)).await, marketing(false));
    assert_eq!(marketing_on(&app, Some(SUPPORT)).await, marketing(true));
    assert_eq!(marketing_on(&app, None).await, marketing(true));
    // A later stop for all numbers stops the sales number again.
    preference(&app, None, true, "2026-11-24T11:30:00Z").await;
    assert_eq!(marketing_on(&app, Some(SALES)).await, marketing(true));
    // A resume for all numbers at the same instant as a stop on one: the stop wins there.
    preference(&app, None, false, "2026-11-24T11:45:00Z").await;
    preference(&app, Some(SUPPORT), true, "2026-11-24T11:45:00Z").await;
    assert_eq!(marketing_on(&app, Some(SUPPORT)).await, marketing(true));
    assert_eq!(marketing_on(&app, Some(SALES)).await, marketing(false));
    assert_eq!(marketing_on(&app, None).await, marketing(false));
}

#[tokio::test]
async fn a_preference_finds_or_creates_the_contact_and_opens_no_window() {
    let app = TestApp::start().await;
    preference(&app, Some(SALES), true, "2026-11-24T11:00:00Z").await;
    let data = app
        .data(
            "{ contacts { nodes { phoneNumber lastWhatsappMessageAt whatsappWindows { open } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        data["contacts"]["nodes"],
        json!([{ "phoneNumber": PHONE, "lastWhatsappMessageAt": null, "whatsappWindows": [] }])
    );
    let error = app
        .error(
            "mutation { recordMarketingPreference(businessPhoneNumberId: \"12\", optedOut: true,
                 at: \"2026-11-24T11:00:00Z\") { contact { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&error), "BAD_USER_INPUT");
    let error = app
        .error(
            "mutation { recordMarketingPreference(phoneNumber: \"+56912345678\",
                 businessPhoneNumberId: \"12x\", optedOut: true, at: \"2026-11-24T11:00:00Z\") {
                 contact { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&error), "BAD_USER_INPUT");
    assert_eq!(error["extensions"]["field"], "businessPhoneNumberId");
}

#[tokio::test]
async fn blocking_needs_an_open_window_and_unblocking_restores_messaging() {
    let app = TestApp::start().await;
    let id = app.create(json!({ "phoneNumber": PHONE })).await["id"].clone();
    let error = app.error(BLOCK, json!({ "id": id, "b": true })).await;
    assert_eq!(code(&error), "FAILED_PRECONDITION");
    message(&app, Some(SALES), T0).await;
    let blocked = app.data(BLOCK, json!({ "id": id, "b": true })).await;
    assert_eq!(blocked["setContactBlocked"]["contact"]["blocked"], true);
    let view = app
        .data(
            "{ contacts { nodes { blocked messaging { freeForm template marketingTemplate reasons } } }
               freeForm: contacts(filter: { messagingFreeForm: true }) { totalCount }
               marketing: contacts(filter: { marketingAllowed: false }) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(
        view,
        json!({ "contacts": { "nodes": [{ "blocked": true, "messaging": {
                    "freeForm": false, "template": false, "marketingTemplate": false,
                    "reasons": ["BLOCKED"] } }] },
                "freeForm": { "totalCount": 0 }, "marketing": { "totalCount": 1 } })
    );
    // Unblocking is allowed once the window has closed, too.
    app.clock.set(at(T0) + TimeDelta::hours(25));
    app.data(BLOCK, json!({ "id": id, "b": false })).await;
    assert_eq!(
        window_on(&app, Some(SALES)).await,
        closed_view(json!("2026-11-25T12:00:00Z"))
    );
    app.clock.set(at(T0));
    assert_eq!(
        window_on(&app, Some(SALES)).await,
        open_view("2026-11-25T12:00:00Z")
    );
    let missing = app
        .error(
            BLOCK,
            json!({ "id": "0190b7a0-0000-7000-8000-000000000000", "b": true }),
        )
        .await;
    assert_eq!(code(&missing), "NOT_FOUND");
}

#[tokio::test]
async fn a_merge_keeps_every_window_choice_and_block() {
    let app = TestApp::start().await;
    const BSUID: &str = "CL.1234567890";
    message(&app, Some(SALES), "2026-11-24T10:00:00Z").await;
    app.data(
        INBOUND,
        json!({ "u": BSUID, "n": SUPPORT, "at": "2026-11-24T11:00:00Z" }),
    )
    .await;
    preference(&app, Some(SALES), true, "2026-11-24T11:00:00Z").await;
    let both = app
        .data(
            INBOUND,
            json!({ "p": PHONE, "u": BSUID, "at": "2026-11-24T11:30:00Z" }),
        )
        .await;
    let id = both["recordWhatsappInbound"]["contact"]["id"].clone();
    let data = app
        .data(
            "{ contacts { nodes { id lastWhatsappMessageAt marketingOptedOut(businessPhoneNumberId: \"106540352242922\")
                 whatsappWindows { businessPhoneNumberId lastInboundAt } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        data["contacts"]["nodes"],
        json!([{ "id": id, "lastWhatsappMessageAt": "2026-11-24T11:30:00Z",
                 "marketingOptedOut": true, "whatsappWindows": [
            { "businessPhoneNumberId": null, "lastInboundAt": "2026-11-24T11:30:00Z" },
            { "businessPhoneNumberId": SUPPORT, "lastInboundAt": "2026-11-24T11:00:00Z" },
            { "businessPhoneNumberId": SALES, "lastInboundAt": "2026-11-24T10:00:00Z" } ] }])
    );
}

#[tokio::test]
async fn a_time_written_by_hand_is_the_window_of_no_number() {
    let app = TestApp::start().await;
    let id = message(&app, Some(SALES), "2026-11-24T11:00:00Z").await;
    let update = "mutation($id: ID!, $at: DateTime) {
        updateContact(id: $id, input: { lastWhatsappMessageAt: $at }) {
          contact { lastWhatsappMessageAt whatsappWindows { businessPhoneNumberId } } } }";
    let later = app
        .data(update, json!({ "id": id, "at": "2026-11-24T11:30:00Z" }))
        .await;
    assert_eq!(
        later["updateContact"]["contact"],
        json!({ "lastWhatsappMessageAt": "2026-11-24T11:30:00Z", "whatsappWindows": [
            { "businessPhoneNumberId": null }, { "businessPhoneNumberId": SALES } ] })
    );
    // Cleared: the sales number's window remains, and the contact-level time is its.
    let cleared = app.data(update, json!({ "id": id, "at": null })).await;
    assert_eq!(
        cleared["updateContact"]["contact"],
        json!({ "lastWhatsappMessageAt": "2026-11-24T11:00:00Z", "whatsappWindows": [
            { "businessPhoneNumberId": SALES } ] })
    );
    let by_filter = app
        .data(
            "{ contacts(filter: { whatsappWindowOpen: true }) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(by_filter["contacts"]["totalCount"], 1);
}
