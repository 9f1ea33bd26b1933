//! Attacks on the PostgreSQL write path that takes the change log's lock inside the log insert
//! and creates a contact in one statement: the feed under mixed concurrent writes through two
//! instances, sessions holding the log's lock or a unique key, a log insert that fails after
//! the contact's or runs for ever inside the lock, bad and odd input, and every credential on
//! every transport. Each test runs on SQLite too (one instance, the write lock instead of the
//! advisory lock). Two of them reproduce bugs the attack found on PostgreSQL (an import
//! racing an insert of its number, a waiting create's `at`), fixed since.

mod common;

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::{Duration, Instant},
};

use common::{TestApp, code, credentials::Credential, feed, on_postgres};
use futures_util::StreamExt;
use serde_json::{Value, json};

const CREATE: &str =
    "mutation($input: CreateContactInput!) { createContact(input: $input) { contact { id } } }";
const UPSERT: &str = "mutation($input: CreateContactInput!) { upsertContact(input: $input) { created contact { id } } }";
const IMPORT: &str = "mutation($rows: [CreateContactInput!]!) { importContacts(contacts: $rows) { created updated failed { code message } } }";
const PATCH: &str = "mutation($id: ID!, $set: Metadata) { patchContactMetadata(id: $id, set: $set) { contact { id } } }";
const DELETE: &str = "mutation($id: ID!) { deleteContact(id: $id) { deletedContactId } }";
const INBOUND: &str = "mutation($input: RecordWhatsappInboundInput!) { recordWhatsappInbound(input: $input) { contact { id } } }";
/// What a change and a stored contact are compared on.
const FIELDS: &str = "id phoneNumber countryCode whatsappUserId parentWhatsappUserId whatsappUsername \
    whatsappProfileName metadata lastWhatsappMessageAt createdAt updatedAt";
const EVENTS: &str =
    "subscription($after: String) { contactEvents(after: $after) { cursor kind contactId } }";
/// A time before the test clock, for creates that take the transaction path.
const EARLIER: &str = "2026-11-24T11:00:00Z";

fn changes_query() -> String {
    format!(
        "query($after: String) {{ contactChanges(after: $after, first: 50) {{ nodes {{ cursor kind \
         contactId mergedContactId contact {{ {FIELDS} }} }} pageInfo {{ endCursor }} }} }}"
    )
}

/// "ok", the first error's code, or the HTTP status when the body is not GraphQL's.
fn outcome(status: reqwest::StatusCode, body: &Value) -> String {
    match body["errors"].as_array() {
        Some(errors) if !errors.is_empty() => code(&errors[0]).to_owned(),
        _ if status.is_success() && body["data"].is_object() => "ok".to_owned(),
        _ => format!("HTTP {status}: {body}"),
    }
}

/// Every stored contact, by id.
async fn stored(app: &TestApp) -> HashMap<String, Value> {
    let query = format!(
        "query($after: String) {{ contacts(first: 100, after: $after) {{ nodes {{ {FIELDS} }} \
         pageInfo {{ endCursor hasNextPage }} }} }}"
    );
    let mut all = HashMap::new();
    let mut after = Value::Null;
    loop {
        let data = app.data(&query, json!({ "after": after })).await;
        for node in data["contacts"]["nodes"].as_array().expect("nodes") {
            all.insert(node["id"].as_str().expect("id").to_owned(), node.clone());
        }
        if data["contacts"]["pageInfo"]["hasNextPage"] != true {
            return all;
        }
        after = data["contacts"]["pageInfo"]["endCursor"].clone();
    }
}

