//! A user's new phone number, as Meta announces it (a `user_changed_number` system message:
//! the number left and the new one): the contact holding the old number takes the new one.
//! Conservative: a change never merges two contacts (numbers are recycled, so another holder
//! of the new number is presumed someone else), and a change older than the contact's last
//! identity event is not applied (a replay, or a chain delivered out of order).

use chrono::{DateTime, Utc};
use entity::contact::Model;
use sea_orm::{ActiveModelTrait, DatabaseTransaction, IntoActiveModel};

use super::{
    identity,
    phone::{self, PhoneFields},
    service::change,
};
use crate::{
    error::AppResult,
    events::{ChangeKind, ContactChange},
};

/// Moves the contact holding `previous` to `next`, inside the caller's transaction. Unknown
/// to us, nothing moves: the message that announces it then names the user at `next`.
/// Invalid numbers are refused before anything is written. Nothing moves either when `at` is
/// older than the contact's last identity event (`whatsapp_identity_seen_at`: a replayed or
/// late change cannot undo a newer state). Another contact holding `next` is never merged
/// (numbers are recycled): it gives the number up only when it has a BSUID of its own to stay
/// known by and its last identity event is older than `at` (see [`releasable`]); otherwise
/// nothing moves.
pub(super) async fn apply(
    txn: &DatabaseTransaction,
    (previous, next): (&str, &str),
    at: DateTime<Utc>,
    now: DateTime<Utc>,
    changes: &mut Vec<ContactChange>,
) -> AppResult<()> {
    let fields = PhoneFields {
        phone_number: "system.wa_id",
        country_code: "system.wa_id",
    };
    let left = phone::parse_phone(previous, None, fields)?;
    let next = phone::parse_phone(next, None, fields)?;
    let Some(old) = identity::by_phone(txn, &left.e164).await? else {
        return Ok(());
    };
    if old.whatsapp_identity_seen_at.is_some_and(|seen| at < seen) {
        return Ok(());
    }
    match identity::by_phone(txn, &next.e164).await? {
        Some(holder) if holder.id == old.id => return Ok(()),
        Some(holder) if !releasable(&holder, at) => return Ok(()),
        Some(holder) => release(txn, holder, now, changes).await?,
        None => {}
    }
    changes.push(change(ChangeKind::Updated, old.id, now));
    Model {
        phone_number: Some(next.e164.clone()),
        country_code: next.country_code.clone(),
        updated_at: now,
        ..old
    }
    .into_active_model()
    .reset_all()
    .update(txn)
    .await?;
    Ok(())
}

/// Whether `holder` gives up its number to a change at `at`: it stays known by its own BSUID,
/// and it has not been seen with the number since.
fn releasable(holder: &Model, at: DateTime<Utc>) -> bool {
    holder.whatsapp_user_id.is_some() && holder.whatsapp_identity_seen_at.is_none_or(|s| s <= at)
}

/// `holder` without its phone number (recycled to the user who moved onto it).
async fn release(
    txn: &DatabaseTransaction,
    holder: Model,
    now: DateTime<Utc>,
    changes: &mut Vec<ContactChange>,
) -> AppResult<()> {
    changes.push(change(ChangeKind::Updated, holder.id, now));
    Model {
        phone_number: None,
        country_code: None,
        updated_at: now,
        ..holder
    }
    .into_active_model()
    .reset_all()
    .update(txn)
    .await?;
    Ok(())
}
