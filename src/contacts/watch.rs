//! Live views for subscriptions: committed changes, and a contact's window state that also
//! changes by itself when the window expires (driven by the injected clock).

use chrono::{DateTime, Utc};
use entity::contact::Model;
use futures_util::Stream;
use tokio::sync::broadcast::error::RecvError;
use uuid::Uuid;

use super::{service::ContactService, window};
use crate::{
    error::{AppError, AppResult},
    events::{BusMessage, ChangeKind, ContactChange},
};

/// Whether a contact may be messaged freely, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowState {
    pub contact_id: Uuid,
    pub open: bool,
    pub expires_at: Option<DateTime<Utc>>,
}

impl WindowState {
    fn of(contact_id: Uuid, row: Option<&Model>, now: DateTime<Utc>) -> Self {
        let last = row.and_then(|row| row.last_whatsapp_message_at);
        Self {
            contact_id,
            open: window::is_open(last, now),
            expires_at: window::expires_at(last),
        }
    }
}

/// A committed change with the row as it is now (`None` once deleted).
pub type ChangeWithRow = (ContactChange, Option<Model>);

impl ContactService {
    /// Changes to one contact (`Some(id)`) or to all, as they commit. A subscriber that falls
    /// so far behind that events were dropped gets an error and the stream ends.
    pub fn watch_changes(
        &self,
        only: Option<Uuid>,
    ) -> impl Stream<Item = AppResult<ChangeWithRow>> + Send + use<> {
        let service = self.clone();
        let mut bus = self.events().subscribe();
        async_stream::stream! {
            loop {
                let change = match bus.recv().await {
                    Ok(BusMessage::Change(change)) => change,
                    Ok(BusMessage::Resync) => continue,
                    Err(RecvError::Lagged(missed)) => {
                        yield Err(AppError::Lagged(missed));
                        return;
                    }
                    Err(RecvError::Closed) => return,
                };
                if only.is_some_and(|id| id != change.contact_id) {
                    continue;
                }
                let row = match change.kind {
                    ChangeKind::Deleted => Ok(None),
                    _ => service.get(change.contact_id).await,
                };
                yield row.map(|row| (change, row));
            }
        }
    }

    /// The contact's window: the current state first, then each change, including the moment
    /// it expires with no write. `NOT_FOUND` if the contact does not exist; ends (closed) when
    /// it is deleted.
    pub fn watch_window(
        &self,
        id: Uuid,
    ) -> impl Stream<Item = AppResult<WindowState>> + Send + use<> {
        let service = self.clone();
        // Subscribed before the first read, so no change slips between the two.
        let mut bus = self.events().subscribe();
        async_stream::stream! {
            let mut row = match service.get(id).await {
                Ok(Some(row)) => Some(row),
                Ok(None) => {
                    yield Err(AppError::not_found(format!("no contact with id {id}")));
                    return;
                }
                Err(err) => {
                    yield Err(err);
                    return;
                }
            };
            let mut sent: Option<WindowState> = None;
            while row.is_some() {
                let state = WindowState::of(id, row.as_ref(), service.now());
                if sent.as_ref() != Some(&state) {
                    sent = Some(state.clone());
                    yield Ok(state.clone());
                }
                let expiry = state.expires_at.filter(|_| state.open);
                tokio::select! {
                    () = wake_at(&service, expiry) => continue,
                    message = bus.recv() => {
                        let reread = match message {
                            Ok(BusMessage::Change(change)) => change.contact_id == id,
                            // Missed events are recovered by reading the row again.
                            Ok(BusMessage::Resync) | Err(RecvError::Lagged(_)) => true,
                            Err(RecvError::Closed) => return,
                        };
                        if reread {
                            match service.get(id).await {
                                Ok(found) => row = found,
                                Err(err) => yield Err(err),
                            }
                        }
                    }
                }
            }
            let closed = WindowState::of(id, None, service.now());
            if sent.as_ref() != Some(&closed) {
                yield Ok(closed);
            }
        }
    }
}

/// Resolves at `at` on the service's clock, or never.
async fn wake_at(service: &ContactService, at: Option<DateTime<Utc>>) {
    match at {
        Some(at) => service.clock().sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use std::{sync::Arc, time::Duration};

    use futures_util::StreamExt;

    use super::*;
    use crate::{
        contacts::clock::SystemClock,
        db::{Db, DbOptions},
        events::EventBus,
    };

    async fn service() -> ContactService {
        let options = DbOptions {
            url: "sqlite::memory:".into(),
            max_connections: 1,
            acquire_timeout: Duration::from_secs(5),
            busy_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(5),
        };
        let db = Db::connect(&options).await.unwrap();
        db.migrate().await.unwrap();
        ContactService::new(db, Arc::new(SystemClock), EventBus::in_process())
    }

    #[tokio::test]
    async fn a_subscriber_that_falls_behind_is_told_and_closed_while_writers_go_on() {
        let service = service().await;
        let mut slow = Box::pin(service.watch_changes(None));
        let change = ContactChange {
            kind: ChangeKind::Created,
            contact_id: Uuid::now_v7(),
            at: Utc::now(),
        };
        // Far more than the bus holds; publishing never waits for the subscriber.
        for _ in 0..5_000 {
            service.events().publish(BusMessage::Change(change.clone()));
        }
        match slow.next().await {
            Some(Err(AppError::Lagged(missed))) => assert!(missed > 0),
            other => panic!("expected a lag error, got {other:?}"),
        }
        assert!(
            slow.next().await.is_none(),
            "the stream must end after the lag error"
        );
    }
}
