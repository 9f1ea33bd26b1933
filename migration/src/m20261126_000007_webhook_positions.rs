//! `webhook_positions`: where each outgoing webhook endpoint (`WEBHOOK_URLS`) stands in the
//! change log, and which instance may deliver to it. One row per endpoint, keyed by the
//! SHA-256 of its URL (the URL itself may carry a token, so only its origin is kept). The
//! lease (`holder`, `lease_until_ms`) makes instances sharing a database take turns: a row is
//! only ever updated by the holder of an unexpired lease or to take an expired one.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum WebhookPositions {
    Table,
    Endpoint,
    Origin,
    Position,
    Holder,
    LeaseUntilMs,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(WebhookPositions::Table)
                    .if_not_exists()
                    .col(string_len(WebhookPositions::Endpoint, 64).primary_key())
                    .col(string(WebhookPositions::Origin))
                    .col(big_integer(WebhookPositions::Position).default(0))
                    .col(string_null(WebhookPositions::Holder))
                    .col(big_integer(WebhookPositions::LeaseUntilMs).default(0))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(WebhookPositions::Table).to_owned())
            .await
    }
}
