//! `ContactService`: the one way in to contacts, shared by every transport.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::clock::Clock;
use crate::{
    db::Db,
    events::{ChangeKind, ContactChange, EventBus},
};

/// Reads and writes contacts; owns the clock and announces every committed change.
#[derive(Clone)]
pub struct ContactService {
    pub(super) db: Db,
    clock: Arc<dyn Clock>,
    events: EventBus,
}

impl ContactService {
    pub fn new(db: Db, clock: Arc<dyn Clock>, events: EventBus) -> Self {
        Self { db, clock, events }
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

    pub(super) fn announce(&self, kind: ChangeKind, contact_id: Uuid, at: DateTime<Utc>) {
        self.events.publish(ContactChange {
            kind,
            contact_id,
            at,
        });
    }
}
