//! One WhatsApp webhook delivery (Meta's batch of events) recorded as one transaction: every
//! event through the same domain methods as the GraphQL mutations, each Meta event id
//! remembered so a redelivery changes nothing, and nothing committed unless all of it is.

use chrono::{DateTime, TimeDelta, Utc};
use entity::webhook_delivery::{Column, Entity};
use std::collections::HashSet;

use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter, TransactionTrait,
    sea_query::{OnConflict, Query},
};

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
    /// was rolled back, its id given back). A redelivery would be refused again, so the
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
        identity::retrying_write_races(|| self.record_delivery_once(events)).await
    }

    async fn record_delivery_once(
        &self,
        events: &[DeliveredEvent],
    ) -> AppResult<Vec<EventOutcome>> {
        let now = self.now();
        let txn = self.begin_write().await?;
        let mut fresh = claim_event_ids(&txn, events, now).await?;
        let mut changes = Vec::new();
        let mut outcomes = Vec::with_capacity(events.len());
        for event in events {
            let outcome = self
                .record_event(&txn, event, &mut fresh, now, &mut changes)
                .await?;
            outcomes.push(outcome);
        }
        self.commit_announcing(txn, &changes).await?;
        Ok(outcomes)
    }

    /// One Meta event inside a savepoint of the delivery's transaction: refused by the
    /// domain, it is rolled back whole (effects an earlier part already wrote, and its id).
    /// `fresh` holds the ids this delivery claimed and has not used yet, so an id named twice
    /// in one delivery is recorded once.
    async fn record_event(
        &self,
        txn: &DatabaseTransaction,
        event: &DeliveredEvent,
        fresh: &mut HashSet<String>,
        now: DateTime<Utc>,
        changes: &mut Vec<ContactChange>,
    ) -> AppResult<EventOutcome> {
        if let Some(id) = &event.meta_id
            && !fresh.remove(id)
        {
            return Ok(EventOutcome::Duplicate);
        }
        let savepoint = txn.begin().await?;
        let announced = changes.len();
        for effect in &event.effects {
            match self.apply(&savepoint, effect, now, changes).await {
                Err(AppError::Validation { field, .. }) => {
                    tracing::warn!(field, "WhatsApp webhook event refused as invalid");
                    savepoint.rollback().await?;
                    changes.truncate(announced);
                    if let Some(id) = &event.meta_id {
                        forget_event_id(txn, id).await?;
                    }
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

/// Ids per insert: 2 values each, far below either backend's bind limit.
const CLAIM_CHUNK: usize = 1_000;

/// Records every Meta id of the delivery before anything else is written, in one sorted
/// order, and returns those seen for the first time. Two deliveries naming the same messages
/// in different orders (Meta's retries, two instances) would otherwise insert the ids in
/// opposite orders and deadlock: PostgreSQL's detector needs a second per cycle, and a waiter
/// whose holder is aborted and retried could wait past the statement deadline. In one order,
/// the second delivery waits once on the first's commit (then finds the ids taken) or
/// rollback (then takes them). Row locks, unlike an advisory lock per id, take no slot of
/// PostgreSQL's shared lock table, which 1,000-event deliveries could exhaust.
async fn claim_event_ids(
    txn: &DatabaseTransaction,
    events: &[DeliveredEvent],
    now: DateTime<Utc>,
) -> AppResult<HashSet<String>> {
    let mut ids: Vec<&str> = events
        .iter()
        .filter_map(|event| event.meta_id.as_deref())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let mut fresh = HashSet::with_capacity(ids.len());
    for chunk in ids.chunks(CLAIM_CHUNK) {
        let mut insert = Query::insert();
        insert
            .into_table(Entity)
            .columns([Column::EventId, Column::SeenAt]);
        for id in chunk {
            insert
                .values([(*id).into(), now.into()])
                .map_err(|err| AppError::Internal(format!("claiming event ids: {err}")))?;
        }
        insert
            .on_conflict(OnConflict::column(Column::EventId).do_nothing().to_owned())
            .returning_col(Column::EventId);
        let statement = txn.get_database_backend().build(&insert);
        for row in txn.query_all_raw(statement).await? {
            fresh.insert(row.try_get::<String>("", "event_id")?);
        }
    }
    Ok(fresh)
}

/// Removes the id of an event refused as invalid, as if it had never been claimed.
async fn forget_event_id(txn: &DatabaseTransaction, id: &str) -> AppResult<()> {
    Entity::delete_many()
        .filter(Column::EventId.eq(id))
        .exec(txn)
        .await?;
    Ok(())
}
