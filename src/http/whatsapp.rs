//! `GET`/`POST /webhooks/whatsapp`: Meta's verification handshake and its webhook
//! deliveries. Transport only: the signature is checked over the raw bytes before anything
//! is parsed, the payload is turned into domain events, and the domain records them in one
//! transaction; 200 only once that committed. The signature is the route's credential: no
//! API key or JWT is asked for, and without an app secret the route is not mounted.

mod labels;
mod meta;
pub mod payload;
pub mod signature;

use std::{
    collections::HashMap,
    sync::atomic::{AtomicI64, Ordering},
};

use axum::{
    Router,
    body::Bytes,
    extract::{DefaultBodyLimit, Query, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use subtle::ConstantTimeEq;

use self::payload::Item;
use super::{
    AppState,
    client_ip::ClientIp,
    credentials,
    negotiate::{Format, error_response},
};
use crate::{contacts::webhook::EventOutcome, error::ErrorCode, rate_limit::address_key};

/// The largest delivery accepted. Meta documents webhook payloads of up to 3 MB; anything
/// larger is not Meta's and is refused (413) before the signature is even computed.
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// Expired Meta ids are deleted at most this often (seconds of the service's clock).
const PRUNE_EVERY_SECS: i64 = 60;

/// The webhook's settings: `WHATSAPP_APP_SECRET` and `WHATSAPP_VERIFY_TOKEN`.
pub struct WhatsappWebhook {
    app_secret: Vec<u8>,
    verify_token: Option<String>,
    /// When expired Meta ids were last deleted (Unix seconds).
    last_prune: AtomicI64,
}

impl WhatsappWebhook {
    pub fn new(app_secret: &str, verify_token: Option<&str>) -> Self {
        Self {
            app_secret: app_secret.as_bytes().to_vec(),
            verify_token: verify_token.map(str::to_owned),
            last_prune: AtomicI64::new(i64::MIN),
        }
    }
}

/// The routes, when an app secret is configured; none otherwise (a 404 like any other).
pub fn routes(enabled: bool) -> Router<AppState> {
    if !enabled {
        return Router::new();
    }
    Router::new().route(
        "/webhooks/whatsapp",
        get(handshake)
            .post(receive)
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES)),
    )
}

/// Meta's subscription check: `hub.mode=subscribe` and our verify token → the challenge.
async fn handshake(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let expected = state
        .whatsapp
        .as_ref()
        .and_then(|hook| hook.verify_token.as_deref());
    let given = query.get("hub.verify_token").map(String::as_bytes);
    let token_ok = match (expected, given) {
        (Some(expected), Some(given)) => bool::from(expected.as_bytes().ct_eq(given)),
        _ => false,
    };
    let subscribe = query.get("hub.mode").map(String::as_str) == Some("subscribe");
    match query.get("hub.challenge") {
        Some(challenge) if token_ok && subscribe => (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            challenge.clone(),
        )
            .into_response(),
        _ => error_response(ErrorCode::Forbidden, Format::Json, "verification refused"),
    }
}

/// A delivery: verified, parsed, recorded in one transaction, answered 200 once committed.
async fn receive(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(hook) = state.whatsapp.clone() else {
        return super::ops::not_found().await;
    };
    let metrics = &state.metrics.webhook;
    let header = headers.get("x-hub-signature-256").map(|v| v.as_bytes());
    if !signature::is_valid(&hook.app_secret, header, &body) {
        metrics.signature_failure();
        if let Err(wait) = state.address_limit.check(&address_key(client)) {
            return credentials::too_many(wait, Format::Json);
        }
        let message = "missing or wrong X-Hub-Signature-256";
        return error_response(ErrorCode::Unauthenticated, Format::Json, message);
    }
    let items = match payload::parse(&body) {
        Ok(items) => items,
        Err(message) => {
            metrics.delivery("none", "bad_request");
            return error_response(ErrorCode::BadRequest, Format::Json, &message);
        }
    };
    let events: Vec<_> = items.iter().filter_map(|item| item.event.clone()).collect();
    let outcomes = match state.service.record_webhook_delivery(&events).await {
        Ok(outcomes) => outcomes,
        Err(err) => {
            tracing::error!(error = %err.describe(), "WhatsApp webhook delivery not recorded");
            count_deliveries(&state, &items, "error");
            return error_response(err.code(), Format::Json, &err.public_message());
        }
    };
    count_deliveries(&state, &items, "ok");
    count_events(&state, &items, &outcomes);
    prune(&state, &hook).await;
    (StatusCode::OK, "ok\n").into_response()
}

fn count_deliveries(state: &AppState, items: &[Item], outcome: &'static str) {
    let mut fields: Vec<&'static str> = items.iter().map(|item| item.field.as_str()).collect();
    fields.sort_unstable();
    fields.dedup();
    for field in fields {
        state.metrics.webhook.delivery(field, outcome);
    }
}

fn count_events(state: &AppState, items: &[Item], outcomes: &[EventOutcome]) {
    let mut outcomes = outcomes.iter();
    for item in items {
        let outcome = match (&item.event, item.unknown) {
            (Some(_), _) => match outcomes.next() {
                Some(EventOutcome::Recorded) | None => "recorded",
                Some(EventOutcome::Duplicate) => "duplicate",
                Some(EventOutcome::Invalid) => "invalid",
            },
            (None, true) => "unknown",
            (None, false) => "ignored",
        };
        state
            .metrics
            .webhook
            .event(item.field.as_str(), item.kind, outcome);
    }
}

/// Deletes expired Meta ids now and then; a failure only means it happens next time.
async fn prune(state: &AppState, hook: &WhatsappWebhook) {
    let now = state.service.now().timestamp();
    let last = hook.last_prune.load(Ordering::Relaxed);
    let due = last == i64::MIN || now.saturating_sub(last) >= PRUNE_EVERY_SECS;
    let claimed = due
        && hook
            .last_prune
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok();
    if claimed && let Err(err) = state.service.forget_expired_webhook_events().await {
        tracing::warn!(error = %err.describe(), "expired WhatsApp webhook ids not deleted");
    }
}
