//! `POST /webhooks/whatsapp`: Meta's documented example payloads replayed signed
//! (tests/fixtures/meta, each naming its source) and what they leave in the contacts;
//! redelivery, concurrent and across instances; a failed write. Runs on SQLite, and on
//! PostgreSQL with TEST_DATABASE_URL. Refusals are in webhook_security.rs.

mod common;

use chrono::TimeDelta;
use common::{
    TestApp, at,
    webhook::{SECRET, VERIFY_TOKEN, app, contact_count, deliver, fixture, metric, metrics},
};
use serde_json::{Value, json};

const SHEENA: &str = "+16505551234";
const SHEENA_BSUID: &str = "US.13491208655302741918";
/// `metadata.phone_number_id` of Meta's examples.
const BUSINESS: &str = "106540352242922";

const FIELDS: &str = "id phoneNumber whatsappUserId parentWhatsappUserId whatsappUsername \
    whatsappProfileName lastWhatsappMessageAt whatsappWindowOpen previousWhatsappUserIds";

async fn by_phone(app: &TestApp, phone: &str) -> Value {
    let query =
        format!("query($p: String!) {{ contactByPhoneNumber(phoneNumber: $p) {{ {FIELDS} }} }}");
    app.data(&query, json!({ "p": phone })).await["contactByPhoneNumber"].clone()
}

async fn by_user_id(app: &TestApp, user_id: &str) -> Value {
    let query = format!(
        "query($u: String!) {{ contactByWhatsappUserId(whatsappUserId: $u) {{ {FIELDS} }} }}"
    );
    app.data(&query, json!({ "u": user_id })).await["contactByWhatsappUserId"].clone()
}

async fn windows_of(app: &TestApp, phone: &str) -> Value {
    let query = "query($p: String!) { contactByPhoneNumber(phoneNumber: $p) { \
        whatsappWindows { businessPhoneNumberId lastInboundAt open } } }";
    let data = app.data(query, json!({ "p": phone })).await;
    data["contactByPhoneNumber"]["whatsappWindows"].clone()
}

async fn opted_out(app: &TestApp, phone: &str) -> (Value, Value) {
    let query = "query($p: String!, $b: String!) { contactByPhoneNumber(phoneNumber: $p) { \
        here: marketingOptedOut(businessPhoneNumberId: $b) \
        elsewhere: marketingOptedOut(businessPhoneNumberId: \"999\") } }";
    let data = app.data(query, json!({ "p": phone, "b": BUSINESS })).await;
    let contact = &data["contactByPhoneNumber"];
    (contact["here"].clone(), contact["elsewhere"].clone())
}

/// Whether Sheena's contact was written once: created and never updated since.
async fn written_once(app: &TestApp) -> bool {
    let query =
        "query($p: String!) { contactByPhoneNumber(phoneNumber: $p) { createdAt updatedAt } }";
    let data = app.data(query, json!({ "p": SHEENA })).await;
    let contact = &data["contactByPhoneNumber"];
    contact["createdAt"].is_string() && contact["createdAt"] == contact["updatedAt"]
}

#[tokio::test]
async fn text_message_records_the_sender_and_opens_the_window() {
    let app = app().await;
    // An hour after the message (2025-06-08T20:59:43Z): the window is open.
    app.clock.set(at("2025-06-08T21:59:43Z"));
    assert_eq!(deliver(&app, &fixture("text_message.json")).await, 200);
    let contact = by_phone(&app, SHEENA).await;
    assert_eq!(contact["lastWhatsappMessageAt"], "2025-06-08T20:59:43Z");
    assert_eq!(contact["whatsappProfileName"], "Sheena Nelson");
    assert_eq!(contact["whatsappWindowOpen"], true);
    // The window belongs to the business number that received it (`metadata.phone_number_id`).
    let windows = windows_of(&app, SHEENA).await;
    assert_eq!(
        windows,
        json!([{ "businessPhoneNumberId": BUSINESS, "lastInboundAt": "2025-06-08T20:59:43Z", "open": true }])
    );
    let text = metrics(&app).await;
    let series =
        r#"whatsapp_webhook_events_total{field="messages",kind="text",outcome="recorded"}"#;
    assert_eq!(metric(&text, series), 1, "{text}");
    let series = r#"whatsapp_webhook_deliveries_total{field="messages",outcome="ok"}"#;
    assert_eq!(metric(&text, series), 1, "{text}");
}

