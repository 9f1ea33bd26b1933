//! Merging two contacts an inbound event proved to be one person: the older survives.

use chrono::{DateTime, Utc};
use entity::{
    contact::{Entity, Model},
    previous_whatsapp_user_id as previous,
};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, sea_query::Expr};
use serde_json::Value;

use super::{identity, metadata::MAX_KEYS, phone::ParsedPhone, preferences, windows};
use crate::error::AppResult;

/// The survivor and the absorbed contact of a merge: the older one (by creation, then id,
/// which is time-ordered) survives.
pub fn survivor_first(a: Model, b: Model) -> (Model, Model) {
    if (a.created_at, a.id) <= (b.created_at, b.id) {
        (a, b)
    } else {
        (b, a)
    }
}

/// Deletes `absorbed` and returns `survivor` with the absorbed contact's data folded in
/// (not yet written): identities the survivor lacks, metadata keys it lacks (its own values
/// win; keys beyond the limit of 50 are dropped, the absorbed contact's in key order), the
/// later `lastWhatsappMessageAt`, and the username and profile name seen last. The absorbed
/// contact's replaced BSUIDs move to the survivor; so does its current BSUID when the
/// survivor has one of its own, as a replaced one, so webhooks carrying it still arrive.
/// Windows per number and marketing choices are combined, the later per number winning;
/// a block of either blocks the merged contact.
/// Runs inside the caller's transaction, with both rows locked.
pub async fn absorb<C: ConnectionTrait>(
    conn: &C,
    survivor: Model,
    absorbed: Model,
    now: DateTime<Utc>,
) -> AppResult<Model> {
    previous::Entity::update_many()
        .col_expr(previous::Column::ContactId, Expr::val(survivor.id))
        .filter(previous::Column::ContactId.eq(absorbed.id))
        .exec(conn)
        .await?;
    windows::absorb(conn, survivor.id, absorbed.id).await?;
    preferences::absorb(conn, survivor.id, absorbed.id).await?;
    // Deleted first: its phone number and BSUID are unique, and the survivor may take them.
    Entity::delete_by_id(absorbed.id).exec(conn).await?;
    let displaced = match (&survivor.whatsapp_user_id, &absorbed.whatsapp_user_id) {
        (Some(kept), Some(other)) if kept != other => Some(other.clone()),
        _ => None,
    };
    if let Some(old) = displaced {
        identity::remember_previous(conn, &old, survivor.id, now).await?;
    }
    Ok(combined(survivor, absorbed))
}

/// The merged contact holding the identities the event that joined it names: they are the
/// user's current ones. A BSUID it gives up is kept as a replaced one (still findable); a
/// phone number it gives up is released (a contact holds one number), so the number the
/// event names finds this contact from now on. Inside the merge's transaction, after
/// [`absorb`] deleted the other row.
pub async fn take_current_identities<C: ConnectionTrait>(
    conn: &C,
    mut merged: Model,
    user_id: Option<&str>,
    phone: Option<&ParsedPhone>,
    now: DateTime<Utc>,
) -> AppResult<Model> {
    if let Some(current) = user_id
        && merged.whatsapp_user_id.as_deref() != Some(current)
    {
        if let Some(left) = merged.whatsapp_user_id.take() {
            identity::remember_previous(conn, &left, merged.id, now).await?;
        }
        identity::forget_previous(conn, current).await?;
        merged.whatsapp_user_id = Some(current.to_owned());
    }
    if let Some(phone) = phone
        && merged.phone_number.as_deref() != Some(phone.e164.as_str())
    {
        merged.phone_number = Some(phone.e164.clone());
        merged.country_code = phone.country_code.clone();
    }
    Ok(merged)
}

/// `survivor` completed by `absorbed`, as [`absorb`] describes.
fn combined(survivor: Model, absorbed: Model) -> Model {
    let absorbed_names_newer = match (
        survivor.whatsapp_identity_seen_at,
        absorbed.whatsapp_identity_seen_at,
    ) {
        (_, None) => false,
        (None, Some(_)) => true,
        (Some(kept), Some(other)) => other > kept,
    };
    let (names, fallback) = if absorbed_names_newer {
        (&absorbed, &survivor)
    } else {
        (&survivor, &absorbed)
    };
    let pick = |first: &Option<String>, second: &Option<String>| first.clone().or(second.clone());
    let survivor_has_phone = survivor.phone_number.is_some();
    Model {
        phone_number: pick(&survivor.phone_number, &absorbed.phone_number),
        country_code: if survivor_has_phone {
            survivor.country_code.clone()
        } else {
            absorbed.country_code.clone()
        },
        whatsapp_user_id: pick(&survivor.whatsapp_user_id, &absorbed.whatsapp_user_id),
        parent_whatsapp_user_id: pick(
            &survivor.parent_whatsapp_user_id,
            &absorbed.parent_whatsapp_user_id,
        ),
        whatsapp_username: pick(&names.whatsapp_username, &fallback.whatsapp_username),
        whatsapp_profile_name: pick(
            &names.whatsapp_profile_name,
            &fallback.whatsapp_profile_name,
        ),
        whatsapp_identity_seen_at: survivor
            .whatsapp_identity_seen_at
            .max(absorbed.whatsapp_identity_seen_at),
        last_whatsapp_message_at: survivor
            .last_whatsapp_message_at
            .max(absorbed.last_whatsapp_message_at),
        metadata: merged_metadata(&survivor.metadata, &absorbed.metadata),
        // The business blocked the person, whichever record it was.
        blocked: survivor.blocked || absorbed.blocked,
        ..survivor
    }
}

/// The survivor's map with the absorbed contact's other keys added, up to [`MAX_KEYS`].
fn merged_metadata(survivor: &Value, absorbed: &Value) -> Value {
    let mut merged = survivor.as_object().cloned().unwrap_or_default();
    if let Some(other) = absorbed.as_object() {
        for (key, value) in other {
            if merged.len() >= MAX_KEYS {
                break;
            }
            merged.entry(key.clone()).or_insert_with(|| value.clone());
        }
    }
    Value::Object(merged)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn survivor_metadata_wins_and_the_limit_holds() {
        let merged = merged_metadata(
            &json!({ "a": "1", "b": "2" }),
            &json!({ "b": "x", "c": "3" }),
        );
        assert_eq!(merged, json!({ "a": "1", "b": "2", "c": "3" }));
        let full: serde_json::Map<String, Value> = (0..MAX_KEYS)
            .map(|n| (format!("k{n:02}"), json!("v")))
            .collect();
        let merged = merged_metadata(&Value::Object(full.clone()), &json!({ "extra": "1" }));
        assert_eq!(merged, Value::Object(full));
    }
}
