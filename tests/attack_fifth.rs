//! Outside attacks on two changes of issue 15: pooled connections are pinged before use only
//! after 500 ms idle (`src/db.rs` `pooled`), and a contact whose selection holds only plain
//! fields is written without async-graphql's future per field (`src/graphql/plain_fields.rs`).
//!
//! The plain path is held byte for byte to the fallback (the same document with one field
//! repeated under `@include(if: true)` or `@skip(if: $no)`), on every root that answers a
//! `Contact`, over HTTP and both WebSocket protocols. The pool is attacked on PostgreSQL by
//! ending the server's backends (idle, and in the middle of a write). An idle timeout shorter
//! than the ping threshold failed requests again and again (found here); the threshold is now
//! a setting, tested in `tests/pg_pool.rs`.

mod common;

use std::time::Duration;

use chrono::SecondsFormat;
use common::{T0, TestApp, at, code, raw_ws};
use futures_util::StreamExt;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// Words that would mean driver or SQL internals leaked into a response.
const LEAKS: [&str; 6] = [
    "sqlx",
    "pool",
    "postgres",
    "io error",
    "os error",
    "terminating",
];

/// Selections of plain fields only, each with a field of it to repeat under a directive,
/// which sends the same document down async-graphql's path.
const SELECTIONS: [(&str, &str); 7] = [
    // A key selected twice, apart; a key selected three times.
    ("id phoneNumber id metadata phoneNumber id", "metadata"),
    // Aliases that reuse other fields' names, swapped.
    (
        "phoneNumber: id id: phoneNumber blocked: whatsappWindowOpen whatsappWindowOpen: blocked",
        "id: phoneNumber",
    ),
    // Aliased `__typename`, a field aliased as `__typename`, `__typename` aliased as `id`.
    (
        "t: __typename __typename: updatedAt id: __typename",
        "__typename: updatedAt",
    ),
    // One alias twice for the same field, interleaved with another.
    (
        "m: metadata c: createdAt m: metadata c: createdAt",
        "c: createdAt",
    ),
    // Every plain field, six under an alias (the default allows 15 aliases a document).
    (
        "a: __typename b: id c: phoneNumber countryCode lastWhatsappMessageAt \
         whatsappWindowOpen g: whatsappWindowExpiresAt blocked i: metadata whatsappUserId \
         parentWhatsappUserId whatsappUsername whatsappProfileName o: createdAt updatedAt",
        "o: createdAt",
    ),
    // Every plain field, unaliased.
    (
        "__typename id phoneNumber countryCode lastWhatsappMessageAt whatsappWindowOpen \
         whatsappWindowExpiresAt blocked metadata whatsappUserId parentWhatsappUserId \
         whatsappUsername whatsappProfileName createdAt updatedAt",
        "whatsappWindowExpiresAt",
    ),
    // A single field.
    ("whatsappWindowOpen", "whatsappWindowOpen"),
];

/// The three spellings of one selection: plain, and two that take async-graphql's path.
fn spellings(selection: &str, repeated: &str) -> [String; 3] {
    [
        selection.to_owned(),
        format!("{selection} {repeated} @include(if: true)"),
        format!("{selection} {repeated} @skip(if: $no)"),
    ]
}

/// `query` with the `$no` variable declared when a spelling uses it.
fn declare(head: &str, declared: &str, selection: &str) -> String {
    let no = if selection.contains("$no") {
        "$no: Boolean!"
    } else {
        ""
    };
    let all = [declared, no]
        .into_iter()
        .filter(|d| !d.is_empty())
        .collect::<Vec<_>>()
        .join(", ");
    if all.is_empty() {
        head.to_owned()
    } else {
        format!("{head}({all})")
    }
}

/// The response body as sent (key order included), which must be a 200 without errors.
async fn text(app: &TestApp, query: &str, variables: &Value) -> String {
    let mut variables = variables.clone();
    variables["no"] = json!(false);
    let response = app
        .client
        .post(app.url("/graphql"))
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .expect("request");
    let status = response.status();
    let body = response.text().await.expect("body");
    assert_eq!(status, 200, "{query}: {body}");
    assert!(!body.contains("\"errors\""), "{query}: {body}");
    body
}

/// Runs one statement on the app's database, outside the app.
async fn execute(url: &str, sql: &str) -> Result<(), sea_orm::DbErr> {
    let db = sea_orm::Database::connect(url).await?;
    let result = db.execute_unprepared(sql).await.map(|_| ());
    db.close().await?;
    result
}

