//! `POST /graphql` and `GET /graphql`: GraphQL over HTTP. Transport only: this reads the
//! request (media types, credentials, body or query string) the same way for both methods and
//! writes the response; what may run, and how often, is decided in the schema
//! (`graphql::policy`), which every transport passes.

use std::{net::IpAddr, time::Instant};

use async_graphql::{Request, Response as GqlResponse, ServerError, Variables};
use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Query, State},
    http::{HeaderValue, Method, StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use tracing::Instrument;

use super::{
    AppState,
    client_ip::ClientIp,
    credentials,
    negotiate::{Format, error_response, is_json_body, response_format, wants_html},
};
use crate::{
    error::ErrorCode,
    graphql::{
        codes,
        outcome::is_request_error,
        policy::{Caller, Transport},
    },
};

/// `POST /graphql`.
pub async fn post(State(state): State<AppState>, operation: HttpOperation) -> Response {
    run(&state, operation).await
}

/// `GET /graphql`: GraphiQL for a browser that sends no query, else a read-only operation.
pub async fn get(State(state): State<AppState>, request: axum::extract::Request) -> Response {
    let has_query = Query::<GetParams>::try_from_uri(request.uri())
        .is_ok_and(|Query(params)| params.query.is_some());
    if !has_query && wants_html(request.headers()) {
        return crate::graphiql::page();
    }
    match HttpOperation::from_request(request, &state).await {
        Ok(operation) => run(&state, operation).await,
        Err(refused) => refused,
    }
}

/// One GraphQL operation read from HTTP, with its caller attached: the opening steps shared
/// by GET and POST, in the order the contract answers them (406, 401, 415, 413, 400).
pub struct HttpOperation {
    request: Request,
    format: Format,
}

impl FromRequest<AppState> for HttpOperation {
    type Rejection = Response;

    async fn from_request(
        request: axum::extract::Request,
        state: &AppState,
    ) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let format = response_format(&parts.headers).ok_or_else(not_acceptable)?;
        let address = client_address(&mut parts, state).await;
        let principal = credentials::from_headers(state, &parts.headers)
            .map_err(|err| credentials::refused(state, address, err, format))?;
        let (transport, request) = if parts.method == Method::GET {
            (Transport::HttpGet, from_query_string(&parts))
        } else {
            let request = axum::extract::Request::from_parts(parts, body);
            (Transport::HttpPost, from_body(request, state).await)
        };
        let request = request.map_err(|(code, message)| error_response(code, format, &message))?;
        let caller = Caller {
            principal,
            address,
            transport,
        };
        Ok(Self {
            request: request.data(caller),
            format,
        })
    }
}

/// The caller's address: the peer, or the client a trusted proxy forwarded for.
async fn client_address(parts: &mut Parts, state: &AppState) -> IpAddr {
    match ClientIp::from_request_parts(parts, state).await {
        Ok(ClientIp(address)) => address,
        Err(_) => IpAddr::from([0, 0, 0, 0]),
    }
}

/// A POST body: `query` is required, unlike in `async_graphql::Request`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PostBody {
    query: String,
    operation_name: Option<String>,
    variables: Option<Variables>,
}

/// Why a request could not be read: the code and the message for the client.
type Unreadable = (ErrorCode, String);

fn unreadable(code: ErrorCode, message: impl Into<String>) -> Unreadable {
    (code, message.into())
}

async fn from_body(
    request: axum::extract::Request,
    state: &AppState,
) -> Result<Request, Unreadable> {
    if !is_json_body(request.headers()) {
        let message = "POST /graphql takes Content-Type: application/json";
        return Err(unreadable(ErrorCode::UnsupportedMediaType, message));
    }
    // A declared length over the limit is refused before waiting for a byte of it.
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|length| length.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > super::MAX_BODY_BYTES as u64) {
        let message = "request body is larger than 1 MiB";
        return Err(unreadable(ErrorCode::PayloadTooLarge, message));
    }
    let body = Bytes::from_request(request, state)
        .await
        .map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                let message = "request body is larger than 1 MiB";
                unreadable(ErrorCode::PayloadTooLarge, message)
            } else {
                unreadable(ErrorCode::BadRequest, rejection.body_text())
            }
        })?;
    let body: PostBody = serde_json::from_slice(&body).map_err(|err| {
        let message =
            format!("the body is not a GraphQL request object (batching is not supported): {err}");
        unreadable(ErrorCode::BadRequest, message)
    })?;
    let mut request = Request::new(body.query).variables(body.variables.unwrap_or_default());
    request.operation_name = body.operation_name;
    Ok(request)
}

