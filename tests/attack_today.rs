//! An outsider's attacks on the day's changes (outgoing webhooks, the maintained counter,
//! SQLite's metadata entries, the count charge), each kept as a test of what it found.

mod common;
#[allow(dead_code)]
#[path = "webhooks_out/receiver.rs"]
mod receiver;
#[allow(dead_code)]
#[path = "webhooks_out/support.rs"]
mod support;

use std::{
    io::Write,
    sync::{Arc, Mutex},
    time::Duration,
};

use common::TestApp;
use serde_json::{Value, json};
use support::{PATCH, create, instance};

/// Log lines written on this thread, kept in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("lock")).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// SECURITY.md promises that only an endpoint's origin is logged, since its path or query
/// may hold a token. A failed delivery's error (reqwest's, which names the whole URL) must
/// not carry them either. Current-thread runtime: the workers log on this thread, where the
/// capture is installed.
#[tokio::test(flavor = "current_thread")]
async fn a_failed_delivery_never_logs_the_urls_path_or_query() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let app = TestApp::start().await;
    // A port nobody listens on: every attempt is a connection error.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let url = format!("http://127.0.0.1:{port}/hook-path-secret?token=query-secret");
    let (hooked, hooks, _) = instance(&app, &url).await;
    create(&hooked, 1).await;
    let mut logged = String::new();
    for _ in 0..500 {
        logged = captured.text();
        if logged.contains("webhook not delivered") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    hooks.stop().await;
    assert!(logged.contains("webhook not delivered"), "{logged}");
    assert!(logged.contains(&format!("127.0.0.1:{port}")), "{logged}");
    assert!(!logged.contains("hook-path-secret"), "{logged}");
    assert!(!logged.contains("query-secret"), "{logged}");
}

const BY_METADATA: &str = "query($m: Metadata) { contacts(first: 100, filter: { metadata: $m }) \
    { totalCount nodes { id } } contactStats(filter: { metadata: $m }) { total } }";

