//! The 24-hour window per business number: one row per (contact, number) with the latest
//! inbound time, moved forward only. `contacts.last_whatsapp_message_at` is kept equal to the
//! latest of a contact's windows, so the contact-level window and its index stay as they were.

use chrono::{DateTime, Utc};
use entity::{
    contact,
    whatsapp_window::{ActiveModel, Column, Entity, Model},
};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, sea_query::Expr,
};
use uuid::Uuid;

use super::sql;
use crate::error::{AppError, AppResult};

/// The stored number of a window whose events named no business number.
pub const UNNAMED: &str = "";

/// Windows one contact keeps: a business has a handful of numbers; beyond this the oldest
/// window goes, so no sender of events can grow a contact (and every page showing it) without
/// bound. The window of no number and the latest window are never the ones dropped.
pub const MAX_PER_CONTACT: usize = 100;

/// The upsert's rule: a window only moves forward.
const KEEP_LATER: &str = "ON CONFLICT (contact_id, business_phone_number_id) DO UPDATE \
     SET last_inbound_at = excluded.last_inbound_at \
     WHERE contact_whatsapp_windows.last_inbound_at < excluded.last_inbound_at";

/// Meta's `phone_number_id`: digits, at most this many.
const MAX_BUSINESS_ID_DIGITS: usize = 32;

/// Checks a business number id as clients send it (`field` names it in the error).
pub fn parse_business_number(raw: &str, field: &str) -> AppResult<String> {
    let digits = !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit());
    if !digits || raw.len() > MAX_BUSINESS_ID_DIGITS {
        return Err(AppError::validation(
            field,
            format!("Meta's phone_number_id: 1 to {MAX_BUSINESS_ID_DIGITS} ASCII digits"),
        ));
    }
    Ok(raw.to_owned())
}

/// The stored key of an optional number.
pub fn key(number: Option<&str>) -> &str {
    number.unwrap_or(UNNAMED)
}

/// The number as clients see it: null for the unnamed window.
pub fn public(number: &str) -> Option<&str> {
    (number != UNNAMED).then_some(number)
}

/// Moves the window of (`contact_id`, `number`) forward to `at`; true when it moved (a late
/// or repeated event changes nothing).
pub async fn advance<C: ConnectionTrait>(
    conn: &C,
    contact_id: Uuid,
    number: &str,
    at: DateTime<Utc>,
) -> AppResult<bool> {
    let statement = sql::statement(
        conn.get_database_backend(),
        &format!(
            "INSERT INTO contact_whatsapp_windows \
             (contact_id, business_phone_number_id, last_inbound_at) VALUES (?, ?, ?) \
             {KEEP_LATER}"
        ),
        vec![contact_id.into(), number.into(), at.into()],
    );
    let moved = conn.execute_raw(statement).await?.rows_affected() > 0;
    if moved && number != UNNAMED {
        sql::keep_newest(
            conn,
            "contact_whatsapp_windows",
            "last_inbound_at DESC",
            contact_id,
            MAX_PER_CONTACT,
        )
        .await?;
    }
    Ok(moved)
}

/// Sets the window with no business number to exactly `at`, or removes it: what a contact
/// written by hand (create, update, import) says about its last message.
pub async fn set_unnamed<C: ConnectionTrait>(
    conn: &C,
    contact_id: Uuid,
    at: Option<DateTime<Utc>>,
) -> AppResult<()> {
    Entity::delete_many()
        .filter(Column::ContactId.eq(contact_id))
        .filter(Column::BusinessPhoneNumberId.eq(UNNAMED))
        .exec(conn)
        .await?;
    if let Some(at) = at {
        advance(conn, contact_id, UNNAMED, at).await?;
    }
    Ok(())
}

/// Writes the contact's `last_whatsapp_message_at` as the latest of its windows and returns
/// that time, after [`set_unnamed`] may have moved it either way.
pub async fn roll_up<C: ConnectionTrait>(
    conn: &C,
    contact_id: Uuid,
) -> AppResult<Option<DateTime<Utc>>> {
    let latest: Option<DateTime<Utc>> = Entity::find()
        .select_only()
        .column(Column::LastInboundAt)
        .filter(Column::ContactId.eq(contact_id))
        .order_by_desc(Column::LastInboundAt)
        .limit(1)
        .into_tuple()
        .one(conn)
        .await?;
    contact::Entity::update_many()
        .col_expr(contact::Column::LastWhatsappMessageAt, Expr::val(latest))
        .filter(contact::Column::Id.eq(contact_id))
        .exec(conn)
        .await?;
    Ok(latest)
}

