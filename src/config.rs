//! Configuration: one clap parser, every option also read from the environment.

use std::{net::IpAddr, time::Duration};

use clap::{Args, Parser};

// Logging owns its settings, so that `logging` (and `error`, which logs) need nothing from here.
pub use crate::logging::LogArgs;

use anyhow::Context;

use crate::{
    auth::{Authenticator, JwtSettings},
    db::DbOptions,
    graphql::Limits,
    http::WebSocketLimits,
};

/// GraphQL contacts API for WhatsApp messaging.
///
/// Serves GraphiQL and the API at http://HOST:PORT/graphql. Uses an embedded SQLite file by
/// default; point DATABASE_URL at PostgreSQL to share one database between instances.
#[derive(Debug, Clone, Parser)]
#[command(name = "contacts-server", version, about, long_about)]
pub struct Config {
    #[command(flatten)]
    pub database: DatabaseArgs,

    /// Address to listen on.
    #[arg(long, env = "HOST", default_value = "127.0.0.1")]
    pub host: IpAddr,

    /// Port to listen on.
    #[arg(long, env = "PORT", default_value_t = 8000)]
    pub port: u16,

    #[command(flatten)]
    pub log: LogArgs,

    /// Seconds a request may take before it is answered with 503.
    #[arg(long, env = "REQUEST_TIMEOUT_SECS", default_value_t = 30)]
    pub request_timeout_secs: u64,

    /// An API key allowed to call the API, as `SHA256HEX:read` or `SHA256HEX:write` (the
    /// SHA-256 of the key, never the key). Repeat the flag, or separate with commas.
    /// Make one with: `openssl rand -hex 32 | tee key.txt | tr -d '\n' | sha256sum`.
    #[arg(long = "api-key", env = "API_KEYS", value_delimiter = ',')]
    pub api_keys: Vec<String>,

    /// Secret (at least 32 bytes) for HS256-signed JWTs.
    #[arg(long, env = "JWT_HS256_SECRET", hide_env_values = true)]
    pub jwt_hs256_secret: Option<String>,

    /// PEM public key for RS256 or ES256-signed JWTs (see --jwt-algorithm).
    #[arg(long, env = "JWT_PUBLIC_KEY_FILE")]
    pub jwt_public_key_file: Option<std::path::PathBuf>,

    /// Algorithm of --jwt-public-key-file: RS256 or ES256.
    #[arg(long, env = "JWT_ALGORITHM", default_value = "RS256", value_parser = ["RS256", "ES256"])]
    pub jwt_algorithm: String,

    /// Required `iss` of JWTs.
    #[arg(long, env = "JWT_ISSUER")]
    pub jwt_issuer: Option<String>,

    /// Required `aud` of JWTs.
    #[arg(long, env = "JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,

    /// JWT claim holding the scope: "read", "write", or both space-separated (or an array).
    #[arg(long, env = "JWT_SCOPE_CLAIM", default_value = "scope")]
    pub jwt_scope_claim: String,

    /// Serve without credentials on a non-loopback address. Without this flag, a server with
    /// no API key and no JWT configuration only listens on loopback.
    #[arg(long, env = "ALLOW_UNAUTHENTICATED")]
    pub allow_unauthenticated: bool,

    /// Deepest field nesting an operation may have.
    #[arg(long, env = "MAX_DEPTH", default_value_t = 6)]
    pub max_depth: usize,

    /// Deepest nesting below `__schema`/`__type` (GraphiQL's introspection needs about 13).
    #[arg(long, env = "MAX_INTROSPECTION_DEPTH", default_value_t = 15)]
    pub max_introspection_depth: usize,

    /// Highest cost: each field 1, a connection's fields times its `first`/`last`.
    #[arg(long, env = "MAX_COMPLEXITY", default_value_t = 5_000)]
    pub max_complexity: usize,

    /// Most aliases in one document.
    #[arg(long, env = "MAX_ALIASES", default_value_t = 15)]
    pub max_aliases: usize,

