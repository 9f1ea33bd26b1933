//! PostgreSQL ends the server's pooled connections (a restart, a proxy's idle timeout): the
//! pool replaces them, and a request that meets one answers a clean 503. Its own file, so no
//! other test stops the server meanwhile (`tests/pg_outage.rs` does).

mod common;

use common::TestApp;
use serde_json::json;

/// Words that would mean driver or SQL internals leaked into a response.
const LEAKS: [&str; 5] = ["sqlx", "pool", "postgres", "io error", "os error"];

/// Ends every backend connected under `application_name`; returns how many there were.
async fn end_backends(server: &str, application_name: &str) -> usize {
    use sea_orm::{ConnectionTrait, Statement};
    let admin = sea_orm::Database::connect(server).await.expect("connect");
    let sql = "SELECT pg_terminate_backend(pid) AS ended FROM pg_stat_activity \
               WHERE application_name = $1";
    let rows = admin
        .query_all_raw(Statement::from_sql_and_values(
            admin.get_database_backend(),
            sql,
            [application_name.into()],
        ))
        .await
        .expect("terminate");
    admin.close().await.expect("close");
    rows.len()
}

/// A fresh database whose URL names its connections (`application_name`), so that a test can
/// end exactly its app's connections: the directory to keep, the URL and the name.
async fn named_database() -> (tempfile::TempDir, String, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let application_name = format!("pool_{}", uuid::Uuid::now_v7().simple());
    let url = format!(
        "{}&application_name={application_name}",
        common::fresh_database_url(&dir).await
    );
    (dir, url, application_name)
}

/// Connections the server ended while the pool held them (a restart, a proxy's idle timeout):
/// a connection used in the last moments is handed out without a ping (`src/db.rs`), so a
/// request may meet a dead one and answer 503 once per connection, never another error, and
/// the pool replaces them without a restart.
#[tokio::test]
async fn connections_ended_by_the_server_are_replaced() {
    if !common::on_postgres() {
        eprintln!("SQLite is embedded: no server to end connections");
        return;
    }
    let (dir, url, application_name) = named_database().await;
    let app = TestApp::start_on(&url, dir).await;
    for i in 0..5 {
        app.create(json!({ "phoneNumber": format!("+5691234560{i}") }))
            .await;
    }
    let server = std::env::var("TEST_DATABASE_URL").expect("PostgreSQL server");
    assert!(end_backends(&server, &application_name).await > 0);

    // Reads, then writes: every failure is a clean 503, and each kind succeeds again before
    // the pool (4 connections in tests) could have run out of dead connections five times.
    let operations = [
        ("{ contacts(first: 5) { nodes { id } } }", json!({})),
        (
            "mutation($p: String!) { recordWhatsappMessage(phoneNumber: $p) { contact { id } } }",
            json!({ "p": "+56912345600" }),
        ),
    ];
    for (query, variables) in operations {
        let mut failures = 0;
        loop {
            let (status, body) = app.post(query, variables.clone()).await;
            if status == 200 && body.get("errors").is_none() {
                break;
            }
            assert_eq!(status, 503, "{body}");
            assert_eq!(
                body["errors"][0]["extensions"]["code"],
                "SERVICE_UNAVAILABLE"
            );
            for leak in LEAKS {
                assert!(!body.to_string().contains(leak), "{leak:?} leaked: {body}");
            }
            failures += 1;
            assert!(failures <= 20, "{failures} failures in a row: {body}");
        }
        println!("{failures} answered 503 before a success: {query}");
    }
    let total = app.data("{ contactStats { total } }", json!({})).await;
    assert_eq!(total["contactStats"]["total"], 5);
}

/// `DATABASE_PING_AFTER_IDLE_MS=0` (for an idle timeout in front of the database shorter than
/// the default half second): every connection is pinged before use, so connections the server
/// ended cost no request at all.
#[tokio::test]
async fn with_a_ping_before_every_use_ended_connections_cost_no_request() {
    if !common::on_postgres() {
        eprintln!("SQLite is embedded: no server to end connections");
        return;
    }
    let (dir, url, application_name) = named_database().await;
    let mut options = common::database_options(&url, std::time::Duration::from_secs(30));
    options.ping_after_idle = std::time::Duration::ZERO;
    let app = TestApp::start_on_database(options, dir).await;
    app.create(json!({ "phoneNumber": "+56912345600" })).await;
    let server = std::env::var("TEST_DATABASE_URL").expect("PostgreSQL server");
    for _ in 0..3 {
        assert!(end_backends(&server, &application_name).await > 0);
        let read = app
            .data("{ contacts(first: 5) { nodes { id } } }", json!({}))
            .await;
        assert_eq!(read["contacts"]["nodes"].as_array().map(Vec::len), Some(1));
        let write =
            "mutation($p: String!) { recordWhatsappMessage(phoneNumber: $p) { contact { id } } }";
        app.data(write, json!({ "p": "+56912345600" })).await;
    }
}
