//! The operator's subcommands, run as the real binary against a real database (SQLite, or
//! PostgreSQL with TEST_DATABASE_URL): import (CSV, JSON Lines, standard input, bad rows,
//! idempotence), export (filters, and back into an empty database), seed-demo, migrate,
//! print-schema, and every subcommand's --help.

mod common;

use std::{
    io::Write,
    process::{Command, Output, Stdio},
};

use common::process::{BIN, command, wait_until_listening};
use serde_json::{Value, json};
use tempfile::TempDir;

/// The binary on `url`, with `args`; standard input from `stdin` when given.
fn run(url: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .env("DATABASE_URL", url)
        .env_remove("RUST_LOG")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run contacts-server");
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        pipe.write_all(text.as_bytes()).expect("write stdin");
    }
    child.wait_with_output().expect("wait")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs `args`, which must succeed; returns standard output.
fn ok(url: &str, args: &[&str]) -> String {
    let output = run(url, args, None);
    assert!(
        output.status.success(),
        "{args:?}: {}\n{}",
        output.status,
        stderr(&output)
    );
    stdout(&output)
}

async fn database() -> (TempDir, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = common::fresh_database_url(&dir).await;
    (dir, url)
}

fn write(dir: &TempDir, name: &str, text: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, text).expect("write file");
    path.display().to_string()
}