    /// Most fields at the root of an operation.
    #[arg(long, env = "MAX_ROOT_FIELDS", default_value_t = 20)]
    pub max_root_fields: usize,

    /// Most directives on one field.
    #[arg(long, env = "MAX_DIRECTIVES", default_value_t = 10)]
    pub max_directives: usize,

    /// Most lexical tokens in one document.
    #[arg(long, env = "MAX_TOKENS", default_value_t = 1_000)]
    pub max_tokens: usize,

    /// Requests a minute each caller (credential, or IP without credentials) may make; 0
    /// turns rate limiting off.
    #[arg(long, env = "RATE_LIMIT_PER_MINUTE", default_value_t = 6_000)]
    pub rate_limit_per_minute: u32,

    /// Requests a caller may make at once before the per-minute rate applies.
    #[arg(long, env = "RATE_LIMIT_BURST", default_value_t = 500)]
    pub rate_limit_burst: u32,

    /// Browser origins allowed to call the API (CORS), comma-separated, e.g.
    /// `https://app.example.com`. None by default.
    #[arg(
        long = "cors-allowed-origin",
        env = "CORS_ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    pub cors_allowed_origins: Vec<String>,

    /// Refused credentials (HTTP or WebSocket) a client address may present a minute, and at
    /// once, before it is answered 429. Valid credentials never count.
    #[arg(long, env = "AUTH_FAILURES_PER_MINUTE", default_value_t = 30)]
    pub auth_failures_per_minute: u32,

    /// Largest WebSocket message (and frame), in bytes; a larger one closes the connection
    /// before it is buffered.
    #[arg(long, env = "WS_MAX_MESSAGE_BYTES", default_value_t = 256 * 1024)]
    pub ws_max_message_bytes: usize,

    /// Seconds a WebSocket connection may stay open without a successful `connection_init`.
    #[arg(long, env = "WS_INIT_TIMEOUT_SECS", default_value_t = 10)]
    pub ws_init_timeout_secs: u64,

    /// Operations (subscriptions included) one WebSocket connection may run at once.
    #[arg(long, env = "WS_MAX_OPERATIONS_PER_CONNECTION", default_value_t = 100)]
    pub ws_max_operations_per_connection: usize,

    /// Open WebSocket connections per caller (credential, or address when anonymous).
    #[arg(long, env = "WS_MAX_CONNECTIONS_PER_CALLER", default_value_t = 100)]
    pub ws_max_connections_per_caller: usize,

    /// Answer introspection queries (default: only when listening on loopback).
    #[arg(long, env = "INTROSPECTION")]
    pub introspection: Option<bool>,

    /// Suggest field names ("did you mean") in errors (default: only on loopback).
    #[arg(long, env = "SUGGESTIONS")]
    pub suggestions: Option<bool>,

    /// Seconds a client has to send a request's headers, from connecting and again between
    /// requests on a kept-alive connection; then the connection is closed.
    #[arg(long, env = "HEADER_READ_TIMEOUT_SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub header_read_timeout_secs: u64,

    /// Seconds a write may wait for the client to read it (a response, a WebSocket message);
    /// then the connection is closed and what waited to be sent is freed.
    #[arg(long, env = "WRITE_TIMEOUT_SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub write_timeout_secs: u64,

    /// Connections open at once, WebSockets included; further ones wait to be accepted.
    /// Default: 10,000, or the open-file limit less 128 when that is lower.
    #[arg(long = "max-connections", env = "MAX_CONNECTIONS",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_client_connections: Option<u64>,

    /// Host names served while no credentials are configured, besides localhost and IP
    /// addresses (a guard against DNS rebinding), comma-separated, e.g. `api.internal`.
    #[arg(long = "allowed-host", env = "ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,

    /// Reverse proxies whose forwarded client address is believed (rate limits, logs): IP
    /// addresses or CIDR networks, comma-separated. None by default: the socket peer counts.
    #[arg(long = "trusted-proxy", env = "TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<String>,

