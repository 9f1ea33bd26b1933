//! The `contacts` table: one row per WhatsApp contact.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
#[sea_orm(table_name = "contacts")]
pub struct Model {
    /// UUID v7, so ids sort by creation time.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// E.164 (`+56912345678`); null only for a contact known by `whatsapp_user_id` alone (a
    /// CHECK keeps at least one of the two).
    #[sea_orm(unique)]
    pub phone_number: Option<String>,
    /// ISO 3166-1 alpha-2, upper case.
    pub country_code: Option<String>,
    pub last_whatsapp_message_at: Option<DateTimeUtc>,
    /// A JSON object whose values are strings.
    pub metadata: Json,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// The business-scoped user id (BSUID), `CC.<alphanumerics>`.
    #[sea_orm(unique)]
    pub whatsapp_user_id: Option<String>,
    /// The parent BSUID, spanning linked business portfolios.
    pub parent_whatsapp_user_id: Option<String>,
    pub whatsapp_username: Option<String>,
    pub whatsapp_profile_name: Option<String>,
    /// When the event that last set the username and profile name happened, so an older
    /// event never overwrites them.
    pub whatsapp_identity_seen_at: Option<DateTimeUtc>,
    /// The business blocked this user (Meta's block API).
    pub blocked: bool,
}

impl ActiveModelBehavior for ActiveModel {}