/// Contacts of every shape: full and blocked with its window open, a window closing exactly
/// at "now" and one a microsecond later, never messaged, deleted, known by user id alone, and metadata
/// written straight into the database with values of every JSON type and odd keys.
async fn seed(app: &TestApp) -> Value {
    let ago = |micros: i64| {
        (at(T0) - chrono::Duration::microseconds(micros))
            .to_rfc3339_opts(SecondsFormat::Micros, true)
    };
    let day = 24 * 3600 * 1_000_000;
    let inputs = [
        json!({ "phoneNumber": "+56945000001", "lastWhatsappMessageAt": ago(3_600_000_000),
                "metadata": { "plan": "gold", "quote": "\"a\"\n\t\\", "emoji": "😀" } }),
        json!({ "phoneNumber": "+56945000002", "lastWhatsappMessageAt": ago(day) }),
        json!({ "phoneNumber": "+56945000003", "lastWhatsappMessageAt": ago(day - 1) }),
        json!({ "phoneNumber": "+447700900123", "metadata": {} }),
        json!({ "whatsappUserId": "CL.odd1", "parentWhatsappUserId": "CL.P1",
                "whatsappUsername": "zoë", "whatsappProfileName": "Zoë \u{202e} 😀" }),
        json!({ "whatsappUserId": "CL.odd2" }),
    ];
    // A deleted contact: its changes in the feed carry a null `contact`.
    let gone = app.create(json!({ "phoneNumber": "+56945000007" })).await;
    let delete = "mutation($id: ID!) { deleteContact(id: $id) { deletedContactId } }";
    app.data(delete, json!({ "id": gone["id"] })).await;
    let mut first = Value::Null;
    for input in inputs {
        let contact = app.create(input).await;
        if first.is_null() {
            first = contact;
        }
    }
    let block =
        "mutation($id: ID!) { setContactBlocked(id: $id, blocked: true) { contact { id } } }";
    app.data(block, json!({ "id": first["id"] })).await;
    let odd = r#"{"b": 1, "a": "x", "c": {"d": "e"}, "z": null, "t": true, "arr": ["q"],
        "é": "1", "e": "2", "A": "3", "😀": "4", " ": "5", "a\"b": "6", "10": "7", "9": "8", "": "9"}"#;
    let sql = format!("UPDATE contacts SET metadata = '{odd}' WHERE whatsapp_user_id = 'CL.odd1'");
    execute(&app.database_url, &sql)
        .await
        .expect("odd metadata");
    // Not an object at all: accepted by one backend or the other, or refused by a check.
    let sql = "UPDATE contacts SET metadata = '[\"x\", 1]' WHERE whatsapp_user_id = 'CL.odd2'";
    if let Err(err) = execute(&app.database_url, sql).await {
        eprintln!("metadata as an array refused by the database: {err}");
    }
    first
}

/// Every query root that answers contacts, for one selection: name, document, variables.
fn query_roots(selection: &str, first: &Value) -> Vec<(String, Value)> {
    let page = declare("query", "", selection);
    let by_phone = declare("query", "$p: String!", selection);
    let by_user = declare("query", "$u: String!", selection);
    vec![
        (
            format!(
                "{page} {{ contacts(first: 20) {{ nodes {{ {selection} }} \
                 edges {{ node {{ {selection} }} }} }} }}"
            ),
            json!({}),
        ),
        (
            format!("{by_phone} {{ contactByPhoneNumber(phoneNumber: $p) {{ {selection} }} }}"),
            json!({ "p": first["phoneNumber"] }),
        ),
        (
            format!(
                "{by_user} {{ contactByWhatsappUserId(whatsappUserId: $u) {{ {selection} }} }}"
            ),
            json!({ "u": "CL.odd1" }),
        ),
        (
            format!(
                "{page} {{ contactChanges(first: 20) {{ nodes {{ contact {{ {selection} }} }} \
                 edges {{ node {{ contact {{ {selection} }} }} }} }} }}"
            ),
            json!({}),
        ),
    ]
}

#[tokio::test]
async fn every_query_root_answers_plain_selections_as_the_resolvers_do() {
    let app = TestApp::start().await;
    let first = seed(&app).await;
    for (selection, repeated) in SELECTIONS {
        let [plain, included, skipped] = spellings(selection, repeated);
        let roots = query_roots(&plain, &first)
            .into_iter()
            .zip(query_roots(&included, &first))
            .zip(query_roots(&skipped, &first));
        for (((plain_q, vars), (included_q, _)), (skipped_q, _)) in roots {
            let answer = text(&app, &plain_q, &vars).await;
            assert_eq!(answer, text(&app, &included_q, &vars).await, "{plain_q}");
            assert_eq!(answer, text(&app, &skipped_q, &vars).await, "{plain_q}");
        }
    }
    // The feed held a deleted contact's null among the contacts compared.
    let feed = app
        .data(
            "{ contactChanges(first: 20) { nodes { contact { id } } } }",
            json!({}),
        )
        .await;
    let nodes = feed["contactChanges"]["nodes"].as_array().expect("nodes");
    assert!(nodes.iter().any(|node| node["contact"].is_null()), "{feed}");
    // The odd metadata: string values only, in key order, whatever else was stored.
    let odd = app
        .data(
            "{ contactByWhatsappUserId(whatsappUserId: \"CL.odd1\") { metadata } }",
            json!({}),
        )
        .await;
    let metadata = &odd["contactByWhatsappUserId"]["metadata"];
    assert_eq!(metadata["a"], "x");
    assert!(
        metadata.get("b").is_none() && metadata.get("c").is_none(),
        "{metadata}"
    );
}

