//! The `contact_marketing_preferences` table: a user's last marketing opt-out or resume, for
//! one business number or for all.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "contact_marketing_preferences")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub contact_id: Uuid,
    /// Meta's `phone_number_id`; `""` for a preference that covers every number.
    #[sea_orm(primary_key, auto_increment = false)]
    pub business_phone_number_id: String,
    pub opted_out: bool,
    /// When the user made the choice; a later one replaces it, an earlier one is ignored.
    pub recorded_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