    /// The header the trusted proxies write the client address into.
    #[arg(long, env = "TRUSTED_PROXY_HEADER", default_value = "x-forwarded-for",
          value_parser = ["x-forwarded-for", "forwarded"])]
    pub trusted_proxy_header: String,

    /// The Meta app secret (App settings → Basic) that signs WhatsApp webhook deliveries
    /// (`X-Hub-Signature-256`). Set, it mounts `/webhooks/whatsapp`; unset, the route does
    /// not exist.
    #[arg(long, env = "WHATSAPP_APP_SECRET", hide_env_values = true)]
    pub whatsapp_app_secret: Option<String>,

    /// The token Meta's webhook verification request must carry (`hub.verify_token`); the
    /// one typed as "Verify token" in the app's WhatsApp configuration.
    #[arg(long, env = "WHATSAPP_VERIFY_TOKEN", hide_env_values = true)]
    pub whatsapp_verify_token: Option<String>,

    /// Days the change log (`contactChanges`, `contactEvents(after:)`) keeps a change; older
    /// changes are pruned hourly and their cursors answer `CURSOR_EXPIRED`.
    #[arg(long, env = "CHANGE_LOG_RETENTION_DAYS", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub change_log_retention_days: u32,

    /// Endpoints that receive every change of the change log as signed JSON webhooks,
    /// comma-separated `https://` (or `http://`) URLs. Needs WEBHOOK_SECRET.
    #[arg(
        long = "webhook-url",
        env = "WEBHOOK_URLS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub webhook_urls: Vec<String>,

    /// Secret (at least 32 bytes) that signs outgoing webhooks (`Webhook-Signature`).
    #[arg(long, env = "WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<String>,

    /// Most changes in one outgoing webhook request.
    #[arg(long, env = "WEBHOOK_BATCH_SIZE", default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub webhook_batch_size: u64,

    /// Seconds an outgoing webhook request may take, connecting included.
    #[arg(long, env = "WEBHOOK_TIMEOUT_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=30))]
    pub webhook_timeout_secs: u64,

    /// Milliseconds the first retry of a failed webhook waits at most (doubling each time).
    #[arg(long, env = "WEBHOOK_BACKOFF_BASE_MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub webhook_backoff_base_ms: u64,

    /// Longest wait between webhook retries, in milliseconds.
    #[arg(long, env = "WEBHOOK_BACKOFF_CAP_MS", default_value_t = 300_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub webhook_backoff_cap_ms: u64,
}

/// Where the contacts are stored; shared by every subcommand.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// Database URL: `sqlite://FILE?mode=rwc` (created and migrated at start-up) or
    /// `postgres://user:pass@host/db`.
    #[arg(
        long = "database-url",
        env = "DATABASE_URL",
        default_value = "sqlite://contacts.db?mode=rwc"
    )]
    pub url: String,

    /// Database connections: readers on SQLite (one more connection writes), the whole pool
    /// on PostgreSQL.
    #[arg(
        long = "database-max-connections",
        env = "DATABASE_MAX_CONNECTIONS",
        default_value_t = 8
    )]
    pub max_connections: u32,

    /// Seconds to wait for a database connection before failing a request (short, so that
    /// requests fail fast while the database is down).
    #[arg(
        long = "database-acquire-timeout-secs",
        env = "DATABASE_ACQUIRE_TIMEOUT_SECS",
        default_value_t = 5
    )]
    pub acquire_timeout_secs: u64,

    /// Seconds after which a running statement is stopped and its query answered
    /// `QUERY_TIMEOUT` (at most nine tenths of `REQUEST_TIMEOUT_SECS`; 0: no deadline).
    #[arg(
        long = "database-statement-timeout-secs",
        env = "DATABASE_STATEMENT_TIMEOUT_SECS",
        default_value_t = 15
    )]
    pub statement_timeout_secs: u64,

    /// Milliseconds a pooled connection may sit idle and still be used without a ping first
    /// (0: a ping before every use). Keep it below any idle timeout that ends connections (the
    /// server's `idle_session_timeout`, a proxy's).
    #[arg(
        long = "database-ping-after-idle-ms",
        env = "DATABASE_PING_AFTER_IDLE_MS",
        default_value_t = 500
    )]
    pub ping_after_idle_ms: u64,
}

