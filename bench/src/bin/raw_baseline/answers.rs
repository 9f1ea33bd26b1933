//! The raw baseline's rows and answers: typed structs sqlx decodes and serde serialises, in
//! the JSON shapes of the GraphQL operations they stand for.

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::{FromRow, Row, postgres::PgRow, sqlite::SqliteRow, types::Json as SqlJson};
use uuid::Uuid;

/// WhatsApp's customer-service window after the contact's last message.
pub const WINDOW: TimeDelta = TimeDelta::hours(24);

/// A contact with every field of the GraphQL `Contact` type.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Contact {
    pub id: Uuid,
    pub phone_number: Option<String>,
    pub country_code: Option<String>,
    pub last_whatsapp_message_at: Option<DateTime<Utc>>,
    /// Set by the handler, which knows the request's instant.
    pub whatsapp_window_open: bool,
    pub whatsapp_window_expires_at: Option<DateTime<Utc>>,
    pub metadata: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Contact {
    /// The contact as seen at `now`: whether its window is still open.
    pub fn at(mut self, now: DateTime<Utc>) -> Self {
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
pub struct LookupAnswer {
    pub contact_by_phone_number: Option<Contact>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PageInfo {
    pub has_next_page: bool,
    /// The last row's id: a cursor as cheap as one can be.
    pub end_cursor: Option<Uuid>,
}

#[derive(Serialize)]
pub struct Nodes {
    pub nodes: Vec<Contact>,
    #[serde(rename = "pageInfo")]
    pub page_info: PageInfo,
}

#[derive(Serialize)]
pub struct PageAnswer {
    pub contacts: Nodes,
}

#[derive(Serialize)]
pub struct Created {
    pub contact: Contact,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateAnswer {
    pub create_contact: Created,
}

#[derive(Serialize)]
pub struct Total {
    pub total: i64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatsAnswer {
    pub contact_stats: Total,
}
