//! Content negotiation for GraphQL over HTTP, and error bodies for transport-level failures.

use std::str::FromStr;

use axum::{
    http::{HeaderMap, HeaderValue, header},
    response::{IntoResponse, Response},
};
use headers_accept::Accept;
use mediatype::{MediaType, Name, names};
use serde_json::json;

use crate::error::ErrorCode;

/// The media type a GraphQL response is sent as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `application/graphql-response+json`: request errors get 4xx statuses.
    GraphqlResponse,
    /// `application/json`: the legacy type, 200 for every well-formed request.
    Json,
}

impl Format {
    pub fn content_type(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Self::GraphqlResponse => "application/graphql-response+json; charset=utf-8",
            Self::Json => "application/json; charset=utf-8",
        })
    }
}

const GRAPHQL_RESPONSE: MediaType<'static> = MediaType::from_parts(
    names::APPLICATION,
    Name::new_unchecked("graphql-response"),
    Some(names::JSON),
    &[],
);
const JSON: MediaType<'static> = MediaType::new(names::APPLICATION, names::JSON);
const HTML: MediaType<'static> = MediaType::new(names::TEXT, names::HTML);
/// What `POST /graphql` can answer with, preferred first on a tie.
static RESPONSE_TYPES: [MediaType<'static>; 2] = [GRAPHQL_RESPONSE, JSON];
static PAGE_TYPES: [MediaType<'static>; 3] = [HTML, GRAPHQL_RESPONSE, JSON];

/// `Accept`, parsed by a media-type parser (q-values, wildcards and specificity as RFC 9110
/// says); `None` when absent or unparseable.
fn accept(headers: &HeaderMap) -> Option<Accept> {
    let value = headers.get(header::ACCEPT)?.to_str().ok()?;
    Accept::from_str(value).ok()
}

/// Picks the response type from `Accept`; `None` means 406. No `Accept` means legacy JSON, as
/// does a wildcard alone: `application/graphql-response+json` (whose 4xx statuses older clients
/// do not expect) is chosen only when the client names it.
pub fn response_format(headers: &HeaderMap) -> Option<Format> {
    if headers.get(header::ACCEPT).is_none() {
        return Some(Format::Json);
    }
    let accept = accept(headers)?;
    let chosen = accept.negotiate(&RESPONSE_TYPES)?;
    let named = accept
        .media_types()
        .any(|media| media.essence() == GRAPHQL_RESPONSE);
    if *chosen == GRAPHQL_RESPONSE && named {
        Some(Format::GraphqlResponse)
    } else {
        Some(Format::Json)
    }
}

/// True when a browser asks for a page: `Accept` names `text/html` and prefers it.
pub fn wants_html(headers: &HeaderMap) -> bool {
    let Some(accept) = accept(headers) else {
        return false;
    };
    let named = accept.media_types().any(|media| media.essence() == HTML);
    named && accept.negotiate(&PAGE_TYPES) == Some(&HTML)
}

/// `Content-Type: application/json`, with or without parameters.
pub fn is_json_body(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

/// A GraphQL-shaped error body for failures before any GraphQL runs.
pub fn error_response(code: ErrorCode, format: Format, message: &str) -> Response {
    let body =
        json!({ "errors": [{ "message": message, "extensions": { "code": code.as_str() } }] });
    let mut response = (code.status(), body.to_string()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, format.content_type());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn negotiates_graphql_response_json_first() {
        let headers = accept("application/graphql-response+json, application/json;q=0.9");
        assert_eq!(response_format(&headers), Some(Format::GraphqlResponse));
        assert_eq!(
            response_format(&accept("application/json")),
            Some(Format::Json)
        );
        assert_eq!(response_format(&accept("*/*")), Some(Format::Json));
        assert_eq!(response_format(&HeaderMap::new()), Some(Format::Json));
    }

    #[test]
    fn refuses_what_it_cannot_send() {
        assert_eq!(response_format(&accept("text/csv")), None);
        assert_eq!(response_format(&accept("application/json;q=0")), None);
        assert_eq!(response_format(&accept("application/json; q=0.000")), None);
        assert_eq!(response_format(&accept("*/*;q=0")), None);
    }

    #[test]
    fn quality_decides_between_the_two_json_types() {
        let prefers_json = "application/graphql-response+json;q=0.5, application/json";
        assert_eq!(response_format(&accept(prefers_json)), Some(Format::Json));
        let prefers_graphql = "application/json;q=0.5, application/graphql-response+json";
        assert_eq!(
            response_format(&accept(prefers_graphql)),
            Some(Format::GraphqlResponse)
        );
        assert_eq!(
            response_format(&accept("application/*")),
            Some(Format::Json)
        );
    }

    #[test]
    fn browsers_get_the_page() {
        let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
        assert!(wants_html(&accept(browser)));
        assert!(!wants_html(&accept("application/json, text/html;q=0.1")));
        assert!(!wants_html(&accept("*/*")));
    }

    #[test]
    fn content_type_parameters_are_ignored() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        assert!(is_json_body(&headers));
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        assert!(!is_json_body(&headers));
    }
}
