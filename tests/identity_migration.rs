//! The WhatsApp identity migration upgrades a database made by the previous release, with
//! contacts in it, keeping every row; and its constraints hold afterwards.

mod common;

use chrono::{DateTime, Utc};
use common::{TestApp, at, fresh_database_url, on_postgres};
use migration::MigratorTrait;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement, Value as SqlValue};
use serde_json::json;
use uuid::Uuid;

/// Migrations of the release before WhatsApp identity.
const PREVIOUS_RELEASE: u32 = 2;

const LIST: &str = "{ contacts(first: 10, orderBy: { field: PHONE_NUMBER, direction: ASC }) {
    nodes { id phoneNumber countryCode lastWhatsappMessageAt metadata createdAt } } }";

fn placeholders(count: usize) -> String {
    (1..=count)
        .map(|n| {
            if on_postgres() {
                format!("${n}")
            } else {
                "?".into()
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Inserts a contact in the previous release's table shape.
async fn insert_old(
    db: &DatabaseConnection,
    phone: &str,
    metadata: serde_json::Value,
    last: Option<DateTime<Utc>>,
) -> Uuid {
    let id = Uuid::now_v7();
    let sql = format!(
        "INSERT INTO contacts (id, phone_number, country_code, last_whatsapp_message_at, \
         metadata, created_at, updated_at) VALUES ({})",
        placeholders(7)
    );
    let created = at("2026-11-20T10:00:00Z");
    let values: Vec<SqlValue> = vec![
        id.into(),
        phone.into(),
        "CL".into(),
        last.into(),
        metadata.into(),
        created.into(),
        created.into(),
    ];
    db.execute_raw(Statement::from_sql_and_values(
        db.get_database_backend(),
        sql,
        values,
    ))
    .await
    .expect("insert in the old shape");
    id
}

/// A database as the previous release leaves it, holding two contacts; then the app upgrades it.
async fn upgraded() -> (TestApp, Uuid, Uuid) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = fresh_database_url(&dir).await;
    let db = Database::connect(&url).await.expect("connect");
    migration::Migrator::up(&db, Some(PREVIOUS_RELEASE))
        .await
        .expect("previous release's migrations");
    let first = insert_old(
        &db,
        "+56911111111",
        json!({ "tier": "gold" }),
        Some(at("2026-11-24T11:00:00Z")),
    )
    .await;
    let second = insert_old(&db, "+56922222222", json!({}), None).await;
    db.close().await.expect("close");
    (TestApp::start_on(&url, dir).await, first, second)
}

async fn exec(app: &TestApp, sql: &str) -> Result<(), sea_orm::DbErr> {
    let db = Database::connect(&app.database_url).await.expect("connect");
    let result = db.execute_unprepared(sql).await.map(|_| ());
    db.close().await.expect("close");
    result
}

/// The messaging-policy migration gives a contact that messaged before it one window, with no
/// business number, at its last message.
#[tokio::test]
async fn upgrade_gives_each_messaged_contact_its_window() {
    let (app, _, _) = upgraded().await;
    let data = app
        .data(
            "{ contacts(first: 10, orderBy: { field: PHONE_NUMBER, direction: ASC }) {
                 nodes { blocked whatsappWindows { businessPhoneNumberId lastInboundAt } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        data["contacts"]["nodes"],
        json!([
            { "blocked": false, "whatsappWindows": [
                { "businessPhoneNumberId": null, "lastInboundAt": "2026-11-24T11:00:00Z" } ] },
            { "blocked": false, "whatsappWindows": [] }
        ])
    );
}

#[tokio::test]
async fn upgrade_keeps_every_contact() {
    let (app, first, second) = upgraded().await;
    let data = app.data(LIST, json!({})).await;
    assert_eq!(
        data["contacts"]["nodes"],
        json!([
            {
                "id": first.to_string(), "phoneNumber": "+56911111111", "countryCode": "CL",
                "lastWhatsappMessageAt": "2026-11-24T11:00:00Z", "metadata": { "tier": "gold" },
                "createdAt": "2026-11-20T10:00:00Z"
            },
            {
                "id": second.to_string(), "phoneNumber": "+56922222222", "countryCode": "CL",
                "lastWhatsappMessageAt": null, "metadata": {},
                "createdAt": "2026-11-20T10:00:00Z"
            }
        ])
    );
    // The upgraded table still accepts writes through the API.
    let created = app.create(json!({ "phoneNumber": "+56933333333" })).await;
    assert_eq!(created["phoneNumber"], "+56933333333");
}

#[tokio::test]
async fn every_contact_keeps_an_identity_and_user_ids_are_unique() {
    let (app, _, _) = upgraded().await;
    let now = "'2026-11-24T12:00:00Z'";
    let row = |id: &str, phone: &str, user: &str| {
        format!(
            "INSERT INTO contacts (id, phone_number, whatsapp_user_id, metadata, created_at, \
             updated_at) VALUES ('{id}', {phone}, {user}, '{{}}', {now}, {now})"
        )
    };
    let nobody = row("01900000-0000-7000-8000-000000000001", "NULL", "NULL");
    assert!(
        exec(&app, &nobody).await.is_err(),
        "a contact with no identity"
    );
    let bsuid_only = row("01900000-0000-7000-8000-000000000002", "NULL", "'US.1349'");
    exec(&app, &bsuid_only)
        .await
        .expect("a BSUID alone is an identity");
    let same_bsuid = row("01900000-0000-7000-8000-000000000003", "NULL", "'US.1349'");
    assert!(exec(&app, &same_bsuid).await.is_err(), "a BSUID twice");
    // Several phone-less contacts: NULL phone numbers do not collide.
    let other = row("01900000-0000-7000-8000-000000000004", "NULL", "'US.7777'");
    exec(&app, &other)
        .await
        .expect("a second phone-less contact");
}

#[tokio::test]
async fn user_id_lookups_are_served_by_indexes() {
    let (app, _, _) = upgraded().await;
    let db = Database::connect(&app.database_url).await.expect("connect");
    let backend = db.get_database_backend();
    let (sql, expected) = if on_postgres() {
        (
            "SELECT indexname AS name FROM pg_indexes WHERE tablename IN \
             ('contacts', 'contact_previous_whatsapp_user_ids') ORDER BY indexname",
            "idx_contacts_whatsapp_user_id",
        )
    } else {
        (
            "SELECT name FROM sqlite_master WHERE type = 'index' ORDER BY name",
            "idx_contacts_whatsapp_user_id",
        )
    };
    let names: Vec<String> = db
        .query_all_raw(Statement::from_string(backend, sql))
        .await
        .expect("list indexes")
        .iter()
        .map(|row| row.try_get::<String>("", "name").expect("name"))
        .collect();
    assert!(names.iter().any(|n| n == expected), "{names:?}");
    assert!(
        names
            .iter()
            .any(|n| n == "idx_contact_previous_whatsapp_user_ids_contact"),
        "{names:?}"
    );
    if on_postgres() {
        // The byte-order collation the previous release gave the phone column survives.
        let collation = db
            .query_one_raw(Statement::from_string(
                backend,
                "SELECT collation_name AS name FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = 'contacts' \
                 AND column_name = 'phone_number'",
            ))
            .await
            .expect("column")
            .expect("the phone column");
        assert_eq!(collation.try_get::<String>("", "name").expect("name"), "C");
    }
    db.close().await.expect("close");
}

/// Rolls back the identity migration and every one applied after it.
async fn down_through_identity(db: &DatabaseConnection) -> Result<(), sea_orm::DbErr> {
    let applied = migration::Migrator::get_applied_migrations(db).await?;
    let position = applied
        .iter()
        .position(|m| m.name() == "m20261126_000002_whatsapp_identity")
        .expect("the identity migration is applied");
    let steps = u32::try_from(applied.len() - position).expect("a few migrations");
    migration::Migrator::down(db, Some(steps)).await
}

/// Rolling back is refused while a contact has no phone number (the old table cannot hold it),
/// and works, keeping the rows, once every contact has one.
#[tokio::test]
async fn rollback_keeps_contacts_and_refuses_to_drop_phone_less_ones() {
    let (app, _, _) = upgraded().await;
    let phone_less = "INSERT INTO contacts (id, phone_number, whatsapp_user_id, metadata, \
        created_at, updated_at) VALUES ('01900000-0000-7000-8000-000000000009', NULL, \
        'US.42', '{}', '2026-11-24T12:00:00Z', '2026-11-24T12:00:00Z')";
    exec(&app, phone_less).await.expect("phone-less contact");
    let db = Database::connect(&app.database_url).await.expect("connect");
    assert!(down_through_identity(&db).await.is_err());
    db.execute_unprepared("DELETE FROM contacts WHERE phone_number IS NULL")
        .await
        .expect("delete");
    down_through_identity(&db).await.expect("rollback");
    db.close().await.expect("close");
    let again = app.second_instance().await;
    let data = again.data(LIST, json!({})).await;
    assert_eq!(data["contacts"]["nodes"].as_array().map(Vec::len), Some(2));
}

/// The lookups the identity filters and matching run are index scans, not table scans: by
/// BSUID, by a replaced BSUID, and "has no phone number". (PostgreSQL is told to avoid
/// sequential scans, which it prefers on a table this small.)
#[tokio::test]
async fn identity_lookups_use_their_indexes() {
    use sea_orm::TransactionTrait;
    let (app, _, _) = upgraded().await;
    let db = Database::connect(&app.database_url).await.expect("connect");
    let backend = db.get_database_backend();
    let txn = db.begin().await.expect("begin");
    let explain = if on_postgres() {
        txn.execute_unprepared("SET LOCAL enable_seqscan = off")
            .await
            .expect("set");
        "EXPLAIN"
    } else {
        "EXPLAIN QUERY PLAN"
    };
    let queries = [
        (
            "SELECT * FROM contacts WHERE whatsapp_user_id = 'US.1'",
            "idx_contacts_whatsapp_user_id",
        ),
        (
            "SELECT * FROM contact_previous_whatsapp_user_ids WHERE whatsapp_user_id = 'US.1'",
            if on_postgres() {
                "contact_previous_whatsapp_user_ids_pkey"
            } else {
                "sqlite_autoindex_contact_previous_whatsapp_user_ids_1"
            },
        ),
        (
            "SELECT * FROM contacts WHERE phone_number IS NULL",
            if on_postgres() {
                // The partial index of phone-less contacts (the phone order's null segment).
                "idx_contacts_without_phone_id"
            } else {
                "USING INDEX sqlite_autoindex_contacts_2 (phone_number=?)"
            },
        ),
    ];
    for (sql, index) in queries {
        let plan: Vec<String> = txn
            .query_all_raw(Statement::from_string(backend, format!("{explain} {sql}")))
            .await
            .expect("explain")
            .iter()
            .map(|row| {
                let column = if on_postgres() {
                    "QUERY PLAN"
                } else {
                    "detail"
                };
                row.try_get::<String>("", column).expect("plan line")
            })
            .collect();
        let plan = plan.join("\n");
        assert!(plan.contains(index), "{sql}:\n{plan}");
    }
}
