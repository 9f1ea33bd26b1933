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
    let mut total;
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

/// The bound on choices keeps opt-outs first, as SECURITY.md states: with an opt-out for all
/// numbers and opt-outs on 100 business numbers stored, a resume on a 101st number is not
/// kept, so the contact stays opted out there (no marketing sent by mistake) and every opt-out
/// still holds.
#[tokio::test]
async fn past_the_bound_a_resume_gives_way_to_the_opt_outs() {
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
        json!({ "latest": true, "newest_out": true }),
        "a resume past the bound gives way to the opt-outs"
    );
    let oldest = app
        .data(
            "{ contacts { nodes { marketingOptedOut(businessPhoneNumberId: \"5000001\") } } }",
            json!({}),
        )
        .await;
    assert_eq!(oldest["contacts"]["nodes"][0]["marketingOptedOut"], true);
}

const EVENTS: &str = "subscription($id: ID) { contactEvents(id: $id) { kind contactId \
    contact { metadata } } }";
const PATCH: &str = "mutation($id: ID!, $set: Metadata) { patchContactMetadata(id: $id, \
    set: $set) { contact { id } } }";
/// Well under the change-log readers' poll (1 s): an event this quick came by NOTIFY.
const BY_NOTIFY: std::time::Duration = std::time::Duration::from_millis(400);

/// The metadata value `n` of the next event on the legacy `graphql-ws` socket.
async fn next_legacy<S>(socket: &mut S) -> Option<String>
where
    S: futures_util::Stream<
            Item = Result<
                tokio_tungstenite::tungstenite::Message,
                tokio_tungstenite::tungstenite::Error,
            >,
        > + Unpin,
{
    use futures_util::StreamExt;
    loop {
        let message = socket.next().await?.ok()?;
        let tokio_tungstenite::tungstenite::Message::Text(text) = message else {
            continue;
        };
        let message: Value = serde_json::from_str(&text).ok()?;
        if message["type"] == "data" {
            let n = &message["payload"]["data"]["contactEvents"]["contact"]["metadata"]["n"];
            return Some(n.as_str().unwrap_or_default().to_owned());
        }
    }
}

/// PostgreSQL, two instances: a write through one reaches a subscriber on the other, on both
/// WebSocket protocols, by NOTIFY (well before the readers' 1 s poll), write after write,
/// now that notifications are sent after the commit by a task of their own.
#[tokio::test]
async fn events_cross_instances_by_notify_on_both_protocols() {
    use futures_util::{SinkExt, StreamExt};
    if !common::on_postgres() {
        eprintln!("cross-instance events are PostgreSQL's");
        return;
    }
    let a = TestApp::start().await;
    let b = a.second_instance().await;
    let id = a.create(json!({ "phoneNumber": "+56912345678" })).await["id"].clone();
    let mut modern = common::subscribe(&b, EVENTS, json!({ "id": id })).await;
    let mut legacy = common::websocket(&b, "graphql-ws").await;
    let text = |v: Value| tokio_tungstenite::tungstenite::Message::Text(v.to_string().into());
    legacy
        .send(text(json!({ "type": "connection_init", "payload": {} })))
        .await
        .expect("init");
    let start = json!({ "id": "1", "type": "start",
                        "payload": { "query": EVENTS, "variables": { "id": id } } });
    legacy.send(text(start)).await.expect("start");
    // Primed: both subscriptions have seen a change (however late).
    let mut primed = (false, false);
    for attempt in 0..100 {
        let n = format!("prime{attempt}");
        a.data(PATCH, json!({ "id": id, "set": { "n": n } })).await;
        let wait = std::time::Duration::from_millis(300);
        if !primed.0 {
            primed.0 = tokio::time::timeout(wait, modern.next()).await.is_ok();
        }
        if !primed.1 {
            primed.1 = tokio::time::timeout(wait, next_legacy(&mut legacy))
                .await
                .is_ok();
        }
        if primed.0 && primed.1 {
            break;
        }
    }
    assert!(primed.0 && primed.1, "both subscriptions primed");
    for round in 0..10 {
        let n = format!("w{round}");
        let written = std::time::Instant::now();
        a.data(PATCH, json!({ "id": id, "set": { "n": n } })).await;
        let took_modern = loop {
            let event = tokio::time::timeout(std::time::Duration::from_secs(5), modern.next())
                .await
                .expect("an event on the modern protocol")
                .expect("open")
                .expect("event");
            let got = &event["data"]["contactEvents"]["contact"]["metadata"]["n"];
            if *got == json!(n) {
                break written.elapsed();
            }
        };
        let took_legacy = loop {
            let got =
                tokio::time::timeout(std::time::Duration::from_secs(5), next_legacy(&mut legacy))
                    .await
                    .expect("an event on the legacy protocol")
                    .expect("open");
            if got == n {
                break written.elapsed();
            }
        };
        assert!(
            took_modern < BY_NOTIFY && took_legacy < BY_NOTIFY,
            "write {round}: {took_modern:?} / {took_legacy:?}, not by NOTIFY"
        );
    }
}

