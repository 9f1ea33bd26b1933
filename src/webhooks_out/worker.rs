//! One endpoint's delivery loop: take the lease, read the log after the acknowledged
//! position, POST the batch until a 2xx, advance, repeat; wait for changes when caught up.

use std::{sync::Arc, time::Duration};

use reqwest::header::CONTENT_TYPE;
use tokio::sync::{broadcast, watch};

use super::{
    payload::{self, ID_HEADER, SIGNATURE_HEADER},
    settings::{Endpoint, WebhookSettings},
};
use crate::{
    contacts::{ContactService, changelog::LoggedChange, webhook_positions::Lease},
    error::{AppError, AppResult},
    events::BusMessage,
    metrics::Metrics,
};

/// Reading a response body (thrown away) stops once this much came: receivers owe us only
/// a status.
const MAX_RESPONSE_BYTES: usize = 4096;

pub(super) struct Worker {
    pub service: ContactService,
    pub endpoint: Endpoint,
    pub settings: Arc<WebhookSettings>,
    pub client: reqwest::Client,
    pub metrics: Arc<Metrics>,
    pub holder: String,
    pub stop: watch::Receiver<bool>,
}

/// What one step ended with.
enum Step {
    /// A batch was acknowledged (or skipped as expired): go on at once.
    Moved,
    /// Nothing to deliver.
    CaughtUp,
    /// Another instance holds the lease.
    NotHolder,
    Stopped,
}

impl Worker {
    pub async fn run(mut self) {
        // Subscribed before the first read, so no announcement falls between read and wait.
        let mut announced = self.service.events().subscribe();
        let mut registered = false;
        let mut failures = 0u32;
        while !self.stopped() {
            let step = match registered {
                true => self.step().await,
                false => self.register().await.map(|()| Step::Moved),
            };
            if step.is_ok() {
                failures = 0;
            }
            let wait = match step {
                Ok(Step::Moved) => {
                    registered = true;
                    continue;
                }
                Ok(Step::Stopped) => break,
                Ok(Step::CaughtUp) => Some(&mut announced),
                Ok(Step::NotHolder) => None,
                Err(err) => {
                    tracing::warn!(endpoint = %self.endpoint.origin, error = %err.describe(), "webhook worker: database error");
                    failures = failures.saturating_add(1);
                    self.pause(self.backoff(failures)).await;
                    continue;
                }
            };
            self.wait(wait).await;
        }
        if let Err(err) = self.service.release_webhook_lease(self.lease()).await {
            tracing::warn!(endpoint = %self.endpoint.origin, error = %err.describe(), "webhook lease not released");
        }
    }

