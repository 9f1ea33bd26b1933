//! `recordWhatsappInbound`: messages and calls with or without a phone number, identities
//! filled in, merges (with their events and the absorbed contact's window subscription),
//! monotonic names and times, and 20 concurrent events for one person on one or two
//! instances.

mod common;

use std::time::Duration;

use chrono::TimeDelta;
use common::{TestApp, at, code, next_event, subscribe};
use futures_util::StreamExt;
use serde_json::{Value, json};

const INBOUND: &str = "mutation($input: RecordWhatsappInboundInput!) { recordWhatsappInbound(input: $input) {
    contact { id phoneNumber countryCode whatsappUserId parentWhatsappUserId whatsappUsername
    whatsappProfileName lastWhatsappMessageAt whatsappWindowOpen whatsappWindowExpiresAt metadata } } }";
const LOOKUP: &str = "query($id: ID!) { contact(id: $id) { id } node(id: $id) { id } }";
const COUNT: &str = "{ contacts { totalCount } }";
const PATCH: &str = "mutation($id: ID!, $set: Metadata) { patchContactMetadata(id: $id, set: $set) { contact { id } } }";

async fn inbound(app: &TestApp, input: Value) -> Value {
    app.data(INBOUND, json!({ "input": input })).await["recordWhatsappInbound"]["contact"].clone()
}

async fn count(app: &TestApp) -> i64 {
    app.data(COUNT, json!({})).await["contacts"]["totalCount"]
        .as_i64()
        .unwrap()
}

#[tokio::test]
async fn a_phone_less_message_creates_a_contact_and_a_later_event_fills_in_its_phone() {
    let app = TestApp::start().await;
    let first = inbound(
        &app,
        json!({ "whatsappUserId": "US.13491208655302741918", "username": "ana.w",
                "profileName": "Ana", "receivedAt": "2026-11-24T11:00:00Z" }),
    )
    .await;
    assert_eq!(first["phoneNumber"], Value::Null);
    assert_eq!(first["whatsappUsername"], "ana.w");
    assert_eq!(first["whatsappWindowOpen"], true);
    assert_eq!(first["lastWhatsappMessageAt"], "2026-11-24T11:00:00Z");
    let both = inbound(
        &app,
        json!({ "whatsappUserId": "US.13491208655302741918", "phoneNumber": "+1 415 555 0101",
                "businessPhoneNumberId": "106540352242922" }),
    )
    .await;
    assert_eq!(both["id"], first["id"]);
    assert_eq!(both["phoneNumber"], "+14155550101");
    assert_eq!(both["countryCode"], "US");
    assert_eq!(both["lastWhatsappMessageAt"], common::T0);
    assert_eq!(both["whatsappUsername"], "ana.w", "absent names are kept");
    // Now the phone number alone finds it too, and a BSUID-less event fills nothing in.
    let by_phone = inbound(&app, json!({ "phoneNumber": "+14155550101" })).await;
    assert_eq!(by_phone["id"], first["id"]);
    assert_eq!(count(&app).await, 1);
}

#[tokio::test]
async fn a_known_bsuid_with_a_number_nobody_has_keeps_the_stored_number() {
    let app = TestApp::start().await;
    let stored = inbound(
        &app,
        json!({ "whatsappUserId": "CL.5", "phoneNumber": "+56911111111" }),
    )
    .await;
    let event = inbound(
        &app,
        json!({ "whatsappUserId": "CL.5", "phoneNumber": "+56922222222" }),
    )
    .await;
    assert_eq!(event["id"], stored["id"]);
    assert_eq!(event["phoneNumber"], "+56911111111");
    assert_eq!(count(&app).await, 1);
}

#[tokio::test]
async fn names_change_only_with_an_event_at_least_as_recent() {
    let app = TestApp::start().await;
    let base = json!({ "whatsappUserId": "BR.1" });
    let with = |name: &str, when: &str| {
        let mut input = base.clone();
        input["username"] = json!(name);
        input["profileName"] = json!(name.to_uppercase());
        input["receivedAt"] = json!(when);
        input
    };
    inbound(&app, with("new", "2026-11-24T11:00:00Z")).await;
    let late = inbound(&app, with("old", "2026-11-24T10:00:00Z")).await;
    assert_eq!(late["whatsappUsername"], "new");
    assert_eq!(late["whatsappProfileName"], "NEW");
    assert_eq!(late["lastWhatsappMessageAt"], "2026-11-24T11:00:00Z");
    let same_time = inbound(&app, with("tie", "2026-11-24T11:00:00Z")).await;
    assert_eq!(same_time["whatsappUsername"], "tie");
}

