//! The `contacts` table: one row per WhatsApp contact.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "contacts")]
pub struct Model {
    /// UUID v7, so ids sort by creation time.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// E.164 (`+56912345678`).
    #[sea_orm(unique)]
    pub phone_number: String,
    /// ISO 3166-1 alpha-2, upper case.
    pub country_code: Option<String>,
    pub last_whatsapp_message_at: Option<DateTimeUtc>,
    /// A JSON object whose values are strings.
    pub metadata: Json,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
