//! Review of `/webhooks/whatsapp` (issue 12): each test demonstrates one finding and fails
//! until it is fixed. Runs on SQLite, and on PostgreSQL with TEST_DATABASE_URL.

mod common;

use std::time::Duration;

use common::{
    TestApp, at,
    webhook::{SECRET, VERIFY_TOKEN, app, contact_count, deliver, metric, metrics, post_raw},
};
use contacts_server::http::whatsapp::signature;
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

const BUSINESS: &str = "106540352242922";

fn delivery(contacts: Value, messages: Value) -> String {
    json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": "1", "changes": [{ "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": { "display_phone_number": "15550783881", "phone_number_id": BUSINESS },
            "contacts": contacts,
            "messages": messages,
        }}]}]
    })
    .to_string()
}

fn text(from: &str, id: &str) -> Value {
    json!({ "from": from, "id": id, "timestamp": "1764000000", "type": "text",
            "text": { "body": "hi" } })
}

async fn by_phone(app: &TestApp, phone: &str) -> Value {
    let query = "query($p: String!) { contactByPhoneNumber(phoneNumber: $p) { \
        id phoneNumber whatsappUserId whatsappProfileName lastWhatsappMessageAt } }";
    app.data(query, json!({ "p": phone })).await["contactByPhoneNumber"].clone()
}

/// Finding: a profile name WhatsApp sends empty (users without a name) makes the whole
/// message invalid: no contact, no window, 200, and Meta never retries it. The name is
/// optional decoration; the message must still open the window.
#[tokio::test]
async fn message_with_an_empty_profile_name_still_opens_the_window() {
    let app = app().await;
    let body = delivery(
        json!([{ "profile": { "name": "" }, "wa_id": "4915112345670" }]),
        json!([text("4915112345670", "wamid.empty-name")]),
    );
    assert_eq!(deliver(&app, &body).await, 200);
    let contact = by_phone(&app, "+4915112345670").await;
    assert!(
        contact["lastWhatsappMessageAt"].is_string(),
        "the message was dropped: {contact}"
    );
    // The same with an empty username (a user who has none).
    let body = delivery(
        json!([{ "profile": { "name": "N", "username": "" }, "wa_id": "4915112345679" }]),
        json!([text("4915112345679", "wamid.empty-username")]),
    );
    assert_eq!(deliver(&app, &body).await, 200);
    let contact = by_phone(&app, "+4915112345679").await;
    assert!(contact.is_object(), "the message was dropped: {contact}");
}

/// Finding: `contacts[]` holding one entry that is not the sender (another wa_id and BSUID)
/// is still taken as the sender's ("else the only one"), so the sender gets another
/// person's BSUID and name, and a later message of the real owner merges the two people.
#[tokio::test]
async fn a_contacts_entry_of_someone_else_is_not_attributed_to_the_sender() {
    let app = app().await;
    let body = delivery(
        json!([{ "profile": { "name": "Other Person" }, "wa_id": "4915112349999",
                 "user_id": "US.777" }]),
        json!([text("4915112345693", "wamid.mismatch")]),
    );
    assert_eq!(deliver(&app, &body).await, 200);
    let sender = by_phone(&app, "+4915112345693").await;
    assert_eq!(sender["whatsappUserId"], Value::Null, "{sender}");
    assert_eq!(sender["whatsappProfileName"], Value::Null, "{sender}");
}

