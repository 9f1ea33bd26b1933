//! One WhatsApp webhook delivery (Meta's batch of events) recorded as one transaction: every
//! event through the same domain methods as the GraphQL mutations, each Meta event id
//! remembered so a redelivery changes nothing, and nothing committed unless all of it is.

use chrono::{DateTime, TimeDelta, Utc};
use entity::webhook_delivery::{ActiveModel, Column, Entity};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait,
    QueryFilter, Statement, TransactionTrait, sea_query::OnConflict,
};
use sha2::{Digest, Sha256};

use super::{
    identity,
    inbound::{InboundEvent, InboundInput},
    number_change,
    preferences::MarketingPreferenceInput,
    service::ContactService,
    window::MAX_FUTURE_SKEW,
};
use crate::{
    error::{AppError, AppResult},
    events::ContactChange,
};

/// How long a Meta event id is remembered: Meta retries an unanswered delivery for up to 7
/// days. A redelivery later than that is recorded again, which the monotonic rules (latest
/// message time, names by event time) make harmless.
pub const SEEN_RETENTION: TimeDelta = TimeDelta::days(7);

/// Attempts of a whole delivery when a concurrent writer of the same person wins a race.
const ATTEMPTS: usize = 8;

/// An event of a delivery, as the domain records it.
#[derive(Debug, Clone)]
pub enum WebhookEvent {
    /// A message or a call (`recordWhatsappInbound`).
    Inbound(InboundInput),
    /// Meta replaced the user's BSUID (`recordWhatsappUserIdChange`).
    UserIdChange {
        previous: String,
        next: String,
        phone_number: Option<String>,
        at: DateTime<Utc>,
    },
    /// The user stopped or resumed marketing messages (`recordMarketingPreference`).
    MarketingPreference(MarketingPreferenceInput),
    /// The user moved to another phone number (a `user_changed_number` system message):
    /// the contact holding `previous` now holds `next`.
    NumberChange {
        previous: String,
        next: String,
        at: DateTime<Utc>,
    },
}

/// One Meta event (a message, a call...): the domain events it means, under Meta's id when
/// it has one (a redelivery of the id is skipped).
#[derive(Debug, Clone)]
pub struct DeliveredEvent {
    pub meta_id: Option<String>,
    pub effects: Vec<WebhookEvent>,
}

/// What became of a [`DeliveredEvent`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventOutcome {
    Recorded,
    /// Its Meta id was recorded before (a redelivery).
    Duplicate,
    /// The domain refused it (`BAD_USER_INPUT`); nothing of it was written (its savepoint
    /// was rolled back, its id included). A redelivery would be refused again, so the
    /// delivery is still answered 200.
    Invalid,
}

impl ContactService {
    /// Records a delivery in one transaction, retried whole when a concurrent writer of the
    /// same person wins a race. Errors other than invalid input fail the whole delivery
    /// (nothing is committed, so Meta's retry loses nothing).
    pub async fn record_webhook_delivery(
        &self,
        events: &[DeliveredEvent],
    ) -> AppResult<Vec<EventOutcome>> {
        let mut attempt = 1;
        loop {
            match self.record_delivery_once(events).await {
                Err(err) if attempt < ATTEMPTS && identity::is_write_race(&err) => attempt += 1,
                result => return result,
            }
        }
    }

    async fn record_delivery_once(
        &self,
        events: &[DeliveredEvent],
    ) -> AppResult<Vec<EventOutcome>> {
        let now = self.now();
        let txn = self.begin_write().await?;
        claim_event_ids(&txn, events).await?;
        let mut changes = Vec::new();
        let mut outcomes = Vec::with_capacity(events.len());
        for event in events {
            outcomes.push(self.record_event(&txn, event, now, &mut changes).await?);
        }
        self.commit_announcing(txn, &changes).await?;
        Ok(outcomes)
    }

    /// One Meta event inside a savepoint of the delivery's transaction: refused by the
    /// domain, it is rolled back whole (its id, and effects an earlier part already wrote).
    async fn record_event(
        &self,
        txn: &DatabaseTransaction,
        event: &DeliveredEvent,
        now: DateTime<Utc>,
        changes: &mut Vec<ContactChange>,
    ) -> AppResult<EventOutcome> {
        let savepoint = txn.begin().await?;
        if let Some(id) = &event.meta_id
            && !first_sighting(&savepoint, id, now).await?
        {
            savepoint.commit().await?;
            return Ok(EventOutcome::Duplicate);
        }
        let announced = changes.len();
        for effect in &event.effects {
            match self.apply(&savepoint, effect, now, changes).await {
                Err(AppError::Validation { field, .. }) => {
                    tracing::warn!(field, "WhatsApp webhook event refused as invalid");
                    savepoint.rollback().await?;
                    changes.truncate(announced);
                    return Ok(EventOutcome::Invalid);
                }
                result => result?,
            }
        }
        savepoint.commit().await?;
        Ok(EventOutcome::Recorded)
    }

