//! An outsider's attacks on the release of the messaging policy and the WhatsApp webhook
//! (issues 11 and 12), each kept as a test of what it found. Runs on SQLite, and on
//! PostgreSQL with TEST_DATABASE_URL.

mod common;

use std::process::{Command, Output, Stdio};

use common::{TestApp, process::BIN};
use serde_json::{Value, json};
use tempfile::TempDir;

const PHONE: &str = "+56912345678";
const BSUID: &str = "CL.1234567890";

/// `count` aliased inbound events of `who` (`phoneNumber: "+56…"` or `whatsappUserId: "…"`)
/// per request, one per business number `first..first + n`, each a minute after the last
/// from `start` (minutes after 2026-11-24T00:00Z).
async fn windows_on_numbers(app: &TestApp, who: &str, first: u64, n: u64, start: u64) {
    for batch in (0..n).step_by(10) {
        let mut query = String::from("mutation {");
        for j in batch..(batch + 10).min(n) {
            let minute = start + j;
            query.push_str(&format!(
                " m{j}: recordWhatsappInbound(input: {{ {who}, businessPhoneNumberId: \"{}\", \
                 receivedAt: \"2026-11-24T{:02}:{:02}:00Z\" }}) {{ contact {{ id }} }}",
                first + j,
                minute / 60,
                minute % 60
            ));
        }
        query.push('}');
        let (status, body) = app.post(&query, json!({})).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.get("errors").is_none(), "{body}");
    }
}

/// `n` marketing choices of `PHONE`, one per business number from `first`, alternating
/// opt-out and resume.
async fn choices_on_numbers(app: &TestApp, first: u64, n: u64) {
    for batch in (0..n).step_by(10) {
        let mut query = String::from("mutation {");
        for j in batch..(batch + 10).min(n) {
            query.push_str(&format!(
                " m{j}: recordMarketingPreference(phoneNumber: \"{PHONE}\", \
                 businessPhoneNumberId: \"{}\", optedOut: {}, at: \"2026-11-24T10:{:02}:00Z\") \
                 {{ contact {{ id }} }}",
                first + j,
                j % 2 == 0,
                j % 60
            ));
        }
        query.push('}');
        let (status, body) = app.post(&query, json!({})).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.get("errors").is_none(), "{body}");
    }
}

/// The binary on `url` with `args`.
fn run(url: &str, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("DATABASE_URL", url)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("run contacts-server")
}

/// Runs `args`, which must succeed; standard output.
fn ok(url: &str, args: &[&str]) -> String {
    let output = run(url, args);
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Every contact as the JSON Lines export writes it.
fn exported(url: &str) -> Vec<Value> {
    ok(url, &["export", "--format", "jsonl"])
        .lines()
        .map(|line| serde_json::from_str(line).expect("JSON line"))
        .collect()
}

/// Exports `source` in `format`, imports the file into an empty database, and returns what
/// that database exports, with the import's summary.
async fn round_trip(source: &str, dir: &TempDir, format: &str) -> (String, Vec<Value>) {
    let file = dir.path().join(format!("export.{format}"));
    let file = file.display().to_string();
    ok(source, &["export", "--output", &file]);
    let target_dir = tempfile::tempdir().expect("temp dir");
    let target = common::fresh_database_url(&target_dir).await;
    let summary = ok(&target, &["import", &file]);
    (summary, exported(&target))
}

/// A contact keeps its 100 newest named windows and, besides them, the window of no number:
/// 101 windows. Export writes all 101; import refuses more than 100 entries, so the export of
/// any busy contact cannot be imported back (the row is rejected, the contact lost).
#[tokio::test]
async fn a_contact_at_the_window_bound_round_trips_through_export_and_import() {
    let app = TestApp::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let who = format!("phoneNumber: \"{PHONE}\"");
    windows_on_numbers(&app, &who, 1_000_000, 100, 9 * 60).await;
    // An event naming no business number: the window of no number.
    app.data(
        &format!(
            "mutation {{ recordWhatsappInbound(input: {{ phoneNumber: \"{PHONE}\", \
             receivedAt: \"2026-11-24T11:50:00Z\" }}) {{ contact {{ id }} }} }}"
        ),
        json!({}),
    )
    .await;
    let original = exported(&app.database_url);
    assert_eq!(
        original[0]["whatsappWindows"].as_array().map(Vec::len),
        Some(101)
    );
    for format in ["jsonl", "csv"] {
        let (summary, copy) = round_trip(&app.database_url, &dir, format).await;
        assert_eq!(copy, original, "{format} round trip: {summary}");
    }
}

/// Marketing choices have no bound per contact (windows do): a contact with choices on 101
/// business numbers exports them all, and import refuses more than 100, so the contact is
/// not imported back.
#[tokio::test]
async fn a_contact_with_many_marketing_choices_round_trips_through_export_and_import() {
    let app = TestApp::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    choices_on_numbers(&app, 2_000_000, 101).await;
    let original = exported(&app.database_url);
    let choices = original[0]["marketingPreferences"].as_array().map(Vec::len);
    assert_eq!(choices, Some(101));
    for format in ["jsonl", "csv"] {
        let (summary, copy) = round_trip(&app.database_url, &dir, format).await;
        assert_eq!(copy, original, "{format} round trip: {summary}");
    }
}

/// The bound on windows per contact holds for events, but a merge adds the absorbed
/// contact's windows to the survivor's with no bound: two contacts with 100 windows each,
/// joined by an event naming no number (whose window is never trimmed), end with 200.
#[tokio::test]
async fn a_merge_keeps_the_bound_on_windows_per_contact() {
    let app = TestApp::start().await;
    let by_phone = format!("phoneNumber: \"{PHONE}\"");
    windows_on_numbers(&app, &by_phone, 1_000_000, 100, 8 * 60).await;
    let by_user_id = format!("whatsappUserId: \"{BSUID}\"");
    windows_on_numbers(&app, &by_user_id, 3_000_000, 100, 9 * 60).await;
    let joined = app
        .data(
            &format!(
                "mutation {{ recordWhatsappInbound(input: {{ phoneNumber: \"{PHONE}\", \
                 whatsappUserId: \"{BSUID}\", receivedAt: \"2026-11-24T07:00:00Z\" }}) \
                 {{ contact {{ whatsappWindows {{ businessPhoneNumberId }} }} }} }}"
            ),
            json!({}),
        )
        .await;
    let windows = &joined["recordWhatsappInbound"]["contact"]["whatsappWindows"];
    let named = windows
        .as_array()
        .expect("windows")
        .iter()
        .filter(|w| !w["businessPhoneNumberId"].is_null())
        .count();
    assert!(named <= 100, "{named} named windows after the merge");
}
