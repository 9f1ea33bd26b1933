//! Marketing opt-out (Meta's `user_preferences` webhook): the user stops or resumes marketing
//! messages from one business number or from all. The last choice by time wins per scope; the
//! rule between a number and all numbers is in `policy::opted_out`.

use chrono::{DateTime, Utc};
use entity::{
    contact::Model,
    marketing_preference::{self as preference, Column, Entity},
};
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::{
    bsuid, identity,
    inbound::InboundEvent,
    input,
    phone::{self, PhoneFields},
    service::{ContactService, change},
    sql, windows,
    writes::touched,
};
use crate::{
    error::{AppError, AppResult},
    events::{ChangeKind, ContactChange},
};

/// The upsert's rule: a later choice replaces the stored one; at the same instant an opt-out
/// replaces a resume (`policy::opted_out` decides ties the same way).
const LATER_WINS: &str = "ON CONFLICT (contact_id, business_phone_number_id) DO UPDATE \
     SET opted_out = excluded.opted_out, recorded_at = excluded.recorded_at \
     WHERE contact_marketing_preferences.recorded_at < excluded.recorded_at \
     OR (contact_marketing_preferences.recorded_at = excluded.recorded_at \
         AND excluded.opted_out AND NOT contact_marketing_preferences.opted_out)";

/// `recordMarketingPreference` as sent.
#[derive(Debug, Clone)]
pub struct MarketingPreferenceInput {
    pub phone_number: Option<String>,
    pub whatsapp_user_id: Option<String>,
    /// `None`: the choice covers every business number.
    pub business_phone_number_id: Option<String>,
    pub opted_out: bool,
    pub at: DateTime<Utc>,
}

/// A validated choice.
struct Choice {
    event: InboundEvent,
    number: String,
    opted_out: bool,
    at: DateTime<Utc>,
}

impl Choice {
    fn parse(input: &MarketingPreferenceInput, now: DateTime<Utc>) -> AppResult<Self> {
        let fields = PhoneFields {
            phone_number: "phoneNumber",
            country_code: "countryCode",
        };
        let phone = input
            .phone_number
            .as_deref()
            .map(|raw| phone::parse_phone(raw, None, fields))
            .transpose()?;
        let user_id = input
            .whatsapp_user_id
            .as_deref()
            .map(|raw| bsuid::parse_bsuid(raw, "whatsappUserId"))
            .transpose()?;
        if phone.is_none() && user_id.is_none() {
            return Err(AppError::validation(
                "phoneNumber",
                "a marketing preference needs a phoneNumber, a whatsappUserId or both",
            ));
        }
        let number = input
            .business_phone_number_id
            .as_deref()
            .map(|raw| windows::parse_business_number(raw, "businessPhoneNumberId"))
            .transpose()?
            .unwrap_or_default();
        let at = input::message_time(input.at, now, "at")?;
        Ok(Self {
            event: InboundEvent::identifying(phone, user_id, at),
            number,
            opted_out: input.opted_out,
            at,
        })
    }
}

impl ContactService {
    /// Records that the user stopped or resumed marketing messages, finding the contact as an
    /// inbound event would (created if needed), in one transaction.
    pub async fn record_marketing_preference(
        &self,
        input: MarketingPreferenceInput,
    ) -> AppResult<Model> {
        let now = self.now();
        let input = &input;
        identity::retrying_write_races(|| async move {
            let txn = self.begin_write().await?;
            let mut changes = Vec::new();
            let row = self
                .record_marketing_preference_in(&txn, input, now, &mut changes)
                .await?;
            self.commit_announcing(txn, &changes).await?;
            Ok(row)
        })
        .await
    }

    /// [`Self::record_marketing_preference`] inside the caller's transaction; the changes to
    /// announce are pushed onto `changes`.
    pub(crate) async fn record_marketing_preference_in(
        &self,
        txn: &DatabaseTransaction,
        input: &MarketingPreferenceInput,
        now: DateTime<Utc>,
        changes: &mut Vec<ContactChange>,
    ) -> AppResult<Model> {
        let choice = Choice::parse(input, now)?;
        let announced = changes.len();
        let row = self.apply_inbound(txn, &choice.event, now, changes).await?;
        let stored = record(txn, row.id, &choice.number, choice.opted_out, choice.at).await?;
        if stored && changes.len() == announced {
            let row = touched(txn, row.id, now).await?;
            changes.push(change(ChangeKind::Updated, row.id, now));
            return Ok(row);
        }
        Ok(row)
    }
}

/// Stores the choice unless a later one (or an opt-out at the same instant) is stored for the
/// same scope, then keeps [`windows::MAX_PER_CONTACT`] of the contact's choices for business
/// numbers (the choice for all numbers always stays); true when stored.
async fn record<C: ConnectionTrait>(
    conn: &C,
    contact_id: Uuid,
    number: &str,
    opted_out: bool,
    at: DateTime<Utc>,
) -> AppResult<bool> {
    let statement = sql::statement(
        conn.get_database_backend(),
        &format!(
            "INSERT INTO contact_marketing_preferences \
             (contact_id, business_phone_number_id, opted_out, recorded_at) \
             VALUES (?, ?, ?, ?) {LATER_WINS}"
        ),
        vec![
            contact_id.into(),
            number.into(),
            opted_out.into(),
            at.into(),
        ],
    );
    let stored = conn.execute_raw(statement).await?.rows_affected() > 0;
    if stored && number != windows::UNNAMED {
        keep_newest(conn, contact_id).await?;
    }
    Ok(stored)
}

/// The bound on choices per contact (see [`record`]). Opt-outs are kept before resumes, and
/// each kind newest first: dropping a resume at worst keeps the contact from marketing it had
/// allowed on one number, while dropping an opt-out would send marketing to someone who said
/// no. Only a contact with opt-outs on more business numbers than the bound loses its oldest.
async fn keep_newest<C: ConnectionTrait>(conn: &C, contact_id: Uuid) -> AppResult<()> {
    let table = "contact_marketing_preferences";
    let keep = windows::MAX_PER_CONTACT;
    let kept_first = "opted_out DESC, recorded_at DESC";
    sql::keep_newest(conn, table, kept_first, contact_id, keep).await?;
    Ok(())
}

/// Moves `absorbed`'s choices to `survivor`, keeping the later per scope and the bound of
/// [`record`]. Before the absorbed row is deleted.
pub async fn absorb<C: ConnectionTrait>(conn: &C, survivor: Uuid, absorbed: Uuid) -> AppResult<()> {
    let statement = sql::statement(
        conn.get_database_backend(),
        &format!(
            "INSERT INTO contact_marketing_preferences \
             (contact_id, business_phone_number_id, opted_out, recorded_at) \
             SELECT ?, business_phone_number_id, opted_out, recorded_at \
             FROM contact_marketing_preferences WHERE contact_id = ? {LATER_WINS}"
        ),
        vec![survivor.into(), absorbed.into()],
    );
    conn.execute_raw(statement).await?;
    keep_newest(conn, survivor).await
}

/// The choices of `contact_ids`.
pub async fn of_contacts<C: ConnectionTrait>(
    conn: &C,
    contact_ids: &[Uuid],
) -> AppResult<Vec<preference::Model>> {
    Ok(Entity::find()
        .filter(Column::ContactId.is_in(contact_ids.iter().copied()))
        .all(conn)
        .await?)
}
