//! The real binary: start-up defaults, `--help`, graceful shutdown on SIGTERM, and
//! acknowledged concurrent writes surviving SIGKILL.

mod common;

use std::{
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use common::process::{BIN, command, wait_until_listening};
use serde_json::{Value, json};
use tokio::sync::Notify;

#[test]
fn help_documents_every_setting() {
    let output = Command::new(BIN)
        .arg("--help")
        .output()
        .expect("run --help");
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for setting in [
        "DATABASE_URL",
        "HOST",
        "PORT",
        "RUST_LOG",
        "--database-url",
        "--port",
    ] {
        assert!(
            help.contains(setting),
            "--help does not mention {setting}:\n{help}"
        );
    }
}

async fn post(base: &str, query: &str, variables: Value) -> Value {
    let body = json!({ "query": query, "variables": variables });
    let response = reqwest::Client::new()
        .post(format!("{base}/graphql"))
        .json(&body)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    response.json().await.expect("JSON")
}

#[tokio::test]
async fn starts_with_a_migrated_sqlite_file_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = command(None)
        .current_dir(dir.path())
        .spawn()
        .expect("start server");
    let base = wait_until_listening(&mut child).base;
    assert!(
        dir.path().join("contacts.db").exists(),
        "contacts.db not created in the working directory"
    );

    let created = post(
        &base,
        "mutation { recordWhatsappMessage(phoneNumber: \"+56912345678\") { contact { id } } }",
        json!({}),
    )
    .await;
    assert!(created.get("errors").is_none(), "{created}");
    let page = reqwest::Client::new()
        .get(format!("{base}/graphql"))
        .header("accept", "text/html")
        .send()
        .await
        .expect("page");
    assert_eq!(page.status(), 200);

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let exited = tokio::task::spawn_blocking(move || child.wait());
    let status = tokio::time::timeout(Duration::from_secs(30), exited)
        .await
        .expect("server did not stop after SIGTERM")
        .expect("join")
        .expect("wait");
    assert!(status.success(), "exit status after SIGTERM: {status}");
}

/// What a writer was told had been committed.
#[derive(Debug)]
struct Acknowledged {
    phone: String,
    /// The metadata `n` the server last acknowledged for the contact.
    n: &'static str,
}

/// One of the concurrent writers: creates a contact, then updates it, until the server dies.
async fn write_until_refused(
    base: String,
    writer: usize,
    count: Arc<AtomicUsize>,
    enough: Arc<Notify>,
) -> Vec<Acknowledged> {
    let client = reqwest::Client::new();
    let send = |query: &'static str, variables: Value| {
        client
            .post(format!("{base}/graphql"))
            .json(&json!({ "query": query, "variables": variables }))
            .send()
    };
    let mut acknowledged = Vec::new();
    for i in 0.. {
        let phone = format!("+1415{:07}", writer * 100_000 + i);
        let create = "mutation($p: String!) { createContact(input: { phoneNumber: $p, metadata: { n: \"0\" } }) { contact { id } } }";
        let Some(body) = acknowledged_body(send(create, json!({ "p": phone })).await).await else {
            break;
        };
        let id = body["data"]["createContact"]["contact"]["id"].clone();
        acknowledged.push(Acknowledged { phone, n: "0" });
        let patch = "mutation($id: ID!) { patchContactMetadata(id: $id, set: { n: \"1\" }) { contact { id } } }";
        if acknowledged_body(send(patch, json!({ "id": id })).await)
            .await
            .is_none()
        {
            break;
        }
        acknowledged.last_mut().expect("just pushed").n = "1";
        if count.fetch_add(1, Ordering::SeqCst) + 1 == KILL_AFTER {
            enough.notify_one();
        }
    }
    acknowledged
}

/// Kill the server once this many contacts were created and updated, with writers in flight.
const KILL_AFTER: usize = 200;

/// The body of a successful answer; `None` once the server is gone.
async fn acknowledged_body(sent: reqwest::Result<reqwest::Response>) -> Option<Value> {
    let response = sent.ok()?;
    let status = response.status();
    let body: Value = response.json().await.ok()?;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
    Some(body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_concurrent_writes_survive_sigkill() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = common::fresh_database_url(&dir).await;
    let mut child = command(Some(&url)).spawn().expect("start server");
    let base = wait_until_listening(&mut child).base;
    let count = Arc::new(AtomicUsize::new(0));
    let enough = Arc::new(Notify::new());
    let writers: Vec<_> = (0..8)
        .map(|writer| {
            tokio::spawn(write_until_refused(
                base.clone(),
                writer,
                count.clone(),
                enough.clone(),
            ))
        })
        .collect();
    enough.notified().await;
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    let mut acknowledged = Vec::new();
    for writer in writers {
        acknowledged.extend(writer.await.expect("writer"));
    }
    assert!(acknowledged.len() >= KILL_AFTER, "{}", acknowledged.len());

    let mut restarted = command(Some(&url)).spawn().expect("restart server");
    let base = wait_until_listening(&mut restarted).base;
    for write in &acknowledged {
        let body = post(
            &base,
            "query($p: String!) { contactByPhoneNumber(phoneNumber: $p) { metadata } }",
            json!({ "p": write.phone }),
        )
        .await;
        // An update in flight at the kill may have committed without being acknowledged.
        let n = &body["data"]["contactByPhoneNumber"]["metadata"]["n"];
        let kept = match write.n {
            "1" => n == "1",
            _ => n == "0" || n == "1",
        };
        assert!(kept, "acknowledged write lost: {write:?}: {body}");
    }
    println!(
        "sigkill: {} acknowledged creates and their updates all present after restart",
        acknowledged.len()
    );
    restarted.kill().expect("stop");
    restarted.wait().expect("reap");
}

#[test]
fn refuses_a_public_address_without_credentials() {
    let output = Command::new(BIN)
        .env_remove("API_KEYS")
        .env_remove("JWT_HS256_SECRET")
        .env_remove("JWT_PUBLIC_KEY_FILE")
        .env("HOST", "0.0.0.0")
        .env("DATABASE_URL", "sqlite::memory:")
        .output()
        .expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("refusing to listen on 0.0.0.0 without credentials"),
        "{stderr}"
    );
}
