//! The README's GraphQL examples and GraphiQL's example tab run as written, in order, on a
//! fresh server: a newcomer's first steps succeed, phone-less messages and calls included.

mod common;

use common::TestApp;
use serde_json::json;

/// The README's ```graphql blocks, minus subscriptions (they need a contact id pasted in).
fn readme_operations() -> Vec<String> {
    let readme = include_str!("../README.md");
    readme
        .split("```graphql\n")
        .skip(1)
        .filter_map(|rest| rest.split("```").next())
        .filter(|block| !block.trim_start().starts_with("subscription"))
        .map(str::to_owned)
        .collect()
}

/// GraphiQL's default document, from the JavaScript array of quoted lines in init.js.
fn graphiql_document() -> String {
    let script = include_str!("../assets/graphiql/init.js");
    let start = script.find("var DEFAULT_QUERY = [").expect("DEFAULT_QUERY");
    let end = start + script[start..].find("].join").expect("its end");
    script[start..end]
        .lines()
        .skip(1)
        .filter_map(|line| {
            let line = line.trim().trim_end_matches(',');
            line.strip_prefix('\'')?
                .strip_suffix('\'')
                .map(str::to_owned)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn every_readme_example_runs() {
    let app = TestApp::start().await;
    let operations = readme_operations();
    assert!(
        operations
            .iter()
            .any(|op| op.contains("RecordPhoneLessMessage")),
        "the README shows a phone-less inbound message"
    );
    assert!(
        operations.iter().any(|op| op.contains("kind: CALL")),
        "and a call"
    );
    for operation in operations {
        app.data(&operation, json!({})).await;
    }
    let query = "{ contactByWhatsappUserId(whatsappUserId: \"US.13491208655302741918\") {
        phoneNumber whatsappUsername } }";
    let found = app.data(query, json!({})).await;
    assert_eq!(
        found["contactByWhatsappUserId"],
        json!({ "phoneNumber": "+14155550101", "whatsappUsername": "ana.w" })
    );
}

#[tokio::test]
async fn every_graphiql_example_runs_by_name() {
    let app = TestApp::start().await;
    let document = graphiql_document();
    let names = [
        "OpenWindows",
        "CreateContact",
        "RecordInbound",
        "RecordPhoneLessMessage",
        "RecordCall",
        "Stats",
    ];
    for name in names {
        assert!(document.contains(name), "{name} is in the example tab");
        let (status, body) = app
            .client
            .post(app.url("/graphql"))
            .json(&json!({ "query": document, "operationName": name }))
            .send()
            .await
            .map(|r| (r.status(), r))
            .expect("request");
        let body: serde_json::Value = body.json().await.expect("JSON");
        assert_eq!(status, 200, "{name}: {body}");
        assert!(body.get("errors").is_none(), "{name}: {body}");
    }
}
