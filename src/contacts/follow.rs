//! `contactEvents`: one subscriber's changes, from a cursor or from now on. The log is replayed
//! from the cursor, then the instance's reader takes over, with no gap and no duplicate (both
//! are in log order, and anything at or before the last position sent is skipped). A
//! subscriber that falls behind the reader catches up from the log instead of being ended.

use std::sync::Arc;

use futures_util::Stream;
use uuid::Uuid;

use super::{changelog::LoggedChange, fanout::Fanned, service::ContactService};
use crate::error::AppResult;

/// Changes read from the log at once while catching up.
const PAGE: u64 = 500;

impl ContactService {
    /// Changes to one contact (`Some(id)`, its merges into another included) or to all, in
    /// commit order: after log position `after`, or from now on without one. Ends with
    /// `CURSOR_EXPIRED` when `after` is older than the log's retention.
    pub fn follow_changes(
        &self,
        only: Option<Uuid>,
        after: Option<i64>,
    ) -> impl Stream<Item = AppResult<Arc<LoggedChange>>> + Send + use<> {
        let service = self.clone();
        // Subscribed before the log is read, so whatever the log read misses arrives here.
        let mut feed = self.subscribe_changes();
        let wanted = move |logged: &LoggedChange| only.is_none_or(|id| logged.change.concerns(id));
        async_stream::stream! {
            // Also waits for the reader to know where it starts before the log is read.
            let Some(start) = feed.start().await else {
                return;
            };
            let mut last = after.unwrap_or(start);
            loop {
                // Catch up from the log, to its current end.
                loop {
                    let read = match service.changes_after(Some(last), PAGE).await {
                        Ok(read) => read,
                        Err(err) => {
                            yield Err(err);
                            return;
                        }
                    };
                    service.event_row_reads().inc_by(read.changes.len() as u64);
                    for logged in read.changes {
                        last = logged.position;
                        if wanted(&logged) {
                            yield Ok(Arc::new(logged));
                        }
                    }
                    if !read.has_more {
                        break;
                    }
                }
                // Then live, until this subscriber falls behind the reader.
                loop {
                    match feed.recv().await {
                        Some(Fanned::Change(delivered)) if delivered.logged.position > last => {
                            last = delivered.logged.position;
                            if wanted(&delivered.logged) {
                                yield Ok(delivered.logged.clone());
                            }
                        }
                        Some(Fanned::Change(_)) => {}
                        Some(Fanned::Lagged) => break,
                        None => return,
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::Utc;
    use futures_util::StreamExt;

    use super::*;
    use crate::{
        contacts::clock::SystemClock,
        db::{Db, DbOptions},
        events::{ChangeKind, ContactChange, EventBus},
    };

    async fn service() -> ContactService {
        let db = Db::connect(&DbOptions::in_memory()).await.unwrap();
        db.migrate().await.unwrap();
        ContactService::new(db, Arc::new(SystemClock), EventBus::in_process())
    }

    /// Logs and announces `n` updates of contacts that do not exist (snapshots null).
    async fn log_changes(service: &ContactService, n: usize) -> Vec<Uuid> {
        let ids: Vec<Uuid> = (0..n).map(|_| Uuid::now_v7()).collect();
        let changes: Vec<ContactChange> = ids
            .iter()
            .map(|&contact_id| ContactChange {
                kind: ChangeKind::Updated,
                contact_id,
                at: Utc::now(),
                merged_contact_id: None,
            })
            .collect();
        let txn = service.begin_write().await.unwrap();
        service.commit_announcing(txn, &changes).await.unwrap();
        ids
    }

    /// A subscriber from now on, checked by logging a change and seeing it arrive.
    async fn primed(service: &ContactService) -> impl Stream<Item = AppResult<Arc<LoggedChange>>> {
        // The reader is started first: changes committed while it starts precede it.
        service.subscribe_changes().start().await.unwrap();
        let mut stream = Box::pin(service.follow_changes(None, None));
        let probe = log_changes(service, 1).await[0];
        let first = stream.next().await.unwrap().unwrap();
        assert_eq!(first.change.contact_id, probe);
        stream
    }

    #[tokio::test]
    async fn a_subscriber_far_behind_catches_up_from_the_log_in_order_without_duplicates() {
        let service = service().await;
        let mut slow = Box::pin(primed(&service).await);
        // Far more than the reader holds for a subscriber; nobody reads meanwhile.
        let mut ids = Vec::new();
        for _ in 0..6 {
            ids.extend(log_changes(&service, 1_000).await);
        }
        tokio::task::yield_now().await;
        let mut seen = Vec::new();
        let mut last = 0;
        while seen.len() < ids.len() {
            let next = tokio::time::timeout(Duration::from_secs(10), slow.next()).await;
            let logged = next.expect("a change").expect("open").expect("no error");
            assert!(logged.position > last, "out of order or repeated");
            last = logged.position;
            seen.push(logged.change.contact_id);
        }
        assert_eq!(seen, ids);
    }

    #[tokio::test]
    async fn a_cursor_replays_what_followed_it_then_continues_live() {
        let service = service().await;
        let before = log_changes(&service, 3).await;
        let cursor = service.changes_after(None, 10).await.unwrap().changes[0].position;
        let mut resumed = Box::pin(service.follow_changes(None, Some(cursor)));
        for id in &before[1..] {
            assert_eq!(
                resumed.next().await.unwrap().unwrap().change.contact_id,
                *id
            );
        }
        let live = log_changes(&service, 1).await[0];
        assert_eq!(
            resumed.next().await.unwrap().unwrap().change.contact_id,
            live
        );
        // One contact's changes only.
        let mut one = Box::pin(service.follow_changes(Some(before[2]), Some(0)));
        assert_eq!(
            one.next().await.unwrap().unwrap().change.contact_id,
            before[2]
        );
        log_changes(&service, 1).await;
        let again = log_changes(&service, 1).await[0];
        let mut other = Box::pin(service.follow_changes(Some(again), Some(0)));
        assert_eq!(
            other.next().await.unwrap().unwrap().change.contact_id,
            again
        );
    }

    #[tokio::test]
    async fn each_change_is_read_once_for_all_subscribers() {
        let service = service().await;
        let mut all = Box::pin(primed(&service).await);
        let mut also = Box::pin(primed(&service).await);
        let _ = all.next().await; // the second probe
        let reads = service.event_row_reads().get();
        let ids = [
            log_changes(&service, 1).await[0],
            log_changes(&service, 1).await[0],
        ];
        for stream in [&mut all, &mut also] {
            for id in ids {
                assert_eq!(stream.next().await.unwrap().unwrap().change.contact_id, id);
            }
        }
        // Two changes, each read once by the reader, whatever the subscribers.
        assert_eq!(service.event_row_reads().get() - reads, 2);
    }

    #[tokio::test]
    async fn the_reader_stops_with_the_service_even_while_the_bus_lives_on() {
        let service = service().await;
        let mut feed = service.subscribe_changes();
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
