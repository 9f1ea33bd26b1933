//! Contact rows for the read paths: statements built by SeaORM, run on its sqlx pool, and
//! decoded by position here.
//!
//! SeaORM decodes a row column by column by name, and for every NULL in an optional column
//! it formats an error message (`TryGetable for Option<T>`) that it then discards: a contact
//! has up to seven such columns. The lookups by id and by number also rebuilt the same SQL
//! text on every request. Both were about 8% of the server's CPU under the lookup load
//! (BENCHMARKS.md, sixth round). The decoding is sqlx's, with the types SeaORM asks sqlx for,
//! so a row reads the same either way (a test below compares the two, nulls and values).

use std::sync::{Arc, LazyLock};

use chrono::{DateTime, Utc};
use entity::contact::{Column, Entity, Model};
use sea_orm::{
    ColumnTrait, ConnAcquireErr, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter,
    QuerySelect, QueryTrait, RuntimeErr, Select, Statement, Value, Values,
    sqlx::{self, ColumnIndex, Decode, Executor, IntoArguments, Row, Type},
};
use sea_query_sqlx::SqlxValues;
use uuid::Uuid;

use crate::{
    db::{ReadConnection, SqlxPool, inline_limit},
    error::AppResult,
};

/// A contact by a unique column, the statement built once per backend.
#[derive(Clone, Copy)]
pub enum Lookup {
    Id,
    PhoneNumber,
}

impl Lookup {
    /// The statement for `value`, from the one built for this backend.
    pub fn statement(self, backend: DbBackend, value: Value) -> Statement {
        static BUILT: LazyLock<[[Statement; 2]; 2]> = LazyLock::new(|| {
            // Placeholders of the columns' types (a null would build `IS NULL`).
            let build = |(column, placeholder): (Column, Value), backend| {
                inline_limit(
                    Entity::find()
                        .filter(column.eq(placeholder))
                        .limit(1)
                        .build(backend),
                )
            };
            [
                (Column::Id, Value::from(Uuid::nil())),
                (Column::PhoneNumber, Value::from("")),
            ]
            .map(|lookup| {
                [DbBackend::Sqlite, DbBackend::Postgres].map(|b| build(lookup.clone(), b))
            })
        });
        let by_backend = &BUILT[self as usize];
        let mut stmt = match backend {
            DbBackend::Postgres => by_backend[1].clone(),
            _ => by_backend[0].clone(),
        };
        // The column's value is the first parameter; PostgreSQL also binds the limit.
        if let Some(Values(values)) = stmt.values.as_mut()
            && let Some(first) = values.first_mut()
        {
            *first = value;
        }
        stmt
    }
}

/// The contact a statement built from `Entity::find()` (every column) finds, if any.
pub async fn one_by(read: &ReadConnection, stmt: Statement) -> AppResult<Option<Model>> {
    Ok(fetch(read, stmt, Fetch::One).await?.pop())
}

/// Every contact `select` finds, in its order.
pub async fn all(read: &ReadConnection, select: Select<Entity>) -> AppResult<Vec<Model>> {
    let stmt = select.build(read.get_database_backend());
    Ok(fetch(read, stmt, Fetch::All).await?)
}

#[derive(Clone, Copy)]
enum Fetch {
    One,
    All,
}

async fn fetch(read: &ReadConnection, stmt: Statement, rows: Fetch) -> Result<Vec<Model>, DbErr> {
    let mut stmt = inline_limit(stmt);
    let values = SqlxValues(stmt.values.take().unwrap_or(Values(Vec::new())));
    match read.sqlx_pool() {
        SqlxPool::Sqlite(pool) => run(pool, &stmt.sql, values, rows).await,
        SqlxPool::Postgres(pool) => run(pool, &stmt.sql, values, rows).await,
        // No pool: SeaORM reports it.
        SqlxPool::Other => Entity::find().from_raw_sql(stmt).all(read).await,
    }
}