#[tokio::test]
async fn the_node_interface_answers_alike_on_both_paths() {
    let app = TestApp::start().await;
    let first = seed(&app).await;
    for root in ["contact", "node"] {
        let selection = "id __typename t: __typename i: id";
        let plain = format!("query($id: ID!) {{ {root}(id: $id) {{ {selection} }} }}");
        let included = format!(
            "query($id: ID!) {{ {root}(id: $id) {{ {selection} id @include(if: true) }} }}"
        );
        let vars = json!({ "id": first["id"] });
        let answer = text(&app, &plain, &vars).await;
        assert_eq!(answer, text(&app, &included, &vars).await);
        assert!(answer.contains("\"t\":\"Contact\""), "{answer}");
    }
}

#[tokio::test]
async fn every_mutation_payload_answers_plain_selections_as_the_resolvers_do() {
    let app = TestApp::start().await;
    let first = seed(&app).await;
    let upsert = json!({ "i": { "phoneNumber": "+56945000009" } });
    app.data(
        "mutation($i: CreateContactInput!) { upsertContact(input: $i) { created } }",
        upsert.clone(),
    )
    .await;
    let id = json!({ "id": first["id"] });
    // Each is idempotent at the manual clock's fixed "now": run twice, it answers alike.
    let mutations = [
        (
            "$id: ID!",
            "setContactBlocked(id: $id, blocked: true)",
            id.clone(),
        ),
        (
            "$id: ID!",
            "patchContactMetadata(id: $id, set: { k: \"v\" })",
            id.clone(),
        ),
        (
            "$id: ID!",
            "updateContact(id: $id, input: { countryCode: \"CL\" })",
            id.clone(),
        ),
        (
            "$p: String!",
            "recordWhatsappMessage(phoneNumber: $p, receivedAt: \"2026-11-24T11:00:00Z\")",
            json!({ "p": first["phoneNumber"] }),
        ),
        (
            "$i: CreateContactInput!",
            "upsertContact(input: $i)",
            upsert,
        ),
    ];
    for (declared, call, vars) in mutations {
        for (selection, repeated) in SELECTIONS {
            let [plain, included, skipped] = spellings(selection, repeated);
            let doc = |s: &str| {
                format!(
                    "{} {{ {call} {{ contact {{ {s} }} }} }}",
                    declare("mutation", declared, s)
                )
            };
            // Once first, so that every spelling sees the contact as it stays.
            text(&app, &doc(&plain), &vars).await;
            let answer = text(&app, &doc(&plain), &vars).await;
            assert_eq!(answer, text(&app, &doc(&included), &vars).await, "{call}");
            assert_eq!(answer, text(&app, &doc(&skipped), &vars).await, "{call}");
        }
    }
}

/// The change log's current end, as a cursor: a subscription from it gets every later change.
async fn log_end(app: &TestApp) -> Value {
    let query = "{ contactChanges(first: 1000) { pageInfo { endCursor } } }";
    let end = app.data(query, json!({})).await;
    let after = end["contactChanges"]["pageInfo"]["endCursor"].clone();
    assert!(after.is_string(), "{end}");
    after
}

/// The next data message of a subscription, as the text the server sent.
async fn next_text(socket: &mut raw_ws::Socket) -> String {
    loop {
        let next = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a message within 10 s")
            .expect("socket open")
            .expect("message");
        let Message::Text(text) = next else { continue };
        let message: Value = serde_json::from_str(&text).expect("JSON");
        match message["type"].as_str() {
            Some("next" | "data") => return text.to_string(),
            Some("ping" | "pong" | "ka" | "connection_ack") => continue,
            _ => panic!("unexpected message: {text}"),
        }
    }
}

/// A socket on `protocol` subscribed to `query` as operation "1".
async fn subscribed(app: &TestApp, protocol: &str, query: &str) -> raw_ws::Socket {
    let (mut socket, reply) = raw_ws::init(app, protocol, json!({})).await;
    assert_eq!(reply["type"], "connection_ack", "{reply}");
    let kind = if protocol == "graphql-ws" {
        "start"
    } else {
        "subscribe"
    };
    let payload = json!({ "query": query, "variables": { "no": false } });
    raw_ws::send(
        &mut socket,
        json!({ "id": "1", "type": kind, "payload": payload }),
    )
    .await;
    socket
}