/// What one operation of a writer did: (operation, outcome, contact id when it succeeded).
type Done = Vec<(&'static str, String, Option<String>)>;

async fn run(app: &TestApp, done: &mut Done, op: &'static str, query: &str, vars: Value) -> Value {
    let (status, body) = app.post(query, vars).await;
    let result = outcome(status, &body);
    let id = body["data"]
        .as_object()
        .and_then(|data| data.values().next())
        .and_then(|payload| payload["contact"]["id"].as_str())
        .map(str::to_owned);
    let result = match (op, &body["data"]) {
        ("upsert" | "bsuid-upsert", data) if result == "ok" => {
            if data["upsertContact"]["created"] == true {
                "created".to_owned()
            } else {
                "updated".to_owned()
            }
        }
        ("import", data) if result == "ok" => {
            let import = &data["importContacts"];
            match (&import["created"], &import["updated"]) {
                (c, _) if *c == 1 => "created".to_owned(),
                (_, u) if *u == 1 => "updated".to_owned(),
                _ => format!("import {import}"),
            }
        }
        _ => result,
    };
    done.push((op, result, id));
    body
}

/// Writer `w`'s bid for round `i`'s shared number: a create or an upsert, with a time (the
/// transaction path) or without.
async fn race(app: &TestApp, done: &mut Done, w: usize, i: usize) {
    let shared =
        json!({ "phoneNumber": format!("+5693{i:07}"), "metadata": { "by": w.to_string() } });
    let (op, query, vars) = match w % 4 {
        0 => ("race", CREATE, json!({ "input": shared })),
        1 => {
            let mut timed = shared;
            timed["lastWhatsappMessageAt"] = json!(EARLIER);
            ("race", CREATE, json!({ "input": timed }))
        }
        2 => ("upsert", UPSERT, json!({ "input": shared })),
        _ => {
            let mut timed = shared;
            timed["lastWhatsappMessageAt"] = json!(EARLIER);
            ("import", IMPORT, json!({ "rows": [timed] }))
        }
    };
    run(app, done, op, query, vars).await;
}

/// One writer: own creates on both paths, imports, patches and deletes, races with the other
/// writers on shared numbers and BSUIDs (creates and upserts, with a time and without), and
/// merges.
async fn writer(app: Arc<TestApp>, w: usize, rounds: usize) -> Done {
    let mut done = Done::new();
    for i in 0..rounds {
        if w % 4 >= 2 {
            // Upserts and imports first, so they sometimes win the race.
            race(&app, &mut done, w, i).await;
        }
        let own =
            json!({ "phoneNumber": format!("+5692{w}{i:06}"), "metadata": { "w": w.to_string() } });
        let fast = run(&app, &mut done, "create", CREATE, json!({ "input": own })).await;
        let timed =
            json!({ "phoneNumber": format!("+5694{w}{i:06}"), "lastWhatsappMessageAt": EARLIER });
        let slow = run(&app, &mut done, "create", CREATE, json!({ "input": timed })).await;
        if w % 4 < 2 {
            race(&app, &mut done, w, i).await;
        }
        let bsuid = json!({ "whatsappUserId": format!("CL.race{i}") });
        match w % 3 {
            0 => run(&app, &mut done, "bsuid", CREATE, json!({ "input": bsuid })).await,
            1 => {
                run(
                    &app,
                    &mut done,
                    "bsuid-upsert",
                    UPSERT,
                    json!({ "input": bsuid }),
                )
                .await
            }
            _ => {
                let mut timed = bsuid.clone();
                timed["lastWhatsappMessageAt"] = json!(EARLIER);
                run(&app, &mut done, "bsuid", CREATE, json!({ "input": timed })).await
            }
        };
        if w % 4 == 3 {
            let rows = json!([{ "phoneNumber": format!("+5696{w}{i:06}") }]);
            run(&app, &mut done, "import", IMPORT, json!({ "rows": rows })).await;
        }
        if let Some(id) = fast["data"]["createContact"]["contact"]["id"].as_str() {
            let vars = json!({ "id": id, "set": { "n": i.to_string() } });
            run(&app, &mut done, "patch", PATCH, vars).await;
        }
        if let Some(id) = slow["data"]["createContact"]["contact"]["id"].as_str()
            && i % 3 == 0
        {
            run(&app, &mut done, "delete", DELETE, json!({ "id": id })).await;
        }
        let (phone, user) = (format!("+5695{w}{i:06}"), format!("CL.merge{w}x{i}"));
        let input = json!({ "input": { "phoneNumber": phone } });
        run(&app, &mut done, "create", CREATE, input).await;
        let input = json!({ "input": { "whatsappUserId": user } });
        run(&app, &mut done, "create", CREATE, input).await;
        let input = json!({ "input": { "phoneNumber": phone, "whatsappUserId": user } });
        run(&app, &mut done, "merge", INBOUND, input).await;
    }
    done
}

/// Collects `contactEvents(after: cursor)` until it holds as many events as `total` says.
async fn listen(
    app: Arc<TestApp>,
    cursor: Value,
    total: tokio::sync::oneshot::Receiver<usize>,
) -> Vec<Value> {
    let mut subscription = common::subscribe(&app, EVENTS, json!({ "after": cursor })).await;
    let mut events = Vec::new();
    let mut target = None;
    tokio::pin!(total);
    loop {
        if target.is_some_and(|n| events.len() >= n) {
            return events;
        }
        tokio::select! {
            n = &mut total, if target.is_none() => target = Some(n.expect("total")),
            next = tokio::time::timeout(Duration::from_secs(10), subscription.next()) => {
                let message = next.expect("an event within 10 s").expect("open").expect("message");
                assert!(message.get("errors").is_none(), "subscription: {message}");
                events.push(message["data"]["contactEvents"].clone());
            }
        }
    }
}

fn count(done: &Done, ops: &[&str], result: &str) -> usize {
    done.iter()
        .filter(|(op, got, _)| ops.contains(op) && got == result)
        .count()
}

/// Mixed writes from eight writers (on PostgreSQL through two instances on one database,
/// every create without a time taking the one-statement path): every write answers `ok`, or
/// `CONFLICT` where two writers raced for one number or BSUID; a follower of
/// `contactChanges` and a `contactEvents(after:)` subscription both see the log exactly, in
/// strictly increasing positions; the log holds one change per successful write, one
/// creation per raced key, and each contact's last snapshot is the contact as stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mixed_concurrent_writes_on_two_instances_keep_the_feed_exact() {
    let first = Arc::new(TestApp::start().await);
    let second = first.other_instance_on_postgres().await;
    // `ATTACK_NIGHT_ROUNDS` lengthens the run.
    let rounds = std::env::var("ATTACK_NIGHT_ROUNDS")
        .ok()
        .and_then(|rounds| rounds.parse().ok())
        .unwrap_or(10);
    let workers = 8;
    let start =
        first.data(&changes_query(), json!({})).await["contactChanges"]["pageInfo"]["endCursor"]
            .clone();
    let finished = Arc::new(tokio::sync::Notify::new());
    let follower = tokio::spawn(feed::follow(
        second.clone(),
        changes_query(),
        start.clone(),
        finished.clone(),
    ));
    let (total, total_rx) = tokio::sync::oneshot::channel();
    let listener = tokio::spawn(listen(first.clone(), start.clone(), total_rx));
    let began = Instant::now();
    let tasks: Vec<_> = (0..workers)
        .map(|w| {
            let app = if w % 2 == 0 { &first } else { &second };
            tokio::spawn(writer(app.clone(), w, rounds))
        })
        .collect();
    let mut done = Done::new();
    for task in tasks {
        done.extend(task.await.expect("writer"));
    }
    let elapsed = began.elapsed();
    finished.notify_one();
    let seen = follower.await.expect("follower");
    let log = feed::read_all(&first, &changes_query(), start).await;
    let mut tally: HashMap<String, usize> = HashMap::new();
    for (op, got, _) in &done {
        *tally.entry(format!("{op} {got}")).or_default() += 1;
    }
    eprintln!(
        "{} writes in {elapsed:?}, {} changes: {tally:?}",
        done.len(),
        log.len()
    );

    // Exactly the log, in strictly increasing positions, to the follower (and the
    // subscriber, below).
    let positions: Vec<i64> = log
        .iter()
        .map(|node| feed::position(&node["cursor"]))
        .collect();
    assert!(positions.windows(2).all(|pair| pair[0] < pair[1]));
    let followed: Vec<i64> = seen
        .iter()
        .map(|node| feed::position(&node["cursor"]))
        .collect();
    assert_eq!(
        followed, positions,
        "the follower's sequence differs from the log"
    );
    total.send(log.len()).expect("listener");
    let events = listener.await.expect("listener");
    // Only a race may lose, and only with CONFLICT.
    let wrong: Vec<_> = done
        .iter()
        .filter(|(op, got, _)| {
            let raced = matches!(*op, "race" | "bsuid") && got == "CONFLICT";
            !(raced || matches!(got.as_str(), "ok" | "created" | "updated"))
        })
        .collect();
    assert!(wrong.is_empty(), "unexpected answers: {wrong:?}");

    let heard: Vec<i64> = events
        .iter()
        .map(|event| feed::position(&event["cursor"]))
        .collect();
    assert_eq!(
        heard, positions,
        "contactEvents(after:) differs from the log"
    );

    // One change per successful write.
    let kinds = |kind: &str| log.iter().filter(|node| node["kind"] == kind).count();
    let created = count(&done, &["create", "race", "bsuid"], "ok")
        + count(&done, &["upsert", "bsuid-upsert", "import"], "created");
    assert_eq!(kinds("CREATED"), created, "creations logged");
    let updated = count(&done, &["patch"], "ok")
        + count(&done, &["upsert", "bsuid-upsert", "import"], "updated");
    assert_eq!(kinds("UPDATED"), updated, "updates logged");
    assert_eq!(kinds("DELETED"), count(&done, &["delete"], "ok"));
    assert_eq!(kinds("MERGED"), workers * rounds);
    // One creation per raced number and BSUID.
    for i in 0..rounds {
        let phone = format!("+5693{i:07}");
        let user = format!("CL.race{i}");
        let creations = |field: &str, value: &str| {
            log.iter()
                .filter(|node| node["kind"] == "CREATED" && node["contact"][field] == value)
                .count()
        };
        assert_eq!(creations("phoneNumber", &phone), 1, "{phone}");
        assert_eq!(creations("whatsappUserId", &user), 1, "{user}");
    }

    // Every change but a delete carries its contact.
    let orphans: Vec<_> = log
        .iter()
        .filter(|node| node["kind"] != "DELETED" && node["contact"]["id"] != node["contactId"])
        .collect();
    assert!(
        orphans.is_empty(),
        "changes without their contact: {orphans:?}"
    );
    // Each contact's last change is the contact as stored; the deleted and absorbed are gone.
    let mut last: HashMap<String, Option<Value>> = HashMap::new();
    for node in &log {
        let id = node["contactId"].as_str().expect("id").to_owned();
        last.insert(
            id,
            node["contact"].as_object().map(|_| node["contact"].clone()),
        );
        if let Some(absorbed) = node["mergedContactId"].as_str() {
            last.insert(absorbed.to_owned(), None);
        }
    }
    let contacts = stored(&first).await;
    let alive: HashSet<&String> = last
        .iter()
        .filter(|(_, c)| c.is_some())
        .map(|(id, _)| id)
        .collect();
    assert_eq!(
        alive,
        contacts.keys().collect::<HashSet<_>>(),
        "contacts alive"
    );
    for (id, contact) in &contacts {
        assert_eq!(last[id].as_ref(), Some(contact), "contact {id}");
    }
}

