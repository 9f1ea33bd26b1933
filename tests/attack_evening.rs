//! Attacks on the evening changes: the schema's one extension (policy, limits and error codes
//! merged) on every transport and credential, the document cache's second run, and the
//! SQLite read connection that writes a select's limit into its SQL text.

mod common;

use std::time::Duration;

use chrono::TimeDelta;
use common::{
    TestApp, code,
    credentials::{Credential, READ_KEY, SECRET, jwt_signed, secured},
    raw_ws::{self, Socket, receive, send},
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, http::HeaderValue};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Transport {
    Post,
    Get,
    GraphqlTransportWs,
    LegacyWs,
}

const TRANSPORTS: [Transport; 4] = [
    Transport::Post,
    Transport::Get,
    Transport::GraphqlTransportWs,
    Transport::LegacyWs,
];

impl Transport {
    fn protocol(self) -> &'static str {
        match self {
            Self::LegacyWs => "graphql-ws",
            _ => "graphql-transport-ws",
        }
    }
}

/// A socket on `protocol` after `connection_init` with `payload`, or the refusal.
async fn init(app: &TestApp, protocol: &str, payload: Value) -> Result<Socket, Value> {
    let (socket, reply) = raw_ws::init(app, protocol, payload).await;
    if reply["type"] == "connection_ack" {
        Ok(socket)
    } else {
        Err(reply)
    }
}

/// Starts operation `id` in either protocol's words.
async fn start(socket: &mut Socket, protocol: &str, id: &str, query: &str, variables: &Value) {
    let kind = if protocol == "graphql-ws" {
        "start"
    } else {
        "subscribe"
    };
    let payload = json!({ "query": query, "variables": variables });
    send(
        socket,
        json!({ "id": id, "type": kind, "payload": payload }),
    )
    .await;
}

/// The first payload or error sent for an operation (either protocol), as a response body.
async fn result(socket: &mut Socket) -> Value {
    let mut message = receive(socket).await;
    // The `complete` of an earlier operation on the same socket.
    while message["type"] == "complete" {
        message = receive(socket).await;
    }
    match message["type"].as_str() {
        Some("next" | "data") => message["payload"].clone(),
        Some("error") => {
            let payload = &message["payload"];
            let errors = if payload.is_array() {
                payload.clone()
            } else {
                json!([payload])
            };
            json!({ "errors": errors })
        }
        _ => json!({ "errors": [{ "message": message.to_string() }] }),
    }
}

/// "ok", or the first error's code: what an operation's answer says.
fn outcome(body: &Value) -> String {
    match body["errors"].as_array() {
        Some(errors) if !errors.is_empty() => code(&errors[0]).to_owned(),
        _ if body["data"].is_object() => "ok".to_owned(),
        _ => format!("unexpected {body}"),
    }
}

/// Runs one operation over `transport` with `credential`; its answer, with the HTTP status
/// first ("ws" over a socket, "refused" when the socket was refused at `connection_init`).
async fn run(
    app: &TestApp,
    transport: Transport,
    credential: Credential,
    query: &str,
    variables: Value,
) -> (String, Value) {
    run_named(app, transport, credential, query, variables, None).await
}

/// Operation `operation` of `doc`, without variables, with the read key.
async fn read_named(
    app: &TestApp,
    transport: Transport,
    doc: &str,
    operation: &str,
) -> (String, Value) {
    run_named(
        app,
        transport,
        Credential::ReadKey,
        doc,
        json!({}),
        Some(operation),
    )
    .await
}

