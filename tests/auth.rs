//! Every credential path: none, malformed, wrong, expired, not yet valid, wrong or missing
//! issuer and audience, the clock-skew leeway, read and write scopes, over HTTP and WebSocket.

mod common;

use chrono::TimeDelta;
use common::{
    TestApp, at, code,
    credentials::{self, READ_KEY, SECRET, WRITE_KEY},
};
use futures_util::{SinkExt, StreamExt};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use reqwest::{StatusCode, header};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const QUERY: &str = "{ contactStats { total } }";
const MUTATION: &str =
    "mutation { createContact(input: { phoneNumber: \"+56912345678\" }) { contact { id } } }";

async fn secured() -> TestApp {
    TestApp::start_with_auth(credentials::authenticator()).await
}

/// A JWT valid around the test clock's start, with `overrides` applied (`null` removes a claim).
fn jwt(overrides: Value) -> String {
    let t0 = at(common::T0).timestamp();
    let mut claims = json!({
        "sub": "frontend-user", "iss": "https://issuer.example", "aud": "contacts-api",
        "iat": t0, "exp": t0 + 3600, "scope": "read write",
    });
    for (k, v) in overrides.as_object().unwrap() {
        if v.is_null() {
            claims.as_object_mut().unwrap().remove(k);
        } else {
            claims[k] = v.clone();
        }
    }
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

async fn call(app: &TestApp, query: &str, header: Option<(&str, String)>) -> (StatusCode, Value) {
    let mut request = app
        .client
        .post(app.url("/graphql"))
        .json(&json!({ "query": query }));
    if let Some((name, value)) = header {
        request = request.header(name, value);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

fn bearer(token: &str) -> Option<(&'static str, String)> {
    Some(("authorization", format!("Bearer {token}")))
}

async fn total(app: &TestApp) -> Value {
    call(app, QUERY, bearer(READ_KEY)).await.1["data"]["contactStats"]["total"].clone()
}

#[tokio::test]
async fn no_credentials_is_401_but_graphiql_and_health_stay_open() {
    let app = secured().await;
    let response = app
        .client
        .post(app.url("/graphql"))
        .json(&json!({ "query": QUERY }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
    let body: Value = response.json().await.unwrap();
    assert_eq!(code(&body["errors"][0]), "UNAUTHENTICATED");
    let page = app
        .client
        .get(app.url("/graphql"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(
        app.client
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn malformed_and_wrong_credentials_are_401() {
    let app = secured().await;
    let cases = [
        Some(("authorization", "Basic dXNlcjpwYXNz".to_owned())),
        Some(("authorization", "Bearer".to_owned())),
        bearer("not-a-known-key"),
        bearer("a.b.c"),
        Some(("x-api-key", "wrong".to_owned())),
    ];
    for header in cases {
        let (status, body) = call(&app, QUERY, header.clone()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{header:?}");
        assert_eq!(code(&body["errors"][0]), "UNAUTHENTICATED");
    }
}

#[tokio::test]
async fn expired_not_yet_valid_and_foreign_jwts_are_401() {
    let app = secured().await;
    let t0 = at(common::T0).timestamp();
    let cases = [
        json!({ "exp": t0 - 60 }),
        json!({ "nbf": t0 + 600 }),
        json!({ "aud": "another-api" }),
        json!({ "iss": "https://evil.example" }),
        json!({ "scope": "admin" }),
    ];
    for overrides in cases {
        let (status, _) = call(&app, QUERY, bearer(&jwt(overrides.clone()))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{overrides}");
    }
    let (status, _) = call(&app, QUERY, bearer(&jwt(json!({})))).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn jwt_expiry_follows_the_service_clock() {
    let app = secured().await;
    let token = jwt(json!({}));
    assert_eq!(call(&app, QUERY, bearer(&token)).await.0, StatusCode::OK);
    app.clock.advance(TimeDelta::hours(2));
    assert_eq!(
        call(&app, QUERY, bearer(&token)).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn configured_issuer_and_audience_must_be_in_the_token() {
    let app = secured().await;
    let refused = [
        ("no iss", jwt(json!({ "iss": null }))),
        ("no aud", jwt(json!({ "aud": null }))),
        ("neither", jwt(json!({ "iss": null, "aud": null }))),
        (
            "both wrong",
            jwt(json!({ "iss": "https://evil.example", "aud": "another-api" })),
        ),
    ];
    for (case, token) in refused {
        let (status, body) = call(&app, MUTATION, bearer(&token)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{case}: {body}");
        assert_eq!(code(&body["errors"][0]), "UNAUTHENTICATED", "{case}");
    }
    assert_eq!(total(&app).await, 0, "no refused token may write");
    let (status, body) = call(&app, MUTATION, bearer(&jwt(json!({})))).await;
    assert_eq!(status, StatusCode::OK, "both right: {body}");
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(total(&app).await, 1);
}

#[tokio::test]
async fn jwt_times_allow_thirty_seconds_of_clock_skew() {
    let app = secured().await;
    let t0 = at(common::T0).timestamp();
    // Signed by a clock 30 s ahead of ours: valid from our T0 - 30 s is accepted.
    let early = jwt(json!({ "nbf": t0 + 30 }));
    assert_eq!(call(&app, QUERY, bearer(&early)).await.0, StatusCode::OK);
    let too_early = jwt(json!({ "nbf": t0 + 31 }));
    assert_eq!(
        call(&app, QUERY, bearer(&too_early)).await.0,
        StatusCode::UNAUTHORIZED
    );
    let token = jwt(json!({ "exp": t0 + 60 }));
    app.clock.advance(TimeDelta::seconds(60 + 29));
    assert_eq!(
        call(&app, QUERY, bearer(&token)).await.0,
        StatusCode::OK,
        "exp + 29 s"
    );
    app.clock.advance(TimeDelta::seconds(1));
    assert_eq!(
        call(&app, QUERY, bearer(&token)).await.0,
        StatusCode::UNAUTHORIZED,
        "exp + 30 s"
    );
}

#[tokio::test]
async fn read_key_queries_but_may_not_mutate() {
    let app = secured().await;
    assert_eq!(call(&app, QUERY, bearer(READ_KEY)).await.0, StatusCode::OK);
    let (status, body) = call(&app, MUTATION, bearer(READ_KEY)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(code(&body["errors"][0]), "FORBIDDEN");
    assert_eq!(total(&app).await, 0, "the forbidden mutation must not run");
    let (status, _) = call(&app, MUTATION, bearer(&jwt(json!({ "scope": "read" })))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn write_key_and_write_jwt_mutate() {
    let app = secured().await;
    let (status, body) = call(&app, MUTATION, Some(("x-api-key", WRITE_KEY.to_owned()))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.get("errors").is_none(), "{body}");
    let other = MUTATION.replace("+56912345678", "+56987654321");
    let (status, body) = call(
        &app,
        &other,
        bearer(&jwt(json!({ "scope": ["read", "write"] }))),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(total(&app).await, 2);
}

async fn ws_init(app: &TestApp, payload: Value) -> Value {
    let mut socket = common::websocket(app, "graphql-transport-ws").await;
    let init = json!({ "type": "connection_init", "payload": payload }).to_string();
    socket.send(Message::Text(init.into())).await.unwrap();
    let reply = tokio::time::timeout(std::time::Duration::from_secs(10), socket.next())
        .await
        .expect("a reply");
    match reply {
        Some(Ok(Message::Text(text))) => serde_json::from_str(&text).unwrap(),
        Some(Ok(Message::Close(Some(frame)))) => {
            json!({ "closed": u16::from(frame.code), "reason": frame.reason.to_string() })
        }
        other => json!({ "other": format!("{other:?}") }),
    }
}

#[tokio::test]
async fn websocket_needs_credentials_in_connection_init() {
    let app = secured().await;
    // async-graphql closes a refused connection_init with 1002 and the error's message.
    for payload in [json!({}), json!({ "Authorization": "Bearer nope" })] {
        let refused = ws_init(&app, payload).await;
        assert_eq!(refused["closed"], 1002, "{refused}");
        assert_eq!(refused["reason"], "authentication required", "{refused}");
    }
    let accepted = ws_init(
        &app,
        json!({ "Authorization": format!("Bearer {READ_KEY}") }),
    )
    .await;
    assert_eq!(accepted["type"], "connection_ack");
    let via_headers = ws_init(&app, json!({ "headers": { "X-API-Key": WRITE_KEY } })).await;
    assert_eq!(via_headers["type"], "connection_ack");
}

#[tokio::test]
async fn subscription_runs_with_a_read_credential() {
    let app = secured().await;
    call(&app, MUTATION, bearer(WRITE_KEY)).await;
    let id = call(&app, "{ contacts { nodes { id } } }", bearer(READ_KEY))
        .await
        .1["data"]["contacts"]["nodes"][0]["id"]
        .clone();
    let socket = common::websocket(&app, "graphql-transport-ws").await;
    let mut window = graphql_ws_client::Client::build(socket)
        .payload(json!({ "Authorization": format!("Bearer {READ_KEY}") }))
        .unwrap()
        .subscribe(common::Operation::new(
            "subscription($id: ID!) { whatsappWindow(contactId: $id) { open } }",
            json!({ "id": id }),
        ))
        .await
        .expect("subscribe");
    assert_eq!(
        common::next_event(&mut window).await["data"]["whatsappWindow"]["open"],
        false
    );
}
