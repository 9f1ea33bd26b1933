//! `contact_changes`: the commit-ordered change log behind `contactChanges`, resumable
//! subscriptions and outgoing webhooks. One row per committed create, update, delete or merge,
//! written in the writing transaction; `position` only grows (SQLite: `AUTOINCREMENT`, so a
//! position is never reused even after the newest rows are pruned; PostgreSQL: an identity
//! sequence). `contact_change_horizon` holds the newest position pruned, so a cursor older
//! than the retention is recognised instead of silently skipping rows.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ContactChanges {
    Table,
    Position,
    Kind,
    ContactId,
    MergedContactId,
    Contact,
    At,
}

#[derive(DeriveIden)]
enum ContactChangeHorizon {
    Table,
    Id,
    PrunedThrough,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ContactChanges::Table)
                    .if_not_exists()
                    .col(
                        big_integer(ContactChanges::Position)
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(string(ContactChanges::Kind))
                    .col(uuid(ContactChanges::ContactId))
                    .col(uuid_null(ContactChanges::MergedContactId))
                    .col(json_null(ContactChanges::Contact))
                    .col(timestamp_with_time_zone(ContactChanges::At))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_contact_changes_at")
                    .table(ContactChanges::Table)
                    .col(ContactChanges::At)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ContactChangeHorizon::Table)
                    .if_not_exists()
                    .col(integer(ContactChangeHorizon::Id).primary_key())
                    .col(big_integer(ContactChangeHorizon::PrunedThrough))
                    .to_owned(),
            )
            .await?;
        // The one row, so pruning only ever updates it.
        manager
            .exec_stmt(
                Query::insert()
                    .into_table(ContactChangeHorizon::Table)
                    .columns([
                        ContactChangeHorizon::Id,
                        ContactChangeHorizon::PrunedThrough,
                    ])
                    .values_panic([1.into(), 0i64.into()])
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ContactChangeHorizon::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(ContactChanges::Table).to_owned())
            .await
    }
}
