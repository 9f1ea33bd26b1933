//! Finding a contact by its WhatsApp identity (BSUID first, then phone number), and the
//! upsert of `upsertContact`/`importContacts` for input that carries a BSUID.

use chrono::{DateTime, Utc};
use entity::{
    contact::{ActiveModel, Column, Entity, Model},
    previous_whatsapp_user_id as previous,
};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel,
    QueryFilter, QuerySelect, sea_query::OnConflict,
};
use uuid::Uuid;

use super::{input::NewContact, writes::contact_row};
use crate::error::{AppError, AppResult};

/// The contacts an identity names: by BSUID (current or replaced), and by phone number.
#[derive(Debug, Default)]
pub struct Matches {
    pub by_user_id: Option<Model>,
    pub by_phone: Option<Model>,
}

/// The contact holding `user_id` now, else the one that held it before an identity change.
/// Locked (`FOR UPDATE`) on PostgreSQL, so a concurrent write of it waits; SQLite has one
/// writer, so its transactions never interleave.
pub async fn by_user_id<C: ConnectionTrait>(conn: &C, user_id: &str) -> AppResult<Option<Model>> {
    find_user_id(conn, user_id, true).await
}

/// [`by_user_id`], locking the row only when `lock` (reads outside a write take no lock).
pub async fn find_user_id<C: ConnectionTrait>(
    conn: &C,
    user_id: &str,
    lock: bool,
) -> AppResult<Option<Model>> {
    let locked = |select: sea_orm::Select<Entity>| {
        if lock {
            select.lock_exclusive()
        } else {
            select
        }
    };
    let current = locked(Entity::find().filter(Column::WhatsappUserId.eq(user_id)))
        .one(conn)
        .await?;
    if current.is_some() {
        return Ok(current);
    }
    let Some(old) = previous::Entity::find_by_id(user_id.to_owned())
        .one(conn)
        .await?
    else {
        return Ok(None);
    };
    Ok(locked(Entity::find_by_id(old.contact_id)).one(conn).await?)
}

/// The contact with this E.164 number, locked like [`by_user_id`].
pub async fn by_phone<C: ConnectionTrait>(conn: &C, e164: &str) -> AppResult<Option<Model>> {
    Ok(Entity::find()
        .filter(Column::PhoneNumber.eq(e164))
        .lock_exclusive()
        .one(conn)
        .await?)
}

/// Both lookups of an identity.
pub async fn find<C: ConnectionTrait>(
    conn: &C,
    user_id: Option<&str>,
    e164: Option<&str>,
) -> AppResult<Matches> {
    let by_user_id = match user_id {
        Some(id) => by_user_id(conn, id).await?,
        None => None,
    };
    let by_phone = match e164 {
        Some(phone) => by_phone(conn, phone).await?,
        None => None,
    };
    Ok(Matches {
        by_user_id,
        by_phone,
    })
}

