//! One reader between the change log and every subscriber of this instance: each change is
//! read once from the log (the contact's snapshot included), however many subscribers show it,
//! and handed to all of them in log order.
//!
//! The event bus only wakes the reader: whatever it says (a change, a lost LISTEN connection,
//! a lag of the bus itself), the reader reads the log from the last position it delivered, so
//! a missed notification delays a change but never loses it. A subscriber that falls behind
//! the reader re-reads the log from its own last position (see `follow`).

use std::{
    sync::{
        Arc, OnceLock,
        atomic::{AtomicI64, Ordering},
    },
    time::Duration,
};

use prometheus_client::metrics::counter::Counter;
use tokio::sync::{
    broadcast::{self, error::RecvError},
    oneshot, watch,
};

use entity::whatsapp_window;

use super::{
    changelog::{self, LoggedChange},
    windows,
};
use crate::{
    db::Db,
    error::AppResult,
    events::{BusMessage, EventBus},
};

/// Changes a subscriber may fall behind the reader before it catches up from the log.
const CAPACITY: usize = 1024;

/// Changes read from the log at once.
const PAGE: u64 = 1000;

/// How often the reader looks at the log with no wake-up: a safety net for a notification lost
/// on the way (the bus reports a lost LISTEN connection, but not every kind of loss).
const POLL: Duration = Duration::from_secs(1);

/// What subscribers receive.
#[derive(Debug, Clone)]
pub(super) enum Fanned {
    Change(Arc<Delivered>),
    /// Changes were dropped before reaching the subscriber: read the log.
    Lagged,
}

/// A change from the log, as handed to every subscriber of this instance.
#[derive(Debug)]
pub(super) struct Delivered {
    pub(super) logged: Arc<LoggedChange>,
    /// The contact's windows per business number, read by the first subscriber that needs
    /// them and shared with the rest (per-number window subscriptions).
    windows: tokio::sync::OnceCell<Vec<whatsapp_window::Model>>,
}

impl Delivered {
    fn new(logged: LoggedChange) -> Self {
        Self {
            logged: Arc::new(logged),
            windows: tokio::sync::OnceCell::new(),
        }
    }

    /// The contact's windows after the change, read once for every subscriber that asks.
    pub(super) async fn windows(&self, db: &Db) -> AppResult<&[whatsapp_window::Model]> {
        let id = self.logged.change.contact_id;
        let rows = self
            .windows
            .get_or_try_init(|| windows::of_contacts(&db.read, std::slice::from_ref(&id)))
            .await?;
        Ok(rows)
    }
}

/// The service's fan-out, shared by its clones. The reader task starts with the first
/// subscriber and ends when the service is dropped.
#[derive(Default)]
pub(super) struct Fanout {
    running: OnceLock<Running>,
    reads: Counter,
}

struct Running {
    sender: broadcast::Sender<Fanned>,
    /// The last position the reader has sent (-1 until it has started).
    sent: Arc<AtomicI64>,
    /// The position the reader started after, once it knows it.
    started: watch::Receiver<Option<i64>>,
    /// Dropped with the service, which stops the reader.
    _stop: oneshot::Sender<()>,
}

impl Fanout {
    /// Changes the reader delivers from now on.
    pub(super) fn subscribe(&self, bus: &EventBus, db: &Db) -> Subscription {
        let running = self.running.get_or_init(|| self.start(bus, db));
        let receiver = running.sender.subscribe();
        // Read after subscribing: whatever the reader sends after this position, we receive.
        let sent = running.sent.load(Ordering::Acquire);
        Subscription {
            receiver,
            started: running.started.clone(),
            from: (sent >= 0).then_some(sent),
        }
    }

    /// Log rows read to deliver events.
    pub(super) fn reads(&self) -> &Counter {
        &self.reads
    }

