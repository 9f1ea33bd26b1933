//! The test app: the real router served on a real socket, a real migrated database, and a
//! pinned clock the test can move.

#![allow(dead_code)]

pub mod credentials;
pub mod feed;
pub mod logs;
pub mod process;
pub mod raw_ws;
pub mod webhook;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use contacts_server::{
    auth::Authenticator,
    contacts::{ContactService, clock::ManualClock},
    db::{Db, DbOptions},
    events,
    graphql::Limits,
    http::{self, AppState, serve::ServeOptions},
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
    pub database_url: String,
    _dir: TempDir,
}

/// A fresh, empty database for one test: a SQLite file in `dir`, or, when
/// `TEST_DATABASE_URL` names a PostgreSQL server, a new schema there.
pub async fn fresh_database_url(dir: &TempDir) -> String {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(server) if !server.is_empty() => fresh_postgres_schema(&server).await,
        _ => format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("contacts.db").display()
        ),
    }
}

/// True when the suite runs on PostgreSQL.
pub fn on_postgres() -> bool {
    std::env::var("TEST_DATABASE_URL").is_ok_and(|url| url.starts_with("postgres"))
}

async fn fresh_postgres_schema(server: &str) -> String {
    use sea_orm::ConnectionTrait;
    let schema = format!("t_{}", uuid::Uuid::now_v7().simple());
    let admin = sea_orm::Database::connect(server)
        .await
        .expect("TEST_DATABASE_URL must reach PostgreSQL");
    admin
        .execute_unprepared(&format!("CREATE SCHEMA {schema}"))
        .await
        .expect("create schema");
    admin.close().await.expect("close");
    let separator = if server.contains('?') { '&' } else { '?' };
    format!("{server}{separator}options=-c%20search_path%3D{schema}")
}

impl TestApp {
    /// The handle of an app listening on `addr`.
    fn serving(addr: SocketAddr, clock: ManualClock, database_url: String, dir: TempDir) -> Self {
        Self {
            base: format!("http://{addr}"),
            clock,
            client: reqwest::Client::new(),
            database_url,
            _dir: dir,
        }
    }

