//! `GET`/`POST /webhooks/whatsapp`: Meta's verification handshake and its webhook
//! deliveries. Transport only: the signature is checked over the raw bytes as they stream in
//! (see [`intake`]), before anything is parsed; the payload is turned into domain events, and
//! the domain records them in one transaction; 200 only once that committed. The signature is the route's credential: no
//! API key or JWT is asked for, and without an app secret the route is not mounted.

mod calls;
pub mod intake;
mod labels;
mod meta;
pub mod payload;
pub mod signature;
mod system;

use std::{
    collections::HashMap,
    sync::atomic::{AtomicI64, Ordering},
};

use axum::{
    Router,
    body::Body,
    extract::{Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use subtle::ConstantTimeEq;

use self::{
    intake::{Intake, Refusal},
    payload::{Disposition, Item},
};
use super::{
    AppState,
    client_ip::ClientIp,
    credentials,
    negotiate::{Format, error_response},
};
use crate::{contacts::webhook::EventOutcome, error::ErrorCode, rate_limit::address_key};

/// The most events (messages, statuses, calls, preferences...) one delivery may hold. Meta's
/// Graph API webhooks documentation: notifications "are aggregated and sent in a batch with a
/// maximum of 1000 updates". More is not Meta's, and would hold the writer (SQLite's only
/// one) for seconds: 413, counted.
pub const MAX_EVENTS: usize = 1_000;

/// Expired Meta ids are deleted at most this often (seconds of the service's clock).
const PRUNE_EVERY_SECS: i64 = 60;

/// The webhook's settings: `WHATSAPP_APP_SECRET` and `WHATSAPP_VERIFY_TOKEN`.
pub struct WhatsappWebhook {
    app_secret: Vec<u8>,
    verify_token: Option<String>,
    /// When expired Meta ids were last deleted (Unix seconds).
    last_prune: AtomicI64,
    intake: Intake,
}

impl WhatsappWebhook {
    pub fn new(app_secret: &str, verify_token: Option<&str>) -> Self {
        Self {
            // Trimmed: a secret read from a file ends in a newline.
            app_secret: app_secret.trim().as_bytes().to_vec(),
            verify_token: verify_token.map(|token| token.trim().to_owned()),
            last_prune: AtomicI64::new(i64::MIN),
            intake: Intake::default(),
        }
    }
}

/// The routes, when an app secret is configured; none otherwise (a 404 like any other).
pub fn routes(enabled: bool) -> Router<AppState> {
    if !enabled {
        return Router::new();
    }
    Router::new().route("/webhooks/whatsapp", get(handshake).post(receive))
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
    body: Body,
) -> Response {
    let Some(hook) = state.whatsapp.clone() else {
        return super::ops::not_found().await;
    };
    let address = address_key(client);
    let body = match hook
        .intake
        .read_signed(&hook.app_secret, &headers, body, &address)
        .await
    {
        Ok(body) => body,
        Err(refusal) => return refused(&state, &hook, &address, refusal),
    };
    let metrics = &state.metrics.webhook;
    let items = match payload::parse(&body) {
        Ok(items) => items,
        Err(message) => {
            metrics.delivery("none", "bad_request");
            return error_response(ErrorCode::BadRequest, Format::Json, &message);
        }
    };
    if items.len() > MAX_EVENTS {
        count_deliveries(&state, &items, "too_many_events");
        let message = format!("a delivery holds at most {MAX_EVENTS} events");
        return error_response(ErrorCode::PayloadTooLarge, Format::Json, &message);
    }
    let events: Vec<_> = items
        .iter()
        .filter_map(|item| item.event().cloned())
        .collect();
    let outcomes = match state.service.record_webhook_delivery(&events).await {
        Ok(outcomes) => outcomes,
        Err(err) => {
            let cause = crate::logging::clip_and_mask(&format!("{err:?}"));
            tracing::error!(error = %cause, "WhatsApp webhook delivery not recorded");
            count_deliveries(&state, &items, "error");
            return error_response(err.code(), Format::Json, &err.public_message());
        }
    };
    count_deliveries(&state, &items, "ok");
    count_events(&state, &items, &outcomes);
    prune(&state, &hook).await;
    (StatusCode::OK, "ok\n").into_response()
}

/// The answer to a body not read or not accepted. Signature failures, and uploads abandoned,
/// too large or late (none shown to be Meta's), are counted and count toward the address's
/// limit (429 past it, and the address's next bodies are not read).
fn refused(state: &AppState, hook: &WhatsappWebhook, address: &str, refusal: Refusal) -> Response {
    let metrics = &state.metrics.webhook;
    if refusal.is_unverified() {
        metrics.signature_failure();
        if let Err(wait) = state.address_limit.check(address) {
            hook.intake.refuse(address, wait);
            return credentials::too_many(wait, Format::Json);
        }
    }
    let (code, message) = match refusal {
        Refusal::Unsigned | Refusal::Forged => (
            ErrorCode::Unauthenticated,
            "missing or wrong X-Hub-Signature-256",
        ),
        Refusal::Limited(wait) => return credentials::too_many(wait, Format::Json),
        Refusal::Busy | Refusal::AddressBusy => {
            metrics.delivery("none", "busy");
            let message = "too many deliveries being read; retry later";
            let mut response = error_response(ErrorCode::ServiceUnavailable, Format::Json, message);
            let retry = HeaderValue::from_static("1");
            response.headers_mut().insert(header::RETRY_AFTER, retry);
            return response;
        }
        Refusal::TooLarge => (ErrorCode::PayloadTooLarge, "body over 3 MiB"),
        Refusal::Unreadable => (ErrorCode::BadRequest, "body not received whole"),
        Refusal::TimedOut => (ErrorCode::BadRequest, "body not received in time"),
    };
    error_response(code, Format::Json, message)
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
        let outcome = match &item.what {
            Disposition::Record(_) => match outcomes.next() {
                Some(EventOutcome::Recorded) | None => "recorded",
                Some(EventOutcome::Duplicate) => "duplicate",
                Some(EventOutcome::Invalid) => "invalid",
            },
            Disposition::Invalid => "invalid",
            Disposition::Unknown => "unknown",
            Disposition::Ignored => "ignored",
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
