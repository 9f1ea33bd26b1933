//! The `contact_changes` table: the commit-ordered change log (see `contacts::changelog`).

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "contact_changes")]
pub struct Model {
    /// Grows in commit order; never reused.
    #[sea_orm(primary_key)]
    pub position: i64,
    /// `CREATED`, `UPDATED`, `DELETED` or `MERGED`.
    pub kind: String,
    /// The contact changed; for a merge, the survivor.
    pub contact_id: Uuid,
    /// For a merge: the contact absorbed (and deleted).
    pub merged_contact_id: Option<Uuid>,
    /// The contact as the writing transaction left it (a serialised `contact::Model`); null
    /// for a delete.
    pub contact: Option<Json>,
    /// When the change was committed: the service's clock, never earlier than the change
    /// before it (see `contacts::changelog`).
    pub at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
