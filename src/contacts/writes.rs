//! Writes. Each runs on the write connection as one statement or one transaction, then
//! announces the change.

use chrono::{DateTime, Utc};
use entity::contact::{ActiveModel, Column, Entity, Model};
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, DbBackend, EntityTrait, IntoActiveModel, QueryFilter, QuerySelect,
    sea_query::{Expr, OnConflict},
};
use uuid::Uuid;

use super::{
    changelog,
    clock::to_storage_precision,
    identity,
    input::{self, ContactChanges, ContactInput, NewContact},
    metadata::{self, Metadata},
    phone::{self, PhoneFields},
    service::{ContactService, change},
    sql, windows,
};
use crate::{
    error::{AppError, AppResult},
    events::ChangeKind,
};

/// Tries of an upsert that lost a race for a new identity (see [`ContactService::upsert`]).
const UPSERT_ATTEMPTS: usize = 4;

/// The row `contact` makes, with the given identity and timestamps.
pub(super) fn contact_row(
    contact: &NewContact,
    id: Uuid,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
) -> Model {
    Model {
        id,
        phone_number: contact.phone.as_ref().map(|p| p.e164.clone()),
        country_code: contact.phone.as_ref().and_then(|p| p.country_code.clone()),
        last_whatsapp_message_at: contact.last_whatsapp_message_at,
        metadata: contact.metadata.clone().unwrap_or_default().to_json(),
        created_at,
        updated_at,
        whatsapp_user_id: contact.whatsapp.user_id.clone(),
        parent_whatsapp_user_id: contact.whatsapp.parent_user_id.clone(),
        whatsapp_username: contact.whatsapp.username.clone(),
        whatsapp_profile_name: contact.whatsapp.profile_name.clone(),
        // Set by inbound events only: a value written by hand yields to the next event.
        whatsapp_identity_seen_at: None,
        blocked: contact.messaging.blocked.unwrap_or(false),
    }
}

/// A new contact's row, every column set, ready to insert.
pub(super) fn new_row(contact: &NewContact, now: DateTime<Utc>) -> ActiveModel {
    contact_row(contact, Uuid::now_v7(), now, now)
        .into_active_model()
        .reset_all()
}

impl ContactService {
    pub async fn create(&self, input: ContactInput) -> AppResult<Model> {
        let now = self.now();
        let contact = NewContact::parse(input, "input", now)?;
        if contact.last_whatsapp_message_at.is_none() && self.db.backend() == DbBackend::Postgres {
            // The hot path: one statement instead of a transaction (see `create_logged`).
            let row = contact_row(&contact, Uuid::now_v7(), now, now);
            let row = changelog::create_logged(&self.db.write, row, now)
                .await
                .map_err(|err| identity::conflict(err, "input"))?;
            self.events()
                .committed(&[change(ChangeKind::Created, row.id, now)]);
            return Ok(row);
        }
        let txn = self.begin_write().await?;
        let mut row = new_row(&contact, now)
            .insert(&txn)
            .await
            .map_err(|err| identity::conflict(err, "input"))?;
        windows::written_by_hand(&txn, &mut row, contact.last_whatsapp_message_at, true).await?;
        self.commit_announcing(txn, &[change(ChangeKind::Created, row.id, now)])
            .await?;
        Ok(row)
    }

    /// Creates or updates by BSUID, else phone number; `true` when created.
    pub async fn upsert(&self, input: ContactInput) -> AppResult<(Model, bool)> {
        let now = self.now();
        let contact = NewContact::parse(input, "input", now)?;
        // Two upserts of one new BSUID may both find nothing and both insert; the loser's
        // unique violation is a CONFLICT that a second look (finding the winner's row, to
        // update) resolves. A genuine conflict stays one after the retries.
        let mut attempt = 1;
        loop {
            match self.upsert_once(&contact, now).await {
                Err(AppError::Conflict { .. }) if attempt < UPSERT_ATTEMPTS => attempt += 1,
                result => return result,
            }
        }
    }

