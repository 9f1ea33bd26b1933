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
pub mod webhooks_out;

use std::{net::SocketAddr, sync::Arc};

use anyhow::Context;
use tokio::net::TcpListener;

use crate::{
    config::Config,
    contacts::{ContactService, clock::SystemClock},
    db::Db,
    http::{AppState, client_ip::TrustedProxies, serve::ServeOptions},
};

/// Applies pending migrations on connections without a statement deadline: building an index
/// on a large table takes longer than any request may.
async fn migrate(config: &Config) -> anyhow::Result<()> {
    let mut options = config.database.options();
    options.statement_timeout = std::time::Duration::ZERO;
    let db = Db::connect(&options).await?;
    let migrated = db.migrate().await;
    db.close().await;
    migrated
}

/// Connects, migrates and serves until Ctrl-C or SIGTERM, then finishes the requests in flight.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let auth = config.authenticator()?;
    config.check_exposure(&auth)?;
    let webhook_settings = config.webhooks()?;
    migrate(&config).await?;
    let db = Db::connect(&config.database_options()).await?;
    let events = events::start(&db, &config.database.url).await?;
    let service = ContactService::new(db.clone(), Arc::new(SystemClock), events)
        .with_change_retention(chrono::TimeDelta::days(
            config.change_log_retention_days.into(),
        ));
    tokio::spawn(contacts::changelog::prune_periodically(
        service.clone(),
        std::time::Duration::from_secs(3600),
    ));
    let proxies = TrustedProxies::parse(&config.trusted_proxies, &config.trusted_proxy_header)?;
    let mut state = AppState::new(service, config.limits());
    let webhooks = match webhook_settings {
        Some(settings) => Some(webhooks_out::start(
            &state.service,
            settings,
            state.metrics.clone(),
        )?),
        None => None,
    };
    if let Some((secret, token)) = config.whatsapp_webhook()? {
        state = state.with_whatsapp(secret, token);
    }
    let app = http::app(
        state
            .with_auth(auth)
            .with_rate_limit(config.rate_limit_per_minute, config.rate_limit_burst)
            .with_address_limit(
                config.auth_failures_per_minute,
                config.auth_failures_per_minute,
            )
            .with_websocket_limits(config.websocket_limits())
            .with_cors(&config.cors_allowed_origins)?
            .with_allowed_hosts(&config.allowed_hosts)
            .with_trusted_proxies(proxies),
        config.request_timeout(),
    );
    let options = ServeOptions {
        header_read_timeout: config.header_read_timeout(),
        max_connections: config.max_client_connections(),
        write_timeout: config.write_timeout(),
    };
    let address = SocketAddr::new(config.host, config.port);
    let listener = TcpListener::bind(address)
        .await
        .with_context(|| format!("listening on {address}"))?;
    // The bound address, so PORT=0 (any free port) reports the port it got.
    let bound = listener.local_addr()?;
    tracing::info!(
        address = %bound,
        max_connections = options.max_connections,
        header_read_timeout_secs = options.header_read_timeout.as_secs(),
        write_timeout_secs = options.write_timeout.as_secs(),
        "GraphiQL and the API at http://{bound}/graphql"
    );
    http::serve::serve(listener, app, options, http::shutdown_signal()).await;
    if let Some(webhooks) = webhooks {
        webhooks.stop().await;
    }
    db.close().await;
    Ok(())
}
