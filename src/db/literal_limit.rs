//! The read connection, which writes a select's `LIMIT` into its SQL text on SQLite.
//!
//! SeaORM binds `LIMIT` as a parameter (`LIMIT ?`). Since 3.47, SQLite reads a bound limit
//! while planning (`sqlite3ExprIsInteger` with a `Parse`) and marks the statement to be
//! planned again whenever that parameter is bound anew: every run of a cached statement was
//! prepared a second time, 11% of the server's CPU under the lookup load (BENCHMARKS.md).
//! A literal limit gives the planner the same number and leaves the cached statement valid.
//! PostgreSQL plans a bound limit without that cost and is left as it is.

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseConnectionType, DbBackend, DbErr, ExecResult,
    QueryResult, Statement, Value, Values, sqlx,
};

/// A connection pool whose selects carry their limit as a literal on SQLite.
#[derive(Debug, Clone)]
pub struct ReadConnection(DatabaseConnection, SqlxPool);

/// The sqlx pool under SeaORM's connection, for the hot reads that decode their rows
/// themselves (`contacts::rows`).
#[derive(Debug, Clone)]
pub enum SqlxPool {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
    /// SeaORM's disconnected placeholder: its reads fail as SeaORM's do.
    Other,
}

impl ReadConnection {
    pub fn new(pool: DatabaseConnection) -> Self {
        let sqlx_pool = match &pool.inner {
            DatabaseConnectionType::SqlxSqlitePoolConnection(_) => {
                SqlxPool::Sqlite(pool.get_sqlite_connection_pool().clone())
            }
            DatabaseConnectionType::SqlxPostgresPoolConnection(_) => {
                SqlxPool::Postgres(pool.get_postgres_connection_pool().clone())
            }
            DatabaseConnectionType::Disconnected => SqlxPool::Other,
        };
        Self(pool, sqlx_pool)
    }

    /// The pool itself, for what SeaORM's connection trait does not cover.
    pub fn pool(&self) -> &DatabaseConnection {
        &self.0
    }

    /// The same pool as sqlx's.
    pub fn sqlx_pool(&self) -> &SqlxPool {
        &self.1
    }

    pub async fn close(self) -> Result<(), DbErr> {
        self.0.close().await
    }
}

/// `stmt` with a trailing `LIMIT ?` replaced by its bound value, on SQLite; any other
/// statement unchanged. The limit is the last parameter of a select that ends with it.
pub fn inline_limit(mut stmt: Statement) -> Statement {
    const BOUND: &str = " LIMIT ?";
    if stmt.db_backend != DbBackend::Sqlite || !stmt.sql.ends_with(BOUND) {
        return stmt;
    }
    let Some(Values(values)) = stmt.values.as_mut() else {
        return stmt;
    };
    let limit = match values.last() {
        Some(Value::BigUnsigned(Some(n))) => *n,
        Some(Value::Unsigned(Some(n))) => u64::from(*n),
        _ => return stmt,
    };
    values.pop();
    stmt.sql.truncate(stmt.sql.len() - BOUND.len());
    stmt.sql.push_str(&format!(" LIMIT {limit}"));
    stmt
}

#[async_trait::async_trait]
impl ConnectionTrait for ReadConnection {
    fn get_database_backend(&self) -> DbBackend {
        self.0.get_database_backend()
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        self.0.execute_raw(stmt).await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.0.execute_unprepared(sql).await
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        self.0.query_one_raw(inline_limit(stmt)).await
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        self.0.query_all_raw(inline_limit(stmt)).await
    }

    fn support_returning(&self) -> bool {
        self.0.support_returning()
    }

    fn is_mock_connection(&self) -> bool {
        self.0.is_mock_connection()
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::{EntityTrait, QueryFilter, QuerySelect, QueryTrait, sea_query::Expr};

    use super::*;

    fn built(backend: DbBackend, limit: u64) -> Statement {
        entity::contact::Entity::find()
            .filter(Expr::cust_with_values("phone_number = ?", ["+56912345678"]))
            .limit(limit)
            .build(backend)
    }

    #[test]
    fn a_sqlite_select_carries_its_limit_in_the_text() {
        let stmt = inline_limit(built(DbBackend::Sqlite, 51));
        assert!(stmt.sql.ends_with(" LIMIT 51"), "{}", stmt.sql);
        assert!(!stmt.sql.contains("LIMIT ?"));
        let values = stmt.values.expect("the phone number stays bound").0;
        assert_eq!(values, vec![Value::from("+56912345678")]);
    }

    #[test]
    fn postgres_and_selects_without_a_limit_are_unchanged() {
        let postgres = built(DbBackend::Postgres, 51);
        assert_eq!(inline_limit(postgres.clone()), postgres);
        let unlimited = entity::contact::Entity::find().build(DbBackend::Sqlite);
        assert_eq!(inline_limit(unlimited.clone()), unlimited);
    }
}