    async fn upsert_once(
        &self,
        contact: &NewContact,
        now: DateTime<Utc>,
    ) -> AppResult<(Model, bool)> {
        let txn = self.begin_write().await?;
        let (row, created) = self.upsert_on(&txn, contact, now).await?;
        let kind = if created {
            ChangeKind::Created
        } else {
            ChangeKind::Updated
        };
        self.commit_announcing(txn, &[change(kind, row.id, now)])
            .await?;
        Ok((row, created))
    }

    pub(super) async fn upsert_on<C: sea_orm::ConnectionTrait>(
        &self,
        conn: &C,
        contact: &NewContact,
        now: DateTime<Utc>,
    ) -> AppResult<(Model, bool)> {
        let (mut row, created) = self.upsert_row(conn, contact, now).await?;
        if let Some(at) = contact.last_whatsapp_message_at {
            windows::written_by_hand(conn, &mut row, Some(at), created).await?;
        }
        Ok((row, created))
    }

    async fn upsert_row<C: sea_orm::ConnectionTrait>(
        &self,
        conn: &C,
        contact: &NewContact,
        now: DateTime<Utc>,
    ) -> AppResult<(Model, bool)> {
        let Some(phone) = contact
            .phone
            .as_ref()
            .filter(|_| contact.whatsapp.is_empty())
        else {
            return identity::upsert(conn, contact, now).await;
        };
        let row = new_row(contact, now);
        let new_id = Uuid::now_v7();
        // Absent fields keep the stored values. A stored country code agrees with the number,
        // since the row was found by that very number and every write checks the pair.
        let mut columns = vec![Column::UpdatedAt];
        if phone.country_given {
            columns.push(Column::CountryCode);
        }
        if contact.metadata.is_some() {
            columns.push(Column::Metadata);
        }
        if contact.last_whatsapp_message_at.is_some() {
            columns.push(Column::LastWhatsappMessageAt);
        }
        let on_conflict = OnConflict::column(Column::PhoneNumber)
            .update_columns(columns)
            .to_owned();
        let stored = Entity::insert(ActiveModel {
            id: Set(new_id),
            ..row
        })
        .on_conflict(on_conflict)
        .exec_with_returning(conn)
        .await?;
        // The id we generated survives only if the row is new.
        let created = stored.id == new_id;
        Ok((stored, created))
    }

    pub async fn update(&self, id: Uuid, changes: ContactChanges) -> AppResult<Model> {
        let now = self.now();
        let txn = self.begin_write().await?;
        let current = locked(&txn, id).await?;
        let mut row: ActiveModel = current.clone().into();
        apply_phone_changes(&mut row, &current, &changes)?;
        if let Some(metadata) = changes.metadata {
            let parsed = metadata
                .map(|m| Metadata::parse(&m, "input.metadata"))
                .transpose()?;
            row.metadata = Set(parsed.unwrap_or_default().to_json());
        }
        if let Some(last) = changes.last_whatsapp_message_at {
            let last = last
                .map(|at| input::message_time(at, now, "input.lastWhatsappMessageAt"))
                .transpose()?;
            row.last_whatsapp_message_at = Set(last);
        }
        row.updated_at = Set(now);
        let mut updated = row
            .update(&txn)
            .await
            .map_err(|err| identity::conflict(err, "input"))?;
        if let Some(last) = changes.last_whatsapp_message_at {
            let at = last.map(to_storage_precision);
            windows::written_by_hand(&txn, &mut updated, at, false).await?;
        }
        self.commit_announcing(txn, &[change(ChangeKind::Updated, id, now)])
            .await?;
        Ok(updated)
    }

    pub async fn delete(&self, id: Uuid) -> AppResult<Uuid> {
        let txn = self.begin_write().await?;
        let result = Entity::delete_by_id(id).exec(&txn).await?;
        if result.rows_affected == 0 {
            return Err(AppError::not_found(format!("no contact with id {id}")));
        }
        self.commit_announcing(txn, &[change(ChangeKind::Deleted, id, self.now())])
            .await?;
        Ok(id)
    }

