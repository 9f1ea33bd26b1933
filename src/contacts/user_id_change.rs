//! `recordWhatsappUserIdChange`: Meta replaced a user's BSUID (it does when the user changes
//! phone number). The contact takes the new BSUID and keeps the old one findable.

use chrono::{DateTime, Utc};
use entity::contact::Model;
use sea_orm::{ActiveModelTrait, ConnectionTrait, DatabaseTransaction, IntoActiveModel};
use uuid::Uuid;

use super::{
    bsuid::parse_bsuid,
    clock::to_storage_precision,
    identity, input, merge,
    phone::{self, ParsedPhone, PhoneFields},
    service::{ContactService, change as announce, merged},
    writes::contact_row,
};
use crate::{
    error::{AppError, AppResult},
    events::{ChangeKind, ContactChange},
};

/// A validated identity change.
struct Change {
    previous: String,
    next: String,
    phone: Option<ParsedPhone>,
    at: DateTime<Utc>,
}

impl ContactService {
    /// Moves a contact from BSUID `previous` to `next`, as one transaction, retried when a
    /// concurrent writer of the same person wins a race. Every contact the change names (the
    /// holder of either BSUID, current or replaced, and of `phone`) is one person: two or more
    /// are merged into the oldest. Unknown to us, the user becomes a new contact. A replay,
    /// or a change older than one already applied, changes nothing.
    pub async fn record_user_id_change(
        &self,
        previous: &str,
        next: &str,
        raw_phone: Option<&str>,
        at: Option<DateTime<Utc>>,
    ) -> AppResult<Model> {
        let now = self.now();
        let change = Change::parse(previous, next, raw_phone, at, now)?;
        identity::retrying_write_races(|| self.change_once(&change, now)).await
    }

    async fn change_once(&self, change: &Change, now: DateTime<Utc>) -> AppResult<Model> {
        let txn = self.begin_write().await?;
        let mut events = Vec::new();
        let row = self.apply_change(&txn, change, now, &mut events).await?;
        self.commit_announcing(txn, &events).await?;
        Ok(row)
    }

    /// [`Self::record_user_id_change`] inside `txn` (a webhook delivery's), adding what it
    /// changed to `announced`; the caller commits and announces. Invalid input is refused
    /// before anything is written.
    pub(crate) async fn record_user_id_change_in(
        &self,
        txn: &DatabaseTransaction,
        (previous, next): (&str, &str),
        raw_phone: Option<&str>,
        at: Option<DateTime<Utc>>,
        announced: &mut Vec<ContactChange>,
    ) -> AppResult<Model> {
        let now = self.now();
        let change = Change::parse(previous, next, raw_phone, at, now)?;
        self.apply_change(txn, &change, now, announced).await
    }

    async fn apply_change(
        &self,
        txn: &DatabaseTransaction,
        change: &Change,
        now: DateTime<Utc>,
        announced: &mut Vec<ContactChange>,
    ) -> AppResult<Model> {
        let stale = is_late(txn, change).await?;
        let mut named: Vec<Model> = Vec::new();
        for user_id in [&change.previous, &change.next] {
            named.extend(identity::by_user_id(txn, user_id).await?);
        }
        if let Some(phone) = &change.phone {
            named.extend(identity::by_phone(txn, &phone.e164).await?);
        }
        named.sort_by_key(|row| (row.created_at, row.id));
        named.dedup_by_key(|row| row.id);
        let mut events: Vec<ContactChange> = Vec::new();
        let mut rows = named.into_iter();
        let Some(mut survivor) = rows.next() else {
            let row = self.created(txn, change, now).await?;
            events.push(announce(ChangeKind::Created, row.id, now));
            announced.extend(events);
            return Ok(row);
        };
        let stored = survivor.clone();
        for absorbed in rows {
            events.push(merged(survivor.id, absorbed.id, now));
            survivor = merge::absorb(txn, survivor, absorbed, now).await?;
        }
        let wanted = moved(txn, survivor, change, stale).await?;
        let row = if wanted == stored {
            stored
        } else {
            if events.is_empty() {
                events.push(announce(ChangeKind::Updated, wanted.id, now));
            }
            let wanted = Model {
                updated_at: now,
                ..wanted
            };
            wanted.into_active_model().reset_all().update(txn).await?
        };
        announced.extend(events);
        Ok(row)
    }

    async fn created<C: ConnectionTrait>(
        &self,
        conn: &C,
        change: &Change,
        now: DateTime<Utc>,
    ) -> AppResult<Model> {
        let contact = input::NewContact {
            phone: change.phone.clone(),
            whatsapp: super::bsuid::WhatsappIds {
                user_id: Some(change.next.clone()),
                ..Default::default()
            },
            metadata: None,
            last_whatsapp_message_at: None,
            messaging: Default::default(),
        };
        let row = contact_row(&contact, Uuid::now_v7(), now, now)
            .into_active_model()
            .reset_all()
            .insert(conn)
            .await?;
        identity::remember_previous(conn, &change.previous, row.id, change.at).await?;
        Ok(row)
    }
}

/// A change another one already overtook: its new BSUID was left behind since (a BSUID
/// never comes back), or its previous BSUID was left behind after it by a later change. A
/// replay of the change itself is neither, and changes nothing anyway.
async fn is_late<C: ConnectionTrait>(conn: &C, change: &Change) -> AppResult<bool> {
    if identity::is_replaced(conn, &change.next).await? {
        return Ok(true);
    }
    let previous_left = identity::replaced_at(conn, &change.previous).await?;
    Ok(previous_left.is_some_and(|left| left > change.at))
}

/// `row` holding `change.next`, with the BSUIDs it held before remembered, and the change's
/// phone number (the number Meta replaced the BSUID for). A change to a BSUID the contact
/// has already left behind (`stale`) is late and moves nothing.
async fn moved<C: ConnectionTrait>(
    conn: &C,
    mut row: Model,
    change: &Change,
    stale: bool,
) -> AppResult<Model> {
    if stale {
        return Ok(row);
    }
    // A merge may have filed it as replaced; it is current again.
    identity::forget_previous(conn, &change.next).await?;
    if let Some(current) = row.whatsapp_user_id.clone().filter(|id| *id != change.next) {
        identity::remember_previous(conn, &current, row.id, change.at).await?;
    }
    identity::remember_previous(conn, &change.previous, row.id, change.at).await?;
    row.whatsapp_user_id = Some(change.next.clone());
    if let Some(phone) = &change.phone
        && row.phone_number.as_deref() != Some(phone.e164.as_str())
    {
        row.phone_number = Some(phone.e164.clone());
        row.country_code = phone.country_code.clone();
    }
    Ok(row)
}

impl Change {
    fn parse(
        previous: &str,
        next: &str,
        raw_phone: Option<&str>,
        at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> AppResult<Self> {
        let previous = parse_bsuid(previous, "previousWhatsappUserId")?;
        let next = parse_bsuid(next, "whatsappUserId")?;
        if previous == next {
            return Err(AppError::validation(
                "whatsappUserId",
                "the new WhatsApp user id equals the previous one",
            ));
        }
        let fields = PhoneFields {
            phone_number: "phoneNumber",
            country_code: "phoneNumber",
        };
        let phone = raw_phone
            .map(|raw| phone::parse_phone(raw, None, fields))
            .transpose()?;
        let at = match at {
            Some(at) => input::message_time(at, now, "at")?,
            None => to_storage_precision(now),
        };
        Ok(Self {
            previous,
            next,
            phone,
            at,
        })
    }
}