/// Every contact, as sorted JSON Lines.
fn contacts(url: &str) -> Vec<Value> {
    let mut lines: Vec<Value> = ok(url, &["export", "--format", "jsonl"])
        .lines()
        .map(|line| serde_json::from_str(line).expect("JSON line"))
        .collect();
    lines.sort_by_key(|contact| {
        contact["phoneNumber"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    });
    lines
}

const CSV: &str = "phoneNumber,countryCode,lastWhatsappMessageAt,metadata.name,metadata.plan\n\
    +56 9 1234 5678,,2026-11-24T10:00:00Z,Ana,pro\n\
    912345679,CL,,Bruno,\n\
    +1 212 555 0100,US,,,free\n";

const JSONL: &str = "{\"phoneNumber\":\"+34640000001\",\"metadata\":{\"name\":\"Elena\"}}\n\
    \n\
    {\"phoneNumber\":\"+447700900001\",\"countryCode\":\"GB\",\"lastWhatsappMessageAt\":\"2026-11-20T08:00:00.5Z\"}\n";

#[tokio::test]
async fn imports_csv_jsonl_and_standard_input_and_a_second_run_changes_nothing() {
    let (dir, url) = database().await;
    let csv = write(&dir, "contacts.csv", CSV);
    let jsonl = write(&dir, "contacts.jsonl", JSONL);

    let first = ok(&url, &["import", &csv]);
    assert!(
        first.contains("3 rows, created 3, updated 0, unchanged 0, rejected 0"),
        "{first}"
    );
    let again = ok(&url, &["import", &csv]);
    assert!(
        again.contains("created 0, updated 0, unchanged 3, rejected 0"),
        "{again}"
    );

    let lines = ok(&url, &["import", &jsonl]);
    assert!(lines.contains("2 rows, created 2"), "{lines}");
    assert!(ok(&url, &["import", &jsonl]).contains("created 0, updated 0, unchanged 2"));

    let piped = run(
        &url,
        &["import", "-", "--format", "csv"],
        Some("phoneNumber,metadata.name\n+525512345678,Mateo\n"),
    );
    assert!(piped.status.success(), "{}", stderr(&piped));
    assert!(
        stdout(&piped).contains("1 rows, created 1"),
        "{}",
        stdout(&piped)
    );

    // A changed row is an update; the rest stay untouched.
    let changed = write(
        &dir,
        "changed.csv",
        "phoneNumber,metadata.name,metadata.plan\n+56912345678,Ana,business\n",
    );
    assert!(ok(&url, &["import", &changed]).contains("created 0, updated 1, unchanged 0"));

    let stored = contacts(&url);
    assert_eq!(stored.len(), 6, "{stored:?}");
    let ana = stored
        .iter()
        .find(|c| c["phoneNumber"] == "+56912345678")
        .expect("Ana, in E.164");
    assert_eq!(ana["countryCode"], "CL");
    assert_eq!(
        ana["metadata"],
        json!({ "name": "Ana", "plan": "business" })
    );
    // The message time was not in the changed file: it is kept.
    assert_eq!(ana["lastWhatsappMessageAt"], "2026-11-24T10:00:00.000000Z");
    let gb = stored
        .iter()
        .find(|c| c["phoneNumber"] == "+447700900001")
        .expect("GB contact");
    assert_eq!(gb["lastWhatsappMessageAt"], "2026-11-20T08:00:00.500000Z");
}

#[tokio::test]
async fn bad_rows_are_reported_by_line_written_to_rejects_and_the_rest_imported() {
    let (dir, url) = database().await;
    let file = write(
        &dir,
        "bad.csv",
        "phoneNumber,countryCode,metadata.note\n\
         +56912345678,CL,good\n\
         not-a-phone,,bad number\n\
         +56912345678,CL,duplicate\n\
         +56912345679,CL\n\
         +56912345670,ZZ,bad country\n\
         +56912345671,,also good\n",
    );
    let rejects = dir.path().join("rejects.csv");
    let output = run(
        &url,
        &["import", &file, "--rejects", &rejects.display().to_string()],
        None,
    );
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("6 rows, created 2, updated 0, unchanged 0, rejected 4"),
        "{}",
        stdout(&output)
    );
    let report = stderr(&output);
    for expected in [
        "line 3: phoneNumber:",
        "line 4: the same phone number as line 2",
        "line 5: 2 fields where the header has 3",
        "line 6: countryCode:",
    ] {
        assert!(
            report.contains(expected),
            "{expected:?} missing from:\n{report}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(&rejects).expect("rejects file"),
        "phoneNumber,countryCode,metadata.note\n\
         not-a-phone,,bad number\n\
         +56912345678,CL,duplicate\n\
         +56912345679,CL\n\
         +56912345670,ZZ,bad country\n"
    );
    assert_eq!(contacts(&url).len(), 2);

    let jsonl = write(
        &dir,
        "bad.jsonl",
        "{\"phoneNumber\":\"+56912345672\"}\n{\"phone\":\"x\"}\nnot json\n",
    );
    let output = run(&url, &["import", &jsonl], None);
    assert_eq!(output.status.code(), Some(3));
    assert!(
        stderr(&output).contains("line 2: not a contact object"),
        "{}",
        stderr(&output)
    );
    assert!(stderr(&output).contains("line 3: not a contact object"));
    assert_eq!(contacts(&url).len(), 3);
}

#[tokio::test]
async fn an_unreadable_header_or_format_stops_before_writing() {
    let (dir, url) = database().await;
    let unknown = write(&dir, "x.csv", "phone,name\n+56912345678,Ana\n");
    let output = run(&url, &["import", &unknown], None);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("unknown CSV column \"phone\""),
        "{}",
        stderr(&output)
    );
    let no_extension = write(&dir, "contacts.txt", "");
    let output = run(&url, &["import", &no_extension], None);
    assert!(stderr(&output).contains("--format"), "{}", stderr(&output));
    let missing = run(&url, &["import", "/nonexistent/contacts.csv"], None);
    assert_eq!(missing.status.code(), Some(1));
    assert!(contacts(&url).is_empty());
}

#[tokio::test]
async fn export_then_import_into_an_empty_database_gives_the_same_contacts() {
    let (dir, source) = database().await;
    ok(&source, &["seed-demo", "--count", "300"]);
    let original = contacts(&source);
    assert_eq!(original.len(), 300);
    for format in ["csv", "jsonl"] {
        let file = dir.path().join(format!("export.{format}"));
        ok(
            &source,
            &["export", "--output", &file.display().to_string()],
        );
        let (_target_dir, target) = database().await;
        let imported = ok(&target, &["import", &file.display().to_string()]);
        assert!(imported.contains("created 300"), "{imported}");
        assert_eq!(contacts(&target), original, "{format} round trip");
    }
}

