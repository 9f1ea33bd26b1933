//! GraphQL over HTTP: media types, methods, status codes, body limit and the other routes.

mod common;

use common::{TestApp, code};
use reqwest::{StatusCode, header};
use serde_json::{Value, json};

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

async fn post_raw(
    app: &TestApp,
    content_type: &str,
    accept: Option<&str>,
    body: Vec<u8>,
) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url("/graphql"))
        .header(header::CONTENT_TYPE, content_type)
        .body(body);
    if let Some(accept) = accept {
        request = request.header(header::ACCEPT, accept);
    }
    request.send().await.expect("request")
}

async fn total(app: &TestApp) -> Value {
    app.data("{ contactStats { total } }", json!({})).await["contactStats"]["total"].clone()
}

fn create_body() -> Vec<u8> {
    json!({ "query": "mutation { createContact(input: { phoneNumber: \"+56912345678\" }) { contact { id } } }" })
        .to_string()
        .into_bytes()
}

#[tokio::test]
async fn post_without_json_content_type_is_415_and_runs_nothing() {
    let app = TestApp::start().await;
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        let response = post_raw(&app, content_type, None, create_body()).await;
        assert_eq!(
            response.status(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type}"
        );
        let body: Value = response.json().await.expect("JSON error body");
        assert_eq!(code(&body["errors"][0]), "UNSUPPORTED_MEDIA_TYPE");
    }
    assert_eq!(total(&app).await, 0);
    let response = post_raw(&app, "application/json; charset=utf-8", None, create_body()).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(total(&app).await, 1);
}

#[tokio::test]
async fn mutation_over_get_is_405_and_never_runs() {
    let app = TestApp::start().await;
    let query =
        "mutation { createContact(input: { phoneNumber: \"+56912345678\" }) { contact { id } } }";
    let response = app
        .client
        .get(app.url("/graphql"))
        .query(&[("query", query)])
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()[header::ALLOW], "POST");
    assert_eq!(total(&app).await, 0);
}

#[tokio::test]
async fn query_over_get_runs() {
    let app = TestApp::start().await;
    app.create(json!({ "phoneNumber": "+56912345678" })).await;
    let query =
        "query Count($cc: [String!]) { contactStats(filter: { countryCode: $cc }) { total } }";
    let params = [
        ("query", query),
        ("variables", "{\"cc\":[\"CL\"]}"),
        ("operationName", "Count"),
    ];
    let response = app
        .client
        .get(app.url("/graphql"))
        .query(&params)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["data"]["contactStats"]["total"], 1);
}

#[tokio::test]
async fn get_with_bad_variables_is_400() {
    let app = TestApp::start().await;
    let params = [
        ("query", "{ contactStats { total } }"),
        ("variables", "not json"),
    ];
    let response = app
        .client
        .get(app.url("/graphql"))
        .query(&params)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn browser_get_serves_graphiql() {
    let app = TestApp::start().await;
    let response = app
        .client
        .get(app.url("/graphql"))
        .header(header::ACCEPT, "text/html,*/*;q=0.8")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        response
            .headers()
            .contains_key(header::CONTENT_SECURITY_POLICY)
    );
    let html = response.text().await.expect("body");
    assert!(html.contains("/graphiql/assets/graphiql.min.js"));
    assert!(
        !html.contains("https://"),
        "the page must load nothing from another origin"
    );
}

#[tokio::test]
async fn unacceptable_accept_is_406() {
    let app = TestApp::start().await;
    let body = json!({ "query": "{ contactStats { total } }" })
        .to_string()
        .into_bytes();
    let response = post_raw(&app, "application/json", Some("text/csv"), body).await;
    assert_eq!(response.status(), StatusCode::NOT_ACCEPTABLE);
}

#[tokio::test]
async fn parse_error_is_400_under_graphql_response_json() {
    let app = TestApp::start().await;
    let body = json!({ "query": "{ contacts { " }).to_string().into_bytes();
    let response = post_raw(&app, "application/json", Some(GRAPHQL_RESPONSE), body).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(
        response.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with(GRAPHQL_RESPONSE)
    );
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(code(&body["errors"][0]), "GRAPHQL_PARSE_FAILED");
    assert!(
        body.get("data").is_none(),
        "a request error has no data entry: {body}"
    );
}

#[tokio::test]
async fn validation_error_is_400_under_graphql_response_json() {
    let app = TestApp::start().await;
    let body = json!({ "query": "{ contacts { nope } }" })
        .to_string()
        .into_bytes();
    let response = post_raw(&app, "application/json", Some(GRAPHQL_RESPONSE), body).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(code(&body["errors"][0]), "GRAPHQL_VALIDATION_FAILED");
}

#[tokio::test]
async fn request_errors_are_200_under_legacy_json() {
    let app = TestApp::start().await;
    for query in ["{ contacts { ", "{ contacts { nope } }"] {
        let body = json!({ "query": query }).to_string().into_bytes();
        let response = post_raw(&app, "application/json", Some("application/json"), body).await;
        assert_eq!(response.status(), StatusCode::OK, "{query}");
        assert!(
            response.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("application/json")
        );
        let body: Value = response.json().await.expect("JSON");
        assert!(body["errors"][0]["extensions"]["code"].is_string());
    }
}

