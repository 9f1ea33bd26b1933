//! The benchmark's yardstick: plain axum handlers that call the same domain service (so the
//! same SQL) and return the same JSON as the GraphQL operations, without GraphQL. Built only
//! for the benchmark; never shipped.
//!
//!   DATABASE_URL=… PORT=… bench-baseline

use std::{net::SocketAddr, sync::Arc};

use axum::{Json, Router, extract::State, http::StatusCode, routing::post};
use chrono::{DateTime, SecondsFormat, Utc};
use contacts_server::{
    config::DatabaseArgs,
    contacts::{
        ContactService,
        clock::SystemClock,
        filter::{ContactFilter, FilterInput},
        input::ContactInput,
        order::{ContactOrder, Direction, OrderField},
        page::{PageArgs, PageSpec},
        policy, window,
    },
    db::Db,
    events,
};
use entity::contact::Model;
use serde::Deserialize;
use serde_json::{Value, json};

/// The same allocator as contacts-server, so the ratio measures GraphQL, not malloc.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

type Answer = Result<Json<Value>, (StatusCode, String)>;

#[derive(Deserialize)]
struct Phone {
    phone: String,
}

#[derive(Deserialize)]
struct After {
    after: Option<String>,
}

fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// A contact as the GraphQL `Contact` type serialises it, every field.
fn contact(row: &Model, now: DateTime<Utc>) -> Value {
    json!({
        "id": row.id.to_string(),
        "phoneNumber": row.phone_number,
        "countryCode": row.country_code,
        "lastWhatsappMessageAt": row.last_whatsapp_message_at.map(time),
        "whatsappWindowOpen": window::is_open(row.last_whatsapp_message_at, now),
        "whatsappWindowExpiresAt": window::expires_at(row.last_whatsapp_message_at).map(time),
        "metadata": row.metadata,
        "createdAt": time(row.created_at),
        "updatedAt": time(row.updated_at),
    })
}

fn failed(err: contacts_server::error::AppError) -> (StatusCode, String) {
    (StatusCode::BAD_REQUEST, err.public_message())
}

async fn lookup(State(service): State<Arc<ContactService>>, Json(body): Json<Phone>) -> Answer {
    let now = service.now();
    let found = service
        .get_by_phone(&body.phone, None)
        .await
        .map_err(failed)?;
    Ok(Json(
        json!({ "contactByPhoneNumber": found.map(|row| contact(&row, now)) }),
    ))
}

async fn page(
    service: &ContactService,
    filter: FilterInput,
    order: ContactOrder,
    after: Option<String>,
) -> Answer {
    let now = service.now();
    let filter = ContactFilter::parse(filter, "filter").map_err(failed)?;
    let spec = PageSpec::parse(
        PageArgs {
            first: Some(50),
            after,
            ..PageArgs::default()
        },
        order,
    )
    .map_err(failed)?;
    let page = service.list(&filter, &spec, now).await.map_err(failed)?;
    let nodes: Vec<Value> = page.rows.iter().map(|row| contact(row, now)).collect();
    let end = page.rows.last().map(|row| page.cursor_of(row));
    Ok(Json(json!({ "contacts": {
        "nodes": nodes,
        "pageInfo": { "hasNextPage": page.has_next_page, "endCursor": end },
    } })))
}

async fn open_windows(State(service): State<Arc<ContactService>>) -> Answer {
    let filter = FilterInput {
        whatsapp_window_open: Some(true),
        ..FilterInput::default()
    };
    let order = ContactOrder {
        field: OrderField::LastWhatsappMessageAt,
        direction: Direction::Desc,
    };
    page(&service, filter, order, None).await
}

#[derive(Deserialize)]
struct Number {
    number: String,
}

/// The open windows on one business number, each contact with that number's window, as the
/// GraphQL operation selects it (`openOnNumber`): the page, then its windows in one query.
async fn open_windows_on_number(
    State(service): State<Arc<ContactService>>,
    Json(body): Json<Number>,
) -> Answer {
    let now = service.now();
    let filter = FilterInput {
        whatsapp_window_open: Some(true),
        business_phone_number_id: Some(body.number.clone()),
        ..FilterInput::default()
    };
    let filter = ContactFilter::parse(filter, "filter").map_err(failed)?;
    let order = ContactOrder {
        field: OrderField::LastWhatsappMessageAt,
        direction: Direction::Desc,
    };
    let args = PageArgs {
        first: Some(50),
        ..PageArgs::default()
    };
    let spec = PageSpec::parse(args, order).map_err(failed)?;
    let page = service.list(&filter, &spec, now).await.map_err(failed)?;
    let ids: Vec<_> = page.rows.iter().map(|row| row.id).collect();
    let windows = service.windows_of(&ids).await.map_err(failed)?;
    let nodes: Vec<Value> = page
        .rows
        .iter()
        .map(|row| {
            let mut node = contact(row, now);
            let rows = windows.get(&row.id).map_or(&[][..], Vec::as_slice);
            node["openOnNumber"] = json!(policy::window_open(rows, Some(&body.number), now));
            node
        })
        .collect();
    let end = page.rows.last().map(|row| page.cursor_of(row));
    Ok(Json(json!({ "contacts": {
        "nodes": nodes,
        "pageInfo": { "hasNextPage": page.has_next_page, "endCursor": end },
    } })))
}

async fn walk(State(service): State<Arc<ContactService>>, Json(body): Json<After>) -> Answer {
    page(
        &service,
        FilterInput::default(),
        ContactOrder::default(),
        body.after,
    )
    .await
}

async fn create(State(service): State<Arc<ContactService>>, Json(body): Json<Phone>) -> Answer {
    let now = service.now();
    let input = ContactInput {
        phone_number: Some(body.phone),
        ..ContactInput::default()
    };
    let row = service.create(input).await.map_err(failed)?;
    Ok(Json(
        json!({ "createContact": { "contact": contact(&row, now) } }),
    ))
}

async fn record(State(service): State<Arc<ContactService>>, Json(body): Json<Phone>) -> Answer {
    let now = service.now();
    let row = service
        .record_message(&body.phone, None, None)
        .await
        .map_err(failed)?;
    Ok(Json(
        json!({ "recordWhatsappMessage": { "contact": contact(&row, now) } }),
    ))
}

async fn stats(State(service): State<Arc<ContactService>>) -> Answer {
    let now = service.now();
    let filter = ContactFilter::default();
    let stats = service.stats(&filter, now).await.map_err(failed)?;
    Ok(Json(json!({ "contactStats": {
        "total": stats.total,
        "whatsappWindowOpen": stats.whatsapp_window_open,
    } })))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let database = DatabaseArgs {
        url: std::env::var("DATABASE_URL")?,
        max_connections: 8,
        acquire_timeout_secs: 5,
        statement_timeout_secs: 15,
        ping_after_idle_ms: 500,
    };
    let db = Db::connect(&database.options()).await?;
    db.migrate().await?;
    let events = events::start(&db, &database.url).await?;
    let service = Arc::new(ContactService::new(db, Arc::new(SystemClock), events));
    let app = Router::new()
        .route("/lookup", post(lookup))
        .route("/open-windows", post(open_windows))
        .route("/open-windows-number", post(open_windows_on_number))
        .route("/page", post(walk))
        .route("/create", post(create))
        .route("/record", post(record))
        .route("/stats", post(stats))
        .with_state(service);
    let port: u16 = std::env::var("PORT")?.parse()?;
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
