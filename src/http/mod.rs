//! The HTTP surface: routes, layers and graceful shutdown. Transport only: no business rules.

mod credentials;
mod graphql;
mod negotiate;
mod ops;
mod subscriptions;

use std::{sync::Arc, time::Duration};

use axum::{Router, extract::DefaultBodyLimit, http::StatusCode, response::Redirect, routing::get};
use tower_http::{timeout::TimeoutLayer, trace::TraceLayer};

use crate::{
    auth::Authenticator,
    contacts::ContactService,
    graphql::{AppSchema, Limits, build_schema},
    metrics::Metrics,
};

/// Bodies above this are answered with 413.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub schema: AppSchema,
    pub service: ContactService,
    pub metrics: Arc<Metrics>,
    pub auth: Arc<Authenticator>,
    pub limits: Limits,
}

impl AppState {
    pub fn new(service: ContactService, limits: Limits) -> Self {
        Self {
            schema: build_schema(service.clone(), &limits),
            limits,
            service,
            metrics: Arc::new(Metrics::default()),
            auth: Arc::new(Authenticator::default()),
        }
    }

    /// Requires the credentials `auth` accepts on every API request.
    pub fn with_auth(mut self, auth: Authenticator) -> Self {
        self.auth = Arc::new(auth);
        self
    }
}

/// The whole application, ready to serve.
pub fn app(state: AppState, request_timeout: Duration) -> Router {
    let requests = Router::new()
        .route("/", get(|| async { Redirect::temporary("/graphql") }))
        .route("/graphql", get(graphql::get).post(graphql::post))
        .route("/schema.graphql", get(ops::schema))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .merge(crate::graphiql::routes())
        .fallback(ops::not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            request_timeout,
        ));
    // Added after the timeout layer: a subscription lives as long as its client wants.
    requests
        .route("/graphql/ws", get(subscriptions::upgrade))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Resolves on Ctrl-C or SIGTERM, so in-flight requests finish before the process exits.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
