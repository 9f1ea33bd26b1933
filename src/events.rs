//! Change events: the one place where writes are announced, for subscriptions. They only
//! wake each instance's reader of the change log (`contacts::changelog`), which is what
//! subscribers receive, so a lost or malformed event delays a change but never loses it.
//!
//! SQLite: an in-process broadcast after commit. PostgreSQL: `pg_notify` after the commit (so
//! nothing is announced unless it commits) and a LISTEN connection per instance that feeds the
//! local broadcast, so a write through any instance reaches subscribers on every instance.
//!
//! Why after the commit rather than inside the writing transaction: a transaction that has
//! notified takes PostgreSQL's database-wide notify lock at commit and holds it until the
//! commit ends, so every writing transaction would commit one at a time, and the notify
//! statement itself would run inside the change log's commit-ordering section. A notification
//! only wakes readers, which also poll the log every second, so one lost to a crash between
//! the commit and the notify delays a change by at most a poll and loses nothing. One task per
//! process sends them, many changes per statement.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use uuid::Uuid;

/// What happened to a contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Created,
    Updated,
    Deleted,
    /// Another contact was merged into this one (see `ContactChange::merged_contact_id`).
    Merged,
}

impl ChangeKind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Created => "CREATED",
            Self::Updated => "UPDATED",
            Self::Deleted => "DELETED",
            Self::Merged => "MERGED",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Self> {
        [Self::Created, Self::Updated, Self::Deleted, Self::Merged]
            .into_iter()
            .find(|kind| kind.name() == name)
    }
}

/// A committed change. Listeners re-read the row: the event carries no data that could go stale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactChange {
    pub kind: ChangeKind,
    pub contact_id: Uuid,
    pub at: DateTime<Utc>,
    /// For `Merged`: the contact absorbed into `contact_id`, now deleted.
    pub merged_contact_id: Option<Uuid>,
}

impl ContactChange {
    /// True when the change is news for contact `id`: its own, or its merge into another.
    pub fn concerns(&self, id: Uuid) -> bool {
        self.contact_id == id || self.merged_contact_id == Some(id)
    }

    fn to_payload(&self) -> String {
        json!({
            "id": self.contact_id,
            "kind": self.kind.name(),
            "at": self.at.to_rfc3339_opts(SecondsFormat::Micros, true),
            "merged": self.merged_contact_id,
        })
        .to_string()
    }

    fn from_payload(payload: &str) -> Option<Self> {
        let value: Value = serde_json::from_str(payload).ok()?;
        Some(Self {
            kind: ChangeKind::from_name(value["kind"].as_str()?)?,
            contact_id: Uuid::parse_str(value["id"].as_str()?).ok()?,
            at: DateTime::parse_from_rfc3339(value["at"].as_str()?)
                .ok()?
                .with_timezone(&Utc),
            merged_contact_id: value["merged"]
                .as_str()
                .and_then(|id| Uuid::parse_str(id).ok()),
        })
    }
}

/// What subscribers receive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusMessage {
    Change(ContactChange),
    /// Events may have been missed (the LISTEN connection was lost): re-read what you show.
    Resync,
}

#[derive(Debug, Clone)]
enum Transport {
    InProcess,
    Postgres {
        channel: String,
        /// Payloads of committed changes, for the task that notifies ([`notify_committed`]).
        outbox: mpsc::Sender<String>,
    },
}

/// Fan-out of committed changes. Bounded: a subscriber that falls behind is told it lagged;
/// writers never wait for subscribers.
#[derive(Debug, Clone)]
pub struct EventBus {
    sender: broadcast::Sender<BusMessage>,
    transport: Transport,
}

/// How many messages a subscriber may fall behind before it is dropped.
const CAPACITY: usize = 1024;

/// Notifications sent by one statement (PostgreSQL allows 1,664 result columns).
const NOTIFY_CHUNK: usize = 1000;

/// Payloads waiting for the notifying task. Beyond it a change is not announced and readers
/// find it at their next poll of the log: writers never wait on notifications.
const OUTBOX_CAPACITY: usize = 16 * NOTIFY_CHUNK;

impl EventBus {
    /// Events stay inside this process (SQLite: one instance owns the file).
    pub fn in_process() -> Self {
        Self {
            sender: broadcast::channel(CAPACITY).0,
            transport: Transport::InProcess,
        }
    }

    /// Events travel through PostgreSQL's NOTIFY on `channel`, sent on `conn` by a task of
    /// their own; see [`listen_postgres`] for the receiving side.
    pub fn postgres(channel: String, conn: DatabaseConnection) -> Self {
        let (outbox, pending) = mpsc::channel(OUTBOX_CAPACITY);
        tokio::spawn(notify_committed(conn, channel.clone(), pending));
        Self {
            sender: broadcast::channel(CAPACITY).0,
            transport: Transport::Postgres { channel, outbox },
        }
    }

    /// Announces committed `changes`: to this process's subscribers (SQLite), or through
    /// PostgreSQL to every instance's, this one's included.
    pub fn committed(&self, changes: &[ContactChange]) {
        match &self.transport {
            Transport::InProcess => {
                for change in changes {
                    self.publish(BusMessage::Change(change.clone()));
                }
            }
            Transport::Postgres { outbox, .. } => {
                for change in changes {
                    if outbox.try_send(change.to_payload()).is_err() {
                        // Full (or the task is gone): the readers' poll finds the rest.
                        break;
                    }
                }
            }
        }
    }