#[tokio::test]
async fn export_filters_select_contacts() {
    let (_dir, url) = database().await;
    ok(&url, &["seed-demo", "--count", "200"]);
    let chilean = ok(&url, &["export", "--format", "jsonl", "--country", "CL"]);
    assert!(!chilean.is_empty());
    assert!(
        chilean
            .lines()
            .all(|line| line.contains("\"countryCode\":\"CL\""))
    );
    let open: Vec<Value> = ok(&url, &["export", "--format", "jsonl", "--window-open"])
        .lines()
        .map(|line| serde_json::from_str(line).expect("JSON"))
        .collect();
    let closed = ok(&url, &["export", "--format", "jsonl", "--window-closed"])
        .lines()
        .count();
    assert!(!open.is_empty() && closed > 0);
    assert_eq!(open.len() + closed, 200);
    assert!(open.iter().all(|c| c["lastWhatsappMessageAt"].is_string()));
    let pro = ok(
        &url,
        &["export", "--format", "jsonl", "--metadata", "plan=pro"],
    );
    assert!(pro.lines().all(|line| line.contains("\"plan\":\"pro\"")));
    let bad = run(&url, &["export", "--country", "Chile"], None);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).contains("filter.countryCode"),
        "{}",
        stderr(&bad)
    );
}

/// The first GraphQL block of the README: what a newcomer runs first.
fn readme_first_query() -> String {
    let readme = include_str!("../README.md");
    let start = readme.find("```graphql\n").expect("a graphql block") + "```graphql\n".len();
    let end = start + readme[start..].find("```").expect("block end");
    readme[start..end].to_owned()
}

#[tokio::test]
async fn seed_demo_then_the_readme_first_query_shows_open_windows() {
    let (_dir, url) = database().await;
    let seeded = ok(&url, &["seed-demo", "--count", "1000"]);
    assert!(seeded.contains("seeded 1000 demo contacts"), "{seeded}");
    let mut server = command(Some(&url)).spawn().expect("start server");
    let base = wait_until_listening(&mut server).base;
    let body: Value = reqwest::Client::new()
        .post(format!("{base}/graphql"))
        .json(&json!({ "query": readme_first_query() }))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("JSON");
    server.kill().expect("stop");
    server.wait().expect("reap");
    assert!(body.get("errors").is_none(), "{body}");
    let nodes = body["data"]["contacts"]["nodes"].as_array().expect("nodes");
    assert!(!nodes.is_empty(), "{body}");
    assert!(
        nodes
            .iter()
            .all(|c| c["whatsappWindowExpiresAt"].is_string()),
        "{body}"
    );
}

#[tokio::test]
async fn migrate_applies_and_lists_migrations_and_print_schema_is_the_served_sdl() {
    let (_dir, url) = database().await;
    let status = ok(&url, &["migrate", "status"]);
    assert!(
        status.contains("pending  m20261125_000001_create_contacts"),
        "{status}"
    );
    let up = ok(&url, &["migrate", "up"]);
    assert!(
        up.contains("applied  m20261125_000001_create_contacts"),
        "{up}"
    );
    assert!(ok(&url, &["migrate", "status"]).contains("applied  m20261125_000001"));
    assert_eq!(
        ok(&url, &["print-schema"]),
        include_str!("../schema.graphql")
    );
}

#[test]
fn every_subcommand_documents_its_flags() {
    let expectations: &[(&[&str], &[&str])] = &[
        (
            &["--help"],
            &[
                "serve",
                "migrate",
                "print-schema",
                "import",
                "export",
                "seed-demo",
                "--port",
            ],
        ),
        (
            &["serve", "--help"],
            &[
                "--host",
                "--port",
                "--database-url",
                "--api-key",
                "Examples",
            ],
        ),
        (&["migrate", "--help"], &["up", "status", "--database-url"]),
        (
            &["migrate", "up", "--help"],
            &["Apply every pending migration"],
        ),
        (&["migrate", "status", "--help"], &["List migrations"]),
        (&["print-schema", "--help"], &["Example"]),
        (
            &["import", "--help"],
            &[
                "--format",
                "--rejects",
                "--database-url",
                "metadata.<key>",
                "Examples",
            ],
        ),
        (
            &["export", "--help"],
            &[
                "--output",
                "--format",
                "--window-open",
                "--window-closed",
                "--country",
                "--phone-prefix",
                "--metadata",
                "--created-after",
                "--last-message-before",
                "Examples",
            ],
        ),
        (
            &["seed-demo", "--help"],
            &["--count", "--seed", "--database-url", "Example"],
        ),
    ];
    for (args, flags) in expectations {
        let output = Command::new(BIN).args(*args).output().expect("run");
        assert!(output.status.success(), "{args:?}");
        let help = String::from_utf8_lossy(&output.stdout);
        for flag in *flags {
            assert!(
                help.contains(flag),
                "{args:?} does not mention {flag}:\n{help}"
            );
        }
    }
}

