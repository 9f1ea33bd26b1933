//! Schema migrations, applied at start-up by the server.

pub use sea_orm_migration::{MigrationStatus, prelude::*};

mod m20261125_000001_create_contacts;
mod m20261126_000001_collate_contacts;
mod m20261126_000002_whatsapp_identity;
mod m20261126_000003_messaging_policy;
mod m20261126_000004_webhook_deliveries;
mod m20261126_000005_order_indexes;
mod m20261126_000006_change_log;
mod m20261126_000007_webhook_positions;
mod m20261126_000008_contact_counters;
mod m20261126_000009_sqlite_metadata_entries;
mod m20261127_000001_change_log_order;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261125_000001_create_contacts::Migration),
            Box::new(m20261126_000001_collate_contacts::Migration),
            Box::new(m20261126_000002_whatsapp_identity::Migration),
            Box::new(m20261126_000003_messaging_policy::Migration),
            Box::new(m20261126_000004_webhook_deliveries::Migration),
            Box::new(m20261126_000005_order_indexes::Migration),
            Box::new(m20261126_000006_change_log::Migration),
            Box::new(m20261126_000007_webhook_positions::Migration),
            Box::new(m20261126_000008_contact_counters::Migration),
            Box::new(m20261126_000009_sqlite_metadata_entries::Migration),
            Box::new(m20261127_000001_change_log_order::Migration),
        ]
    }
}