/// The ids a metadata filter lists, with its two counts checked against the list.
async fn matching(app: &TestApp, metadata: Value) -> Vec<String> {
    let data = app.data(BY_METADATA, json!({ "m": metadata })).await;
    let ids: Vec<String> = (data["contacts"]["nodes"].as_array().expect("nodes").iter())
        .map(|node| node["id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(
        data["contacts"]["totalCount"],
        ids.len(),
        "{metadata}: {data}"
    );
    assert_eq!(
        data["contactStats"]["total"],
        ids.len(),
        "{metadata}: {data}"
    );
    ids
}

/// Keys and values that JSON escapes or that look like paths, and canonically equivalent
/// but different strings: each pair finds exactly its contact, on both backends, after a
/// create, a patch and an unset.
#[tokio::test]
async fn odd_metadata_pairs_filter_alike_on_both_backends() {
    let app = TestApp::start().await;
    let pairs: [(&str, &str); 12] = [
        ("quote\"key", "v\"1"),
        ("back\\slash", "c:\\dir\\"),
        ("a.b", "dotted"),
        ("$.path[0]", "json path"),
        ("'single'", "it's"),
        (" spaced ", " padded "),
        ("ünï", "日本語"),
        ("emoji🙂", "🙂"),
        ("empty", ""),
        ("newline", "line\nbreak\ttab"),
        ("nfc", "\u{e9}"),
        ("sep", "\u{2028}\u{2029}/\\u0041"),
    ];
    let metadata: serde_json::Map<String, Value> = (pairs.iter())
        .map(|(key, value)| ((*key).to_owned(), json!(value)))
        .collect();
    let odd = app
        .create(json!({ "phoneNumber": "+56911112222", "metadata": metadata }))
        .await["id"]
        .clone();
    let plain = app
        .create(json!({ "phoneNumber": "+56911113333", "metadata": { "nfc": "e\u{301}" } }))
        .await["id"]
        .clone();
    let odd = odd.as_str().expect("id").to_owned();
    for (key, value) in pairs {
        let found = matching(&app, json!({ key: value })).await;
        assert_eq!(found, std::slice::from_ref(&odd), "{key:?} = {value:?}");
    }
    // Canonically equivalent, different code points: a different value.
    let decomposed = matching(&app, json!({ "nfc": "e\u{301}" })).await;
    assert_eq!(decomposed, [plain.as_str().expect("id").to_owned()]);
    let all: Value = Value::Object(metadata.clone());
    assert_eq!(matching(&app, all).await, std::slice::from_ref(&odd));

    // Patched: the old value is gone, the new one found; unset: nothing found.
    let patch = "mutation($id: ID!, $set: Metadata, $unset: [String!]) { \
        patchContactMetadata(id: $id, set: $set, unset: $unset) { contact { id } } }";
    app.data(PATCH, json!({ "id": odd, "set": { "quote\"key": "v\"2" } }))
        .await;
    assert!(
        matching(&app, json!({ "quote\"key": "v\"1" }))
            .await
            .is_empty()
    );
    assert_eq!(
        matching(&app, json!({ "quote\"key": "v\"2" })).await,
        std::slice::from_ref(&odd)
    );
    app.data(
        patch,
        json!({ "id": odd, "unset": ["back\\slash", "empty"] }),
    )
    .await;
    assert!(
        matching(&app, json!({ "back\\slash": "c:\\dir\\" }))
            .await
            .is_empty()
    );
    assert!(matching(&app, json!({ "empty": "" })).await.is_empty());
    assert_eq!(matching(&app, json!({ "a.b": "dotted" })).await, [odd]);
}

const TOTALS: &str = "{ contactStats { total } contacts(first: 100) { totalCount nodes { id } } }";

async fn execute(url: &str, sql: &str) {
    use sea_orm::ConnectionTrait;
    let db = sea_orm::Database::connect(url).await.expect("connect");
    let backend = db.get_database_backend();
    db.execute_raw(sea_orm::Statement::from_string(backend, sql))
        .await
        .expect(sql);
}

/// Emptying the table by hand (PostgreSQL's `TRUNCATE`, which fires no delete trigger;
/// SQLite's unconditional `DELETE`, which it would otherwise truncate) leaves the
/// maintained total right, before and after a fold, and counting on from zero.
#[tokio::test]
async fn emptying_the_table_by_hand_resets_the_maintained_total() {
    let app = TestApp::start().await;
    create(&app, 3).await;
    let sql = match common::on_postgres() {
        true => "TRUNCATE contacts CASCADE",
        false => "DELETE FROM contacts",
    };
    execute(&app.database_url, sql).await;
    let data = app.data(TOTALS, Value::Null).await;
    assert_eq!(data["contactStats"]["total"], 0, "{data}");
    assert_eq!(data["contacts"]["totalCount"], 0, "{data}");
    create(&app, 2).await;
    let service = app_service(&app).await;
    service.fold_counters().await.expect("fold");
    let data = app.data(TOTALS, Value::Null).await;
    assert_eq!(data["contactStats"]["total"], 2, "{data}");
    assert_eq!(data["contacts"]["totalCount"], 2, "{data}");
    assert_eq!(data["contacts"]["nodes"].as_array().map(Vec::len), Some(2));
}

/// A service of its own on `app`'s database.
async fn app_service(app: &TestApp) -> contacts_server::contacts::ContactService {
    use contacts_server::{
        contacts::{ContactService, clock::ManualClock},
        db::{Db, DbOptions},
        events,
    };
    let options = DbOptions {
        url: app.database_url.clone(),
        max_connections: 2,
        acquire_timeout: Duration::from_secs(10),
        busy_timeout: Duration::from_secs(5),
        statement_timeout: Duration::ZERO,
        ping_after_idle: contacts_server::db::PING_AFTER_IDLE,
    };
    let db = Db::connect(&options).await.expect("database");
    let events = events::start(&db, &app.database_url).await.expect("bus");
    let clock = ManualClock::new(common::at(common::T0));
    ContactService::new(db, Arc::new(clock), events)
}

/// The first error or data frame of `query` run over a raw WebSocket speaking `protocol`.
async fn over_websocket(app: &TestApp, protocol: &str, query: &str, variables: Value) -> Value {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let mut socket = common::websocket(app, protocol).await;
    let send = |value: Value| Message::Text(value.to_string().into());
    let init = json!({ "type": "connection_init", "payload": {} });
    socket.send(send(init)).await.expect("init");
    let start = if protocol == "graphql-ws" {
        "start"
    } else {
        "subscribe"
    };
    let payload = json!({ "query": query, "variables": variables });
    let operation = json!({ "id": "1", "type": start, "payload": payload });
    socket.send(send(operation)).await.expect("start");
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), socket.next()).await;
        let message = message
            .expect("a frame in time")
            .expect("open")
            .expect("frame");
        let Message::Text(text) = message else {
            continue;
        };
        let frame: Value = serde_json::from_str(&text).expect("JSON frame");
        if ["next", "data", "error"].contains(&frame["type"].as_str().unwrap_or("")) {
            return frame["payload"].clone();
        }
    }
}

