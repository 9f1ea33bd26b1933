//! The `contact_previous_whatsapp_user_ids` table: BSUIDs a contact held before an identity
//! change, keyed by the old id so a late webhook carrying it still finds the contact.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "contact_previous_whatsapp_user_ids")]
pub struct Model {
    /// The replaced BSUID.
    #[sea_orm(primary_key, auto_increment = false)]
    pub whatsapp_user_id: String,
    pub contact_id: Uuid,
    /// When the contact moved to its next BSUID.
    pub replaced_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
