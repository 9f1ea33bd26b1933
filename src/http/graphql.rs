//! `POST /graphql` and `GET /graphql`: GraphQL over HTTP with the transport rules of the
//! contract (415, 405, 406, 413, 400) that async-graphql-axum alone does not enforce.

use std::time::Instant;

use async_graphql::{
    Request, Response as GqlResponse, ServerError, Variables,
    parser::types::{DocumentOperations, ExecutableDocument, OperationType as DocOperationType},
};
use axum::{
    body::Bytes,
    extract::{
        ConnectInfo, Query, State,
        rejection::{BytesRejection, QueryRejection},
    },
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use tracing::Instrument;

use std::net::SocketAddr;

use super::{
    AppState, credentials,
    negotiate::{Format, error_response, is_json_body, response_format, wants_html},
    rate_limit,
};
use crate::{
    auth::{Principal, Scope},
    graphql::{RequestNow, codes, documents::LimitsChecked},
    logging,
    metrics::{OperationType, Outcome},
};

pub async fn post(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Some(format) = response_format(&headers) else {
        return not_acceptable();
    };
    let principal = match credentials::from_headers(&state, &headers) {
        Ok(principal) => principal,
        Err(err) => return credentials::unauthenticated(err, format),
    };
    if let Err(wait) = state.rate_limit.check(&rate_limit::key(&principal, client)) {
        return rate_limit::too_many(wait, format);
    }
    if !is_json_body(&headers) {
        let message = "POST /graphql takes Content-Type: application/json";
        return error_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format,
            "UNSUPPORTED_MEDIA_TYPE",
            message,
        );
    }
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            let message = "request body is larger than 1 MiB";
            return error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                format,
                "PAYLOAD_TOO_LARGE",
                message,
            );
        }
        Err(rejection) => {
            return error_response(
                rejection.status(),
                format,
                codes::BAD_REQUEST,
                &rejection.body_text(),
            );
        }
    };
    match serde_json::from_slice::<PostBody>(&body) {
        Ok(body) => run(&state, body.into_request(), format, Method::Post, principal).await,
        Err(err) => {
            let message = format!(
                "the body is not a GraphQL request object (batching is not supported): {err}"
            );
            error_response(
                StatusCode::BAD_REQUEST,
                format,
                codes::BAD_REQUEST,
                &message,
            )
        }
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

impl PostBody {
    fn into_request(self) -> Request {
        let mut request = Request::new(self.query).variables(self.variables.unwrap_or_default());
        request.operation_name = self.operation_name;
        request
    }
}

/// Query-string parameters of `GET /graphql`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetParams {
    query: Option<String>,
    operation_name: Option<String>,
    variables: Option<String>,
}

pub async fn get(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    params: Result<Query<GetParams>, QueryRejection>,
) -> Response {
    let query = params.as_ref().ok().and_then(|Query(p)| p.query.clone());
    let Some(query) = query else {
        if wants_html(&headers) {
            return crate::graphiql::page();
        }
        let format = response_format(&headers).unwrap_or(Format::Json);
        return error_response(
            StatusCode::BAD_REQUEST,
            format,
            codes::BAD_REQUEST,
            "missing `query` parameter",
        );
    };
    let Some(format) = response_format(&headers) else {
        return not_acceptable();
    };
    let principal = match credentials::from_headers(&state, &headers) {
        Ok(principal) => principal,
        Err(err) => return credentials::unauthenticated(err, format),
    };
    if let Err(wait) = state.rate_limit.check(&rate_limit::key(&principal, client)) {
        return rate_limit::too_many(wait, format);
    }
    let Ok(Query(params)) = params else {
        return error_response(
            StatusCode::BAD_REQUEST,
            format,
            codes::BAD_REQUEST,
            "malformed query string",
        );
    };
    let variables = match params
        .variables
        .as_deref()
        .map(serde_json::from_str::<Variables>)
        .transpose()
    {
        Ok(variables) => variables.unwrap_or_default(),
        Err(_) => {
            let message = "`variables` must be a JSON object";
            return error_response(StatusCode::BAD_REQUEST, format, codes::BAD_REQUEST, message);
        }
    };
    let mut request = Request::new(query).variables(variables);
    request.operation_name = params.operation_name;
    run(&state, request, format, Method::Get, principal).await
}

/// How the request came: GET may only read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Get,
    Post,
}

fn not_acceptable() -> Response {
    let message = "Accept must allow application/graphql-response+json or application/json";
    error_response(
        StatusCode::NOT_ACCEPTABLE,
        Format::Json,
        "NOT_ACCEPTABLE",
        message,
    )
}

