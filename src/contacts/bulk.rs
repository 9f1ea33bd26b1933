//! Bulk writes and reads for the command line: batches of upserts in one transaction with
//! multi-row statements, and an export read in id order, one chunk at a time.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::contact::{Column, Entity, Model};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, QuerySelect, Statement, sea_query::OnConflict,
};
use uuid::Uuid;

use super::{
    filter::ContactFilter,
    identity,
    input::NewContact,
    messaging_state,
    reads::messaging_rows_on,
    service::{ContactService, change},
    windows,
    writes::contact_row,
};
use crate::{error::AppResult, events::ChangeKind};

/// Rows per multi-row statement and per transaction: well under SQLite's and PostgreSQL's
/// bound-parameter limits (7 per row).
pub const BATCH_ROWS: usize = 1000;

/// What one batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchReport {
    pub created: usize,
    pub updated: usize,
    /// Rows equal to what was stored: not written at all, so re-running an import is a no-op.
    pub unchanged: usize,
}

impl BatchReport {
    pub fn add(&mut self, other: Self) {
        self.created += other.created;
        self.updated += other.updated;
        self.unchanged += other.unchanged;
    }
}

impl ContactService {
    /// Upserts `contacts` by phone number in one transaction. The phone numbers must be
    /// distinct (one statement cannot change a row twice). Like `upsertContact`, a missing
    /// country code, `metadata` or message time keeps the stored one.
    pub async fn upsert_batch(&self, contacts: &[NewContact]) -> AppResult<BatchReport> {
        let mut report = BatchReport::default();
        if contacts.is_empty() {
            return Ok(report);
        }
        let now = self.now();
        let txn = self.begin_write().await?;
        // Rows carrying a WhatsApp identity are matched by BSUID first, one at a time.
        let (by_phone, by_identity): (Vec<_>, Vec<_>) = contacts
            .iter()
            .partition(|contact| contact.phone.is_some() && contact.whatsapp.is_empty());
        let phones = by_phone
            .iter()
            .filter_map(|contact| Some(contact.phone.as_ref()?.e164.clone()));
        let stored: HashMap<String, Model> = Entity::find()
            .filter(Column::PhoneNumber.is_in(phones))
            .all(&txn)
            .await?
            .into_iter()
            .filter_map(|row| Some((row.phone_number.clone()?, row)))
            .collect();
        // The stored windows and choices of the rows whose file gives theirs, to tell an
        // unchanged row from a changed one.
        let given: Vec<_> = by_phone
            .iter()
            .filter(|contact| !contact.messaging.is_empty())
            .filter_map(|contact| stored.get(&contact.phone.as_ref()?.e164).map(|row| row.id))
            .collect();
        let stored_messaging = messaging_rows_on(&txn, &given).await?;
        // The messaging state to write: (id, state, lastWhatsappMessageAt).
        let mut states = Vec::new();
        let mut rows = Vec::with_capacity(contacts.len());
        let mut changes = Vec::with_capacity(contacts.len());
        // The message times written by hand, for the windows: (id, at, created).
        let mut message_times = Vec::new();
        for contact in by_phone {
            let Some(phone) = &contact.phone else {
                continue;
            };
            let Some(current) = stored.get(&phone.e164) else {
                let row = contact_row(contact, Uuid::now_v7(), now, now);
                let last = contact.last_whatsapp_message_at;
                if !contact.messaging.is_empty() {
                    states.push((row.id, &contact.messaging, last));
                }
                if let (None, Some(at)) = (&contact.messaging.windows, last) {
                    message_times.push((row.id, at, true));
                }
                changes.push(change(ChangeKind::Created, row.id, now));
                rows.push(row.into_active_model().reset_all());
                report.created += 1;
                continue;
            };
            let wanted = Model {
                country_code: if phone.country_given {
                    phone.country_code.clone()
                } else {
                    current.country_code.clone()
                },
                metadata: contact
                    .metadata
                    .as_ref()
                    .map_or_else(|| current.metadata.clone(), |m| m.to_json()),
                last_whatsapp_message_at: contact
                    .last_whatsapp_message_at
                    .or(current.last_whatsapp_message_at),
                blocked: contact.messaging.blocked.unwrap_or(current.blocked),
                ..contact_row(contact, current.id, current.created_at, current.updated_at)
            };
            let last = contact.last_whatsapp_message_at;
            let messaging_same = contact.messaging.is_empty()
                || contact.messaging.matches(
                    last,
                    &stored_messaging
                        .get(&current.id)
                        .cloned()
                        .unwrap_or_default(),
                );
            // With windows given, the contact-level time is theirs (compared there).
            let row_same = if contact.messaging.windows.is_some() {
                Model {
                    last_whatsapp_message_at: current.last_whatsapp_message_at,
                    ..wanted.clone()
                } == *current
            } else {
                wanted == *current
            };
            if row_same && messaging_same {
                report.unchanged += 1;
                continue;
            }
            changes.push(change(ChangeKind::Updated, current.id, now));
            if !contact.messaging.is_empty() {
                states.push((current.id, &contact.messaging, last));
            }
            if let (None, Some(at)) = (&contact.messaging.windows, last) {
                message_times.push((current.id, at, false));
            }
            rows.push(
                Model {
                    updated_at: now,
                    ..wanted
                }
                .into_active_model()
                .reset_all(),
            );
            report.updated += 1;
        }
        if !rows.is_empty() {
            let on_conflict = OnConflict::column(Column::PhoneNumber)
                .update_columns([
                    Column::CountryCode,
                    Column::Metadata,
                    Column::LastWhatsappMessageAt,
                    Column::Blocked,
                    Column::UpdatedAt,
                ])
                .to_owned();
            Entity::insert_many(rows)
                .on_conflict(on_conflict)
                .exec_without_returning(&txn)
                .await?;
        }
        windows::written_by_hand_many(&txn, &message_times).await?;
        for contact in by_identity {
            let (mut row, created) = identity::upsert(&txn, contact, now).await?;
            let last = contact.last_whatsapp_message_at;
            if !contact.messaging.is_empty() {
                states.push((row.id, &contact.messaging, last));
            }
            if let (None, Some(at)) = (&contact.messaging.windows, last) {
                windows::written_by_hand(&txn, &mut row, Some(at), created).await?;
            }
            let kind = if created {
                report.created += 1;
                ChangeKind::Created
            } else {
                report.updated += 1;
                ChangeKind::Updated
            };
            changes.push(change(kind, row.id, now));
        }
        messaging_state::replace_many(&txn, &states).await?;
        self.commit_announcing(txn, &changes).await?;
        Ok(report)
    }