    async fn apply(
        &self,
        txn: &DatabaseTransaction,
        effect: &WebhookEvent,
        now: DateTime<Utc>,
        changes: &mut Vec<ContactChange>,
    ) -> AppResult<()> {
        match effect {
            WebhookEvent::Inbound(input) => {
                let input = InboundInput {
                    received_at: input.received_at.map(|at| arrived_by(at, now)),
                    ..input.clone()
                };
                // Validated before anything is written, so a refusal leaves `txn` usable.
                let event = InboundEvent::parse(input, now)?;
                self.apply_inbound(txn, &event, now, changes).await?;
            }
            WebhookEvent::MarketingPreference(input) => {
                let input = MarketingPreferenceInput {
                    at: arrived_by(input.at, now),
                    ..input.clone()
                };
                self.record_marketing_preference_in(txn, &input, now, changes)
                    .await?;
            }
            WebhookEvent::NumberChange { previous, next, at } => {
                let at = arrived_by(*at, now);
                number_change::apply(txn, (previous, next), at, now, changes).await?;
            }
            WebhookEvent::UserIdChange {
                previous,
                next,
                phone_number,
                at,
            } => {
                let ids = (previous.as_str(), next.as_str());
                self.record_user_id_change_in(
                    txn,
                    ids,
                    phone_number.as_deref(),
                    Some(arrived_by(*at, now)),
                    changes,
                )
                .await?;
            }
        }
        Ok(())
    }

    /// Deletes the remembered Meta event ids older than [`SEEN_RETENTION`]; returns how many.
    /// Its own statement, outside any delivery, so deliveries never wait on it.
    pub async fn forget_expired_webhook_events(&self) -> AppResult<u64> {
        let cutoff = self.now() - SEEN_RETENTION;
        let deleted = Entity::delete_many()
            .filter(Column::SeenAt.lt(cutoff))
            .exec(&self.db.write)
            .await?;
        Ok(deleted.rows_affected)
    }
}

/// A time Meta reports, read against our clock: an event cannot have happened after it
/// arrived, so a time up to [`MAX_FUTURE_SKEW`] ahead of `now` (the clocks disagree) is
/// `now`. Further ahead it is kept, and the domain refuses it as invalid.
fn arrived_by(at: DateTime<Utc>, now: DateTime<Utc>) -> DateTime<Utc> {
    if at > now && at <= now + MAX_FUTURE_SKEW {
        now
    } else {
        at
    }
}

/// Distinguishes the event-id advisory locks from any other (`changelog` has its own class).
const EVENT_ID_LOCK_CLASS: i32 = 0x5748_4944; // "WHID"

/// On PostgreSQL, takes a transaction-scoped advisory lock per Meta id of the delivery, all
/// in one sorted order, before anything is written. Two deliveries naming the same messages
/// in different orders (Meta's retries, two instances) otherwise insert the seen ids in
/// opposite orders and deadlock; the detector needs a second per cycle, and a waiter whose
/// holder is aborted and retried can wait past the statement deadline. With the claim, the
/// second delivery waits once for the first to commit, then finds its ids seen. A key shared
/// by two ids (a 32-bit hash) only makes them queue. SQLite has one writer: nothing to do.
async fn claim_event_ids(txn: &DatabaseTransaction, events: &[DeliveredEvent]) -> AppResult<()> {
    if txn.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    let mut keys: Vec<i32> = events
        .iter()
        .filter_map(|event| event.meta_id.as_deref())
        .map(event_id_lock_key)
        .collect();
    if keys.is_empty() {
        return Ok(());
    }
    keys.sort_unstable();
    keys.dedup();
    let list = keys
        .iter()
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join(",");
    // `unnest` yields the array in order, so the locks are taken in the sorted order.
    let claim = Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT count(pg_advisory_xact_lock($1, key::int4)) \
         FROM unnest(string_to_array($2, ',')) AS key",
        [EVENT_ID_LOCK_CLASS.into(), list.into()],
    );
    txn.execute_raw(claim).await?;
    Ok(())
}

/// A stable 32-bit key for a Meta id (the same in every instance and version).
fn event_id_lock_key(id: &str) -> i32 {
    let digest = Sha256::digest(id.as_bytes());
    i32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// Remembers `id` inside the delivery's transaction; false when it was already there. On
/// PostgreSQL a concurrent delivery of the same id waits here until the first commits (then
/// sees it) or rolls back (then takes it over), so the id's effects happen once.
async fn first_sighting(
    txn: &DatabaseTransaction,
    id: &str,
    now: DateTime<Utc>,
) -> AppResult<bool> {
    let row = ActiveModel {
        event_id: Set(id.to_owned()),
        seen_at: Set(now),
    };
    let inserted = Entity::insert(row)
        .on_conflict(OnConflict::column(Column::EventId).do_nothing().to_owned())
        .exec_without_returning(txn)
        .await?;
    Ok(inserted == 1)
}