    /// A fresh app on a fresh database.
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = fresh_database_url(&dir).await;
        Self::start_on(&url, dir).await
    }

    /// Another instance on the same database as `self` (as behind a load balancer).
    pub async fn second_instance(&self) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let clock = self.clock.clone();
        let addr = serve(&self.database_url, clock.clone()).await;
        Self::serving(addr, clock, self.database_url.clone(), dir)
    }

    /// On PostgreSQL another instance on the same database, so that writes through it reach
    /// `self`'s readers only through the database; on SQLite (one process per file) `self`.
    pub async fn other_instance_on_postgres(self: &Arc<Self>) -> Arc<Self> {
        if on_postgres() {
            Arc::new(self.second_instance().await)
        } else {
            self.clone()
        }
    }

    /// [`Self::second_instance`] whose state `configure` adjusts.
    pub async fn second_instance_configured(
        &self,
        configure: impl FnOnce(AppState) -> AppState,
    ) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let clock = self.clock.clone();
        let timeout = Duration::from_secs(30);
        let addr = serve_configured(&self.database_url, clock.clone(), timeout, configure).await;
        Self::serving(addr, clock, self.database_url.clone(), dir)
    }

    /// A fresh app that requires the credentials `auth` accepts.
    pub async fn start_with_auth(auth: Authenticator) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = fresh_database_url(&dir).await;
        let clock = ManualClock::new(at(T0));
        let addr = serve_app(&url, clock.clone(), Duration::from_secs(30), auth).await;
        Self::serving(addr, clock, url, dir)
    }

    /// A fresh app whose state `configure` adjusts.
    pub async fn start_configured(configure: impl FnOnce(AppState) -> AppState) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = fresh_database_url(&dir).await;
        let clock = ManualClock::new(at(T0));
        let addr = serve_configured(&url, clock.clone(), Duration::from_secs(30), configure).await;
        Self::serving(addr, clock, url, dir)
    }

    /// A fresh app served with connection limits `options` and state `configure` adjusts.
    pub async fn start_serving(
        options: ServeOptions,
        configure: impl FnOnce(AppState) -> AppState,
    ) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = fresh_database_url(&dir).await;
        let clock = ManualClock::new(at(T0));
        let addr = serve_configured_with(&url, clock.clone(), options, configure).await;
        Self::serving(addr, clock, url, dir)
    }

    /// A fresh app that gives up on the database after `acquire_timeout`.
    pub async fn start_with_acquire_timeout(acquire_timeout: Duration) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = fresh_database_url(&dir).await;
        let clock = ManualClock::new(at(T0));
        let addr = serve_with(&url, clock.clone(), acquire_timeout).await;
        Self::serving(addr, clock, url, dir)
    }

    /// An app on the database at `url` (migrated at start-up), keeping `dir` alive.
    pub async fn start_on(url: &str, dir: TempDir) -> Self {
        let clock = ManualClock::new(at(T0));
        let addr = serve(url, clock.clone()).await;
        Self::serving(addr, clock, url.to_owned(), dir)
    }

    /// An app on a database opened with `options`, keeping `dir` alive.
    pub async fn start_on_database(options: DbOptions, dir: TempDir) -> Self {
        let clock = ManualClock::new(at(T0));
        let url = options.url.clone();
        let addr = serve_on_database(options, clock.clone(), ServeOptions::default(), |s| s).await;
        Self::serving(addr, clock, url, dir)
    }

    /// `ws://…/graphql/ws`
    pub fn ws_url(&self) -> String {
        format!("{}/graphql/ws", self.base.replacen("http", "ws", 1))
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// POSTs a GraphQL request; returns the response as it came.
    pub async fn send(&self, query: &str, variables: Value) -> reqwest::Response {
        self.client
            .post(self.url("/graphql"))
            .header("content-type", "application/json")
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .expect("request")
    }

    /// POSTs a GraphQL request and returns the JSON body (any status).
    pub async fn post(&self, query: &str, variables: Value) -> (reqwest::StatusCode, Value) {
        let response = self.send(query, variables).await;
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
    serve_with(url, clock, Duration::from_secs(30)).await
}

/// [`serve`] with a given wait for a database connection (short in outage tests).
pub async fn serve_with(url: &str, clock: ManualClock, acquire_timeout: Duration) -> SocketAddr {
    serve_app(url, clock, acquire_timeout, Authenticator::default()).await
}

/// The app requiring the credentials `auth` accepts.
pub async fn serve_app(
    url: &str,
    clock: ManualClock,
    acquire_timeout: Duration,
    auth: Authenticator,
) -> SocketAddr {
    serve_configured(url, clock, acquire_timeout, move |state| {
        state.with_auth(auth)
    })
    .await
}

/// The app with `configure` applied to its state (credentials, rate limit, CORS...).
pub async fn serve_configured(
    url: &str,
    clock: ManualClock,
    acquire_timeout: Duration,
    configure: impl FnOnce(AppState) -> AppState,
) -> SocketAddr {
    serve_app_on(
        url,
        clock,
        acquire_timeout,
        ServeOptions::default(),
        configure,
    )
    .await
}

/// [`serve_configured`] with connection limits `options`.
pub async fn serve_configured_with(
    url: &str,
    clock: ManualClock,
    options: ServeOptions,
    configure: impl FnOnce(AppState) -> AppState,
) -> SocketAddr {
    serve_app_on(url, clock, Duration::from_secs(30), options, configure).await
}

/// The real app and the real accept loop (the binary's) on 127.0.0.1, any free port.
async fn serve_app_on(
    url: &str,
    clock: ManualClock,
    acquire_timeout: Duration,
    serve_options: ServeOptions,
    configure: impl FnOnce(AppState) -> AppState,
) -> SocketAddr {
    let options = database_options(url, acquire_timeout);
    serve_on_database(options, clock, serve_options, configure).await
}

/// The tests' database settings: a small pool, the production defaults otherwise.
pub fn database_options(url: &str, acquire_timeout: Duration) -> DbOptions {
    DbOptions {
        url: url.to_owned(),
        max_connections: 4,
        acquire_timeout,
        busy_timeout: Duration::from_secs(5),
        statement_timeout: Duration::from_secs(15),
        ping_after_idle: contacts_server::db::PING_AFTER_IDLE,
    }
}

/// [`serve_app_on`] on a database opened with `options` (pool settings under test).
pub async fn serve_on_database(
    options: DbOptions,
    clock: ManualClock,
    serve_options: ServeOptions,
    configure: impl FnOnce(AppState) -> AppState,
) -> SocketAddr {
    logs::capture_in_process();
    let db = Db::connect(&options).await.expect("database");
    db.migrate().await.expect("migrations");
    let events = events::start(&db, &options.url).await.expect("event bus");
    let service = ContactService::new(db, Arc::new(clock), events);
    let app = http::app(
        configure(AppState::new(service, Limits::default())),
        Duration::from_secs(30),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let forever = std::future::pending();
    tokio::spawn(http::serve::serve(listener, app, serve_options, forever));
    addr
}

/// A GraphQL operation for `graphql-ws-client`, answered as plain JSON.
#[derive(serde::Serialize)]
pub struct Operation {
    pub query: String,
    pub variables: Value,
}

impl Operation {
    pub fn new(query: &str, variables: Value) -> Self {
        Self {
            query: query.to_owned(),
            variables,
        }
    }
}

impl graphql_ws_client::graphql::GraphqlOperation for Operation {
    type Response = Value;
    type Error = serde_json::Error;

    fn decode(&self, data: Value) -> Result<Value, serde_json::Error> {
        Ok(data)
    }
}

/// A WebSocket to `/graphql/ws` speaking `protocol`.
pub async fn websocket(
    app: &TestApp,
    protocol: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    use tokio_tungstenite::tungstenite::{client::IntoClientRequest, http::HeaderValue};
    let mut request = app.ws_url().into_client_request().expect("request");
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_str(protocol).expect("header"),
    );
    let (socket, response) = tokio_tungstenite::connect_async(request)
        .await
        .expect("WebSocket handshake");
    assert_eq!(response.headers()["sec-websocket-protocol"], protocol);
    socket
}

/// Subscribes with the published `graphql-ws-client` (graphql-transport-ws protocol).
pub async fn subscribe(
    app: &TestApp,
    query: &str,
    variables: Value,
) -> graphql_ws_client::Subscription<Operation> {
    let socket = websocket(app, "graphql-transport-ws").await;
    graphql_ws_client::Client::build(socket)
        .subscribe(Operation::new(query, variables))
        .await
        .expect("subscribe")
}

/// The next message of a subscription, or a failure after a generous bound (the server
/// answers in milliseconds; the bound only keeps a broken build from hanging CI).
pub async fn next_event(subscription: &mut graphql_ws_client::Subscription<Operation>) -> Value {
    use futures_util::StreamExt;
    let next = tokio::time::timeout(Duration::from_secs(10), subscription.next()).await;
    next.expect("no subscription message within 10 s")
        .expect("subscription ended")
        .expect("message")
}

/// Makes the database itself refuse to insert `phone`, as a constraint or a value the
/// validation did not foresee would.
pub async fn refuse_in_database(database_url: &str, phone: &str) {
    let db = sea_orm::Database::connect(database_url)
        .await
        .expect("connect");
    // The number goes into the statement in pieces, so the statement logged at debug level
    // holds no phone number for CI's log search to find.
    let pieces: Vec<String> = phone
        .as_bytes()
        .chunks(4)
        .map(|chunk| format!("'{}'", String::from_utf8_lossy(chunk)))
        .collect();
    let phone = pieces.join(" || ");
    let statements = if on_postgres() {
        vec![
            format!(
                "CREATE FUNCTION refuse_one() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
                 IF NEW.phone_number = {phone} THEN RAISE EXCEPTION 'refused by the test'; \
                 END IF; RETURN NEW; END $$"
            ),
            "CREATE TRIGGER refuse_one BEFORE INSERT ON contacts FOR EACH ROW \
             EXECUTE FUNCTION refuse_one()"
                .to_owned(),
        ]
    } else {
        vec![format!(
            "CREATE TRIGGER refuse_one BEFORE INSERT ON contacts \
             WHEN NEW.phone_number = {phone} BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
        )]
    };
    for sql in statements {
        sea_orm::ConnectionTrait::execute_unprepared(&db, &sql)
            .await
            .expect("create trigger");
    }
    db.close().await.expect("close");
}

/// Statements making a trigger `name` on `table` run for ever on inserts that match (a
/// minute's sleep on PostgreSQL, whose statement deadline ends it; an endless recursive query
/// on SQLite, which its progress handler stops): `postgres_when` and `sqlite_when` are the
/// condition on `NEW` in each dialect.
pub fn endless_insert_trigger(
    name: &str,
    table: &str,
    postgres_when: &str,
    sqlite_when: &str,
) -> Vec<String> {
    if on_postgres() {
        vec![
            format!(
                "CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
                 IF {postgres_when} THEN PERFORM pg_sleep(60); END IF; RETURN NEW; END $$"
            ),
            format!(
                "CREATE TRIGGER {name} BEFORE INSERT ON {table} FOR EACH ROW \
                 EXECUTE FUNCTION {name}()"
            ),
        ]
    } else {
        vec![format!(
            "CREATE TRIGGER {name} BEFORE INSERT ON {table} WHEN {sqlite_when} BEGIN \
             SELECT count(*) FROM (WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL \
             SELECT x + 1 FROM r) SELECT x FROM r); END"
        )]
    }
}
