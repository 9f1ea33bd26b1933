mod common;

use common::{TestApp, code};
use serde_json::json;

#[tokio::test]
async fn create_then_read_back() {
    let app = TestApp::start().await;
    let contact = app
        .create(json!({ "phoneNumber": "+56 9 1234 5678" }))
        .await;
    assert_eq!(contact["phoneNumber"], "+56912345678");
    let err = app
        .error(
            common::CREATE,
            json!({ "input": { "phoneNumber": "+56912345678" } }),
        )
        .await;
    assert_eq!(code(&err), "CONFLICT");
}

/// Guards the CI matrix: a run asked to use PostgreSQL really does.
#[tokio::test]
async fn runs_on_the_requested_backend() {
    let app = TestApp::start().await;
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let postgres = metrics.contains("role=\"primary\"");
    assert_eq!(postgres, common::on_postgres(), "{}", app.database_url);
}