    /// Delivers to every local subscriber; having none is fine.
    pub fn publish(&self, message: BusMessage) {
        let _ = self.sender.send(message);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<BusMessage> {
        self.sender.subscribe()
    }
}

/// The bus for `db`: in-process on SQLite; on PostgreSQL, NOTIFY on a channel named after the
/// schema (so deployments sharing a database do not hear each other) with a listener task.
pub async fn start(db: &crate::db::Db, url: &str) -> Result<EventBus, DbErr> {
    let bus = announcer(db).await?;
    if matches!(bus.transport, Transport::Postgres { .. }) {
        tokio::spawn(listen_postgres(bus.clone(), url.to_owned()));
    }
    Ok(bus)
}

/// A bus that only announces (command-line tools): on PostgreSQL, running servers hear the
/// changes; nothing here listens.
pub async fn announcer(db: &crate::db::Db) -> Result<EventBus, DbErr> {
    if db.backend() != DbBackend::Postgres {
        return Ok(EventBus::in_process());
    }
    let schema = db
        .read
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT current_schema()::text AS s",
        ))
        .await?
        .map(|row| row.try_get::<String>("", "s"))
        .transpose()?
        .unwrap_or_default();
    Ok(EventBus::postgres(
        format!("contact_events:{schema}"),
        db.write.clone(),
    ))
}

/// Sends the payloads of committed changes as NOTIFY on `channel`, as many per statement as
/// are waiting (up to [`NOTIFY_CHUNK`]), until every sender is gone. A failed statement loses
/// its notifications, never the changes: readers poll the log.
async fn notify_committed(
    conn: DatabaseConnection,
    channel: String,
    mut pending: mpsc::Receiver<String>,
) {
    let mut batch = Vec::with_capacity(NOTIFY_CHUNK);
    while pending.recv_many(&mut batch, NOTIFY_CHUNK).await > 0 {
        let calls: Vec<String> = (0..batch.len())
            .map(|i| format!("pg_notify($1, ${})", i + 2))
            .collect();
        let mut values = Vec::with_capacity(batch.len() + 1);
        values.push(channel.clone().into());
        values.extend(batch.drain(..).map(sea_orm::Value::from));
        let notify = Statement::from_sql_and_values(
            DbBackend::Postgres,
            format!("SELECT {}", calls.join(", ")),
            values,
        );
        if let Err(err) = conn.execute_raw(notify).await {
            tracing::warn!(error = %err, "change notifications not sent; readers poll the log");
        }
    }
}

/// Forwards NOTIFY payloads from PostgreSQL into `bus` until the process ends, reconnecting
/// after outages (and telling subscribers to re-read, since events may have been missed).
pub async fn listen_postgres(bus: EventBus, url: String) {
    let Transport::Postgres { channel, .. } = bus.transport.clone() else {
        return;
    };
    let mut backoff = Duration::from_millis(100);
    loop {
        match listen_once(&bus, &url, &channel).await {
            Ok(()) => backoff = Duration::from_millis(100),
            Err(err) => {
                tracing::warn!(error = %err, "event listener lost PostgreSQL; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// One LISTEN session; returns when the connection is lost.
async fn listen_once(bus: &EventBus, url: &str, channel: &str) -> Result<(), sea_orm::sqlx::Error> {
    let mut listener = sea_orm::sqlx::postgres::PgListener::connect(url).await?;
    listener.ignore_pool_close_event(true);
    listener.listen(channel).await?;
    // Anything committed while we were away is only visible by re-reading.
    bus.publish(BusMessage::Resync);
    loop {
        match listener.try_recv().await? {
            Some(notification) => match ContactChange::from_payload(notification.payload()) {
                Some(change) => bus.publish(BusMessage::Change(change)),
                None => tracing::warn!(
                    payload = notification.payload(),
                    "ignoring a malformed event"
                ),
            },
            None => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trips() {
        let change = ContactChange {
            kind: ChangeKind::Merged,
            merged_contact_id: Some(Uuid::now_v7()),
            contact_id: Uuid::now_v7(),
            at: DateTime::parse_from_rfc3339("2026-11-24T13:37:00.123456Z")
                .unwrap()
                .to_utc(),
        };
        assert_eq!(
            ContactChange::from_payload(&change.to_payload()),
            Some(change)
        );
        assert_eq!(ContactChange::from_payload("{\"kind\":\"NOPE\"}"), None);
    }

    #[tokio::test]
    async fn in_process_bus_delivers_after_commit_only() {
        let bus = EventBus::in_process();
        let mut receiver = bus.subscribe();
        let change = ContactChange {
            kind: ChangeKind::Created,
            contact_id: Uuid::now_v7(),
            at: Utc::now(),
            merged_contact_id: None,
        };
        bus.committed(std::slice::from_ref(&change));
        assert_eq!(receiver.recv().await.unwrap(), BusMessage::Change(change));
    }
}