    /// Every metadata key in use, sorted: the columns of a CSV export.
    pub async fn metadata_keys(&self) -> AppResult<Vec<String>> {
        let sql = match self.db().backend() {
            DbBackend::Postgres => {
                "SELECT DISTINCT jsonb_object_keys(metadata) AS key FROM contacts ORDER BY key"
            }
            _ => {
                "SELECT DISTINCT j.key AS key FROM contacts, json_each(contacts.metadata) AS j \
                  ORDER BY key"
            }
        };
        let rows = self
            .db()
            .read
            .query_all_raw(Statement::from_string(self.db().backend(), sql))
            .await?;
        Ok(rows
            .iter()
            .map(|row| row.try_get::<String>("", "key"))
            .collect::<Result<_, _>>()?)
    }

    /// Up to `limit` contacts matching `filter` with an id after `after`, in id order: an
    /// export reads chunk after chunk, in constant memory, without holding a transaction open.
    pub async fn export_chunk(
        &self,
        filter: &ContactFilter,
        now: DateTime<Utc>,
        after: Option<Uuid>,
        limit: u64,
    ) -> AppResult<Vec<Model>> {
        let mut query = Entity::find().filter(filter.condition(self.db().backend(), now));
        if let Some(after) = after {
            query = query.filter(Column::Id.gt(after));
        }
        Ok(query
            .order_by_asc(Column::Id)
            .limit(limit)
            .all(&self.db().read)
            .await?)
    }
}
