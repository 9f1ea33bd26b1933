//! The maintained contact count (`contact_counters`) stays exact while creates, deletes,
//! merges, `importContacts` and the command-line import run at once, on one instance or, on
//! PostgreSQL, two sharing the database: at the end the unfiltered `contactStats.total` and
//! `totalCount`, read from the counter, equal `COUNT(*)` of the table.

mod common;

use std::{
    io::Write,
    process::{Command, Stdio},
    sync::Arc,
    time::Duration,
};

use common::{T0, TestApp, at, on_postgres, process::BIN};
use contacts_server::{
    contacts::{ContactService, clock::ManualClock},
    db::{Db, DbOptions},
    events,
};
use sea_orm::{ConnectionTrait, Database, Statement};
use serde_json::{Value, json};

const WORKERS: usize = 4;
const ROUNDS: usize = 8;
/// Numbers every importer writes, so imports race to insert the same new rows.
const SHARED: usize = 30;

const DELETE: &str = "mutation($id: ID!) { deleteContact(id: $id) { deletedContactId } }";
const IMPORT: &str = "mutation($rows: [CreateContactInput!]!) { importContacts(contacts: $rows) { created updated unchanged } }";
const INBOUND: &str = "mutation($input: RecordWhatsappInboundInput!) {
    recordWhatsappInbound(input: $input) { contact { id } } }";
const COUNTS: &str = "{ contactStats { total } contacts(first: 1) { totalCount } }";

fn shared_phone(k: usize) -> String {
    format!("+5692{k:07}")
}

/// One worker's rounds on `app`: a create and (every other round) its delete, an import of
/// the shared numbers and of its own, and a merge (an inbound event proving a BSUID-only
/// contact and a phone-only contact are one person; the newer one is deleted).
async fn worker(app: &TestApp, worker: usize) {
    for round in 0..ROUNDS {
        let tag = worker * 100 + round;
        let created = app
            .create(json!({ "phoneNumber": format!("+5691{tag:07}") }))
            .await;
        if round % 2 == 0 {
            app.data(DELETE, json!({ "id": created["id"] })).await;
        }
        let mut rows: Vec<Value> = (0..SHARED)
            .map(|k| json!({ "phoneNumber": shared_phone(k), "metadata": { "by": tag.to_string() } }))
            .collect();
        rows.push(json!({ "phoneNumber": format!("+5693{tag:07}") }));
        app.data(IMPORT, json!({ "rows": rows })).await;
        let user_id = format!("CL.{tag}");
        let phone = format!("+5694{tag:07}");
        app.data(
            INBOUND,
            json!({ "input": { "whatsappUserId": user_id, "receivedAt": "2026-11-24T09:00:00Z" } }),
        )
        .await;
        app.create(json!({ "phoneNumber": phone })).await;
        app.data(
            INBOUND,
            json!({ "input": { "whatsappUserId": user_id, "phoneNumber": phone,
                "receivedAt": "2026-11-24T11:00:00Z" } }),
        )
        .await;
    }
}

/// The command-line import of `rows` JSON Lines (half of them shared numbers) on `url`.
fn cli_import(url: &str, offset: usize) -> std::process::Output {
    let mut lines = String::new();
    for k in 0..SHARED {
        lines.push_str(&format!("{{\"phoneNumber\":\"{}\"}}\n", shared_phone(k)));
        lines.push_str(&format!("{{\"phoneNumber\":\"+5695{:07}\"}}\n", offset + k));
    }
    let mut child = Command::new(BIN)
        .args(["import", "-", "--format", "jsonl"])
        .env("DATABASE_URL", url)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run contacts-server import");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(lines.as_bytes()).expect("write stdin");
    drop(stdin);
    child.wait_with_output().expect("import")
}