#[tokio::test]
async fn a_call_opens_a_closed_window_and_refreshes_an_open_one() {
    let app = TestApp::start().await;
    let closed = app
        .create(json!({ "phoneNumber": "+56911111111", "lastWhatsappMessageAt": "2026-11-20T00:00:00Z" }))
        .await;
    assert_eq!(closed["whatsappWindowOpen"], false);
    let opened = inbound(
        &app,
        json!({ "phoneNumber": "+56911111111", "kind": "CALL" }),
    )
    .await;
    assert_eq!(opened["whatsappWindowOpen"], true);
    assert_eq!(opened["whatsappWindowExpiresAt"], "2026-11-25T12:00:00Z");
    app.clock.advance(TimeDelta::hours(20));
    let refreshed = inbound(
        &app,
        json!({ "phoneNumber": "+56911111111", "kind": "CALL" }),
    )
    .await;
    assert_eq!(refreshed["whatsappWindowExpiresAt"], "2026-11-26T08:00:00Z");
}

#[tokio::test]
async fn bad_events_name_their_field() {
    let app = TestApp::start().await;
    let cases = [
        (json!({ "username": "x" }), "input.phoneNumber"),
        (json!({ "whatsappUserId": "X" }), "input.whatsappUserId"),
        (
            json!({ "whatsappUserId": "US.1", "businessPhoneNumberId": "12a" }),
            "input.businessPhoneNumberId",
        ),
        (
            json!({ "whatsappUserId": "US.1", "countryCode": "US" }),
            "input.countryCode",
        ),
        (
            json!({ "whatsappUserId": "US.1", "receivedAt": "2026-11-24T12:06:00Z" }),
            "input.receivedAt",
        ),
    ];
    for (input, field) in cases {
        let err = app.error(INBOUND, json!({ "input": input.clone() })).await;
        assert_eq!(code(&err), "BAD_USER_INPUT", "{input}: {err}");
        assert_eq!(err["extensions"]["field"], field, "{input}");
    }
    assert_eq!(count(&app).await, 0);
}

const EVENTS: &str = "subscription($id: ID) { contactEvents(id: $id) {
    kind contactId mergedContactId contact { id phoneNumber whatsappUserId } } }";
const WINDOW: &str = "subscription($id: ID!) { whatsappWindow(contactId: $id) {
    contactId open expiresAt mergedIntoContactId } }";

/// Patches `id` until the subscription reports it: from then on the server is listening.
async fn prime(
    app: &TestApp,
    subscription: &mut graphql_ws_client::Subscription<common::Operation>,
    id: &Value,
) {
    for attempt in 0..100 {
        app.data(
            PATCH,
            json!({ "id": id, "set": { "prime": attempt.to_string() } }),
        )
        .await;
        if let Ok(Some(Ok(_))) =
            tokio::time::timeout(Duration::from_millis(100), subscription.next()).await
        {
            return;
        }
    }
    panic!("the subscription never reported a change");
}

