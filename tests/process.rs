//! The real binary: start-up defaults, `--help`, graceful shutdown on SIGTERM, and
//! acknowledged writes surviving SIGKILL.

mod common;

use std::{process::Command, time::Duration};

use common::process::{BIN, command, wait_until_listening};
use serde_json::{Value, json};

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

#[tokio::test]
async fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = common::fresh_database_url(&dir).await;
    let mut child = command(Some(&url)).spawn().expect("start server");
    let base = wait_until_listening(&mut child).base;
    let mut acknowledged = Vec::new();
    for i in 0..50 {
        let phone = format!("+1415555{i:04}");
        let body = post(&base, "mutation($p: String!) { createContact(input: { phoneNumber: $p }) { contact { id } } }", json!({ "p": phone })).await;
        assert!(body.get("errors").is_none(), "{body}");
        acknowledged.push(phone);
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");

    let mut restarted = command(Some(&url)).spawn().expect("restart server");
    let base = wait_until_listening(&mut restarted).base;
    for phone in &acknowledged {
        let body = post(
            &base,
            "query($p: String!) { contactByPhoneNumber(phoneNumber: $p) { id } }",
            json!({ "p": phone }),
        )
        .await;
        assert!(
            body["data"]["contactByPhoneNumber"]["id"].is_string(),
            "{phone} lost: {body}"
        );
    }
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