/// Records that `contact_id` held `old` until `at`, so events carrying it still find the
/// contact; nothing when `old` is already recorded (a replay).
pub async fn remember_previous<C: ConnectionTrait>(
    conn: &C,
    old: &str,
    contact_id: Uuid,
    at: DateTime<Utc>,
) -> AppResult<()> {
    let row = previous::ActiveModel {
        whatsapp_user_id: Set(old.to_owned()),
        contact_id: Set(contact_id),
        replaced_at: Set(at),
    };
    let on_conflict = OnConflict::column(previous::Column::WhatsappUserId)
        .do_nothing()
        .to_owned();
    previous::Entity::insert(row)
        .on_conflict(on_conflict)
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// True when `user_id` was left behind by an identity change and nobody holds it now.
pub async fn is_replaced<C: ConnectionTrait>(conn: &C, user_id: &str) -> AppResult<bool> {
    let held = Entity::find()
        .filter(Column::WhatsappUserId.eq(user_id))
        .one(conn)
        .await?;
    if held.is_some() {
        return Ok(false);
    }
    let found = previous::Entity::find_by_id(user_id.to_owned())
        .one(conn)
        .await?;
    Ok(found.is_some())
}

/// When `user_id` was left behind (by an identity change or a merge), if it was.
pub async fn replaced_at<C: ConnectionTrait>(
    conn: &C,
    user_id: &str,
) -> AppResult<Option<DateTime<Utc>>> {
    let found = previous::Entity::find_by_id(user_id.to_owned())
        .one(conn)
        .await?;
    Ok(found.map(|row| row.replaced_at))
}

/// Drops `user_id` from the replaced BSUIDs: a contact holds it (again) now.
pub async fn forget_previous<C: ConnectionTrait>(conn: &C, user_id: &str) -> AppResult<()> {
    previous::Entity::delete_by_id(user_id.to_owned())
        .exec(conn)
        .await?;
    Ok(())
}

/// A unique violation on the BSUID or the phone number, as `CONFLICT` on the field it names.
pub fn conflict(err: sea_orm::DbErr, prefix: &str) -> AppError {
    let on_user_id = err.to_string().contains("whatsapp_user_id");
    let (field, message) = if on_user_id {
        (
            "whatsappUserId",
            "a contact with this WhatsApp user id already exists",
        )
    } else {
        (
            "phoneNumber",
            "a contact with this phone number already exists",
        )
    };
    AppError::from_db_with_conflict(err, &super::input::path(prefix, field), message)
}

/// Upserts a contact carrying a BSUID: the contact with that BSUID, else the one with that
/// phone number, is updated (absent fields keep stored values); otherwise one is created.
/// A BSUID and a number naming two different contacts, or a number whose contact holds
/// another BSUID, is `CONFLICT`: only inbound events (`recordWhatsappInbound`) merge or move
/// identities, since only they prove two identities are one person.
pub async fn upsert<C: ConnectionTrait>(
    conn: &C,
    contact: &NewContact,
    now: DateTime<Utc>,
) -> AppResult<(Model, bool)> {
    let e164 = contact.phone.as_ref().map(|p| p.e164.as_str());
    let found = find(conn, contact.whatsapp.user_id.as_deref(), e164).await?;
    let current = match (found.by_user_id, found.by_phone) {
        (Some(a), Some(b)) if a.id != b.id => {
            return Err(AppError::conflict(
                "input.phoneNumber",
                "this phone number belongs to another contact than this whatsappUserId",
            ));
        }
        (Some(a), _) => a,
        (None, Some(b)) if b.whatsapp_user_id.is_some() => {
            return Err(AppError::conflict(
                "input.whatsappUserId",
                "the contact with this phone number has another whatsappUserId",
            ));
        }
        (None, Some(b)) => b,
        (None, None) => {
            let row = contact_row(contact, Uuid::now_v7(), now, now)
                .into_active_model()
                .reset_all()
                .insert(conn)
                .await
                .map_err(|err| conflict(err, "input"))?;
            return Ok((row, true));
        }
    };
    let row = updated(current, contact, now)
        .update(conn)
        .await
        .map_err(|err| conflict(err, "input"))?;
    Ok((row, false))
}

/// `current` with the given fields of `contact` written over it.
fn updated(current: Model, contact: &NewContact, now: DateTime<Utc>) -> ActiveModel {
    let new_number = contact
        .phone
        .as_ref()
        .is_some_and(|p| current.phone_number.as_deref() != Some(p.e164.as_str()));
    let mut row: ActiveModel = current.into();
    if let Some(phone) = &contact.phone {
        row.phone_number = Set(Some(phone.e164.clone()));
        // A stored code agrees with the stored number; a new number brings its own.
        if phone.country_given || new_number {
            row.country_code = Set(phone.country_code.clone());
        }
    }
    let ids = &contact.whatsapp;
    if let Some(id) = &ids.user_id {
        row.whatsapp_user_id = Set(Some(id.clone()));
    }
    if let Some(parent) = &ids.parent_user_id {
        row.parent_whatsapp_user_id = Set(Some(parent.clone()));
    }
    if let Some(name) = &ids.username {
        row.whatsapp_username = Set(Some(name.clone()));
    }
    if let Some(name) = &ids.profile_name {
        row.whatsapp_profile_name = Set(Some(name.clone()));
    }
    if let Some(metadata) = &contact.metadata {
        row.metadata = Set(metadata.to_json());
    }
    if let Some(at) = contact.last_whatsapp_message_at {
        row.last_whatsapp_message_at = Set(Some(at));
    }
    if let Some(blocked) = contact.messaging.blocked {
        row.blocked = Set(blocked);
    }
    row.updated_at = Set(now);
    row
}

/// Attempts of a write when concurrent writers of the same person collide.
const WRITE_RACE_ATTEMPTS: usize = 8;

/// Runs `write` (a whole transaction) again while it loses a race with a concurrent writer
/// of the same person ([`is_write_race`]), up to [`WRITE_RACE_ATTEMPTS`] times.
pub async fn retrying_write_races<T, F, Fut>(mut write: F) -> AppResult<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = AppResult<T>>,
{
    let mut attempt = 1;
    loop {
        match write().await {
            Err(err) if attempt < WRITE_RACE_ATTEMPTS && is_write_race(&err) => attempt += 1,
            result => return result,
        }
    }
}

/// A write that lost a race with a concurrent writer of the same person and may succeed
/// when tried again: a unique violation (the other inserted the identity first), a deadlock
/// or a serialization failure. The database error is only available as text once
/// converted, so the stable messages of both backends are matched.
pub fn is_write_race(err: &AppError) -> bool {
    let AppError::Internal(detail) = err else {
        return false;
    };
    [
        "duplicate key value violates unique constraint",
        "UNIQUE constraint failed",
        "deadlock detected",
        "could not serialize access",
    ]
    .iter()
    .any(|pattern| detail.contains(pattern))
}