#[tokio::test]
async fn username_only_sender_becomes_a_contact_without_phone_number() {
    let app = app().await;
    assert_eq!(
        deliver(&app, &fixture("text_message_username_only.json")).await,
        200
    );
    let contact = by_user_id(&app, SHEENA_BSUID).await;
    assert_eq!(contact["phoneNumber"], Value::Null);
    assert_eq!(
        contact["parentWhatsappUserId"],
        "US.ENT.11815799212886844830"
    );
    assert_eq!(contact["whatsappUsername"], "@realsheenanelson");
    assert_eq!(contact["whatsappProfileName"], "Sheena Nelson");
    assert_eq!(contact["lastWhatsappMessageAt"], "2025-06-08T20:59:43Z");
    assert_eq!(contact_count(&app).await, 1);
}

#[tokio::test]
async fn user_initiated_call_is_an_inbound_event() {
    let app = app().await;
    assert_eq!(deliver(&app, &fixture("call_connect.json")).await, 200);
    let contact = by_phone(&app, "+16315553601").await;
    assert_eq!(contact["lastWhatsappMessageAt"], "2022-12-21T17:47:04Z");
    assert_eq!(contact["whatsappProfileName"], "Pablo Morales");
    let windows = windows_of(&app, "+16315553601").await;
    assert_eq!(windows[0]["businessPhoneNumberId"], "436666719526789");
    // A business-initiated call, or the end of a call, is not the user reaching us.
    let outbound = fixture("call_connect.json")
        .replace("USER_INITIATED", "BUSINESS_INITIATED")
        .replace("wacid.ABGG", "wacid.OTHER")
        .replace("16315553601", "16315550000");
    assert_eq!(deliver(&app, &outbound).await, 200);
    let ended = fixture("call_connect.json")
        .replace("\"connect\"", "\"terminate\"")
        .replace("16315553601", "16315550001");
    assert_eq!(deliver(&app, &ended).await, 200);
    assert_eq!(contact_count(&app).await, 1);
    let text = metrics(&app).await;
    let ignored =
        r#"whatsapp_webhook_events_total{field="calls",kind="connect",outcome="ignored"}"#;
    assert_eq!(metric(&text, ignored), 1, "{text}");
}

#[tokio::test]
async fn marketing_stop_then_resume_is_recorded_per_business_number() {
    let app = app().await;
    assert_eq!(
        deliver(&app, &fixture("user_preferences_stop.json")).await,
        200
    );
    // The user is found (or created) as an inbound event would find them.
    let contact = by_phone(&app, SHEENA).await;
    assert_eq!(contact["whatsappUserId"], SHEENA_BSUID);
    assert_eq!(opted_out(&app, SHEENA).await, (json!(true), json!(false)));
    assert_eq!(
        deliver(&app, &fixture("user_preferences_resume.json")).await,
        200
    );
    assert_eq!(opted_out(&app, SHEENA).await, (json!(false), json!(false)));
    // A late redelivery of the stop does not undo the later resume.
    assert_eq!(
        deliver(&app, &fixture("user_preferences_stop.json")).await,
        200
    );
    assert_eq!(opted_out(&app, SHEENA).await, (json!(false), json!(false)));
    assert_eq!(contact_count(&app).await, 1);
    let text = metrics(&app).await;
    let stops =
        r#"whatsapp_webhook_events_total{field="user_preferences",kind="stop",outcome="recorded"}"#;
    assert_eq!(metric(&text, stops), 2, "{text}");
}

#[tokio::test]
async fn user_preference_changed_system_message_records_the_choice() {
    let app = app().await;
    let system = r#""type": "system", "system": {"body": "User stopped marketing messages",
        "type": "user_preference_changed", "marketing": "stop"}"#;
    let body = fixture("text_message.json").replace(r#""type": "text","#, &format!("{system},"));
    assert_eq!(deliver(&app, &body).await, 200, "{body}");
    assert_eq!(opted_out(&app, SHEENA).await, (json!(true), json!(false)));
}

