//! Creates `contacts` with an index for every filter and order of the API.

use sea_orm_migration::{prelude::*, schema::*, sea_orm::DatabaseBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Contacts {
    Table,
    Id,
    PhoneNumber,
    CountryCode,
    LastWhatsappMessageAt,
    Metadata,
    CreatedAt,
    UpdatedAt,
}

/// Keyset pagination seeks on (sort column, id), so each order gets that pair.
const KEYSET_INDEXES: [(&str, Contacts); 3] = [
    ("idx_contacts_created_at_id", Contacts::CreatedAt),
    ("idx_contacts_updated_at_id", Contacts::UpdatedAt),
    (
        "idx_contacts_last_whatsapp_message_at_id",
        Contacts::LastWhatsappMessageAt,
    ),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Contacts::Table)
                    .if_not_exists()
                    .col(pk_uuid(Contacts::Id))
                    .col(string_uniq(Contacts::PhoneNumber))
                    .col(string_len_null(Contacts::CountryCode, 2))
                    .col(timestamp_with_time_zone_null(
                        Contacts::LastWhatsappMessageAt,
                    ))
                    .col(json_binary(Contacts::Metadata))
                    .col(timestamp_with_time_zone(Contacts::CreatedAt))
                    .col(timestamp_with_time_zone(Contacts::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        for (name, column) in KEYSET_INDEXES {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(Contacts::Table)
                        .col(column)
                        .col(Contacts::Id)
                        .if_not_exists()
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("idx_contacts_country_code")
                    .table(Contacts::Table)
                    .col(Contacts::CountryCode)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        if manager.get_database_backend() == DatabaseBackend::Postgres {
            // Containment (`@>`) is how the metadata filter runs on PostgreSQL.
            manager
                .get_connection()
                .execute_unprepared(
                    "CREATE INDEX IF NOT EXISTS idx_contacts_metadata \
                     ON contacts USING GIN (metadata jsonb_path_ops)",
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Contacts::Table).to_owned())
            .await
    }
}