#[tokio::test]
async fn subscriptions_answer_plain_selections_as_the_resolvers_do_on_both_protocols() {
    let app = TestApp::start().await;
    seed(&app).await;
    // Subscribed after the log's current end: the create below is replayed or delivered live,
    // whichever comes first, never missed.
    let after = log_end(&app).await;
    let (selection, repeated) = SELECTIONS[5];
    let mut sockets = Vec::new();
    for protocol in ["graphql-transport-ws", "graphql-ws"] {
        for spelling in spellings(selection, repeated) {
            let head = declare("subscription", "", &spelling);
            let query = format!(
                "{head} {{ contactEvents(after: {after}) {{ kind contact {{ {spelling} }} }} }}"
            );
            sockets.push((protocol, subscribed(&app, protocol, &query).await));
        }
    }
    let input = json!({ "phoneNumber": "+56945000100", "metadata": { "z": "1", "a": "2" } });
    app.create(input).await;
    let mut answers = Vec::new();
    for (protocol, socket) in &mut sockets {
        answers.push((*protocol, next_text(socket).await));
    }
    for same_protocol in answers.chunks(3) {
        let (protocol, plain) = &same_protocol[0];
        assert_eq!(plain, &same_protocol[1].1, "{protocol}");
        assert_eq!(plain, &same_protocol[2].1, "{protocol}");
        assert!(
            plain.contains("\"metadata\":{\"a\":\"2\",\"z\":\"1\"}"),
            "{plain}"
        );
        assert!(
            plain.contains("\"phoneNumber\":\"+56945000100\""),
            "{plain}"
        );
    }
}

#[tokio::test]
async fn the_limits_charge_a_plain_selection_as_before() {
    let app = TestApp::start().await;
    seed(&app).await;
    let aliases: String = (0..14).map(|i| format!(" m{i}: metadata")).collect();
    let plain = format!("{{ contacts(first: 100) {{ nodes {{ id{aliases} }} }} }}");
    let included =
        format!("{{ contacts(first: 100) {{ nodes {{ id{aliases} id @include(if: true) }} }} }}");
    // The same key repeated is charged each time, on the plain path as on the other.
    let repeated = " id".repeat(60);
    let duplicates = format!("{{ contacts(first: 100) {{ nodes {{{repeated} }} }} }}");
    let error = app.error(&duplicates, json!({})).await;
    assert_eq!(code(&error), "GRAPHQL_VALIDATION_FAILED", "{error}");
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("complex")),
        "{error}"
    );
    let (status, refused) = app.post(&plain, json!({})).await;
    let (included_status, included_refused) = app.post(&included, json!({})).await;
    assert_eq!(status, included_status);
    assert!(refused.get("data").is_none_or(Value::is_null), "{refused}");
    assert_eq!(
        code(&refused["errors"][0]),
        code(&included_refused["errors"][0])
    );
    let message = refused["errors"][0]["message"].as_str().unwrap_or("");
    assert!(message.contains("complex"), "{refused}");
    assert_eq!(refused["errors"][0], included_refused["errors"][0]);
    // Depth is charged by the document, not the path: a plain selection deep in a payload.
    let deep = "{ contactChanges { edges { node { contact { id } } } } }";
    assert!(app.post(deep, json!({})).await.1.get("errors").is_none());
}

// ---- The pool: PostgreSQL ends the server's connections ----

