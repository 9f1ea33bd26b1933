//! `/webhooks/whatsapp` refusing what is not Meta's: forged, missing and mismatched
//! signatures (401, nothing recorded), the handshake with a wrong token (403), the route
//! without an app secret (404), payloads not of Meta's shape (400) and huge bodies (413).

mod common;

use std::time::Duration;

use common::{
    TestApp,
    webhook::{
        SECRET, VERIFY_TOKEN, app, contact_count, deliver, fixture, metric, metrics, post_raw,
    },
};
use contacts_server::http::whatsapp::signature;

#[tokio::test]
async fn forged_missing_and_mismatched_signatures_are_refused() {
    let app = app().await;
    let body = fixture("text_message.json");
    let forged = signature::sign(b"not-the-app-secret", body.as_bytes());
    assert_eq!(post_raw(&app, &body, Some(forged)).await, 401);
    assert_eq!(post_raw(&app, &body, None).await, 401);
    let other = fixture("call_connect.json");
    let for_other = signature::sign(SECRET.as_bytes(), other.as_bytes());
    assert_eq!(post_raw(&app, &body, Some(for_other)).await, 401);
    // One byte more than what was signed.
    let signed = signature::sign(SECRET.as_bytes(), body.as_bytes());
    assert_eq!(post_raw(&app, &format!("{body} "), Some(signed)).await, 401);
    assert_eq!(contact_count(&app).await, 0);
    let text = metrics(&app).await;
    assert_eq!(
        metric(&text, "whatsapp_webhook_signature_failures_total"),
        4,
        "{text}"
    );
}

#[tokio::test]
async fn handshake_answers_the_challenge_only_for_the_verify_token() {
    let app = app().await;
    let get = |token: &str, mode: &str| {
        let url = app.url(&format!(
            "/webhooks/whatsapp?hub.mode={mode}&hub.verify_token={token}&hub.challenge=1158201444"
        ));
        app.client.get(url).send()
    };
    let ok = get(VERIFY_TOKEN, "subscribe").await.expect("request");
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.expect("body"), "1158201444");
    assert_eq!(
        get("wrong-token", "subscribe")
            .await
            .expect("request")
            .status(),
        403
    );
    assert_eq!(
        get(VERIFY_TOKEN, "unsubscribe")
            .await
            .expect("request")
            .status(),
        403
    );
}

#[tokio::test]
async fn without_an_app_secret_the_route_does_not_exist() {
    let app = TestApp::start().await;
    let body = fixture("text_message.json");
    let signed = signature::sign(SECRET.as_bytes(), body.as_bytes());
    assert_eq!(post_raw(&app, &body, Some(signed)).await, 404);
    assert_eq!(contact_count(&app).await, 0);
}

#[tokio::test]
async fn payload_that_is_not_metas_is_bad_request() {
    let app = app().await;
    assert_eq!(deliver(&app, "not json").await, 400);
    assert_eq!(deliver(&app, r#"{"object":"page","entry":[]}"#).await, 400);
    let wrong = r#"{"object":"whatsapp_business_account","entry":[{"changes":[
        {"field":"messages","value":{"messages":"not a list"}}]}]}"#;
    assert_eq!(deliver(&app, wrong).await, 400);
}

#[tokio::test]
async fn oversized_body_is_refused_before_it_is_read_whole() {
    let app = app().await;
    let huge = format!("{{\"pad\":\"{}\"}}", "x".repeat(4 * 1024 * 1024));
    let status = tokio::time::timeout(Duration::from_secs(30), deliver(&app, &huge))
        .await
        .expect("answered");
    assert_eq!(status, 413);
    // Under the webhook's own limit (above the GraphQL route's 1 MiB), a delivery is read.
    let padding = "x".repeat(2 * 1024 * 1024);
    let large = fixture("text_message.json").replace(
        "\"field\": \"messages\"",
        &format!("\"pad\": \"{padding}\", \"field\": \"messages\""),
    );
    assert_eq!(deliver(&app, &large).await, 200);
    assert_eq!(contact_count(&app).await, 1);
}
