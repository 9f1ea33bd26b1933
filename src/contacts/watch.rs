//! Live views for subscriptions: committed changes, and a contact's window state that also
//! changes by itself when the window expires (driven by the injected clock).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use entity::contact::Model;
use futures_util::Stream;
use uuid::Uuid;

use super::{
    fanout::{Delivered, Fanned, Subscription},
    policy,
    service::ContactService,
    window, windows,
};
use crate::{
    error::{AppError, AppResult},
    events::ContactChange,
};

/// Whether a contact may be messaged freely, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowState {
    pub contact_id: Uuid,
    pub open: bool,
    pub expires_at: Option<DateTime<Utc>>,
    /// Set on the last state of a watched contact that was merged into another: the survivor,
    /// whose window (given by `open` and `expires_at`) the client follows from now on.
    pub merged_into: Option<Uuid>,
}

impl WindowState {
    fn of(contact_id: Uuid, last: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Self {
        Self {
            contact_id,
            open: window::is_open(last, now),
            expires_at: window::expires_at(last),
            merged_into: None,
        }
    }
}

/// A committed change with the row as it is now (`None` once deleted).
pub type ChangeWithRow = (ContactChange, Option<Model>);

/// What changes a watched window next.
enum Next {
    /// Time passed, or another contact changed: recompute.
    Tick,
    /// The contact's row as it is now (boxed: a row is far larger than the other variants),
    /// and the change that brought it, when there was one.
    Row(Box<AppResult<Option<Model>>>, Option<Arc<Delivered>>),
    /// The contact was merged into the one with this id, whose row follows.
    Merged(Uuid, Box<AppResult<Option<Model>>>),
    Closed,
}

impl ContactService {
    /// Changes to one contact (`Some(id)`) or to all, as they commit. A subscriber that falls
    /// so far behind that events were dropped gets an error and the stream ends. Rows come
    /// from the service's fan-out: read once per change, not once per subscriber.
    pub fn watch_changes(
        &self,
        only: Option<Uuid>,
    ) -> impl Stream<Item = AppResult<ChangeWithRow>> + Send + use<> {
        let mut feed = self.subscribe_changes(only);
        async_stream::stream! {
            loop {
                let delivered = match feed.recv().await {
                    Some(Fanned::Change(delivered)) => delivered,
                    Some(Fanned::Resync) => continue,
                    Some(Fanned::Lagged(missed)) => {
                        yield Err(AppError::Lagged(missed));
                        return;
                    }
                    None => return,
                };
                if only.is_some_and(|id| !delivered.change.concerns(id)) {
                    continue;
                }
                yield delivered.row().map(|row| (delivered.change.clone(), row));
            }
        }
    }

    /// The contact's window: the current state first, then each change, including the moment
    /// it expires with no write. `NOT_FOUND` if the contact does not exist; ends (closed) when
    /// it is deleted; ends with a state naming the survivor when it is merged into another.
    /// With a business number, the window on that number; without one, on any number.
    pub fn watch_window(
        &self,
        id: Uuid,
        number: Option<String>,
    ) -> impl Stream<Item = AppResult<WindowState>> + Send + use<> {
        let service = self.clone();
        // Subscribed before the first read, so no change slips between the two.
        let mut feed = self.subscribe_changes(Some(id));
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
            // The watched window's latest inbound, read again only when the contact changed:
            // from the change's shared read when there is one, so many subscribers of one
            // contact cost one read per change.
            let mut delivered: Option<Arc<Delivered>> = None;
            let mut last = None;
            let mut stale = true;
            while row.is_some() {
                if stale {
                    last = match service
                        .last_inbound(row.as_ref(), number.as_deref(), delivered.as_deref())
                        .await
                    {
                        Ok(last) => last,
                        Err(err) => {
                            yield Err(err);
                            return;
                        }
                    };
                    stale = false;
                }
                let state = WindowState::of(id, last, service.now());
                if sent.as_ref() != Some(&state) {
                    sent = Some(state.clone());
                    yield Ok(state.clone());
                }
                let expiry = state.expires_at.filter(|_| state.open);
                let read = match next_change(&service, &mut feed, id, expiry).await {
                    Next::Tick => continue,
                    Next::Row(read, change) => {
                        delivered = change;
                        stale = true;
                        *read
                    }
                    Next::Merged(survivor, read) => {
                        let survivor_row = (*read).ok().flatten();
                        let last = service
                            .last_inbound(survivor_row.as_ref(), number.as_deref(), None)
                            .await
                            .unwrap_or_default();
                        yield Ok(WindowState {
                            merged_into: Some(survivor),
                            ..WindowState::of(id, last, service.now())
                        });
                        return;
                    }
                    Next::Closed => return,
                };
                match read {
                    Ok(found) => row = found,
                    Err(err) => yield Err(err),
                }
            }
            let closed = WindowState::of(id, None, service.now());
            if sent.as_ref() != Some(&closed) {
                yield Ok(closed);
            }
        }
    }
}