#[tokio::test]
async fn invalid_event_is_skipped_and_the_rest_of_the_delivery_recorded() {
    let app = app().await;
    // Two messages in one delivery: one from a number that cannot exist, then Sheena's.
    let mut delivery: Value = serde_json::from_str(&fixture("text_message.json")).expect("json");
    let messages = &mut delivery["entry"][0]["changes"][0]["value"]["messages"];
    let mut bad = messages[0].clone();
    bad["from"] = json!("1");
    bad["id"] = json!("wamid.invalid");
    messages.as_array_mut().expect("messages").insert(0, bad);
    assert_eq!(deliver(&app, &delivery.to_string()).await, 200);
    assert_eq!(contact_count(&app).await, 1);
    assert_eq!(
        by_phone(&app, SHEENA).await["whatsappProfileName"],
        "Sheena Nelson"
    );
    let text = metrics(&app).await;
    let invalid =
        r#"whatsapp_webhook_events_total{field="messages",kind="text",outcome="invalid"}"#;
    assert_eq!(metric(&text, invalid), 1, "{text}");
}

#[tokio::test]
async fn status_update_records_nothing() {
    let app = app().await;
    assert_eq!(deliver(&app, &fixture("status_delivered.json")).await, 200);
    assert_eq!(contact_count(&app).await, 0);
    let text = metrics(&app).await;
    let series =
        r#"whatsapp_webhook_events_total{field="messages",kind="status",outcome="ignored"}"#;
    assert_eq!(metric(&text, series), 1, "{text}");
}

#[tokio::test]
async fn unknown_field_and_type_are_accepted_and_counted() {
    let app = app().await;
    assert_eq!(deliver(&app, &fixture("unknown_field.json")).await, 200);
    assert_eq!(contact_count(&app).await, 0);
    // A message type and a property Meta may add tomorrow: still a message from the user.
    let novel = fixture("text_message.json").replace(
        "\"type\": \"text\"",
        "\"type\": \"hologram\", \"novelty\": {\"x\": [1]}",
    );
    assert_eq!(deliver(&app, &novel).await, 200);
    assert_eq!(
        by_phone(&app, SHEENA).await["whatsappProfileName"],
        "Sheena Nelson"
    );
    let text = metrics(&app).await;
    let field = r#"whatsapp_webhook_events_total{field="other",kind="other",outcome="unknown"}"#;
    assert_eq!(metric(&text, field), 1, "{text}");
    let kind = r#"whatsapp_webhook_events_total{field="messages",kind="other",outcome="recorded"}"#;
    assert_eq!(metric(&text, kind), 1, "{text}");
}

#[tokio::test]
async fn user_id_update_moves_the_contact_to_its_new_bsuid() {
    let app = app().await;
    let with_bsuid = fixture("text_message.json").replace(
        "\"from\": \"16505551234\",",
        &format!("\"from\": \"16505551234\", \"from_user_id\": \"{SHEENA_BSUID}\","),
    );
    assert_eq!(deliver(&app, &with_bsuid).await, 200);
    let before = by_phone(&app, SHEENA).await;
    assert_eq!(before["whatsappUserId"], SHEENA_BSUID);
    assert_eq!(deliver(&app, &fixture("user_id_update.json")).await, 200);
    let after = by_user_id(&app, "US.20489216573018264590").await;
    assert_eq!(after["id"], before["id"]);
    assert_eq!(after["previousWhatsappUserIds"], json!([SHEENA_BSUID]));
    // A late message carrying the old BSUID still finds the same person.
    assert_eq!(by_user_id(&app, SHEENA_BSUID).await["id"], before["id"]);
    assert_eq!(contact_count(&app).await, 1);
}

#[tokio::test]
async fn system_message_of_a_new_bsuid_moves_the_contact() {
    let app = app().await;
    let with_bsuid = fixture("text_message.json").replace(
        "\"from\": \"16505551234\",",
        &format!("\"from\": \"16505551234\", \"from_user_id\": \"{SHEENA_BSUID}\","),
    );
    assert_eq!(deliver(&app, &with_bsuid).await, 200);
    let before = by_phone(&app, SHEENA).await;
    let system = fixture("system_user_changed_user_id.json");
    assert_eq!(deliver(&app, &system).await, 200);
    let after = by_user_id(&app, "US.30571948260317465182").await;
    assert_eq!(after["id"], before["id"]);
    assert_eq!(after["phoneNumber"], "+16505559876");
    assert_eq!(after["previousWhatsappUserIds"], json!([SHEENA_BSUID]));
    assert_eq!(contact_count(&app).await, 1);
}

