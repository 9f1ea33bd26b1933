//! Reading the change feed (`contactChanges`) page by page, with a query of the test's own
//! (`query($after: String)`, selecting `nodes` and `pageInfo { endCursor }`).

use std::{sync::Arc, time::Duration};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::{Value, json};

use super::TestApp;

/// One page after `cursor`: its nodes and the cursor after them.
pub async fn page(app: &TestApp, query: &str, cursor: &Value) -> (Vec<Value>, Value) {
    let data = app.data(query, json!({ "after": cursor })).await;
    let nodes = data["contactChanges"]["nodes"].as_array().expect("nodes");
    (
        nodes.clone(),
        data["contactChanges"]["pageInfo"]["endCursor"].clone(),
    )
}

/// The whole feed after `cursor`, as it is now.
pub async fn read_all(app: &TestApp, query: &str, mut cursor: Value) -> Vec<Value> {
    let mut all = Vec::new();
    loop {
        let (nodes, next) = page(app, query, &cursor).await;
        if nodes.is_empty() {
            return all;
        }
        all.extend(nodes);
        cursor = next;
    }
}

/// Follows the feed from `cursor` until `finished` fires and a page comes back empty.
pub async fn follow(
    app: Arc<TestApp>,
    query: String,
    mut cursor: Value,
    finished: Arc<tokio::sync::Notify>,
) -> Vec<Value> {
    let mut seen = Vec::new();
    let notified = finished.notified();
    tokio::pin!(notified);
    let mut writers_done = false;
    loop {
        let (nodes, next) = page(&app, &query, &cursor).await;
        cursor = next;
        let empty = nodes.is_empty();
        seen.extend(nodes);
        match (empty, writers_done) {
            (true, true) => return seen,
            // Polling; the writers' end is the only thing worth waiting for.
            (true, false) => tokio::select! {
                () = &mut notified => writers_done = true,
                () = tokio::time::sleep(Duration::from_millis(5)) => {}
            },
            _ => {}
        }
    }
}

/// The log position a change cursor (`chg:<position>`, base64url) stands for.
pub fn position(cursor: &Value) -> i64 {
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor.as_str().expect("cursor"))
        .expect("base64");
    let text = String::from_utf8(bytes).expect("utf-8");
    text.trim_start_matches("chg:").parse().expect("position")
}