/// Contacts with a window on B, the `i`-th opened `24 h - (i + 1) s` before T0.
const AT_THE_BOUND: usize = 10_001;

/// `rows` imported by the command line into `url`; `Ok` output or the failure.
fn import(dir: &std::path::Path, url: &str, rows: &[Value]) -> String {
    let file = dir.join("bound.jsonl");
    let lines: Vec<String> = rows.iter().map(Value::to_string).collect();
    std::fs::write(&file, lines.join("\n")).expect("write file");
    let output = std::process::Command::new(common::process::BIN)
        .args(["import", &file.display().to_string()])
        .env("DATABASE_URL", url)
        .env_remove("RUST_LOG")
        .output()
        .expect("run import");
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{text}");
    text
}

/// Every page of `filter` in last-message order, 100 at a time, forward then backward:
/// the phone numbers, each way, and `totalCount`.
async fn phones_both_ways(app: &TestApp, filter: &Value) -> (Vec<Value>, Vec<Value>, Value) {
    let query = "query($first: Int, $last: Int, $after: String, $before: String, \
        $filter: ContactFilter) { contacts(first: $first, last: $last, after: $after, \
        before: $before, filter: $filter, orderBy: {field: LAST_WHATSAPP_MESSAGE_AT, \
        direction: DESC}) { totalCount nodes { phoneNumber } \
        pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }";
    let phones = |page: &Value| -> Vec<Value> {
        let nodes = page["nodes"].as_array().expect("nodes");
        nodes.iter().map(|n| n["phoneNumber"].clone()).collect()
    };
    let (mut forward, mut after, mut total) = (Vec::new(), Value::Null, json!(null));
    let _ = &total;
    loop {
        let vars = json!({ "first": 100, "after": after, "filter": filter });
        let page = app.data(query, vars).await["contacts"].clone();
        total = page["totalCount"].clone();
        forward.extend(phones(&page));
        if page["pageInfo"]["hasNextPage"] != json!(true) {
            break;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
    let (mut backward, mut before) = (Vec::new(), Value::Null);
    loop {
        let vars = json!({ "last": 100, "before": before, "filter": filter });
        let page = app.data(query, vars).await["contacts"].clone();
        let mut got = phones(&page);
        got.extend(backward);
        backward = got;
        if page["pageInfo"]["hasPreviousPage"] != json!(true) {
            break;
        }
        before = page["pageInfo"]["startCursor"].clone();
    }
    (forward, backward, total)
}

/// SQLite picks between walking and the number's set of open windows at 10,000 open windows
/// on the number. From 10,001 open windows on B, closing one a second at exactly 24 h, the
/// open-on-B and free-form-on-B pages (some contacts blocked, some later messaged on C, some
/// never messaged) list exactly the contacts open there, the same both ways, and
/// `totalCount` and `contactStats` agree, on each side of the bound.
#[tokio::test]
async fn open_windows_on_a_number_across_the_ten_thousand_bound() {
    let app = TestApp::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let phone = |i: usize| format!("+5691{i:07}");
    let mut rows: Vec<Value> = (0..AT_THE_BOUND)
        .map(|i| {
            let mut windows = vec![json!({ "businessPhoneNumberId": B,
                "lastInboundAt": before_t0(24 * 3600 - 1 - i64::try_from(i).expect("i")) })];
            if i % 500 == 7 {
                windows.push(json!({ "businessPhoneNumberId": C,
                                     "lastInboundAt": before_t0(3600) }));
            }
            json!({ "phoneNumber": phone(i), "whatsappWindows": windows,
                    "blocked": i % 1000 == 5 })
        })
        .collect();
    rows.extend((0..5).map(|i| json!({ "phoneNumber": phone(AT_THE_BOUND + i) })));
    import(dir.path(), &app.database_url, &rows);
    for step in 0..3_usize {
        if step > 0 {
            app.clock.advance(TimeDelta::seconds(1));
        }
        // Contacts 0..step have closed, at exactly 24 h.
        let open: Vec<usize> = (step..AT_THE_BOUND).collect();
        let free: Vec<usize> = open.iter().copied().filter(|i| i % 1000 != 5).collect();
        for (filter, wanted) in [
            (
                json!({ "businessPhoneNumberId": B, "whatsappWindowOpen": true }),
                &open,
            ),
            (
                json!({ "businessPhoneNumberId": B, "messagingFreeForm": true }),
                &free,
            ),
        ] {
            let (forward, backward, total) = phones_both_ways(&app, &filter).await;
            let context = format!("{filter} at +{step}s");
            let mut got: Vec<String> = forward
                .iter()
                .map(|p| p.as_str().unwrap_or_default().to_owned())
                .collect();
            assert_eq!(forward, backward, "both ways {context}");
            got.sort();
            let expected: Vec<String> = wanted.iter().map(|&i| phone(i)).collect();
            assert_eq!(got.len(), expected.len(), "listed {context}");
            assert!(got == expected, "the listed contacts {context}");
            assert_eq!(total, json!(expected.len()), "totalCount {context}");
            let stats = app
                .data(
                    "query($filter: ContactFilter) { contactStats(filter: $filter) \
                     { total whatsappWindowOpen } }",
                    json!({ "filter": filter }),
                )
                .await;
            let stats = &stats["contactStats"];
            assert_eq!(stats["total"], json!(expected.len()), "stats {context}");
            assert_eq!(
                stats["whatsappWindowOpen"],
                json!(expected.len()),
                "stats {context}"
            );
        }
    }
}

/// The SQLite statement deadline of the trigger test: far shorter than the chain it stops.
const DEADLINE: std::time::Duration = std::time::Duration::from_millis(300);

/// SQLite: a contact insert whose trigger inserts 200 rows into a side table, each firing a
/// trigger of its own that counts to 100,000 (a fraction of the deadline each, several
/// seconds in all). Every trigger program starts with the trace hook's callback; were any of
/// them taken for a new statement the clock would restart and the insert would run to its
/// end. It is stopped at the deadline as `QUERY_TIMEOUT`, and the writer serves the next
/// insert, after which a short statement on that connection is not stopped either.
#[tokio::test]
async fn a_chain_of_short_triggers_does_not_restart_the_statement_clock() {
    use contacts_server::{
        contacts::{ContactService, clock::ManualClock},
        db::{Db, DbOptions},
        events,
        graphql::Limits,
        http::{self, AppState},
    };
    use sea_orm::ConnectionTrait;
    if common::on_postgres() {
        eprintln!("the trace hook is SQLite's");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let url = common::fresh_database_url(&dir).await;
    let mut options = DbOptions {
        url: url.clone(),
        max_connections: 1,
        acquire_timeout: std::time::Duration::from_secs(10),
        busy_timeout: std::time::Duration::from_secs(5),
        statement_timeout: std::time::Duration::ZERO,
        ping_after_idle: contacts_server::db::PING_AFTER_IDLE,
    };
    let setup = Db::connect(&options).await.expect("database");
    setup.migrate().await.expect("migrations");
    for sql in [
        "CREATE TABLE side (x INTEGER)",
        "CREATE TRIGGER side_row AFTER INSERT ON side BEGIN SELECT count(*) FROM \
         (WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r WHERE x < 100000) \
         SELECT x FROM r); END",
        "CREATE TRIGGER chain BEFORE INSERT ON contacts \
         WHEN json_extract(NEW.metadata, '$.chain') = 'yes' BEGIN INSERT INTO side \
         WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r WHERE x < 200) \
         SELECT x FROM r; END",
    ] {
        setup.write.execute_unprepared(sql).await.expect(sql);
    }
    setup.close().await;
    options.statement_timeout = DEADLINE;
    let db = Db::connect(&options).await.expect("database");
    let events = events::start(&db, &url).await.expect("event bus");
    let clock = ManualClock::new(common::at(T0));
    let service = ContactService::new(db, std::sync::Arc::new(clock), events);
    let app = http::app(
        AppState::new(service, Limits::default()),
        std::time::Duration::from_secs(60),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    let client = reqwest::Client::new();
    let post = |input: Value| {
        client
            .post(format!("http://{addr}/graphql"))
            .json(&json!({ "query": common::CREATE, "variables": { "input": input } }))
            .send()
    };
    let started = std::time::Instant::now();
    let body: Value =
        post(json!({ "phoneNumber": "+56911110001", "metadata": { "chain": "yes" } }))
            .await
            .expect("request")
            .json()
            .await
            .expect("JSON");
    let took = started.elapsed();
    assert_eq!(common::code(&body["errors"][0]), "QUERY_TIMEOUT", "{body}");
    assert!(took < 4 * DEADLINE, "stopped only after {took:?}");
    let body: Value = post(json!({ "phoneNumber": "+56911110002" }))
        .await
        .expect("request")
        .json()
        .await
        .expect("JSON");
    assert!(body.get("errors").is_none(), "{body}");
}
