//! Contacts API for WhatsApp messaging: a GraphQL server that keeps contacts and tells whom
//! you may message freely (WhatsApp's 24-hour customer-service window).
//!
//! Layers: [`http`] (transport) → [`graphql`] (translation) → [`contacts`] (rules and SQL)
//! → [`db`] / `entity` / `migration` (storage).

pub mod auth;
pub mod cli;
pub mod config;
pub mod contacts;
pub mod db;
pub mod error;
pub mod events;
mod graphiql;
pub mod graphql;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod rate_limit;

use std::{net::SocketAddr, sync::Arc};

use anyhow::Context;
use tokio::net::TcpListener;

use crate::{
    config::Config,
    contacts::{ContactService, clock::SystemClock},
    db::Db,
    http::AppState,
};

/// Connects, migrates and serves until Ctrl-C or SIGTERM.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let auth = config.authenticator()?;
    config.check_exposure(&auth)?;
    let db = Db::connect(&config.database.options()).await?;
    db.migrate().await?;
    let events = events::start(&db, &config.database.url).await?;
    let service = ContactService::new(db.clone(), Arc::new(SystemClock), events);
    let app = http::app(
        AppState::new(service, config.limits())
            .with_auth(auth)
            .with_rate_limit(config.rate_limit_per_minute, config.rate_limit_burst)
            .with_address_limit(
                config.auth_failures_per_minute,
                config.auth_failures_per_minute,
            )
            .with_websocket_limits(config.websocket_limits())
            .with_cors(&config.cors_allowed_origins)?,
        config.request_timeout(),
    );
    let address = SocketAddr::new(config.host, config.port);
    let listener = TcpListener::bind(address)
        .await
        .with_context(|| format!("listening on {address}"))?;
    // The bound address, so PORT=0 (any free port) reports the port it got.
    let bound = listener.local_addr()?;
    tracing::info!(address = %bound, "GraphiQL and the API at http://{bound}/graphql");
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(http::shutdown_signal())
    .await?;
    db.close().await;
    Ok(())
}
