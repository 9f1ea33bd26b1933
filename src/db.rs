//! Database connections: SQLite (embedded default) or PostgreSQL, chosen by the URL.
//!
//! SQLite gets two pools: several read-only connections that run concurrently under WAL, and
//! a single writer connection, so writes queue in the pool instead of failing with
//! "database is locked".

mod literal_limit;
mod sqlite_deadline;

pub use literal_limit::{ReadConnection, SqlxPool, inline_limit};

use std::{str::FromStr, time::Duration};

use anyhow::Context;
use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, SqlxPostgresConnector, SqlxSqliteConnector,
    sqlx::{
        self,
        postgres::PgConnectOptions,
        sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
    },
};

/// How to connect.
#[derive(Debug, Clone)]
pub struct DbOptions {
    pub url: String,
    /// Connections for reads (SQLite) or for everything (PostgreSQL).
    pub max_connections: u32,
    pub acquire_timeout: Duration,
    /// How long SQLite waits on a lock held by another process before giving up.
    pub busy_timeout: Duration,
    /// Every statement is stopped once it runs longer than this, on both backends; zero: no
    /// deadline.
    pub statement_timeout: Duration,
    /// A pooled connection idle for less than this is used without a ping first ([`pooled`]).
    pub ping_after_idle: Duration,
}

#[cfg(test)]
impl DbOptions {
    /// An in-memory SQLite database with five-second timeouts, for unit tests.
    pub fn in_memory() -> Self {
        Self {
            url: "sqlite::memory:".into(),
            max_connections: 1,
            acquire_timeout: Duration::from_secs(5),
            busy_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(5),
            ping_after_idle: PING_AFTER_IDLE,
        }
    }
}

/// The connections a service uses: `write` for every write, `read` for everything else.
/// On PostgreSQL both are the same pool.
#[derive(Debug, Clone)]
pub struct Db {
    pub read: ReadConnection,
    pub write: DatabaseConnection,
}

/// Pool occupancy, for metrics.
#[derive(Debug, Clone, Copy)]
pub struct PoolStats {
    pub role: &'static str,
    pub size: u32,
    pub idle: u32,
    pub max: u32,
}

impl Db {
    pub async fn connect(options: &DbOptions) -> anyhow::Result<Self> {
        if options.url.starts_with("postgres://") || options.url.starts_with("postgresql://") {
            connect_postgres(options).await
        } else if options.url.starts_with("sqlite:") {
            connect_sqlite(options).await
        } else {
            anyhow::bail!("DATABASE_URL must start with sqlite: or postgres://")
        }
    }

    pub fn backend(&self) -> DbBackend {
        self.write.get_database_backend()
    }

    /// Applies pending migrations.
    ///
    /// On PostgreSQL this runs under an advisory lock, so instances starting together
    /// migrate one at a time and the later ones find nothing left to do.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        if self.backend() != DbBackend::Postgres {
            return self.migrate_sqlite().await;
        }
        let pool = self.write.get_postgres_connection_pool();
        let mut lock = pool.acquire().await.context("connecting to migrate")?;
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *lock)
            .await?;
        let migrated = Migrator::up(&self.write, None)
            .await
            .context("applying migrations");
        // The lock would also go with the session; released here so the connection can be reused.
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *lock)
            .await?;
        migrated
    }

    /// SQLite: no memory limit and a large page cache on the write connection for the
    /// command-line tools, whose imports write the unique phone index at random places (the
    /// server keeps SQLite's small default and its limit), and statement journals in memory:
    /// a multi-row upsert keeps the old content of every page it touches until it ends, which
    /// SQLite otherwise spills to a temporary file, several page writes per imported row. Neither touches
    /// the database's own journal or syncing. PostgreSQL manages its own buffers.
    pub async fn prepare_for_bulk_writes(&self) -> anyhow::Result<()> {
        if self.backend() == DbBackend::Sqlite {
            // The server's memory limit would recycle this cache; a tool runs alone.
            set_sqlite_soft_heap_limit(0);
            self.write
                .execute_unprepared("PRAGMA cache_size = -262144")
                .await
                .context("enlarging the SQLite page cache")?;
            self.write
                .execute_unprepared("PRAGMA temp_store = MEMORY")
                .await
                .context("keeping SQLite's statement journals in memory")?;
        }
        Ok(())
    }

    /// Every migration the binary knows, with whether it is applied here.
    pub async fn migration_status(&self) -> anyhow::Result<Vec<(String, bool)>> {
        let migrations = Migrator::get_migration_with_status(&self.write)
            .await
            .context("reading the applied migrations")?;
        Ok(migrations
            .iter()
            .map(|m| {
                let applied = matches!(m.status(), migration::MigrationStatus::Applied);
                (m.name().to_owned(), applied)
            })
            .collect())
    }

    /// SQLite: the whole migration inside one `BEGIN IMMEDIATE`, which takes the database's
    /// write lock, so processes starting together migrate one after the other. The writer
    /// pool has one connection, so the migrator runs on the connection holding the lock.
    async fn migrate_sqlite(&self) -> anyhow::Result<()> {
        self.write
            .execute_unprepared("BEGIN IMMEDIATE")
            .await
            .context("locking for migrations")?;
        match Migrator::up(&self.write, None).await {
            Ok(()) => {
                self.write.execute_unprepared("COMMIT").await?;
                Ok(())
            }
            Err(err) => {
                let _ = self.write.execute_unprepared("ROLLBACK").await;
                Err(err).context("applying migrations")
            }
        }
    }

    /// True when the database answers a trivial query.
    pub async fn is_reachable(&self) -> bool {
        self.read.execute_unprepared("SELECT 1").await.is_ok()
    }

    pub fn pool_stats(&self) -> Vec<PoolStats> {
        match self.backend() {
            DbBackend::Postgres => {
                let pool = self.write.get_postgres_connection_pool();
                vec![stats(
                    "primary",
                    pool.size(),
                    pool.num_idle(),
                    pool.options().get_max_connections(),
                )]
            }
            _ => [("read", self.read.pool()), ("write", &self.write)]
                .into_iter()
                .map(|(role, conn)| {
                    let pool = conn.get_sqlite_connection_pool();
                    stats(
                        role,
                        pool.size(),
                        pool.num_idle(),
                        pool.options().get_max_connections(),
                    )
                })
                .collect(),
        }
    }

    pub async fn close(self) {
        let _ = self.read.close().await;
        let _ = self.write.close().await;
    }
}

