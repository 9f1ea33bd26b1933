//! Abusive documents are refused before they run, over HTTP and WebSocket alike, while
//! ordinary operations, fragments and GraphiQL's own introspection still work.

mod common;

use std::{
    alloc::{GlobalAlloc, Layout, System},
    cell::Cell,
    net::{IpAddr, Ipv4Addr},
    sync::Arc,
    time::{Duration, Instant},
};

use async_graphql::Schema;
use common::{TestApp, code};
use contacts_server::{
    auth::{Principal, Scope},
    graphql::{
        Limits, MutationRoot, QueryRoot, SubscriptionRoot,
        checks::Checks,
        documents::{self, CAPACITY_BYTES, MAX_CACHED_TEXT},
        limits::{OperationLimits, check_tokens},
        policy::{Caller, Policy, Transport},
    },
    rate_limit::RateLimit,
};
use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

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

/// Each count is charged by what it may read, not as one field: a document of aliased counts
/// is refused by the complexity limit, with async-graphql's own message and code, while a
/// dashboard's handful of counts still runs.
#[tokio::test]
async fn aliased_counts_are_charged_by_what_they_read() {
    let app = TestApp::start().await;
    let stats = |n: usize, filter: &str| -> String {
        (0..n)
            .map(|i| format!("s{i}: contactStats{filter} {{ total whatsappWindowOpen }} "))
            .collect()
    };
    let filter = "(filter: { countryCode: [\"CL\"], whatsappWindowOpen: true })";
    // 15 aliases (the alias limit) of unfiltered stats: 15 × (1 + 400 + 3) > 5,000.
    for query in [stats(15, ""), stats(7, filter)] {
        let error = refused(&app, format!("{{ {query} }}")).await;
        assert_eq!(code(&error), "GRAPHQL_VALIDATION_FAILED", "{error}");
        assert_eq!(error["message"], "Query is too complex.", "{error}");
    }
    for query in [stats(12, ""), stats(6, filter)] {
        let (status, body) = post_raw(&app, json!({ "query": format!("{{ {query} }}") })).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["data"]["s0"]["total"], 0, "{body}");
    }
    // A filtered `totalCount` is charged once, not once per row of its page; through a
    // fragment it is charged by the connection it is spread in.
    let totals = |n: usize, filter: &str| -> String {
        let pages: String = (0..n)
            .map(|i| format!("p{i}: contacts(first: 100{filter}) {{ ...T }} "))
            .collect();
        format!("{{ {pages} }} fragment T on ContactConnection {{ totalCount }}")
    };
    let error = refused(&app, totals(13, ", filter: { hasPhoneNumber: true }")).await;
    assert_eq!(error["message"], "Query is too complex.", "{error}");
    for query in [
        totals(13, ""),
        totals(10, ", filter: { hasPhoneNumber: true }"),
    ] {
        let (status, body) = post_raw(&app, json!({ "query": query })).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["data"]["p0"]["totalCount"], 0, "{body}");
    }
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

/// `{ ...F0 }` and `fragments` fragments on `on`, each spreading the next one twice: 1.6 KB
/// for 40 fragments, 3 × 2^39 selections once spread.
fn doubled_chain(operation: &str, on: &str, fragments: usize) -> String {
    let mut doc = format!("{operation} {{ ...F0 }}");
    for i in 0..fragments - 1 {
        let next = i + 1;
        doc += &format!(" fragment F{i} on {on} {{ ...F{next} ...F{next} }}");
    }
    doc + &format!(" fragment F{} on {on} {{ __typename }}", fragments - 1)
}

/// The bound on refusing the chains: 50 ms, or 250 ms in an unoptimised build.
fn refusal_bound() -> Duration {
    Duration::from_millis(if cfg!(debug_assertions) { 250 } else { 50 })
}

#[tokio::test]
async fn doubled_fragment_chains_are_refused_in_milliseconds() {
    let app = TestApp::start().await;
    // Opens the connection, so only the refusal is timed.
    let (status, _) = post_raw(&app, json!({ "query": "{ __typename }" })).await;
    assert_eq!(status, StatusCode::OK);
    for fragments in [23, 40] {
        let doc = doubled_chain("query", "Query", fragments);
        assert!(doc.len() < 2_000, "{}", doc.len());
        let started = Instant::now();
        let error = refused(&app, doc).await;
        let took = started.elapsed();
        println!("{fragments} doubled fragments refused over HTTP in {took:?}");
        assert_eq!(code(&error), "GRAPHQL_VALIDATION_FAILED");
        assert!(
            error["message"].as_str().unwrap().contains("spread"),
            "{error}"
        );
        assert!(
            took < refusal_bound(),
            "{fragments} fragments took {took:?}"
        );
    }
}

