//! One reader between the event bus and every subscriber of this instance: each change's row
//! is read once, however many subscribers show it, and only when one of them wants it.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError},
};

use entity::{
    contact::{Column, Entity, Model},
    whatsapp_window,
};
use prometheus_client::metrics::counter::Counter;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use tokio::sync::{
    broadcast::{
        self,
        error::{RecvError, TryRecvError},
    },
    oneshot,
};
use uuid::Uuid;

use super::windows;
use crate::{
    db::Db,
    error::{AppError, AppResult},
    events::{BusMessage, ChangeKind, ContactChange, EventBus},
};

/// Messages a subscriber may fall behind before it is told it lagged (as on the bus).
const CAPACITY: usize = 1024;

/// Changes already waiting on the bus that are read with one query (a bulk import announces
/// thousands at once).
const BATCH: usize = 256;

/// What subscribers receive.
#[derive(Debug, Clone)]
pub(super) enum Fanned {
    Change(Arc<Delivered>),
    /// Events may have been missed upstream: re-read what you show.
    Resync,
    /// This many events were dropped before reaching the subscriber.
    Lagged(u64),
}

/// A committed change and its row as read after it (`None` once deleted).
#[derive(Debug)]
pub(super) struct Delivered {
    pub(super) change: ContactChange,
    row: Result<Option<Model>, Arc<AppError>>,
    /// The contact's windows per business number, read by the first subscriber that needs
    /// them and shared with the rest (per-number window subscriptions).
    windows: tokio::sync::OnceCell<Vec<whatsapp_window::Model>>,
}

impl Delivered {
    /// The contact's windows after the change, read once for every subscriber that asks.
    pub(super) async fn windows(&self, db: &Db) -> AppResult<&[whatsapp_window::Model]> {
        let id = self.change.contact_id;
        let rows = self
            .windows
            .get_or_try_init(|| windows::of_contacts(&db.read, std::slice::from_ref(&id)))
            .await?;
        Ok(rows)
    }

    /// The row, or the read's failure (told to every subscriber that wanted the row).
    pub(super) fn row(&self) -> AppResult<Option<Model>> {
        match &self.row {
            Ok(row) => Ok(row.clone()),
            Err(err) => Err(match err.as_ref() {
                AppError::Unavailable(detail) => AppError::Unavailable(detail.clone()),
                AppError::Internal(detail) => AppError::Internal(detail.clone()),
                other => AppError::Internal(format!("{other:?}")),
            }),
        }
    }
}

/// The service's fan-out, shared by its clones. The reader task starts with the first
/// subscriber and ends when the bus closes or the service is dropped.
#[derive(Default)]
pub(super) struct Fanout {
    running: OnceLock<Running>,
    interest: Arc<Mutex<Interest>>,
    reads: Counter,
}

struct Running {
    sender: broadcast::Sender<Fanned>,
    /// Dropped with the service, which stops the reader.
    _stop: oneshot::Sender<()>,
}

impl Fanout {
    /// Messages from now on, for a subscriber to every change (`None`) or to one contact's.
    pub(super) fn subscribe(&self, bus: &EventBus, db: &Db, only: Option<Uuid>) -> Subscription {
        let running = self.running.get_or_init(|| self.start(bus, db));
        // Listening before declaring interest: whatever the reader reads for us, we receive.
        let receiver = running.sender.subscribe();
        lock(&self.interest).add(only);
        Subscription {
            receiver,
            _interest: InterestGuard {
                interest: self.interest.clone(),
                only,
            },
        }
    }

    /// Rows read to deliver events.
    pub(super) fn reads(&self) -> &Counter {
        &self.reads
    }

    fn start(&self, bus: &EventBus, db: &Db) -> Running {
        let (sender, _) = broadcast::channel(CAPACITY);
        let (stop, stopped) = oneshot::channel();
        // The reader holds no service (nor the bus's sender), so dropping the service ends it.
        let reader = Reader {
            bus: bus.subscribe(),
            db: db.clone(),
            sender: sender.clone(),
            interest: self.interest.clone(),
            reads: self.reads.clone(),
        };
        tokio::spawn(reader.run(stopped));
        Running {
            sender,
            _stop: stop,
        }
    }
}

/// One subscriber's feed; its interest lasts until it is dropped.
pub(super) struct Subscription {
    receiver: broadcast::Receiver<Fanned>,
    _interest: InterestGuard,
}

impl Subscription {
    /// The next message (its own lag reported as [`Fanned::Lagged`]); `None` once closed.
    pub(super) async fn recv(&mut self) -> Option<Fanned> {
        match self.receiver.recv().await {
            Ok(message) => Some(message),
            Err(RecvError::Lagged(missed)) => Some(Fanned::Lagged(missed)),
            Err(RecvError::Closed) => None,
        }
    }
}