/// [`run`] with an `operationName`.
async fn run_named(
    app: &TestApp,
    transport: Transport,
    credential: Credential,
    query: &str,
    variables: Value,
    operation: Option<&str>,
) -> (String, Value) {
    let request = match transport {
        Transport::Post => app
            .client
            .post(app.url("/graphql"))
            .json(&json!({ "query": query, "variables": variables, "operationName": operation })),
        Transport::Get => {
            let mut params = vec![
                ("query", query.to_owned()),
                ("variables", variables.to_string()),
            ];
            if let Some(name) = operation {
                params.push(("operationName", name.to_owned()));
            }
            app.client.get(app.url("/graphql")).query(&params)
        }
        Transport::GraphqlTransportWs | Transport::LegacyWs => {
            let protocol = transport.protocol();
            let mut socket = match init(app, protocol, credential.payload()).await {
                Ok(socket) => socket,
                Err(refusal) => return ("refused".into(), refusal),
            };
            let kind = if protocol == "graphql-ws" {
                "start"
            } else {
                "subscribe"
            };
            let payload =
                json!({ "query": query, "variables": variables, "operationName": operation });
            send(
                &mut socket,
                json!({ "id": "1", "type": kind, "payload": payload }),
            )
            .await;
            return ("ws".into(), result(&mut socket).await);
        }
    };
    let request = match credential.header() {
        Some((name, value)) => request.header(name, value),
        None => request,
    };
    let response = request.send().await.unwrap();
    let status = response.status().as_u16().to_string();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(json!({ "text": text }));
    (status, body)
}

/// `run`, summed up as "status outcome".
async fn answer(
    app: &TestApp,
    transport: Transport,
    credential: Credential,
    query: &str,
    variables: Value,
) -> String {
    let (status, body) = run(app, transport, credential, query, variables).await;
    if status == "refused" {
        return status;
    }
    format!("{status} {}", outcome(&body))
}

async fn contacts_total(app: &TestApp) -> Value {
    let (_, body) = run(
        app,
        Transport::Post,
        Credential::ReadKey,
        "{ contactStats { total } }",
        json!({}),
    )
    .await;
    body["data"]["contactStats"]["total"].clone()
}

const CREATE: &str = "mutation($phone: String!) { createContact(input: { phoneNumber: $phone }) \
    { contact { id } } }";
const QUERY: &str = "{ contactStats { total } }";
const WINDOW: &str = "subscription($id: ID!) { whatsappWindow(contactId: $id) { open } }";

/// What each credential gets for a query, a mutation and a subscription over `transport`.
fn expected(transport: Transport, credential: Credential) -> [&'static str; 3] {
    use Credential::*;
    let valid = matches!(credential, ReadKey | WriteKey | ReadJwt | WriteJwt);
    let writes = matches!(credential, WriteKey | WriteJwt);
    match transport {
        _ if !valid && matches!(transport, Transport::Post | Transport::Get) => {
            ["401 UNAUTHENTICATED"; 3]
        }
        _ if !valid => ["refused"; 3],
        Transport::Post if writes => ["200 ok", "200 ok", "200 BAD_REQUEST"],
        Transport::Post => ["200 ok", "403 FORBIDDEN", "200 BAD_REQUEST"],
        Transport::Get if writes => ["200 ok", "405 METHOD_NOT_ALLOWED", "200 BAD_REQUEST"],
        Transport::Get => ["200 ok", "403 FORBIDDEN", "200 BAD_REQUEST"],
        _ if writes => ["ws ok", "ws ok", "ws ok"],
        _ => ["ws ok", "ws FORBIDDEN", "ws ok"],
    }
}

