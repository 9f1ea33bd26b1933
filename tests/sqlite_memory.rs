//! SQLite's memory in the server is bounded across all its connections (a soft heap limit),
//! and the command-line tools lift that bound for their large import cache.

mod common;

use std::time::Duration;

use common::on_postgres;
use contacts_server::db::{Db, DbOptions, SQLITE_SOFT_HEAP_LIMIT_BYTES};
use sea_orm::{ConnectionTrait, DbBackend, Statement};

const MIB: i64 = 1024 * 1024;

async fn scalar(conn: &impl ConnectionTrait, sql: &str, values: Vec<sea_orm::Value>) -> i64 {
    let row = conn
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Sqlite,
            sql,
            values,
        ))
        .await
        .expect("query")
        .expect("a row");
    row.try_get_by_index(0).expect("an integer")
}

/// Eight readers each scan 24 MiB of pages: with one page cache per connection growing to
/// SQLite's default (2 MB each), SQLite held about 20 MiB; under the limit the caches recycle
/// their pages, and the high-water mark of SQLite's heap stays near the limit.
#[tokio::test]
async fn the_servers_sqlite_memory_stays_near_its_limit_and_the_tools_lift_it() {
    if on_postgres() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let options = DbOptions {
        url: format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("memory.db").display()
        ),
        max_connections: 8,
        acquire_timeout: Duration::from_secs(10),
        busy_timeout: Duration::from_secs(5),
        statement_timeout: Duration::ZERO,
        ping_after_idle: contacts_server::db::PING_AFTER_IDLE,
    };
    let db = Db::connect(&options).await.expect("database");
    let limit = scalar(&db.read, "PRAGMA soft_heap_limit", vec![]).await;
    assert_eq!(limit, SQLITE_SOFT_HEAP_LIMIT_BYTES);

    db.write
        .execute_unprepared("CREATE TABLE filler (bytes BLOB NOT NULL)")
        .await
        .expect("table");
    let rows: i64 = 24 * 1024;
    let row_bytes: i64 = 1024;
    db.write
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Sqlite,
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) \
             INSERT INTO filler SELECT randomblob(?) FROM n",
            vec![rows.into(), row_bytes.into()],
        ))
        .await
        .expect("filler");

    // SAFETY: both read or reset a counter of SQLite's allocator; no pointer is passed.
    unsafe { libsqlite3_sys::sqlite3_memory_highwater(1) };
    let scans = (0..8).map(|_| {
        let read = db.read.clone();
        async move {
            let sql = "SELECT sum(length(bytes)) FROM filler";
            scalar(&read, sql, vec![]).await
        }
    });
    let sums = futures_util::future::join_all(scans).await;
    assert!(sums.iter().all(|sum| *sum == rows * row_bytes), "{sums:?}");
    let pool = db.read.pool().get_sqlite_connection_pool();
    assert!(pool.size() >= 4, "the scans ran on {} readers", pool.size());
    // SAFETY: as above.
    let highwater = unsafe { libsqlite3_sys::sqlite3_memory_highwater(0) };
    assert!(
        highwater < SQLITE_SOFT_HEAP_LIMIT_BYTES + 4 * MIB,
        "SQLite's heap reached {} KiB with {} readers",
        highwater / 1024,
        pool.size()
    );

    db.prepare_for_bulk_writes().await.expect("bulk");
    assert_eq!(scalar(&db.write, "PRAGMA soft_heap_limit", vec![]).await, 0);
}