/// After a contact was written by hand with `at` as its last message (create, upsert,
/// import, update: `at` given, or cleared with `None`): the window with no business number
/// becomes `at`, and the row's `last_whatsapp_message_at` the latest of its windows.
pub async fn written_by_hand<C: ConnectionTrait>(
    conn: &C,
    row: &mut contact::Model,
    at: Option<DateTime<Utc>>,
    created: bool,
) -> AppResult<()> {
    if created {
        if let Some(at) = at {
            advance(conn, row.id, UNNAMED, at).await?;
        }
        return Ok(());
    }
    set_unnamed(conn, row.id, at).await?;
    row.last_whatsapp_message_at = roll_up(conn, row.id).await?;
    Ok(())
}

/// [`written_by_hand`] for a batch of imported rows, `(id, at, created)`, in three
/// statements whatever the batch's size.
pub async fn written_by_hand_many<C: ConnectionTrait>(
    conn: &C,
    rows: &[(Uuid, DateTime<Utc>, bool)],
) -> AppResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let existing: Vec<Uuid> = rows
        .iter()
        .filter(|(_, _, created)| !created)
        .map(|(id, _, _)| *id)
        .collect();
    if !existing.is_empty() {
        Entity::delete_many()
            .filter(Column::ContactId.is_in(existing.iter().copied()))
            .filter(Column::BusinessPhoneNumberId.eq(UNNAMED))
            .exec(conn)
            .await?;
    }
    let windows = rows.iter().map(|(id, at, _)| ActiveModel {
        contact_id: Set(*id),
        business_phone_number_id: Set(UNNAMED.to_owned()),
        last_inbound_at: Set(*at),
    });
    Entity::insert_many(windows)
        .exec_without_returning(conn)
        .await?;
    roll_up_many(conn, existing).await
}

/// [`roll_up`] for many contacts in one statement.
pub async fn roll_up_many<C: ConnectionTrait>(conn: &C, ids: Vec<Uuid>) -> AppResult<()> {
    if ids.is_empty() {
        return Ok(());
    }
    contact::Entity::update_many()
        .col_expr(
            contact::Column::LastWhatsappMessageAt,
            Expr::cust(
                "(SELECT MAX(w.last_inbound_at) FROM contact_whatsapp_windows w \
                 WHERE w.contact_id = contacts.id)",
            ),
        )
        .filter(contact::Column::Id.is_in(ids))
        .exec(conn)
        .await?;
    Ok(())
}

/// Moves `absorbed`'s windows to `survivor`, keeping the later time per number and, as an
/// event does, the newest [`MAX_PER_CONTACT`] (two contacts at the bound would otherwise
/// merge into one past it). Before the absorbed row is deleted (its windows go with it).
pub async fn absorb<C: ConnectionTrait>(conn: &C, survivor: Uuid, absorbed: Uuid) -> AppResult<()> {
    let statement = sql::statement(
        conn.get_database_backend(),
        &format!(
            "INSERT INTO contact_whatsapp_windows \
             (contact_id, business_phone_number_id, last_inbound_at) \
             SELECT ?, business_phone_number_id, last_inbound_at FROM contact_whatsapp_windows \
             WHERE contact_id = ? \
             {KEEP_LATER}"
        ),
        vec![survivor.into(), absorbed.into()],
    );
    conn.execute_raw(statement).await?;
    sql::keep_newest(
        conn,
        "contact_whatsapp_windows",
        "last_inbound_at DESC",
        survivor,
        MAX_PER_CONTACT,
    )
    .await?;
    Ok(())
}

/// The windows of `contact_ids`, each contact's newest first.
pub async fn of_contacts<C: ConnectionTrait>(
    conn: &C,
    contact_ids: &[Uuid],
) -> AppResult<Vec<Model>> {
    Ok(Entity::find()
        .filter(Column::ContactId.is_in(contact_ids.iter().copied()))
        .order_by_asc(Column::ContactId)
        .order_by_desc(Column::LastInboundAt)
        .order_by_asc(Column::BusinessPhoneNumberId)
        .all(conn)
        .await?)
}

/// One window's latest inbound time, if the number has heard from the contact.
pub async fn last_inbound<C: ConnectionTrait>(
    conn: &C,
    contact_id: Uuid,
    number: &str,
) -> AppResult<Option<DateTime<Utc>>> {
    Ok(Entity::find_by_id((contact_id, number.to_owned()))
        .one(conn)
        .await?
        .map(|row| row.last_inbound_at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn business_numbers_are_digits() {
        assert_eq!(
            parse_business_number("106540352242922", "f").unwrap(),
            "106540352242922"
        );
        for bad in ["", "12a", "+123", &"9".repeat(33)] {
            assert!(parse_business_number(bad, "f").is_err(), "{bad}");
        }
        assert_eq!(public(UNNAMED), None);
        assert_eq!(public(key(Some("12"))), Some("12"));
    }
}
