//! `webhook_deliveries`: the Meta event ids (message `wamid…`, call `wacid…`) the WhatsApp
//! webhook has recorded, so a redelivery of one changes nothing. Keyed by the id; rows older
//! than the retention are deleted by the server (indexed by `seen_at` for that).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum WebhookDeliveries {
    Table,
    EventId,
    SeenAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(WebhookDeliveries::Table)
                    .if_not_exists()
                    .col(string(WebhookDeliveries::EventId).primary_key())
                    .col(timestamp_with_time_zone(WebhookDeliveries::SeenAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_webhook_deliveries_seen_at")
                    .table(WebhookDeliveries::Table)
                    .col(WebhookDeliveries::SeenAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(WebhookDeliveries::Table).to_owned())
            .await
    }
}
