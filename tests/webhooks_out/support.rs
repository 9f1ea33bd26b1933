//! Helpers of the outgoing webhook tests: instances with workers, writes, the log as
//! `contactChanges` lists it, and bounded polls on `/metrics` and the stored position.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use contacts_server::{
    contacts::ContactService,
    webhooks_out::{self, WebhookSettings, Webhooks},
};
use serde_json::{Value, json};

use super::{
    common::TestApp,
    receiver::{Receiver, SECRET},
};

pub const CHANGES: &str =
    "query { contactChanges(first: 1000) { nodes { cursor kind contactId contact { id } } } }";
pub const PATCH: &str = "mutation($id: ID!, $set: Metadata) { patchContactMetadata(id: $id, set: $set) { contact { id } } }";
pub const DELETE: &str = "mutation($id: ID!) { deleteContact(id: $id) { deletedContactId } }";

/// Settings with short waits, so retries happen in milliseconds, and small batches, so a
/// handful of changes makes several deliveries.
pub fn settings(url: &str) -> WebhookSettings {
    settings_for(&[url.to_owned()])
}

pub fn settings_for(urls: &[String]) -> WebhookSettings {
    let mut settings = WebhookSettings::new(urls, Some(SECRET))
        .expect("settings")
        .expect("an endpoint");
    settings.batch_size = 3;
    settings.timeout = Duration::from_secs(5);
    settings.backoff_base = Duration::from_millis(5);
    settings.backoff_cap = Duration::from_millis(40);
    settings.poll = Duration::from_millis(20);
    settings
}

/// An instance on `app`'s database delivering to `url`, its workers and its service.
pub async fn instance(app: &TestApp, url: &str) -> (TestApp, Webhooks, ContactService) {
    instance_with(app, settings(url)).await
}

pub async fn instance_with(
    app: &TestApp,
    settings: WebhookSettings,
) -> (TestApp, Webhooks, ContactService) {
    let slot = Arc::new(Mutex::new(None));
    let filled = slot.clone();
    let instance = app
        .second_instance_configured(move |state| {
            let hooks = webhooks_out::start(&state.service, settings, state.metrics.clone());
            *filled.lock().expect("lock") = Some((hooks.expect("workers"), state.service.clone()));
            state
        })
        .await;
    let (hooks, service) = slot.lock().expect("lock").take().expect("started");
    (instance, hooks, service)
}

pub async fn create(app: &TestApp, n: usize) -> Vec<Value> {
    let mut ids = Vec::new();
    for _ in 0..n {
        let phone = format!("+5691{:07}", fastrand::u32(0..10_000_000));
        ids.push(app.create(json!({ "phoneNumber": phone })).await["id"].clone());
    }
    ids
}

/// The log's cursors, oldest first, as `contactChanges` lists them.
pub async fn log_cursors(app: &TestApp) -> Vec<String> {
    let data = app.data(CHANGES, json!({})).await;
    let nodes = data["contactChanges"]["nodes"].as_array().expect("nodes");
    nodes
        .iter()
        .map(|node| node["cursor"].as_str().expect("cursor").to_owned())
        .collect()
}

/// Every change of the log arrived exactly once, in log order, signed.
pub async fn assert_exactly_the_log(app: &TestApp, receiver: &Receiver) {
    let log = log_cursors(app).await;
    let arrived: Vec<String> = receiver.seen(|seen| {
        let cursors = seen.accepted.iter().map(|change| change["cursor"].as_str());
        cursors
            .map(|cursor| cursor.expect("cursor").to_owned())
            .collect()
    });
    assert_eq!(arrived, log, "arrived (left) vs the log (right)");
    let mut keys = receiver.keys();
    let count = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), count, "an idempotency key arrived twice");
    receiver.seen(|seen| {
        assert_eq!(seen.bad_signatures, 0);
        assert_eq!(seen.overlaps, 0, "two requests to one endpoint overlapped");
    });
}

/// The exposition line prefix of metric `webhook_out_<name>` for `receiver`'s endpoint.
pub fn sample(receiver: &Receiver, name: &str, outcome: Option<&str>) -> String {
    sample_of(&receiver.url(), name, outcome)
}

pub fn sample_of(url: &str, name: &str, outcome: Option<&str>) -> String {
    let label = &settings(url).endpoints[0].label;
    match outcome {
        Some(outcome) => {
            format!("webhook_out_{name}{{endpoint=\"{label}\",outcome=\"{outcome}\"}}")
        }
        None => format!("webhook_out_{name}{{endpoint=\"{label}\"}}"),
    }
}

/// Polls (bounded) until the one endpoint's stored position is the log's head.
pub async fn acknowledged_through_head(service: &ContactService) {
    use sea_orm::EntityTrait;
    let head = service.change_head().await.expect("head");
    for _ in 0..3_000 {
        let row = entity::webhook_position::Entity::find()
            .one(&service.db().read)
            .await
            .expect("read");
        if row.is_some_and(|row| row.position == head) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("position {head} never stored");
}

/// Polls (bounded) an instance's `/metrics` until the sample starting with `sample` reaches
/// `at_least`.
pub async fn wait_for_metric(app: &TestApp, sample: &str, at_least: f64) -> f64 {
    metric_until(app, sample, |value| value >= at_least).await
}

/// Polls (bounded) an instance's `/metrics` until the sample starting with `sample` satisfies
/// `done`; its value.
pub async fn metric_until(app: &TestApp, sample: &str, done: impl Fn(f64) -> bool) -> f64 {
    for _ in 0..3_000 {
        let text = app.client.get(app.url("/metrics")).send().await;
        let text = text.expect("metrics").text().await.expect("text");
        let value = text
            .lines()
            .find(|line| line.starts_with(sample))
            .and_then(|line| line.rsplit(' ').next()?.parse::<f64>().ok());
        if let Some(value) = value.filter(|value| done(*value)) {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{sample} never reached the expected value");
}

/// Serves `app` on 127.0.0.1, any free port.
pub async fn serve(app: axum::Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}