/// Finding: a POST without any `X-Hub-Signature-256` header is refused only after its whole
/// body (up to 3 MiB) has been received and buffered: an unauthenticated client holds
/// 3 MiB of server memory per connection for up to the request timeout (observed: 100
/// connections, +380 MB RSS; the cap is 10,000 connections). A request that cannot be
/// signed should be answered 401 from its head alone.
#[tokio::test]
async fn unsigned_post_is_refused_before_its_body_is_read() {
    let app = app().await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut socket = TcpStream::connect(&addr).await.expect("connect");
    let head = format!(
        "POST /webhooks/whatsapp HTTP/1.1\r\nHost: {addr}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n",
        3 * 1024 * 1024 - 1
    );
    socket.write_all(head.as_bytes()).await.expect("head");
    socket.write_all(&[b' '; 1024]).await.expect("some body");
    let mut answer = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(3), socket.read(&mut answer)).await;
    let Ok(Ok(n)) = read else {
        panic!("no answer within 3 s: the server waits to buffer the unsigned body");
    };
    let line = String::from_utf8_lossy(&answer[..n]).to_string();
    assert!(line.starts_with("HTTP/1.1 401"), "{line}");
}

/// Finding: one message whose `timestamp` is not an integer (a float, as some relays send)
/// voids the whole delivery with 400, the other messages with it; Meta retries for 7 days
/// and then disables the subscription. Expected: that message counted as invalid, the rest
/// recorded, 200.
#[tokio::test]
async fn one_malformed_message_does_not_void_the_rest_of_the_delivery() {
    let app = app().await;
    let mut bad = text("4915112345611", "wamid.float-ts");
    bad["timestamp"] = json!(1764000000.5);
    let body = delivery(json!([]), json!([bad, text("4915112345612", "wamid.fine")]));
    assert_eq!(deliver(&app, &body).await, 200);
    assert!(by_phone(&app, "+4915112345612").await.is_object());
}