    fn lease(&self) -> Lease<'_> {
        Lease {
            endpoint: &self.endpoint.key,
            holder: &self.holder,
        }
    }

    /// Stopped, or the handle is gone.
    fn stopped(&self) -> bool {
        *self.stop.borrow() || self.stop.has_changed().is_err()
    }

    fn ttl_ms(&self) -> i64 {
        i64::try_from(self.settings.lease.as_millis()).unwrap_or(i64::MAX)
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let settings = &self.settings;
        payload::backoff(
            settings.backoff_base,
            settings.backoff_cap,
            attempt,
            |bound| fastrand::u64(0..=bound),
        )
    }

    async fn register(&self) -> AppResult<()> {
        let endpoint = &self.endpoint;
        self.service
            .register_webhook_endpoint(&endpoint.key, &endpoint.origin)
            .await
    }

    /// Takes the lease and delivers the next batch, if any.
    async fn step(&mut self) -> AppResult<Step> {
        let Some(position) = self
            .service
            .take_webhook_lease(self.lease(), self.ttl_ms())
            .await?
        else {
            return Ok(Step::NotHolder);
        };
        let batch = self.settings.batch_size;
        let read = match self.service.changes_after(Some(position), batch).await {
            Err(AppError::CursorExpired) => return self.skip_expired(position).await,
            read => read?,
        };
        let head = self.service.change_head().await?;
        self.metrics
            .webhook_out
            .lag(&self.endpoint.label, head - position);
        if read.changes.is_empty() {
            return Ok(Step::CaughtUp);
        }
        self.deliver(position, &read.changes).await
    }

    /// Sends `changes` (the ones after `position`) until acknowledged, then records them so.
    async fn deliver(&mut self, position: i64, changes: &[LoggedChange]) -> AppResult<Step> {
        // A batch is as many of `changes` as fit in a body a receiver accepts.
        let (body, taken) = payload::body_within(changes, payload::MAX_BODY_BYTES)
            .map_err(|err| AppError::Internal(format!("webhook body: {err}")))?;
        let changes = &changes[..taken.min(changes.len())];
        let (Some(first), Some(last)) = (changes.first(), changes.last()) else {
            return Ok(Step::CaughtUp);
        };
        let (first, last) = (first.position, last.position);
        let id = payload::delivery_id(first, last);
        let label = self.endpoint.label.clone();
        for attempt in 0u32.. {
            if attempt > 0 {
                let still = self.service.take_webhook_lease(self.lease(), self.ttl_ms());
                if still.await? != Some(position) {
                    return Ok(Step::NotHolder);
                }
                if self.service.change_horizon().await? > position {
                    return self.skip_expired(position).await;
                }
            }
            let outcome = self.post(&id, &body).await;
            self.metrics.webhook_out.delivery(&label, outcome);
            if outcome == "ok" {
                let moved = self.service.advance_webhook_position(self.lease(), last);
                if !moved.await? {
                    tracing::warn!(endpoint = %self.endpoint.origin, "webhook lease lost during a delivery; the new holder resends it");
                    return Ok(Step::NotHolder);
                }
                return Ok(Step::Moved);
            }
            self.metrics.webhook_out.retry(&label);
            if self.pause(self.backoff(attempt)).await {
                return Ok(Step::Stopped);
            }
        }
        Ok(Step::Stopped)
    }

    /// POSTs one signed attempt; its outcome label.
    async fn post(&self, id: &str, body: &[u8]) -> &'static str {
        let t = self.service.now().timestamp();
        let signature = payload::signature(&self.settings.secret, t, body);
        let sent = self
            .client
            .post(self.endpoint.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(ID_HEADER, id)
            .header(SIGNATURE_HEADER, signature)
            .body(body.to_vec())
            .send()
            .await;
        let origin = &self.endpoint.origin;
        match sent {
            Ok(response) if response.status().is_success() => {
                drain(response).await;
                "ok"
            }
            Ok(response) => {
                tracing::warn!(endpoint = %origin, delivery = id, status = response.status().as_u16(), "webhook refused; retrying");
                drain(response).await;
                "http_error"
            }
            Err(err) => {
                // reqwest's error names the whole URL, whose path or query may hold a token:
                // only the origin is logged, and the causes (which name no URL) instead.
                let err = err.without_url();
                let error = causes(&err);
                tracing::warn!(endpoint = %origin, delivery = id, %error, "webhook not delivered; retrying");
                if err.is_timeout() {
                    "timeout"
                } else if err.is_connect() {
                    "connect_error"
                } else {
                    "error"
                }
            }
        }
    }

    /// Moves past changes pruned before delivery, counting and logging them: the one case
    /// where changes are not delivered, and never silently.
    async fn skip_expired(&self, position: i64) -> AppResult<Step> {
        let horizon = self.service.change_horizon().await?;
        if self
            .service
            .advance_webhook_position(self.lease(), horizon)
            .await?
        {
            let skipped = u64::try_from(horizon - position).unwrap_or_default();
            self.metrics
                .webhook_out
                .expired(&self.endpoint.label, skipped);
            tracing::error!(endpoint = %self.endpoint.origin, from = position, to = horizon, "changes left the change log's retention before this endpoint acknowledged them; skipped");
        }
        Ok(Step::Moved)
    }

    /// Waits `duration` unless stopped first; true when stopped.
    async fn pause(&mut self, duration: Duration) -> bool {
        tokio::select! {
            () = tokio::time::sleep(duration) => self.stopped(),
            _ = self.stop.changed() => true,
        }
    }

    /// Waits for the next poll, cut short by a change announced in `announced` (when given).
    async fn wait(&mut self, announced: Option<&mut broadcast::Receiver<BusMessage>>) {
        let poll = self.settings.poll;
        let Some(announced) = announced else {
            self.pause(poll).await;
            return;
        };
        tokio::select! {
            () = tokio::time::sleep(poll) => {}
            _ = self.stop.changed() => {}
            _ = announced.recv() => {}
        }
        // One read covers every announcement already queued.
        while !matches!(
            announced.try_recv(),
            Err(broadcast::error::TryRecvError::Empty | broadcast::error::TryRecvError::Closed)
        ) {}
    }
}

/// `err` and its sources, as one line.
fn causes(err: &dyn std::error::Error) -> String {
    let mut line = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        line.push_str(": ");
        line.push_str(&cause.to_string());
        source = cause.source();
    }
    line
}

/// Reads `response`'s body until it ends or [`MAX_RESPONSE_BYTES`] came, so the connection
/// can be reused when the body is short and nothing large is ever buffered.
async fn drain(mut response: reqwest::Response) {
    let mut read = 0;
    while read < MAX_RESPONSE_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => read += chunk.len(),
            _ => return,
        }
    }
}
