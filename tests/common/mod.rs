//! The test app: the real router served on a real socket, a real migrated database, and a
//! pinned clock the test can move.

#![allow(dead_code)]

use std::{net::SocketAddr, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use contacts_server::{
    contacts::{ContactService, clock::ManualClock},
    db::{Db, DbOptions},
    events,
    http::{self, AppState},
};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::net::TcpListener;

/// Where every test's clock starts.
pub const T0: &str = "2026-11-24T12:00:00Z";

pub fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .expect("test timestamp")
        .with_timezone(&Utc)
}

pub struct TestApp {
    pub base: String,
    pub clock: ManualClock,
    pub client: reqwest::Client,
    pub db_path: std::path::PathBuf,
    _dir: TempDir,
}

impl TestApp {
    /// A fresh app on a fresh SQLite file.
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let db_path = dir.path().join("contacts.db");
        let url = format!("sqlite://{}?mode=rwc", db_path.display());
        let clock = ManualClock::new(at(T0));
        let addr = serve(&url, clock.clone()).await;
        Self {
            base: format!("http://{addr}"),
            clock,
            client: reqwest::Client::new(),
            db_path,
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// POSTs a GraphQL request and returns the JSON body (any status).
    pub async fn post(&self, query: &str, variables: Value) -> (reqwest::StatusCode, Value) {
        let response = self
            .client
            .post(self.url("/graphql"))
            .header("content-type", "application/json")
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .expect("request");
        let status = response.status();
        let body = response.json::<Value>().await.expect("JSON body");
        (status, body)
    }

    /// POSTs a GraphQL request that must succeed without errors; returns `data`.
    pub async fn data(&self, query: &str, variables: Value) -> Value {
        let (status, body) = self.post(query, variables).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.get("errors").is_none(), "unexpected errors: {body}");
        body["data"].clone()
    }

    /// POSTs a GraphQL request that must fail; returns its first error.
    pub async fn error(&self, query: &str, variables: Value) -> Value {
        let (_, body) = self.post(query, variables).await;
        body["errors"][0].clone()
    }

    /// Creates a contact and returns it (id, phoneNumber, ...).
    pub async fn create(&self, input: Value) -> Value {
        let data = self.data(CREATE, json!({ "input": input })).await;
        data["createContact"]["contact"].clone()
    }
}

pub const CONTACT_FIELDS: &str = "id phoneNumber countryCode lastWhatsappMessageAt whatsappWindowOpen \
    whatsappWindowExpiresAt metadata createdAt updatedAt";

pub const CREATE: &str = "mutation($input: CreateContactInput!) { createContact(input: $input) { contact { \
    id phoneNumber countryCode lastWhatsappMessageAt whatsappWindowOpen whatsappWindowExpiresAt metadata \
    createdAt updatedAt } } }";

/// `extensions.code` of an error.
pub fn code(error: &Value) -> &str {
    error["extensions"]["code"].as_str().unwrap_or("<no code>")
}

/// Serves the real app on 127.0.0.1 with the given database and clock.
pub async fn serve(url: &str, clock: ManualClock) -> SocketAddr {
    let options = DbOptions {
        url: url.to_owned(),
        max_connections: 4,
        acquire_timeout: Duration::from_secs(30),
        busy_timeout: Duration::from_secs(5),
    };
    let db = Db::connect(&options).await.expect("database");
    db.migrate().await.expect("migrations");
    let events = events::start(&db, url).await.expect("event bus");
    let service = ContactService::new(db, Arc::new(clock), events);
    let app = http::app(AppState::new(service), Duration::from_secs(30));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}