/// The count charge holds on every transport, whether the counts come through fragments,
/// inline fragments or a variable filter: 13 range counts (13 × 400 > 5,000) are refused on
/// POST, GET and both WebSocket protocols; 12 run.
#[tokio::test]
async fn the_count_charge_holds_on_every_transport() {
    let app = TestApp::start().await;
    let document = |n: usize| -> String {
        let pages: String = (0..n)
            .map(|i| match i % 3 {
                0 => format!("p{i}: contacts(first: 1, filter: $f) {{ ...T }} "),
                1 => format!("p{i}: contacts(first: 1, filter: $f) {{ ... on ContactConnection {{ totalCount }} }} "),
                _ => format!("p{i}: contacts(first: 1, filter: $f) {{ ...U }} "),
            })
            .collect();
        format!(
            "query($f: ContactFilter) {{ {pages} }} \
             fragment T on ContactConnection {{ totalCount }} \
             fragment U on ContactConnection {{ ...T }}"
        )
    };
    let variables = json!({ "f": { "hasPhoneNumber": true } });
    let too_many = document(13);
    let refused = |answer: &Value| answer.to_string().contains("Query is too complex.");
    let (_, posted) = app.post(&too_many, variables.clone()).await;
    assert!(refused(&posted), "POST: {posted}");
    let got: Value = (app.client.get(app.url("/graphql")))
        .query(&[
            ("query", too_many.as_str()),
            ("variables", &variables.to_string()),
        ])
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("JSON");
    assert!(refused(&got), "GET: {got}");
    for protocol in ["graphql-ws", "graphql-transport-ws"] {
        let answer = over_websocket(&app, protocol, &too_many, variables.clone()).await;
        assert!(refused(&answer), "{protocol}: {answer}");
        let ok = over_websocket(&app, protocol, &document(12), variables.clone()).await;
        assert_eq!(ok["data"]["p0"]["totalCount"], 0, "{protocol}: {ok}");
    }
}

/// `metadata: {}` requires nothing (every contact contains the empty object), yet it made
/// the count a `COUNT(*)` of the whole table instead of the maintained total: twelve of them
/// in a document read the table twelve times. It is now the unfiltered count, the same
/// statements, and the same answers.
#[tokio::test]
async fn an_empty_metadata_filter_counts_from_the_maintained_total() {
    use contacts_server::contacts::filter::{ContactFilter, FilterInput};
    let app = TestApp::start().await;
    create(&app, 2).await;
    let service = app_service(&app).await;
    let now = common::at(common::T0);
    let statements = |input: FilterInput| {
        let filter = ContactFilter::parse(input, "filter").expect("filter");
        let statements = service.count_statements(&filter, now);
        statements.into_iter().map(|s| s.sql).collect::<Vec<_>>()
    };
    let empty = FilterInput {
        metadata: Some(serde_json::Map::new()),
        ..FilterInput::default()
    };
    let unfiltered = statements(FilterInput::default());
    assert_eq!(statements(empty), unfiltered);
    let query = "{ contactStats(filter: { metadata: {} }) { total } \
        contacts(first: 1, filter: { metadata: {} }) { totalCount } }";
    let data = app.data(query, Value::Null).await;
    assert_eq!(data["contactStats"]["total"], 2, "{data}");
    assert_eq!(data["contacts"]["totalCount"], 2, "{data}");
}

/// A receiver with nginx's default body limit (1 MiB, `client_max_body_size 1m`): 413 for a
/// bigger request; the positions of the changes it accepted.
async fn limited_receiver() -> (String, Arc<Mutex<Vec<i64>>>) {
    use axum::{body::Bytes, extract::DefaultBodyLimit, http::StatusCode, routing::post};
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let seen = accepted.clone();
    let route = post(move |body: Bytes| {
        let seen = seen.clone();
        async move {
            let body: Value = serde_json::from_slice(&body).expect("JSON");
            let changes = body["changes"].as_array().cloned().unwrap_or_default();
            let positions = changes.iter().filter_map(|c| c["position"].as_i64());
            seen.lock().expect("lock").extend(positions);
            StatusCode::OK
        }
    });
    let app = axum::Router::new()
        .route("/hook", route)
        .layer(DefaultBodyLimit::max(1024 * 1024));
    let addr = support::serve(app).await;
    (format!("http://{addr}/hook"), accepted)
}