/// `sql` on a connection of `pool`, as SeaORM runs it (a prepared statement, cached on the
/// connection), its rows decoded here.
async fn run<DB>(
    pool: &sqlx::Pool<DB>,
    sql: &str,
    values: SqlxValues,
    rows: Fetch,
) -> Result<Vec<Model>, DbErr>
where
    DB: sqlx::Database,
    SqlxValues: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    usize: ColumnIndex<DB::Row>,
    for<'r> Uuid: Decode<'r, DB> + Type<DB>,
    for<'r> String: Decode<'r, DB> + Type<DB>,
    for<'r> DateTime<Utc>: Decode<'r, DB> + Type<DB>,
    for<'r> serde_json::Value: Decode<'r, DB> + Type<DB>,
    for<'r> bool: Decode<'r, DB> + Type<DB>,
{
    let mut conn = pool.acquire().await.map_err(acquire_error)?;
    let query = sqlx::query_with(sqlx::AssertSqlSafe(sql), values);
    let found = match rows {
        Fetch::One => query.fetch_optional(&mut *conn).await.map(Vec::from_iter),
        Fetch::All => query.fetch_all(&mut *conn).await,
    };
    found
        .map_err(query_error)?
        .iter()
        .map(|row| decode(row).map_err(query_error))
        .collect()
}

/// A row of `Entity::find()`, read by position (its columns are the model's fields, in
/// order; a test holds the two together) with the types SeaORM reads them with.
fn decode<'r, R>(row: &'r R) -> Result<Model, sqlx::Error>
where
    R: Row,
    usize: ColumnIndex<R>,
    Uuid: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    DateTime<Utc>: Decode<'r, R::Database> + Type<R::Database>,
    serde_json::Value: Decode<'r, R::Database> + Type<R::Database>,
    bool: Decode<'r, R::Database> + Type<R::Database>,
{
    let model = Model {
        id: row.try_get(0)?,
        phone_number: row.try_get(1)?,
        country_code: row.try_get(2)?,
        last_whatsapp_message_at: row.try_get(3)?,
        metadata: row.try_get(4)?,
        created_at: row.try_get(5)?,
        updated_at: row.try_get(6)?,
        whatsapp_user_id: row.try_get(7)?,
        parent_whatsapp_user_id: row.try_get(8)?,
        whatsapp_username: row.try_get(9)?,
        whatsapp_profile_name: row.try_get(10)?,
        whatsapp_identity_seen_at: row.try_get(11)?,
        blocked: row.try_get(12)?,
    };
    Ok(model)
}

/// As SeaORM reports a pool that could not hand out a connection.
fn acquire_error(err: sqlx::Error) -> DbErr {
    match err {
        sqlx::Error::PoolTimedOut => DbErr::ConnectionAcquire(ConnAcquireErr::Timeout),
        sqlx::Error::PoolClosed => DbErr::ConnectionAcquire(ConnAcquireErr::ConnectionClosed),
        other => DbErr::Conn(RuntimeErr::SqlxError(Arc::new(other))),
    }
}