#[tokio::test]
async fn csv_export_neutralises_formulas_and_still_imports_back_the_same() {
    let (dir, source) = database().await;
    let risky = [
        "=HYPERLINK(\"http://evil.test\",\"click\")",
        "+SUM(1,2)",
        "-2+3",
        "@cmd",
        "\tTAB",
        "'=already quoted",
        "'plain apostrophe",
        "plain",
    ];
    let lines: String = risky
        .iter()
        .enumerate()
        .map(|(i, value)| {
            format!(
                "{}\n",
                json!({ "phoneNumber": format!("+5691234567{i}"), "metadata": { "note": value } })
            )
        })
        .collect();
    ok(&source, &["import", &write(&dir, "risky.jsonl", &lines)]);
    let original = contacts(&source);
    let file = dir.path().join("export.csv").display().to_string();
    ok(&source, &["export", "--output", &file]);
    let text = std::fs::read_to_string(&file).expect("export");
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let note_column = reader
        .headers()
        .expect("CSV header")
        .iter()
        .position(|name| name == "metadata.note")
        .expect("a metadata.note column");
    let notes: Vec<String> = reader
        .records()
        .map(|record| record.expect("CSV record")[note_column].to_owned())
        .collect();
    assert_eq!(notes.len(), risky.len());
    assert!(notes.contains(&"'=HYPERLINK(\"http://evil.test\",\"click\")".to_owned()));
    assert!(notes.contains(&"''=already quoted".to_owned()));
    assert!(notes.contains(&"'plain apostrophe".to_owned()), "{notes:?}");
    for note in &notes {
        assert!(
            !note.starts_with(['=', '+', '-', '@', '\t', '\r']),
            "{note:?} would run as a formula"
        );
    }
    let (_target_dir, target) = database().await;
    ok(&target, &["import", &file]);
    assert_eq!(contacts(&target), original);
}

#[tokio::test]
async fn import_without_a_country_code_keeps_the_stored_one() {
    let (dir, url) = database().await;
    let first = write(
        &dir,
        "first.csv",
        "phoneNumber,countryCode\n+14155550100,CA\n+56912345678,\n",
    );
    ok(&url, &["import", &first]);
    let again = write(
        &dir,
        "again.csv",
        "phoneNumber,countryCode,metadata.plan\n+14155550100,,pro\n+56912345678,,pro\n",
    );
    assert!(ok(&url, &["import", &again]).contains("updated 2"));
    let stored = contacts(&url);
    assert_eq!(stored[0]["countryCode"], "CA", "{stored:?}");
    assert_eq!(stored[0]["metadata"], json!({ "plan": "pro" }));
    assert_eq!(stored[1]["countryCode"], "CL");
    let unchanged = write(&dir, "same.jsonl", "{\"phoneNumber\":\"+14155550100\"}\n");
    assert!(ok(&url, &["import", &unchanged]).contains("unchanged 1"));
}

#[tokio::test]
async fn a_row_the_database_refuses_is_rejected_alone() {
    let (dir, url) = database().await;
    ok(&url, &["migrate", "up"]);
    common::refuse_in_database(&url, "+56912345672").await;
    let file = write(
        &dir,
        "rows.csv",
        "phoneNumber,metadata.n\n+56912345671,1\n+56912345672,2\n+56912345673,3\n",
    );
    let rejects = dir.path().join("rejects.csv");
    let output = run(
        &url,
        &["import", &file, "--rejects", &rejects.display().to_string()],
        None,
    );
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("3 rows, created 2, updated 0, unchanged 0, rejected 1"),
        "{}",
        stdout(&output)
    );
    assert!(stderr(&output).contains("line 3: "), "{}", stderr(&output));
    assert_eq!(
        std::fs::read_to_string(&rejects).expect("rejects"),
        "phoneNumber,metadata.n\n+56912345672,2\n"
    );
    assert_eq!(contacts(&url).len(), 2);
}

