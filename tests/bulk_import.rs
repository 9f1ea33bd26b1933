//! One bulk upsert engine for `importContacts` and `contacts-server import`: both report a row
//! equal to what is stored as unchanged (neither created nor updated), apply a number named
//! twice in order, and the command-line import leaves the planner statistics of the table.

mod common;

use std::process::Command;

use common::{TestApp, on_postgres, process::BIN};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

const IMPORT: &str = "mutation($rows: [CreateContactInput!]!) { \
    importContacts(contacts: $rows) { created updated unchanged failed { index code message } } }";

const BY_PHONE: &str =
    "query($p: String!) { contactByPhoneNumber(phoneNumber: $p) { metadata updatedAt } }";

fn rows() -> Value {
    json!([
        { "phoneNumber": "+56912340001", "metadata": { "plan": "pro" } },
        { "phoneNumber": "+56912340002", "countryCode": "CL" },
        { "phoneNumber": "+14155550100", "lastWhatsappMessageAt": "2026-11-24T10:00:00Z" },
    ])
}

fn counts(report: &Value) -> (i64, i64, i64) {
    let n = |key: &str| report[key].as_i64().unwrap_or(-1);
    (n("created"), n("updated"), n("unchanged"))
}

async fn import(app: &TestApp, rows: Value) -> Value {
    app.data(IMPORT, json!({ "rows": rows })).await["importContacts"].clone()
}

#[tokio::test]
async fn importing_the_same_rows_again_reports_them_unchanged_and_writes_nothing() {
    let app = TestApp::start().await;
    assert_eq!(counts(&import(&app, rows()).await), (3, 0, 0));
    let before = app.data(BY_PHONE, json!({ "p": "+56912340001" })).await;
    app.clock.advance(chrono::Duration::minutes(5));

    let again = import(&app, rows()).await;
    assert_eq!(counts(&again), (0, 0, 3), "{again}");
    let after = app.data(BY_PHONE, json!({ "p": "+56912340001" })).await;
    assert_eq!(after, before, "an unchanged row keeps its updatedAt");

    let changed = json!([{ "phoneNumber": "+56912340001", "metadata": { "plan": "free" } }]);
    assert_eq!(counts(&import(&app, changed).await), (0, 1, 0));
}

#[tokio::test]
async fn a_number_named_twice_in_one_call_is_applied_in_order() {
    let app = TestApp::start().await;
    let rows = json!([
        { "phoneNumber": "+56912340003", "metadata": { "step": "1" } },
        { "phoneNumber": "+56912340004" },
        { "phoneNumber": "+56 9 1234 0003", "metadata": { "step": "2" } },
    ]);
    let report = import(&app, rows).await;
    assert_eq!(counts(&report), (2, 1, 0), "{report}");
    let stored = app.data(BY_PHONE, json!({ "p": "+56912340003" })).await;
    assert_eq!(
        stored["contactByPhoneNumber"]["metadata"],
        json!({ "step": "2" })
    );
}

fn cli_import(url: &str, file: &std::path::Path) -> String {
    let output = Command::new(BIN)
        .args(["import", &file.display().to_string()])
        .env("DATABASE_URL", url)
        .env_remove("RUST_LOG")
        .output()
        .expect("run contacts-server import");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test]
async fn the_command_line_and_the_mutation_agree_on_unchanged_rows() {
    let app = TestApp::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("contacts.csv");
    let csv = "phoneNumber,countryCode,lastWhatsappMessageAt,metadata.plan\n\
        +56912340001,,,pro\n+56912340002,CL,,\n+14155550100,,2026-11-24T10:00:00Z,\n";
    std::fs::write(&file, csv).expect("write CSV");

    let first = cli_import(&app.database_url, &file);
    assert!(
        first.contains("created 3, updated 0, unchanged 0"),
        "{first}"
    );
    // The same contacts through the mutation: nothing to write.
    assert_eq!(counts(&import(&app, rows()).await), (0, 0, 3));
    let second = cli_import(&app.database_url, &file);
    assert!(
        second.contains("created 0, updated 0, unchanged 3"),
        "{second}"
    );
}

#[tokio::test]
async fn a_command_line_import_leaves_the_planner_statistics_of_the_table() {
    let app = TestApp::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("contacts.csv");
    let mut csv = String::from("phoneNumber\n");
    for n in 0..50 {
        csv.push_str(&format!("+5691234{n:04}\n"));
    }
    std::fs::write(&file, csv).expect("write CSV");
    let db = sea_orm::Database::connect(&app.database_url)
        .await
        .expect("connect");
    let analysed = if on_postgres() {
        // Set by ANALYZE itself (-1 or 0 before any).
        "SELECT CAST(CASE WHEN reltuples >= 50 THEN 1 ELSE 0 END AS bigint) AS n \
         FROM pg_class WHERE oid = 'contacts'::regclass"
    } else {
        "SELECT count(*) AS n FROM sqlite_master WHERE name = 'sqlite_stat1'"
    };
    let count = || async {
        let statement = sea_orm::Statement::from_string(db.get_database_backend(), analysed);
        let row = db.query_one_raw(statement).await.expect("query");
        row.expect("a row").try_get::<i64>("", "n").expect("count")
    };
    assert_eq!(count().await, 0, "no statistics before the import");
    cli_import(&app.database_url, &file);
    assert_eq!(count().await, 1, "statistics after the import");
    db.close().await.expect("close");
}
