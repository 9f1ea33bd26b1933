//! The change feed under load: six writers and an importer (on PostgreSQL, through two
//! instances) while a reader follows `contactChanges`; the reader gets every change exactly
//! once, in commit order. `CHANGE_FEED_LOAD_SECS` lengthens the run (default 2 s).

mod common;

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::{Duration, Instant},
};

use common::{TestApp, feed};
use serde_json::{Value, json};

// Pages of 100: each change's contact metadata is charged per change, so 1,000 of them
// would pass the complexity limit.
const CHANGES: &str = "query($after: String) { contactChanges(after: $after, first: 100) {
    nodes { cursor kind contactId contact { phoneNumber metadata } }
    pageInfo { endCursor } } }";
const PATCH: &str = "mutation($id: ID!, $set: Metadata) { patchContactMetadata(id: $id, set: $set) { contact { id } } }";
const DELETE: &str = "mutation($id: ID!) { deleteContact(id: $id) { deletedContactId } }";
const IMPORT: &str = "mutation($rows: [CreateContactInput!]!) { importContacts(contacts: $rows) { created failed { message } } }";

/// What a writer did: (kind, contact id, the `n` its metadata then held).
type Written = Vec<(&'static str, String, Option<u64>)>;

fn run_for() -> Duration {
    let secs = std::env::var("CHANGE_FEED_LOAD_SECS")
        .ok()
        .and_then(|secs| secs.parse().ok())
        .unwrap_or(2);
    Duration::from_secs(secs)
}

/// Creates, patches (metadata `n` counting up) and sometimes deletes contacts until `until`.
async fn writer(app: Arc<TestApp>, w: usize, until: Instant) -> Written {
    let mut written = Written::new();
    let mut i = 0;
    while Instant::now() < until {
        let phone = format!("+5691{w}{i:06}");
        let id = app.create(json!({ "phoneNumber": phone })).await["id"]
            .as_str()
            .expect("id")
            .to_owned();
        written.push(("CREATED", id.clone(), None));
        for n in 1..=2u64 {
            let set = json!({ "n": n.to_string() });
            app.data(PATCH, json!({ "id": id, "set": set })).await;
            written.push(("UPDATED", id.clone(), Some(n)));
        }
        if i % 3 == 0 {
            app.data(DELETE, json!({ "id": id })).await;
            written.push(("DELETED", id, None));
        }
        i += 1;
    }
    written
}

/// Imports batches of 200 new numbers until `until`; returns the numbers imported.
async fn importer(app: Arc<TestApp>, until: Instant) -> Vec<String> {
    let mut phones = Vec::new();
    let mut batch = 0;
    while Instant::now() < until {
        let rows: Vec<String> = (0..200)
            .map(|i| format!("+5691{}{:06}", 8 + batch % 2, batch / 2 * 200 + i))
            .collect();
        let input: Vec<Value> = rows.iter().map(|p| json!({ "phoneNumber": p })).collect();
        let data = app.data(IMPORT, json!({ "rows": input })).await;
        assert_eq!(data["importContacts"]["created"], 200, "{data}");
        phones.extend(rows);
        batch += 1;
    }
    phones
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_follower_gets_every_change_of_six_writers_and_an_importer_once_in_commit_order() {
    let first = Arc::new(TestApp::start().await);
    // On PostgreSQL half the writers go through a second instance.
    let second = first.other_instance_on_postgres().await;
    let start =
        first.data(CHANGES, json!({})).await["contactChanges"]["pageInfo"]["endCursor"].clone();
    let done = Arc::new(tokio::sync::Notify::new());
    let reader = tokio::spawn(feed::follow(
        first.clone(),
        CHANGES.to_owned(),
        start.clone(),
        done.clone(),
    ));
    let began = Instant::now();
    let until = began + run_for();
    let writers: Vec<_> = (0..6)
        .map(|w| {
            let app = if w % 2 == 0 { &first } else { &second };
            tokio::spawn(writer(app.clone(), w, until))
        })
        .collect();
    let imports = tokio::spawn(importer(second.clone(), until));
    let mut written = Written::new();
    for task in writers {
        written.extend(task.await.expect("writer"));
    }
    let imported = imports.await.expect("importer");
    let elapsed = began.elapsed();
    done.notify_one();
    let seen = reader.await.expect("reader");
    eprintln!(
        "{} writer changes and {} imported rows in {elapsed:?}; the follower saw {}",
        written.len(),
        imported.len(),
        seen.len()
    );

    // Exactly once, in position order, and the same sequence as a read of the log afterwards.
    let positions: Vec<i64> = seen
        .iter()
        .map(|node| feed::position(&node["cursor"]))
        .collect();
    assert!(
        positions.windows(2).all(|pair| pair[0] < pair[1]),
        "out of order or repeated"
    );
    assert_eq!(
        seen.len(),
        written.len() + imported.len(),
        "changes missed or extra"
    );
    let again: Vec<i64> = feed::read_all(&first, CHANGES, start)
        .await
        .iter()
        .map(|node| feed::position(&node["cursor"]))
        .collect();
    assert_eq!(
        positions, again,
        "the follower's sequence differs from the log read afterwards"
    );

    // Every writer change is there, and each contact's changes come in the order written.
    let mut by_contact: HashMap<String, Vec<(String, Option<u64>)>> = HashMap::new();
    for node in &seen {
        let n = node["contact"]["metadata"]["n"]
            .as_str()
            .map(|n| n.parse::<u64>().expect("n"));
        let id = node["contactId"].as_str().expect("id").to_owned();
        let kind = node["kind"].as_str().expect("kind").to_owned();
        by_contact.entry(id).or_default().push((kind, n));
    }
    let mut expected: HashMap<String, Vec<(String, Option<u64>)>> = HashMap::new();
    for (kind, id, n) in written {
        expected.entry(id).or_default().push((kind.to_owned(), n));
    }
    for (id, changes) in &expected {
        assert_eq!(by_contact.get(id), Some(changes), "contact {id}");
    }
    let imported_seen: HashSet<&str> = seen
        .iter()
        .filter(|node| node["kind"] == "CREATED")
        .filter_map(|node| node["contact"]["phoneNumber"].as_str())
        .collect();
    assert!(
        imported
            .iter()
            .all(|phone| imported_seen.contains(phone.as_str()))
    );
}
