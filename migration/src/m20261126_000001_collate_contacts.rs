//! Gives `contacts.phone_number` byte-order collation (`"C"`) on PostgreSQL, so the
//! `phoneNumberPrefix` range, the `PHONE_NUMBER` order and its keyset seeks compare bytes, as
//! SQLite does, whatever the database's default collation.
//!
//! Under a linguistic collation (ICU `en-US`, glibc `en_US.UTF-8`) `:` sorts before the digits,
//! so the prefix range `[+569, +56:)` was empty there. The column's own collation is the one
//! every comparison on it uses (a bound parameter has only the default collation, which yields
//! to the column's), and PostgreSQL rebuilds the unique index under it, so the index still
//! serves the range and the order. The rows are kept: the type is unchanged, so only the index
//! is rebuilt. SQLite compares text bytewise already (`BINARY`), so there is nothing to do.

use sea_orm_migration::{prelude::*, sea_orm::DatabaseBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

async fn set_collation(manager: &SchemaManager<'_>, collation: &str) -> Result<(), DbErr> {
    if manager.get_database_backend() != DatabaseBackend::Postgres {
        return Ok(());
    }
    // `varchar` is the type the create migration gave the column.
    manager
        .get_connection()
        .execute_unprepared(&format!(
            "ALTER TABLE contacts ALTER COLUMN phone_number TYPE varchar COLLATE {collation}"
        ))
        .await?;
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        set_collation(manager, "\"C\"").await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        set_collation(manager, "\"default\"").await
    }
}