/// Query-string parameters of `GET /graphql`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetParams {
    query: Option<String>,
    operation_name: Option<String>,
    variables: Option<String>,
}

fn from_query_string(parts: &Parts) -> Result<Request, Unreadable> {
    let Ok(Query(params)) = Query::<GetParams>::try_from_uri(&parts.uri) else {
        return Err(unreadable(ErrorCode::BadRequest, "malformed query string"));
    };
    let Some(query) = params.query else {
        return Err(unreadable(
            ErrorCode::BadRequest,
            "missing `query` parameter",
        ));
    };
    let variables = params
        .variables
        .as_deref()
        .map(serde_json::from_str::<Variables>)
        .transpose()
        .map_err(|_| unreadable(ErrorCode::BadRequest, "`variables` must be a JSON object"))?;
    let mut request = Request::new(query).variables(variables.unwrap_or_default());
    request.operation_name = params.operation_name;
    Ok(request)
}

fn not_acceptable() -> Response {
    let message = "Accept must allow application/graphql-response+json or application/json";
    error_response(ErrorCode::NotAcceptable, Format::Json, message)
}

/// Runs one operation inside its own span: its name, type and outcome (recorded by the
/// schema's policy) end up on every log line it causes, and on the one line that reports it.
async fn run(state: &AppState, operation: HttpOperation) -> Response {
    let span = tracing::info_span!(
        "operation",
        operation_name = tracing::field::Empty,
        kind = tracing::field::Empty,
        outcome = tracing::field::Empty,
    );
    let started = Instant::now();
    let response = state
        .schema
        .execute(operation.request)
        .instrument(span.clone())
        .await;
    let response = reply(response, operation.format);
    span.in_scope(|| {
        tracing::info!(
            status = response.status().as_u16(),
            duration_ms = started.elapsed().as_secs_f64() * 1000.0,
            "operation finished"
        );
    });
    response
}

/// The HTTP response for a GraphQL response: the status follows the error code of a request
/// that never ran (`ErrorCode::status`), and the body is serialised once, straight to bytes.
fn reply(response: GqlResponse, format: Format) -> Response {
    let request_error = is_request_error(&response);
    let body = if request_error {
        // A request error means nothing ran: the spec says no `data` entry at all.
        serde_json::to_vec(&RequestErrors {
            errors: &response.errors,
        })
    } else {
        serde_json::to_vec(&response)
    };
    let Ok(body) = body else {
        return error_response(
            ErrorCode::InternalServerError,
            format,
            "internal server error",
        );
    };
    let code = response.errors.iter().find_map(codes::code_of);
    let unavailable = response
        .errors
        .iter()
        .any(|e| codes::code_of(e) == Some(ErrorCode::ServiceUnavailable));
    let status = match code {
        // An outage, not the request: load balancers and clients may retry elsewhere.
        _ if unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Some(code) if request_error && code.is_transport_level() => code.status(),
        Some(_) if request_error && format == Format::GraphqlResponse => StatusCode::BAD_REQUEST,
        _ => StatusCode::OK,
    };
    let mut http = (status, body).into_response();
    let headers = http.headers_mut();
    headers.insert(header::CONTENT_TYPE, format.content_type());
    if unavailable {
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    if status == StatusCode::METHOD_NOT_ALLOWED {
        headers.insert(header::ALLOW, HeaderValue::from_static("POST"));
    }
    if let Some(seconds) = retry_after(&response.errors).filter(|_| request_error) {
        headers.insert(header::RETRY_AFTER, seconds);
    }
    http
}

/// `Retry-After` from a rate-limit refusal's `extensions.retryAfter`.
fn retry_after(errors: &[ServerError]) -> Option<HeaderValue> {
    errors
        .iter()
        .find_map(|e| match e.extensions.as_ref()?.get("retryAfter")? {
            async_graphql::Value::Number(seconds) => {
                HeaderValue::from_str(&seconds.to_string()).ok()
            }
            _ => None,
        })
}

/// The body of a request error: `errors` only.
#[derive(serde::Serialize)]
struct RequestErrors<'a> {
    errors: &'a [ServerError],
}
