//! The `webhook_deliveries` table: Meta event ids the WhatsApp webhook has recorded, so a
//! redelivery of one is recognised and changes nothing.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_deliveries")]
pub struct Model {
    /// Meta's id of the event (`wamid…` of a message, `call:wacid…` of a call).
    #[sea_orm(primary_key, auto_increment = false)]
    pub event_id: String,
    /// When it was first recorded (the service's clock); rows past the retention go.
    pub seen_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