/// Every credential × every transport × query, mutation and subscription: the answers of
/// the rules as they stood before the extensions were merged, and exactly the writes the
/// write credentials made over POST and WebSocket.
#[tokio::test]
async fn every_credential_on_every_transport_gets_the_rules_answer() {
    let app = secured(|state| state).await;
    let (_, created) = run(
        &app,
        Transport::Post,
        Credential::WriteKey,
        CREATE,
        json!({ "phone": "+56911111111" }),
    )
    .await;
    let id = created["data"]["createContact"]["contact"]["id"].clone();
    assert!(id.is_string(), "{created}");
    let mut phone = 56_922_000_000_u64;
    let mut writes = 1;
    let mut wrong = Vec::new();
    for transport in TRANSPORTS {
        for credential in Credential::ALL {
            phone += 1;
            let got = [
                answer(&app, transport, credential, QUERY, json!({})).await,
                answer(
                    &app,
                    transport,
                    credential,
                    CREATE,
                    json!({ "phone": format!("+{phone}") }),
                )
                .await,
                answer(&app, transport, credential, WINDOW, json!({ "id": id })).await,
            ];
            let want = expected(transport, credential);
            writes += usize::from(got[1].ends_with(" ok"));
            if got.iter().map(String::as_str).ne(want) {
                wrong.push(format!(
                    "{transport:?} {credential:?}: {got:?}, wanted {want:?}"
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    // Write key and write JWT over POST and both socket protocols, and the first contact.
    assert_eq!(writes, 7);
    assert_eq!(contacts_total(&app).await, json!(7));
}

/// `{ ...F0 }` and `fragments` fragments, each spreading the next one twice.
fn doubled_chain(fragments: usize) -> String {
    let mut doc = "query { ...F0 }".to_owned();
    for i in 0..fragments - 1 {
        let next = i + 1;
        doc += &format!(" fragment F{i} on Query {{ ...F{next} ...F{next} }}");
    }
    doc + &format!(" fragment F{} on Query {{ __typename }}", fragments - 1)
}

/// Refused documents: the code (and `field`) each transport answers, twice (the second time
/// after the same text ran once), are the ones POST answers, which are these.
#[tokio::test]
async fn every_refusal_has_the_same_code_on_every_transport_twice() {
    let app = secured(|state| state).await;
    let aliases: String = (0..16)
        .map(|i| format!("a{i}: contactStats {{ total }} "))
        .collect();
    let fields: String = (0..60).map(|i| format!("f{i}: id ")).collect();
    let cases = [
        (
            "{ contactStats { total }",
            json!({}),
            "GRAPHQL_PARSE_FAILED",
        ),
        ("{ nope }", json!({}), "GRAPHQL_VALIDATION_FAILED"),
        (
            "{ contacts(first: \"x\") { nodes { id } } }",
            json!({}),
            "BAD_USER_INPUT",
        ),
        (
            "query($f: Int) { contacts(first: $f) { nodes { id } } }",
            json!({ "f": "x" }),
            "BAD_USER_INPUT",
        ),
        (
            "{ contacts(first: 1000) { nodes { id } } }",
            json!({}),
            "BAD_USER_INPUT",
        ),
        (
            "{ contact(id: \"nope\") { id } }",
            json!({}),
            "BAD_USER_INPUT",
        ),
        (
            "{ a { b { c { d { e { f { g } } } } } } }",
            json!({}),
            "GRAPHQL_VALIDATION_FAILED",
        ),
        (
            &format!("{{ {aliases} }}"),
            json!({}),
            "GRAPHQL_VALIDATION_FAILED",
        ),
        (
            &format!("{{ contactStats {{ {} }} }}", "total ".repeat(1_500)),
            json!({}),
            "GRAPHQL_VALIDATION_FAILED",
        ),
        (
            &format!("{{ contacts(first: 100) {{ nodes {{ {fields} }} }} }}"),
            json!({}),
            "GRAPHQL_VALIDATION_FAILED",
        ),
        (&doubled_chain(40), json!({}), "GRAPHQL_VALIDATION_FAILED"),
    ];
    let mut wrong = Vec::new();
    for (query, variables, wanted) in &cases {
        let (_, body) = run(
            &app,
            Transport::Post,
            Credential::WriteKey,
            query,
            variables.clone(),
        )
        .await;
        let reference = &body["errors"][0];
        if code(reference) != *wanted {
            wrong.push(format!("POST {query:.60}: {reference}, wanted {wanted}"));
        }
        if *wanted == "BAD_USER_INPUT" && !reference["extensions"]["field"].is_string() {
            wrong.push(format!("POST {query:.60}: {reference} names no field"));
        }
        for transport in TRANSPORTS {
            for round in 0..2 {
                let (_, body) = run(
                    &app,
                    transport,
                    Credential::WriteKey,
                    query,
                    variables.clone(),
                )
                .await;
                let error = &body["errors"][0];
                let same = code(error) == code(reference)
                    && error["extensions"]["field"] == reference["extensions"]["field"];
                if !same {
                    wrong.push(format!(
                        "{transport:?} round {round} {query:.60}: {error}, POST said {reference}"
                    ));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// Fifteen aliased pages whose size is a variable: one run with `first: 1` puts the text in
/// the document cache; the same text with `first: 100` costs 15 × 100 × 4 and must still be
/// refused, on every transport, and `first: 1` still runs.
#[tokio::test]
async fn a_cached_document_is_complexity_checked_with_its_variables_on_every_transport() {
    let app = secured(|state| state).await;
    let pages: String = (0..15)
        .map(|i| format!("p{i}: contacts(first: $n) {{ nodes {{ id phoneNumber countryCode }} }} "))
        .collect();
    let query = format!("query($n: Int) {{ {pages} }}");
    for transport in TRANSPORTS {
        for (n, wanted) in [(1, "ok"), (100, "GRAPHQL_VALIDATION_FAILED"), (1, "ok")] {
            let (_, body) = run(
                &app,
                transport,
                Credential::ReadKey,
                &query,
                json!({ "n": n }),
            )
            .await;
            assert_eq!(outcome(&body), wanted, "{transport:?} first {n}: {body}");
        }
    }
}

/// One document holding a query, a mutation and a two-field subscription: once its query ran
/// (the text is cached), the mutation is still refused to a read credential everywhere and
/// over GET to a write one, and the subscription is still refused its second root field.
#[tokio::test]
async fn a_cached_document_is_authorised_again_for_each_of_its_operations() {
    let app = secured(|state| state).await;
    let doc = "query A { contactStats { total } } \
        mutation B { createContact(input: { phoneNumber: \"+56933333333\" }) { contact { id } } } \
        subscription S { a: contactEvents { kind } b: contactEvents { kind } }";
    let mut wrong = Vec::new();
    for transport in TRANSPORTS {
        let ws = matches!(
            transport,
            Transport::GraphqlTransportWs | Transport::LegacyWs
        );
        let checks = [
            (Credential::ReadKey, "A", "ok"),
            (Credential::ReadKey, "B", "FORBIDDEN"),
            (Credential::ReadJwt, "B", "FORBIDDEN"),
            (
                Credential::WriteKey,
                "S",
                if ws {
                    "GRAPHQL_VALIDATION_FAILED"
                } else {
                    "BAD_REQUEST"
                },
            ),
            (
                Credential::WriteKey,
                "B",
                if transport == Transport::Get {
                    "METHOD_NOT_ALLOWED"
                } else {
                    "skip"
                },
            ),
        ];
        for (credential, operation, wanted) in checks {
            if wanted == "skip" {
                continue;
            }
            let (_, body) =
                run_named(&app, transport, credential, doc, json!({}), Some(operation)).await;
            if outcome(&body) != wanted {
                wrong.push(format!("{transport:?} {credential:?} {operation}: {body}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    assert_eq!(contacts_total(&app).await, json!(0));
}

/// The rate limit counts an operation before its document is parsed, on every transport:
/// three unparseable documents use up a burst of three, and a fourth, valid one is refused.
#[tokio::test]
async fn unparseable_documents_use_up_the_rate_limit_on_every_transport() {
    for transport in [Transport::Post, Transport::Get] {
        let app = secured(|state| state.with_rate_limit(1, 3)).await;
        for _ in 0..3 {
            let (_, body) = run(&app, transport, Credential::ReadKey, "{ {", json!({})).await;
            assert_eq!(
                outcome(&body),
                "GRAPHQL_PARSE_FAILED",
                "{transport:?}: {body}"
            );
        }
        let (_, body) = run(&app, transport, Credential::ReadKey, QUERY, json!({})).await;
        assert_eq!(outcome(&body), "RATE_LIMITED", "{transport:?}: {body}");
    }
    // On one socket (a new socket per operation would be refused at the upgrade instead).
    for protocol in ["graphql-transport-ws", "graphql-ws"] {
        let app = secured(|state| state.with_rate_limit(1, 3)).await;
        let payload = Credential::ReadKey.payload();
        let mut socket = init(&app, protocol, payload).await.expect("accepted");
        let mut answers = Vec::new();
        for id in 0..4 {
            let query = if id < 3 { "{ {" } else { QUERY };
            start(&mut socket, protocol, &id.to_string(), query, &json!({})).await;
            answers.push(outcome(&result(&mut socket).await));
        }
        let wanted = [
            "GRAPHQL_PARSE_FAILED",
            "GRAPHQL_PARSE_FAILED",
            "GRAPHQL_PARSE_FAILED",
            "RATE_LIMITED",
        ];
        assert_eq!(answers, wanted, "{protocol}");
    }
}

/// A socket opened with a write JWT that then expires runs nothing more, on both protocols,
/// even when the operation arrives before the connection is closed.
#[tokio::test]
async fn an_expired_jwt_on_an_open_socket_writes_nothing() {
    let app = secured(|state| state).await;
    for (round, protocol) in ["graphql-transport-ws", "graphql-ws"]
        .into_iter()
        .enumerate()
    {
        let expires_in = 60 + 91 * i64::try_from(round).unwrap();
        let token = format!("Bearer {}", jwt_signed(SECRET, "read write", expires_in));
        let mut socket = init(&app, protocol, json!({ "Authorization": token }))
            .await
            .expect("accepted while valid");
        // exp is 60 s on; with the 30 s leeway the credential ends 90 s on.
        app.clock.advance(TimeDelta::seconds(91));
        let vars = json!({ "phone": "+56944444444" });
        start(&mut socket, protocol, "1", CREATE, &vars).await;
        let answer = receive(&mut socket).await;
        let refused = answer["closed"].is_number()
            || answer["ended"] == true
            || answer["type"] == "error"
            || answer["payload"]["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED";
        assert!(refused, "{protocol}: {answer}");
    }
    assert_eq!(contacts_total(&app).await, json!(0));
}

/// A subscription selects exactly one root field, on both protocols, however the second one
/// is written (alias, `__typename`, inline fragment, named fragment).
#[tokio::test]
async fn a_subscription_selects_one_root_field_on_both_protocols() {
    let app = secured(|state| state).await;
    let fan_outs = [
        "subscription { a: contactEvents { kind } b: contactEvents { kind } }",
        "subscription { __typename contactEvents { kind } }",
        "subscription { contactEvents { kind } ... on Subscription { b: contactEvents { kind } } }",
        "subscription { contactEvents { kind } ...F } fragment F on Subscription { __typename }",
    ];
    for transport in [Transport::GraphqlTransportWs, Transport::LegacyWs] {
        for query in fan_outs {
            let (_, body) = run(&app, transport, Credential::ReadKey, query, json!({})).await;
            assert_eq!(
                outcome(&body),
                "GRAPHQL_VALIDATION_FAILED",
                "{transport:?} {query}: {body}"
            );
        }
    }
}

/// `/metrics` text's value of `series`, 0 when absent.
async fn metric(app: &TestApp, series: &str) -> u64 {
    let text = app
        .client
        .get(app.url("/metrics"))
        .header("x-api-key", READ_KEY)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(series))
        .and_then(|rest| rest.trim().parse().ok())
        .unwrap_or(0)
}

/// Outcomes are still counted by operation type: a refused mutation as a client error, a
/// query as ok, a refused parse as a client error of unknown type.
#[tokio::test]
async fn refusals_and_successes_are_still_counted_in_the_metrics() {
    let app = secured(|state| state).await;
    let forbidden = "graphql_requests_total{operation_type=\"mutation\",outcome=\"client_error\"}";
    let ok = "graphql_requests_total{operation_type=\"query\",outcome=\"ok\"}";
    let (before_forbidden, before_ok) = (metric(&app, forbidden).await, metric(&app, ok).await);
    let vars = json!({ "phone": "+56955555555" });
    let (status, _) = run(&app, Transport::Post, Credential::ReadKey, CREATE, vars).await;
    assert_eq!(status, "403");
    let (status, _) = run(&app, Transport::Get, Credential::ReadKey, QUERY, json!({})).await;
    assert_eq!(status, "200");
    assert_eq!(metric(&app, forbidden).await, before_forbidden + 1);
    assert_eq!(metric(&app, ok).await, before_ok + 1);
}

const LIST: &str = "query($first: Int, $last: Int, $after: String, $filter: ContactFilter, \
    $order: ContactOrder) { contacts(first: $first, last: $last, after: $after, filter: $filter, \
    orderBy: $order) { totalCount nodes { id } pageInfo { hasNextPage hasPreviousPage } } }";

fn node_ids(page: &Value) -> Vec<Value> {
    let nodes = page["nodes"].as_array().expect("nodes");
    nodes.iter().map(|node| node["id"].clone()).collect()
}

/// Every `first` and `last` from 1 to one past the matches, in every order, unfiltered and
/// with filters that probe (metadata, prefix): the page is that many of the full list from
/// its start or end, the page flags say whether more lie beyond, and the count is the list's.
/// (On SQLite each limit is now a different SQL text.)
#[tokio::test]
async fn pages_of_every_size_are_the_full_lists_ends() {
    let app = TestApp::start().await;
    for i in 0..12 {
        let metadata = if i % 2 == 0 {
            json!({ "tier": "gold" })
        } else {
            json!({})
        };
        let phone = format!("+569880000{i:02}");
        app.create(json!({ "phoneNumber": phone, "metadata": metadata }))
            .await;
    }
    let filters = [
        json!({}),
        json!({ "metadata": { "tier": "gold" } }),
        json!({ "phoneNumberPrefix": "+5698800000" }),
    ];
    let fields = [
        "CREATED_AT",
        "UPDATED_AT",
        "LAST_WHATSAPP_MESSAGE_AT",
        "PHONE_NUMBER",
    ];
    for filter in &filters {
        for field in fields {
            for direction in ["ASC", "DESC"] {
                let order = json!({ "field": field, "direction": direction });
                let vars = json!({ "first": 100, "filter": filter, "order": order });
                let full = node_ids(&app.data(LIST, vars).await["contacts"]);
                let len = full.len();
                assert!(len >= 2, "{filter}: {len}");
                for n in 1..=len + 1 {
                    let vars = json!({ "first": n, "filter": filter, "order": order });
                    let page = app.data(LIST, vars).await["contacts"].clone();
                    let shown = n.min(len);
                    let context = format!("{filter} {order} first {n}");
                    assert_eq!(node_ids(&page), full[..shown], "{context}");
                    assert_eq!(page["pageInfo"]["hasNextPage"], n < len, "{context}");
                    assert_eq!(page["pageInfo"]["hasPreviousPage"], false, "{context}");
                    assert_eq!(page["totalCount"], len, "{context}");
                    let vars = json!({ "last": n, "filter": filter, "order": order });
                    let page = app.data(LIST, vars).await["contacts"].clone();
                    let context = format!("{filter} {order} last {n}");
                    assert_eq!(node_ids(&page), full[len - shown..], "{context}");
                    assert_eq!(page["pageInfo"]["hasPreviousPage"], n < len, "{context}");
                    assert_eq!(page["pageInfo"]["hasNextPage"], false, "{context}");
                }
            }
        }
    }
}

const FEED: &str = "query($after: String, $first: Int) { contactChanges(after: $after, \
    first: $first) { edges { cursor node { contactId kind } } pageInfo { hasNextPage } } }";

/// The change feed read with every `first` from 1 to one past its length, from its start
/// and after each of its changes: always the next that many changes of the whole feed.
#[tokio::test]
async fn change_feed_pages_of_every_size_are_slices_of_the_whole_feed() {
    let app = TestApp::start().await;
    for i in 0..6 {
        let contact = app
            .create(json!({ "phoneNumber": format!("+569881100{i:02}") }))
            .await;
        app.data(
            "mutation($id: ID!) { patchContactMetadata(id: $id, set: { a: \"b\" }) \
             { contact { id } } }",
            json!({ "id": contact["id"] }),
        )
        .await;
    }
    let whole = app.data(FEED, json!({ "first": 1000 })).await["contactChanges"]["edges"]
        .as_array()
        .expect("edges")
        .clone();
    assert_eq!(whole.len(), 12);
    for start in 0..whole.len() {
        let after = if start == 0 {
            Value::Null
        } else {
            whole[start - 1]["cursor"].clone()
        };
        let rest = whole.len() - start;
        for n in 1..=rest + 1 {
            let vars = json!({ "after": after, "first": n });
            let page = app.data(FEED, vars).await["contactChanges"].clone();
            let edges = page["edges"].as_array().expect("edges");
            assert_eq!(
                edges[..],
                whole[start..start + n.min(rest)],
                "after {start}, {n}"
            );
            assert_eq!(
                page["pageInfo"]["hasNextPage"],
                n < rest,
                "after {start}, {n}"
            );
        }
    }
    // Lookups by identity read with a limit of one: each contact is found by its number.
    for i in 0..6 {
        let phone = format!("+569881100{i:02}");
        let data = app
            .data(
                "query($p: String!) { contactByPhoneNumber(phoneNumber: $p) { phoneNumber } }",
                json!({ "p": phone }),
            )
            .await;
        assert_eq!(data["contactByPhoneNumber"]["phoneNumber"], phone);
    }
}

/// Metadata at its limits: 50 keys of 40 four-byte characters, values of 500 U+0001 (six
/// bytes each in JSON).
fn heaviest_metadata(tag: usize) -> Value {
    let value = "\u{1}".repeat(500);
    let entries = (0..50).map(|k| {
        let key = format!("{tag:02}{k:02}{}", "\u{10348}".repeat(36));
        (key, Value::String(value.clone()))
    });
    Value::Object(entries.collect())
}

/// A 128-character alias ending in `i`.
fn long_alias(i: usize) -> String {
    format!("{}{i:03}", "m".repeat(125))
}

/// The largest answers the complexity limit admits, built to weigh the most per unit: a page
/// of 11 contacts at the metadata limits selecting `metadata` under 15 aliases of 128
/// characters (4,796 of 5,000), and the change feed's 10 changes likewise (one unit of ten
/// changes). Each answers under the 28 MB bound SECURITY.md states; one more contact or one
/// more change is refused.
#[tokio::test]
async fn the_heaviest_admitted_answers_stay_under_the_stated_bound() {
    let app = TestApp::start().await;
    for tag in 0..12 {
        let input = json!({
            "phoneNumber": format!("+5698822{tag:04}"),
            "metadata": heaviest_metadata(tag),
        });
        app.create(input).await;
    }
    let fields: String = (0..15)
        .map(|i| format!("{}: metadata ", long_alias(i)))
        .collect();
    let page = |n: usize| format!("{{ contacts(first: {n}) {{ nodes {{ {fields} }} }} }}");
    let feed = |n: usize| {
        format!("{{ contactChanges(first: {n}) {{ nodes {{ contact {{ {fields} }} }} }} }}")
    };
    for (doc, over) in [(page(11), page(12)), (feed(10), feed(11))] {
        let response = app
            .client
            .post(app.url("/graphql"))
            .json(&json!({ "query": doc }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let bytes = response.bytes().await.unwrap();
        println!("{:.40}: {} bytes", doc, bytes.len());
        assert!(bytes.len() > 20_000_000, "{}", bytes.len());
        assert!(bytes.len() < 28_000_000, "{}", bytes.len());
        let refused = app.error(&over, json!({})).await;
        assert_eq!(code(&refused), "GRAPHQL_VALIDATION_FAILED", "{refused}");
    }
}

/// One anonymous operation over `transport` as `client` (an `X-Forwarded-For` value): "ok"
/// or the refusal's code (HTTP 429 as `RATE_LIMITED`).
async fn forwarded(app: &TestApp, transport: Transport, client: &str) -> String {
    match transport {
        Transport::Post | Transport::Get => {
            let request = if transport == Transport::Post {
                app.client
                    .post(app.url("/graphql"))
                    .json(&json!({ "query": QUERY }))
            } else {
                app.client
                    .get(app.url("/graphql"))
                    .query(&[("query", QUERY)])
            };
            let response = request
                .header("x-forwarded-for", client)
                .send()
                .await
                .unwrap();
            let body: Value = response.json().await.unwrap();
            outcome(&body)
        }
        Transport::GraphqlTransportWs | Transport::LegacyWs => {
            let protocol = transport.protocol();
            let mut request = app.ws_url().into_client_request().unwrap();
            let headers = request.headers_mut();
            headers.insert(
                "Sec-WebSocket-Protocol",
                HeaderValue::from_str(protocol).unwrap(),
            );
            headers.insert("x-forwarded-for", HeaderValue::from_str(client).unwrap());
            let mut socket = match tokio_tungstenite::connect_async(request).await {
                Ok((socket, _)) => socket,
                Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
                    return "RATE_LIMITED".into();
                }
                Err(other) => panic!("{other}"),
            };
            send(
                &mut socket,
                json!({ "type": "connection_init", "payload": {} }),
            )
            .await;
            assert_eq!(receive(&mut socket).await["type"], "connection_ack");
            start(&mut socket, protocol, "1", QUERY, &json!({})).await;
            outcome(&result(&mut socket).await)
        }
    }
}

/// Anonymous callers over every transport: behind a trusted proxy each forwarded client has
/// its own bucket; from a peer that is not a trusted proxy, a made-up `X-Forwarded-For`
/// buys no new bucket.
#[tokio::test]
async fn forwarded_addresses_count_only_from_a_trusted_proxy_on_every_transport() {
    use contacts_server::http::client_ip::TrustedProxies;
    for transport in TRANSPORTS {
        let proxies = TrustedProxies::parse(&["127.0.0.1".to_owned()], "x-forwarded-for").unwrap();
        let behind = TestApp::start_configured(move |state| {
            state.with_trusted_proxies(proxies).with_rate_limit(1, 2)
        })
        .await;
        let mut got = Vec::new();
        for client in ["203.0.113.7", "203.0.113.7", "203.0.113.7", "198.51.100.9"] {
            got.push(forwarded(&behind, transport, client).await);
        }
        // An anonymous socket's upgrade takes from the bucket as well.
        let second = if matches!(transport, Transport::Post | Transport::Get) {
            "ok"
        } else {
            "RATE_LIMITED"
        };
        assert_eq!(
            got,
            ["ok", second, "RATE_LIMITED", "ok"],
            "{transport:?} behind"
        );
        let direct = TestApp::start_configured(|state| state.with_rate_limit(1, 2)).await;
        let mut got = Vec::new();
        for client in ["203.0.113.7", "203.0.113.8", "203.0.113.9", "198.51.100.9"] {
            got.push(forwarded(&direct, transport, client).await);
        }
        assert_eq!(
            got[2..],
            ["RATE_LIMITED", "RATE_LIMITED"],
            "{transport:?} direct: {got:?}"
        );
    }
}

/// A document whose first operation is harmless and whose second spreads a doubled fragment
/// chain (2^39 selections): naming the harmless one first (which would put the text in the
/// cache if it were admitted) does not let the bomb through by name afterwards, on any
/// transport, and each refusal is quick.
#[tokio::test]
async fn a_bomb_behind_a_harmless_operation_is_refused_by_name_too() {
    let app = secured(|state| state).await;
    let mut doc = "query A { __typename } query B { ...F0 }".to_owned();
    for i in 0..39 {
        let next = i + 1;
        doc += &format!(" fragment F{i} on Query {{ ...F{next} ...F{next} }}");
    }
    doc += " fragment F39 on Query { __typename }";
    for transport in TRANSPORTS {
        for operation in ["A", "B", "A", "B"] {
            let started = std::time::Instant::now();
            let (_, body) = read_named(&app, transport, &doc, operation).await;
            let took = started.elapsed();
            assert_eq!(
                outcome(&body),
                "GRAPHQL_VALIDATION_FAILED",
                "{transport:?} {operation}: {body}"
            );
            assert!(
                took < Duration::from_secs(2),
                "{transport:?} {operation}: {took:?}"
            );
        }
    }
}

/// The counts' charge is the named operation's, also once the text is cached: a harmless
/// first operation does not let a second one of 15 filtered counts (15 × 400) through.
#[tokio::test]
async fn a_cached_documents_counts_are_charged_for_the_operation_named() {
    let app = secured(|state| state).await;
    let counts: String = (0..15)
        .map(|i| format!("s{i}: contactStats(filter: {{ countryCode: [\"CL\"] }}) {{ total }} "))
        .collect();
    let doc = format!("query A {{ contactStats {{ total }} }} query B {{ {counts} }}");
    for transport in TRANSPORTS {
        for (operation, wanted) in [("A", "ok"), ("B", "GRAPHQL_VALIDATION_FAILED")] {
            let (_, body) = read_named(&app, transport, &doc, operation).await;
            assert_eq!(outcome(&body), wanted, "{transport:?} {operation}: {body}");
        }
    }
}
