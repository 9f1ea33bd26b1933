//! Who may reach the server: without credentials only requests naming it (`Host`: a guard
//! against DNS rebinding), no open server published behind a reverse proxy, and the client
//! address forwarded by a trusted proxy.

mod common;

use std::process::Command;

use common::{
    TestApp, code,
    process::{BIN, command, wait_until_listening},
};
use contacts_server::auth::{Authenticator, JwtSettings};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest, http::HeaderValue};

const KEY: &str = "host-test-key-0123456789abcdef0123456789";
const QUERY: &str = "{ contactStats { total } }";

async fn post_as(app: &TestApp, host: &str, key: Option<&str>) -> (StatusCode, Value) {
    let mut request = app
        .client
        .post(app.url("/graphql"))
        .header("host", host)
        .json(&json!({ "query": QUERY }));
    if let Some(key) = key {
        request = request.header("x-api-key", key);
    }
    let response = request.send().await.expect("request");
    let status = response.status();
    (status, response.json().await.expect("JSON body"))
}

fn port(app: &TestApp) -> &str {
    app.base.rsplit(':').next().expect("port")
}

#[tokio::test]
async fn without_credentials_a_foreign_host_is_refused() {
    let app = TestApp::start().await;
    let (status, body) = post_as(&app, "evil.example", None).await;
    assert_eq!(status, StatusCode::MISDIRECTED_REQUEST, "{body}");
    assert_eq!(code(&body["errors"][0]), "MISDIRECTED_REQUEST");
    let (status, _) = post_as(&app, &format!("evil.example:{}", port(&app)), None).await;
    assert_eq!(status, StatusCode::MISDIRECTED_REQUEST);

    // The WebSocket upgrade too.
    let mut upgrade = app.ws_url().into_client_request().expect("request");
    upgrade
        .headers_mut()
        .insert("host", HeaderValue::from_static("evil.example"));
    match tokio_tungstenite::connect_async(upgrade).await {
        Err(tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), StatusCode::MISDIRECTED_REQUEST.as_u16());
        }
        other => panic!("upgrade with a foreign Host: {other:?}"),
    }

    for host in [format!("localhost:{}", port(&app)), "127.0.0.1".into()] {
        let (status, body) = post_as(&app, &host, None).await;
        assert_eq!(status, StatusCode::OK, "{host}: {body}");
        assert_eq!(body["data"]["contactStats"]["total"], 0);
    }
}

#[tokio::test]
async fn allowed_hosts_are_served_without_credentials() {
    let names = ["api.internal".to_owned()];
    let app = TestApp::start_configured(|state| state.with_allowed_hosts(&names)).await;
    let (status, body) = post_as(&app, "API.internal:8443", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = post_as(&app, "other.internal", None).await;
    assert_eq!(status, StatusCode::MISDIRECTED_REQUEST);
}

#[tokio::test]
async fn with_credentials_any_host_is_served() {
    let hashed = format!("{}:read", hex::encode(Sha256::digest(KEY.as_bytes())));
    let auth = Authenticator::new(&[hashed], JwtSettings::default()).expect("credentials");
    let app = TestApp::start_with_auth(auth).await;
    let (status, body) = post_as(&app, "evil.example", Some(KEY)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["contactStats"]["total"], 0);
    // And the credentials are what stops a foreign page.
    let (status, _) = post_as(&app, "evil.example", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[test]
fn refuses_to_serve_behind_a_proxy_without_credentials() {
    for (name, value) in [
        ("TRUSTED_PROXIES", "10.0.0.1"),
        ("ALLOWED_HOSTS", "api.example.com"),
    ] {
        let output = Command::new(BIN)
            .env_remove("API_KEYS")
            .env_remove("JWT_HS256_SECRET")
            .env_remove("JWT_PUBLIC_KEY_FILE")
            .env_remove("ALLOW_UNAUTHENTICATED")
            .env_remove("TRUSTED_PROXIES")
            .env_remove("ALLOWED_HOSTS")
            .env("HOST", "127.0.0.1")
            .env(name, value)
            .env("DATABASE_URL", "sqlite::memory:")
            .output()
            .expect("run");
        assert!(!output.status.success(), "{name} started");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("refusing to serve behind a reverse proxy"),
            "{stderr}"
        );
    }
}

#[tokio::test]
async fn a_trusted_proxy_forwards_the_client_address() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = common::fresh_database_url(&dir).await;
    let mut child = command(Some(&url))
        .env("TRUSTED_PROXIES", "127.0.0.1")
        .env("ALLOW_UNAUTHENTICATED", "true")
        .spawn()
        .expect("start server");
    let started = wait_until_listening(&mut child);
    assert!(
        started
            .log
            .iter()
            .any(|line| line.contains("without credentials")),
        "no warning at start-up: {:?}",
        started.log
    );
    let client = reqwest::Client::new();
    for (id, forwarded) in [
        ("forwarded", Some("198.51.100.9, 203.0.113.7")),
        ("direct", None),
    ] {
        let mut request = client
            .get(format!("{}/healthz", started.base))
            .header("x-request-id", id);
        if let Some(forwarded) = forwarded {
            request = request.header("x-forwarded-for", forwarded);
        }
        assert_eq!(request.send().await.expect("healthz").status(), 200);
    }
    let stopped = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(stopped.success());
    child.wait().expect("reap");

    let finished: Vec<Value> = started
        .later
        .iter()
        .filter_map(|line| serde_json::from_str::<Value>(&line).ok())
        .filter(|entry| entry["fields"]["message"] == "request finished")
        .collect();
    let client_ip = |id: &str| {
        finished
            .iter()
            .flat_map(|entry| entry["spans"].as_array().into_iter().flatten())
            .find(|span| span["request_id"] == id)
            .map(|span| span["client_ip"].clone())
    };
    assert_eq!(client_ip("forwarded"), Some(json!("203.0.113.7")));
    assert_eq!(client_ip("direct"), Some(json!("127.0.0.1")));
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_client_has_its_own_rate_limit() {
    use contacts_server::http::client_ip::TrustedProxies;
    let proxies = TrustedProxies::parse(&["127.0.0.1".to_owned()], "x-forwarded-for").unwrap();
    let app = TestApp::start_configured(move |state| {
        state.with_trusted_proxies(proxies).with_rate_limit(60, 2)
    })
    .await;
    let call = |client: &'static str| {
        let request = app
            .client
            .post(app.url("/graphql"))
            .header("x-forwarded-for", client)
            .json(&json!({ "query": QUERY }));
        async move { request.send().await.expect("request").status() }
    };
    assert_eq!(call("203.0.113.7").await, StatusCode::OK);
    assert_eq!(call("203.0.113.7").await, StatusCode::OK);
    assert_eq!(call("203.0.113.7").await, StatusCode::TOO_MANY_REQUESTS);
    // Another client behind the same proxy has a bucket of its own.
    assert_eq!(call("198.51.100.9").await, StatusCode::OK);
    // An IPv6 client is its /64: another address of it is the same bucket.
    assert_eq!(call("2001:db8:1:2::64").await, StatusCode::OK);
    assert_eq!(call("2001:db8:1:2::65").await, StatusCode::OK);
    assert_eq!(
        call("2001:db8:1:2::66").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(call("2001:db8:1:3::64").await, StatusCode::OK);
}
