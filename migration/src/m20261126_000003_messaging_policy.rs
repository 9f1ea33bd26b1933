//! Messaging policy: the 24-hour window per business number, marketing opt-outs per number
//! or for all, and the business's block of a user.
//!
//! `contact_whatsapp_windows` holds one row per (contact, business number) with the latest
//! inbound time; the number is `''` for events that named none (a key column: both backends
//! treat NULLs in a primary key or `ON CONFLICT` target as distinct). `contacts.
//! last_whatsapp_message_at` stays the latest over a contact's windows, so the contact-level
//! window, its index and the orders built on it are unchanged. Existing contacts get one
//! window with no number from their last message. `contact_marketing_preferences` holds the
//! last opt-out or resume per (contact, number), `''` meaning every number.

use sea_orm_migration::{prelude::*, sea_orm::DatabaseBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

fn types(backend: DatabaseBackend) -> (&'static str, &'static str, &'static str) {
    match backend {
        DatabaseBackend::Postgres => ("uuid", "timestamp with time zone", "false"),
        _ => ("uuid_text", "timestamp_with_timezone_text", "0"),
    }
}

fn statements(backend: DatabaseBackend) -> Vec<String> {
    let (uuid, time, no) = types(backend);
    vec![
        format!(
            "CREATE TABLE contact_whatsapp_windows (\
             contact_id {uuid} NOT NULL REFERENCES contacts (id) ON DELETE CASCADE, \
             business_phone_number_id varchar NOT NULL, \
             last_inbound_at {time} NOT NULL, \
             PRIMARY KEY (contact_id, business_phone_number_id))"
        ),
        // Serves "open on this number": a range on the time within one number.
        "CREATE INDEX idx_contact_whatsapp_windows_number \
         ON contact_whatsapp_windows (business_phone_number_id, last_inbound_at, contact_id)"
            .into(),
        "INSERT INTO contact_whatsapp_windows (contact_id, business_phone_number_id, \
         last_inbound_at) SELECT id, '', last_whatsapp_message_at FROM contacts \
         WHERE last_whatsapp_message_at IS NOT NULL"
            .into(),
        format!(
            "CREATE TABLE contact_marketing_preferences (\
             contact_id {uuid} NOT NULL REFERENCES contacts (id) ON DELETE CASCADE, \
             business_phone_number_id varchar NOT NULL, \
             opted_out boolean NOT NULL, \
             recorded_at {time} NOT NULL, \
             PRIMARY KEY (contact_id, business_phone_number_id))"
        ),
        // Opt-outs are few: the filter for them starts here.
        "CREATE INDEX idx_contact_marketing_preferences_opted_out \
         ON contact_marketing_preferences (business_phone_number_id, contact_id) \
         WHERE opted_out"
            .into(),
        format!("ALTER TABLE contacts ADD COLUMN blocked boolean NOT NULL DEFAULT {no}"),
        // Blocks are few: a partial index finds them without reading the table.
        "CREATE INDEX idx_contacts_blocked ON contacts (id) WHERE blocked".into(),
    ]
}

const DOWN: &[&str] = &[
    "DROP INDEX idx_contacts_blocked",
    "ALTER TABLE contacts DROP COLUMN blocked",
    "DROP TABLE contact_marketing_preferences",
    "DROP TABLE contact_whatsapp_windows",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for statement in statements(manager.get_database_backend()) {
            db.execute_unprepared(&statement).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for statement in DOWN {
            db.execute_unprepared(statement).await?;
        }
        Ok(())
    }
}
