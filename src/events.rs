//! Change events: the one place where writes are announced, for subscriptions.
//!
//! In-process broadcast for now; a PostgreSQL LISTEN/NOTIFY transport can feed the same bus.

use chrono::{DateTime, Utc};
use tokio::sync::broadcast;
use uuid::Uuid;

/// What happened to a contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Created,
    Updated,
    Deleted,
}

/// A committed change. Listeners re-read the row: the event carries no data that could go stale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactChange {
    pub kind: ChangeKind,
    pub contact_id: Uuid,
    pub at: DateTime<Utc>,
}

/// Fan-out of committed changes. Bounded: a subscriber that falls behind is told it lagged,
/// writers never wait.
#[derive(Debug, Clone)]
pub struct EventBus {
    sender: broadcast::Sender<ContactChange>,
}

impl EventBus {
    pub fn new(capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity.max(1));
        Self { sender }
    }

    /// Announces a committed change; having no subscribers is fine.
    pub fn publish(&self, change: ContactChange) {
        let _ = self.sender.send(change);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<ContactChange> {
        self.sender.subscribe()
    }
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new(1024)
    }
}
