//! Request ids and the request log: every request carries an `x-request-id` (the client's
//! when it is sane, a new UUID otherwise), returned on the response and on every log line of
//! the request. Requests are logged by path only: a query string may carry phone numbers.

use std::time::Duration;

use axum::{
    body::Body,
    extract::Request,
    http::{HeaderName, HeaderValue, Response},
};
use tower_http::{
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    trace::{HttpMakeClassifier, TraceLayer},
};
use tracing::Span;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest client-given request id kept; longer or odd ones are replaced.
const MAX_REQUEST_ID_LEN: usize = 128;

/// The request log: a span per request carrying its id, method, path and client address,
/// and a line when its response is ready.
pub type RequestLog = TraceLayer<
    HttpMakeClassifier,
    fn(&Request) -> Span,
    (),
    fn(&Response<Body>, Duration, &Span),
    (),
    (),
    (),
>;

pub fn request_log() -> RequestLog {
    TraceLayer::new_for_http()
        .make_span_with(request_span as fn(&Request) -> Span)
        .on_request(())
        .on_response(log_response as fn(&Response<Body>, Duration, &Span))
        .on_body_chunk(())
        .on_eos(())
        .on_failure(())
}

/// Sets a request id where the client gave none it may keep.
pub fn set_request_id() -> SetRequestIdLayer<MakeRequestUuid> {
    SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid)
}

/// Copies the request id to the response.
pub fn propagate_request_id() -> PropagateRequestIdLayer {
    PropagateRequestIdLayer::new(REQUEST_ID)
}

fn request_span(request: &Request) -> Span {
    let id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|id| id.to_str().ok())
        .unwrap_or_default();
    // Set by the client address layer; absent only where no socket is involved.
    let client_ip = request
        .extensions()
        .get::<super::client_ip::ClientIp>()
        .map(|ip| ip.0.to_string())
        .unwrap_or_default();
    tracing::info_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        path = %crate::logging::clip_and_mask(request.uri().path()),
        client_ip = %client_ip,
    )
}

fn log_response(response: &Response<Body>, latency: Duration, _: &Span) {
    tracing::info!(
        status = response.status().as_u16(),
        latency_ms = latency.as_secs_f64() * 1000.0,
        "request finished"
    );
}

/// A client's id goes into logs and headers verbatim: only short, plain ones are kept.
pub async fn drop_unusable_request_id(mut request: Request) -> Request {
    let usable = request.headers().get(&REQUEST_ID).is_none_or(is_usable);
    if !usable {
        request.headers_mut().remove(&REQUEST_ID);
    }
    request
}

fn is_usable(id: &HeaderValue) -> bool {
    let bytes = id.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_REQUEST_ID_LEN
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_plain_ids_are_kept() {
        assert!(is_usable(&HeaderValue::from_static("abc-123_x.y:z")));
        assert!(!is_usable(&HeaderValue::from_static("")));
        assert!(!is_usable(&HeaderValue::from_static("has space")));
        assert!(!is_usable(&HeaderValue::from_static("quote\"")));
        let long = "a".repeat(MAX_REQUEST_ID_LEN + 1);
        assert!(!is_usable(&HeaderValue::from_str(&long).unwrap()));
    }
}