/// Subscribes to `query` on a new graphql-transport-ws socket: the first error, and the time
/// from sending the subscription to receiving it. (One socket per document: the server writes
/// without TCP_NODELAY, so a second exchange on a socket can wait for a delayed ACK.)
async fn refused_over_websocket(app: &TestApp, query: String) -> (Value, Duration) {
    let mut socket = common::websocket(app, "graphql-transport-ws").await;
    let send = |value: Value| Message::Text(value.to_string().into());
    let init = json!({ "type": "connection_init", "payload": {} });
    socket.send(send(init)).await.unwrap();
    let mut started = Instant::now();
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a message in time");
        let Message::Text(text) = message.expect("open socket").expect("message") else {
            continue;
        };
        let message: Value = serde_json::from_str(&text).unwrap();
        match message["type"].as_str() {
            Some("connection_ack") => {
                let payload = json!({ "query": query });
                let subscribe = json!({ "id": "1", "type": "subscribe", "payload": payload });
                started = Instant::now();
                socket.send(send(subscribe)).await.unwrap();
            }
            Some("ping") => {}
            Some("error") | Some("next") => {
                let took = started.elapsed();
                let payload = &message["payload"];
                let error = payload.get(0).unwrap_or(&payload["errors"][0]);
                return (error.clone(), took);
            }
            other => panic!("unexpected {other:?}: {message}"),
        }
    }
}

#[tokio::test]
async fn doubled_fragment_chains_are_refused_over_websocket() {
    let app = TestApp::start().await;
    for fragments in [23, 40] {
        let doc = doubled_chain("subscription", "Subscription", fragments);
        let (error, took) = refused_over_websocket(&app, doc).await;
        println!("{fragments} doubled fragments refused over WebSocket in {took:?}");
        assert_eq!(code(&error), "GRAPHQL_VALIDATION_FAILED", "{error}");
        assert!(
            took < refusal_bound(),
            "{fragments} fragments took {took:?}"
        );
    }
}

#[tokio::test]
async fn a_comment_ended_by_a_carriage_return_hides_no_tokens() {
    let app = TestApp::start().await;
    // 1,501 tokens after the comment: the counter used to read them as part of it.
    let fields = "total ".repeat(1_495);
    let hidden = format!("# comment\r{{ contactStats {{ {fields} }} }}");
    let error = refused(&app, hidden).await;
    assert_eq!(code(&error), "GRAPHQL_VALIDATION_FAILED");
    assert!(
        error["message"].as_str().unwrap().contains("tokens"),
        "{error}"
    );
    // The same comment before an ordinary document is fine.
    let (status, body) =
        post_raw(&app, json!({ "query": "# hi\r{ contactStats { total } }" })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["contactStats"]["total"], 0);
}

#[tokio::test]
async fn ordinary_fragments_still_work() {
    let app = TestApp::start().await;
    app.create(json!({ "phoneNumber": "+56912345678" })).await;
    let query =
        "query Page { ...Stats contacts(first: 10) { nodes { ...Row ... on Contact { id } } } }
        fragment Stats on Query { contactStats { total } }
        fragment Row on Contact { phoneNumber ...Country }
        fragment Country on Contact { countryCode }";
    let (status, body) = post_raw(&app, json!({ "query": query })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(body["data"]["contactStats"]["total"], 1);
    let node = &body["data"]["contacts"]["nodes"][0];
    assert_eq!(node["phoneNumber"], "+56912345678");
    assert_eq!(node["countryCode"], "CL");
    // Twice, so the second is served from the document cache.
    let (status, again) = post_raw(&app, json!({ "query": query })).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again, body);
}