#[tokio::test]
async fn timestamps_beyond_four_digit_utc_years_are_refused_by_import_and_export() {
    let (dir, url) = database().await;
    let file = write(
        &dir,
        "times.csv",
        "phoneNumber,lastWhatsappMessageAt\n\
         +56912345671,0001-01-01T00:30:00+01:00\n\
         +56912345672,2016-12-31T23:59:60Z\n\
         +56912345673,2026-11-24T10:00:00Z\n",
    );
    let output = run(&url, &["import", &file], None);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let report = stderr(&output);
    assert!(
        report.contains("line 2: lastWhatsappMessageAt:"),
        "{report}"
    );
    assert!(
        report.contains("line 3: lastWhatsappMessageAt:"),
        "{report}"
    );
    let export = run(
        &url,
        &["export", "--created-after", "9999-12-31T23:30:00-01:00"],
        None,
    );
    assert_eq!(export.status.code(), Some(1), "{}", stdout(&export));
    assert!(
        stderr(&export).contains("--created-after"),
        "{}",
        stderr(&export)
    );
}

/// WhatsApp identity columns import, export and import back unchanged; a phone-less row needs
/// a BSUID.
#[tokio::test]
async fn identity_columns_round_trip_in_csv_and_jsonl() {
    let (dir, source) = database().await;
    let csv = "phoneNumber,whatsappUserId,parentWhatsappUserId,whatsappUsername,whatsappProfileName\n\
        ,US.1349,US.P1,ana.w,=Ana\n\
        +56912345678,CL.77,,,\n\
        +56912345679,,,,\n\
        ,,,bruno,\n";
    let file = write(&dir, "identity.csv", csv);
    let output = run(&source, &["import", &file], None);
    assert!(stdout(&output).contains("created 3"), "{}", stdout(&output));
    assert!(
        stderr(&output).contains("whatsappUserId"),
        "{}",
        stderr(&output)
    );
    let original = contacts(&source);
    assert_eq!(original.len(), 3);
    let phone_less = original
        .iter()
        .find(|c| c["whatsappUserId"] == "US.1349")
        .expect("the BSUID-only contact");
    assert_eq!(phone_less.get("phoneNumber"), None);
    assert_eq!(phone_less["whatsappProfileName"], "=Ana");
    assert_eq!(phone_less["parentWhatsappUserId"], "US.P1");
    for format in ["csv", "jsonl"] {
        let file = dir.path().join(format!("identity-export.{format}"));
        ok(
            &source,
            &["export", "--output", &file.display().to_string()],
        );
        let (_target_dir, target) = database().await;
        let imported = ok(&target, &["import", &file.display().to_string()]);
        assert!(imported.contains("created 3"), "{imported}");
        assert_eq!(contacts(&target), original, "{format} round trip");
    }
}

/// Every tenth demo contact is known by WhatsApp username only, recorded as an inbound
/// message or call: a BSUID, a username and profile name, no phone number, a window.
#[tokio::test]
async fn seed_demo_adds_username_only_contacts_from_messages_and_calls() {
    let (_dir, url) = database().await;
    let seeded = ok(&url, &["seed-demo", "--count", "40"]);
    assert!(
        seeded.contains("4 known by WhatsApp username only"),
        "{seeded}"
    );
    let all = contacts(&url);
    assert_eq!(all.len(), 40);
    let phone_less: Vec<&Value> = all
        .iter()
        .filter(|c| c.get("phoneNumber").is_none())
        .collect();
    assert_eq!(phone_less.len(), 4);
    for contact in phone_less {
        let user_id = contact["whatsappUserId"].as_str().expect("a BSUID");
        assert_eq!(user_id.len(), 23, "{user_id}");
        assert!(contact["whatsappUsername"].is_string(), "{contact}");
        assert!(contact["whatsappProfileName"].is_string(), "{contact}");
        assert!(contact["lastWhatsappMessageAt"].is_string(), "{contact}");
    }
}