/// Found: a batch's body had no size bound. 100 contacts with full metadata (50 keys of
/// 500 characters, all within the API's limits) make a 2.7 MB batch; a receiver behind a
/// 1 MiB body limit answers 413 to it forever ("retried until you accept it"), so the
/// endpoint stalls until retention skips the changes. Now a body stops growing at 256 KiB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_bigger_than_the_receivers_body_limit_does_not_stall_the_endpoint() {
    let app = TestApp::start().await;
    let (url, accepted) = limited_receiver().await;
    let mut settings = support::settings(&url);
    settings.batch_size = 100;
    let value = "x".repeat(500);
    let metadata: serde_json::Map<String, Value> = (0..50)
        .map(|i| (format!("key{i:02}"), json!(value)))
        .collect();
    let import =
        "mutation($rows: [CreateContactInput!]!) { importContacts(contacts: $rows) { created } }";
    // In requests of 25 rows: the API's own bodies are held to 1 MiB.
    for chunk in 0..4 {
        let rows: Vec<Value> = (0..25)
            .map(|i| json!({ "phoneNumber": format!("+5691{:07}", chunk * 25 + i), "metadata": metadata }))
            .collect();
        let imported = app.data(import, json!({ "rows": rows })).await;
        assert_eq!(imported["importContacts"]["created"], 25, "{imported}");
    }
    let (_hooked, hooks, _) = support::instance_with(&app, settings).await;
    let mut received = 0;
    for _ in 0..1000 {
        received = accepted.lock().expect("lock").len();
        if received >= 100 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    hooks.stop().await;
    let positions = accepted.lock().expect("lock").clone();
    assert_eq!(received, 100, "accepted {positions:?}");
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
}

/// Folds running all the while two instances create and delete contacts (PostgreSQL: each
/// writing backend's stripe is folded into stripe 0 under the writers' feet; SQLite: one
/// stripe, the fold does nothing): the maintained total still equals the table's rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn folding_during_concurrent_writes_keeps_the_total_exact() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let app = TestApp::start().await;
    let second = app.second_instance().await;
    let service = app_service(&app).await;
    let writing = Arc::new(AtomicBool::new(true));
    let folding = writing.clone();
    let folder = tokio::spawn(async move {
        let mut folded = 0u64;
        while folding.load(Ordering::Relaxed) {
            folded += service.fold_counters().await.expect("fold");
            tokio::task::yield_now().await;
        }
        folded
    });
    futures_util::future::join_all(
        (0..4).map(|w| writes(if w % 2 == 0 { &app } else { &second }, w)),
    )
    .await;
    writing.store(false, Ordering::Relaxed);
    let folded = folder.await.expect("folder");
    // PostgreSQL: writers' stripes were folded while they wrote.
    assert_eq!(folded > 0, common::on_postgres(), "{folded} stripes folded");
    let data = app.data(TOTALS, Value::Null).await;
    assert_eq!(data["contactStats"]["total"], 40, "{data}");
    assert_eq!(data["contacts"]["totalCount"], 40, "{data}");
}

/// 15 creates by `worker` on `app`, a third of them deleted again.
async fn writes(app: &TestApp, worker: usize) {
    const DELETE: &str = "mutation($id: ID!) { deleteContact(id: $id) { deletedContactId } }";
    for round in 0..15 {
        let phone = format!("+56991{worker}{round:05}");
        let made = app.create(json!({ "phoneNumber": phone })).await;
        if round % 3 == 0 {
            app.data(DELETE, json!({ "id": made["id"] })).await;
        }
    }
}

const ALL_METADATA: &str = "{ contacts(first: 100) { nodes { id metadata } } }";

/// Every contact's (key, value) pairs as the API shows them, and each pair's contact ids.
async fn pairs_shown(app: &TestApp) -> std::collections::BTreeMap<(String, String), Vec<String>> {
    let data = app.data(ALL_METADATA, Value::Null).await;
    let mut pairs: std::collections::BTreeMap<(String, String), Vec<String>> = Default::default();
    for node in data["contacts"]["nodes"].as_array().expect("nodes") {
        let id = node["id"].as_str().expect("id").to_owned();
        for (key, value) in node["metadata"].as_object().expect("metadata") {
            let value = value.as_str().expect("string").to_owned();
            pairs
                .entry((key.clone(), value))
                .or_default()
                .push(id.clone());
        }
    }
    pairs
}

