//! An outsider's attacks on the day's changes (outgoing webhooks, the maintained counter,
//! SQLite's metadata entries, the count charge), each kept as a test of what it found.

mod common;
#[allow(dead_code)]
#[path = "webhooks_out/receiver.rs"]
mod receiver;
#[allow(dead_code)]
#[path = "webhooks_out/support.rs"]
mod support;

use std::{
    io::Write,
    sync::{Arc, Mutex},
    time::Duration,
};

use common::TestApp;
use serde_json::{Value, json};
use support::{PATCH, create, instance};

/// Log lines written on this thread, kept in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("lock")).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// SECURITY.md promises that only an endpoint's origin is logged, since its path or query
/// may hold a token. A failed delivery's error (reqwest's, which names the whole URL) must
/// not carry them either. Current-thread runtime: the workers log on this thread, where the
/// capture is installed.
#[tokio::test(flavor = "current_thread")]
async fn a_failed_delivery_never_logs_the_urls_path_or_query() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let app = TestApp::start().await;
    // A port nobody listens on: every attempt is a connection error.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let url = format!("http://127.0.0.1:{port}/hook-path-secret?token=query-secret");
    let (hooked, hooks, _) = instance(&app, &url).await;
    create(&hooked, 1).await;
    let mut logged = String::new();
    for _ in 0..500 {
        logged = captured.text();
        if logged.contains("webhook not delivered") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    hooks.stop().await;
    assert!(logged.contains("webhook not delivered"), "{logged}");
    assert!(logged.contains(&format!("127.0.0.1:{port}")), "{logged}");
    assert!(!logged.contains("hook-path-secret"), "{logged}");
    assert!(!logged.contains("query-secret"), "{logged}");
}

const BY_METADATA: &str = "query($m: Metadata) { contacts(first: 100, filter: { metadata: $m }) \
    { totalCount nodes { id } } contactStats(filter: { metadata: $m }) { total } }";

/// The ids a metadata filter lists, with its two counts checked against the list.
async fn matching(app: &TestApp, metadata: Value) -> Vec<String> {
    let data = app.data(BY_METADATA, json!({ "m": metadata })).await;
    let ids: Vec<String> = (data["contacts"]["nodes"].as_array().expect("nodes").iter())
        .map(|node| node["id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(
        data["contacts"]["totalCount"],
        ids.len(),
        "{metadata}: {data}"
    );
    assert_eq!(
        data["contactStats"]["total"],
        ids.len(),
        "{metadata}: {data}"
    );
    ids
}

/// Keys and values that JSON escapes or that look like paths, and canonically equivalent
/// but different strings: each pair finds exactly its contact, on both backends, after a
/// create, a patch and an unset.
#[tokio::test]
async fn odd_metadata_pairs_filter_alike_on_both_backends() {
    let app = TestApp::start().await;
    let pairs: [(&str, &str); 12] = [
        ("quote\"key", "v\"1"),
        ("back\\slash", "c:\\dir\\"),
        ("a.b", "dotted"),
        ("$.path[0]", "json path"),
        ("'single'", "it's"),
        (" spaced ", " padded "),
        ("ünï", "日本語"),
        ("emoji🙂", "🙂"),
        ("empty", ""),
        ("newline", "line\nbreak\ttab"),
        ("nfc", "\u{e9}"),
        ("sep", "\u{2028}\u{2029}/\\u0041"),
    ];
    let metadata: serde_json::Map<String, Value> = (pairs.iter())
        .map(|(key, value)| ((*key).to_owned(), json!(value)))
        .collect();
    let odd = app
        .create(json!({ "phoneNumber": "+56911112222", "metadata": metadata }))
        .await["id"]
        .clone();
    let plain = app
        .create(json!({ "phoneNumber": "+56911113333", "metadata": { "nfc": "e\u{301}" } }))
        .await["id"]
        .clone();
    let odd = odd.as_str().expect("id").to_owned();
    for (key, value) in pairs {
        let found = matching(&app, json!({ key: value })).await;
        assert_eq!(found, [odd.clone()], "{key:?} = {value:?}");
    }
    // Canonically equivalent, different code points: a different value.
    let decomposed = matching(&app, json!({ "nfc": "e\u{301}" })).await;
    assert_eq!(decomposed, [plain.as_str().expect("id").to_owned()]);
    let all: Value = Value::Object(metadata.clone());
    assert_eq!(matching(&app, all).await, [odd.clone()]);

    // Patched: the old value is gone, the new one found; unset: nothing found.
    let patch = "mutation($id: ID!, $set: Metadata, $unset: [String!]) { \
        patchContactMetadata(id: $id, set: $set, unset: $unset) { contact { id } } }";
    app.data(PATCH, json!({ "id": odd, "set": { "quote\"key": "v\"2" } }))
        .await;
    assert!(
        matching(&app, json!({ "quote\"key": "v\"1" }))
            .await
            .is_empty()
    );
    assert_eq!(
        matching(&app, json!({ "quote\"key": "v\"2" })).await,
        [odd.clone()]
    );
    app.data(
        patch,
        json!({ "id": odd, "unset": ["back\\slash", "empty"] }),
    )
    .await;
    assert!(
        matching(&app, json!({ "back\\slash": "c:\\dir\\" }))
            .await
            .is_empty()
    );
    assert!(matching(&app, json!({ "empty": "" })).await.is_empty());
    assert_eq!(matching(&app, json!({ "a.b": "dotted" })).await, [odd]);
}
