//! The `contact_counters` table: stripes whose deltas sum to the number of contacts, kept by
//! triggers on `contacts` (see the migration).

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "contact_counters")]
pub struct Model {
    /// 0 on SQLite; 0–31 on PostgreSQL, a writer's backend picking one.
    #[sea_orm(primary_key, auto_increment = false)]
    pub stripe: i32,
    /// Contacts inserted minus contacts deleted through this stripe (may be negative).
    pub delta: i64,
}

impl ActiveModelBehavior for ActiveModel {}