#[tokio::test]
async fn an_event_joining_two_contacts_merges_them_into_the_older() {
    let app = TestApp::start().await;
    let older = inbound(
        &app,
        json!({ "whatsappUserId": "CL.77", "username": "lu", "receivedAt": "2026-11-24T09:00:00Z" }),
    )
    .await;
    app.clock.advance(TimeDelta::hours(1));
    let newer = app
        .create(json!({ "phoneNumber": "+56933333333",
            "metadata": { "tier": "gold", "prime": "absorbed" },
            "lastWhatsappMessageAt": "2026-11-24T12:30:00Z" }))
        .await;
    app.data(
        PATCH,
        json!({ "id": older["id"], "set": { "prime": "survivor" } }),
    )
    .await;
    // On PostgreSQL the subscriber sits on another instance: the MERGED event crosses over.
    let second = if common::on_postgres() {
        Some(app.second_instance().await)
    } else {
        None
    };
    let watcher = second.as_ref().unwrap_or(&app);
    let mut absorbed_events = subscribe(watcher, EVENTS, json!({ "id": newer["id"] })).await;
    prime(&app, &mut absorbed_events, &newer["id"]).await;
    let mut window = subscribe(watcher, WINDOW, json!({ "id": newer["id"] })).await;
    let first = next_event(&mut window).await["data"]["whatsappWindow"].clone();
    assert_eq!(first["open"], true);

    let merged = inbound(
        &app,
        json!({ "whatsappUserId": "CL.77", "phoneNumber": "+56933333333",
                "receivedAt": "2026-11-24T12:00:00Z" }),
    )
    .await;
    assert_eq!(merged["id"], older["id"], "the older contact survives");
    assert_eq!(merged["phoneNumber"], "+56933333333");
    assert_eq!(merged["countryCode"], "CL");
    assert_eq!(merged["whatsappUsername"], "lu");
    assert_eq!(
        merged["lastWhatsappMessageAt"], "2026-11-24T12:30:00Z",
        "the later one"
    );
    assert_eq!(
        merged["metadata"],
        json!({ "tier": "gold", "prime": "survivor" }),
        "the survivor's values win"
    );
    assert_eq!(count(&app).await, 1);
    let gone = app.data(LOOKUP, json!({ "id": newer["id"] })).await;
    assert_eq!(gone, json!({ "contact": null, "node": null }));

    let event = loop {
        let message = next_event(&mut absorbed_events).await;
        let event = message["data"]["contactEvents"].clone();
        if event["kind"] != "UPDATED" {
            break event;
        }
    };
    assert_eq!(event["kind"], "MERGED");
    assert_eq!(event["contactId"], older["id"]);
    assert_eq!(event["mergedContactId"], newer["id"]);
    assert_eq!(event["contact"]["whatsappUserId"], "CL.77");

    let last = next_event(&mut window).await["data"]["whatsappWindow"].clone();
    assert_eq!(
        last,
        json!({ "contactId": newer["id"], "open": true,
                "expiresAt": "2026-11-25T12:30:00Z", "mergedIntoContactId": older["id"] })
    );
    let ended = tokio::time::timeout(Duration::from_secs(10), window.next()).await;
    assert!(
        matches!(ended, Ok(None)),
        "the subscription completes: {ended:?}"
    );
}

/// 20 concurrent events for one person, half by BSUID and half by phone number, then one
/// with both: one contact remains and its last message time is the latest of them all.
async fn twenty_concurrent_events_then_one_joining_them(apps: &[&TestApp]) {
    let base = at("2026-11-24T10:00:00Z");
    let mut calls = Vec::new();
    for n in 0..20 {
        let app = apps[n % apps.len()];
        let at = (base + TimeDelta::minutes(n as i64)).to_rfc3339();
        let input = if n % 2 == 0 {
            json!({ "whatsappUserId": "DE.4242", "receivedAt": at })
        } else {
            json!({ "phoneNumber": "+4915123456789", "receivedAt": at })
        };
        calls.push(async move { app.post(INBOUND, json!({ "input": input })).await });
    }
    for (status, body) in futures_util::future::join_all(calls).await {
        assert_eq!(status, 200, "{body}");
        assert!(body.get("errors").is_none(), "no event is lost: {body}");
    }
    let app = apps[0];
    assert_eq!(count(app).await, 2, "one contact per identity so far");
    let joined = inbound(
        app,
        json!({ "whatsappUserId": "DE.4242", "phoneNumber": "+4915123456789",
                "receivedAt": "2026-11-24T09:00:00Z" }),
    )
    .await;
    assert_eq!(count(app).await, 1);
    assert_eq!(joined["lastWhatsappMessageAt"], "2026-11-24T10:19:00Z");
    assert_eq!(joined["phoneNumber"], "+4915123456789");
    assert_eq!(joined["whatsappUserId"], "DE.4242");
}