impl ContactService {
    /// The latest inbound of `row` on `number`, or on any number; from `change`'s shared
    /// read of the windows when given.
    async fn last_inbound(
        &self,
        row: Option<&Model>,
        number: Option<&str>,
        change: Option<&Delivered>,
    ) -> AppResult<Option<DateTime<Utc>>> {
        match (row, number, change) {
            (None, _, _) => Ok(None),
            (Some(row), None, _) => Ok(row.last_whatsapp_message_at),
            (Some(_), Some(number), Some(change)) => {
                let windows = change.windows(&self.db).await?;
                Ok(policy::latest_inbound(windows, Some(number)))
            }
            (Some(row), Some(number), None) => {
                windows::last_inbound(&self.db.read, row.id, number).await
            }
        }
    }
}

/// Waits for the window's expiry or for news about contact `id`.
async fn next_change(
    service: &ContactService,
    feed: &mut Subscription,
    id: Uuid,
    expiry: Option<DateTime<Utc>>,
) -> Next {
    tokio::select! {
        () = wake_at(service, expiry) => Next::Tick,
        message = feed.recv() => match message {
            Some(Fanned::Change(delivered)) if delivered.change.contact_id == id => {
                Next::Row(Box::new(delivered.row()), Some(delivered))
            }
            Some(Fanned::Change(delivered)) if delivered.change.merged_contact_id == Some(id) => {
                Next::Merged(delivered.change.contact_id, Box::new(delivered.row()))
            }
            Some(Fanned::Change(_)) => Next::Tick,
            // Missed events are recovered by reading the row again.
            Some(Fanned::Resync | Fanned::Lagged(_)) => {
                service.event_row_reads().inc();
                Next::Row(Box::new(service.get(id).await), None)
            }
            None => Next::Closed,
        },
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
        events::{BusMessage, ChangeKind, EventBus},
    };

    fn change(contact_id: Uuid) -> BusMessage {
        BusMessage::Change(ContactChange {
            kind: ChangeKind::Updated,
            contact_id,
            at: Utc::now(),
            merged_contact_id: None,
        })
    }

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
            merged_contact_id: None,
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

    #[tokio::test]
    async fn rows_nobody_watches_are_not_read_and_watched_ones_once() {
        let service = service().await;
        let (watched, other) = (Uuid::now_v7(), Uuid::now_v7());
        let mut first = Box::pin(service.watch_changes(Some(watched)));
        let mut second = Box::pin(service.watch_changes(Some(watched)));
        service.events().publish(change(other));
        service.events().publish(change(watched));
        for stream in [&mut first, &mut second] {
            let (change, row) = stream.next().await.unwrap().unwrap();
            assert_eq!((change.contact_id, row), (watched, None));
        }
        assert_eq!(service.event_row_reads().get(), 1);
    }

    #[tokio::test]
    async fn the_reader_stops_with_the_service_even_while_the_bus_lives_on() {
        let service = service().await;
        let mut feed = service.subscribe_changes(None);
        // As on PostgreSQL, where the LISTEN task keeps the bus open for the process.
        let bus = service.events().clone();
        drop(service);
        let ended = tokio::time::timeout(Duration::from_secs(5), feed.recv()).await;
        assert!(
            matches!(ended, Ok(None)),
            "the reader task outlived its service"
        );
        drop(bus);
    }
}