/// Finding (low): an event refused as invalid is documented as "nothing of it was written"
/// (`EventOutcome::Invalid`), but a `system` message announcing a new BSUID is applied in
/// part: the identity change is committed although the message itself is refused (here for a
/// business number that is not digits), and its id is remembered, so it never completes.
#[tokio::test]
async fn an_invalid_event_writes_nothing_of_itself() {
    let app = app().await;
    let first = delivery(
        json!([]),
        json!([{ "from": "16505551234", "from_user_id": "US.111",
        "id": "wamid.before", "timestamp": "1764000000", "type": "text" }]),
    );
    assert_eq!(deliver(&app, &first).await, 200);
    let mut change: Value = serde_json::from_str(&delivery(
        json!([]),
        json!([{ "from": "16505551234", "from_user_id": "US.111", "id": "wamid.change",
            "timestamp": "1764000100", "type": "system", "system": {
                "body": "User X changed from US.111 to US.222", "wa_id": "16505551234",
                "user_id": "US.222", "type": "user_changed_user_id" } }]),
    ))
    .expect("json");
    change["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = json!("not-digits");
    assert_eq!(deliver(&app, &change.to_string()).await, 200);
    let contact = by_phone(&app, "+16505551234").await;
    // Either the whole event (change and message) or none of it.
    let moved = contact["whatsappUserId"] == "US.222";
    let messaged = contact["lastWhatsappMessageAt"] != "2025-11-24T16:00:00Z";
    assert_eq!(
        moved, messaged,
        "half of an invalid event was written: {contact}"
    );
}

/// Two deliveries naming the same two messages in opposite orders, posted at once to two
/// instances: every one answered 200 and each message recorded once (on PostgreSQL the
/// seen-id inserts lock in opposite orders: a deadlock, which must be retried).
#[tokio::test]
async fn crossing_redeliveries_on_two_instances_are_all_200() {
    let first = app().await;
    let second = first
        .second_instance_configured(|state| {
            state.with_whatsapp(common::webhook::SECRET, Some(common::webhook::VERIFY_TOKEN))
        })
        .await;
    for round in 0..5 {
        let x = text(&format!("49151123457{round}1"), &format!("wamid.x{round}"));
        let y = text(&format!("49151123457{round}2"), &format!("wamid.y{round}"));
        let ab = delivery(json!([]), json!([x.clone(), y.clone()]));
        let ba = delivery(json!([]), json!([y, x]));
        let posts = (0..8).map(|i| {
            let target = if i % 2 == 0 { &first } else { &second };
            let body = if i % 4 < 2 { ab.clone() } else { ba.clone() };
            async move { deliver(target, &body).await }
        });
        let statuses = futures_util::future::join_all(posts).await;
        assert!(
            statuses.iter().all(|s| *s == 200),
            "round {round}: {statuses:?}"
        );
    }
    assert_eq!(contact_count(&first).await, 10);
}

/// Finding: a delivery is one transaction however many messages it holds. A signed 2.7 MB
/// delivery of 26,000-30,000 messages (under the 3 MiB limit) held SQLite's writer for ~15 s
/// (debug build); every GraphQL write meanwhile failed with SERVICE_UNAVAILABLE after the 5 s
/// busy timeout. Now a delivery holds at most 1,000 events (Meta batches at most 1,000
/// updates): more is 413 and counted, and a full one leaves GraphQL writes waiting briefly.
#[tokio::test]
async fn a_large_delivery_does_not_starve_graphql_writes() {
    let app = app().await;
    let messages = |n: usize, prefix: &str| -> Value {
        (0..n)
            .map(|i| text(&format!("49{prefix}{i:08}"), &format!("wamid.{prefix}{i}")))
            .collect()
    };
    let body = delivery(json!([]), messages(26_000, "40"));
    assert!(body.len() < 3 * 1024 * 1024);
    assert_eq!(deliver(&app, &body).await, 413);
    assert_eq!(contact_count(&app).await, 0);
    let text = metrics(&app).await;
    let series = r#"whatsapp_webhook_deliveries_total{field="messages",outcome="too_many_events"}"#;
    assert_eq!(metric(&text, series), 1, "{text}");
    let over = delivery(json!([]), messages(1_001, "41"));
    assert_eq!(deliver(&app, &over).await, 413);
    // The most a delivery may hold, with a GraphQL write at the same time.
    let full = delivery(json!([]), messages(1_000, "42"));
    let write = async {
        let mutation = r#"mutation { recordWhatsappInbound(input: { phoneNumber: "+4915199999001" }) { contact { id } } }"#;
        let started = std::time::Instant::now();
        let answer = app.post(mutation, json!({})).await;
        (answer, started.elapsed())
    };
    let (status, ((_, answer), waited)) = tokio::join!(deliver(&app, &full), write);
    assert_eq!(status, 200);
    assert!(
        answer["errors"].is_null(),
        "the GraphQL write failed: {answer}"
    );
    // The server's default DATABASE_ACQUIRE_TIMEOUT_SECS is 5 (this test app waits 30):
    // a write waiting longer fails with SERVICE_UNAVAILABLE in a default deployment.
    assert!(
        waited < Duration::from_secs(5),
        "a GraphQL write waited {waited:?} behind one webhook delivery"
    );
    assert_eq!(contact_count(&app).await, 1_001);
}

/// Finding (PostgreSQL): a `timestamp` chrono accepts but `timestamptz` cannot hold (before
/// 4713 BC) is not refused by the parser or the domain (only the future is), so the write
/// fails, the delivery is a 5xx on every retry for 7 days, and the other messages of the
/// delivery are never recorded. SQLite stores "-5953-10-25T11:33:20Z". Expected: refused as
/// invalid (or the delivery's other messages recorded), never a 5xx.
#[tokio::test]
async fn a_timestamp_before_the_databases_range_is_not_a_5xx() {
    let app = app().await;
    let mut ancient = text("4915112345621", "wamid.ancient");
    ancient["timestamp"] = json!("-250000000000");
    let body = delivery(
        json!([]),
        json!([ancient, text("4915112345622", "wamid.now")]),
    );
    let status = deliver(&app, &body).await;
    assert!(!status.is_server_error(), "{status}");
    assert!(by_phone(&app, "+4915112345622").await.is_object());
}

/// The raw start of a POST of `length` bytes with `signature`, 1 KiB of its body sent.
async fn start_upload(app: &TestApp, signature: Option<&str>, length: usize) -> TcpStream {
    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut socket = TcpStream::connect(&addr).await.expect("connect");
    let signed = signature
        .map(|value| format!("x-hub-signature-256: {value}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "POST /webhooks/whatsapp HTTP/1.1\r\nHost: {addr}\r\n\
         content-type: application/json\r\n{signed}content-length: {length}\r\n\r\n"
    );
    socket.write_all(head.as_bytes()).await.expect("head");
    socket.write_all(&[b' '; 1024]).await.expect("some body");
    socket
}

/// The status line the server answers with within 3 s (the rest of the body unsent).
async fn status_line(socket: &mut TcpStream) -> String {
    let mut answer = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(3), socket.read(&mut answer)).await;
    let Ok(Ok(n)) = read else {
        panic!("no answer within 3 s: the server waits for the body");
    };
    String::from_utf8_lossy(&answer[..n]).to_string()
}

const ALMOST_3_MIB: usize = 3 * 1024 * 1024 - 1;

/// A malformed signature header (not 64 hex digits) cannot sign anything: 401 from the head.
#[tokio::test]
async fn a_malformed_signature_is_refused_before_the_body_is_read() {
    let app = app().await;
    for header in ["sha256=zz", "sha1=0123", "sha256=0123456789abcdef"] {
        let mut socket = start_upload(&app, Some(header), ALMOST_3_MIB).await;
        let line = status_line(&mut socket).await;
        assert!(line.starts_with("HTTP/1.1 401"), "{header}: {line}");
    }
}

/// At most 16 bodies are read unverified at once: with 16 badly signed 3 MiB uploads
/// trickling in, the next one is refused at once (503), so they cannot take more memory.
#[tokio::test]
async fn unverified_uploads_beyond_the_bound_are_refused_at_once() {
    let app = app().await;
    let forged = signature::sign(b"not-the-app-secret", b"whatever");
    let mut held = Vec::new();
    for _ in 0..16 {
        held.push(start_upload(&app, Some(&forged), ALMOST_3_MIB).await);
    }
    // The held uploads take their places as the server reads their heads; a probe with a
    // whole (forged) body is 401 while a place is free, 503 once none is.
    let mut refused = None;
    for _ in 0..20 {
        let status = post_raw(&app, "{}", Some(forged.clone())).await;
        if status != 401 {
            refused = Some(status);
            break;
        }
    }
    assert_eq!(refused, Some(reqwest::StatusCode::SERVICE_UNAVAILABLE));
    let mut extra = start_upload(&app, Some(&forged), ALMOST_3_MIB).await;
    let line = status_line(&mut extra).await;
    assert!(line.starts_with("HTTP/1.1 503"), "{line}");
    drop(held);
    // The places come back as the abandoned uploads end.
    let body = delivery(json!([]), json!([text("4915112345631", "wamid.after")]));
    let mut status = deliver(&app, &body).await;
    for _ in 0..50 {
        if status == 200 {
            break;
        }
        status = deliver(&app, &body).await;
    }
    assert_eq!(status, 200);
}

/// An address past its signature failures (30 a minute) is refused (429) before its next
/// body is read, however well formed that one's signature header is.
#[tokio::test]
async fn an_address_past_its_signature_failures_is_refused_before_the_body() {
    let app = app().await;
    let forged = signature::sign(b"not-the-app-secret", b"{}");
    let mut statuses = Vec::new();
    for _ in 0..31 {
        statuses.push(post_raw(&app, "{}", Some(forged.clone())).await);
    }
    assert_eq!(
        statuses.last(),
        Some(&reqwest::StatusCode::TOO_MANY_REQUESTS)
    );
    let mut socket = start_upload(&app, Some(&forged), ALMOST_3_MIB).await;
    let line = status_line(&mut socket).await;
    assert!(line.starts_with("HTTP/1.1 429"), "{line}");
}

/// Finding 4: a timestamp past year 9999 (or before year 1) is that message's problem only:
/// counted invalid, the rest recorded, never a 5xx.
#[tokio::test]
async fn a_timestamp_outside_years_1_to_9999_is_an_invalid_event() {
    let app = app().await;
    let mut far = text("4915112345641", "wamid.far");
    far["timestamp"] = json!("253402300800"); // 10000-01-01T00:00:00Z
    let mut early = text("4915112345642", "wamid.early");
    early["timestamp"] = json!(-62135596801_i64); // 0000-12-31T23:59:59Z
    let fine = text("4915112345643", "wamid.fine-range");
    let body = delivery(json!([]), json!([far, early, fine]));
    assert_eq!(deliver(&app, &body).await, 200);
    assert_eq!(contact_count(&app).await, 1);
    let text = metrics(&app).await;
    let series = r#"whatsapp_webhook_events_total{field="messages",kind="text",outcome="invalid"}"#;
    assert_eq!(metric(&text, series), 2, "{text}");
}

/// Finding 6: a numeric id, a missing `type`, a timestamp of the wrong type each make their
/// message invalid (counted); `profile: null` is a contact without a name. The rest of the
/// delivery is recorded, 200.
#[tokio::test]
async fn malformed_messages_are_counted_and_skipped() {
    let app = app().await;
    let mut numeric_id = text("4915112345651", "x");
    numeric_id["id"] = json!(12345);
    let mut no_type = text("4915112345652", "wamid.no-type");
    no_type.as_object_mut().expect("object").remove("type");
    let mut object_time = text("4915112345653", "wamid.object-time");
    object_time["timestamp"] = json!({ "s": 1 });
    let body = delivery(
        json!([{ "profile": null, "wa_id": "4915112345654" }, "not a contact"]),
        json!([
            numeric_id,
            no_type,
            object_time,
            text("4915112345654", "wamid.kept")
        ]),
    );
    assert_eq!(deliver(&app, &body).await, 200);
    assert_eq!(contact_count(&app).await, 1);
    let kept = by_phone(&app, "+4915112345654").await;
    assert!(kept["lastWhatsappMessageAt"].is_string(), "{kept}");
    let text = metrics(&app).await;
    let invalid = |kind: &str| {
        let series = format!(
            r#"whatsapp_webhook_events_total{{field="messages",kind="{kind}",outcome="invalid"}}"#
        );
        metric(&text, &series)
    };
    assert_eq!(invalid("text") + invalid("other"), 3, "{text}");
}

/// Finding 8: a message up to 5 minutes ahead of the server's clock (the clocks disagree)
/// is recorded at the server's now; further ahead it is invalid and recorded nowhere.
#[tokio::test]
async fn a_message_slightly_ahead_of_the_clock_is_recorded_at_now() {
    let app = app().await;
    // text() is stamped 2025-11-24T16:00:00Z.
    app.clock.set(at("2025-11-24T15:58:00Z"));
    let body = delivery(json!([]), json!([text("4915112345661", "wamid.ahead")]));
    assert_eq!(deliver(&app, &body).await, 200);
    let contact = by_phone(&app, "+4915112345661").await;
    assert_eq!(contact["lastWhatsappMessageAt"], "2025-11-24T15:58:00Z");
    app.clock.set(at("2025-11-24T15:00:00Z"));
    let body = delivery(json!([]), json!([text("4915112345662", "wamid.far-ahead")]));
    assert_eq!(deliver(&app, &body).await, 200);
    assert!(by_phone(&app, "+4915112345662").await.is_null());
}

fn calls_delivery(calls: Value) -> String {
    json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": "1", "changes": [{ "field": "calls", "value": {
            "messaging_product": "whatsapp",
            "metadata": { "display_phone_number": "+1 555-078-3881", "phone_number_id": BUSINESS },
            "contacts": [],
            "calls": calls,
        }}]}]
    })
    .to_string()
}