#[tokio::test]
async fn resolver_errors_are_200_with_data_under_graphql_response_json() {
    let app = TestApp::start().await;
    let query = "mutation { deleteContact(id: \"01a21129-9a1f-76f2-812b-f8c0d93f783d\") { deletedContactId } }";
    let body = json!({ "query": query }).to_string().into_bytes();
    let response = post_raw(&app, "application/json", Some(GRAPHQL_RESPONSE), body).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(code(&body["errors"][0]), "NOT_FOUND");
    assert!(body.get("data").is_some());
}

#[tokio::test]
async fn body_over_1_mib_is_413() {
    let app = TestApp::start().await;
    let padding = " ".repeat(1536 * 1024);
    let body = json!({ "query": format!("{{ contactStats {{ total }} }}{padding}") })
        .to_string()
        .into_bytes();
    let response = post_raw(&app, "application/json", None, body).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(code(&body["errors"][0]), "PAYLOAD_TOO_LARGE");
}

#[tokio::test]
async fn body_just_under_1_mib_is_served() {
    let app = TestApp::start().await;
    let padding = " ".repeat(1024 * 1024 - 200);
    let body = json!({ "query": format!("{{ contactStats {{ total }} }}{padding}") })
        .to_string()
        .into_bytes();
    assert!(body.len() < 1024 * 1024);
    let response = post_raw(&app, "application/json", None, body).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn malformed_json_and_batches_are_400() {
    let app = TestApp::start().await;
    for body in [
        "{not json",
        "[{\"query\":\"{ contactStats { total } }\"}]",
        "{\"variables\":{}}",
    ] {
        let response = post_raw(&app, "application/json", None, body.as_bytes().to_vec()).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        let body: Value = response.json().await.expect("JSON");
        assert_eq!(code(&body["errors"][0]), "BAD_REQUEST");
    }
}

#[tokio::test]
async fn subscription_over_http_is_a_request_error() {
    let app = TestApp::start().await;
    let body = json!({ "query": "subscription { contactEvents { kind } }" })
        .to_string()
        .into_bytes();
    let response = post_raw(&app, "application/json", Some(GRAPHQL_RESPONSE), body).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn root_redirects_to_graphql() {
    let app = TestApp::start().await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let response = client.get(app.url("/")).send().await.expect("request");
    assert!(response.status().is_redirection());
    assert_eq!(response.headers()[header::LOCATION], "/graphql");
}

#[tokio::test]
async fn health_and_readiness_answer() {
    let app = TestApp::start().await;
    for path in ["/healthz", "/readyz"] {
        let response = app.client.get(app.url(path)).send().await.expect("request");
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn metrics_count_operations_and_show_pools() {
    let app = TestApp::start().await;
    app.create(json!({ "phoneNumber": "+56912345678" })).await;
    app.error("{ contact(id: \"x\") { id } }", json!({})).await;
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("request")
        .text()
        .await
        .expect("body");
    assert!(
        text.contains("graphql_requests_total{operation_type=\"mutation\",outcome=\"ok\"} 1"),
        "{text}"
    );
    assert!(
        text.contains(
            "graphql_requests_total{operation_type=\"query\",outcome=\"client_error\"} 1"
        ),
        "{text}"
    );
    assert!(
        text.contains("graphql_request_duration_seconds_bucket"),
        "{text}"
    );
    // SQLite has one writer connection; PostgreSQL one pool of DATABASE_MAX_CONNECTIONS.
    let pool = if common::on_postgres() {
        "db_pool_connections{role=\"primary\",state=\"max\"} 4"
    } else {
        "db_pool_connections{role=\"write\",state=\"max\"} 1"
    };
    assert!(text.contains(pool), "{text}");
}

#[tokio::test]
async fn unknown_route_is_a_json_404() {
    let app = TestApp::start().await;
    let response = app
        .client
        .get(app.url("/nope"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(code(&body["errors"][0]), "NOT_FOUND");
}

#[tokio::test]
async fn internal_errors_are_generic_and_leak_no_sql() {
    use sea_orm::ConnectionTrait;
    let app = TestApp::start().await;
    // Break the database under the running server.
    let db = sea_orm::Database::connect(&app.database_url)
        .await
        .expect("connect");
    // PostgreSQL needs CASCADE for the tables that refer to contacts; SQLite has no such word.
    let drop = if common::on_postgres() {
        "DROP TABLE contacts CASCADE"
    } else {
        "DROP TABLE contacts"
    };
    db.execute_unprepared(drop).await.expect("drop");
    let (status, body) = app.post("{ contactStats { total } }", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let error = &body["errors"][0];
    assert_eq!(code(error), "INTERNAL_SERVER_ERROR");
    assert_eq!(error["message"], "internal server error");
    let text = body.to_string();
    for leak in ["contacts", "SELECT", "table", "sqlx"] {
        assert!(!text.contains(leak), "{leak} leaked: {text}");
    }
}
