//! `contact_counters`: the number of contacts, kept exact by triggers on `contacts` in the
//! writing transaction, so the unfiltered total is a sum of a few rows instead of a count of
//! the table.
//!
//! The triggers see what a statement really did (an upsert that found its row updates it
//! and adds nothing; a merge deletes the absorbed contact), whichever code path or tool
//! wrote it.
//!
//! PostgreSQL: stripe 0 holds the base count, and every backend adds its statements' deltas
//! to a stripe of its own, keyed by `pg_backend_pid()`. Only one live backend has a pid, and
//! a backend runs one transaction at a time, so no two concurrent transactions ever write
//! the same row: a writer never waits on the counter, and the counter can never close a
//! deadlock (a fixed set of stripes shared by `pid % N` could: a transaction holding its
//! stripe waits on a contact row another transaction inserted, which then waits on that
//! stripe). The triggers are per statement, reading the statement's transition table, so a
//! 1,000-row insert writes its stripe once. The service folds the stripes of idle backends
//! into stripe 0 periodically (skipping rows locked by a transaction in progress), so a sum
//! reads a few rows. SQLite has one writer: one stripe, row triggers (it has no statement
//! triggers). `TRUNCATE` (PostgreSQL; it fires no delete trigger) resets the counter to 0: it
//! locks out every writer of `contacts`, so no stripe is in use. SQLite has no `TRUNCATE`, and
//! skips its truncate optimisation for a table with delete triggers.
//!
//! The triggers are created before the count is taken, in one transaction: on PostgreSQL
//! `CREATE TRIGGER` locks out writers of `contacts` until it commits, so no row is missed or
//! counted twice.

use sea_orm_migration::{prelude::*, sea_orm::DatabaseBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

const POSTGRES_UP: &str = r"
CREATE TABLE IF NOT EXISTS contact_counters (stripe integer PRIMARY KEY, delta bigint NOT NULL);
CREATE OR REPLACE FUNCTION contact_counters_add(n bigint) RETURNS void LANGUAGE sql AS $$
  INSERT INTO contact_counters (stripe, delta) VALUES (pg_backend_pid(), n)
  ON CONFLICT (stripe) DO UPDATE SET delta = contact_counters.delta + excluded.delta
$$;
CREATE OR REPLACE FUNCTION contact_counters_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
  SELECT count(*) INTO n FROM contact_counters_new_rows;
  IF n > 0 THEN
    PERFORM contact_counters_add(n);
  END IF;
  RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION contact_counters_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
  SELECT count(*) INTO n FROM contact_counters_old_rows;
  IF n > 0 THEN
    PERFORM contact_counters_add(-n);
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER contact_counters_insert AFTER INSERT ON contacts
  REFERENCING NEW TABLE AS contact_counters_new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION contact_counters_inserted();
CREATE TRIGGER contact_counters_delete AFTER DELETE ON contacts
  REFERENCING OLD TABLE AS contact_counters_old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION contact_counters_deleted();
CREATE OR REPLACE FUNCTION contact_counters_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM contact_counters;
  INSERT INTO contact_counters (stripe, delta) VALUES (0, 0);
  RETURN NULL;
END $$;
CREATE TRIGGER contact_counters_truncate AFTER TRUNCATE ON contacts
  FOR EACH STATEMENT EXECUTE FUNCTION contact_counters_truncated();
INSERT INTO contact_counters (stripe, delta) SELECT 0, count(*) FROM contacts;
";

const SQLITE_UP: &str = r"
CREATE TABLE IF NOT EXISTS contact_counters (stripe integer PRIMARY KEY, delta bigint NOT NULL);
CREATE TRIGGER IF NOT EXISTS contact_counters_insert AFTER INSERT ON contacts BEGIN
  UPDATE contact_counters SET delta = delta + 1 WHERE stripe = 0;
END;
CREATE TRIGGER IF NOT EXISTS contact_counters_delete AFTER DELETE ON contacts BEGIN
  UPDATE contact_counters SET delta = delta - 1 WHERE stripe = 0;
END;
INSERT INTO contact_counters (stripe, delta) SELECT 0, count(*) FROM contacts;
";

const POSTGRES_DOWN: &str = "DROP TRIGGER IF EXISTS contact_counters_insert ON contacts; \
    DROP TRIGGER IF EXISTS contact_counters_delete ON contacts; \
    DROP TRIGGER IF EXISTS contact_counters_truncate ON contacts; \
    DROP FUNCTION IF EXISTS contact_counters_truncated(); \
    DROP FUNCTION IF EXISTS contact_counters_inserted(); \
    DROP FUNCTION IF EXISTS contact_counters_deleted(); \
    DROP FUNCTION IF EXISTS contact_counters_add(bigint); \
    DROP TABLE IF EXISTS contact_counters;";

const SQLITE_DOWN: &str = "DROP TRIGGER IF EXISTS contact_counters_insert; \
    DROP TRIGGER IF EXISTS contact_counters_delete; \
    DROP TABLE IF EXISTS contact_counters;";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let sql = match manager.get_database_backend() {
            DatabaseBackend::Postgres => POSTGRES_UP,
            _ => SQLITE_UP,
        };
        manager.get_connection().execute_unprepared(sql).await?;
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
