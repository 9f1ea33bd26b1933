//! What unauthenticated WebSocket clients can make the real server hold: eight parallel
//! `connection_init` messages of 12 MB each must not grow its memory by 50 MiB (the review saw
//! 11 MiB payloads take it from 70 MB to 957 MB). Its own test binary, so nothing else runs in
//! the measured process's neighbourhood.

mod common;

use common::process::{command, wait_until_listening};
use futures_util::SinkExt;
use sha2::{Digest, Sha256};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest, http::HeaderValue};

/// `VmRSS` (now) or `VmHWM` (the peak) of a process, in KiB.
fn memory_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("memory field")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_12_mb_connection_inits_without_credentials_stay_small() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("memory.db").display()
    );
    let key = format!(
        "{}:read",
        hex::encode(Sha256::digest(b"a key nobody sends"))
    );
    let mut child = command(Some(&url))
        .env("API_KEYS", key)
        .env("RUST_LOG", "info")
        .spawn()
        .expect("start server");
    let started = wait_until_listening(&mut child);
    let pid = child.id();
    // Warm up: one refused request, so lazily built state is there before measuring.
    let refused = reqwest::get(format!("{}/graphql?query=%7B__typename%7D", started.base))
        .await
        .expect("request");
    assert_eq!(refused.status(), 401);
    let before = memory_kib(pid, "VmRSS:");

    let ws_url = format!("{}/graphql/ws", started.base.replacen("http", "ws", 1));
    let payload = "x".repeat(12 * 1024 * 1024);
    let init = format!(r#"{{"type":"connection_init","payload":{{"padding":"{payload}"}}}}"#);
    let senders = (0..8).map(|_| {
        let (ws_url, init) = (ws_url.clone(), init.clone());
        tokio::spawn(async move {
            let mut request = ws_url.into_client_request().expect("request");
            request.headers_mut().insert(
                "Sec-WebSocket-Protocol",
                HeaderValue::from_static("graphql-transport-ws"),
            );
            let (mut socket, _) = tokio_tungstenite::connect_async(request)
                .await
                .expect("handshake");
            // The server closes mid-message; the send failing is the expected outcome.
            let sent = socket.send(Message::Text(init.into())).await;
            let _ = socket.close(None).await;
            sent.is_ok()
        })
    });
    for sender in senders {
        sender.await.expect("sender");
    }
    let peak = memory_kib(pid, "VmHWM:");
    let after = memory_kib(pid, "VmRSS:");
    let grown_mib = peak.saturating_sub(before) as f64 / 1024.0;
    println!(
        "server RSS before {:.1} MiB, peak {:.1} MiB, after {:.1} MiB: grew {grown_mib:.1} MiB",
        before as f64 / 1024.0,
        peak as f64 / 1024.0,
        after as f64 / 1024.0
    );
    // Still serving, and never grew by the size of what it was sent.
    let health = reqwest::get(format!("{}/healthz", started.base))
        .await
        .expect("health");
    assert_eq!(health.status(), 200);
    child.kill().expect("stop");
    assert!(
        grown_mib < 50.0,
        "the server grew by {grown_mib:.1} MiB under 8 unauthenticated 12 MB messages"
    );
}