#[tokio::test]
async fn only_valid_documents_are_cached_and_the_cache_stays_within_its_bytes() {
    let limits = OperationLimits::new(Limits::default());
    let cache = limits.documents();
    let policy = Policy {
        rate_limit: Arc::new(RateLimit::new(0, 0)),
        metrics: Arc::default(),
    };
    // The schema as `schema_builder` composes it, without data: `__type` needs none.
    let schema = Schema::build(QueryRoot, MutationRoot, SubscriptionRoot)
        .extension(Checks::new(policy, limits))
        .finish();
    let reader = Caller {
        principal: Principal {
            id: "key:test".into(),
            scope: Scope::Read,
            expires_at: None,
        },
        address: IpAddr::V4(Ipv4Addr::LOCALHOST),
        transport: Transport::HttpPost,
    };
    let run = |query: &str| {
        let request = async_graphql::Request::new(query).data(reader.clone());
        schema.execute(request)
    };
    let refused = [
        ("{ nope }", "GRAPHQL_VALIDATION_FAILED"),
        ("{ __typename", "GRAPHQL_PARSE_FAILED"),
        (
            "{ a { b { c { d { e { f { g } } } } } } }",
            "GRAPHQL_VALIDATION_FAILED",
        ),
        (
            "{ __typename ...F } fragment F on Query { __typename ...F }",
            "GRAPHQL_VALIDATION_FAILED",
        ),
    ];
    for (query, expected) in refused {
        let response = run(query).await;
        let errors = serde_json::to_value(&response.errors).unwrap();
        assert_eq!(code(&errors[0]), expected, "{query}: {errors}");
    }
    assert_eq!(cache.len(), 0, "refused documents are not kept");
    let response = run("{ __typename }").await;
    assert!(response.errors.is_empty(), "{:?}", response.errors);
    assert_eq!(cache.len(), 1);

    // 1,000 distinct valid documents of 16 KiB and ~500 tokens each.
    let names = "name ".repeat(495);
    for i in 0..1_000 {
        let head = format!("query Q{i} {{ __type(name: \"Query\") {{ {names} }} }} #");
        let query = format!("{head}{}", "x".repeat(MAX_CACHED_TEXT - head.len()));
        let response = run(query.as_str()).await;
        assert!(response.errors.is_empty(), "{:?}", response.errors);
        assert!(cache.weight() <= CAPACITY_BYTES, "{}", cache.weight());
    }
    println!("{} documents cached, {} bytes", cache.len(), cache.weight());
    assert!((50..1_000).contains(&cache.len()), "{}", cache.len());
}

/// Counts the bytes each thread holds, as an allocator would (16-byte granules, 16 bytes of
/// bookkeeping each), to compare a parsed document's real size with the cache's estimate.
struct Counting;

thread_local! {
    static HELD: Cell<isize> = const { Cell::new(0) };
}

fn cost(layout: Layout) -> isize {
    (layout.size().next_multiple_of(16) + 16) as isize
}

// SAFETY: defers to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = HELD.try_with(|held| held.set(held.get() + cost(layout)));
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let _ = HELD.try_with(|held| held.set(held.get() - cost(layout)));
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The tree async-graphql's parser builds, in bytes, for documents at the token limit made of
/// each kind of node, never exceeds the estimate the cache weighs it by.
#[test]
fn the_cache_estimate_bounds_what_a_parsed_document_holds() {
    let n = 240;
    let each = |part: &str| part.repeat(n);
    let shapes = [
        format!("{{ a {{ {} }} }}", each("f ")),
        format!("{{ {} }}", each("a { b } ")),
        format!("{}{}", "{ a ".repeat(60), "}".repeat(60)),
        format!("{{ a(x: [{}]) }}", each("0 ")),
        format!("{{ a(x: [{}]) }}", each("\"s\" ")),
        format!("{{ a(x: [{}]) }}", each("\"\"\"s\"\"\" ")),
        format!(
            "{{ a(x: {{ {} }}) }}",
            (0..n).map(|i| format!("k{i}: 0 ")).collect::<String>()
        ),
        format!(
            "{{ a({}) }}",
            (0..n).map(|i| format!("k{i}: $v ")).collect::<String>()
        ),
        format!("{{ a {} }}", each("@d ")),
        format!("{{ a {} }}", each("@d(if: true) ")),
        format!("{{ {} }} fragment F on Q {{ a }}", each("...F ")),
        format!("{{ {} }}", each("... { a } ")),
        format!(
            "query ({}) {{ a }}",
            (0..n)
                .map(|i| format!("$v{i}: [Int!]! "))
                .collect::<String>()
        ),
        (0..n).map(|i| format!("query Q{i} {{ a }} ")).collect(),
        format!(
            "{{ a }} {}",
            (0..n)
                .map(|i| format!("fragment F{i} on Q {{ a }} "))
                .collect::<String>()
        ),
    ];
    let mut worst = 0.0f64;
    for query in &shapes {
        let tokens = check_tokens(query, usize::MAX).unwrap();
        let before = HELD.with(Cell::get);
        let doc = async_graphql::parser::parse_query(query).expect(query);
        let held = HELD.with(Cell::get) - before;
        drop(doc);
        // The cache also holds the text, as its key.
        let held = held + cost(Layout::for_value(query.as_str()));
        let estimate = documents::estimated_bytes(query, tokens);
        worst = worst.max(held as f64 / estimate as f64);
        println!("{tokens} tokens, {held} bytes held, {estimate} estimated: {query:.40}");
        assert!(held as u64 <= estimate, "{held} > {estimate} for {query}");
    }
    println!("worst: {:.0}% of the estimate", worst * 100.0);
}
