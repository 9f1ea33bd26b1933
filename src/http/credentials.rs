//! Who is calling: credentials from `Authorization: Bearer …` or `X-API-Key`, or, over
//! WebSocket, from the `connection_init` payload. Transport only; the checks are in `auth`,
//! what a caller may do is decided in the schema (`graphql::policy`).

use std::net::IpAddr;

use axum::{
    http::{HeaderMap, HeaderValue, header},
    response::Response,
};
use serde_json::Value;

use super::{
    AppState,
    negotiate::{Format, error_response},
};
use crate::{
    auth::{AuthError, Principal},
    error::ErrorCode,
    rate_limit::address_key,
};

/// The token of an `Authorization` value: the scheme `Bearer` in any case (RFC 9110 makes
/// schemes case-insensitive), then the token.
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|token| !token.is_empty())
}

/// The token in `Authorization: Bearer …` or `X-API-Key`.
fn token_from_headers(headers: &HeaderMap) -> Option<&str> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token);
    bearer
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
        .map(str::trim)
}

/// The token in a `connection_init` payload: `{"Authorization": "Bearer …"}`, `{"apiKey": …}`,
/// or either inside `{"headers": {…}}` (what GraphiQL's headers editor sends). Every entry is
/// looked at, whatever else the payload holds.
fn token_from_payload(payload: &Value) -> Option<String> {
    let find = |object: &Value| -> Option<String> {
        object.as_object()?.iter().find_map(|(name, value)| {
            let value = value.as_str()?;
            match name.to_ascii_lowercase().as_str() {
                "authorization" => bearer_token(value).map(str::to_owned),
                "apikey" | "x-api-key" => Some(value.trim().to_owned()),
                _ => None,
            }
        })
    };
    find(payload).or_else(|| payload.get("headers").and_then(find))
}

fn check(state: &AppState, token: Option<&str>) -> Result<Principal, AuthError> {
    if !state.auth.is_enabled() {
        return Ok(Principal::anonymous());
    }
    let token = token.ok_or(AuthError::Missing)?;
    state.auth.authenticate(token, state.service.now())
}

/// The caller of an HTTP request.
pub fn from_headers(state: &AppState, headers: &HeaderMap) -> Result<Principal, AuthError> {
    check(state, token_from_headers(headers))
}

/// The answer to refused credentials: 401, or 429 once the client's address has had too
/// many refusals (so keys and signatures cannot be guessed at full speed).
pub fn refused(state: &AppState, address: IpAddr, err: AuthError, format: Format) -> Response {
    if let Err(wait) = state.address_limit.check(&address_key(address)) {
        return too_many(wait, format);
    }
    let message = match err {
        AuthError::Missing => "credentials required: Authorization: Bearer <token> or X-API-Key",
        AuthError::Invalid => "invalid credentials",
    };
    let code = ErrorCode::Unauthenticated;
    let mut response = error_response(code, format, message);
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// 429 `RATE_LIMITED` with `Retry-After`.
pub fn too_many(wait: std::time::Duration, format: Format) -> Response {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let code = ErrorCode::RateLimited;
    let message = "too many requests; retry later";
    let mut response = error_response(code, format, message);
    if let Ok(value) = HeaderValue::from_str(&seconds.max(1).to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// The caller of a WebSocket connection: the `connection_init` payload, else the upgrade
/// request's headers.
pub fn from_connection_init(
    state: &AppState,
    payload: &Value,
    headers: &HeaderMap,
) -> Result<Principal, AuthError> {
    let token = token_from_payload(payload);
    check(
        state,
        token.as_deref().or_else(|| token_from_headers(headers)),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn tokens_come_from_either_header() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert_eq!(token_from_headers(&headers), Some("abc"));
        let mut headers = HeaderMap::new();
        headers.insert("x-api-key", HeaderValue::from_static("xyz"));
        assert_eq!(token_from_headers(&headers), Some("xyz"));
        assert_eq!(token_from_headers(&HeaderMap::new()), None);
    }

    #[test]
    fn tokens_come_from_connection_init_payloads() {
        assert_eq!(
            token_from_payload(&json!({ "Authorization": "Bearer t1" })).as_deref(),
            Some("t1")
        );
        assert_eq!(
            token_from_payload(&json!({ "apiKey": "t2" })).as_deref(),
            Some("t2")
        );
        assert_eq!(
            token_from_payload(&json!({ "headers": { "X-API-Key": "t3" } })).as_deref(),
            Some("t3")
        );
        assert_eq!(token_from_payload(&json!({})), None);
    }

    #[test]
    fn connection_init_entries_are_all_read_and_the_scheme_is_case_insensitive() {
        let payload =
            json!({ "client": { "name": "x" }, "retries": 3, "authorization": "BEARER t4" });
        assert_eq!(token_from_payload(&payload).as_deref(), Some("t4"));
        let nested = json!({ "headers": { "x-trace": 1, "Authorization": "bearer t5" } });
        assert_eq!(token_from_payload(&nested).as_deref(), Some("t5"));
        assert_eq!(
            token_from_payload(&json!({ "Authorization": "Basic t6" })),
            None
        );
    }
}
