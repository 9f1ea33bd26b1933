//! WhatsApp identity (2026): a contact may be known by its business-scoped user id (BSUID)
//! alone, so `phone_number` becomes nullable, guarded by a CHECK that every contact keeps at
//! least one identity. Adds the BSUID (unique, indexed), the parent BSUID, the username and
//! profile name with the time of the event that set them, and a side table of replaced BSUIDs
//! keyed by the old id, so a late webhook carrying one still finds its contact.
//!
//! Existing rows are kept. PostgreSQL alters the table in place (the `"C"` collation of
//! `phone_number` is untouched by `DROP NOT NULL`). SQLite cannot drop a NOT NULL or add a
//! CHECK to a table, so it rebuilds `contacts` with the same column types and copies the rows;
//! the server applies SQLite migrations inside one `BEGIN IMMEDIATE` transaction, so the
//! rebuild is never left half done.

use sea_orm_migration::{
    prelude::*,
    sea_orm::{DatabaseBackend, Statement},
};

#[derive(DeriveMigrationName)]
pub struct Migration;

const POSTGRES_UP: &[&str] = &[
    "ALTER TABLE contacts ALTER COLUMN phone_number DROP NOT NULL",
    "ALTER TABLE contacts \
     ADD COLUMN whatsapp_user_id varchar NULL, \
     ADD COLUMN parent_whatsapp_user_id varchar NULL, \
     ADD COLUMN whatsapp_username varchar NULL, \
     ADD COLUMN whatsapp_profile_name varchar NULL, \
     ADD COLUMN whatsapp_identity_seen_at timestamp with time zone NULL",
    "ALTER TABLE contacts ADD CONSTRAINT contacts_identity_present \
     CHECK (phone_number IS NOT NULL OR whatsapp_user_id IS NOT NULL)",
];

const POSTGRES_DOWN: &[&str] = &[
    "ALTER TABLE contacts DROP CONSTRAINT contacts_identity_present",
    "ALTER TABLE contacts \
     DROP COLUMN whatsapp_user_id, DROP COLUMN parent_whatsapp_user_id, \
     DROP COLUMN whatsapp_username, DROP COLUMN whatsapp_profile_name, \
     DROP COLUMN whatsapp_identity_seen_at",
    "ALTER TABLE contacts ALTER COLUMN phone_number SET NOT NULL",
];

/// The columns every version of the table has, in the create migration's order.
const COMMON_COLUMNS: &str =
    "id, phone_number, country_code, last_whatsapp_message_at, metadata, created_at, updated_at";

/// The create migration's column types (as SeaQuery writes them for SQLite), then the new ones.
const SQLITE_NEW_TABLE: &str = r#"CREATE TABLE contacts_new (
    "id" uuid_text NOT NULL PRIMARY KEY,
    "phone_number" varchar NULL UNIQUE,
    "country_code" varchar(2) NULL,
    "last_whatsapp_message_at" timestamp_with_timezone_text NULL,
    "metadata" jsonb_text NOT NULL,
    "created_at" timestamp_with_timezone_text NOT NULL,
    "updated_at" timestamp_with_timezone_text NOT NULL,
    "whatsapp_user_id" varchar NULL,
    "parent_whatsapp_user_id" varchar NULL,
    "whatsapp_username" varchar NULL,
    "whatsapp_profile_name" varchar NULL,
    "whatsapp_identity_seen_at" timestamp_with_timezone_text NULL,
    CONSTRAINT contacts_identity_present
        CHECK (phone_number IS NOT NULL OR whatsapp_user_id IS NOT NULL)
)"#;

const SQLITE_OLD_TABLE: &str = r#"CREATE TABLE contacts_new (
    "id" uuid_text NOT NULL PRIMARY KEY,
    "phone_number" varchar NOT NULL UNIQUE,
    "country_code" varchar(2) NULL,
    "last_whatsapp_message_at" timestamp_with_timezone_text NULL,
    "metadata" jsonb_text NOT NULL,
    "created_at" timestamp_with_timezone_text NOT NULL,
    "updated_at" timestamp_with_timezone_text NOT NULL
)"#;

