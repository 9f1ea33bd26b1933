//! Configuration: one clap parser, every option also read from the environment.

use std::{net::IpAddr, time::Duration};

use clap::Parser;

use crate::db::DbOptions;

/// GraphQL contacts API for WhatsApp messaging.
///
/// Serves GraphiQL and the API at http://HOST:PORT/graphql. Uses an embedded SQLite file by
/// default; point DATABASE_URL at PostgreSQL to share one database between instances.
#[derive(Debug, Clone, Parser)]
#[command(name = "contacts-server", version, about, long_about)]
pub struct Config {
    /// Database URL: `sqlite://FILE?mode=rwc` (created and migrated at start-up) or
    /// `postgres://user:pass@host/db`.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://contacts.db?mode=rwc"
    )]
    pub database_url: String,

    /// Address to listen on.
    #[arg(long, env = "HOST", default_value = "127.0.0.1")]
    pub host: IpAddr,

    /// Port to listen on.
    #[arg(long, env = "PORT", default_value_t = 8000)]
    pub port: u16,

    /// Log filter, in `tracing` syntax (e.g. `info`, `contacts_server=debug`).
    #[arg(long = "log", env = "RUST_LOG", default_value = "info")]
    pub log_filter: String,

    /// Log format: `text` for people, `json` for log pipelines.
    #[arg(long, env = "LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,

    /// Database connections: readers on SQLite (one more connection writes), the whole pool
    /// on PostgreSQL.
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", default_value_t = 8)]
    pub database_max_connections: u32,

    /// Seconds to wait for a database connection before failing a request (short, so that
    /// requests fail fast while the database is down).
    #[arg(long, env = "DATABASE_ACQUIRE_TIMEOUT_SECS", default_value_t = 5)]
    pub database_acquire_timeout_secs: u64,

    /// PostgreSQL: seconds after which a running statement is cancelled.
    #[arg(long, env = "DATABASE_STATEMENT_TIMEOUT_SECS", default_value_t = 15)]
    pub database_statement_timeout_secs: u64,

    /// Seconds a request may take before it is answered with 503.
    #[arg(long, env = "REQUEST_TIMEOUT_SECS", default_value_t = 30)]
    pub request_timeout_secs: u64,
}

impl Config {
    pub fn db_options(&self) -> DbOptions {
        DbOptions {
            url: self.database_url.clone(),
            max_connections: self.database_max_connections,
            acquire_timeout: Duration::from_secs(self.database_acquire_timeout_secs),
            busy_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(self.database_statement_timeout_secs),
        }
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }
}
