//! `contact_counters`: the number of contacts, kept exact by triggers on `contacts` in the
//! writing transaction, so the unfiltered total is a sum of a few rows instead of a count of
//! the table.
//!
//! The triggers see what a statement really did (an upsert that found its row updates it
//! and adds nothing; a merge deletes the absorbed contact), whichever code path or tool
//! wrote it. On PostgreSQL the table has [`STRIPES`] rows and a statement adds its delta to
//! the stripe of its backend (`pg_backend_pid() % STRIPES`): one transaction touches one
//! stripe, so concurrent writers on other connections do not queue on one hot row and no
//! two transactions can deadlock over stripes. The triggers are per statement, reading the
//! statement's transition table, so a 1,000-row insert updates its stripe once. SQLite has
//! one writer, so one stripe and row triggers (it has no statement triggers).
//!
//! The triggers are created before the count is taken: on PostgreSQL `CREATE TRIGGER` locks
//! out writers of `contacts` until this migration commits, so no row is missed or counted
//! twice.

use sea_orm_migration::{prelude::*, sea_orm::DatabaseBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Rows of the counter on PostgreSQL.
pub const STRIPES: i32 = 32;

const POSTGRES_UP: &str = r#"
CREATE TABLE IF NOT EXISTS contact_counters (stripe integer PRIMARY KEY, delta bigint NOT NULL);
CREATE OR REPLACE FUNCTION contact_counters_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
  SELECT count(*) INTO n FROM contact_counters_new_rows;
  IF n > 0 THEN
    UPDATE contact_counters SET delta = delta + n WHERE stripe = pg_backend_pid() % {STRIPES};
  END IF;
  RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION contact_counters_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
  SELECT count(*) INTO n FROM contact_counters_old_rows;
  IF n > 0 THEN
    UPDATE contact_counters SET delta = delta - n WHERE stripe = pg_backend_pid() % {STRIPES};
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER contact_counters_insert AFTER INSERT ON contacts
  REFERENCING NEW TABLE AS contact_counters_new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION contact_counters_inserted();
CREATE TRIGGER contact_counters_delete AFTER DELETE ON contacts
  REFERENCING OLD TABLE AS contact_counters_old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION contact_counters_deleted();
INSERT INTO contact_counters (stripe, delta) SELECT s, 0 FROM generate_series(0, {LAST}) AS s;
UPDATE contact_counters SET delta = (SELECT count(*) FROM contacts) WHERE stripe = 0;
"#;

const SQLITE_UP: &str = r#"
CREATE TABLE IF NOT EXISTS contact_counters (stripe integer PRIMARY KEY, delta bigint NOT NULL);
CREATE TRIGGER IF NOT EXISTS contact_counters_insert AFTER INSERT ON contacts BEGIN
  UPDATE contact_counters SET delta = delta + 1 WHERE stripe = 0;
END;
CREATE TRIGGER IF NOT EXISTS contact_counters_delete AFTER DELETE ON contacts BEGIN
  UPDATE contact_counters SET delta = delta - 1 WHERE stripe = 0;
END;
INSERT INTO contact_counters (stripe, delta) SELECT 0, count(*) FROM contacts;
"#;

const POSTGRES_DOWN: &str = "DROP TRIGGER IF EXISTS contact_counters_insert ON contacts; \
    DROP TRIGGER IF EXISTS contact_counters_delete ON contacts; \
    DROP FUNCTION IF EXISTS contact_counters_inserted(); \
    DROP FUNCTION IF EXISTS contact_counters_deleted(); \
    DROP TABLE IF EXISTS contact_counters;";

const SQLITE_DOWN: &str = "DROP TRIGGER IF EXISTS contact_counters_insert; \
    DROP TRIGGER IF EXISTS contact_counters_delete; \
    DROP TABLE IF EXISTS contact_counters;";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let sql = match manager.get_database_backend() {
            DatabaseBackend::Postgres => POSTGRES_UP
                .replace("{STRIPES}", &STRIPES.to_string())
                .replace("{LAST}", &(STRIPES - 1).to_string()),
            _ => SQLITE_UP.to_owned(),
        };
        manager.get_connection().execute_unprepared(&sql).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let sql = match manager.get_database_backend() {
            DatabaseBackend::Postgres => POSTGRES_DOWN,
            _ => SQLITE_DOWN,
        };
        manager.get_connection().execute_unprepared(sql).await?;
        Ok(())
    }
}