fn call(id: &str, from: &str, direction: Option<&str>) -> Value {
    let mut call = json!({ "id": id, "from": from, "to": "15550783881", "event": "connect",
        "timestamp": "1764000000" });
    if let Some(direction) = direction {
        call["direction"] = json!(direction);
    }
    call
}

/// Finding 9: a call is inbound only when the user placed it: `USER_INITIATED`, or without a
/// direction, `from` other than the business's own number compared by digits.
#[tokio::test]
async fn only_user_initiated_calls_are_inbound() {
    let app = app().await;
    let body = calls_delivery(json!([
        call("c1", "15550783881", None),
        call("c2", "15550783881", Some("BUSINESS_INITIATED")),
        call("c3", "4915112345671", Some("BUSINESS_INITIATED")),
        call("c4", "4915112345672", Some("USER_INITIATED")),
        call("c5", "4915112345673", None),
    ]));
    assert_eq!(deliver(&app, &body).await, 200);
    assert!(by_phone(&app, "+15550783881").await.is_null());
    assert!(by_phone(&app, "+4915112345671").await.is_null());
    assert!(by_phone(&app, "+4915112345672").await.is_object());
    assert!(by_phone(&app, "+4915112345673").await.is_object());
    assert_eq!(contact_count(&app).await, 2);
}

