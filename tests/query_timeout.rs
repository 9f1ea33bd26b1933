//! The statement deadline: a statement running past it is stopped on both backends, answered
//! `QUERY_TIMEOUT` (a client error, no `Retry-After`), and its connection serves the next
//! request at once.

mod common;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use common::{CREATE, T0, at, code, on_postgres};
use contacts_server::{
    contacts::{ContactService, clock::ManualClock},
    db::{Db, DbOptions},
    events,
    graphql::Limits,
    http::{self, AppState},
};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// Long enough for every ordinary statement of these tests in a debug build.
const DEADLINE: Duration = Duration::from_millis(300);
/// SQLite's read test: sorting its rows takes longer than this, and a lookup far less.
const SHORT_DEADLINE: Duration = Duration::from_millis(20);
/// Far longer than the deadline, far shorter than the request timeout.
const PROMPTLY: Duration = Duration::from_secs(5);

struct App {
    base: String,
    url: String,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

/// The real app with a short statement deadline and a single read connection, so the next
/// read can only succeed if the stopped statement gave its connection back.
async fn start(deadline: Duration) -> App {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = common::fresh_database_url(&dir).await;
    let mut options = DbOptions {
        url: url.clone(),
        max_connections: 2,
        acquire_timeout: Duration::from_secs(10),
        busy_timeout: Duration::from_secs(5),
        statement_timeout: Duration::ZERO,
        ping_after_idle: contacts_server::db::PING_AFTER_IDLE,
    };
    // Migrated as the server does, on connections without a deadline.
    let migrator = Db::connect(&options).await.expect("database");
    migrator.migrate().await.expect("migrations");
    migrator.close().await;
    options.max_connections = 1;
    options.statement_timeout = deadline;
    let db = Db::connect(&options).await.expect("database");
    let events = events::start(&db, &url).await.expect("event bus");
    let clock = ManualClock::new(at(T0));
    let service = ContactService::new(db, Arc::new(clock), events);
    let app = http::app(
        AppState::new(service, Limits::default()),
        Duration::from_secs(30),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    App {
        base: format!("http://{addr}"),
        url,
        client: reqwest::Client::new(),
        _dir: dir,
    }
}

impl App {
    /// POSTs a request; returns the status, whether `Retry-After` was set, and the body.
    async fn post(&self, query: &str, variables: Value) -> (u16, bool, Value) {
        let response = self
            .client
            .post(format!("{}/graphql", self.base))
            .header("accept", "application/graphql-response+json")
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        let retry = response.headers().contains_key("retry-after");
        (status, retry, response.json().await.expect("JSON body"))
    }

    async fn sql(&self, statements: &[String]) {
        let db = sea_orm::Database::connect(&self.url)
            .await
            .expect("connect");
        for sql in statements {
            db.execute_unprepared(sql).await.expect(sql);
        }
        db.close().await.expect("close");
    }
}

/// Asserts `body` failed with `QUERY_TIMEOUT` as a client error, after the deadline and well
/// before the request timeout.
fn assert_stopped(started: Instant, deadline: Duration, answer: &(u16, bool, Value)) {
    let (status, retry, body) = answer;
    let took = started.elapsed();
    assert_eq!(code(&body["errors"][0]), "QUERY_TIMEOUT", "{body}");
    assert!(*status < 500, "a client error, not {status}: {body}");
    assert!(
        !retry,
        "no Retry-After for a query that would time out again"
    );
    assert!(
        took >= deadline,
        "stopped after {took:?}, before its deadline"
    );
    assert!(took < PROMPTLY, "stopped only after {took:?}");
}

/// Asserts `body` failed with `SERVICE_UNAVAILABLE` and `Retry-After` (retrying is right:
/// the lock will be released), before the statement deadline.
fn assert_contention(started: Instant, deadline: Duration, answer: &(u16, bool, Value)) {
    let (status, retry, body) = answer;
    let took = started.elapsed();
    assert_eq!(code(&body["errors"][0]), "SERVICE_UNAVAILABLE", "{body}");
    assert_eq!(*status, 503, "{body}");
    assert!(retry, "Retry-After: the lock will be released");
    assert!(
        took >= deadline / 2 && took < deadline,
        "stopped after {took:?}, not at the lock timeout"
    );
}

/// A trigger that makes inserting a contact with metadata `slow: "yes"` run for ever (SQLite:
/// an endless recursive query; PostgreSQL: a minute's sleep).
fn slow_insert_trigger() -> Vec<String> {
    common::endless_insert_trigger(
        "slow_insert",
        "contacts",
        "NEW.metadata ->> 'slow' = 'yes'",
        "json_extract(NEW.metadata, '$.slow') = 'yes'",
    )
}

#[tokio::test]
async fn a_write_past_its_deadline_is_stopped_and_the_writer_is_free_again() {
    let app = start(DEADLINE).await;
    app.sql(&slow_insert_trigger()).await;
    let slow = json!({ "input": { "phoneNumber": "+56911110001", "metadata": { "slow": "yes" } } });
    let started = Instant::now();
    let answer = app.post(CREATE, slow).await;
    assert_stopped(started, DEADLINE, &answer);
    assert_eq!(answer.2["data"]["createContact"], Value::Null);

    // SQLite has one writer connection: this only succeeds if the stopped insert released it.
    let started = Instant::now();
    let next = json!({ "input": { "phoneNumber": "+56911110002" } });
    let (_, _, body) = app.post(CREATE, next).await;
    assert!(body.get("errors").is_none(), "{body}");
    assert!(started.elapsed() < PROMPTLY);
    let (_, _, body) = app.post("{ contactStats { total } }", json!({})).await;
    assert_eq!(body["data"]["contactStats"]["total"], 1, "{body}");
}

/// SQLite: a read no index serves (the test drops the one it would use) over 300,000 rows,
/// stopped as `QUERY_TIMEOUT`. PostgreSQL: a read waiting on a lock another session holds,
/// which is contention, not a query asking too much: stopped at `lock_timeout` (half the
/// deadline) and answered `SERVICE_UNAVAILABLE` with `Retry-After` (the statement deadline on
/// PostgreSQL is shown by the write test).
#[tokio::test]
async fn a_read_past_its_deadline_is_stopped_and_its_connection_is_free_again() {
    let deadline = if on_postgres() {
        DEADLINE
    } else {
        SHORT_DEADLINE
    };
    let app = start(deadline).await;
    let (_, _, created) = app
        .post(
            CREATE,
            json!({ "input": { "phoneNumber": "+56911110003" } }),
        )
        .await;
    let id = created["data"]["createContact"]["contact"]["id"].clone();
    let query = "{ contacts(first: 1, orderBy: {field: CREATED_AT, direction: DESC}) \
                 { nodes { id } } }";
    let lock_holder = if on_postgres() {
        // One connection, so the ROLLBACK below runs in the session holding the lock.
        let mut options = sea_orm::ConnectOptions::new(app.url.clone());
        options.max_connections(1);
        let db = sea_orm::Database::connect(options).await.expect("connect");
        db.execute_unprepared("BEGIN; LOCK TABLE contacts IN ACCESS EXCLUSIVE MODE")
            .await
            .expect("lock");
        Some(db)
    } else {
        app.sql(&[
            "DROP INDEX idx_contacts_created_at_id".to_owned(),
            "INSERT INTO contacts (id, phone_number, metadata, created_at, updated_at) \
             WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r WHERE x < 300000) \
             SELECT randomblob(16), printf('+1555%07d', x), \
             '{}', printf('2026-01-01T00:00:00.%06dZ', x), '2026-01-01T00:00:00Z' FROM r"
                .to_owned(),
        ])
        .await;
        None
    };
    let started = Instant::now();
    let answer = app.post(query, json!({})).await;
    if on_postgres() {
        assert_contention(started, deadline, &answer);
    } else {
        assert_stopped(started, deadline, &answer);
    }

    if let Some(db) = lock_holder {
        db.execute_unprepared("ROLLBACK").await.expect("unlock");
        db.close().await.expect("close");
    }
    let started = Instant::now();
    let lookup = "query($id: ID!) { contact(id: $id) { id } }";
    let (_, _, body) = app.post(lookup, json!({ "id": id })).await;
    assert_eq!(body["data"]["contact"]["id"], id, "{body}");
    assert!(started.elapsed() < PROMPTLY);

    if !on_postgres() {
        // The same connection with `totalCount` alone reads no page (the page is the sort the
        // deadline stopped above); the count is the maintained total.
        let count = "{ contacts(first: 1, orderBy: {field: CREATED_AT, direction: DESC}) \
                     { totalCount } }";
        let (_, _, body) = app.post(count, json!({})).await;
        assert_eq!(body["data"]["contacts"]["totalCount"], 300_001, "{body}");
    }
}

/// The deadline counts from each statement's start: on one connection that has been busy for
/// several deadlines, statements that each take a fraction of it all finish (both backends).
/// On SQLite this fails if the clock were read from the connection's opening, or from its
/// checkout for a transaction of many statements.
#[tokio::test]
async fn a_connection_busy_for_longer_than_the_deadline_runs_each_short_statement() {
    let app = start(DEADLINE).await;
    let db = if on_postgres() {
        let mut options = sea_orm::ConnectOptions::new(app.url.clone());
        options
            .max_connections(1)
            .connect_lazy(true)
            .sqlx_logging(false);
        sea_orm::Database::connect(options).await.expect("connect")
    } else {
        let options = DbOptions {
            url: app.url.clone(),
            max_connections: 1,
            acquire_timeout: Duration::from_secs(10),
            busy_timeout: Duration::from_secs(5),
            statement_timeout: DEADLINE,
            ping_after_idle: contacts_server::db::PING_AFTER_IDLE,
        };
        Db::connect(&options)
            .await
            .expect("database")
            .read
            .pool()
            .clone()
    };
    // Enough virtual-machine steps to reach SQLite's progress handler many times.
    let counting = "WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r \
                    WHERE x < 20000) SELECT count(*) AS n FROM r";
    let txn = sea_orm::TransactionTrait::begin(&db).await.expect("begin");
    let started = Instant::now();
    let mut statements = 0;
    while started.elapsed() < 3 * DEADLINE {
        txn.execute_unprepared(counting)
            .await
            .unwrap_or_else(|err| panic!("statement {statements} stopped: {err}"));
        statements += 1;
    }
    txn.commit().await.expect("commit");
    assert!(statements > 3, "each statement took a deadline or more");
}
