//! `GET /graphql/ws`: GraphQL over WebSocket, in both the `graphql-transport-ws` and the
//! legacy `graphql-ws` protocol (the client picks with `Sec-WebSocket-Protocol`). Transport
//! only: the connection's caller comes from `connection_init`, and every operation on it then
//! passes the schema's policy like an HTTP request does (scope, rate limit, limits).
//!
//! What an unauthenticated client can cost is bounded here: upgrades only from allowed origins,
//! small messages, a deadline for `connection_init`, and a cap on connections per caller.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use async_graphql::{Data, ErrorExtensions, http::ALL_WEBSOCKET_PROTOCOLS};
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::{
    extract::{State, WebSocketUpgrade},
    http::{HeaderMap, header},
    response::Response,
};
use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio::sync::watch;
use tracing::Instrument;

use super::{
    AppState,
    client_ip::ClientIp,
    credentials,
    negotiate::{Format, error_response},
    request_log,
};
use crate::{
    auth::Principal,
    error::ErrorCode,
    graphql::policy::{Caller, ConnectionOperations, Transport},
    rate_limit::address_key,
};

/// Caps on WebSocket connections; see SECURITY.md.
#[derive(Debug)]
pub struct WebSocketLimits {
    /// Largest message (and frame) a client may send; larger ones close the connection
    /// before they are buffered.
    pub max_message_bytes: usize,
    /// Largest `connection_init` payload, in bytes of JSON.
    pub max_init_payload_bytes: usize,
    /// How long a connection may stay open without a successful `connection_init`.
    pub init_timeout: Duration,
    /// Operations (subscriptions included) one connection may run at once.
    pub max_operations_per_connection: usize,
    /// Open connections per caller (credential, or address when anonymous).
    pub max_connections_per_caller: usize,
    open: Mutex<HashMap<String, usize>>,
}

impl Default for WebSocketLimits {
    fn default() -> Self {
        Self::new(64 * 1024, Duration::from_secs(10), 100, 100)
    }
}

impl WebSocketLimits {
    pub fn new(
        max_message_bytes: usize,
        init_timeout: Duration,
        max_operations_per_connection: usize,
        max_connections_per_caller: usize,
    ) -> Self {
        Self {
            max_message_bytes,
            max_init_payload_bytes: 16 * 1024,
            init_timeout,
            max_operations_per_connection,
            max_connections_per_caller,
            open: Mutex::new(HashMap::new()),
        }
    }

    /// One more connection for `caller`, released when the guard drops; `None` at the cap.
    fn open_connection(self: &Arc<Self>, caller: String) -> Option<OpenConnection> {
        let mut open = self.open.lock().ok()?;
        let count = open.entry(caller.clone()).or_default();
        if *count >= self.max_connections_per_caller {
            return None;
        }
        *count += 1;
        Some(OpenConnection {
            limits: self.clone(),
            caller,
        })
    }
}

/// Held in the connection's session data: the connection counts against its caller until
/// the connection (and with it the session data) is gone.
struct OpenConnection {
    limits: Arc<WebSocketLimits>,
    caller: String,
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        if let Ok(mut open) = self.limits.open.lock()
            && let Some(count) = open.get_mut(&self.caller)
        {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.caller);
            }
        }
    }
}

/// What the connection learnt at `connection_init`.
#[derive(Debug, Clone, Copy, Default)]
struct Initialised {
    done: bool,
    /// When the credential expires; the connection is closed then.
    expires_at: Option<DateTime<Utc>>,
}

