//! The real binary: start-up defaults, `--help`, and graceful shutdown on SIGTERM.

use std::{
    io::{BufRead, BufReader},
    net::TcpListener,
    process::{Child, Command, Stdio},
    time::Duration,
};

const BIN: &str = env!("CARGO_BIN_EXE_contacts-server");

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

/// Waits for the server's "listening" log line: an event, not the passage of time.
fn wait_until_listening(child: &mut Child) {
    let stdout = child.stdout.take().expect("piped stdout");
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("server output");
        if line.contains("GraphiQL and the API at") {
            return;
        }
    }
    panic!("server exited during start-up");
}

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

#[tokio::test]
async fn starts_with_a_migrated_sqlite_file_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let mut child = Command::new(BIN)
        .current_dir(dir.path())
        .env_remove("DATABASE_URL")
        .env("PORT", port.to_string())
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start server");
    let base = format!("http://127.0.0.1:{port}");
    wait_until_listening(&mut child);
    assert!(
        dir.path().join("contacts.db").exists(),
        "contacts.db not created in the working directory"
    );

    let client = reqwest::Client::new();
    let body = serde_json::json!({ "query": "mutation { recordWhatsappMessage(phoneNumber: \"+56912345678\") { contact { id } } }" });
    let response = client
        .post(format!("{base}/graphql"))
        .json(&body)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let page = client
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
