//! The `contact_whatsapp_windows` table: a contact's 24-hour window on one business number.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "contact_whatsapp_windows")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub contact_id: Uuid,
    /// Meta's `phone_number_id` of the business number; `""` for events that named none.
    #[sea_orm(primary_key, auto_increment = false)]
    pub business_phone_number_id: String,
    /// The latest inbound message or call on this number; only moves forward.
    pub last_inbound_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