/// As SeaORM reports a failed query.
fn query_error(err: sqlx::Error) -> DbErr {
    DbErr::Query(RuntimeErr::SqlxError(Arc::new(err)))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use sea_orm::{ActiveModelTrait, IdenStatic, IntoActiveModel, Iterable};

    use super::*;
    use crate::db::{Db, DbOptions};

    #[test]
    fn the_columns_are_read_in_the_order_entity_find_selects_them() {
        let selected: Vec<&str> = Column::iter().map(|column| column.as_str()).collect();
        let decoded = [
            Column::Id,
            Column::PhoneNumber,
            Column::CountryCode,
            Column::LastWhatsappMessageAt,
            Column::Metadata,
            Column::CreatedAt,
            Column::UpdatedAt,
            Column::WhatsappUserId,
            Column::ParentWhatsappUserId,
            Column::WhatsappUsername,
            Column::WhatsappProfileName,
            Column::WhatsappIdentitySeenAt,
            Column::Blocked,
        ]
        .map(|column| column.as_str());
        assert_eq!(selected, decoded);
    }

    #[test]
    fn a_lookup_binds_its_value_into_the_statement_built_once() {
        let id = Uuid::now_v7();
        let sqlite = Lookup::Id.statement(DbBackend::Sqlite, id.into());
        assert!(
            sqlite.sql.ends_with(r#"WHERE "contacts"."id" = ? LIMIT 1"#),
            "{}",
            sqlite.sql
        );
        assert_eq!(sqlite.values, Some(Values(vec![id.into()])));
        let postgres = Lookup::PhoneNumber.statement(DbBackend::Postgres, "+56912345678".into());
        assert_eq!(postgres.db_backend, DbBackend::Postgres);
        assert!(
            postgres
                .sql
                .ends_with(r#"WHERE "contacts"."phone_number" = $1 LIMIT $2"#),
            "{}",
            postgres.sql
        );
        let values = postgres.values.expect("bound").0;
        assert_eq!(values[0], Value::from("+56912345678"));
    }

    async fn database() -> Db {
        let db = Db::connect(&DbOptions::in_memory()).await.unwrap();
        db.migrate().await.unwrap();
        db
    }

    #[tokio::test]
    async fn rows_read_by_position_equal_seaorms_by_name() {
        let db = database().await;
        let at = |h| Utc.with_ymd_and_hms(2026, 11, 24, h, 0, 0).unwrap();
        let bare = Model {
            id: Uuid::now_v7(),
            phone_number: Some("+56912345678".into()),
            country_code: None,
            last_whatsapp_message_at: None,
            metadata: serde_json::json!({}),
            created_at: at(1),
            updated_at: at(1),
            whatsapp_user_id: None,
            parent_whatsapp_user_id: None,
            whatsapp_username: None,
            whatsapp_profile_name: None,
            whatsapp_identity_seen_at: None,
            blocked: false,
        };
        let full = Model {
            id: Uuid::now_v7(),
            phone_number: None,
            country_code: Some("CL".into()),
            last_whatsapp_message_at: Some(at(2)),
            metadata: serde_json::json!({ "plan": "pro", "ñ": "ü" }),
            created_at: at(3),
            updated_at: at(4),
            whatsapp_user_id: Some("CL.1a2b3c".into()),
            parent_whatsapp_user_id: Some("CL.ENT.9z".into()),
            whatsapp_username: Some("@ana".into()),
            whatsapp_profile_name: Some("Ana".into()),
            whatsapp_identity_seen_at: Some(at(5)),
            blocked: true,
        };
        for model in [&bare, &full] {
            model
                .clone()
                .into_active_model()
                .insert(&db.write)
                .await
                .unwrap();
        }
        for model in [&bare, &full] {
            let stmt = Lookup::Id.statement(DbBackend::Sqlite, model.id.into());
            let by_position = one_by(&db.read, stmt).await.unwrap();
            let by_name = Entity::find_by_id(model.id).one(&db.read).await.unwrap();
            assert_eq!(by_position.as_ref(), Some(model));
            assert_eq!(by_position, by_name);
        }
        let by_phone = Lookup::PhoneNumber.statement(DbBackend::Sqlite, "+56912345678".into());
        assert_eq!(
            one_by(&db.read, by_phone).await.unwrap(),
            Some(bare.clone())
        );
        let missing = Lookup::Id.statement(DbBackend::Sqlite, Uuid::nil().into());
        assert_eq!(one_by(&db.read, missing).await.unwrap(), None);
        let listed = all(&db.read, Entity::find()).await.unwrap();
        assert_eq!(listed, Entity::find().all(&db.read).await.unwrap());
        assert_eq!(listed.len(), 2);
    }
}
