//! Outgoing webhooks: every change of the change log, in log order, POSTed as signed JSON
//! batches to each endpoint of `WEBHOOK_URLS`, at least once, resuming after restarts.
//!
//! One worker per endpoint per instance; a lease in `webhook_positions` (see
//! `contacts::webhook_positions`) lets one instance at a time deliver to an endpoint, so
//! batches never overlap and stay in order. The receiver's contract (body, headers,
//! signature, retries) is in docs/change-feed.md, "Webhooks".

mod payload;
pub mod settings;
mod worker;

use std::sync::Arc;

use tokio::{sync::watch, task::JoinHandle};
use uuid::Uuid;

pub use self::{
    payload::{ID_HEADER, SIGNATURE_HEADER, idempotency_key, signature},
    settings::{Endpoint, WebhookSettings},
};
use crate::{contacts::ContactService, metrics::Metrics};

/// The running workers of one instance.
pub struct Webhooks {
    stop: watch::Sender<bool>,
    workers: Vec<JoinHandle<()>>,
}

/// Starts one worker per endpoint of `settings`, delivering what `service` logs and counting
/// in `metrics`. Stop them with [`Webhooks::stop`] (dropping the handle stops them too).
pub fn start(
    service: &ContactService,
    settings: WebhookSettings,
    metrics: Arc<Metrics>,
) -> anyhow::Result<Webhooks> {
    // Redirects are not followed: a signed body must only reach the configured URL.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(settings.timeout)
        .connect_timeout(settings.timeout)
        .user_agent(concat!("contacts-server/", env!("CARGO_PKG_VERSION")))
        .build()?;
    let (stop, stopped) = watch::channel(false);
    // One id per instance: leases taken before a restart are not ours after it.
    let holder = Uuid::now_v7().to_string();
    let settings = Arc::new(settings);
    let workers = settings
        .endpoints
        .iter()
        .map(|endpoint| {
            let worker = worker::Worker {
                service: service.clone(),
                endpoint: endpoint.clone(),
                settings: settings.clone(),
                client: client.clone(),
                metrics: metrics.clone(),
                holder: holder.clone(),
                stop: stopped.clone(),
            };
            tokio::spawn(worker.run())
        })
        .collect();
    Ok(Webhooks { stop, workers })
}

impl Webhooks {
    /// Stops the workers: a request under way is finished (so an acknowledged batch is
    /// recorded as such), a wait is cut short, and each lease is given up so another
    /// instance can take over at once.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for worker in self.workers {
            let _ = worker.await;
        }
    }

    /// Ends the workers where they stand, leases kept until they expire: what a crash does.
    pub fn abort(self) {
        for worker in &self.workers {
            worker.abort();
        }
    }
}