/// Windows per business number, marketing choices and blocks import, export and import back
/// unchanged in both formats; the contact-level time is the latest window; a second import of
/// the same file changes nothing.
#[tokio::test]
async fn messaging_state_round_trips_in_csv_and_jsonl() {
    let (dir, source) = database().await;
    let windows = json!([
        { "businessPhoneNumberId": "111", "lastInboundAt": "2026-11-24T10:00:00Z" },
        { "businessPhoneNumberId": "222", "lastInboundAt": "2026-11-24T11:00:00Z" },
        { "businessPhoneNumberId": null, "lastInboundAt": "2026-11-23T09:00:00Z" }
    ]);
    let choices = json!([
        { "businessPhoneNumberId": null, "optedOut": true, "at": "2026-11-20T00:00:00Z" },
        { "businessPhoneNumberId": "111", "optedOut": false, "at": "2026-11-21T00:00:00Z" }
    ]);
    let mut file = csv::Writer::from_writer(Vec::new());
    let rows = [
        [
            "phoneNumber",
            "whatsappUserId",
            "blocked",
            "whatsappWindows",
            "marketingPreferences",
        ],
        [
            "+56912345678",
            "",
            "true",
            &windows.to_string(),
            &choices.to_string(),
        ],
        [
            "+56912345679",
            "",
            "false",
            r#"[{"businessPhoneNumberId":"222","lastInboundAt":"2026-11-22T08:00:00Z"}]"#,
            "[]",
        ],
        [
            "",
            "US.77",
            "",
            r#"[{"businessPhoneNumberId":"333","lastInboundAt":"2026-11-22T07:00:00Z"}]"#,
            r#"[{"businessPhoneNumberId":"333","optedOut":true,"at":"2026-11-22T07:30:00Z"}]"#,
        ],
    ];
    for row in rows {
        file.write_record(row).expect("row");
    }
    let text = String::from_utf8(file.into_inner().expect("csv")).expect("utf-8");
    let path = write(&dir, "messaging.csv", &text);
    assert!(ok(&source, &["import", &path]).contains("created 3"));
    let original = contacts(&source);
    let ana = original
        .iter()
        .find(|c| c["phoneNumber"] == "+56912345678")
        .expect("Ana");
    assert_eq!(ana["blocked"], true);
    assert_eq!(ana["lastWhatsappMessageAt"], "2026-11-24T11:00:00.000000Z");
    assert_eq!(
        ana["whatsappWindows"],
        json!([
            { "businessPhoneNumberId": "222", "lastInboundAt": "2026-11-24T11:00:00.000000Z" },
            { "businessPhoneNumberId": "111", "lastInboundAt": "2026-11-24T10:00:00.000000Z" },
            { "businessPhoneNumberId": null, "lastInboundAt": "2026-11-23T09:00:00.000000Z" }
        ])
    );
    assert_eq!(
        ana["marketingPreferences"],
        json!([
            { "businessPhoneNumberId": null, "optedOut": true, "at": "2026-11-20T00:00:00.000000Z" },
            { "businessPhoneNumberId": "111", "optedOut": false, "at": "2026-11-21T00:00:00.000000Z" }
        ])
    );
    let bsuid_only = original
        .iter()
        .find(|c| c["whatsappUserId"] == "US.77")
        .expect("the BSUID-only contact");
    assert_eq!(bsuid_only["blocked"], false);
    assert_eq!(
        bsuid_only["lastWhatsappMessageAt"],
        "2026-11-22T07:00:00.000000Z"
    );
    for format in ["csv", "jsonl"] {
        let file = dir.path().join(format!("messaging-export.{format}"));
        let file = file.display().to_string();
        ok(&source, &["export", "--output", &file]);
        let (_target_dir, target) = database().await;
        assert!(ok(&target, &["import", &file]).contains("created 3"));
        assert_eq!(contacts(&target), original, "{format} round trip");
    }
    // The phone-number rows are matched and found equal: nothing written.
    let phone_rows: String = text.lines().take(3).map(|l| format!("{l}\n")).collect();
    let again = write(&dir, "again.csv", &phone_rows);
    let second = ok(&source, &["import", &again]);
    assert!(second.contains("updated 0, unchanged 2"), "{second}");
    // A changed choice is an update.
    let changed = write(
        &dir,
        "changed.csv",
        "phoneNumber,marketingPreferences\n+56912345679,\"[{\"\"businessPhoneNumberId\"\":null,\"\"optedOut\"\":true,\"\"at\"\":\"\"2026-11-23T00:00:00Z\"\"}]\"\n",
    );
    assert!(ok(&source, &["import", &changed]).contains("updated 1"));
}