    fn start(&self, bus: &EventBus, db: &Db) -> Running {
        let (sender, _) = broadcast::channel(CAPACITY);
        let (stop, stopped) = oneshot::channel();
        let (started_tx, started) = watch::channel(None);
        let sent = Arc::new(AtomicI64::new(-1));
        // The reader holds no service (nor the bus's sender), so dropping the service ends it.
        let reader = Reader {
            bus: bus.subscribe(),
            db: db.clone(),
            sender: sender.clone(),
            sent: sent.clone(),
            reads: self.reads.clone(),
        };
        tokio::spawn(reader.run(stopped, started_tx));
        Running {
            sender,
            sent,
            started,
            _stop: stop,
        }
    }
}

/// One subscriber's feed.
pub(super) struct Subscription {
    receiver: broadcast::Receiver<Fanned>,
    started: watch::Receiver<Option<i64>>,
    /// The reader's last position sent when this subscribed, if it had started.
    from: Option<i64>,
}

impl Subscription {
    /// The next message (its own lag reported as [`Fanned::Lagged`]); `None` once closed.
    pub(super) async fn recv(&mut self) -> Option<Fanned> {
        match self.receiver.recv().await {
            Ok(message) => Some(message),
            Err(RecvError::Lagged(_)) => Some(Fanned::Lagged),
            Err(RecvError::Closed) => None,
        }
    }

    /// The position this subscription starts after: every change after it is received here
    /// or was in the log before this returns. The reader's progress when this subscribed,
    /// or, for the subscription that started the reader, where the reader started (changes
    /// committed while it started are then before it). `None` once the reader has stopped.
    pub(super) async fn start(&mut self) -> Option<i64> {
        if let Some(from) = self.from {
            return Some(from);
        }
        let started = self.started.wait_for(Option::is_some).await.ok()?;
        *started
    }
}

/// The task: wake-ups in, the log read once, subscribers out.
struct Reader {
    bus: broadcast::Receiver<BusMessage>,
    db: Db,
    sender: broadcast::Sender<Fanned>,
    sent: Arc<AtomicI64>,
    reads: Counter,
}

impl Reader {
    async fn run(
        mut self,
        mut stopped: oneshot::Receiver<()>,
        started: watch::Sender<Option<i64>>,
    ) {
        let mut last = tokio::select! {
            _ = &mut stopped => return,
            head = self.head() => head,
        };
        self.sent.store(last, Ordering::Release);
        started.send_replace(Some(last));
        let mut poll = tokio::time::interval(POLL);
        // A bus with no sender left (a command-line bus) never wakes the reader; the poll does.
        let mut bus_open = true;
        loop {
            tokio::select! {
                _ = &mut stopped => return,
                message = self.bus.recv(), if bus_open => {
                    bus_open = !matches!(message, Err(RecvError::Closed));
                }
                _ = poll.tick() => {}
            }
            // Everything already waiting is covered by the one read below.
            while self.bus.try_recv().is_ok() {}
            last = self.deliver_after(last).await;
        }
    }

    /// The log's head, retrying until the database answers.
    async fn head(&self) -> i64 {
        let mut backoff = Duration::from_millis(50);
        loop {
            match changelog::head(&self.db.read).await {
                Ok(head) => return head,
                Err(err) => {
                    tracing::warn!(error = %err.describe(), "change log unreadable; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// Sends every change after `last` on, in order; returns the last position sent. A failed
    /// read is retried at the next wake-up or poll.
    async fn deliver_after(&self, mut last: i64) -> i64 {
        loop {
            let read = match changelog::read_after(&self.db.read, last, PAGE).await {
                Ok(read) => read,
                Err(err) => {
                    tracing::warn!(error = %err.describe(), "change log read failed; retrying");
                    return last;
                }
            };
            self.reads.inc_by(read.changes.len() as u64);
            for change in read.changes {
                last = change.position;
                // Having no subscriber right now is fine.
                let _ = self
                    .sender
                    .send(Fanned::Change(Arc::new(Delivered::new(change))));
                self.sent.store(last, Ordering::Release);
            }
            if !read.has_more {
                return last;
            }
        }
    }
}
