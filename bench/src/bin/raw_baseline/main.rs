//! The benchmark's ceiling: a plain axum handler per operation running one prepared sqlx
//! statement, typed rows serialised by serde_json. No GraphQL, no SeaORM, no code of
//! contacts-server: the server's ratio to it is the whole cost of our layers. Built only for
//! the benchmark; never shipped.
//!
//!   DATABASE_URL=… PORT=… bench-raw-baseline
//!
//! It serves the operations `bench` drives against it (lookup, open windows, create) and a
//! row count for the readiness probe and the write checks, on a database contacts-server has
//! already migrated and seeded.

mod answers;

use std::{net::SocketAddr, str::FromStr, time::Duration};

use anyhow::Context;
use axum::{
    Json, Router,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::post,
    serve::ListenerExt,
};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Map, Value};
use sqlx::{
    Postgres, Sqlite,
    pool::PoolOptions,
    postgres::PgPool,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqliteSynchronous},
    types::Json as SqlJson,
};
use uuid::Uuid;

use crate::answers::{
    Contact, CreateAnswer, Created, LookupAnswer, Nodes, PageAnswer, PageInfo, StatsAnswer, Total,
    WINDOW,
};

/// The same allocator as contacts-server, so the ratio measures our layers, not malloc.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Rows of the open-windows page; one more is read to know whether another page follows.
const PAGE: usize = 50;
/// Read connections, as contacts-server's default `DATABASE_MAX_CONNECTIONS` (on SQLite one
/// more connection writes, as there).
const CONNECTIONS: u32 = 8;

const LOOKUP: &str = "SELECT id, phone_number, country_code, last_whatsapp_message_at, \
    metadata, created_at, updated_at FROM contacts WHERE phone_number = $1";
/// The server's open-windows page: the same predicate (open: a last message after now minus
/// the window; the `IS NOT NULL` of its valued segment) and order (last message, then id,
/// both descending).
const OPEN_WINDOWS: &str = "SELECT id, phone_number, country_code, last_whatsapp_message_at, \
    metadata, created_at, updated_at FROM contacts \
    WHERE last_whatsapp_message_at IS NOT NULL AND last_whatsapp_message_at > $1 \
    ORDER BY last_whatsapp_message_at DESC, id DESC LIMIT $2";
const CREATE: &str = "INSERT INTO contacts \
    (id, phone_number, country_code, metadata, created_at, updated_at) \
    VALUES ($1, $2, $3, $4, $5, $6) RETURNING id, phone_number, country_code, \
    last_whatsapp_message_at, metadata, created_at, updated_at";
const COUNT: &str = "SELECT COUNT(*) FROM contacts";

#[derive(Deserialize)]
struct Phone {
    phone: String,
}

/// SQLite: a single writer and read-only readers, as contacts-server; PostgreSQL: one pool.
#[derive(Clone)]
enum Db {
    Sqlite { read: SqlitePool, write: SqlitePool },
    Postgres(PgPool),
}

/// Runs `$query` (a `query_as` or `query_scalar` awaiting a pool) on the pool `$db` picks:
/// the reader or the writer on SQLite, the pool on PostgreSQL.
macro_rules! on {
    ($db:expr, $role:ident, |$pool:ident| $query:expr) => {
        match $db {
            Db::Sqlite { $role: $pool, .. } => $query,
            Db::Postgres($pool) => $query,
        }
    };
}

/// A failed statement: the benchmark counts it as an error and shows the first.
struct Failed(sqlx::Error);

impl IntoResponse for Failed {
    fn into_response(self) -> Response {
        (StatusCode::INTERNAL_SERVER_ERROR, self.0.to_string()).into_response()
    }
}

impl From<sqlx::Error> for Failed {
    fn from(err: sqlx::Error) -> Self {
        Self(err)
    }
}