#[tokio::test]
async fn same_delivery_posted_five_times_at_once_records_its_messages_once() {
    let app = app().await;
    let body = fixture("text_message.json");
    let posts = (0..5).map(|_| deliver(&app, &body));
    let statuses = futures_util::future::join_all(posts).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(contact_count(&app).await, 1);
    let text = metrics(&app).await;
    let recorded =
        r#"whatsapp_webhook_events_total{field="messages",kind="text",outcome="recorded"}"#;
    assert_eq!(metric(&text, recorded), 1, "{text}");
    assert_eq!(
        metric(&text, "whatsapp_webhook_duplicates_total"),
        4,
        "{text}"
    );
    assert_eq!(seen_ids(&app).await, 1);
    assert!(written_once(&app).await);
}

#[tokio::test]
async fn redelivery_after_the_retention_is_recorded_again_harmlessly() {
    let app = app().await;
    let body = fixture("text_message.json");
    assert_eq!(deliver(&app, &body).await, 200);
    app.clock.advance(TimeDelta::days(8));
    // This delivery prunes the expired id; the next one finds it gone.
    assert_eq!(deliver(&app, &fixture("status_delivered.json")).await, 200);
    assert_eq!(deliver(&app, &body).await, 200);
    let text = metrics(&app).await;
    let recorded =
        r#"whatsapp_webhook_events_total{field="messages",kind="text",outcome="recorded"}"#;
    assert_eq!(metric(&text, recorded), 2, "{text}");
    // The monotonic rules make the late replay change nothing.
    assert!(written_once(&app).await);
}

#[tokio::test]
async fn delivery_whose_write_fails_is_not_answered_200_and_records_nothing() {
    let app = app().await;
    common::refuse_in_database(&app.database_url, "+16315553601").await;
    // One delivery: Sheena's message, then a call from the refused number.
    let mut delivery: Value = serde_json::from_str(&fixture("text_message.json")).expect("json");
    let call: Value = serde_json::from_str(&fixture("call_connect.json")).expect("json");
    let change = call["entry"][0]["changes"][0].clone();
    delivery["entry"][0]["changes"]
        .as_array_mut()
        .expect("changes")
        .push(change);
    let body = delivery.to_string();
    let status = deliver(&app, &body).await;
    assert!(status.is_server_error(), "{status}");
    assert_eq!(
        contact_count(&app).await,
        0,
        "the first change was rolled back too"
    );
    // Meta retries once the database accepts the write; nothing was remembered as seen.
    drop_refusal(&app.database_url).await;
    assert_eq!(deliver(&app, &body).await, 200);
    assert_eq!(contact_count(&app).await, 2);
    assert_eq!(
        by_phone(&app, SHEENA).await["whatsappProfileName"],
        "Sheena Nelson"
    );
}

/// Rows of the seen-ids store, read directly.
async fn seen_ids(app: &TestApp) -> i64 {
    use sea_orm::{ConnectionTrait, Statement};
    let db = sea_orm::Database::connect(&app.database_url)
        .await
        .expect("connect");
    let sql = "SELECT COUNT(*) AS n FROM webhook_deliveries";
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .expect("count")
        .expect("row");
    let n: i64 = row.try_get("", "n").expect("n");
    db.close().await.expect("close");
    n
}

async fn drop_refusal(database_url: &str) {
    let db = sea_orm::Database::connect(database_url)
        .await
        .expect("connect");
    let sql = if common::on_postgres() {
        "DROP TRIGGER refuse_one ON contacts"
    } else {
        "DROP TRIGGER refuse_one"
    };
    sea_orm::ConnectionTrait::execute_unprepared(&db, sql)
        .await
        .expect("drop trigger");
    db.close().await.expect("close");
}

#[tokio::test]
async fn same_delivery_to_two_instances_is_recorded_once() {
    let first = app().await;
    let second = first
        .second_instance_configured(|state| state.with_whatsapp(SECRET, Some(VERIFY_TOKEN)))
        .await;
    let body = fixture("call_connect.json");
    let posts = (0..6).map(|i| {
        let target = if i % 2 == 0 { &first } else { &second };
        deliver(target, &body)
    });
    let statuses = futures_util::future::join_all(posts).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let recorded =
        r#"whatsapp_webhook_events_total{field="calls",kind="connect",outcome="recorded"}"#;
    let (a, b) = (metrics(&first).await, metrics(&second).await);
    assert_eq!(metric(&a, recorded) + metric(&b, recorded), 1, "{a}\n{b}");
    let duplicates = "whatsapp_webhook_duplicates_total";
    assert_eq!(
        metric(&a, duplicates) + metric(&b, duplicates),
        5,
        "{a}\n{b}"
    );
    assert_eq!(contact_count(&first).await, 1);
}