/// The log's advisory lock: `LOCK_CLASS` ("CHLG") and the schema (see the change log's docs).
const LOCK: &str = "SELECT pg_advisory_xact_lock(1128811591, hashtext(current_schema()))";
/// The statement deadline of the lock tests; a lock wait ends at half of it on PostgreSQL.
const DEADLINE: Duration = Duration::from_millis(2_000);
/// SQLite's wait for another process's write lock in the lock tests.
const BUSY: Duration = Duration::from_millis(1_000);
/// Far longer than any wait the server may make here.
const PROMPTLY: Duration = Duration::from_secs(5);

/// The real app with a short statement deadline (and busy timeout on SQLite).
struct Short {
    base: String,
    clock: contacts_server::contacts::clock::ManualClock,
    url: String,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Short {
    async fn start() -> Self {
        use contacts_server::{
            contacts::{ContactService, clock::ManualClock},
            db::{Db, DbOptions},
            events,
            graphql::Limits,
            http::{self, AppState},
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let url = common::fresh_database_url(&dir).await;
        let mut options = DbOptions {
            url: url.clone(),
            // More than the writes that wait at once in these tests.
            max_connections: 8,
            acquire_timeout: Duration::from_secs(10),
            busy_timeout: BUSY,
            statement_timeout: Duration::ZERO,
            ping_after_idle: contacts_server::db::PING_AFTER_IDLE,
        };
        let migrator = Db::connect(&options).await.expect("database");
        migrator.migrate().await.expect("migrations");
        migrator.close().await;
        options.statement_timeout = DEADLINE;
        let db = Db::connect(&options).await.expect("database");
        let events = events::start(&db, &url).await.expect("event bus");
        let clock = ManualClock::new(common::at(common::T0));
        let service = ContactService::new(db, Arc::new(clock.clone()), events);
        let app = http::app(
            AppState::new(service, Limits::default()),
            Duration::from_secs(30),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            base: format!("http://{addr}"),
            clock,
            url,
            client: reqwest::Client::new(),
            _dir: dir,
        }
    }

    /// POSTs a request: the status, whether `Retry-After` was set, the body, the time taken.
    async fn post(&self, query: &str, variables: Value) -> (u16, bool, Value, Duration) {
        let started = Instant::now();
        let response = self
            .client
            .post(format!("{}/graphql", self.base))
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        let retry = response.headers().contains_key("retry-after");
        let body = response.json().await.expect("JSON");
        (status, retry, body, started.elapsed())
    }

    async fn create(&self, input: Value) -> (u16, bool, Value, Duration) {
        self.post(CREATE, json!({ "input": input })).await
    }

    /// Contacts stored and changes logged.
    async fn counts(&self) -> (i64, usize) {
        let (_, _, body, _) = self.post("{ contactStats { total } }", json!({})).await;
        let total = body["data"]["contactStats"]["total"]
            .as_i64()
            .expect("total");
        let mut changes = 0;
        let mut after = Value::Null;
        loop {
            let query = "query($after: String) { contactChanges(after: $after) { nodes { kind } \
                         pageInfo { endCursor } } }";
            let (_, _, body, _) = self.post(query, json!({ "after": after })).await;
            let nodes = body["data"]["contactChanges"]["nodes"]
                .as_array()
                .expect("nodes")
                .len();
            if nodes == 0 {
                return (total, changes);
            }
            changes += nodes;
            after = body["data"]["contactChanges"]["pageInfo"]["endCursor"].clone();
        }
    }

    /// A session of its own on the same database, in a transaction that ran `statements`:
    /// PostgreSQL's `BEGIN`, SQLite's `BEGIN IMMEDIATE` (the write lock).
    async fn hold(&self, statements: &[String]) -> sea_orm::DatabaseConnection {
        use sea_orm::ConnectionTrait;
        let mut options = sea_orm::ConnectOptions::new(self.url.clone());
        // Not logged: the held inserts carry phone numbers, which CI's search of the test
        // logs (scripts/check-logs) must not find.
        options.max_connections(1).sqlx_logging(false);
        let db = sea_orm::Database::connect(options).await.expect("connect");
        let begin = if on_postgres() {
            "BEGIN"
        } else {
            "BEGIN IMMEDIATE"
        };
        db.execute_unprepared(begin).await.expect("begin");
        for sql in statements {
            db.execute_unprepared(sql).await.expect("held statement");
        }
        db
    }
}

async fn end(session: sea_orm::DatabaseConnection, how: &str) {
    sea_orm::ConnectionTrait::execute_unprepared(&session, how)
        .await
        .expect("end");
    session.close().await.expect("close");
}

/// Asserts a write gave up as contention: 503 `SERVICE_UNAVAILABLE` with `Retry-After`, no
/// internals in the message, after the lock wait (PostgreSQL: `lock_timeout`, half the
/// deadline; SQLite: the busy timeout) and well before the request timeout.
fn assert_gave_up(what: &str, answer: &(u16, bool, Value, Duration)) {
    let (status, retry, body, took) = answer;
    let wait = if on_postgres() { DEADLINE / 2 } else { BUSY };
    assert_eq!(
        code(&body["errors"][0]),
        "SERVICE_UNAVAILABLE",
        "{what}: {body}"
    );
    assert_eq!(*status, 503, "{what}: {body}");
    assert!(retry, "{what}: no Retry-After");
    assert!(
        *took >= wait && *took < PROMPTLY,
        "{what}: gave up after {took:?}"
    );
    let message = body["errors"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_lowercase();
    for internal in [
        "select",
        "insert",
        "advisory",
        "contact_changes",
        "lock timeout",
        "sql",
    ] {
        assert!(!message.contains(internal), "{what}: {message}");
    }
    assert_eq!(body["data"], Value::Null, "{what}: {body}");
}

/// A session holding the change log's lock (SQLite: the write lock): a create on either path
/// and a patch give up, coded, in bounded time, and write nothing; reads go on meanwhile;
/// once the lock is released every write goes through.
#[tokio::test]
async fn writes_behind_a_held_change_log_lock_give_up_coded_and_write_nothing() {
    let app = Short::start().await;
    let (_, _, body, _) = app.create(json!({ "phoneNumber": "+56941000001" })).await;
    let id = body["data"]["createContact"]["contact"]["id"].clone();
    assert!(id.is_string(), "{body}");
    let held = if on_postgres() {
        vec![LOCK.to_owned()]
    } else {
        vec![]
    };
    let session = app.hold(&held).await;

    let fast = app.create(json!({ "phoneNumber": "+56941000002" })).await;
    assert_gave_up("create", &fast);
    let timed = json!({ "phoneNumber": "+56941000003", "lastWhatsappMessageAt": EARLIER });
    assert_gave_up("create with a time", &app.create(timed.clone()).await);
    let bsuid = json!({ "whatsappUserId": "CL.held1" });
    assert_gave_up("create by BSUID", &app.create(bsuid.clone()).await);
    let patch = json!({ "id": id, "set": { "k": "v" } });
    assert_gave_up("patch", &app.post(PATCH, patch.clone()).await);
    // Readers never wait for the log's lock.
    let (_, _, body, took) = app.post("{ contactStats { total } }", json!({})).await;
    assert_eq!(body["data"]["contactStats"]["total"], 1, "{body}");
    assert!(took < DEADLINE / 2, "a read waited {took:?}");

    end(session, "ROLLBACK").await;
    assert_eq!(
        app.counts().await,
        (1, 1),
        "a write that gave up left something"
    );
    for input in [json!({ "phoneNumber": "+56941000002" }), timed, bsuid] {
        let (_, _, body, took) = app.create(input).await;
        assert!(body.get("errors").is_none(), "{body}");
        assert!(took < PROMPTLY);
    }
    let (_, _, body, _) = app.post(PATCH, patch).await;
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(app.counts().await, (4, 5));
}

/// Returns once `n` sessions wait for a lock (PostgreSQL).
async fn waiting_for_locks(url: &str, n: i64) {
    sessions_where(url, "wait_event_type = 'Lock'", n).await;
}

/// Returns once `n` sessions of this database match `condition` in `pg_stat_activity`.
async fn sessions_where(url: &str, condition: &str, n: i64) {
    use sea_orm::{ConnectionTrait, Statement};
    let db = sea_orm::Database::connect(url).await.expect("connect");
    let query = format!(
        "SELECT count(*) AS n FROM pg_stat_activity WHERE {condition} \
         AND datname = current_database()"
    );
    for _ in 0..1_000 {
        let statement = Statement::from_string(db.get_database_backend(), query.clone());
        let row = db
            .query_one_raw(statement)
            .await
            .expect("query")
            .expect("row");
        if row.try_get::<i64>("", "n").expect("n") >= n {
            db.close().await.expect("close");
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("never {n} sessions where {condition}");
}

/// An insert into `contacts` that another session has not committed, as SQL.
fn uncommitted_contact(phone: Option<&str>, user_id: Option<&str>) -> String {
    let text = |value: Option<&str>| value.map_or("NULL".to_owned(), |v| format!("'{v}'"));
    let (id, now) = if on_postgres() {
        ("gen_random_uuid()", "now()")
    } else {
        ("randomblob(16)", "'2026-01-01T00:00:00Z'")
    };
    format!(
        "INSERT INTO contacts (id, phone_number, whatsapp_user_id, metadata, created_at, \
         updated_at) VALUES ({id}, {}, {}, '{{}}', {now}, {now})",
        text(phone),
        text(user_id)
    )
}

/// A session holding a number's and a BSUID's unique keys (an insert it has not committed):
/// creates of them, on either path, wait and give up coded, without holding the log's lock
/// meanwhile (PostgreSQL: other creates go through at once while they wait); after the
/// session commits they are `CONFLICT` naming the field, and nothing was logged for them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creates_waiting_on_a_held_unique_key_give_up_coded_without_stalling_others() {
    let app = Arc::new(Short::start().await);
    let session = app
        .hold(&[
            uncommitted_contact(Some("+56942000001"), None),
            uncommitted_contact(None, Some("CL.held2")),
        ])
        .await;
    let waiters = [
        json!({ "phoneNumber": "+56942000001" }),
        json!({ "phoneNumber": "+56942000001", "lastWhatsappMessageAt": EARLIER }),
        json!({ "whatsappUserId": "CL.held2" }),
        json!({ "whatsappUserId": "CL.held2", "lastWhatsappMessageAt": EARLIER }),
    ];
    let tasks: Vec<_> = waiters
        .iter()
        .map(|input| {
            let (app, input) = (app.clone(), input.clone());
            tokio::spawn(async move { app.create(input).await })
        })
        .collect();
    if on_postgres() {
        // While the four wait on the keys, others create on both paths at once.
        waiting_for_locks(&app.url, waiters.len() as i64).await;
        for input in [
            json!({ "phoneNumber": "+56942000002" }),
            json!({ "phoneNumber": "+56942000003", "lastWhatsappMessageAt": EARLIER }),
        ] {
            let (_, _, body, took) = app.create(input).await;
            assert!(body.get("errors").is_none(), "{body}");
            assert!(
                took < DEADLINE / 4,
                "a create behind the waiters took {took:?}"
            );
        }
    }
    for (input, task) in waiters.iter().zip(tasks) {
        assert_gave_up(&input.to_string(), &task.await.expect("create"));
    }
    end(session, "COMMIT").await;
    for (input, field) in waiters.iter().zip([
        "input.phoneNumber",
        "input.phoneNumber",
        "input.whatsappUserId",
        "input.whatsappUserId",
    ]) {
        let (status, _, body, _) = app.create(input.clone()).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(code(&body["errors"][0]), "CONFLICT", "{input}: {body}");
        assert_eq!(body["errors"][0]["extensions"]["field"], field, "{body}");
    }
    let made = if on_postgres() { 2 } else { 0 };
    assert_eq!(app.counts().await, (2 + made, made as usize));
}

/// Makes the database refuse (PostgreSQL: raise; SQLite: abort) logging a change whose
/// snapshot holds `marker`, after the contact itself was written.
fn refuse_logging(marker: &str) -> Vec<String> {
    if on_postgres() {
        vec![
            format!(
                "CREATE FUNCTION refuse_log() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
                 IF NEW.contact::text LIKE '%{marker}%' THEN RAISE EXCEPTION 'refused by the \
                 test'; END IF; RETURN NEW; END $$"
            ),
            "CREATE TRIGGER refuse_log BEFORE INSERT ON contact_changes FOR EACH ROW \
             EXECUTE FUNCTION refuse_log()"
                .to_owned(),
        ]
    } else {
        vec![format!(
            "CREATE TRIGGER refuse_log BEFORE INSERT ON contact_changes WHEN NEW.contact LIKE \
             '%{marker}%' BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
        )]
    }
}

/// A log insert that fails after the contact's insert (in the one statement of the fast
/// path, or the transaction): a generic coded error, and neither the contact nor any change
/// stays; a patch whose log insert fails leaves the contact as it was.
#[tokio::test]
async fn a_failed_log_insert_leaves_no_contact_and_no_change() {
    let app = Short::start().await;
    let (_, _, body, _) = app.create(json!({ "phoneNumber": "+56943000001" })).await;
    let id = body["data"]["createContact"]["contact"]["id"].clone();
    let session = app.hold(&refuse_logging("refuse-me")).await;
    end(session, "COMMIT").await;
    let marked = json!({ "refuse-me": "yes" });
    for input in [
        json!({ "phoneNumber": "+56943000002", "metadata": marked }),
        json!({ "phoneNumber": "+56943000003", "metadata": marked, "lastWhatsappMessageAt": EARLIER }),
        json!({ "whatsappUserId": "CL.refused1", "metadata": marked }),
    ] {
        let (status, _, body, _) = app.create(input.clone()).await;
        assert_eq!(
            code(&body["errors"][0]),
            "INTERNAL_SERVER_ERROR",
            "{input}: {body}"
        );
        assert!(status < 600, "{status}");
        let message = body["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .to_lowercase();
        for internal in ["refused", "contact_changes", "insert", "trigger", "sql"] {
            assert!(!message.contains(internal), "{message}");
        }
    }
    let (_, _, body, _) = app.post(PATCH, json!({ "id": id, "set": marked })).await;
    assert_eq!(code(&body["errors"][0]), "INTERNAL_SERVER_ERROR", "{body}");
    assert_eq!(app.counts().await, (1, 1), "a half-written create or patch");
    let query = "query($id: ID!) { contact(id: $id) { metadata } }";
    let (_, _, body, _) = app.post(query, json!({ "id": id })).await;
    assert_eq!(body["data"]["contact"]["metadata"], json!({}), "{body}");
    // The numbers were not taken by the failed creates.
    let (_, _, body, _) = app.create(json!({ "phoneNumber": "+56943000002" })).await;
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(app.counts().await, (2, 2));
}

/// Inputs `createContact` must refuse: each one's inputs, all with a field named.
fn refused_inputs() -> Vec<Value> {
    let keys: serde_json::Map<String, Value> =
        (0..51).map(|i| (format!("k{i}"), json!("v"))).collect();
    let phone = |phone: Value| json!({ "phoneNumber": phone });
    let with = |field: &str, value: Value| {
        let mut input = json!({ "phoneNumber": "+56944000001" });
        input[field] = value;
        input
    };
    vec![
        json!({}),
        phone(json!(null)),
        phone(json!("")),
        phone(json!("+")),
        phone(json!("+569\u{0}44000001")),
        phone(json!("+56944000001\u{7}")),
        phone(json!("9".repeat(20_000))),
        phone(json!("+0 000")),
        phone(json!("+5694400000١٢٣٤٥")),
        phone(json!("+56944000001 ext. 12345678901234567890")),
        with("countryCode", json!("AR")),
        with("countryCode", json!("XK")),
        with("countryCode", json!("cl\u{0}")),
        with("metadata", Value::Object(keys)),
        with("metadata", json!({ "k".repeat(41): "v" })),
        with("metadata", json!({ "": "v" })),
        with("metadata", json!({ "a\u{1}": "v" })),
        with("metadata", json!({ "a\u{85}": "v" })),
        with("metadata", json!({ "a": "v\u{0}" })),
        with("metadata", json!({ "a": 1 })),
        with("metadata", json!({ "a": { "b": "c" } })),
        with("metadata", json!({ "a": null })),
        with("metadata", json!(["a"])),
        with("metadata", json!("a")),
        with("lastWhatsappMessageAt", json!("2026-11-24T12:10:00Z")),
        with("lastWhatsappMessageAt", json!("2026-11-24T11:59:60Z")),
        with("lastWhatsappMessageAt", json!("2026-11-24 11:00")),
        with("lastWhatsappMessageAt", json!("+10000-01-01T00:00:00Z")),
        with("whatsappUserId", json!("cl.123")),
        with("whatsappUserId", json!("CL.")),
        with("whatsappUserId", json!("QQ.123")),
        with("whatsappUserId", json!(format!("CL.{}", "1".repeat(129)))),
        with("whatsappUserId", json!("CL.12\u{0}3")),
        with("whatsappUserId", json!("CL.12-3")),
        with("parentWhatsappUserId", json!("CL 123")),
        with("whatsappUsername", json!("   ")),
        with("whatsappUsername", json!("u".repeat(257))),
        with("whatsappProfileName", json!("")),
        with("unknownField", json!(1)),
        json!({ "whatsappUserId": null }),
        json!("+56944000001"),
        json!(null),
    ]
}

/// Bad input on both write paths (each input again with a time, which takes the
/// transaction): always a coded 200 answer, `BAD_USER_INPUT` naming a field under `input`
/// (or the document's validation code), and nothing stored or logged.
#[tokio::test]
async fn bad_create_input_is_refused_coded_on_both_paths_and_logs_nothing() {
    let app = TestApp::start().await;
    let mut wrong = Vec::new();
    let mut tried = 0;
    for input in refused_inputs() {
        let mut variants = vec![input.clone()];
        if input.is_object() && input.get("lastWhatsappMessageAt").is_none() {
            let mut timed = input.clone();
            timed["lastWhatsappMessageAt"] = json!(EARLIER);
            variants.push(timed);
        }
        for input in variants {
            tried += 1;
            let (status, body) = app.post(CREATE, json!({ "input": input })).await;
            let error = &body["errors"][0];
            let field = error["extensions"]["field"].as_str().unwrap_or_default();
            let ok = status == 200
                && match code(error) {
                    // A whole input of the wrong type is refused by async-graphql's
                    // coercion, which names no field.
                    "BAD_USER_INPUT" => field.starts_with("input") || !input.is_object(),
                    other => other == "GRAPHQL_VALIDATION_FAILED",
                };
            if !ok {
                wrong.push(format!(
                    "{:.120} -> {status} {body:.300}",
                    input.to_string()
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{} of {tried}: {wrong:#?}", wrong.len());
    let data = app
        .data(
            "{ contactStats { total } contactChanges { nodes { kind } } }",
            json!({}),
        )
        .await;
    assert_eq!(data["contactStats"]["total"], 0, "{data}");
    assert_eq!(data["contactChanges"]["nodes"], json!([]), "{data}");
}

/// Odd but valid input, created at an instant finer than microseconds on both paths: the
/// answer, the stored contact and the logged snapshot agree field for field (the fast path
/// logs the row it built, not the row read back).
#[tokio::test]
async fn odd_valid_creates_log_exactly_the_stored_contact_on_both_paths() {
    let app = TestApp::start().await;
    app.clock
        .set(common::at(common::T0) + chrono::TimeDelta::nanoseconds(123_456_789));
    let metadata = json!({
        "emoji": "😀👍🏽👩‍👩‍👧", "rtl": "مرحبا \u{202e}abc", "lines": "a\nb\tc\r\n",
        "separators": "\u{2028}\u{2029}\u{feff}", "quotes": "\"'\\/<>&", "combining": "e\u{301}",
        "k\"e\\y": "x", "ключ": "значение", "long": "x".repeat(500), "empty": "",
        "nul-looking": "\\u0000", "json": "{\"a\":1}",
    });
    let inputs = [
        json!({ "phoneNumber": "+56 9 4500 0001", "metadata": metadata }),
        json!({ "phoneNumber": "+５６９４５０００００２", "countryCode": "CL" }),
        json!({ "phoneNumber": "945000003", "countryCode": "CL" }),
        json!({ "whatsappUserId": "CL.abcXYZ123", "parentWhatsappUserId": "CL.P1",
                "whatsappUsername": "  zoë  ", "whatsappProfileName": "Zoë 😀" }),
        json!({ "phoneNumber": "+1 202 555 0100", "whatsappUserId": "US.1", "metadata": {} }),
    ];
    let query = format!(
        "mutation($input: CreateContactInput!) {{ createContact(input: $input) {{ contact {{ {FIELDS} }} }} }}"
    );
    let mut answers = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        for timed in [false, true] {
            let mut input = input.clone();
            if timed {
                // Another identity for the transaction path's copy.
                if let Some(phone) = input["phoneNumber"].as_str() {
                    input["phoneNumber"] = json!(phone.replace('0', "7").replace('０', "７"));
                }
                if let Some(user) = input["whatsappUserId"].as_str() {
                    input["whatsappUserId"] = json!(format!("{user}T{i}"));
                }
                input["lastWhatsappMessageAt"] = json!("2026-11-24T11:00:00.000001Z");
            }
            let data = app.data(&query, json!({ "input": input })).await;
            answers.push(data["createContact"]["contact"].clone());
        }
    }
    let contacts = stored(&app).await;
    let log = feed::read_all(&app, &changes_query(), Value::Null).await;
    assert_eq!(log.len(), answers.len());
    for (node, answer) in log.iter().zip(&answers) {
        assert_eq!(node["kind"], "CREATED");
        assert_eq!(&node["contact"], answer, "logged snapshot vs the answer");
        let id = answer["id"].as_str().expect("id");
        assert_eq!(&contacts[id], answer, "stored contact vs the answer");
    }
    assert_eq!(answers[0]["metadata"], metadata);
    assert_eq!(answers[0]["createdAt"], "2026-11-24T12:00:00.123456Z");
}

/// Runs `query` over `transport` ("POST", "GET", or a WebSocket protocol) with `credential`:
/// "status code" over HTTP, "ws code" over a socket, "refused" at `connection_init`.
async fn attempt(
    app: &TestApp,
    transport: &str,
    credential: Credential,
    query: &str,
    vars: &Value,
) -> String {
    use common::raw_ws::{init, receive, send};
    let request = match transport {
        "POST" => app
            .client
            .post(app.url("/graphql"))
            .json(&json!({ "query": query, "variables": vars })),
        "GET" => app
            .client
            .get(app.url("/graphql"))
            .query(&[("query", query.to_owned()), ("variables", vars.to_string())]),
        protocol => {
            let (mut socket, reply) = init(app, protocol, credential.payload()).await;
            if reply["type"] != "connection_ack" {
                return "refused".into();
            }
            let kind = if protocol == "graphql-ws" {
                "start"
            } else {
                "subscribe"
            };
            let payload = json!({ "query": query, "variables": vars });
            send(
                &mut socket,
                json!({ "id": "1", "type": kind, "payload": payload }),
            )
            .await;
            let message = receive(&mut socket).await;
            let body = match message["type"].as_str() {
                Some("next" | "data") => message["payload"].clone(),
                Some("error") => {
                    json!({ "errors": [message["payload"].as_array().map_or(&message["payload"], |a| &a[0])] })
                }
                _ => json!({ "errors": [{ "message": message.to_string() }] }),
            };
            return format!("ws {}", outcome(reqwest::StatusCode::OK, &body));
        }
    };
    let request = match credential.header() {
        Some((name, value)) => request.header(name, value),
        None => request,
    };
    let response = request.send().await.expect("request");
    let status = response.status();
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(json!({ "text": text }));
    format!(
        "{} {}",
        status.as_u16(),
        outcome(status, &body).split(':').next().unwrap_or_default()
    )
}

/// `createContact`, on both write paths, with every credential over POST, GET and both
/// WebSocket protocols: only a write key or write JWT over POST or a socket creates, and the
/// log holds exactly those creations.
#[tokio::test]
async fn only_write_credentials_over_post_or_websocket_create_and_log() {
    use Credential::*;
    let app = common::credentials::secured(|state| state).await;
    let mut wrong = Vec::new();
    let mut created = HashSet::new();
    let mut n = 0;
    for transport in ["POST", "GET", "graphql-transport-ws", "graphql-ws"] {
        for credential in Credential::ALL {
            for timed in [false, true] {
                n += 1;
                let phone = format!("+569460{n:05}");
                let mut input = json!({ "phoneNumber": phone });
                if timed {
                    input["lastWhatsappMessageAt"] = json!(EARLIER);
                }
                let vars = json!({ "input": input });
                let got = attempt(&app, transport, credential, CREATE, &vars).await;
                let valid = matches!(credential, ReadKey | WriteKey | ReadJwt | WriteJwt);
                let writes = matches!(credential, WriteKey | WriteJwt);
                let want = match transport {
                    "POST" | "GET" if !valid => "401 UNAUTHENTICATED",
                    _ if !valid => "refused",
                    "POST" if writes => "200 ok",
                    "GET" if writes => "405 METHOD_NOT_ALLOWED",
                    "POST" | "GET" => "403 FORBIDDEN",
                    _ if writes => "ws ok",
                    _ => "ws FORBIDDEN",
                };
                if got != want {
                    wrong.push(format!(
                        "{transport} {credential:?} {timed}: {got}, wanted {want}"
                    ));
                }
                if got.ends_with(" ok") {
                    created.insert(phone);
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    assert_eq!(created.len(), 12);
    let query = "{ contactStats { total } contactChanges(first: 100) { nodes { kind contact { phoneNumber } } } }";
    let response = app
        .client
        .post(app.url("/graphql"))
        .header("x-api-key", common::credentials::READ_KEY)
        .json(&json!({ "query": query }))
        .send()
        .await
        .expect("request");
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["data"]["contactStats"]["total"], 12, "{body}");
    let logged: HashSet<String> = body["data"]["contactChanges"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .filter(|node| node["kind"] == "CREATED")
        .filter_map(|node| node["contact"]["phoneNumber"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(logged, created, "the log's creations");
    assert_eq!(
        body["data"]["contactChanges"]["nodes"]
            .as_array()
            .map(Vec::len),
        Some(12)
    );
}

/// An import that read a number as absent, while another transaction commits that number
/// before the import writes it: the import updates that contact and logs the update (it
/// used to upsert on the number, overwriting the contact while logging a `CREATED` for the
/// id it had generated, which no contact has). Here made deterministic with another
/// session's insert of the number, committed while the import waits on it; SQLite's writes
/// cannot interleave, so there the number is simply stored first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_racing_an_insert_of_its_number_updates_and_logs_that_contact() {
    let app = Arc::new(Short::start().await);
    let phone = "+56947000001";
    let mut session = Some(app.hold(&[uncommitted_contact(Some(phone), None)]).await);
    if !on_postgres() {
        // SQLite's writes never interleave (a read made before another process's commit
        // cannot write after it): the number is simply there before the import.
        end(session.take().expect("session"), "COMMIT").await;
    }
    let rows = json!({ "rows": [{ "phoneNumber": phone, "metadata": { "from": "import" } }] });
    let import = {
        let app = app.clone();
        tokio::spawn(async move { app.post(IMPORT, rows).await })
    };
    if let Some(session) = session {
        // The import has read the number as absent and waits on the uncommitted key.
        waiting_for_locks(&app.url, 1).await;
        end(session, "COMMIT").await;
    }
    let (_, _, body, _) = import.await.expect("import");
    assert!(body.get("errors").is_none(), "{body}");

    let (_, _, listed, _) = app
        .post("{ contacts { nodes { id metadata } } }", json!({}))
        .await;
    let nodes = listed["data"]["contacts"]["nodes"]
        .as_array()
        .expect("nodes")
        .clone();
    assert_eq!(nodes.len(), 1, "{listed}");
    let stored_id = nodes[0]["id"].clone();
    assert_eq!(
        nodes[0]["metadata"],
        json!({ "from": "import" }),
        "the import wrote it"
    );
    let (_, _, log, _) = app
        .post(
            "{ contactChanges { nodes { kind contactId contact { id metadata } } } }",
            json!({}),
        )
        .await;
    let changes = &log["data"]["contactChanges"]["nodes"];
    let logged = &changes[0];
    assert_eq!(
        (
            changes.as_array().map(Vec::len),
            &logged["contactId"],
            &logged["contact"]["metadata"]
        ),
        (Some(1), &stored_id, &json!({ "from": "import" })),
        "the import's change should name the contact it wrote, {stored_id}: {log}; \
         the import answered {body}"
    );
    assert_eq!(body["data"]["importContacts"]["updated"], 1, "{body}");
}

/// Makes logging a change whose snapshot holds `slow-log` run for ever (PostgreSQL: a
/// minute's sleep, inside the log's lock; SQLite: an endless recursive query).
fn slow_logging() -> Vec<String> {
    common::endless_insert_trigger(
        "slow_log",
        "contact_changes",
        "NEW.contact::text LIKE '%slow-log%'",
        "NEW.contact LIKE '%slow-log%'",
    )
}

/// A create whose log insert never ends while it holds the log's lock: it is stopped at the
/// statement deadline (`QUERY_TIMEOUT`), a create queued behind it on PostgreSQL gives up at
/// the lock timeout (`SERVICE_UNAVAILABLE`) rather than waiting with it (on SQLite it waits
/// for the one writer, then goes through), neither leaves half a write, and the next create
/// goes through at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_insert_stuck_inside_the_lock_is_stopped_and_frees_it() {
    let app = Arc::new(Short::start().await);
    let session = app.hold(&slow_logging()).await;
    end(session, "COMMIT").await;
    let slow = {
        let app = app.clone();
        let input = json!({ "phoneNumber": "+56948000001", "metadata": { "slow-log": "1" } });
        tokio::spawn(async move { app.create(input).await })
    };
    if on_postgres() {
        sessions_where(&app.url, "wait_event = 'PgSleep'", 1).await;
    }
    let behind = app.create(json!({ "phoneNumber": "+56948000002" })).await;
    let (status, retry, body, took) = slow.await.expect("create");
    assert_eq!(code(&body["errors"][0]), "QUERY_TIMEOUT", "{body}");
    assert!(status < 500 && !retry, "{status} {body}");
    assert!(
        took >= DEADLINE && took < PROMPTLY,
        "stopped after {took:?}"
    );
    let made = if on_postgres() {
        assert_gave_up("create behind the stuck one", &behind);
        0
    } else {
        assert!(behind.2.get("errors").is_none(), "{:?}", behind.2);
        1
    };
    assert_eq!(app.counts().await, (made, made as usize));
    let (_, _, body, took) = app.create(json!({ "phoneNumber": "+56948000003" })).await;
    assert!(body.get("errors").is_none(), "{body}");
    assert!(took < DEADLINE / 2, "took {took:?}");
    assert_eq!(app.counts().await, (made + 1, made as usize + 1));
}

/// A create without a time that waits on a unique key (another session's uncommitted
/// insert of the number, rolled back) commits after a later create: its `at` must not go
/// back along the feed ("`at` is its commit time"). It did when the one-statement create
/// first read `at` before its statement; the log's lock now settles it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_that_waited_on_a_key_never_logs_an_at_before_an_earlier_change() {
    let app = Arc::new(Short::start().await);
    let phone = "+56949000001";
    let session = if on_postgres() {
        Some(app.hold(&[uncommitted_contact(Some(phone), None)]).await)
    } else {
        None
    };
    let waiting = {
        let app = app.clone();
        tokio::spawn(async move { app.create(json!({ "phoneNumber": phone })).await })
    };
    let first = match session {
        Some(session) => {
            waiting_for_locks(&app.url, 1).await;
            app.clock.advance(chrono::TimeDelta::minutes(1));
            let (_, _, body, _) = app.create(json!({ "phoneNumber": "+56949000002" })).await;
            assert!(body.get("errors").is_none(), "{body}");
            end(session, "ROLLBACK").await;
            waiting.await.expect("create")
        }
        None => {
            let first = waiting.await.expect("create");
            app.clock.advance(chrono::TimeDelta::minutes(1));
            let (_, _, body, _) = app.create(json!({ "phoneNumber": "+56949000002" })).await;
            assert!(body.get("errors").is_none(), "{body}");
            first
        }
    };
    assert!(first.2.get("errors").is_none(), "{:?}", first.2);
    let query = "{ contactChanges { nodes { at contact { phoneNumber } } } }";
    let (_, _, log, _) = app.post(query, json!({})).await;
    let nodes = log["data"]["contactChanges"]["nodes"]
        .as_array()
        .expect("nodes")
        .clone();
    assert_eq!(nodes.len(), 2, "{log}");
    let ats: Vec<&str> = nodes
        .iter()
        .map(|node| node["at"].as_str().expect("at"))
        .collect();
    assert!(
        ats[0] <= ats[1],
        "the later position logged the earlier at (not its commit time): {log}"
    );
}