/// The app on a fresh schema whose connections are named with a fresh `application_name`,
/// or `None` on SQLite (embedded: no server to end a connection).
async fn named_app(options: &str) -> Option<(TestApp, String)> {
    if !common::on_postgres() {
        eprintln!("SQLite is embedded: no server to end connections");
        return None;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let name = format!("atk5_{}", uuid::Uuid::now_v7().simple());
    let url = common::fresh_database_url(&dir).await.replacen(
        "options=",
        &format!("options={options}"),
        1,
    );
    let url = format!("{url}&application_name={name}");
    Some((TestApp::start_on(&url, dir).await, name))
}

/// One column of integers from a statement run on the PostgreSQL server, outside the app.
async fn admin_ints(sql: &str, name: &str) -> Vec<i64> {
    let server = std::env::var("TEST_DATABASE_URL").expect("PostgreSQL server");
    let admin = sea_orm::Database::connect(&server).await.expect("connect");
    let rows = admin
        .query_all_raw(Statement::from_sql_and_values(
            admin.get_database_backend(),
            sql,
            [name.into()],
        ))
        .await
        .expect("admin statement");
    admin.close().await.expect("close");
    rows.iter()
        .map(|row| row.try_get_by_index::<i64>(0).expect("an integer"))
        .collect()
}

/// Ends every backend of the app; how many there were.
async fn end_backends(name: &str) -> usize {
    let sql = "SELECT pg_terminate_backend(pid)::int::bigint FROM pg_stat_activity \
               WHERE application_name = $1";
    admin_ints(sql, name).await.len()
}

/// The app's sessions left inside a transaction.
async fn open_transactions(name: &str) -> i64 {
    let sql = "SELECT count(*) FROM pg_stat_activity \
               WHERE application_name = $1 AND state LIKE 'idle in transaction%'";
    admin_ints(sql, name).await[0]
}

/// True for a 200 without errors; otherwise asserts a clean 503 and returns false.
fn clean(status: reqwest::StatusCode, body: &Value) -> bool {
    if status == 200 && body.get("errors").is_none() {
        return true;
    }
    assert_eq!(status, 503, "{body}");
    assert_eq!(code(&body["errors"][0]), "SERVICE_UNAVAILABLE", "{body}");
    let text = body.to_string().to_lowercase();
    for leak in LEAKS {
        assert!(!text.contains(leak), "{leak:?} leaked: {body}");
    }
    false
}

/// Repeats a request until it succeeds, every failure a clean 503; the success's `data`.
async fn until_success(app: &TestApp, query: &str, variables: Value) -> Value {
    counted_until_success(app, query, variables).await.0
}

/// [`until_success`], with the number of failures before the success.
async fn counted_until_success(app: &TestApp, query: &str, variables: Value) -> (Value, usize) {
    for failures in 0..20 {
        let (status, body) = app.post(query, variables.clone()).await;
        if clean(status, &body) {
            return (body["data"].clone(), failures);
        }
    }
    panic!("20 failures in a row: {query}");
}

/// The pool's size in the tests (`tests/common`): at most this many dead connections.
const POOL_SIZE: usize = 4;

const IMPORT: &str = "mutation($c: [CreateContactInput!]!) { importContacts(contacts: $c) { \
    created updated failed { index code message } } }";
const RECORD: &str =
    "mutation($p: String!) { recordWhatsappMessage(phoneNumber: $p) { contact { id } } }";

/// Every phone number of the first 100 contacts.
async fn phones(app: &TestApp) -> Vec<String> {
    let data = until_success(
        app,
        "{ contacts(first: 100) { nodes { phoneNumber } } }",
        json!({}),
    )
    .await;
    let mut phones: Vec<String> = data["contacts"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|node| node["phoneNumber"].as_str().unwrap_or("").to_owned())
        .collect();
    phones.sort();
    phones
}

#[tokio::test]
async fn writes_on_connections_ended_while_idle_are_a_clean_503_and_lose_or_double_nothing() {
    let Some((app, name)) = named_app("").await else {
        return;
    };
    // Several connections in the pool, all used moments ago: handed out without a ping.
    let reads = (0..4).map(|_| app.post("{ contactStats { total } }", json!({})));
    futures_util::future::join_all(reads).await;
    let writes = [
        (
            common::CREATE,
            json!({ "input": { "phoneNumber": "+56945000301" } }),
        ),
        (
            IMPORT,
            json!({ "c": [{ "phoneNumber": "+56945000302" }, { "phoneNumber": "+56945000303" }] }),
        ),
        (RECORD, json!({ "p": "+56945000304" })),
        (RECORD, json!({ "p": "+56945000301" })),
    ];
    for (query, variables) in writes {
        assert!(end_backends(&name).await > 0);
        let (data, failures) = counted_until_success(&app, query, variables).await;
        // One 503 at most per connection the pool held, then it replaced them.
        assert!(failures <= POOL_SIZE, "{failures} failures: {query}");
        if let Some(import) = data.get("importContacts") {
            // A retried import that had been written would report "updated" rows.
            assert_eq!(import, &json!({ "created": 2, "updated": 0, "failed": [] }));
        }
    }
    assert_eq!(
        phones(&app).await,
        [
            "+56945000301",
            "+56945000302",
            "+56945000303",
            "+56945000304"
        ]
    );
    assert_eq!(open_transactions(&name).await, 0);
}

/// The backends of `name` waiting for a lock, once there is one (PostgreSQL decides when: it
/// is polled, up to 5 s); empty if none ever waited.
async fn waiting_on_a_lock(name: &str) -> Vec<i64> {
    let waiting = "SELECT pid::bigint FROM pg_stat_activity \
                   WHERE application_name = $1 AND wait_event_type = 'Lock'";
    for _ in 0..250 {
        let pids = admin_ints(waiting, name).await;
        if !pids.is_empty() {
            return pids;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Vec::new()
}

/// Lock-holding session named apart from the app, so ending the app's backends spares it.
async fn lock_contacts(app: &TestApp, name: &str) -> sea_orm::DatabaseTransaction {
    use sea_orm::TransactionTrait;
    let url = app
        .database_url
        .replace(name, &format!("{name}_lock"))
        .replacen("options=", "options=-c%20log_statement%3Dnone%20", 1);
    let db = sea_orm::Database::connect(&url).await.expect("connect");
    let txn = db.begin().await.expect("begin");
    txn.execute_unprepared("LOCK TABLE contacts IN EXCLUSIVE MODE")
        .await
        .expect("lock");
    txn
}

#[tokio::test]
async fn a_write_whose_backend_ends_mid_statement_is_a_clean_503_and_writes_nothing() {
    let Some((app, name)) = named_app("").await else {
        return;
    };
    app.create(json!({ "phoneNumber": "+56945000401" })).await;
    let writes = [
        (RECORD, json!({ "p": "+56945000401" })),
        (
            IMPORT,
            json!({ "c": [{ "phoneNumber": "+56945000402" }, { "phoneNumber": "+56945000401",
                            "metadata": { "k": "v" } }] }),
        ),
        (
            common::CREATE,
            json!({ "input": { "phoneNumber": "+56945000403" } }),
        ),
    ];
    let lock = lock_contacts(&app, &name).await;
    for (query, variables) in &writes {
        let request = app
            .client
            .post(app.url("/graphql"))
            .json(&json!({ "query": query, "variables": variables }))
            .send();
        let request = tokio::spawn(request);
        // The write now waits for the lock; its backend is ended while it waits.
        let pids = waiting_on_a_lock(&name).await;
        assert_eq!(
            pids.len(),
            1,
            "the write never waited for the lock: {query}"
        );
        let sql = "SELECT pg_terminate_backend(pid)::int::bigint FROM pg_stat_activity \
                   WHERE application_name = $1 AND wait_event_type = 'Lock'";
        admin_ints(sql, &name).await;
        let response = request.await.expect("task").expect("response");
        let status = response.status();
        let body: Value = response.json().await.expect("JSON");
        assert!(!clean(status, &body), "answered as if written: {body}");
    }
    lock.rollback().await.expect("rollback");
    // Nothing of the three was written.
    assert_eq!(phones(&app).await, ["+56945000401"]);
    let found = until_success(
        &app,
        "{ contactByPhoneNumber(phoneNumber: \"+56945000401\") { lastWhatsappMessageAt metadata } }",
        json!({}),
    )
    .await;
    assert_eq!(
        found["contactByPhoneNumber"],
        json!({ "lastWhatsappMessageAt": null, "metadata": {} })
    );
    assert_eq!(open_transactions(&name).await, 0);
    // Retried, each is written once.
    for (query, variables) in writes {
        until_success(&app, query, variables).await;
    }
    assert_eq!(
        phones(&app).await,
        ["+56945000401", "+56945000402", "+56945000403"]
    );
}

#[tokio::test]
async fn subscriptions_outlive_every_backend_ended() {
    let Some((app, name)) = named_app("").await else {
        return;
    };
    app.create(json!({ "phoneNumber": "+56945000501" })).await;
    let after = log_end(&app).await;
    let query = format!(
        "subscription {{ contactEvents(after: {after}) {{ kind contact {{ phoneNumber }} }} }}"
    );
    let mut sockets = Vec::new();
    for protocol in ["graphql-transport-ws", "graphql-ws"] {
        sockets.push((protocol, subscribed(&app, protocol, &query).await));
    }
    assert!(end_backends(&name).await > 0);
    until_success(
        &app,
        common::CREATE,
        json!({ "input": { "phoneNumber": "+56945000502" } }),
    )
    .await;
    for (protocol, socket) in &mut sockets {
        let message: Value = serde_json::from_str(&next_text(socket).await).expect("JSON");
        let payload = &message["payload"];
        if let Some(errors) = payload.get("errors") {
            // The replay met a dead connection: a clean error ends this subscription;
            // subscribing again from the same cursor still delivers the event.
            assert_eq!(
                code(&errors[0]),
                "SERVICE_UNAVAILABLE",
                "{protocol}: {message}"
            );
            let text = message.to_string().to_lowercase();
            for leak in LEAKS {
                assert!(!text.contains(leak), "{leak:?} leaked: {message}");
            }
            *socket = subscribed(&app, protocol, &query).await;
            let again: Value = serde_json::from_str(&next_text(socket).await).expect("JSON");
            assert_eq!(
                again["payload"]["data"]["contactEvents"]["contact"]["phoneNumber"], "+56945000502",
                "{protocol}: {again}"
            );
            continue;
        }
        assert_eq!(
            payload["data"]["contactEvents"]["contact"]["phoneNumber"], "+56945000502",
            "{protocol}: {message}"
        );
    }
}

// ---- The plain path and the rules: credentials and transports ----

/// One operation over `transport` ("post", "get" or a WebSocket protocol) with `credential`:
/// the answer as sent over HTTP (status and body), or the first message of the operation.
async fn run_as(
    app: &TestApp,
    transport: &str,
    credential: common::credentials::Credential,
    query: &str,
    variables: &Value,
) -> String {
    let request = match transport {
        "post" => app
            .client
            .post(app.url("/graphql"))
            .json(&json!({ "query": query, "variables": variables })),
        "get" => app.client.get(app.url("/graphql")).query(&[
            ("query", query.to_owned()),
            ("variables", variables.to_string()),
        ]),
        protocol => {
            let (mut socket, reply) = raw_ws::init(app, protocol, credential.payload()).await;
            if reply["type"] != "connection_ack" {
                return format!("refused {reply}");
            }
            let kind = if protocol == "graphql-ws" {
                "start"
            } else {
                "subscribe"
            };
            let payload = json!({ "query": query, "variables": variables });
            raw_ws::send(
                &mut socket,
                json!({ "id": "1", "type": kind, "payload": payload }),
            )
            .await;
            return raw_ws::receive(&mut socket).await.to_string();
        }
    };
    let request = match credential.header() {
        Some((name, value)) => request.header(name, value),
        None => request,
    };
    let response = request.send().await.expect("request");
    let status = response.status();
    format!(
        "{} {}",
        status.as_u16(),
        response.text().await.expect("body")
    )
}

#[tokio::test]
async fn every_credential_and_transport_gets_the_same_answer_on_both_paths() {
    use common::credentials::{Credential, secured};
    let app = secured(|state| state).await;
    let create = run_as(
        &app,
        "post",
        Credential::WriteKey,
        common::CREATE,
        &json!({ "input": { "phoneNumber": "+56945000601" } }),
    )
    .await;
    assert!(create.starts_with("200 "), "{create}");
    let created: Value = serde_json::from_str(&create[4..]).expect("JSON");
    let id = created["data"]["createContact"]["contact"]["id"].clone();
    let selection = "id phoneNumber metadata blocked";
    let read = |s: &str| format!("{{ contacts(first: 5) {{ nodes {{ {s} }} }} }}");
    // Each credential marks the contact with its own key, so a refused write would show.
    let write = |s: &str| {
        format!(
            "mutation($id: ID!, $set: Metadata!) {{ patchContactMetadata(id: $id, \
             set: $set) {{ contact {{ {s} }} }} }}"
        )
    };
    let transports = ["post", "get", "graphql-transport-ws", "graphql-ws"];
    for credential in Credential::ALL {
        let vars = json!({ "id": id, "set": { format!("{credential:?}"): "wrote" } });
        for transport in transports {
            for document in [read, write] {
                let plain = run_as(&app, transport, credential, &document(selection), &vars).await;
                let included = format!("{selection} id @include(if: true)");
                let fallback =
                    run_as(&app, transport, credential, &document(&included), &vars).await;
                assert_eq!(plain, fallback, "{credential:?} over {transport}");
                let anonymous = matches!(
                    credential,
                    Credential::Nothing
                        | Credential::WrongKey
                        | Credential::ExpiredJwt
                        | Credential::ForgedJwt
                );
                if anonymous {
                    assert!(!plain.contains("+56945000601"), "{credential:?}: {plain}");
                }
            }
        }
    }
    // Only the credentials that may write did, over a transport that writes.
    let answer = run_as(
        &app,
        "post",
        Credential::ReadKey,
        "{ contacts(first: 1) { nodes { metadata } } }",
        &json!({}),
    )
    .await;
    let body: Value = serde_json::from_str(&answer[4..]).expect("JSON");
    let metadata = &body["data"]["contacts"]["nodes"][0]["metadata"];
    let writers: Vec<&String> = metadata.as_object().expect("metadata").keys().collect();
    assert_eq!(writers, ["WriteJwt", "WriteKey"], "{metadata}");
}

/// A client that gives up on a write while its statement waits for a lock drops the request
/// mid-transaction: the connection must come back to the pool rolled back, not mid-transaction
/// (nothing pings it before its next use any more, only when it comes back).
#[tokio::test]
async fn a_write_abandoned_mid_transaction_leaves_no_transaction_for_the_next_request() {
    let Some((app, name)) = named_app("").await else {
        return;
    };
    app.create(json!({ "phoneNumber": "+56945000701" })).await;
    let lock = lock_contacts(&app, &name).await;
    let abandoned = tokio::spawn(
        app.client
            .post(app.url("/graphql"))
            .json(&json!({ "query": RECORD, "variables": { "p": "+56945000701" } }))
            .send(),
    );
    let pids = waiting_on_a_lock(&name).await;
    assert_eq!(pids.len(), 1, "the write never waited for the lock");
    abandoned.abort();
    assert!(abandoned.await.is_err_and(|err| err.is_cancelled()));
    lock.rollback().await.expect("rollback");
    // Writes and reads right after, on whatever connections the pool hands out: each its own
    // transaction, committed once.
    for i in 0..8 {
        let (status, body) = app
            .post(
                common::CREATE,
                json!({ "input": { "phoneNumber": format!("+5694500071{i}") } }),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert!(body.get("errors").is_none(), "{body}");
        let (status, body) = app.post(RECORD, json!({ "p": "+56945000701" })).await;
        assert_eq!(status, 200, "{body}");
    }
    let mut open = 1;
    for _ in 0..250 {
        open = open_transactions(&name).await;
        if open == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(open, 0, "a session stayed inside a transaction");
    let mut expected: Vec<String> = (0..8).map(|i| format!("+5694500071{i}")).collect();
    expected.insert(0, "+56945000701".to_owned());
    expected.sort();
    assert_eq!(phones(&app).await, expected);
}

/// SQLite in memory: one connection does everything, never pinged before use now. A burst of
/// reads and writes on it, then both paths answer alike and the data is all there.
#[tokio::test]
async fn an_in_memory_sqlite_database_serves_bursts_and_answers_alike() {
    let dir = tempfile::tempdir().expect("temp dir");
    let app = TestApp::start_on("sqlite::memory:", dir).await;
    let writes = (0..20).map(|i| {
        app.post(
            common::CREATE,
            json!({ "input": { "phoneNumber": format!("+569450008{i:02}"),
                               "metadata": { "n": format!("{i}") } } }),
        )
    });
    let reads = (0..20).map(|_| app.post("{ contactStats { total } }", json!({})));
    let (writes, reads) = futures_util::future::join(
        futures_util::future::join_all(writes),
        futures_util::future::join_all(reads),
    )
    .await;
    for (status, body) in writes.iter().chain(&reads) {
        assert_eq!(*status, 200, "{body}");
        assert!(body.get("errors").is_none(), "{body}");
    }
    for (selection, repeated) in SELECTIONS {
        let [plain, included, _] = spellings(selection, repeated);
        let page = |s: &str| format!("{{ contacts(first: 30) {{ nodes {{ {s} }} }} }}");
        let answer = text(&app, &page(&plain), &json!({})).await;
        assert_eq!(answer, text(&app, &page(&included), &json!({})).await);
    }
    assert_eq!(phones(&app).await.len(), 20);
}

/// `Contact` is now a wrapper type over the `#[Object]` of its fields: the schema must still
/// show it as the object implementing `Node`, with the same fields.
#[tokio::test]
async fn introspection_still_shows_contact_as_a_node() {
    let app = TestApp::start().await;
    let data = app
        .data(
            "{ contact: __type(name: \"Contact\") { kind name interfaces { name } fields { name } } \
               node: __type(name: \"Node\") { kind possibleTypes { name } } }",
            json!({}),
        )
        .await;
    assert_eq!(data["contact"]["kind"], "OBJECT");
    assert_eq!(data["contact"]["interfaces"], json!([{ "name": "Node" }]));
    assert_eq!(
        data["node"]["possibleTypes"],
        json!([{ "name": "Contact" }])
    );
    let fields: Vec<&str> = data["contact"]["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .filter_map(|field| field["name"].as_str())
        .collect();
    for plain in SELECTIONS[5]
        .0
        .split_whitespace()
        .filter(|name| *name != "__typename")
    {
        assert!(fields.contains(&plain), "{plain} missing: {fields:?}");
    }
}

/// `__typename` under `@skip(if: true)` is left out on both paths (a directive sends the
/// selection down async-graphql's path, which must honour it there too).
#[tokio::test]
async fn a_skipped_typename_is_left_out() {
    let app = TestApp::start().await;
    app.create(json!({ "phoneNumber": "+56945000901" })).await;
    let data = app
        .data(
            "{ contacts(first: 1) { nodes { id __typename @skip(if: true) t: __typename @include(if: false) } } }",
            json!({}),
        )
        .await;
    let node = &data["contacts"]["nodes"][0];
    assert!(
        node.get("__typename").is_none() && node.get("t").is_none(),
        "{node}"
    );
}

/// A WhatsApp webhook delivery on connections ended while idle: 503 (Meta retries it) until
/// recorded, never a 200 for a delivery not recorded, and recorded once.
#[tokio::test]
async fn a_webhook_delivery_on_ended_connections_is_retried_and_recorded_once() {
    use common::webhook::{SECRET, fixture};
    if !common::on_postgres() {
        eprintln!("SQLite is embedded: no server to end connections");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let name = format!("atk5_{}", uuid::Uuid::now_v7().simple());
    let url = format!(
        "{}&application_name={name}",
        common::fresh_database_url(&dir).await
    );
    let clock = contacts_server::contacts::clock::ManualClock::new(at(T0));
    let addr = common::serve_configured(&url, clock, Duration::from_secs(30), |state| {
        state.with_whatsapp(SECRET, None)
    })
    .await;
    let client = reqwest::Client::new();
    let body = fixture("text_message.json");
    let signed =
        contacts_server::http::whatsapp::signature::sign(SECRET.as_bytes(), body.as_bytes());
    let deliver = || {
        client
            .post(format!("http://{addr}/webhooks/whatsapp"))
            .header("content-type", "application/json")
            .header("x-hub-signature-256", signed.clone())
            .body(body.clone())
            .send()
    };
    let count = || async {
        let query = json!({ "query": "{ contacts { totalCount } }" });
        let response = client
            .post(format!("http://{addr}/graphql"))
            .json(&query)
            .send()
            .await
            .expect("request");
        let answer: Value = response.json().await.expect("JSON");
        answer["data"]["contacts"]["totalCount"].clone()
    };
    // Connections used moments ago, then ended: handed out without a ping.
    assert_eq!(count().await, 0);
    assert!(end_backends(&name).await > 0);
    let mut failures = 0;
    loop {
        let response = deliver().await.expect("delivery");
        let status = response.status();
        let text = response.text().await.expect("body").to_lowercase();
        if status == 200 {
            break;
        }
        assert_eq!(status, 503, "{text}");
        for leak in LEAKS {
            assert!(!text.contains(leak), "{leak:?} leaked: {text}");
        }
        failures += 1;
        assert!(failures <= 20, "{failures} failures in a row: {text}");
    }
    eprintln!("{failures} deliveries answered 503 before one was recorded");
    // Meta delivers again after a timeout of its own: still one contact.
    assert_eq!(deliver().await.expect("delivery").status(), 200);
    let mut total = count().await;
    for _ in 0..20 {
        if total.is_number() {
            break;
        }
        total = count().await;
    }
    assert_eq!(total, 1);
}
