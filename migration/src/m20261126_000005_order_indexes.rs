//! Indexes of the rows without a value in a nullable sort column, by id: a list in
//! `LAST_WHATSAPP_MESSAGE_AT` or `PHONE_NUMBER` order walks the valued rows on the
//! `(column, id)` (or unique phone) index, then these rows, last in both directions, on this
//! partial index, so neither backend sorts the table for "nulls last".

use sea_orm_migration::{prelude::*, sea_orm::DatabaseBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

const INDEXES: [(&str, &str); 2] = [
    ("idx_contacts_never_messaged_id", "last_whatsapp_message_at"),
    ("idx_contacts_without_phone_id", "phone_number"),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let sqlite = manager.get_database_backend() == DatabaseBackend::Sqlite;
        for (name, column) in INDEXES {
            // SQLite's planner prefers an index whose leading column the `IS NULL` test
            // matches (else it takes the unique phone index and sorts); PostgreSQL does not
            // count `IS NULL` as fixing a leading column, so its index starts with the id.
            let key = if sqlite {
                format!("{column}, id")
            } else {
                "id".to_owned()
            };
            db.execute_unprepared(&format!(
                "CREATE INDEX IF NOT EXISTS {name} ON contacts ({key}) WHERE {column} IS NULL"
            ))
            .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for (name, _) in INDEXES {
            db.execute_unprepared(&format!("DROP INDEX IF EXISTS {name}"))
                .await?;
        }
        Ok(())
    }
}