async fn lookup(
    State(db): State<Db>,
    Json(body): Json<Phone>,
) -> Result<Json<LookupAnswer>, Failed> {
    let now = Utc::now();
    let found: Option<Contact> = on!(&db, read, |pool| {
        sqlx::query_as(LOOKUP)
            .bind(&body.phone)
            .fetch_optional(pool)
            .await?
    });
    Ok(Json(LookupAnswer {
        contact_by_phone_number: found.map(|row| row.at(now)),
    }))
}

async fn open_windows(State(db): State<Db>) -> Result<Json<PageAnswer>, Failed> {
    let now = Utc::now();
    let limit = (PAGE + 1) as i64;
    let mut rows: Vec<Contact> = on!(&db, read, |pool| {
        sqlx::query_as(OPEN_WINDOWS)
            .bind(now - WINDOW)
            .bind(limit)
            .fetch_all(pool)
            .await?
    });
    let has_next_page = rows.len() > PAGE;
    rows.truncate(PAGE);
    let end_cursor = rows.last().map(|row| row.id);
    let nodes = rows.into_iter().map(|row| row.at(now)).collect();
    Ok(Json(PageAnswer {
        contacts: Nodes {
            nodes,
            page_info: PageInfo {
                has_next_page,
                end_cursor,
            },
        },
    }))
}

/// Inserts the number as given: no parsing, so no country code; an empty metadata object.
async fn create(
    State(db): State<Db>,
    Json(body): Json<Phone>,
) -> Result<Json<CreateAnswer>, Failed> {
    let now = Utc::now();
    let metadata = SqlJson(Value::Object(Map::new()));
    let row: Contact = on!(&db, write, |pool| {
        sqlx::query_as(CREATE)
            .bind(Uuid::now_v7())
            .bind(&body.phone)
            .bind(None::<String>)
            .bind(&metadata)
            .bind(now)
            .bind(now)
            .fetch_one(pool)
            .await?
    });
    Ok(Json(CreateAnswer {
        create_contact: Created {
            contact: row.at(now),
        },
    }))
}

async fn stats(State(db): State<Db>) -> Result<Json<StatsAnswer>, Failed> {
    let total: i64 = on!(&db, read, |pool| {
        sqlx::query_scalar(COUNT).fetch_one(pool).await?
    });
    Ok(Json(StatsAnswer {
        contact_stats: Total { total },
    }))
}

/// The pools, configured as contacts-server's (src/db.rs): on SQLite WAL with
/// `synchronous = FULL`, so both sides pay the same sync per commit; a connection pinged
/// before use only after sitting idle (sqlx pings every one by default).
async fn connect(url: &str) -> anyhow::Result<Db> {
    let acquire = Duration::from_secs(5);
    if url.starts_with("sqlite:") {
        let file = SqliteConnectOptions::from_str(url)?
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full);
        let write = pooled::<Sqlite>()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(acquire)
            .connect_with(file.clone())
            .await
            .context("opening the SQLite database")?;
        let read = pooled::<Sqlite>()
            .max_connections(CONNECTIONS)
            .acquire_timeout(acquire)
            .connect_with(file.read_only(true))
            .await?;
        return Ok(Db::Sqlite { read, write });
    }
    let pool = pooled::<Postgres>()
        .max_connections(CONNECTIONS)
        .acquire_timeout(acquire)
        .connect(url)
        .await
        .context("connecting to PostgreSQL")?;
    Ok(Db::Postgres(pool))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let db = connect(&std::env::var("DATABASE_URL")?).await?;
    let app = Router::new()
        .route("/lookup", post(lookup))
        .route("/open-windows", post(open_windows))
        .route("/create", post(create))
        .route("/stats", post(stats))
        .with_state(db);
    let port: u16 = std::env::var("PORT")?.parse()?;
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port)))
        .await?
        // As contacts-server: responses are written whole, so no coalescing delay.
        .tap_io(|stream| {
            let _ = stream.set_nodelay(true);
        });
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

/// The server's pool options (src/db.rs `pooled`), written out here: the ceiling uses nothing
/// of the server's.
fn pooled<DB: sqlx::Database>() -> PoolOptions<DB> {
    PoolOptions::new()
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= Duration::from_millis(500) {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
}
