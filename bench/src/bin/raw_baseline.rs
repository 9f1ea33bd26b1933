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
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sqlx::{
    FromRow, Row,
    postgres::{PgPool, PgPoolOptions, PgRow},
    sqlite::{
        SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
        SqliteSynchronous,
    },
    types::Json as SqlJson,
};
use uuid::Uuid;

/// The same allocator as contacts-server, so the ratio measures our layers, not malloc.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// WhatsApp's customer-service window after the contact's last message.
const WINDOW: TimeDelta = TimeDelta::hours(24);
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

/// A contact with every field of the GraphQL `Contact` type.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Contact {
    id: Uuid,
    phone_number: Option<String>,
    country_code: Option<String>,
    last_whatsapp_message_at: Option<DateTime<Utc>>,
    /// Set by the handler, which knows the request's instant.
    whatsapp_window_open: bool,
    whatsapp_window_expires_at: Option<DateTime<Utc>>,
    metadata: Value,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl Contact {
    fn at(mut self, now: DateTime<Utc>) -> Self {
        self.whatsapp_window_open = self.whatsapp_window_expires_at.is_some_and(|at| at > now);
        self
    }
}

/// What `#[derive(sqlx::FromRow)]` would expand to, written out: the derive needs sqlx's
/// `derive` feature, which builds sqlx-macros and, for the host, a second copy of both
/// drivers (bundled SQLite included), and changes sqlx's features for the whole workspace.
macro_rules! contact_from_row {
    ($row:ty) => {
        impl<'r> FromRow<'r, $row> for Contact {
            fn from_row(row: &'r $row) -> sqlx::Result<Self> {
                let last: Option<DateTime<Utc>> = row.try_get("last_whatsapp_message_at")?;
                Ok(Self {
                    id: row.try_get("id")?,
                    phone_number: row.try_get("phone_number")?,
                    country_code: row.try_get("country_code")?,
                    last_whatsapp_message_at: last,
                    whatsapp_window_open: false,
                    whatsapp_window_expires_at: last.map(|at| at + WINDOW),
                    metadata: row.try_get::<SqlJson<Value>, _>("metadata")?.0,
                    created_at: row.try_get("created_at")?,
                    updated_at: row.try_get("updated_at")?,
                })
            }
        }
    };
}
contact_from_row!(SqliteRow);
contact_from_row!(PgRow);

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LookupAnswer {
    contact_by_phone_number: Option<Contact>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PageInfo {
    has_next_page: bool,
    /// The last row's id: a cursor as cheap as one can be.
    end_cursor: Option<Uuid>,
}

#[derive(Serialize)]
struct Nodes {
    nodes: Vec<Contact>,
    #[serde(rename = "pageInfo")]
    page_info: PageInfo,
}

#[derive(Serialize)]
struct PageAnswer {
    contacts: Nodes,
}

#[derive(Serialize)]
struct Created {
    contact: Contact,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CreateAnswer {
    create_contact: Created,
}

#[derive(Serialize)]
struct Total {
    total: i64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StatsAnswer {
    contact_stats: Total,
}

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
/// `synchronous = FULL`, so both sides pay the same sync per commit.
async fn connect(url: &str) -> anyhow::Result<Db> {
    let acquire = Duration::from_secs(5);
    if url.starts_with("sqlite:") {
        let file = SqliteConnectOptions::from_str(url)?
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full);
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(acquire)
            .connect_with(file.clone())
            .await
            .context("opening the SQLite database")?;
        let read = SqlitePoolOptions::new()
            .max_connections(CONNECTIONS)
            .acquire_timeout(acquire)
            .connect_with(file.read_only(true))
            .await?;
        return Ok(Db::Sqlite { read, write });
    }
    let pool = PgPoolOptions::new()
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