pub async fn upgrade(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    headers: HeaderMap,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> Response {
    if !origin_allowed(&state, &headers) {
        let code = ErrorCode::Forbidden;
        let message = "WebSocket upgrades are accepted from this server's own origin and the \
                       CORS allow-list only";
        return error_response(code, Format::Json, message);
    }
    // Connections count against the client's address; credentials only come later.
    if let Err(wait) = state.rate_limit.check(&address_key(client)) {
        return credentials::too_many(wait, Format::Json);
    }
    // The connection outlives the upgrade request's span: it gets its own, with the same id.
    let span = tracing::info_span!(
        "websocket",
        request_id = %headers
            .get(&request_log::REQUEST_ID)
            .and_then(|id| id.to_str().ok())
            .unwrap_or_default(),
        operation_name = tracing::field::Empty,
        kind = tracing::field::Empty,
    );
    let limits = state.websocket.clone();
    upgrade
        .max_message_size(limits.max_message_bytes)
        .max_frame_size(limits.max_message_bytes)
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| {
            let (initialised, watched) = watch::channel(Initialised::default());
            let schema = state.schema.clone();
            let clock = state.service.clock().clone();
            let serve = GraphQLWebSocket::new(socket, schema, protocol)
                .on_connection_init(move |payload| async move {
                    let (data, expires_at) = connection_init(&state, &payload, &headers, client)?;
                    initialised.send_replace(Initialised {
                        done: true,
                        expires_at,
                    });
                    Ok(data)
                })
                .serve();
            let deadline = async move {
                let mut watched = watched;
                let init =
                    tokio::time::timeout(limits.init_timeout, watched.wait_for(|state| state.done));
                let expires_at = match init.await {
                    Ok(Ok(state)) => state.expires_at,
                    Ok(Err(_)) => None,
                    Err(_) => {
                        tracing::info!("websocket closed: no connection_init in time");
                        return;
                    }
                };
                match expires_at {
                    Some(at) => {
                        clock.sleep_until(at).await;
                        tracing::info!("websocket closed: its credential expired");
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            async move {
                // Whichever ends first ends the connection (dropping it closes the socket).
                tokio::select! {
                    () = serve => tracing::info!("websocket closed"),
                    () = deadline => {},
                }
            }
            .instrument(span)
        })
}

/// Checks the credentials of `connection_init`; the session data every operation of the
/// connection will see, and when the credential expires.
fn connection_init(
    state: &AppState,
    payload: &Value,
    headers: &HeaderMap,
    address: IpAddr,
) -> async_graphql::Result<(Data, Option<DateTime<Utc>>)> {
    let refuse = |code: ErrorCode, message: &str| {
        async_graphql::Error::new(message).extend_with(|_, ext| ext.set("code", code.as_str()))
    };
    if payload.to_string().len() > state.websocket.max_init_payload_bytes {
        let message = "the connection_init payload is too large";
        return Err(refuse(ErrorCode::BadRequest, message));
    }
    let principal: Principal =
        credentials::from_connection_init(state, payload, headers).map_err(|_| {
            // Refused credentials count against the address, as over HTTP.
            let _ = state.address_limit.check(&address_key(address));
            refuse(ErrorCode::Unauthenticated, "authentication required")
        })?;
    let expires_at = principal.expires_at;
    let caller = Caller {
        principal,
        address,
        transport: Transport::WebSocket,
    };
    let open = state
        .websocket
        .open_connection(caller.rate_limit_key())
        .ok_or_else(|| {
            let message = "too many open WebSocket connections for this caller";
            refuse(ErrorCode::RateLimited, message)
        })?;
    let mut data = Data::default();
    data.insert(caller);
    data.insert(ConnectionOperations::new(
        state.websocket.max_operations_per_connection,
    ));
    data.insert(Arc::new(open));
    Ok((data, expires_at))
}

/// Browsers always send `Origin` on a WebSocket upgrade and never enforce the same-origin
/// policy on it: a page elsewhere could otherwise use a server on this machine. Clients that
/// are not browsers send none and are let through (credentials still apply).
fn origin_allowed(state: &AppState, headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    if state.cors_origins.iter().any(|allowed| allowed == origin) {
        return true;
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin_authority = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .map(|(_, authority)| authority);
    matches!((origin_authority, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h))
}
