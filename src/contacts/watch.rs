//! Live views for subscriptions: a contact's window state, which also changes by itself when
//! the window expires (driven by the injected clock). Committed changes: see `follow`.

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
use crate::error::{AppError, AppResult};

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
        let mut feed = self.subscribe_changes();
        async_stream::stream! {
            // Changes up to the log's head are in the row read next; older snapshots that the
            // reader delivers after it are skipped (see `next_change`).
            let floor = match feed.start().await {
                Some(_) => service.change_head().await,
                None => return,
            };
            let floor = match floor {
                Ok(floor) => floor,
                Err(err) => {
                    yield Err(err);
                    return;
                }
            };
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
                let read = match next_change(&service, &mut feed, (id, floor), expiry).await {
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

/// Waits for the window's expiry or for news about contact `id` logged after `floor`.
async fn next_change(
    service: &ContactService,
    feed: &mut Subscription,
    (id, floor): (Uuid, i64),
    expiry: Option<DateTime<Utc>>,
) -> Next {
    tokio::select! {
        () = wake_at(service, expiry) => Next::Tick,
        message = feed.recv() => match message {
            Some(Fanned::Change(delivered)) if delivered.logged.position <= floor => Next::Tick,
            Some(Fanned::Change(delivered)) if delivered.logged.change.contact_id == id => {
                let row = delivered.logged.contact.clone();
                Next::Row(Box::new(Ok(row)), Some(delivered))
            }
            Some(Fanned::Change(delivered))
                if delivered.logged.change.merged_contact_id == Some(id) =>
            {
                let survivor = delivered.logged.change.contact_id;
                Next::Merged(survivor, Box::new(Ok(delivered.logged.contact.clone())))
            }
            Some(Fanned::Change(_)) => Next::Tick,
            // Missed changes are recovered by reading the row again.
            Some(Fanned::Lagged) => {
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
