//! `GET /graphql/ws`: subscriptions over WebSocket, in both the `graphql-transport-ws` and
//! the legacy `graphql-ws` protocol (the client picks with `Sec-WebSocket-Protocol`).
//! Credentials come in `connection_init`; a connection without valid ones is closed.

use async_graphql::{Data, ErrorExtensions, http::ALL_WEBSOCKET_PROTOCOLS};
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::{
    extract::{ConnectInfo, State, WebSocketUpgrade},
    http::HeaderMap,
    response::Response,
};

use std::net::SocketAddr;

use futures_util::FutureExt;
use tracing::Instrument;

use super::{AppState, credentials, negotiate::Format, rate_limit, request_log};

pub async fn upgrade(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> Response {
    // Connections count against the client's address; credentials only come later.
    if let Err(wait) = state.rate_limit.check(&format!("ip:{}", client.ip())) {
        return rate_limit::too_many(wait, Format::Json);
    }
    let schema = state.schema.clone();
    // The connection outlives the upgrade request's span: it gets its own, with the same id.
    let span = tracing::info_span!(
        "websocket",
        request_id = %headers
            .get(&request_log::REQUEST_ID)
            .and_then(|id| id.to_str().ok())
            .unwrap_or_default(),
    );
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| {
            GraphQLWebSocket::new(socket, schema, protocol)
                .on_connection_init(move |payload| async move {
                    let principal = credentials::from_connection_init(&state, &payload, &headers)
                        .map_err(|_| {
                        async_graphql::Error::new("authentication required")
                            .extend_with(|_, ext| ext.set("code", "UNAUTHENTICATED"))
                    })?;
                    let mut data = Data::default();
                    data.insert(principal);
                    Ok(data)
                })
                .serve()
                .then(|()| async { tracing::info!("websocket closed") })
                .instrument(span)
        })
}