    /// Merges `set` and removes `unset` in one UPDATE, so concurrent patches of different keys
    /// all survive; rolled back if the result breaks the key limit.
    pub async fn patch_metadata(
        &self,
        id: Uuid,
        set: Option<serde_json::Map<String, serde_json::Value>>,
        unset: Option<Vec<String>>,
    ) -> AppResult<Model> {
        let set = set
            .map(|m| Metadata::parse(&m, "set"))
            .transpose()?
            .unwrap_or_default();
        let unset = unset.unwrap_or_default();
        for key in &unset {
            metadata::check_key(key, "unset")?;
            if set.contains_key(key) {
                return Err(AppError::validation(
                    "unset",
                    format!("\"{key}\" is both set and unset"),
                ));
            }
        }
        let now = self.now();
        let txn = self.begin_write().await?;
        let merged = sql::metadata_merged(self.db.backend(), &set, &unset);
        let mut rows = Entity::update_many()
            .col_expr(Column::Metadata, merged)
            .col_expr(Column::UpdatedAt, Expr::val(now))
            .filter(Column::Id.eq(id))
            .exec_with_returning(&txn)
            .await?;
        let row = rows
            .pop()
            .ok_or_else(|| AppError::not_found(format!("no contact with id {id}")))?;
        if Metadata::from_stored(&row.metadata).len() > metadata::MAX_KEYS {
            txn.rollback().await?;
            return Err(AppError::validation(
                "set",
                format!("metadata has at most {} keys", metadata::MAX_KEYS),
            ));
        }
        self.commit_announcing(txn, &[change(ChangeKind::Updated, id, now)])
            .await?;
        Ok(row)
    }
}

/// Applies `phoneNumber` and `countryCode` changes, keeping the pair consistent.
fn apply_phone_changes(
    row: &mut ActiveModel,
    current: &Model,
    changes: &ContactChanges,
) -> AppResult<()> {
    let fields = PhoneFields {
        phone_number: "input.phoneNumber",
        country_code: "input.countryCode",
    };
    let country = changes.country_code.clone();
    match (&changes.phone_number, country) {
        // Only a contact that keeps another identity may lose its number.
        (Some(None), _) if current.whatsapp_user_id.is_some() => {
            row.phone_number = Set(None);
            row.country_code = Set(None);
            Ok(())
        }
        (Some(None), _) => Err(AppError::validation(
            "input.phoneNumber",
            "phoneNumber cannot be null for a contact without a whatsappUserId",
        )),
        (Some(Some(raw)), country) => {
            let given = country.as_ref().and_then(|c| c.as_deref());
            let parsed = phone::parse_phone(raw, given, fields)?;
            row.phone_number = Set(Some(parsed.e164));
            // Explicit null clears; otherwise given or derived from the new number.
            row.country_code = Set(if matches!(country, Some(None)) {
                None
            } else {
                parsed.country_code
            });
            Ok(())
        }
        (None, Some(Some(code))) => {
            let Some(stored) = current.phone_number.as_deref() else {
                return Err(AppError::validation(
                    "input.countryCode",
                    "a contact without a phone number has no country code",
                ));
            };
            let parsed = phone::parse_phone(stored, Some(&code), fields)?;
            row.country_code = Set(parsed.country_code);
            Ok(())
        }
        (None, Some(None)) => {
            row.country_code = Set(None);
            Ok(())
        }
        (None, None) => Ok(()),
    }
}

/// Marks the contact changed now (a change held in a side table: a window, a preference) and
/// returns its row.
pub(super) async fn touched<C: sea_orm::ConnectionTrait>(
    conn: &C,
    id: Uuid,
    now: DateTime<Utc>,
) -> AppResult<Model> {
    Entity::update_many()
        .col_expr(Column::UpdatedAt, Expr::val(now))
        .filter(Column::Id.eq(id))
        .exec_with_returning(conn)
        .await?
        .pop()
        .ok_or_else(|| AppError::not_found(format!("no contact with id {id}")))
}

/// The contact, locked for the rest of the transaction, so a concurrent merge or inbound event
/// of it goes first or after (a contact merged away meanwhile is then `NOT_FOUND`, not a
/// failed UPDATE).
pub(super) async fn locked<C: sea_orm::ConnectionTrait>(conn: &C, id: Uuid) -> AppResult<Model> {
    Entity::find_by_id(id)
        .lock_exclusive()
        .one(conn)
        .await?
        .ok_or_else(|| AppError::not_found(format!("no contact with id {id}")))
}
