//! `ContactService`: the one way in to contacts, shared by every transport.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use prometheus_client::metrics::counter::Counter;
use sea_orm::{DatabaseTransaction, TransactionTrait};
use uuid::Uuid;

use super::{
    changelog,
    clock::Clock,
    fanout::{Fanout, Subscription},
};
use crate::{
    db::Db,
    error::AppResult,
    events::{ChangeKind, ContactChange, EventBus},
};

/// Reads and writes contacts; owns the clock and announces every committed change.
#[derive(Clone)]
pub struct ContactService {
    pub(super) db: Db,
    clock: Arc<dyn Clock>,
    events: EventBus,
    /// Subscribers' one reader of changed rows (see `fanout`).
    fanout: Arc<Fanout>,
    /// How long the change log keeps changes.
    change_retention: TimeDelta,
}

impl ContactService {
    pub fn new(db: Db, clock: Arc<dyn Clock>, events: EventBus) -> Self {
        Self {
            db,
            clock,
            events,
            fanout: Arc::default(),
            change_retention: changelog::DEFAULT_RETENTION,
        }
    }

    /// Keeps changes in the log for `retention` (default 30 days).
    pub fn with_change_retention(mut self, retention: TimeDelta) -> Self {
        self.change_retention = retention;
        self
    }

    /// How long the change log keeps changes.
    pub fn change_retention(&self) -> TimeDelta {
        self.change_retention
    }

    /// "Now", from the injected clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn events(&self) -> &EventBus {
        &self.events
    }

    /// The injected clock, for code that waits for an instant.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Change-log rows read to deliver change events to subscribers: once per change however
    /// many subscribers show it, plus a subscriber's own catch-up from a cursor or after it
    /// fell behind.
    pub fn event_row_reads(&self) -> &Counter {
        self.fanout.reads()
    }

    /// Changes from now on, each read from the log once for all subscribers.
    pub(super) fn subscribe_changes(&self) -> Subscription {
        self.fanout.subscribe(&self.events, &self.db)
    }

    /// Opens a write transaction.
    pub(super) async fn begin_write(&self) -> AppResult<DatabaseTransaction> {
        Ok(self.db.write.begin().await?)
    }

    /// Commits `txn` with `changes` logged as part of it, then announces them: nothing is
    /// logged or announced unless the write commits, and a committed write is always logged
    /// (announcing only wakes the log's readers sooner; see `events`).
    pub(super) async fn commit_announcing(
        &self,
        txn: DatabaseTransaction,
        changes: &[ContactChange],
    ) -> AppResult<()> {
        changelog::append(&txn, changes, || self.now()).await?;
        txn.commit().await?;
        self.events.committed(changes);
        Ok(())
    }
}

/// A change to announce.
pub(super) fn change(kind: ChangeKind, contact_id: Uuid, at: DateTime<Utc>) -> ContactChange {
    ContactChange {
        kind,
        contact_id,
        at,
        merged_contact_id: None,
    }
}

/// `absorbed` merged into `survivor`.
pub(super) fn merged(survivor: Uuid, absorbed: Uuid, at: DateTime<Utc>) -> ContactChange {
    ContactChange {
        merged_contact_id: Some(absorbed),
        ..change(ChangeKind::Merged, survivor, at)
    }
}
