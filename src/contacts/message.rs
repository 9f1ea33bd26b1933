//! `recordWhatsappMessage`: the phone-number-only inbound message, one statement.

use chrono::{DateTime, Utc};
use entity::contact::{ActiveModel, Column, Entity, Model};
use sea_orm::{
    ActiveValue::Set,
    EntityTrait,
    sea_query::{Expr, OnConflict},
};
use uuid::Uuid;

use super::{
    clock::to_storage_precision,
    input::{self, NewContact},
    phone::{self, PhoneFields},
    service::{ContactService, change},
    windows,
    writes::{new_row, touched},
};
use crate::{error::AppResult, events::ChangeKind};

/// Keeps the later of the stored and the incoming message time, so late or repeated webhook
/// deliveries never move it backwards.
const LATEST_MESSAGE: &str = "CASE WHEN contacts.last_whatsapp_message_at IS NULL \
     OR contacts.last_whatsapp_message_at < excluded.last_whatsapp_message_at \
     THEN excluded.last_whatsapp_message_at ELSE contacts.last_whatsapp_message_at END";
const UPDATED_IF_LATER: &str = "CASE WHEN contacts.last_whatsapp_message_at IS NULL \
     OR contacts.last_whatsapp_message_at < excluded.last_whatsapp_message_at \
     THEN excluded.updated_at ELSE contacts.updated_at END";

impl ContactService {
    /// An inbound WhatsApp message: creates the contact if needed and moves
    /// `lastWhatsappMessageAt` forward only, in one statement.
    pub async fn record_message(
        &self,
        raw_phone: &str,
        country_code: Option<&str>,
        received_at: Option<DateTime<Utc>>,
    ) -> AppResult<Model> {
        let now = self.now();
        let fields = PhoneFields {
            phone_number: "phoneNumber",
            country_code: "countryCode",
        };
        let phone = phone::parse_phone(raw_phone, country_code, fields)?;
        let at = match received_at {
            Some(at) => input::message_time(at, now, "receivedAt")?,
            None => to_storage_precision(now),
        };
        let contact = NewContact {
            phone: Some(phone),
            whatsapp: Default::default(),
            metadata: None,
            last_whatsapp_message_at: Some(at),
            messaging: Default::default(),
        };
        let new_id = Uuid::now_v7();
        let on_conflict = OnConflict::column(Column::PhoneNumber)
            .value(Column::LastWhatsappMessageAt, Expr::cust(LATEST_MESSAGE))
            .value(Column::UpdatedAt, Expr::cust(UPDATED_IF_LATER))
            .to_owned();
        let txn = self.begin_write().await?;
        let mut row = Entity::insert(ActiveModel {
            id: Set(new_id),
            ..new_row(&contact, now)
        })
        .on_conflict(on_conflict)
        .exec_with_returning(&txn)
        .await?;
        // A stale or repeated delivery changes nothing, so it announces nothing.
        let mut changes = if row.id == new_id {
            vec![change(ChangeKind::Created, row.id, now)]
        } else if row.updated_at == now {
            vec![change(ChangeKind::Updated, row.id, now)]
        } else {
            Vec::new()
        };
        // Later than the window of events naming no number, not the latest on any number.
        if windows::advance(&txn, row.id, windows::UNNAMED, at).await? && changes.is_empty() {
            row = touched(&txn, row.id, now).await?;
            changes.push(change(ChangeKind::Updated, row.id, now));
        }
        self.commit_announcing(txn, &changes).await?;
        Ok(row)
    }
}