/// Finding 9: Meta's `user_changed_number` system message (only the new number, in
/// `system.wa_id`): the contact moves to the new number and keeps its id.
#[tokio::test]
async fn a_changed_number_moves_the_contact_to_the_new_number() {
    let app = app().await;
    let first = delivery(json!([]), json!([text("16505551234", "wamid.old-number")]));
    assert_eq!(deliver(&app, &first).await, 200);
    let before = by_phone(&app, "+16505551234").await;
    let change = delivery(
        json!([]),
        json!([{ "from": "16505551234", "id": "wamid.number-change",
            "timestamp": "1764000100", "type": "system", "system": {
                "body": "User Sheena changed from 16505551234 to 12195555358",
                "wa_id": "12195555358", "type": "user_changed_number" } }]),
    );
    assert_eq!(deliver(&app, &change).await, 200);
    let after = by_phone(&app, "+12195555358").await;
    assert_eq!(after["id"], before["id"], "{after}");
    assert_eq!(after["lastWhatsappMessageAt"], "2025-11-24T16:01:40Z");
    assert!(by_phone(&app, "+16505551234").await.is_null());
    assert_eq!(contact_count(&app).await, 1);
}

/// A secret with a trailing newline (read from a secrets file) still checks Meta's
/// signatures, which are made with the secret itself.
#[tokio::test]
async fn a_secret_with_a_trailing_newline_still_verifies() {
    let app = TestApp::start_configured(|state| {
        state.with_whatsapp(&format!("{SECRET}\n"), Some(&format!(" {VERIFY_TOKEN}\n")))
    })
    .await;
    let body = delivery(json!([]), json!([text("4915112345681", "wamid.trimmed")]));
    assert_eq!(deliver(&app, &body).await, 200);
    let url = app.url(&format!(
        "/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=7"
    ));
    let answer = app.client.get(url).send().await.expect("handshake");
    assert_eq!(answer.status(), 200);
}

/// The delivery claims its ids up front: an id named twice in one delivery is recorded once
/// (the second counted as a duplicate), and a redelivery of the whole is all duplicates.
#[tokio::test]
async fn an_id_named_twice_in_one_delivery_is_recorded_once() {
    let app = app().await;
    let same = text("4915112345690", "wamid.twice");
    let other = text("4915112345691", "wamid.once");
    let body = delivery(json!([]), json!([same.clone(), other, same]));
    assert_eq!(deliver(&app, &body).await, 200);
    let duplicates = "whatsapp_webhook_duplicates_total";
    assert_eq!(metric(&metrics(&app).await, duplicates), 1);
    assert_eq!(contact_count(&app).await, 2);
    assert_eq!(deliver(&app, &body).await, 200);
    assert_eq!(metric(&metrics(&app).await, duplicates), 4);
    assert_eq!(contact_count(&app).await, 2);
}