impl DatabaseArgs {
    pub fn options(&self) -> DbOptions {
        DbOptions {
            url: self.url.clone(),
            max_connections: self.max_connections,
            acquire_timeout: Duration::from_secs(self.acquire_timeout_secs),
            busy_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(self.statement_timeout_secs),
            ping_after_idle: Duration::from_millis(self.ping_after_idle_ms),
        }
    }
}

impl Config {
    /// The credential checker this configuration describes.
    pub fn authenticator(&self) -> anyhow::Result<Authenticator> {
        let public_key_pem = match &self.jwt_public_key_file {
            Some(path) => {
                Some(std::fs::read(path).with_context(|| format!("reading {}", path.display()))?)
            }
            None => None,
        };
        let jwt = JwtSettings {
            hs256_secret: self.jwt_hs256_secret.clone(),
            public_key_pem,
            algorithm: Some(self.jwt_algorithm.clone()),
            issuer: self.jwt_issuer.clone(),
            audience: self.jwt_audience.clone(),
            scope_claim: self.jwt_scope_claim.clone(),
        };
        Authenticator::new(&self.api_keys, jwt)
    }

    /// Secure by default: without credentials, only loopback and not behind a reverse proxy
    /// (which would publish the loopback server), unless explicitly allowed.
    pub fn check_exposure(&self, auth: &Authenticator) -> anyhow::Result<()> {
        if auth.is_enabled() {
            return Ok(());
        }
        let exposure = if !self.host.is_loopback() {
            format!("listen on {}", self.host)
        } else if let Some(proxy) = self.proxy_evidence() {
            format!("serve behind a reverse proxy ({proxy})")
        } else {
            return Ok(());
        };
        if !self.allow_unauthenticated {
            anyhow::bail!(
                "refusing to {exposure} without credentials: configure --api-key or a JWT \
                 key, or pass --allow-unauthenticated"
            );
        }
        tracing::warn!(
            "--allow-unauthenticated: about to {exposure} without credentials; anyone who \
             reaches it can read, change and delete every contact"
        );
        Ok(())
    }

    /// What says the server sits behind a reverse proxy: a proxy to trust, or a public name.
    fn proxy_evidence(&self) -> Option<String> {
        let mut proxies = self.trusted_proxies.iter();
        if let Some(proxy) = proxies.find(|proxy| !proxy.trim().is_empty()) {
            return Some(format!("TRUSTED_PROXIES has {}", proxy.trim()));
        }
        let name = self
            .allowed_hosts
            .iter()
            .find(|name| !is_loopback_name(name))?;
        Some(format!("ALLOWED_HOSTS has {}", name.trim()))
    }

