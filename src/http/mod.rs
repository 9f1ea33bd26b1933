//! The HTTP surface: routes, layers and graceful shutdown. Transport only: no business rules.

pub mod client_ip;
mod credentials;
mod graphql;
pub mod host;
mod negotiate;
mod ops;
mod request_log;
pub mod serve;
mod subscriptions;
pub mod whatsapp;

use std::{sync::Arc, time::Duration};

use axum::{
    Router,
    extract::DefaultBodyLimit,
    http::{HeaderName, HeaderValue, Method, StatusCode, header},
    middleware,
    response::Redirect,
    routing::get,
};
use tower::ServiceBuilder;
use tower_http::{
    cors::{AllowOrigin, CorsLayer},
    timeout::TimeoutLayer,
};

pub use self::subscriptions::WebSocketLimits;
use self::{client_ip::TrustedProxies, host::HostPolicy};
use crate::{
    auth::Authenticator,
    contacts::ContactService,
    graphql::{AppSchema, Limits, build_schema},
    metrics::Metrics,
    rate_limit::RateLimit,
};

/// Bodies above this are answered with 413.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Refused credentials a client address may present a minute (and at once) before it is
/// answered 429: guessing keys or forging tokens gets slow. Valid credentials never count.
pub const AUTH_FAILURES_PER_MINUTE: u32 = 30;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub schema: AppSchema,
    pub service: ContactService,
    pub metrics: Arc<Metrics>,
    pub auth: Arc<Authenticator>,
    /// Every operation of a caller, on every transport (counted in the schema).
    pub rate_limit: Arc<RateLimit>,
    /// Refused credentials and WebSocket upgrades, by client address.
    pub address_limit: Arc<RateLimit>,
    pub websocket: Arc<WebSocketLimits>,
    /// Browser origins allowed to call the API; empty: no CORS headers at all.
    pub cors_origins: Vec<HeaderValue>,
    limits: Limits,
    /// Host names served while no credentials are configured, besides localhost and IPs.
    pub allowed_hosts: Vec<String>,
    /// Reverse proxies whose forwarded client address is believed.
    pub trusted_proxies: TrustedProxies,
    /// Meta's webhooks (`/webhooks/whatsapp`), when an app secret is configured.
    pub whatsapp: Option<Arc<whatsapp::WhatsappWebhook>>,
}

impl AppState {
    pub fn new(service: ContactService, limits: Limits) -> Self {
        let metrics = Metrics::default().with_event_row_reads(service.event_row_reads().clone());
        let metrics = Arc::new(metrics);
        let rate_limit = Arc::new(RateLimit::new(0, 0));
        Self {
            schema: build_schema(
                service.clone(),
                &limits,
                rate_limit.clone(),
                metrics.clone(),
            ),
            rate_limit,
            address_limit: Arc::new(RateLimit::new(
                AUTH_FAILURES_PER_MINUTE,
                AUTH_FAILURES_PER_MINUTE,
            )),
            websocket: Arc::new(WebSocketLimits::default()),
            cors_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            trusted_proxies: TrustedProxies::default(),
            whatsapp: None,
            service,
            metrics,
            auth: Arc::new(Authenticator::default()),
            limits,
        }
    }

    /// Limits each caller to `per_minute` operations, in bursts of `burst` (0: no limit).
    pub fn with_rate_limit(mut self, per_minute: u32, burst: u32) -> Self {
        self.rate_limit = Arc::new(RateLimit::new(per_minute, burst));
        self.rebuild_schema()
    }