/// Who wants rows: subscribers to everything, and subscribers to one contact by id.
#[derive(Debug, Default)]
struct Interest {
    all: usize,
    ids: HashMap<Uuid, usize>,
}

impl Interest {
    fn wants(&self, id: Uuid) -> bool {
        self.all > 0 || self.ids.contains_key(&id)
    }

    fn add(&mut self, only: Option<Uuid>) {
        match only {
            Some(id) => *self.ids.entry(id).or_default() += 1,
            None => self.all += 1,
        }
    }

    fn remove(&mut self, only: Option<Uuid>) {
        match only {
            Some(id) => {
                if let Some(count) = self.ids.get_mut(&id) {
                    *count -= 1;
                    if *count == 0 {
                        self.ids.remove(&id);
                    }
                }
            }
            None => self.all = self.all.saturating_sub(1),
        }
    }
}

struct InterestGuard {
    interest: Arc<Mutex<Interest>>,
    only: Option<Uuid>,
}

impl Drop for InterestGuard {
    fn drop(&mut self) {
        lock(&self.interest).remove(self.only);
    }
}

/// The counts stay consistent under a panic elsewhere: each update is one statement.
fn lock(interest: &Mutex<Interest>) -> MutexGuard<'_, Interest> {
    interest.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The task: bus in, rows read once, subscribers out.
struct Reader {
    bus: broadcast::Receiver<BusMessage>,
    db: Db,
    sender: broadcast::Sender<Fanned>,
    interest: Arc<Mutex<Interest>>,
    reads: Counter,
}

impl Reader {
    async fn run(mut self, mut stopped: oneshot::Receiver<()>) {
        loop {
            let first = tokio::select! {
                _ = &mut stopped => return,
                message = self.bus.recv() => message,
            };
            let mut batch = vec![first];
            while batch.len() < BATCH {
                match self.bus.try_recv() {
                    Ok(message) => batch.push(Ok(message)),
                    Err(TryRecvError::Lagged(missed)) => batch.push(Err(RecvError::Lagged(missed))),
                    Err(TryRecvError::Empty | TryRecvError::Closed) => break,
                }
            }
            if !self.deliver(batch).await {
                return;
            }
        }
    }

    /// Sends `batch` on in order, with the wanted rows read in one query; false once the bus
    /// has closed.
    async fn deliver(&self, batch: Vec<Result<BusMessage, RecvError>>) -> bool {
        let wanted: Vec<bool> = {
            let interest = lock(&self.interest);
            let wants = |item: &Result<BusMessage, RecvError>| match item {
                Ok(BusMessage::Change(change)) => {
                    interest.wants(change.contact_id)
                        || change
                            .merged_contact_id
                            .is_some_and(|id| interest.wants(id))
                }
                _ => true,
            };
            batch.iter().map(wants).collect()
        };
        let mut ids: Vec<Uuid> = batch
            .iter()
            .zip(&wanted)
            .filter_map(|(item, &wanted)| match item {
                Ok(BusMessage::Change(change)) if wanted && change.kind != ChangeKind::Deleted => {
                    Some(change.contact_id)
                }
                _ => None,
            })
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let rows = self.read(ids).await;
        for (item, wanted) in batch.into_iter().zip(wanted) {
            let message = match item {
                Ok(BusMessage::Change(_)) if !wanted => continue,
                Ok(BusMessage::Change(change)) => Fanned::Change(Arc::new(Delivered {
                    row: match (&rows, change.kind) {
                        (_, ChangeKind::Deleted) => Ok(None),
                        (Ok(rows), _) => Ok(rows.get(&change.contact_id).cloned()),
                        (Err(err), _) => Err(err.clone()),
                    },
                    change,
                    windows: tokio::sync::OnceCell::new(),
                })),
                Ok(BusMessage::Resync) => Fanned::Resync,
                Err(RecvError::Lagged(missed)) => Fanned::Lagged(missed),
                Err(RecvError::Closed) => return false,
            };
            // Having no subscriber right now is fine.
            let _ = self.sender.send(message);
        }
        true
    }

    async fn read(&self, ids: Vec<Uuid>) -> Result<HashMap<Uuid, Model>, Arc<AppError>> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        self.reads.inc_by(ids.len() as u64);
        let rows = Entity::find()
            .filter(Column::Id.is_in(ids))
            .all(&self.db.read)
            .await
            .map_err(|err| Arc::new(AppError::from(err)))?;
        Ok(rows.into_iter().map(|row| (row.id, row)).collect())
    }
}
