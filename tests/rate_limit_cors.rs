//! Rate limiting per caller, and CORS only for allow-listed origins.

mod common;

use common::{TestApp, code};
use contacts_server::auth::{Authenticator, JwtSettings};
use reqwest::{StatusCode, header};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

async fn post(app: &TestApp, key: Option<&str>) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url("/graphql"))
        .json(&json!({ "query": "{ contactStats { total } }" }));
    if let Some(key) = key {
        request = request.header("x-api-key", key);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn anonymous_callers_are_limited_per_address() {
    let app = TestApp::start_configured(|state| state.with_rate_limit(60, 3)).await;
    for _ in 0..3 {
        assert_eq!(post(&app, None).await.status(), StatusCode::OK);
    }
    let limited = post(&app, None).await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = limited.headers()[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let body: Value = limited.json().await.unwrap();
    assert_eq!(code(&body["errors"][0]), "RATE_LIMITED");
}

#[tokio::test]
async fn each_credential_has_its_own_budget() {
    let entry = |key: &str| format!("{}:read", hex::encode(Sha256::digest(key.as_bytes())));
    let auth = Authenticator::new(
        &[entry("key-one"), entry("key-two")],
        JwtSettings::default(),
    )
    .unwrap();
    let app =
        TestApp::start_configured(move |state| state.with_auth(auth).with_rate_limit(60, 2)).await;
    for _ in 0..2 {
        assert_eq!(post(&app, Some("key-one")).await.status(), StatusCode::OK);
    }
    assert_eq!(
        post(&app, Some("key-one")).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(post(&app, Some("key-two")).await.status(), StatusCode::OK);
}

async fn preflight(app: &TestApp, origin: &str) -> reqwest::Response {
    app.client
        .request(reqwest::Method::OPTIONS, app.url("/graphql"))
        .header(header::ORIGIN, origin)
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
        .header(
            header::ACCESS_CONTROL_REQUEST_HEADERS,
            "content-type,authorization",
        )
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn cors_allows_only_listed_origins() {
    let app = TestApp::start_configured(|state| {
        state
            .with_cors(&["https://app.example.com".to_owned()])
            .unwrap()
    })
    .await;
    let allowed = preflight(&app, "https://app.example.com").await;
    assert_eq!(
        allowed.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "https://app.example.com"
    );
    let other = preflight(&app, "https://evil.example").await;
    assert!(
        !other
            .headers()
            .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN)
    );
}

#[tokio::test]
async fn no_cors_by_default() {
    let app = TestApp::start().await;
    let response = preflight(&app, "https://app.example.com").await;
    assert!(
        !response
            .headers()
            .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN)
    );
    let simple = app
        .client
        .post(app.url("/graphql"))
        .header(header::ORIGIN, "https://app.example.com")
        .json(&json!({ "query": "{ contactStats { total } }" }))
        .send()
        .await
        .unwrap();
    assert!(
        !simple
            .headers()
            .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN)
    );
}
