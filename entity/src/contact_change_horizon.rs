//! The `contact_change_horizon` table: one row, the newest change-log position pruned.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "contact_change_horizon")]
pub struct Model {
    /// Always 1.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: i32,
    /// Cursors before this position are expired: rows after them may be gone.
    pub pruned_through: i64,
}

impl ActiveModelBehavior for ActiveModel {}