/// The operation that will run, as far as the document tells before validation: its name
/// (as given, or the only one the document has) and its type.
fn selected_operation<'a>(
    doc: &'a ExecutableDocument,
    given: Option<&'a str>,
) -> (Option<&'a str>, OperationType) {
    let (name, operation) = match (&doc.operations, given) {
        (DocumentOperations::Single(op), _) => (given, Some(op)),
        (DocumentOperations::Multiple(ops), Some(name)) => (Some(name), ops.get(name)),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops
            .iter()
            .next()
            .map_or((None, None), |(name, op)| (Some(name.as_str()), Some(op))),
        (DocumentOperations::Multiple(_), None) => (None, None),
    };
    let kind = match operation.map(|op| op.node.ty) {
        Some(DocOperationType::Query) => OperationType::Query,
        Some(DocOperationType::Mutation) => OperationType::Mutation,
        Some(DocOperationType::Subscription) => OperationType::Subscription,
        None => OperationType::Unknown,
    };
    (name, kind)
}

/// Runs one operation inside its own span: its name, type and outcome end up on every log
/// line it causes, and on the one line that reports it.
async fn run(
    state: &AppState,
    request: Request,
    format: Format,
    method: Method,
    principal: Principal,
) -> Response {
    let span = tracing::info_span!(
        "operation",
        operation_name = tracing::field::Empty,
        kind = tracing::field::Empty,
        outcome = tracing::field::Empty,
    );
    let started = Instant::now();
    let response = execute(state, request, format, method, principal, started)
        .instrument(span.clone())
        .await;
    span.in_scope(|| {
        tracing::info!(
            status = response.status().as_u16(),
            duration_ms = started.elapsed().as_secs_f64() * 1000.0,
            "operation finished"
        );
    });
    response
}

async fn execute(
    state: &AppState,
    mut request: Request,
    format: Format,
    method: Method,
    principal: Principal,
    started: Instant,
) -> Response {
    let name = request.operation_name.clone();
    let doc = match state.documents.parse(&request.query) {
        Ok(doc) => doc,
        Err(err) => {
            let response = GqlResponse::from_errors(vec![err]);
            return finish(state, response, format, OperationType::Unknown, started);
        }
    };
    let (operation_name, operation) = selected_operation(&doc, name.as_deref());
    let span = tracing::Span::current();
    span.record("kind", operation.label());
    let logged_name = operation_name.map_or("anonymous".into(), logging::mask);
    span.record("operation_name", logged_name.as_ref());
    request.set_parsed_query(doc);
    if operation == OperationType::Mutation && principal.scope < Scope::Write {
        span.record("outcome", "forbidden");
        return credentials::forbidden(format);
    }
    if operation == OperationType::Mutation && method == Method::Get {
        span.record("outcome", "method_not_allowed");
        let message = "mutations are not allowed over GET; use POST";
        let mut response = error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            format,
            codes::BAD_REQUEST,
            message,
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    if operation == OperationType::Subscription {
        let error = ServerError::new(
            "subscriptions are served over WebSocket at /graphql/ws",
            None,
        );
        let response = GqlResponse::from_errors(vec![codes::with_code(error, codes::BAD_REQUEST)]);
        return finish(state, response, format, operation, started);
    }
    let request = request
        .data(RequestNow(state.service.now()))
        .data(principal)
        .data(LimitsChecked);
    let response = state.schema.execute(request).await;
    finish(state, response, format, operation, started)
}

/// Labels uncoded errors, records metrics and picks the status.
fn finish(
    state: &AppState,
    mut response: GqlResponse,
    format: Format,
    op: OperationType,
    started: Instant,
) -> Response {
    // Errors before execution carry no path; resolver errors always do.
    let request_error = response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty());
    let fallback = if request_error {
        codes::BAD_REQUEST
    } else {
        codes::BAD_USER_INPUT
    };
    response.errors = std::mem::take(&mut response.errors)
        .into_iter()
        .map(|e| codes::with_code(e, fallback))
        .collect();
    let internal =
        has_code(&response, "INTERNAL_SERVER_ERROR") || has_code(&response, "SERVICE_UNAVAILABLE");
    let outcome = match (internal, response.errors.is_empty()) {
        (true, _) => Outcome::ServerError,
        (false, true) => Outcome::Ok,
        (false, false) => Outcome::ClientError,
    };
    state.metrics.observe(op, outcome, started.elapsed());
    tracing::Span::current().record("outcome", outcome.label());
    // Straight to bytes: the response is serialised once.
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
            StatusCode::INTERNAL_SERVER_ERROR,
            format,
            "INTERNAL_SERVER_ERROR",
            "internal server error",
        );
    };
    let unavailable = has_code(&response, "SERVICE_UNAVAILABLE");
    let status = if unavailable {
        // An outage, not the request: load balancers and clients may retry elsewhere.
        StatusCode::SERVICE_UNAVAILABLE
    } else if request_error && format == Format::GraphqlResponse {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let mut http = (status, body).into_response();
    http.headers_mut()
        .insert(header::CONTENT_TYPE, format.content_type());
    if unavailable {
        http.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    http
}

/// The body of a request error: `errors` only.
#[derive(serde::Serialize)]
struct RequestErrors<'a> {
    errors: &'a [ServerError],
}

fn has_code(response: &GqlResponse, code: &str) -> bool {
    let wanted = async_graphql::Value::from(code);
    response
        .errors
        .iter()
        .any(|e| e.extensions.as_ref().and_then(|x| x.get("code")) == Some(&wanted))
}