/// Advisory lock key for migrations ("contacts" in ASCII).
const MIGRATION_LOCK: i64 = 0x636f_6e74_6163_7473;

fn stats(role: &'static str, size: u32, idle: usize, max: u32) -> PoolStats {
    PoolStats {
        role,
        size,
        idle: u32::try_from(idle).unwrap_or(u32::MAX),
        max,
    }
}

async fn connect_sqlite(options: &DbOptions) -> anyhow::Result<Db> {
    let base = SqliteConnectOptions::from_str(&options.url)
        .context("parsing the SQLite DATABASE_URL")?
        .create_if_missing(true)
        .busy_timeout(options.busy_timeout)
        .foreign_keys(true);
    let in_memory = options.url.contains(":memory:") || options.url.contains("mode=memory");
    if in_memory {
        // Every in-memory connection is its own database: one connection does everything,
        // kept open for good (closing it, idle or old, would drop the database).
        let pool = with_deadline(pooled(options.ping_after_idle), options.statement_timeout)
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .acquire_timeout(options.acquire_timeout)
            .connect_with(base)
            .await?;
        let conn = SqlxSqliteConnector::from_sqlx_sqlite_pool(pool);
        return Ok(Db {
            read: ReadConnection::new(conn.clone()),
            write: conn,
        });
    }
    // WAL lets readers run beside the writer; FULL syncs the WAL on every commit, so an
    // acknowledged write survives a crash of the process or of the machine.
    let file = base
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full);
    let write = open_while_busy(options.busy_timeout, || {
        with_deadline(pooled(options.ping_after_idle), options.statement_timeout)
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(options.acquire_timeout)
            .connect_with(file.clone())
    })
    .await
    .context("opening the SQLite database")?;
    let read = open_while_busy(options.busy_timeout, || {
        with_deadline(pooled(options.ping_after_idle), options.statement_timeout)
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            .connect_with(file.clone().read_only(true))
    })
    .await?;
    let db = Db {
        read: ReadConnection::new(SqlxSqliteConnector::from_sqlx_sqlite_pool(read)),
        write: SqlxSqliteConnector::from_sqlx_sqlite_pool(write),
    };
    set_sqlite_soft_heap_limit(SQLITE_SOFT_HEAP_LIMIT_BYTES);
    Ok(db)
}

/// Sets SQLite's soft heap limit for the whole process (0: none). Through the C function, as
/// the pragma's statement would write the byte count into the debug log.
fn set_sqlite_soft_heap_limit(bytes: i64) {
    // SAFETY: takes and returns integers only; SQLite guards the setting with its own mutex.
    unsafe {
        libsqlite3_sys::sqlite3_soft_heap_limit64(bytes);
    }
}