/// After every write path that touches metadata (create, patch, replace, upsert, import
/// over an existing row, a merge of two contacts with metadata, a delete), each pair the API
/// shows finds exactly its contacts, and a pair that was overwritten or removed finds none;
/// on SQLite the triggers' entries are exactly the stored JSON's.
#[tokio::test]
async fn metadata_filters_follow_every_write_path() {
    const UPDATE: &str = "mutation($id: ID!, $input: UpdateContactInput!) { \
        updateContact(id: $id, input: $input) { contact { id } } }";
    const UPSERT: &str = "mutation($input: CreateContactInput!) { \
        upsertContact(input: $input) { contact { id } } }";
    const IMPORT: &str = "mutation($rows: [CreateContactInput!]!) { \
        importContacts(contacts: $rows) { created updated } }";
    const INBOUND: &str = "mutation($input: RecordWhatsappInboundInput!) { \
        recordWhatsappInbound(input: $input) { contact { id } } }";
    const DELETE: &str = "mutation($id: ID!) { deleteContact(id: $id) { deletedContactId } }";
    let app = TestApp::start().await;
    let a = app
        .create(json!({ "phoneNumber": "+56921110001", "metadata": { "k": "a", "gone": "1" } }))
        .await;
    let b = app
        .create(json!({ "phoneNumber": "+56921110002", "metadata": { "k": "b" } }))
        .await;
    let d = app
        .create(json!({ "phoneNumber": "+56921110004", "metadata": { "k": "d" } }))
        .await;
    app.data(
        PATCH,
        json!({ "id": a["id"], "set": { "k": "a2", "new": "x" } }),
    )
    .await;
    app.data(
        UPDATE,
        json!({ "id": b["id"], "input": { "metadata": { "replaced": "yes" } } }),
    )
    .await;
    app.data(
        UPSERT,
        json!({ "input": { "phoneNumber": "+56921110001", "metadata": { "up": "sert" } } }),
    )
    .await;
    let rows = json!([{ "phoneNumber": "+56921110002", "metadata": { "imp": "1" } },
        { "phoneNumber": "+56921110003", "metadata": { "imp": "1", "k": "c" } }]);
    app.data(IMPORT, json!({ "rows": rows })).await;
    // A BSUID-only contact and a phone-only one, both with metadata, proven one person.
    app.create(json!({ "whatsappUserId": "CL.4242", "metadata": { "side": "bsuid", "k": "m1" } }))
        .await;
    app.create(
        json!({ "phoneNumber": "+56921110005", "metadata": { "side": "phone", "k": "m2" } }),
    )
    .await;
    let merge = json!({ "input": { "whatsappUserId": "CL.4242", "phoneNumber": "+56921110005",
        "receivedAt": "2026-11-24T11:00:00Z" } });
    app.data(INBOUND, merge).await;
    app.data(DELETE, json!({ "id": d["id"] })).await;

    // a, b, the imported one and the merged one.
    let totals = app.data(TOTALS, Value::Null).await;
    assert_eq!(totals["contactStats"]["total"], 4, "{totals}");
    let shown = pairs_shown(&app).await;
    for ((key, value), mut ids) in shown.clone() {
        let mut found = matching(&app, json!({ key.clone(): value.clone() })).await;
        found.sort();
        ids.sort();
        assert_eq!(found, ids, "{key} = {value}");
    }
    for (key, value) in [("k", "a"), ("gone", "1"), ("k", "b"), ("k", "d")] {
        let stale = shown.contains_key(&(key.to_owned(), value.to_owned()));
        let found = matching(&app, json!({ key: value })).await;
        assert_eq!(found.is_empty(), !stale, "{key} = {value}: {found:?}");
    }
    if !common::on_postgres() {
        let entries = "SELECT COUNT(*) FROM contact_metadata_entries";
        let expected = "SELECT COUNT(*) FROM contacts, json_each(contacts.metadata) AS m \
            WHERE m.type = 'text'";
        let missing = "SELECT COUNT(*) FROM contacts AS c, json_each(c.metadata) AS m \
            WHERE NOT EXISTS (SELECT 1 FROM contact_metadata_entries AS e \
            WHERE e.contact_id = c.id AND e.key = m.key AND e.value = m.value)";
        assert_eq!(scalar(&app, entries).await, scalar(&app, expected).await);
        assert_eq!(scalar(&app, missing).await, 0);
    }
}

async fn scalar(app: &TestApp, sql: &str) -> i64 {
    use sea_orm::ConnectionTrait;
    let db = sea_orm::Database::connect(&app.database_url)
        .await
        .expect("connect");
    let backend = db.get_database_backend();
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(backend, sql))
        .await;
    let row = row.expect(sql).expect("a row");
    row.try_get_by_index::<i64>(0).expect("a number")
}
