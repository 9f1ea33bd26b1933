//! An outsider's attacks on the server's memory bound and on the command-line tools beside a
//! running server (the SQLite soft heap limit, the import lifting it), each kept as a test of
//! what it found. Runs on SQLite, and on PostgreSQL with TEST_DATABASE_URL.

mod common;

use common::{TestApp, code, on_postgres};
use sea_orm::sqlx::{Connection, SqliteConnection};
use serde_json::{Value, json};

/// The command-line import writes the same SQLite file in transactions of 10,000 rows; a
/// server write waiting on it past `busy_timeout` got `database is locked`, answered as
/// `INTERNAL_SERVER_ERROR` (logged as an internal error) instead of the contention it is.
/// Here another connection holds the write lock the way an import's batch does.
#[tokio::test]
async fn a_write_waiting_on_another_process_past_busy_timeout_is_unavailable_not_internal() {
    if on_postgres() {
        return;
    }
    let app = TestApp::start().await;
    app.create(json!({ "phoneNumber": "+56912345678" })).await;
    let mut importer = SqliteConnection::connect(&app.database_url)
        .await
        .expect("second connection");
    sea_orm::sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut importer)
        .await
        .expect("write lock");

    // Reads go on beside the lock (WAL).
    let read = app.data("{ contactStats { total } }", json!({})).await;
    assert_eq!(read["contactStats"]["total"], 1);
    let response = app
        .client
        .post(app.url("/graphql"))
        .header("content-type", "application/json")
        .json(&json!({ "query": common::CREATE, "variables": {
            "input": { "phoneNumber": "+56987654321" } } }))
        .send()
        .await
        .expect("request");
    let status = response.status();
    let retry_after = response.headers().get("retry-after").cloned();
    let body: Value = response.json().await.expect("JSON body");
    sea_orm::sqlx::query("ROLLBACK")
        .execute(&mut importer)
        .await
        .expect("release");

    assert_eq!(code(&body["errors"][0]), "SERVICE_UNAVAILABLE", "{body}");
    assert_eq!(status, 503, "{body}");
    assert!(retry_after.is_some(), "no Retry-After: {body}");
    // Once the lock is gone the same write succeeds.
    app.create(json!({ "phoneNumber": "+56987654321" })).await;
}