async fn scalar(url: &str, sql: &str) -> i64 {
    let db = Database::connect(url).await.expect("connect");
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .expect("query")
        .expect("a row");
    row.try_get_by_index::<i64>(0).expect("a number")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_counter_stays_exact_under_concurrent_writes() {
    let first = TestApp::start().await;
    // PostgreSQL: two instances on one database, each with its own pool.
    let second = match on_postgres() {
        true => Some(first.second_instance().await),
        false => None,
    };
    let apps: Vec<&TestApp> = std::iter::once(&first).chain(second.as_ref()).collect();
    let url = first.database_url.clone();
    let spawn_import = |i: usize| {
        let url = url.clone();
        tokio::task::spawn_blocking(move || cli_import(&url, i * 1000))
    };
    // PostgreSQL: the command-line imports run alongside the instances. SQLite: after them,
    // one at a time, since a second process's write transaction is refused (SQLITE_BUSY)
    // while the server writes, whatever the counter does.
    let mut concurrent = Vec::new();
    if on_postgres() {
        concurrent = (0..2).map(spawn_import).collect();
    }
    let writers = (0..WORKERS).map(|w| worker(apps[w % apps.len()], w));
    futures_util::future::join_all(writers).await;
    let mut outputs = Vec::new();
    for import in concurrent {
        outputs.push(import.await.expect("join"));
    }
    if !on_postgres() {
        for i in 0..2 {
            outputs.push(spawn_import(i).await.expect("join"));
        }
    }
    for output in outputs {
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stderr}");
    }
    let rows = scalar(&url, "SELECT COUNT(*) FROM contacts").await;
    // Each round keeps its create every other time, its own import row, one contact of
    // its merge; the shared and command-line rows once each.
    let expected = WORKERS * (ROUNDS / 2 + 2 * ROUNDS) + SHARED + 2 * SHARED;
    assert_eq!(rows, expected as i64, "the workload itself");
    for app in &apps {
        let counts = app.data(COUNTS, Value::Null).await;
        assert_eq!(counts["contactStats"]["total"], rows, "{counts}");
        assert_eq!(counts["contacts"]["totalCount"], rows, "{counts}");
    }
    let merged = scalar(
        &url,
        "SELECT COUNT(*) FROM contacts WHERE whatsapp_user_id LIKE 'CL.%'",
    )
    .await;
    assert_eq!(
        merged,
        (WORKERS * ROUNDS) as i64,
        "every merge kept one contact"
    );
    if on_postgres() {
        // Each backend wrote a stripe of its own instead of queueing on one row; folding
        // them leaves the base row alone, and the same total.
        let stripes = scalar(&url, "SELECT COUNT(*) FROM contact_counters").await;
        assert!(stripes >= 3, "{stripes} stripes written");
        let folded = service_on(&url).await.fold_counters().await.expect("fold");
        assert_eq!(folded as i64, stripes - 1);
        assert_eq!(
            scalar(&url, "SELECT COUNT(*) FROM contact_counters").await,
            1
        );
        let counts = first.data(COUNTS, Value::Null).await;
        assert_eq!(counts["contactStats"]["total"], rows, "{counts}");
    }
}

/// A service of its own on `url`, as another instance's.
async fn service_on(url: &str) -> ContactService {
    let options = DbOptions {
        url: url.to_owned(),
        max_connections: 2,
        acquire_timeout: Duration::from_secs(10),
        busy_timeout: Duration::from_secs(5),
        statement_timeout: Duration::ZERO,
        ping_after_idle: contacts_server::db::PING_AFTER_IDLE,
    };
    let db = Db::connect(&options).await.expect("database");
    let events = events::start(&db, url).await.expect("event bus");
    ContactService::new(db, Arc::new(ManualClock::new(at(T0))), events)
}

/// A contact row written by hand, `phone` its number.
/// A raw insert of a contact with `phone`, bound (never in the SQL text: statements are logged,
/// and the logs are checked for phone numbers).
fn insert_statement(backend: sea_orm::DbBackend, phone: &str) -> Statement {
    let sql = if on_postgres() {
        "INSERT INTO contacts (id, phone_number, country_code, metadata, created_at, \
         updated_at) VALUES (gen_random_uuid(), $1, 'US', '{}'::jsonb, now(), now())"
    } else {
        "INSERT INTO contacts (id, phone_number, country_code, metadata, created_at, \
         updated_at) VALUES (randomblob(16), ?, 'US', '{}', \
         '2026-11-24 12:00:00+00:00', '2026-11-24 12:00:00+00:00')"
    };
    Statement::from_sql_and_values(backend, sql, [phone.into()])
}

/// The counter is written in the writer's transaction: a rolled-back insert counts nothing.
/// On PostgreSQL two transactions inserting at once do not wait on each other's counter
/// row (each backend has its own), so neither can be held up, or deadlocked, by the counter.
#[tokio::test]
async fn the_counter_is_transactional_and_writers_do_not_queue_on_it() {
    use sea_orm::TransactionTrait;
    let app = TestApp::start().await;
    let url = app.database_url.clone();
    let one = Database::connect(&url).await.expect("connect");
    let txn = one.begin().await.expect("begin");
    let backend = txn.get_database_backend();
    txn.execute_raw(insert_statement(backend, "+15550000001"))
        .await
        .expect("insert");
    if on_postgres() {
        let other = Database::connect(&url).await.expect("connect");
        let second = other.begin().await.expect("begin");
        let insert = second.execute_raw(insert_statement(backend, "+15550000002"));
        tokio::time::timeout(Duration::from_secs(5), insert)
            .await
            .expect("the second writer did not wait for the first")
            .expect("insert");
        second.commit().await.expect("commit");
    }
    txn.rollback().await.expect("rollback");
    let rows = scalar(&url, "SELECT COUNT(*) FROM contacts").await;
    assert_eq!(rows, i64::from(on_postgres()));
    let counts = app.data(COUNTS, Value::Null).await;
    assert_eq!(counts["contactStats"]["total"], rows, "{counts}");
}
