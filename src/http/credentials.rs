//! Who is calling: credentials from `Authorization: Bearer …` or `X-API-Key`, or, over
//! WebSocket, from the `connection_init` payload. Transport only; the checks are in `auth`.

use axum::{
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::Response,
};
use serde_json::Value;

use super::{
    AppState,
    negotiate::{Format, error_response},
};
use crate::auth::{AuthError, Principal, Scope};

/// Everyone, when the server has no credentials configured (loopback only by default).
fn anonymous() -> Principal {
    Principal {
        id: "anonymous".to_owned(),
        scope: Scope::Write,
    }
}

/// The token in `Authorization: Bearer …` or `X-API-Key`.
fn token_from_headers(headers: &HeaderMap) -> Option<&str> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        });
    bearer
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
        .map(str::trim)
}

/// The token in a `connection_init` payload: `{"Authorization": "Bearer …"}`, `{"apiKey": …}`,
/// or either inside `{"headers": {…}}` (what GraphiQL's headers editor sends).
fn token_from_payload(payload: &Value) -> Option<String> {
    let find = |object: &Value| -> Option<String> {
        let object = object.as_object()?;
        for (name, value) in object {
            let value = value.as_str()?;
            match name.to_ascii_lowercase().as_str() {
                "authorization" => {
                    return value.strip_prefix("Bearer ").map(|t| t.trim().to_owned());
                }
                "apikey" | "x-api-key" => return Some(value.trim().to_owned()),
                _ => {}
            }
        }
        None
    };
    find(payload).or_else(|| payload.get("headers").and_then(find))
}

fn check(state: &AppState, token: Option<&str>) -> Result<Principal, AuthError> {
    if !state.auth.is_enabled() {
        return Ok(anonymous());
    }
    let token = token.ok_or(AuthError::Missing)?;
    state.auth.authenticate(token, state.service.now())
}

/// The caller of an HTTP request.
pub fn from_headers(state: &AppState, headers: &HeaderMap) -> Result<Principal, AuthError> {
    check(state, token_from_headers(headers))
}

/// The 401 for refused credentials.
pub fn unauthenticated(err: AuthError, format: Format) -> Response {
    let message = match err {
        AuthError::Missing => "credentials required: Authorization: Bearer <token> or X-API-Key",
        AuthError::Invalid => "invalid credentials",
    };
    let mut response = error_response(StatusCode::UNAUTHORIZED, format, "UNAUTHENTICATED", message);
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
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

/// 403 for a caller whose scope does not allow the operation.
pub fn forbidden(format: Format) -> Response {
    error_response(
        StatusCode::FORBIDDEN,
        format,
        "FORBIDDEN",
        "this credential may only read; mutations need write",
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
}