    /// Other operation limits (and introspection, suggestions).
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self.rebuild_schema()
    }

    fn rebuild_schema(mut self) -> Self {
        self.schema = build_schema(
            self.service.clone(),
            &self.limits,
            self.rate_limit.clone(),
            self.metrics.clone(),
        );
        self
    }

    /// Limits refused credentials and WebSocket upgrades per client address.
    pub fn with_address_limit(mut self, per_minute: u32, burst: u32) -> Self {
        self.address_limit = Arc::new(RateLimit::new(per_minute, burst));
        self
    }

    /// The operation limits the schema was built with.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Caps on WebSocket connections and what each may run.
    pub fn with_websocket_limits(mut self, limits: WebSocketLimits) -> Self {
        self.websocket = Arc::new(limits);
        self
    }

    /// Lets browsers on `origins` call the API.
    pub fn with_cors(mut self, origins: &[String]) -> anyhow::Result<Self> {
        self.cors_origins = origins
            .iter()
            .map(|origin| {
                HeaderValue::from_str(origin.trim())
                    .map_err(|_| anyhow::anyhow!("bad CORS origin {origin}"))
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(self)
    }

    /// Requires the credentials `auth` accepts on every API request.
    pub fn with_auth(mut self, auth: Authenticator) -> Self {
        self.auth = Arc::new(auth);
        self
    }

    /// Also serves `names` as `Host` while no credentials are configured.
    pub fn with_allowed_hosts(mut self, names: &[String]) -> Self {
        self.allowed_hosts = names.to_vec();
        self
    }

    /// Mounts `/webhooks/whatsapp`, checking deliveries against `app_secret`
    /// (`WHATSAPP_APP_SECRET`) and the handshake against `verify_token`.
    pub fn with_whatsapp(mut self, app_secret: &str, verify_token: Option<&str>) -> Self {
        let hook = whatsapp::WhatsappWebhook::new(app_secret, verify_token);
        self.whatsapp = Some(Arc::new(hook));
        self
    }

    /// Believes the client address forwarded by `proxies`; see [`client_ip`].
    pub fn with_trusted_proxies(mut self, proxies: TrustedProxies) -> Self {
        self.trusted_proxies = proxies;
        self
    }
}

/// The whole application, ready to serve.
pub fn app(state: AppState, request_timeout: Duration) -> Router {
    let cors = cors_layer(&state.cors_origins);
    // CORS inside each route, where the route's method router adds `Allow` to the answer
    // of a preflight `OPTIONS`; every other layer wraps the routers once, as one service:
    // `Router::layer` boxes every route again for each layer, and a request cloned its
    // route's whole boxed chain (BENCHMARKS.md, sixth round).
    let requests = Router::new()
        .route("/", get(|| async { Redirect::temporary("/graphql") }))
        .route("/graphql", get(graphql::get).post(graphql::post))
        .route("/schema.graphql", get(ops::schema))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .merge(crate::graphiql::routes())
        .merge(whatsapp::routes(state.whatsapp.is_some()))
        .fallback(ops::not_found)
        .layer(cors.clone())
        .with_state(state.clone());
    let requests = ServiceBuilder::new()
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            request_timeout,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .service(requests);
    // The socket route has no request timeout: a subscription outlives any request.
    let routes = Router::new()
        .route("/graphql/ws", get(subscriptions::upgrade).layer(cors))
        .fallback_service(requests)
        .with_state(state.clone());
    let hosts = HostPolicy::new(state.auth.is_enabled(), &state.allowed_hosts);
    // Outermost first: the client's address, then its request id (a bad one dropped, then
    // one set), the log, the id copied to the response, the host check.
    let service = ServiceBuilder::new()
        .layer(middleware::from_fn_with_state(
            state.trusted_proxies.clone(),
            client_ip::layer,
        ))
        .layer(middleware::map_request(
            request_log::drop_unusable_request_id,
        ))
        .layer(request_log::set_request_id())
        .layer(request_log::request_log())
        .layer(request_log::propagate_request_id())
        .layer(middleware::from_fn_with_state(hosts, host::layer))
        .service(routes);
    Router::new().fallback_service(service)
}

/// CORS for the allow-listed origins only; with none, browsers keep the same-origin policy.
fn cors_layer(origins: &[HeaderValue]) -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins.iter().cloned()))
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            header::ACCEPT,
            HeaderName::from_static("x-api-key"),
        ])
        .max_age(Duration::from_secs(600))
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