    /// Connections served at once: `MAX_CONNECTIONS`, or 10,000 kept under the open-file
    /// limit (the database and log need descriptors too).
    pub fn max_client_connections(&self) -> usize {
        const DEFAULT: u64 = 10_000;
        const RESERVE: u64 = 128;
        let configured = self.max_client_connections.unwrap_or_else(|| {
            open_file_limit().map_or(DEFAULT, |limit| {
                DEFAULT.min(limit.saturating_sub(RESERVE)).max(1)
            })
        });
        usize::try_from(configured).unwrap_or(usize::MAX)
    }

    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_secs(self.header_read_timeout_secs)
    }

    pub fn write_timeout(&self) -> Duration {
        Duration::from_secs(self.write_timeout_secs)
    }

    /// The operation limits; introspection and suggestions default to on only on loopback.
    pub fn limits(&self) -> Limits {
        let loopback = self.host.is_loopback();
        Limits {
            max_depth: self.max_depth,
            max_introspection_depth: self.max_introspection_depth,
            max_complexity: self.max_complexity,
            max_aliases: self.max_aliases,
            max_root_fields: self.max_root_fields,
            max_directives: self.max_directives,
            max_tokens: self.max_tokens,
            introspection: self.introspection.unwrap_or(loopback),
            suggestions: self.suggestions.unwrap_or(loopback),
        }
    }

    /// The WebSocket caps.
    pub fn websocket_limits(&self) -> WebSocketLimits {
        WebSocketLimits::new(
            self.ws_max_message_bytes,
            Duration::from_secs(self.ws_init_timeout_secs),
            self.ws_max_operations_per_connection,
            self.ws_max_connections_per_caller,
        )
    }

    /// The WhatsApp webhook settings: `(app secret, verify token)`, or `None` when the
    /// webhook is off. An empty secret is refused: anyone could sign with it. Both are
    /// trimmed: a secret read from a file ends in a newline, which would make every
    /// delivery 401.
    pub fn whatsapp_webhook(&self) -> anyhow::Result<Option<(&str, Option<&str>)>> {
        let Some(secret) = self.whatsapp_app_secret.as_deref().map(str::trim) else {
            return Ok(None);
        };
        if secret.is_empty() {
            anyhow::bail!("WHATSAPP_APP_SECRET is empty; unset it to turn the webhook off");
        }
        let token = self
            .whatsapp_verify_token
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty());
        if token.is_none() {
            tracing::warn!(
                "WHATSAPP_VERIFY_TOKEN is unset: Meta's verification request will be refused"
            );
        }
        Ok(Some((secret, token)))
    }

    /// The outgoing webhook settings, or `None` without `WEBHOOK_URLS`; an error (refusing to
    /// start) for a bad URL or a missing or short `WEBHOOK_SECRET`.
    pub fn webhooks(&self) -> anyhow::Result<Option<crate::webhooks_out::WebhookSettings>> {
        let settings = crate::webhooks_out::WebhookSettings::new(
            &self.webhook_urls,
            self.webhook_secret.as_deref(),
        )?;
        Ok(settings.map(|mut settings| {
            settings.batch_size = self.webhook_batch_size;
            settings.timeout = Duration::from_secs(self.webhook_timeout_secs);
            settings.backoff_base = Duration::from_millis(self.webhook_backoff_base_ms);
            settings.backoff_cap = Duration::from_millis(self.webhook_backoff_cap_ms);
            settings
        }))
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }

    /// The server's database options: a statement's deadline is at most nine tenths of the
    /// request timeout, so a statement is stopped (`QUERY_TIMEOUT`) before its request is
    /// dropped (503), and a dropped request leaves nothing running.
    pub fn database_options(&self) -> DbOptions {
        let mut options = self.database.options();
        let request = self.request_timeout();
        let ceiling = request.saturating_sub(request / 10);
        options.statement_timeout = options.statement_timeout.min(ceiling);
        options
    }
}

