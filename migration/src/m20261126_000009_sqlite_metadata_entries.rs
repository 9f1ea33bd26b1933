//! SQLite: `contact_metadata_entries`, one row per metadata key and value of each contact,
//! kept by triggers on `contacts`, so the metadata filter probes an index instead of reading
//! `json_each` of every row. Triggers rather than code because every path that writes a
//! contact (mutations, webhooks, merges, imports, the command line, raw SQL) then keeps the
//! entries exact inside its own statement. PostgreSQL needs none: its GIN index on the
//! `jsonb` column serves containment.

use sea_orm_migration::{prelude::*, sea_orm::DatabaseBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Metadata values are strings; `json_each` yields them unquoted, as the filter compares.
const ENTRIES_OF_NEW: &str = "SELECT DISTINCT m.key, m.value, NEW.id \
     FROM json_each(NEW.metadata) AS m WHERE m.type = 'text'";

const UP: [&str; 6] = [
    "CREATE TABLE IF NOT EXISTS contact_metadata_entries (\
     key TEXT NOT NULL, value TEXT NOT NULL, contact_id BLOB NOT NULL, \
     PRIMARY KEY (key, value, contact_id)) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS idx_contact_metadata_entries_contact \
     ON contact_metadata_entries (contact_id)",
    "INSERT INTO contact_metadata_entries (key, value, contact_id) \
     SELECT DISTINCT m.key, m.value, c.id FROM contacts AS c, json_each(c.metadata) AS m \
     WHERE m.type = 'text'",
    "CREATE TRIGGER IF NOT EXISTS contact_metadata_entries_insert AFTER INSERT ON contacts \
     BEGIN INSERT INTO contact_metadata_entries (key, value, contact_id) {ENTRIES_OF_NEW}; END",
    "CREATE TRIGGER IF NOT EXISTS contact_metadata_entries_update \
     AFTER UPDATE OF metadata ON contacts WHEN OLD.metadata IS NOT NEW.metadata \
     BEGIN DELETE FROM contact_metadata_entries WHERE contact_id = OLD.id; \
     INSERT INTO contact_metadata_entries (key, value, contact_id) {ENTRIES_OF_NEW}; END",
    "CREATE TRIGGER IF NOT EXISTS contact_metadata_entries_delete AFTER DELETE ON contacts \
     BEGIN DELETE FROM contact_metadata_entries WHERE contact_id = OLD.id; END",
];

const DOWN: [&str; 4] = [
    "DROP TRIGGER IF EXISTS contact_metadata_entries_insert",
    "DROP TRIGGER IF EXISTS contact_metadata_entries_update",
    "DROP TRIGGER IF EXISTS contact_metadata_entries_delete",
    "DROP TABLE IF EXISTS contact_metadata_entries",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DatabaseBackend::Sqlite {
            return Ok(());
        }
        let db = manager.get_connection();
        for statement in UP {
            db.execute_unprepared(&statement.replace("{ENTRIES_OF_NEW}", ENTRIES_OF_NEW))
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DatabaseBackend::Sqlite {
            return Ok(());
        }
        let db = manager.get_connection();
        for statement in DOWN {
            db.execute_unprepared(statement).await?;
        }
        Ok(())
    }
}
