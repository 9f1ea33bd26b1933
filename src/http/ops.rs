//! Operational routes: health, readiness, metrics, the served SDL, and 404s.

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};

use super::{
    AppState,
    client_ip::ClientIp,
    credentials,
    negotiate::{Format, error_response},
};
use crate::error::ErrorCode;

/// The SDL of the schema being served: what introspection would tell, so only where
/// introspection is on, and only to a caller with credentials when the server requires them.
pub async fn schema(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    headers: HeaderMap,
) -> Response {
    if !state.limits().introspection {
        return not_found().await;
    }
    if let Err(err) = credentials::from_headers(&state, &headers) {
        return credentials::refused(&state, client, err, Format::Json);
    }
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        crate::graphql::sdl_of(&state.schema),
    )
        .into_response()
}

/// Liveness: the process answers.
pub async fn healthz() -> Response {
    (StatusCode::OK, "ok\n").into_response()
}

/// Readiness: the database answers.
pub async fn readyz(State(state): State<AppState>) -> Response {
    // Bounded, so a probe gets its answer even while connections hang.
    let ping = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        state.service.db().is_reachable(),
    );
    if ping.await.unwrap_or(false) {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "database unreachable\n").into_response()
    }
}

/// Prometheus text exposition; for a caller with credentials when the server requires them
/// (Prometheus sends one with `authorization` or `bearer_token_file`).
pub async fn metrics(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    headers: HeaderMap,
) -> Response {
    if let Err(err) = credentials::from_headers(&state, &headers) {
        return credentials::refused(&state, client, err, Format::Json);
    }
    let body = state.metrics.render(&state.service.db().pool_stats());
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

pub async fn not_found() -> Response {
    let message = "no such route; the API is at /graphql";
    error_response(ErrorCode::NotFound, Format::Json, message)
}
