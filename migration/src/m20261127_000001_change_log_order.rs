//! PostgreSQL: `contact_changes_ordered_at(lock_class, at)`, which writers call inside the
//! statement that appends to the change log. It takes the log's commit-ordering lock (see
//! `contacts::changelog` in the server) and returns the time to log: `at`, or the newest time
//! already logged if that is later, so times never go back along positions.
//!
//! Why a function: a statement reads with the snapshot it started with, so one that waited
//! for the lock could not see the changes committed meanwhile. A query inside a volatile
//! function takes a new snapshot, after the lock is held, and sees every earlier position.
//! SQLite needs none: its one writer logs in commit order with the clock read in that order.

use sea_orm_migration::{prelude::*, sea_orm::DatabaseBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

const POSTGRES_UP: &str = r"
CREATE OR REPLACE FUNCTION contact_changes_ordered_at(lock_class integer, at timestamptz)
RETURNS timestamptz LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(lock_class, hashtext(current_schema()));
    RETURN GREATEST(at, (SELECT max(logged.at) FROM contact_changes AS logged));
END
$$;";

const POSTGRES_DOWN: &str =
    "DROP FUNCTION IF EXISTS contact_changes_ordered_at(integer, timestamptz);";

/// Runs `sql` on PostgreSQL; nothing on SQLite.
async fn on_postgres(manager: &SchemaManager<'_>, sql: &str) -> Result<(), DbErr> {
    if manager.get_database_backend() == DatabaseBackend::Postgres {
        manager.get_connection().execute_unprepared(sql).await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        on_postgres(manager, POSTGRES_UP).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        on_postgres(manager, POSTGRES_DOWN).await
    }
}
