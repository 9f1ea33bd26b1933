//! A user's new phone number, as Meta announces it (a `user_changed_number` system message:
//! the number left and the new one): the contact holding the old number takes the new one.
//! When another contact already holds the new number, the two are one person and are merged.

use chrono::{DateTime, Utc};
use entity::contact::Model;
use sea_orm::{ActiveModelTrait, DatabaseTransaction, IntoActiveModel};

use super::{
    identity, merge,
    phone::{self, PhoneFields},
    service::{change, merged},
};
use crate::{
    error::AppResult,
    events::{ChangeKind, ContactChange},
};

/// Moves the contact holding `previous` to `next`, inside the caller's transaction. Unknown
/// to us, nothing moves: the message that announces it then names the user at `next`.
/// Invalid numbers are refused before anything is written. Not ordered by `_at`: a number
/// moves only from the contact that holds it, so a replay or a late change finds none.
pub(super) async fn apply(
    txn: &DatabaseTransaction,
    (previous, next): (&str, &str),
    _at: DateTime<Utc>,
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
    let moved = match identity::by_phone(txn, &next.e164).await? {
        Some(current) if current.id == old.id => return Ok(()),
        Some(current) => {
            let (survivor, absorbed) = merge::survivor_first(old, current);
            changes.push(merged(survivor.id, absorbed.id, now));
            let combined = merge::absorb(txn, survivor, absorbed, now).await?;
            merge::take_current_identities(txn, combined, None, Some(&next), now).await?
        }
        None => {
            changes.push(change(ChangeKind::Updated, old.id, now));
            Model {
                phone_number: Some(next.e164.clone()),
                country_code: next.country_code.clone(),
                ..old
            }
        }
    };
    Model {
        updated_at: now,
        ..moved
    }
    .into_active_model()
    .reset_all()
    .update(txn)
    .await?;
    Ok(())
}