/// The create migration's indexes, which SQLite drops with the old table.
const SQLITE_INDEXES: &[&str] = &[
    r#"CREATE INDEX "idx_contacts_created_at_id" ON "contacts" ("created_at", "id")"#,
    r#"CREATE INDEX "idx_contacts_updated_at_id" ON "contacts" ("updated_at", "id")"#,
    r#"CREATE INDEX "idx_contacts_last_whatsapp_message_at_id" ON "contacts" ("last_whatsapp_message_at", "id")"#,
    r#"CREATE INDEX "idx_contacts_country_code" ON "contacts" ("country_code")"#,
];

/// Replaces `contacts` by `create` (a `contacts_new` table), copying the common columns.
async fn sqlite_rebuild(manager: &SchemaManager<'_>, create: &str) -> Result<(), DbErr> {
    let db = manager.get_connection();
    db.execute_unprepared(create).await?;
    db.execute_unprepared(&format!(
        "INSERT INTO contacts_new ({COMMON_COLUMNS}) SELECT {COMMON_COLUMNS} FROM contacts"
    ))
    .await?;
    db.execute_unprepared("DROP TABLE contacts").await?;
    db.execute_unprepared("ALTER TABLE contacts_new RENAME TO contacts")
        .await?;
    for index in SQLITE_INDEXES {
        db.execute_unprepared(index).await?;
    }
    Ok(())
}

/// Replaced BSUIDs: the old id is the key (one person's, for good), so finding a contact by
/// one is a primary-key lookup. Deleting a contact deletes its history.
fn previous_ids_table(backend: DatabaseBackend) -> String {
    let (uuid, time) = match backend {
        DatabaseBackend::Postgres => ("uuid", "timestamp with time zone"),
        _ => ("uuid_text", "timestamp_with_timezone_text"),
    };
    format!(
        "CREATE TABLE contact_previous_whatsapp_user_ids (\
         whatsapp_user_id varchar NOT NULL PRIMARY KEY, \
         contact_id {uuid} NOT NULL REFERENCES contacts (id) ON DELETE CASCADE, \
         replaced_at {time} NOT NULL)"
    )
}

async fn up_all(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let backend = manager.get_database_backend();
    let db = manager.get_connection();
    if backend == DatabaseBackend::Postgres {
        for statement in POSTGRES_UP {
            db.execute_unprepared(statement).await?;
        }
    } else {
        sqlite_rebuild(manager, SQLITE_NEW_TABLE).await?;
    }
    db.execute_unprepared(
        "CREATE UNIQUE INDEX idx_contacts_whatsapp_user_id ON contacts (whatsapp_user_id)",
    )
    .await?;
    db.execute_unprepared(&previous_ids_table(backend)).await?;
    db.execute_unprepared(
        "CREATE INDEX idx_contact_previous_whatsapp_user_ids_contact \
         ON contact_previous_whatsapp_user_ids (contact_id)",
    )
    .await?;
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        up_all(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        // Checked before anything changes: a migration run outside a transaction (SQLite
        // from `Migrator` directly) would otherwise stop half way.
        let phone_less = db
            .query_one_raw(Statement::from_string(
                manager.get_database_backend(),
                "SELECT 1 AS found FROM contacts WHERE phone_number IS NULL LIMIT 1",
            ))
            .await?;
        if phone_less.is_some() {
            return Err(DbErr::Migration(
                "contacts known by WhatsApp user id alone have no phone number; \
                 give them one or delete them before rolling back"
                    .into(),
            ));
        }
        // Dropped first: on SQLite, dropping `contacts` would cascade into it.
        db.execute_unprepared("DROP TABLE contact_previous_whatsapp_user_ids")
            .await?;
        db.execute_unprepared("DROP INDEX idx_contacts_whatsapp_user_id")
            .await?;
        if manager.get_database_backend() == DatabaseBackend::Postgres {
            for statement in POSTGRES_DOWN {
                db.execute_unprepared(statement).await?;
            }
            Ok(())
        } else {
            sqlite_rebuild(manager, SQLITE_OLD_TABLE).await
        }
    }
}
