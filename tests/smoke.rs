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
