//! Content negotiation for GraphQL over HTTP, and error bodies for transport-level failures.

use axum::{
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::json;

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

/// Media types in `Accept` with q > 0, lower-cased, without parameters.
fn accepted(headers: &HeaderMap) -> Vec<String> {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Vec::new();
    };
    accept
        .split(',')
        .filter_map(|item| {
            let mut parts = item.split(';').map(str::trim);
            let media = parts.next()?.to_ascii_lowercase();
            let refused = parts.any(|p| p.replace(' ', "").eq_ignore_ascii_case("q=0"));
            (!media.is_empty() && !refused).then_some(media)
        })
        .collect()
}

/// Picks the response type from `Accept`; `None` means 406. No `Accept` means legacy JSON.
pub fn response_format(headers: &HeaderMap) -> Option<Format> {
    let media = accepted(headers);
    if headers.get(header::ACCEPT).is_none() {
        return Some(Format::Json);
    }
    if media
        .iter()
        .any(|m| m == "application/graphql-response+json")
    {
        Some(Format::GraphqlResponse)
    } else if media
        .iter()
        .any(|m| m == "application/json" || m == "application/*" || m == "*/*")
    {
        Some(Format::Json)
    } else {
        None
    }
}

/// True when a browser asks for a page.
pub fn wants_html(headers: &HeaderMap) -> bool {
    accepted(headers).iter().any(|m| m == "text/html")
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
pub fn error_response(status: StatusCode, format: Format, code: &str, message: &str) -> Response {
    let body = json!({ "errors": [{ "message": message, "extensions": { "code": code } }] });
    let mut response = (status, body.to_string()).into_response();
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