/// Whether `name` (a host name or IP literal, as in `ALLOWED_HOSTS`) only names loopback.
pub fn is_loopback_name(name: &str) -> bool {
    let name = name.trim().trim_end_matches('.').to_ascii_lowercase();
    let literal = name.trim_start_matches('[').trim_end_matches(']');
    name == "localhost"
        || name.ends_with(".localhost")
        || literal.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The soft limit on open files, where there is one.
#[cfg(unix)]
fn open_file_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

#[cfg(not(unix))]
fn open_file_limit() -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(args: &[&str]) -> Config {
        let mut argv = vec!["contacts-server"];
        argv.extend_from_slice(args);
        Config::try_parse_from(argv).unwrap()
    }

    fn exposure(args: &[&str]) -> anyhow::Result<()> {
        let config = config(args);
        config.check_exposure(&config.authenticator()?)
    }

    #[test]
    fn without_credentials_only_loopback_is_allowed() {
        assert!(exposure(&["--host", "127.0.0.1"]).is_ok());
        assert!(exposure(&["--host", "::1"]).is_ok());
        let refused = exposure(&["--host", "0.0.0.0"]).unwrap_err().to_string();
        assert!(refused.contains("refusing"), "{refused}");
        assert!(exposure(&["--host", "0.0.0.0", "--allow-unauthenticated"]).is_ok());
    }

    #[test]
    fn with_credentials_any_address_is_allowed() {
        let key = format!("{}:read", "ab".repeat(32));
        assert!(exposure(&["--host", "0.0.0.0", "--api-key", &key]).is_ok());
        let behind = [
            "--trusted-proxy",
            "10.0.0.1",
            "--allowed-host",
            "api.example.com",
        ];
        assert!(exposure(&[&behind[..], &["--api-key", key.as_str()]].concat()).is_ok());
    }

    #[test]
    fn without_credentials_behind_a_proxy_is_refused_unless_allowed() {
        for behind in [
            &["--trusted-proxy", "10.0.0.1"][..],
            &["--allowed-host", "localhost,api.example.com"][..],
        ] {
            let refused = exposure(behind).unwrap_err().to_string();
            assert!(refused.contains("behind a reverse proxy"), "{refused}");
            let allowed = [behind, &["--allow-unauthenticated"]].concat();
            assert!(exposure(&allowed).is_ok());
        }
        // Names that only ever mean this machine publish nothing.
        let local = ["--allowed-host", "localhost,app.localhost,127.0.0.2,[::1]"];
        assert!(exposure(&local).is_ok());
        assert!(exposure(&["--trusted-proxy", " "]).is_ok());
    }

    #[test]
    fn a_statement_deadline_ends_before_its_request_timeout() {
        let default = config(&[]).database_options().statement_timeout;
        assert_eq!(default, Duration::from_secs(15));
        let capped = config(&["--request-timeout-secs", "10"]).database_options();
        assert_eq!(capped.statement_timeout, Duration::from_secs(9));
    }

    #[test]
    fn a_connection_is_pinged_after_half_a_second_idle_unless_configured() {
        let default = config(&[]).database_options().ping_after_idle;
        assert_eq!(default, Duration::from_millis(500));
        let always = config(&["--database-ping-after-idle-ms", "0"]).database_options();
        assert_eq!(always.ping_after_idle, Duration::ZERO);
    }

    #[test]
    fn loopback_names() {
        for name in ["localhost", "API.localhost.", "127.0.0.2", "[::1]", "::1"] {
            assert!(is_loopback_name(name), "{name}");
        }
        for name in ["api.example.com", "10.0.0.1", "localhost.example", "[::2]"] {
            assert!(!is_loopback_name(name), "{name}");
        }
    }

    #[test]
    fn whatsapp_webhook_needs_a_non_empty_secret() {
        assert!(config(&[]).whatsapp_webhook().unwrap().is_none());
        let on = config(&[
            "--whatsapp-app-secret",
            "s3cret",
            "--whatsapp-verify-token",
            "t",
        ]);
        assert_eq!(on.whatsapp_webhook().unwrap(), Some(("s3cret", Some("t"))));
        let no_token = config(&["--whatsapp-app-secret", "s3cret"]);
        assert_eq!(no_token.whatsapp_webhook().unwrap(), Some(("s3cret", None)));
        assert!(
            config(&["--whatsapp-app-secret", " "])
                .whatsapp_webhook()
                .is_err()
        );
    }

    #[test]
    fn connection_limits() {
        assert_eq!(config(&[]).header_read_timeout(), Duration::from_secs(10));
        assert_eq!(config(&[]).write_timeout(), Duration::from_secs(30));
        assert!(Config::try_parse_from(["s", "--header-read-timeout-secs", "0"]).is_err());
        assert_eq!(
            config(&["--max-connections", "50"]).max_client_connections(),
            50
        );
        let default = config(&[]).max_client_connections();
        assert!((1..=10_000).contains(&default), "{default}");
    }

    #[test]
    fn whatsapp_secrets_are_trimmed_as_read_from_a_file() {
        let given = config(&[
            "--whatsapp-app-secret",
            " app-secret\n",
            "--whatsapp-verify-token",
            "verify-token\r\n",
        ]);
        let settings = given.whatsapp_webhook().unwrap();
        assert_eq!(settings, Some(("app-secret", Some("verify-token"))));
        let blank = config(&["--whatsapp-app-secret", "\n"]);
        assert!(blank.whatsapp_webhook().is_err());
    }
}