/// SQLite's memory in this process, all connections together: past it, page caches recycle
/// their pages instead of growing. Without it each of the nine connections filled its own
/// cache, and pages that read thousands of rows (metadata, prefix) took the server to
/// 100 MiB under 32 clients at 1M contacts; with it, 54 MiB at no loss of throughput
/// (BENCHMARKS.md, peak RSS). The pages come back from the operating system's cache.
/// A soft limit: a statement that needs more (a large sort) still gets it.
pub const SQLITE_SOFT_HEAP_LIMIT_BYTES: i64 = 8 * 1024 * 1024;

/// `SQLITE_BUSY` (5) or one of its extended codes (`BUSY_RECOVERY`, `BUSY_SNAPSHOT`,
/// `BUSY_TIMEOUT`): another connection or process holds the lock SQLite needs.
pub(crate) fn is_sqlite_busy(code: &str) -> bool {
    ["5", "261", "517", "773"].contains(&code)
}

/// Opens a pool, again while SQLite answers `SQLITE_BUSY` (5), for up to `patience`. Processes
/// starting together on a new file race to switch it to WAL, which needs the exclusive lock,
/// and SQLite refuses that switch at once, without its busy handler, when another connection
/// holds a lock: one instance of three failed to start in about one start in fifteen.
async fn open_while_busy<F, Fut>(patience: Duration, open: F) -> sqlx::Result<sqlx::SqlitePool>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = sqlx::Result<sqlx::SqlitePool>>,
{
    let give_up = std::time::Instant::now() + patience;
    loop {
        match open().await {
            Err(sqlx::Error::Database(err))
                if err.code().is_some_and(|code| is_sqlite_busy(&code))
                    && std::time::Instant::now() < give_up =>
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            result => return result,
        }
    }
}

/// The default of [`DbOptions::ping_after_idle`]: a connection used less than this long ago
/// answered a ping when it came back to the pool (sqlx pings every connection on release).
/// HikariCP skips its check within 500 ms of last use for the same reason.
pub const PING_AFTER_IDLE: Duration = Duration::from_millis(500);

/// Pool options shared by every pool. sqlx's default pings each connection before handing it
/// out as well as when it comes back: two exchanges with the connection per statement besides
/// the statement itself (a round trip to PostgreSQL; a wake-up of SQLite's connection thread).
/// Only a connection idle for `ping_after_idle` or more is pinged before use here, to catch one
/// the server or a proxy closed meanwhile.
fn pooled<DB: sqlx::Database>(ping_after_idle: Duration) -> sqlx::pool::PoolOptions<DB> {
    sqlx::pool::PoolOptions::new()
        .test_before_acquire(false)
        .before_acquire(move |conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= ping_after_idle {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
}

/// Gives every SQLite connection the statement deadline `timeout` ([`sqlite_deadline`]).
fn with_deadline(pool: SqlitePoolOptions, timeout: Duration) -> SqlitePoolOptions {
    if timeout.is_zero() {
        return pool;
    }
    pool.after_connect(move |conn, _| Box::pin(sqlite_deadline::install(conn, timeout)))
}

async fn connect_postgres(options: &DbOptions) -> anyhow::Result<Db> {
    let statement_timeout = format!("{}ms", options.statement_timeout.as_millis());
    // A wait for another transaction's lock is contention, not a query asking too much: it
    // ends first, at half the deadline, as `lock_not_available` (answered
    // SERVICE_UNAVAILABLE with `Retry-After`), never as the client's QUERY_TIMEOUT.
    let lock_timeout = format!("{}ms", options.statement_timeout.as_millis() / 2);
    let connect = PgConnectOptions::from_str(&options.url)
        .context("parsing the PostgreSQL DATABASE_URL")?
        .options([
            ("statement_timeout", statement_timeout),
            ("lock_timeout", lock_timeout),
        ]);
    let pool = pooled::<sqlx::Postgres>(options.ping_after_idle)
        .max_connections(options.max_connections.max(1))
        .acquire_timeout(options.acquire_timeout)
        .connect_with(connect)
        .await
        .context("connecting to PostgreSQL")?;
    let conn = SqlxPostgresConnector::from_sqlx_postgres_pool(pool);
    Ok(Db {
        read: ReadConnection::new(conn.clone()),
        write: conn,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_in_memory_database_keeps_its_one_connection_for_good() {
        let options = DbOptions {
            max_connections: 4,
            statement_timeout: Duration::ZERO,
            ..DbOptions::in_memory()
        };
        let db = Db::connect(&options).await.unwrap();
        let pool = db.write.get_sqlite_connection_pool().options();
        assert_eq!(pool.get_max_connections(), 1);
        assert_eq!(pool.get_min_connections(), 1);
        assert_eq!(pool.get_idle_timeout(), None);
        assert_eq!(pool.get_max_lifetime(), None);
    }
}