#[tokio::test]
async fn concurrent_events_for_one_person_end_as_one_contact() {
    let app = TestApp::start().await;
    twenty_concurrent_events_then_one_joining_them(&[&app]).await;
}

#[tokio::test]
async fn concurrent_events_through_two_instances_end_as_one_contact() {
    if !common::on_postgres() {
        return; // Two instances share a database only on PostgreSQL.
    }
    let app = TestApp::start().await;
    let other = app.second_instance().await;
    twenty_concurrent_events_then_one_joining_them(&[&app, &other]).await;
}

/// A merge racing metadata patches of both contacts loses none of them: a patch of the
/// absorbed contact either lands before the merge (and its key is merged in) or finds the
/// contact gone (`NOT_FOUND`); patches of the survivor all land. On PostgreSQL the writes
/// go through two instances.
#[tokio::test]
async fn a_merge_racing_updates_of_both_contacts_loses_none() {
    let app = TestApp::start().await;
    let second = if common::on_postgres() {
        Some(app.second_instance().await)
    } else {
        None
    };
    let other = second.as_ref().unwrap_or(&app);
    let older = inbound(&app, json!({ "whatsappUserId": "AR.9" })).await;
    app.clock.advance(TimeDelta::minutes(1));
    let newer = inbound(&app, json!({ "phoneNumber": "+5491123456789" })).await;
    let mut calls = Vec::new();
    for n in 0..10 {
        for (prefix, contact) in [("s", &older), ("a", &newer)] {
            let target = if n % 2 == 0 { &app } else { other };
            let vars = json!({ "id": contact["id"], "set": { format!("{prefix}{n}"): "x" } });
            calls.push(
                Box::pin(async move { (prefix, n, target.post(PATCH, vars).await) })
                    as std::pin::Pin<Box<dyn std::future::Future<Output = _>>>,
            );
        }
        if n == 5 {
            let vars =
                json!({ "input": { "whatsappUserId": "AR.9", "phoneNumber": "+5491123456789" } });
            calls.push(Box::pin(async move {
                ("merge", n, other.post(INBOUND, vars).await)
            }));
        }
    }
    let results = futures_util::future::join_all(calls).await;
    let mut landed = Vec::new();
    for (prefix, n, (status, body)) in results {
        assert_eq!(status, 200, "{body}");
        match body.get("errors") {
            None if prefix != "merge" => landed.push(format!("{prefix}{n}")),
            None => {}
            Some(errors) => {
                assert_eq!(prefix, "a", "only the absorbed contact may vanish: {body}");
                assert_eq!(code(&errors[0]), "NOT_FOUND", "{body}");
            }
        }
    }
    assert_eq!(count(&app).await, 1);
    let survivor = app
        .data(
            "query($id: ID!) { contact(id: $id) { metadata } }",
            json!({ "id": older["id"] }),
        )
        .await;
    let metadata = survivor["contact"]["metadata"]
        .as_object()
        .cloned()
        .unwrap();
    for key in &landed {
        assert!(metadata.contains_key(key), "{key} was lost: {metadata:?}");
    }
    assert!(landed.iter().filter(|k| k.starts_with('s')).count() == 10);
}

#[tokio::test]
async fn a_merge_keeps_the_phone_number_the_event_names() {
    let app = TestApp::start().await;
    let older = inbound(
        &app,
        json!({ "whatsappUserId": "US.90", "phoneNumber": "+14155550190" }),
    )
    .await;
    app.clock.advance(TimeDelta::minutes(1));
    app.create(json!({ "phoneNumber": "+14155550191", "metadata": { "note": "vip" } }))
        .await;
    app.clock.advance(TimeDelta::minutes(1));
    let merged = inbound(
        &app,
        json!({ "whatsappUserId": "US.90", "phoneNumber": "+14155550191" }),
    )
    .await;
    assert_eq!(merged["id"], older["id"]);
    assert_eq!(merged["phoneNumber"], "+14155550191");
    assert_eq!(merged["metadata"], json!({ "note": "vip" }));
    // The number the event named keeps finding the person: no second contact appears.
    let again = inbound(&app, json!({ "phoneNumber": "+14155550191" })).await;
    assert_eq!(again["id"], older["id"]);
    assert_eq!(count(&app).await, 1);
}
