//! Abusive documents are refused before they run, while ordinary operations and GraphiQL's
//! own introspection still work.

mod common;

use common::{TestApp, code};
use reqwest::StatusCode;
use serde_json::{Value, json};

const GRAPHIQL_INTROSPECTION: &str = include_str!("fixtures/graphiql-introspection.graphql");

async fn post_raw(app: &TestApp, body: Value) -> (StatusCode, Value) {
    let response = app
        .client
        .post(app.url("/graphql"))
        .header("accept", "application/graphql-response+json")
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

async fn refused(app: &TestApp, query: String) -> Value {
    let (status, body) = post_raw(app, json!({ "query": query })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.get("data").is_none(), "nothing may run: {body}");
    body["errors"][0].clone()
}

#[tokio::test]
async fn a_thousand_aliases_of_a_full_page_are_refused() {
    let app = TestApp::start().await;
    let aliases: String = (0..1000)
        .map(|i| format!("a{i}: contacts(first: 100) {{ nodes {{ id }} }} "))
        .collect();
    let error = refused(&app, format!("{{ {aliases} }}")).await;
    assert_eq!(code(&error), "GRAPHQL_VALIDATION_FAILED");
}

fn deep_introspection(levels: usize) -> String {
    // __schema and types, then pairs of fields/type, then a leaf.
    let pairs = (levels - 3) / 2;
    format!(
        "{{ __schema {{ types {{ {} name {} }} }} }}",
        "fields { type { ".repeat(pairs),
        "} } ".repeat(pairs)
    )
}

#[tokio::test]
async fn a_forty_deep_introspection_query_is_refused() {
    let app = TestApp::start().await;
    // 40 levels trips the parser's own nesting limit; 21 levels, the introspection depth.
    let error = refused(&app, deep_introspection(40)).await;
    assert!(
        ["GRAPHQL_PARSE_FAILED", "GRAPHQL_VALIDATION_FAILED"].contains(&code(&error)),
        "{error}"
    );
    let error = refused(&app, deep_introspection(21)).await;
    assert_eq!(code(&error), "GRAPHQL_VALIDATION_FAILED");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("deeper than 15"),
        "{error}"
    );
}

#[tokio::test]
async fn a_fifty_thousand_token_document_is_refused() {
    let app = TestApp::start().await;
    let fields = "total ".repeat(50_000);
    let error = refused(&app, format!("{{ contactStats {{ {fields} }} }}")).await;
    assert_eq!(code(&error), "GRAPHQL_VALIDATION_FAILED");
    assert!(error["message"].as_str().unwrap().contains("tokens"));
}

#[tokio::test]
async fn a_batch_of_a_thousand_operations_is_refused() {
    let app = TestApp::start().await;
    let batch: Vec<Value> = (0..1000)
        .map(|_| json!({ "query": "{ contactStats { total } }" }))
        .collect();
    let (status, body) = post_raw(&app, Value::Array(batch)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(code(&body["errors"][0]), "BAD_REQUEST");
}

#[tokio::test]
async fn deep_and_costly_operations_are_refused() {
    let app = TestApp::start().await;
    // Seven levels, one more than allowed; refused before validation even looks at the names.
    let error = refused(&app, "{ a { b { c { d { e { f { g } } } } } } }".to_owned()).await;
    assert!(
        error["message"].as_str().unwrap().contains("deeper than 6"),
        "{error}"
    );
    let roots: String = (0..21)
        .map(|i| format!("s{i}: contactStats {{ total }} "))
        .collect();
    assert_eq!(
        code(&refused(&app, format!("{{ {roots} }}")).await),
        "GRAPHQL_VALIDATION_FAILED"
    );
    // 100 × 60 fields: over the cost limit of 5,000.
    let fields: String = (0..60).map(|i| format!("f{i}: id ")).collect();
    let costly = format!("{{ contacts(first: 100) {{ nodes {{ {fields} }} }} }}");
    let body = json!({ "query": costly });
    let (status, response) = post_raw(&app, body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{response}");
}

#[tokio::test]
async fn graphiql_introspection_and_ordinary_operations_still_work() {
    let app = TestApp::start().await;
    let (status, body) = post_raw(
        &app,
        json!({ "query": GRAPHIQL_INTROSPECTION, "operationName": "IntrospectionQuery" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["__schema"]["queryType"]["name"], "Query");
    let ordinary = "{ contacts(first: 100, filter: { whatsappWindowOpen: true }) { totalCount
        edges { cursor node { id phoneNumber countryCode metadata lastWhatsappMessageAt whatsappWindowOpen } }
        pageInfo { hasNextPage endCursor } } contactStats { total whatsappWindowOpen } }";
    let (status, body) = post_raw(&app, json!({ "query": ordinary })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
}
